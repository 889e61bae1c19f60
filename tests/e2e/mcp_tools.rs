//! The MCP server in-process: the tool contract, permissions, tools,
//! resources, audit records, and SDK retries as the assistant sees them.

use std::time::Duration;

use healthimaging_e2e::{Fixture, Mcp, structured, text};
use healthimaging_mcp::permissions::Grant;
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};

const TTL: Duration = Duration::from_secs(300);

async fn setup(grant: Grant) -> (Fixture, Mcp) {
    let f = Fixture::start(10).await;
    let mcp = Mcp::connect(f.sdk.clone(), grant, TTL).await;
    (f, mcp)
}

#[tokio::test]
async fn the_tools_list_contract() {
    let (_f, mcp) = setup(Grant::ALL).await;
    let mut tools = mcp.client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    for tool in &tools {
        let annotations = tool.annotations.as_ref().expect("every tool is annotated");
        assert!(annotations.title.is_some(), "{} has a title", tool.name);
        assert!(annotations.read_only_hint.is_some(), "{}", tool.name);
        assert!(annotations.destructive_hint.is_some(), "{}", tool.name);
        assert!(annotations.idempotent_hint.is_some(), "{}", tool.name);
        assert!(annotations.open_world_hint.is_some(), "{}", tool.name);
        assert!(
            tool.output_schema.is_some(),
            "{} has structured output",
            tool.name
        );
    }
    let contract = serde_json::to_string_pretty(&tools).unwrap();
    insta::assert_snapshot!("tools_list", contract);
}

#[tokio::test]
async fn grants_decide_which_tools_exist() {
    let read = [
        "get_datastore",
        "get_dicom_export_job",
        "get_dicom_import_job",
        "get_image_frame",
        "get_image_set",
        "get_image_set_metadata",
        "get_patient_dicomweb_studies",
        "get_patient_series",
        "get_patient_studies",
        "get_report_text",
        "get_series_montage",
        "get_series_primary_image_set",
        "get_study_primary_image_sets",
        "list_datastores",
        "list_dicom_export_jobs",
        "list_dicom_import_jobs",
        "list_image_set_versions",
        "list_tags_for_resource",
        "search_by_patient_id",
        "search_by_series_uid",
        "search_by_study_uid",
        "search_dicomweb",
        "search_image_sets",
    ];
    let write = [
        "bulk_update_patient_metadata",
        "cancel_dicom_export_job",
        "copy_image_set",
        "create_datastore",
        "de_identify_study",
        "start_dicom_export_job",
        "start_dicom_import_job",
        "tag_resource",
        "untag_resource",
        "update_image_set_metadata",
        "update_patient_study_metadata",
    ];
    let delete = [
        "bulk_delete_by_criteria",
        "delete_datastore",
        "delete_image_set",
        "delete_instance_in_series",
        "delete_instance_in_study",
        "delete_patient_studies",
        "delete_series_by_uid",
        "delete_study",
        "remove_instance_from_image_set",
        "remove_series_from_image_set",
    ];
    let expect = |parts: &[&[&str]]| {
        let mut names: Vec<String> = parts.concat().iter().map(|s| s.to_string()).collect();
        names.sort();
        names
    };
    let (_f, mcp) = setup(Grant::READ_ONLY).await;
    assert_eq!(mcp.tool_names().await, expect(&[&read]));
    let (_f, mcp) = setup(Grant {
        write: true,
        delete: false,
    })
    .await;
    assert_eq!(mcp.tool_names().await, expect(&[&read, &write]));
    let (_f, mcp) = setup(Grant::ALL).await;
    assert_eq!(mcp.tool_names().await, expect(&[&read, &write, &delete]));

    let (_f, mcp) = setup(Grant::READ_ONLY).await;
    let result = mcp
        .client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("create_datastore")
                .with_arguments(serde_json::Map::new()),
        )
        .await;
    assert!(result.is_err(), "an ungranted tool is not callable at all");
}

