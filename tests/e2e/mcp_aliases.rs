//! Calls written for the AWS Labs reference server: its argument names and
//! API-shaped structures reach the same tools and give the same answers as
//! this server's own names.

use std::time::Duration;

use healthimaging_e2e::{Mcp, demo_emulator, structured};
use healthimaging_mcp::permissions::Grant;
use serde_json::{Value, json};

fn ids(result: &Value) -> Vec<String> {
    let mut ids: Vec<String> = result["image_sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|set| set["image_set_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The JSON-RPC error of a call refused before it reached its tool.
async fn refused(mcp: &Mcp, tool: &'static str, arguments: Value) -> String {
    mcp.client
        .call_tool(healthimaging_e2e::request(tool, arguments))
        .await
        .expect_err("the call is refused")
        .to_string()
}

#[tokio::test]
async fn reference_server_calls_reach_the_same_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect(sdk, Grant::ALL, Duration::from_secs(300)).await;

    // A patient with more than one image set.
    let all = structured(
        &mcp.call(
            "search_image_sets",
            json!({"datastore_id": ds, "limit": 1000}),
        )
        .await,
    );
    let sets = all["image_sets"].as_array().unwrap();
    let patient = sets
        .iter()
        .map(|set| set["patient_id"].as_str().unwrap())
        .find(|patient| {
            sets.iter()
                .filter(|set| set["patient_id"] == *patient)
                .count()
                > 1
        })
        .expect("the demo set has a patient with several image sets")
        .to_owned();

    // max_results is limit.
    let one = structured(
        &mcp.call(
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": patient, "max_results": 1}),
        )
        .await,
    );
    assert_eq!(one["count"], 1);
    assert_eq!(one["truncated"], true);

    // search_criteria is the API's SearchCriteria.
    let ours = structured(
        &mcp.call(
            "search_image_sets",
            json!({"datastore_id": ds, "filters": [
                {"attribute": "DICOMPatientId", "operator": "EQUAL", "values": [patient]}
            ], "sort_field": "createdAt", "sort_order": "ASC"}),
        )
        .await,
    );
    let theirs = structured(
        &mcp.call(
            "search_image_sets",
            json!({"datastore_id": ds, "search_criteria": {
                "filters": [{"values": [{"DICOMPatientId": patient}], "operator": "EQUAL"}],
                "sort": {"sortField": "createdAt", "sortOrder": "ASC"}
            }}),
        )
        .await,
    );
    assert!(ours["count"].as_u64().unwrap() > 1);
    assert_eq!(ours["image_sets"], theirs["image_sets"]);

    // image_frame_information names the frame.
    let set = ours["image_sets"][0]["image_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let metadata = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set}),
        )
        .await,
    );
    let series = metadata["metadata"]["Study"]["Series"].as_object().unwrap();
    let instance = series.values().next().unwrap()["Instances"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let frame_id = instance["ImageFrames"][0]["ID"].as_str().unwrap();
    let frame = mcp
        .call(
            "get_image_frame",
            json!({"datastore_id": ds, "image_set_id": set,
                   "image_frame_information": {"imageFrameId": frame_id}, "max_size": 32}),
        )
        .await;
    assert_ne!(frame.is_error, Some(true), "{frame:?}");
    assert!(frame.content[0].as_image().is_some());

    // update_image_set_metadata_updates is the API's MetadataUpdates, its
    // document as JSON text.
    let updated = structured(
        &mcp.call(
            "update_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set, "latest_version_id": "1",
                   "update_image_set_metadata_updates": {"DICOMUpdates": {
                       "updatableAttributes":
                           "{\"SchemaVersion\":1.1,\"Study\":{\"DICOM\":{\"StudyDescription\":\"ALIASED\"}}}"
                   }}}),
        )
        .await,
    );
    assert_eq!(updated["result"]["version_id"], "2", "{updated}");
    let reread = structured(
        &mcp.call(
            "get_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set, "summary_only": true}),
        )
        .await,
    );
    assert!(reread.to_string().contains("ALIASED"), "{reread}");
    let reverted = structured(
        &mcp.call(
            "update_image_set_metadata",
            json!({"datastore_id": ds, "image_set_id": set,
                   "update_image_set_metadata_updates": {"revertToVersionId": "1"}}),
        )
        .await,
    );
    assert_eq!(reverted["result"]["version_id"], "3", "{reverted}");

    // copy_image_set_information is the API's CopyImageSetInformation.
    let copied = structured(
        &mcp.call(
            "copy_image_set",
            json!({"datastore_id": ds, "source_datastore_id": ds, "source_image_set_id": set,
                   "copy_image_set_information": {"sourceImageSet": {"latestVersionId": "3"}}}),
        )
        .await,
    );
    assert_eq!(copied["destination"]["outcome"], "done", "{copied}");
    assert_ne!(copied["destination"]["image_set_id"], set.as_str());

    // criteria and max_deletions: the preview covers the patient's image sets.
    let preview = structured(
        &mcp.call(
            "bulk_delete_by_criteria",
            json!({"datastore_id": ds, "criteria": {"DICOMPatientId": patient},
                   "max_deletions": 100}),
        )
        .await,
    );
    assert_eq!(preview["phase"], "preview");
    let previewed: Vec<&str> = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["image_set_id"].as_str().unwrap())
        .collect();
    let now = structured(
        &mcp.call(
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": patient}),
        )
        .await,
    );
    let mut previewed: Vec<String> = previewed.into_iter().map(str::to_owned).collect();
    previewed.sort();
    assert_eq!(previewed, ids(&now));

    // A criterion the API cannot search by is refused, as with our own names.
    let modality = mcp
        .call(
            "bulk_delete_by_criteria",
            json!({"datastore_id": ds, "criteria": {"DICOMModality": "CT"}}),
        )
        .await;
    assert_eq!(modality.is_error, Some(true), "{modality:?}");

    // Both spellings at once, or a malformed structure: refused by name.
    assert!(
        refused(
            &mcp,
            "search_by_patient_id",
            json!({"datastore_id": ds, "patient_id": patient, "max_results": 1, "limit": 2}),
        )
        .await
        .contains("pass limit or max_results, not both")
    );
    assert!(
        refused(
            &mcp,
            "copy_image_set",
            json!({"datastore_id": ds, "source_datastore_id": "0".repeat(32),
                   "source_image_set_id": set}),
        )
        .await
        .contains("HealthImaging copies within one datastore")
    );
}
