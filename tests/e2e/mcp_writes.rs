//! The write tools and the series and instance removals through MCP:
//! update, revert, refused updates, copies, removals, and corrections across
//! a patient's primary and non-primary image sets.

use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use healthimaging_e2e::{Mcp, all_image_sets, ci_emulator, metadata, structured, text};
use healthimaging_mcp::permissions::Grant;
use serde_json::{Value, json};

const TTL: Duration = Duration::from_secs(300);

/// The first (series, instances) of a document.
fn first_series(document: &Value) -> (String, Vec<String>) {
    let (uid, series) = document["Study"]["Series"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    (
        uid.clone(),
        series["Instances"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect(),
    )
}

/// Runs a destructive tool's two phases and returns the executed output.
async fn confirmed(mcp: &Mcp, tool: &'static str, args: Value) -> Value {
    let preview = structured(&mcp.call(tool, args.clone()).await);
    assert_eq!(preview["phase"], "preview", "{preview}");
    let mut args = args;
    args["confirmation_token"] = preview["confirmation_token"].clone();
    let done = structured(&mcp.call(tool, args).await);
    assert_eq!(done["phase"], "executed", "{done}");
    done
}

async fn description(sdk: &Client, ds: &str, id: &str, version: Option<&str>) -> Value {
    metadata(sdk, ds, id, version).await["Study"]["DICOM"]["StudyDescription"].clone()
}

#[tokio::test]
async fn updates_reverts_and_refusals_through_the_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let set = sets
        .iter()
        .find(|s| s.is_primary() == Some(true) && s.version() == Some(1))
        .unwrap();
    let id = set.image_set_id();
    let mcp = Mcp::connect(
        sdk.clone(),
        Grant {
            write: true,
            delete: false,
        },
        TTL,
    )
    .await;
    let call = |extra: Value| {
        let mut args = json!({"datastore_id": ds, "image_set_id": id});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        args
    };

    let updated = structured(
        &mcp.call(
            "update_image_set_metadata",
            call(json!({
        "updatable_attributes": {"Study": {"DICOM": {"StudyDescription": "SYNTHETIC FIXED"}}}})),
        )
        .await,
    );
    assert_eq!(updated["result"]["outcome"], "done", "{updated}");
    assert_eq!(
        (
            updated["result"]["from_version_id"].as_str(),
            updated["result"]["version_id"].as_str()
        ),
        (Some("1"), Some("2"))
    );
    assert_eq!(updated["result"]["image_set_workflow_status"], "UPDATED");
    assert_eq!(description(&sdk, &ds, id, None).await, "SYNTHETIC FIXED");

    let stale = mcp
        .call(
            "update_image_set_metadata",
            call(json!({"latest_version_id": "1",
        "updatable_attributes": {"Study": {"DICOM": {"StudyDescription": "LOST"}}}})),
        )
        .await;
    assert_eq!(
        stale.is_error,
        Some(true),
        "a stale version is never overwritten"
    );
    assert!(
        text(&stale).starts_with("ConflictException"),
        "{}",
        text(&stale)
    );
    assert!(text(&stale).contains("at version 2"), "{}", text(&stale));

    let mismatch = structured(
        &mcp.call(
            "update_image_set_metadata",
            call(json!({
        "removable_attributes": {"Study": {"DICOM": {"StudyDescription": "NOT THE VALUE"}}}})),
        )
        .await,
    );
    assert_eq!(mismatch["result"]["outcome"], "failed");
    assert_eq!(
        mismatch["result"]["version_id"], "3",
        "a refused change uses a version"
    );
    assert!(
        mismatch["result"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert!(mismatch["summary"].as_str().unwrap().contains("refused"));

    let primary_patient = structured(
        &mcp.call(
            "update_image_set_metadata",
            call(json!({
        "updatable_attributes": {"Patient": {"DICOM": {"PatientSex": "O"}}}})),
        )
        .await,
    );
    assert_eq!(primary_patient["result"]["outcome"], "failed");
    assert!(
        primary_patient["result"]["message"]
            .as_str()
            .unwrap()
            .contains("includeStudyImageSets")
    );

    let reverted = structured(
        &mcp.call(
            "update_image_set_metadata",
            call(json!({"revert_to_version_id": "1"})),
        )
        .await,
    );
    assert_eq!(reverted["result"]["version_id"], "5");
    assert_eq!(
        description(&sdk, &ds, id, None).await,
        description(&sdk, &ds, id, Some("1")).await
    );

    for bad in [
        json!({}),
        json!({"revert_to_version_id": "1", "updatable_attributes": {}}),
        json!({"revert_to_version_id": "1", "include_study_image_sets": true}),
        json!({"updatable_attributes": ["not", "an", "object"]}),
    ] {
        let result = mcp
            .call("update_image_set_metadata", call(bad.clone()))
            .await;
        assert_eq!(result.is_error, Some(true), "{bad}");
        assert!(
            text(&result).starts_with("InvalidArgument"),
            "{bad}: {}",
            text(&result)
        );
    }
}

#[tokio::test]
async fn copies_and_removals_of_series_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let mut source = None;
    for set in all_image_sets(&sdk, &ds)
        .await
        .iter()
        .filter(|s| s.is_primary() == Some(true))
    {
        let document = metadata(&sdk, &ds, set.image_set_id(), None).await;
        if first_series(&document).1.len() >= 3 {
            source = Some((set.image_set_id().to_owned(), document));
            break;
        }
    }
    let (source, document) = source.expect("a primary image set with three instances");
    let (series, instances) = first_series(&document);
    let mcp = Mcp::connect(sdk.clone(), Grant::ALL, TTL).await;

    let selection = json!({"Study": {"Series": {&series: {"Instances": {&instances[0]: {}}}}}});
    let copied = structured(&mcp.call("copy_image_set", json!({"datastore_id": ds, "source_image_set_id": source, "copiable_attributes": selection})).await);
    assert_eq!(copied["destination"]["outcome"], "done", "{copied}");
    assert_eq!(copied["destination"]["image_set_workflow_status"], "COPIED");
    assert_eq!(
        copied["source"]["version_id"], "1",
        "a copy leaves its source's version"
    );
    let copy = copied["destination"]["image_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        first_series(&metadata(&sdk, &ds, &copy, None).await).1,
        vec![instances[0].clone()]
    );

    let again = structured(
        &mcp.call(
            "copy_image_set",
            json!({"datastore_id": ds, "source_image_set_id": source,
        "copiable_attributes": selection, "destination_image_set_id": copy}),
        )
        .await,
    );
    assert_eq!(again["destination"]["outcome"], "failed");
    assert_eq!(again["destination"]["version_id"], "2");
    assert!(
        again["destination"]["message"]
            .as_str()
            .unwrap()
            .contains("already in")
    );

    let removed = confirmed(
        &mcp,
        "remove_instance_from_image_set",
        json!({"datastore_id": ds, "image_set_id": source,
        "series_instance_uid": series, "sop_instance_uid": instances[1]}),
    )
    .await;
    assert_eq!(removed["changes"][0]["action"], "remove_instance");
    assert_eq!(removed["results"][0]["version_id"], "2");
    let left = first_series(&metadata(&sdk, &ds, &source, None).await).1;
    assert!(!left.contains(&instances[1]) && left.len() == instances.len() - 1);

    let everywhere = confirmed(
        &mcp,
        "delete_instance_in_series",
        json!({"datastore_id": ds,
        "series_instance_uid": series, "sop_instance_uid": instances[0]}),
    )
    .await;
    let touched: Vec<&str> = everywhere["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image_set_id"].as_str().unwrap())
        .collect();
    assert!(
        touched.contains(&source.as_str()) && touched.contains(&copy.as_str()),
        "{everywhere}"
    );
    assert!(
        everywhere["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "done")
    );

    let gone = confirmed(
        &mcp,
        "delete_series_by_uid",
        json!({"datastore_id": ds, "series_instance_uid": series}),
    )
    .await;
    let actions: Vec<&str> = gone["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["delete_image_set", "delete_image_set"],
        "an image set holding only the series goes whole"
    );
    let left = all_image_sets(&sdk, &ds).await;
    assert!(
        left.iter()
            .all(|s| s.image_set_id() != source && s.image_set_id() != copy)
    );

    let missing = mcp
        .call(
            "remove_series_from_image_set",
            json!({"datastore_id": ds, "image_set_id": left[0].image_set_id(),
        "series_instance_uid": "1.2.3.4.5"}),
        )
        .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("does not hold series 1.2.3.4.5"));
}

#[tokio::test]
async fn corrections_reach_primary_and_non_primary_image_sets_and_continue_after_a_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let patient = sets
        .iter()
        .find(|s| s.is_primary() == Some(false))
        .and_then(|s| s.dicom_tags()?.dicom_patient_id())
        .unwrap()
        .to_owned();
    let of_patient: Vec<String> = sets
        .iter()
        .filter(|s| s.dicom_tags().and_then(|t| t.dicom_patient_id()) == Some(patient.as_str()))
        .map(|s| s.image_set_id().to_owned())
        .collect();
    assert!(of_patient.len() >= 2);
    let mcp = Mcp::connect(
        sdk.clone(),
        Grant {
            write: true,
            delete: false,
        },
        TTL,
    )
    .await;
    let args = json!({"datastore_id": ds, "patient_id": patient, "patient_attributes": {"PatientName": "SYNTHETIC^CORRECTED"}});
    let mut first = args.clone();
    first["max_image_sets"] = json!(1);
    let capped = structured(&mcp.call("bulk_update_patient_metadata", first).await);
    assert_eq!(capped["results"].as_array().unwrap().len(), 1, "{capped}");
    assert_eq!(capped["more_remain"], true);
    assert!(capped["summary"].as_str().unwrap().contains("call again"));

    let rest = structured(&mcp.call("bulk_update_patient_metadata", args.clone()).await);
    assert_eq!(rest["more_remain"], false, "{rest}");
    assert!(
        rest["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "done"),
        "{rest}"
    );
    assert!(
        !rest["already_up_to_date"].as_array().unwrap().is_empty(),
        "the first call's work is not redone"
    );
    for id in &of_patient {
        let document = metadata(&sdk, &ds, id, None).await;
        assert_eq!(
            document["Patient"]["DICOM"]["PatientName"], "SYNTHETIC^CORRECTED",
            "image set {id}"
        );
    }
    let idle = structured(&mcp.call("bulk_update_patient_metadata", args).await);
    assert!(idle["results"].as_array().unwrap().is_empty());
    assert_eq!(
        idle["already_up_to_date"].as_array().unwrap().len(),
        of_patient.len()
    );

    let study = sets[0]
        .dicom_tags()
        .unwrap()
        .dicom_study_instance_uid()
        .unwrap()
        .to_owned();
    let in_study: Vec<String> = sets
        .iter()
        .filter(|s| {
            s.dicom_tags().and_then(|t| t.dicom_study_instance_uid()) == Some(study.as_str())
        })
        .map(|s| s.image_set_id().to_owned())
        .collect();
    let corrected = structured(
        &mcp.call(
            "update_patient_study_metadata",
            json!({"datastore_id": ds, "study_instance_uid": study,
        "study_attributes": {"StudyDescription": "SYNTHETIC REVIEWED"}}),
        )
        .await,
    );
    assert!(
        corrected["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "done"),
        "{corrected}"
    );
    for id in &in_study {
        assert_eq!(
            description(&sdk, &ds, id, None).await,
            "SYNTHETIC REVIEWED",
            "image set {id}"
        );
    }
}

#[tokio::test]
async fn concurrent_tool_writes_retry_on_conflict_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let id = all_image_sets(&sdk, &ds).await[0].image_set_id().to_owned();
    let mcp = std::sync::Arc::new(Mcp::connect(sdk.clone(), Grant::ALL, TTL).await);
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let (mcp, ds, id) = (mcp.clone(), ds.clone(), id.clone());
            tokio::spawn(async move {
                let args = json!({"datastore_id": ds, "image_set_id": id,
                    "updatable_attributes": {"Study": {"DICOM": {"StudyDescription": format!("WRITER {n}")}}}});
                mcp.call("update_image_set_metadata", args).await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for writer in writers {
        let result = structured(&writer.await.unwrap());
        assert_eq!(result["result"]["outcome"], "done", "{result}");
        versions.push(
            result["result"]["version_id"]
                .as_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    versions.sort();
    assert_eq!(
        versions,
        (2..=9).collect::<Vec<u32>>(),
        "every writer got its own version"
    );
    let listed = sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_set_properties_list().len(), 9);
}