#[tokio::test]
async fn create_get_list_and_tag_through_tools() {
    let (f, mcp) = setup(Grant::ALL).await;
    let created = mcp
        .call(
            "create_datastore",
            json!({"datastore_name": "demo-ct", "tags": {"purpose": "demo"}, "lossless_storage_format": "JPEG_2000_LOSSLESS"}),
        )
        .await;
    let created = structured(&created);
    assert_eq!(created["datastore"]["datastore_status"], "CREATING");
    assert_eq!(
        created["datastore"]["lossless_storage_format"],
        "JPEG_2000_LOSSLESS"
    );
    let id = created["datastore"]["datastore_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let arn = created["datastore"]["datastore_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(created["summary"].as_str().unwrap().contains(&id));

    f.settle();
    let got = structured(&mcp.call("get_datastore", json!({"datastore_id": id})).await);
    assert_eq!(got["datastore"]["datastore_status"], "ACTIVE");
    assert!(
        got["datastore"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let listed = structured(
        &mcp.call("list_datastores", json!({"datastore_status": "ACTIVE"}))
            .await,
    );
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["truncated"], false);

    let tagged = structured(
        &mcp.call(
            "tag_resource",
            json!({"resource_arn": arn, "tags": {"owner": "radiology"}}),
        )
        .await,
    );
    assert_eq!(
        tagged["tags"],
        json!({"owner": "radiology", "purpose": "demo"})
    );
    let untagged = structured(
        &mcp.call(
            "untag_resource",
            json!({"resource_arn": arn, "tag_keys": ["purpose"]}),
        )
        .await,
    );
    assert_eq!(untagged["tags"], json!({"owner": "radiology"}));
    let listed = structured(
        &mcp.call("list_tags_for_resource", json!({"resource_arn": arn}))
            .await,
    );
    assert_eq!(listed["tags"], json!({"owner": "radiology"}));
}

#[tokio::test]
async fn list_datastores_pages_through_the_api_up_to_the_limit() {
    let (f, mcp) = setup(Grant::ALL).await;
    for _ in 0..7 {
        f.sdk.create_datastore().send().await.unwrap();
    }
    let first = structured(&mcp.call("list_datastores", json!({"limit": 4})).await);
    assert_eq!(first["count"], 4);
    assert_eq!(first["truncated"], true);
    let token = first["next_token"].as_str().unwrap();
    let rest = structured(
        &mcp.call("list_datastores", json!({"next_token": token}))
            .await,
    );
    assert_eq!(rest["count"], 3);
    assert_eq!(rest["truncated"], false);
    let mut ids: Vec<&Value> = first["datastores"].as_array().unwrap().iter().collect();
    ids.extend(rest["datastores"].as_array().unwrap());
    let mut ids: Vec<&str> = ids
        .iter()
        .map(|d| d["datastore_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7);

    let bad = mcp.call("list_datastores", json!({"limit": 0})).await;
    assert_eq!(bad.is_error, Some(true));
}

#[tokio::test]
async fn tool_errors_name_the_aws_code_and_what_to_do() {
    let (_f, mcp) = setup(Grant::ALL).await;
    let missing = mcp
        .call(
            "get_datastore",
            json!({"datastore_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(missing.is_error, Some(true));
    let message = text(&missing);
    assert!(
        message.starts_with("ResourceNotFoundException:"),
        "{message}"
    );
    assert!(message.contains("What to do:"), "{message}");

    for (tool, args, names) in [
        (
            "get_datastore",
            json!({"datastore_id": "Nope"}),
            "DatastoreId",
        ),
        (
            "tag_resource",
            json!({"resource_arn": "arn:aws:s3:::b", "tags": {"a": "b"}}),
            "ResourceArn",
        ),
        (
            "create_datastore",
            json!({"tags": {"aws:x": "y"}}),
            "TagKey",
        ),
        (
            "create_datastore",
            json!({"datastore_name": "no spaces allowed"}),
            "DatastoreName",
        ),
        (
            "list_datastores",
            json!({"datastore_status": "ASLEEP"}),
            "ASLEEP",
        ),
        (
            "get_datastore",
            json!({"datastore_id": "0123456789abcdef0123456789abcdef", "extra": 1}),
            "extra",
        ),
    ] {
        let result = mcp.call(tool, args).await;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert!(text(&result).contains(names), "{tool}: {}", text(&result));
    }
}

#[tokio::test]
async fn every_call_leaves_one_audit_record_without_arguments() {
    let (_f, mcp) = setup(Grant::ALL).await;
    mcp.call(
        "create_datastore",
        json!({"datastore_name": "audited-name"}),
    )
    .await;
    mcp.call(
        "get_datastore",
        json!({"datastore_id": "0123456789abcdef0123456789abcdef"}),
    )
    .await;
    let records = mcp.audit.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["tool"], "create_datastore");
    assert_eq!(records[0]["outcome"], "success");
    assert_eq!(records[0]["resources"].as_array().unwrap().len(), 1);
    assert_eq!(records[1]["outcome"], "error");
    assert_eq!(records[1]["error_code"], "ResourceNotFoundException");
    let all = serde_json::to_string(&records).unwrap();
    assert!(
        !all.contains("audited-name"),
        "audit records carry no arguments"
    );
}

#[tokio::test]
async fn throttling_is_retried_and_a_persistent_internal_error_is_a_clear_tool_error() {
    let (f, mcp) = setup(Grant::ALL).await;
    f.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"operation": "ListDatastores", "fault": "throttling", "count": 2})),
    )
    .await;
    let listed = mcp.call("list_datastores", json!({})).await;
    assert_ne!(listed.is_error, Some(true), "{}", text(&listed));

    f.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"operation": "GetDatastore", "fault": "internal_error", "probability": 1.0})),
    )
    .await;
    let failed = mcp
        .call(
            "get_datastore",
            json!({"datastore_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(failed.is_error, Some(true));
    let message = text(&failed);
    assert!(message.starts_with("InternalServerException:"), "{message}");
    assert!(message.contains("try again later"), "{message}");
}

#[tokio::test]
async fn resources_list_and_read_datastores() {
    let (f, mcp) = setup(Grant::READ_ONLY).await;
    let id = f.active_datastore("resource-store").await;
    let resources = mcp.client.list_all_resources().await.unwrap();
    assert_eq!(resources[0].uri, "healthimaging://datastores");
    let templates = mcp.client.list_all_resource_templates().await.unwrap();
    assert_eq!(
        templates[0].uri_template,
        "healthimaging://datastore/{datastore_id}"
    );

    let read = |uri: String| {
        mcp.client
            .read_resource(ReadResourceRequestParams::new(uri))
    };
    let all = read("healthimaging://datastores".into()).await.unwrap();
    let document = resource_json(&all);
    assert_eq!(document["datastores"][0]["datastore_id"], id.as_str());
    let one = read(format!("healthimaging://datastore/{id}"))
        .await
        .unwrap();
    assert_eq!(resource_json(&one)["datastore_name"], "resource-store");

    assert!(
        read("healthimaging://datastore/0123456789abcdef0123456789abcdef".into())
            .await
            .is_err()
    );
    assert!(
        read("healthimaging://datastore/not-an-id".into())
            .await
            .is_err()
    );
    assert!(read("healthimaging://elsewhere".into()).await.is_err());
}

fn resource_json(result: &rmcp::model::ReadResourceResult) -> Value {
    match &result.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            serde_json::from_str(text).unwrap()
        }
        other => panic!("expected text, got {other:?}"),
    }
}
