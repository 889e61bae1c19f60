//! aws-sdk-medicalimaging against UpdateImageSetMetadata, CopyImageSet and
//! DeleteImageSet: responses the SDK parses, versions and locks, errors, and
//! concurrent writers racing for one version.

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use aws_sdk_medicalimaging::primitives::Blob;
use aws_sdk_medicalimaging::types::{
    CopyDestinationImageSet, CopyImageSetInformation, CopySourceImageSetInformation, DicomUpdates,
    ImageSetState, ImageSetWorkflowStatus, MetadataUpdates,
};
use healthimaging_e2e::{Fixture, all_image_sets, metadata, write_fixtures};
use healthimaging_fixtures::FixtureSet;
use serde_json::json;

/// An emulator with the `ci` set imported; the datastore and one primary
/// image set of it.
async fn imported() -> (Fixture, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx.active_datastore("writes").await;
    fx.import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    let primary = all_image_sets(&fx.sdk, &ds)
        .await
        .into_iter()
        .find(|s| s.is_primary() == Some(true) && s.version() == Some(1))
        .expect("a primary image set")
        .image_set_id()
        .to_owned();
    (fx, ds, primary, dir)
}

fn describe(text: &str) -> MetadataUpdates {
    let change = json!({"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": text}}});
    MetadataUpdates::DicomUpdates(
        DicomUpdates::builder()
            .updatable_attributes(Blob::new(change.to_string()))
            .build(),
    )
}

async fn update(
    sdk: &Client,
    ds: &str,
    set: &str,
    latest: &str,
    updates: MetadataUpdates,
) -> Result<
    aws_sdk_medicalimaging::operation::update_image_set_metadata::UpdateImageSetMetadataOutput,
    String,
> {
    sdk.update_image_set_metadata()
        .datastore_id(ds)
        .image_set_id(set)
        .latest_version_id(latest)
        .update_image_set_metadata_updates(updates)
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("none").to_owned())
}

async fn state(
    sdk: &Client,
    ds: &str,
    set: &str,
) -> (String, ImageSetState, Option<ImageSetWorkflowStatus>) {
    let got = sdk
        .get_image_set()
        .datastore_id(ds)
        .image_set_id(set)
        .send()
        .await
        .unwrap();
    (
        got.version_id().to_owned(),
        got.image_set_state().clone(),
        got.image_set_workflow_status().cloned(),
    )
}

