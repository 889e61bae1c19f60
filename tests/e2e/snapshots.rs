//! Snapshots: a prepared state written once, restored later (into the same
//! emulator after changes, or into a new one at its start), exactly as it
//! was: datastores, image sets, versions, metadata and frames.

use aws_sdk_medicalimaging::types::ImageFrameInformation;
use healthimaging_e2e::{Fixture, all_image_sets, metadata, write_fixtures};
use healthimaging_emulator::{Emulator, EmulatorConfig};
use healthimaging_fixtures::FixtureSet;
use serde_json::{Value, json};

/// Every image set's ID, version and metadata document, in ID order.
async fn state(sdk: &aws_sdk_medicalimaging::Client, ds: &str) -> Vec<(String, i32, Value)> {
    let mut state = Vec::new();
    for set in all_image_sets(sdk, ds).await {
        let id = set.image_set_id().to_owned();
        let document = metadata(sdk, ds, &id, None).await;
        state.push((id, set.version().unwrap_or(0), document));
    }
    state.sort_by(|a, b| a.0.cmp(&b.0));
    state
}

async fn first_frame(
    sdk: &aws_sdk_medicalimaging::Client,
    ds: &str,
    set: &str,
    document: &Value,
) -> Vec<u8> {
    let frame = document["Study"]["Series"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["Instances"].as_object().unwrap().values())
        .find_map(|i| i["ImageFrames"][0]["ID"].as_str())
        .unwrap()
        .to_owned();
    sdk.get_image_frame()
        .datastore_id(ds)
        .image_set_id(set)
        .image_frame_information(
            ImageFrameInformation::builder()
                .image_frame_id(frame)
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
        .to_vec()
}

#[tokio::test]
async fn a_snapshot_restores_the_state_it_was_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, snapshots) = (dir.path().join("s3"), dir.path().join("snapshots"));
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| {
        let mut c = c.with_s3_root(&s3);
        c.snapshot_dir = Some(snapshots.clone());
        c
    })
    .await;
    let ds = fx.active_datastore("prepared").await;
    fx.import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    let prepared = state(&fx.sdk, &ds).await;
    let (set, _, document) = prepared
        .iter()
        .find(|(_, _, d)| {
            d["Study"]["Series"].as_object().unwrap().values().any(|s| {
                s["Instances"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|i| i["ImageFrames"][0]["ID"].is_string())
            })
        })
        .unwrap()
        .clone();
    let frame = first_frame(&fx.sdk, &ds, &set, &document).await;

    let (status, taken) = fx
        .control(
            "POST",
            "/_emulator/snapshot",
            Some(json!({"name": "ci-ready"})),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["imageSets"], prepared.len());
    let (status, again) = fx
        .control(
            "POST",
            "/_emulator/snapshot",
            Some(json!({"name": "ci-ready"})),
        )
        .await;
    assert_eq!(status, 409, "a name is taken once: {again}");
    let (status, _) = fx
        .control(
            "POST",
            "/_emulator/snapshot",
            Some(json!({"name": "../escape"})),
        )
        .await;
    assert_eq!(status, 400, "names stay in the snapshot folder");

    // Change everything: delete an image set, add a datastore.
    fx.sdk
        .delete_image_set()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap();
    fx.settle();
    fx.active_datastore("later").await;
    assert_ne!(state(&fx.sdk, &ds).await.len(), prepared.len());

    let (status, restored) = fx
        .control(
            "POST",
            "/_emulator/restore",
            Some(json!({"name": "ci-ready"})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(
        state(&fx.sdk, &ds).await,
        prepared,
        "exactly the prepared state"
    );
    assert_eq!(first_frame(&fx.sdk, &ds, &set, &document).await, frame);
    let datastores = fx.sdk.list_datastores().send().await.unwrap();
    assert_eq!(
        datastores.datastore_summaries().len(),
        1,
        "the later datastore is gone"
    );
    let (status, _) = fx
        .control(
            "POST",
            "/_emulator/restore",
            Some(json!({"name": "missing"})),
        )
        .await;
    assert_eq!(status, 404);

    // A new emulator, with a data directory, starts from the snapshot.
    let data = dir.path().join("data");
    let config = EmulatorConfig {
        restore_snapshot: Some(snapshots.join("ci-ready")),
        ..EmulatorConfig::default()
            .with_data_dir(&data)
            .with_s3_root(&s3)
    };
    let started = Emulator::start(config).await.unwrap();
    let sdk = healthimaging_mcp::backend::emulator_client(
        started.url(),
        healthimaging_e2e::fast_tuning(),
    );
    assert_eq!(state(&sdk, &ds).await, prepared);
    assert_eq!(first_frame(&sdk, &ds, &set, &document).await, frame);
    // Its own restore is refused without allow_reset: it would replace a data directory.
    let (status, _, body) = healthimaging_e2e::raw_http(
        started.url(),
        "POST",
        "/_emulator/restore",
        &[("Content-Type", "application/json")],
        r#"{"name":"ci-ready"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    started.shutdown().await.unwrap();
}
