//! A standalone emulator killed (SIGKILL) in the middle of its work: the
//! restarted emulator has every write it acknowledged, resumes an
//! interrupted import after its last committed image set, and ends with
//! exactly the image sets one uninterrupted import makes, none half-written.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
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

/// What the writers of one cycle had acknowledged when the emulator died.
#[derive(Debug, Default)]
struct Acknowledged {
    /// The last value each writer's tag was acknowledged with.
    tags: BTreeMap<usize, u64>,
    /// Datastores whose creation was acknowledged.
    datastores: Vec<String>,
}

#[tokio::test]
async fn ten_kills_lose_no_acknowledged_write_and_the_import_ends_whole() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let s3 = home.path().join("s3");
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Demo,
        seed: 4,
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
        "--datastore-quota",
        "200",
    ];
    let quick = Tuning {
        max_attempts: 1,
        initial_backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(5),
    };
    let mut known = Acknowledged::default();
    let mut setup: Option<(String, String, String)> = None;
    // Cycles that started with the import committed only in part.
    let mut partial_imports = 0;
    for cycle in 0..10u64 {
        let mut emulator = standalone_emulator(home.path(), &args).await;
        let sdk = emulator_client(&emulator.url, quick);
        let (ds, arn, job) = match &setup {
            Some(setup) => setup.clone(),
            None => {
                let ds = sdk.create_datastore().send().await.unwrap().datastore_id;
                let arn = sdk
                    .get_datastore()
                    .datastore_id(&ds)
                    .send()
                    .await
                    .unwrap()
                    .datastore_properties
                    .unwrap()
                    .datastore_arn
                    .expect("an ARN");
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
                setup = Some((ds.clone(), arn.clone(), job.clone()));
                (ds, arn, job)
            }
        };
        // Everything acknowledged before the last kill is here.
        let tags = sdk
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap()
            .tags;
        for (writer, acked) in &known.tags {
            let found: u64 = tags
                .get(&format!("w{writer}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("cycle {cycle}: writer {writer}'s tag is lost"));
            assert!(
                found == *acked || found == acked + 1,
                "cycle {cycle}: writer {writer} was acknowledged {acked}, the store has {found}"
            );
        }
        for id in &known.datastores {
            sdk.get_datastore()
                .datastore_id(id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: datastore {id} is lost: {e:?}"));
        }
        let _ = job;
        let committed = count_image_sets(&sdk, &ds).await;
        if committed > 0 && committed < manifest.expected_import.image_sets.len() {
            partial_imports += 1;
        }
        let acknowledged = Arc::new(Mutex::new(Acknowledged {
            tags: known.tags.clone(),
            datastores: Vec::new(),
        }));
        let mut writers = Vec::new();
        for writer in 0..4usize {
            let sdk = sdk.clone();
            let arn = arn.clone();
            let acknowledged = acknowledged.clone();
            let start = known.tags.get(&writer).map_or(0, |v| v + 2);
            writers.push(tokio::spawn(async move {
                for value in start.. {
                    let tagged = sdk
                        .tag_resource()
                        .resource_arn(&arn)
                        .tags(format!("w{writer}"), value.to_string())
                        .send()
                        .await;
                    if tagged.is_err() {
                        break;
                    }
                    acknowledged.lock().unwrap().tags.insert(writer, value);
                    if writer == 0
                        && value % 25 == 0
                        && let Ok(created) = sdk.create_datastore().send().await
                    {
                        acknowledged
                            .lock()
                            .unwrap()
                            .datastores
                            .push(created.datastore_id);
                    }
                }
            }));
        }
        // Kill once the import has committed one more image set (so the
        // kill falls between two of its commits), after a little more work.
        for _ in 0..600 {
            let now = count_image_sets(&sdk, &ds).await;
            if now > committed || now == manifest.expected_import.image_sets.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis((cycle * 7919) % 60)).await;
        emulator.child.start_kill().unwrap();
        emulator.child.wait().await.unwrap();
        for writer in writers {
            writer.abort();
            let _ = writer.await;
        }
        let acknowledged = acknowledged.lock().unwrap();
        known.tags = acknowledged.tags.clone();
        known
            .datastores
            .extend(acknowledged.datastores.iter().cloned());
        assert!(!known.tags.is_empty(), "cycle {cycle}: the writers wrote");
    }

    assert!(
        partial_imports > 0,
        "some kill fell between two of the import's commits"
    );
    let (ds, _, job) = setup.unwrap();
    let emulator = standalone_emulator(home.path(), &args).await;
    let sdk = emulator_client(&emulator.url, Tuning::default());
    let mut status = job_status(&sdk, &ds, &job).await;
    for _ in 0..4800 {
        if status == JobStatus::Completed || status == JobStatus::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = job_status(&sdk, &ds, &job).await;
    }
    assert_eq!(status, JobStatus::Completed);
    let mut instances = 0;
    let mut sets = 0;
    let mut pages = sdk
        .search_image_sets()
        .datastore_id(&ds)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for set in page.unwrap().image_sets_metadata_summaries() {
            sets += 1;
            instances += set
                .dicom_tags()
                .unwrap()
                .dicom_number_of_study_related_instances();
        }
    }
    assert_eq!(sets, manifest.expected_import.image_sets.len());
    assert_eq!(
        instances as usize, manifest.totals.instances,
        "every instance exactly once across ten kills"
    );
}

async fn count_image_sets(sdk: &Client, ds: &str) -> usize {
    let mut count = 0;
    let mut pages = sdk
        .search_image_sets()
        .datastore_id(ds)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        count += page.unwrap().image_sets_metadata_summaries().len();
    }
    count
}
