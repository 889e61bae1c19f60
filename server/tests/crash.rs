//! A standalone emulator killed (SIGKILL) in the middle of an import: the
//! restarted emulator resumes the job from its journal and ends with exactly
//! the image sets one uninterrupted import makes, none half-written.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::JobStatus;
use healthimaging_mcp::backend::emulator_client;
use healthimaging_mcp::sdk::Tuning;
use support::standalone_emulator;

async fn job_status(sdk: &Client, ds: &str, job: &str) -> JobStatus {
    sdk.get_dicom_import_job()
        .datastore_id(ds)
        .job_id(job)
        .send()
        .await
        .expect("job readable")
        .job_properties
        .expect("properties")
        .job_status
}

#[tokio::test]
async fn a_kill_during_import_leaves_a_consistent_store_that_finishes_the_job() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let s3 = home.path().join("s3");
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Demo,
        seed: 2,
        patients: None,
    };
    let manifest = healthimaging_fixtures::write(&spec, &s3.join("incoming").join("demo")).unwrap();
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-root",
        s3.to_str().unwrap(),
        "--transition-delay-ms",
        "0",
    ];
    let mut first = standalone_emulator(home.path(), &args).await;
    let sdk = emulator_client(&first.url, Tuning::default());
    let ds = sdk.create_datastore().send().await.unwrap().datastore_id;
    let job = sdk
        .start_dicom_import_job()
        .datastore_id(&ds)
        .data_access_role_arn("arn:aws:iam::123456789012:role/Import")
        .input_s3_uri("s3://incoming/demo/dicom/")
        .output_s3_uri("s3://incoming/out/")
        .send()
        .await
        .unwrap()
        .job_id;
    while job_status(&sdk, &ds, &job).await == JobStatus::Submitted {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();

    let second = standalone_emulator(home.path(), &args).await;
    let sdk = emulator_client(&second.url, Tuning::default());
    let mut status = job_status(&sdk, &ds, &job).await;
    for _ in 0..2400 {
        if status == JobStatus::Completed || status == JobStatus::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = job_status(&sdk, &ds, &job).await;
    }
    assert_eq!(
        status,
        JobStatus::Completed,
        "the restarted emulator finishes the job"
    );

    let mut sets = Vec::new();
    let mut pages = sdk
        .search_image_sets()
        .datastore_id(&ds)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        sets.extend(page.unwrap().image_sets_metadata_summaries().to_vec());
    }
    assert_eq!(
        sets.len(),
        manifest.expected_import.image_sets.len(),
        "one import's image sets, none from the interrupted run"
    );
    let mut sops = BTreeSet::new();
    for set in &sets {
        assert_eq!(set.version(), Some(1));
        let metadata = sdk
            .get_image_set_metadata()
            .datastore_id(&ds)
            .image_set_id(set.image_set_id())
            .send()
            .await
            .expect("every image set's metadata is there");
        let bytes = metadata
            .image_set_metadata_blob
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        let count = set
            .dicom_tags()
            .unwrap()
            .dicom_number_of_study_related_instances();
        sops.insert((set.image_set_id().to_owned(), count));
    }
    let instances: i32 = sops.iter().map(|(_, n)| n).sum();
    assert_eq!(
        instances as usize, manifest.totals.instances,
        "every instance exactly once"
    );
}
