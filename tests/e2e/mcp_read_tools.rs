//! Every import and read tool end to end on the `demo` set, as `serve` loads
//! it: outputs are snapshotted with IDs and times redacted, and the frame
//! tool returns a PNG that decodes.

use std::time::Duration;

use base64::Engine;
use healthimaging_e2e::{Mcp, demo_emulator, redacted, structured, text};
use healthimaging_mcp::permissions::Grant;
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};

#[tokio::test]
async fn every_read_tool_on_the_demo_set() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_with_s3(
        sdk,
        Grant::ALL,
        Duration::from_secs(300),
        Some(emulator.s3_root().to_owned()),
    )
    .await;
    let manifest: Value = healthimaging_e2e::demo_manifest(&emulator);
    let expected_sets = manifest["expected_import"]["image_sets"]
        .as_array()
        .unwrap()
        .len();

    // The import that loaded the set, with its outcome read from S3.
    let jobs = structured(
        &mcp.call("list_dicom_import_jobs", json!({"datastore_id": ds}))
            .await,
    );
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    let job_id = jobs["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let job = structured(
        &mcp.call(
            "get_dicom_import_job",
            json!({"datastore_id": ds, "job_id": job_id}),
        )
        .await,
    );
    assert_eq!(
        job["outcome"]["imported_files"],
        manifest["totals"]["instances"]
    );
    assert_eq!(
        job["outcome"]["failure_count"],
        manifest["expected_import"]["failures"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        job["outcome"]["image_sets"].as_array().unwrap().len(),
        expected_sets
    );
    insta::assert_json_snapshot!(
        "get_dicom_import_job",
        redacted(&job["outcome"]["failures"])
    );

    // Searching: a capped search says so, and every page is read up to the cap.
    let page = structured(
        &mcp.call("search_image_sets", json!({"datastore_id": ds, "limit": 7}))
            .await,
    );
    assert_eq!(page["count"], 7);
    assert_eq!(page["truncated"], true);
    let all = structured(
        &mcp.call(
            "search_image_sets",
            json!({"datastore_id": ds, "limit": 1000}),
        )
        .await,
    );
    assert_eq!(
        all["count"], expected_sets,
        "more than one API page, all read"
    );
    assert_eq!(all["truncated"], false);

    let patient = manifest["patients"][0].clone();
    let patient_id = patient["patient_id"].as_str().unwrap();
    let by_patient = structured(
        &mcp.call(
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": patient_id}),
        )
        .await,
    );
    insta::assert_json_snapshot!("search_by_patient_id", redacted(&by_patient));
    let studies = structured(
        &mcp.call(
            "get_patient_studies",
            json!({"datastore_id": ds, "patient_id": patient_id}),
        )
        .await,
    );
    assert_eq!(
        studies["studies"].as_array().unwrap().len(),
        patient["studies"].as_array().unwrap().len()
    );
    insta::assert_json_snapshot!("get_patient_studies", redacted(&studies));
    let series = structured(
        &mcp.call(
            "get_patient_series",
            json!({"datastore_id": ds, "patient_id": patient_id}),
        )
        .await,
    );
    let series_count: usize = patient["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["series"].as_array().unwrap().len())
        .sum();
    assert_eq!(series["series"].as_array().unwrap().len(), series_count);
    insta::assert_json_snapshot!("get_patient_series", redacted(&series));

    let study_uid = patient["studies"][0]["study_instance_uid"]
        .as_str()
        .unwrap();
    let in_study = structured(
        &mcp.call(
            "search_by_study_uid",
            json!({"datastore_id": ds, "study_instance_uid": study_uid}),
        )
        .await,
    );
    let primaries = structured(
        &mcp.call(
            "get_study_primary_image_sets",
            json!({"datastore_id": ds, "study_instance_uid": study_uid}),
        )
        .await,
    );
    assert!(
        primaries["image_sets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["is_primary"] == true)
    );
    assert!(primaries["count"].as_u64() <= in_study["count"].as_u64());
    insta::assert_json_snapshot!("search_by_study_uid", redacted(&in_study));
    insta::assert_json_snapshot!("get_study_primary_image_sets", redacted(&primaries));
    let series_uid = patient["studies"][0]["series"][0]["series_instance_uid"]
        .as_str()
        .unwrap();
    let in_series = structured(
        &mcp.call(
            "search_by_series_uid",
            json!({"datastore_id": ds, "series_instance_uid": series_uid}),
        )
        .await,
    );
    assert!(in_series["count"].as_u64().unwrap() >= 1);
    insta::assert_json_snapshot!("search_by_series_uid", redacted(&in_series));
    let primary = structured(
        &mcp.call(
            "get_series_primary_image_set",
            json!({"datastore_id": ds, "series_instance_uid": series_uid}),
        )
        .await,
    );
    assert_eq!(primary["image_set"]["series_instance_uid"], series_uid);
    assert_eq!(primary["image_set"]["is_primary"], true);
    insta::assert_json_snapshot!("get_series_primary_image_set", redacted(&primary));
    assert!(by_patient["count"].as_u64().unwrap() >= in_study["count"].as_u64().unwrap());

    // One image set: properties, versions, metadata.
    let set = primary["image_set"]["image_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = json!({"datastore_id": ds, "image_set_id": set});
    let got = structured(&mcp.call("get_image_set", args.clone()).await);
    assert_eq!(got["image_set"]["version_id"], "1");
    // Times are RFC 3339 in UTC with exactly three fraction digits.
    for key in ["created_at", "updated_at"] {
        let time = got["image_set"][key].as_str().unwrap();
        let shape: String = time
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{key}: {time}");
    }
    insta::assert_json_snapshot!("get_image_set", redacted(&got));
    let versions = structured(&mcp.call("list_image_set_versions", args.clone()).await);
    assert_eq!(
        versions["versions"][0]["image_set_workflow_status"],
        "IMPORTED"
    );
    let summary = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set, "summary_only": true}),
        )
        .await,
    );
    assert_eq!(summary["summarized"], true);
    insta::assert_json_snapshot!("get_image_set_metadata_summary", redacted(&summary));
    let mut whole = args.clone();
    whole["max_bytes"] = json!(1_000_000);
    let full = structured(&mcp.call("get_image_set_metadata", whole).await);
    assert_eq!(full["summarized"], false);
    let series_doc = &full["metadata"]["Study"]["Series"][series_uid];
    let (sop, instance) = series_doc["Instances"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let one = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set, "sop_instance_uid": sop}),
        )
        .await,
    );
    assert_eq!(
        one["metadata"]["Study"]["Series"][series_uid]["Instances"][sop],
        *instance
    );
    let capped = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set, "max_bytes": 1000}),
        )
        .await,
    );
    assert_eq!(capped["summarized"], true);
    assert!(capped["summary"].as_str().unwrap().contains("Narrow with"));

    // A frame as a picture.
    let frame_id = instance["ImageFrames"][0]["ID"].as_str().unwrap();
    let frame = mcp
        .call(
            "get_image_frame",
            json!({"datastore_id": ds, "image_set_id": set, "image_frame_id": frame_id, "max_size": 64}),
        )
        .await;
    let facts = structured(&frame);
    assert_eq!(facts["checksum_matches"], true, "{facts}");
    let image = frame.content[0].as_image().expect("an image block");
    assert_eq!(image.mime_type, "image/png");
    let png_bytes = base64::engine::general_purpose::STANDARD
        .decode(&image.data)
        .unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert!(info.width.max(info.height) <= 64);
    assert_eq!(
        [info.width, info.height],
        [
            facts["rendered_size"][0].as_u64().unwrap() as u32,
            facts["rendered_size"][1].as_u64().unwrap() as u32
        ]
    );
    insta::assert_json_snapshot!("get_image_frame", redacted(&facts));

    // The metadata resource template.
    let uri = format!("healthimaging://datastore/{ds}/imageset/{set}/metadata");
    let resource = mcp
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    let body = match &resource.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("text expected: {other:?}"),
    };
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["ImageSetID"], set.as_str());

    // Bad input is a clear tool error.
    let three = mcp
        .call(
            "search_image_sets",
            json!({"datastore_id": ds, "filters": [
                {"attribute": "DICOMPatientId", "operator": "EQUAL", "values": ["a"]},
                {"attribute": "DICOMPatientId", "operator": "EQUAL", "values": ["b"]},
                {"attribute": "isPrimary", "operator": "EQUAL", "values": [true]}]}),
        )
        .await;
    assert_eq!(three.is_error, Some(true));
    assert!(text(&three).contains("at most two"), "{}", text(&three));
    let wrong = mcp
        .call(
            "search_image_sets",
            json!({"datastore_id": ds, "filters": [
                {"attribute": "DICOMPatientId", "operator": "BETWEEN", "values": ["a", "b"]}]}),
        )
        .await;
    assert!(text(&wrong).contains("EQUAL"), "{}", text(&wrong));
    let missing = mcp
        .call(
            "get_image_frame",
            json!({"datastore_id": ds, "image_set_id": set, "image_frame_id": "0".repeat(32)}),
        )
        .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).starts_with("NotFound"), "{}", text(&missing));
}