#[tokio::test]
async fn update_revert_copy_and_delete_through_the_sdk() {
    let (fx, ds, set, _dir) = imported().await;
    let sdk = &fx.sdk;
    let out = update(sdk, &ds, &set, "1", describe("SYNTHETIC CORRECTED"))
        .await
        .unwrap();
    assert_eq!(out.latest_version_id(), "2");
    assert_eq!(out.image_set_state(), &ImageSetState::Locked);
    assert_eq!(
        out.image_set_workflow_status(),
        Some(&ImageSetWorkflowStatus::Updating)
    );
    assert_eq!(
        update(sdk, &ds, &set, "2", describe("X"))
            .await
            .unwrap_err(),
        "ConflictException"
    );
    let locked = sdk
        .delete_image_set()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        locked.code(),
        Some("ConflictException"),
        "a LOCKED image set cannot be deleted"
    );
    fx.settle();
    assert_eq!(
        state(sdk, &ds, &set).await,
        (
            "2".into(),
            ImageSetState::Active,
            Some(ImageSetWorkflowStatus::Updated)
        )
    );
    let v1 = metadata(sdk, &ds, &set, Some("1")).await;
    let v2 = metadata(sdk, &ds, &set, None).await;
    assert_eq!(
        v2["Study"]["DICOM"]["StudyDescription"],
        "SYNTHETIC CORRECTED"
    );
    assert_ne!(
        v1["Study"]["DICOM"]["StudyDescription"],
        v2["Study"]["DICOM"]["StudyDescription"]
    );

    let out = update(
        sdk,
        &ds,
        &set,
        "2",
        MetadataUpdates::RevertToVersionId("1".into()),
    )
    .await
    .unwrap();
    assert_eq!(out.latest_version_id(), "3");
    fx.settle();
    assert_eq!(
        metadata(sdk, &ds, &set, Some("3")).await,
        v1,
        "a revert restores the content"
    );
    assert_eq!(
        update(sdk, &ds, &set, "1", describe("X"))
            .await
            .unwrap_err(),
        "ConflictException"
    );
    assert_eq!(
        update(
            sdk,
            &ds,
            &set,
            "3",
            MetadataUpdates::RevertToVersionId("x".into())
        )
        .await
        .unwrap_err(),
        "ValidationException"
    );
    assert_eq!(
        update(sdk, &ds, &"0".repeat(32), "1", describe("X"))
            .await
            .unwrap_err(),
        "ResourceNotFoundException"
    );

    let copied = sdk
        .copy_image_set()
        .datastore_id(&ds)
        .source_image_set_id(&set)
        .copy_image_set_information(
            CopyImageSetInformation::builder()
                .source_image_set(
                    CopySourceImageSetInformation::builder()
                        .latest_version_id("3")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let source = copied.source_image_set_properties().unwrap();
    assert_eq!(
        source.image_set_workflow_status(),
        Some(&ImageSetWorkflowStatus::CopyingWithReadOnlyAccess)
    );
    let destination = copied.destination_image_set_properties().unwrap();
    assert_eq!(
        (
            destination.latest_version_id(),
            destination.image_set_state()
        ),
        ("1", Some(&ImageSetState::Locked))
    );
    let copy = destination.image_set_id().to_owned();
    assert!(destination.image_set_arn().unwrap().ends_with(&copy));
    fx.settle();
    let got = sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (got.is_primary(), got.image_set_workflow_status()),
        (Some(false), Some(&ImageSetWorkflowStatus::Copied))
    );

    let merge_back = sdk
        .copy_image_set()
        .datastore_id(&ds)
        .source_image_set_id(&copy)
        .copy_image_set_information(
            CopyImageSetInformation::builder()
                .source_image_set(
                    CopySourceImageSetInformation::builder()
                        .latest_version_id("1")
                        .build()
                        .unwrap(),
                )
                .destination_image_set(
                    CopyDestinationImageSet::builder()
                        .image_set_id(&set)
                        .latest_version_id("3")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        merge_back
            .destination_image_set_properties()
            .unwrap()
            .latest_version_id(),
        "4"
    );
    fx.settle();
    let failed = sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap();
    assert_eq!(
        failed.image_set_workflow_status(),
        Some(&ImageSetWorkflowStatus::CopyFailed)
    );
    assert!(
        failed
            .message()
            .unwrap()
            .contains("already in DestinationImageSet")
    );

    let copy_error = |source: &str, version: &str, destination: Option<(&str, &str)>| {
        let mut information = CopyImageSetInformation::builder().source_image_set(
            CopySourceImageSetInformation::builder()
                .latest_version_id(version)
                .build()
                .unwrap(),
        );
        if let Some((id, v)) = destination {
            information = information.destination_image_set(
                CopyDestinationImageSet::builder()
                    .image_set_id(id)
                    .latest_version_id(v)
                    .build()
                    .unwrap(),
            );
        }
        sdk.copy_image_set()
            .datastore_id(&ds)
            .source_image_set_id(source)
            .copy_image_set_information(information.build())
            .send()
    };
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or("none").to_owned();
    let into_itself = copy_error(&set, "4", Some((&set, "4"))).await.unwrap_err();
    assert_eq!(code(&into_itself), "ValidationException");
    let stale = copy_error(&set, "1", None).await.unwrap_err();
    assert_eq!(code(&stale), "ConflictException");
    let unknown = copy_error(&"0".repeat(32), "1", None).await.unwrap_err();
    assert_eq!(code(&unknown), "ResourceNotFoundException");
    let missing = sdk
        .delete_image_set()
        .datastore_id(&ds)
        .image_set_id("0".repeat(32))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");

    let deleted = sdk
        .delete_image_set()
        .datastore_id(&ds)
        .image_set_id(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            deleted.image_set_state(),
            deleted.image_set_workflow_status()
        ),
        (&ImageSetState::Locked, &ImageSetWorkflowStatus::Deleting)
    );
    fx.settle();
    let gone = sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.image_set_state(), &ImageSetState::Deleted);
    assert!(gone.deleted_at().is_some());
    assert!(
        all_image_sets(sdk, &ds)
            .await
            .iter()
            .all(|s| s.image_set_id() != copy)
    );
    let refused = sdk
        .delete_datastore()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some("ConflictException"),
        "image sets remain"
    );
}

#[tokio::test]
async fn sixty_four_racing_writers_of_one_version_get_exactly_one_new_version() {
    let (fx, ds, set, _dir) = imported().await;
    let writers = (0..64).map(|n| {
        let (sdk, ds, set) = (fx.sdk.clone(), ds.clone(), set.clone());
        tokio::spawn(async move {
            let text = format!("WRITER {n}");
            (
                text.clone(),
                update(&sdk, &ds, &set, "1", describe(&text)).await,
            )
        })
    });
    let mut winners = Vec::new();
    for writer in writers {
        let (text, result) = writer.await.unwrap();
        match result {
            Ok(out) => {
                assert_eq!(out.latest_version_id(), "2");
                winners.push(text);
            }
            Err(code) => assert_eq!(code, "ConflictException"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins version 2");
    fx.settle();
    let versions = fx
        .sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.image_set_properties_list().len(), 2);
    let doc = metadata(&fx.sdk, &ds, &set, None).await;
    assert_eq!(
        doc["Study"]["DICOM"]["StudyDescription"],
        winners[0].as_str(),
        "the winner's change is the one kept"
    );
}
