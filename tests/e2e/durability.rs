//! `--data-dir`: a restarted emulator keeps every datastore, image set,
//! version, frame, tag and job, byte for byte.

use aws_sdk_medicalimaging::types::{ImageFrameInformation, JobStatus};
use healthimaging_e2e::{all_image_sets, fast_tuning, metadata, wait_for_job, write_fixtures};
use healthimaging_emulator::{Emulator, EmulatorConfig};
use healthimaging_fixtures::FixtureSet;
use healthimaging_mcp::backend::emulator_client;

fn config(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig::default()
        .with_seed(11)
        .with_transition_delay(std::time::Duration::ZERO)
        .with_data_dir(dir.join("data"))
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let first = Emulator::start(config(dir.path())).await.unwrap();
    write_fixtures(FixtureSet::Ci, first.s3_root(), "fixtures", "ci");
    let sdk = emulator_client(first.url(), fast_tuning());
    let ds = sdk
        .create_datastore()
        .datastore_name("kept")
        .tags("team", "imaging")
        .send()
        .await
        .unwrap()
        .datastore_id;
    let job = sdk
        .start_dicom_import_job()
        .datastore_id(&ds)
        .data_access_role_arn("arn:aws:iam::123456789012:role/Import")
        .input_s3_uri("s3://fixtures/ci/dicom/")
        .output_s3_uri("s3://fixtures/out/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait_for_job(&sdk, &ds, &job.job_id).await.job_status(),
        &JobStatus::Completed
    );
    let before = all_image_sets(&sdk, &ds).await;
    // An image set with a frame (a report has none).
    let mut found = None;
    for summary in &before {
        let set = summary.image_set_id().to_owned();
        let document = metadata(&sdk, &ds, &set, Some("1")).await;
        let frame = document["Study"]["Series"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|s| s["Instances"].as_object().unwrap().values())
            .find_map(|i| i["ImageFrames"][0]["ID"].as_str().map(str::to_owned));
        if let Some(frame) = frame {
            found = Some((set, document, frame));
            break;
        }
    }
    let (set, document, frame_id) = found.expect("an image set with a frame");
    let frame = |sdk: aws_sdk_medicalimaging::Client, ds: String, set: String, id: String| async move {
        sdk.get_image_frame()
            .datastore_id(ds)
            .image_set_id(set)
            .image_frame_information(
                ImageFrameInformation::builder()
                    .image_frame_id(id)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .image_frame_blob
            .collect()
            .await
            .unwrap()
            .into_bytes()
    };
    let frame_before = frame(sdk.clone(), ds.clone(), set.clone(), frame_id.clone()).await;
    first.shutdown().await.unwrap();

    let second = Emulator::start(config(dir.path())).await.unwrap();
    let sdk = emulator_client(second.url(), fast_tuning());
    let got = sdk.get_datastore().datastore_id(&ds).send().await.unwrap();
    assert_eq!(got.datastore_properties().unwrap().datastore_name(), "kept");
    let after = all_image_sets(&sdk, &ds).await;
    assert_eq!(after, before, "every image set, summary for summary");
    assert_eq!(metadata(&sdk, &ds, &set, Some("1")).await, document);
    assert_eq!(
        frame(sdk.clone(), ds.clone(), set.clone(), frame_id).await,
        frame_before
    );
    let jobs = sdk
        .list_dicom_import_jobs()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.job_summaries()[0].job_status(), &JobStatus::Completed);
    let arn = got
        .datastore_properties()
        .unwrap()
        .datastore_arn()
        .unwrap()
        .to_owned();
    let tags = sdk
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().get("team").map(String::as_str), Some("imaging"));

    // New resources never reuse the first run's IDs.
    let another = sdk.create_datastore().send().await.unwrap().datastore_id;
    assert_ne!(another, ds);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_temporary_s3_folder_goes_with_the_emulator_and_a_given_one_stays() {
    let emulator = Emulator::start(EmulatorConfig::default().with_seed(1))
        .await
        .unwrap();
    let temporary = emulator.s3_root().to_owned();
    let sdk = emulator_client(emulator.url(), fast_tuning());
    sdk.list_datastores().send().await.unwrap();
    std::fs::write(temporary.join("object"), b"x").unwrap();
    emulator.shutdown().await.unwrap();
    assert!(
        !temporary.exists(),
        "{} was left behind",
        temporary.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("s3");
    let emulator = Emulator::start(EmulatorConfig::default().with_s3_root(&given))
        .await
        .unwrap();
    std::fs::write(given.join("object"), b"x").unwrap();
    emulator.shutdown().await.unwrap();
    assert!(
        given.join("object").exists(),
        "the caller's folder is the caller's"
    );
}

#[tokio::test]
async fn acknowledged_updates_copies_and_deletes_survive_a_restart() {
    use aws_sdk_medicalimaging::primitives::Blob;
    use aws_sdk_medicalimaging::types::{
        CopyImageSetInformation, CopySourceImageSetInformation, DicomUpdates, ImageSetState,
        ImageSetWorkflowStatus, MetadataUpdates,
    };
    let dir = tempfile::tempdir().unwrap();
    let first = Emulator::start(config(dir.path())).await.unwrap();
    write_fixtures(FixtureSet::Ci, first.s3_root(), "fixtures", "ci");
    let sdk = emulator_client(first.url(), fast_tuning());
    let ds = sdk.create_datastore().send().await.unwrap().datastore_id;
    let job = sdk
        .start_dicom_import_job()
        .datastore_id(&ds)
        .data_access_role_arn("arn:aws:iam::123456789012:role/Import")
        .input_s3_uri("s3://fixtures/ci/dicom/")
        .output_s3_uri("s3://fixtures/out/")
        .send()
        .await
        .unwrap();
    wait_for_job(&sdk, &ds, &job.job_id).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let (updated, deleted) = (sets[0].image_set_id(), sets[1].image_set_id());
    let change = r#"{"SchemaVersion":"1.1","Study":{"DICOM":{"StudyDescription":"KEPT"}}}"#;
    sdk.update_image_set_metadata()
        .datastore_id(&ds)
        .image_set_id(updated)
        .latest_version_id(sets[0].version().unwrap().to_string())
        .update_image_set_metadata_updates(MetadataUpdates::DicomUpdates(
            DicomUpdates::builder()
                .updatable_attributes(Blob::new(change))
                .build(),
        ))
        .send()
        .await
        .unwrap();
    let copy = sdk
        .copy_image_set()
        .datastore_id(&ds)
        .source_image_set_id(deleted)
        .copy_image_set_information(
            CopyImageSetInformation::builder()
                .source_image_set(
                    CopySourceImageSetInformation::builder()
                        .latest_version_id(sets[1].version().unwrap().to_string())
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .destination_image_set_properties
        .unwrap()
        .image_set_id;
    sdk.delete_image_set()
        .datastore_id(&ds)
        .image_set_id(deleted)
        .send()
        .await
        .unwrap();
    let before = all_image_sets(&sdk, &ds).await;
    let copied_document = metadata(&sdk, &ds, &copy, None).await;
    first.shutdown().await.unwrap();

    let second = Emulator::start(config(dir.path())).await.unwrap();
    let sdk = emulator_client(second.url(), fast_tuning());
    assert_eq!(all_image_sets(&sdk, &ds).await, before);
    let doc = metadata(&sdk, &ds, updated, None).await;
    assert_eq!(doc["Study"]["DICOM"]["StudyDescription"], "KEPT");
    let versions = sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(updated)
        .send()
        .await
        .unwrap();
    let newest = &versions.image_set_properties_list()[0];
    assert_eq!(
        newest.image_set_workflow_status(),
        Some(&ImageSetWorkflowStatus::Updated)
    );
    assert_eq!(metadata(&sdk, &ds, &copy, None).await, copied_document);
    let gone = sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(deleted)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.image_set_state(), &ImageSetState::Deleted);
    second.shutdown().await.unwrap();
}