#[tokio::test]
async fn start_dicom_import_job_waits_and_reports_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, _) = demo_emulator(dir.path()).await;
    let manifest = healthimaging_e2e::write_fixtures(
        healthimaging_fixtures::FixtureSet::Ci,
        emulator.s3_root(),
        "incoming",
        "ci",
    );
    let mcp = Mcp::connect_with_s3(
        sdk,
        Grant::ALL,
        Duration::from_secs(300),
        Some(emulator.s3_root().to_owned()),
    )
    .await;
    let created = structured(
        &mcp.call("create_datastore", json!({"datastore_name": "ci"}))
            .await,
    );
    let ds = created["datastore"]["datastore_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let arguments = json!({
        "datastore_id": ds,
        "input_s3_uri": "s3://incoming/ci/dicom/",
        "output_s3_uri": "s3://incoming/out/",
        "data_access_role_arn": "arn:aws:iam::123456789012:role/Import",
        "wait": true,
    });
    let done = structured(&mcp.call("start_dicom_import_job", arguments.clone()).await);
    assert_eq!(done["job"]["job_status"], "COMPLETED", "{done}");
    assert_eq!(done["outcome"]["imported_files"], manifest.totals.instances);
    let failed: Vec<&str> = done["outcome"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["inputFile"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), manifest.expected_import.failures.len());
    assert!(done["summary"].as_str().unwrap().contains("files failed"));

    let mut missing_role = arguments.clone();
    missing_role
        .as_object_mut()
        .unwrap()
        .remove("data_access_role_arn");
    let refused = mcp.call("start_dicom_import_job", missing_role).await;
    assert_eq!(refused.is_error, Some(true), "the role is required");
    let mut bad_uri = arguments;
    bad_uri["input_s3_uri"] = json!("https://example.com/x");
    assert_eq!(
        mcp.call("start_dicom_import_job", bad_uri).await.is_error,
        Some(true)
    );
}
