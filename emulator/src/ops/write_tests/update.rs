//! UpdateImageSetMetadata: versions, locks, failures, revert, study-wide
//! updates and forced identifier changes.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{A, B, C, World, removals, study_description, updates};
use crate::testing::{send, series_document};

#[tokio::test]
async fn an_update_locks_then_settles_as_a_new_version_and_old_versions_stay() {
    let w = World::new().await;
    w.plant(
        A,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    let (status, _, body) = w
        .update(A, "latestVersion=1", study_description("CT CHEST"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["latestVersionId"], "2");
    assert_eq!(
        (
            body["imageSetState"].as_str(),
            body["imageSetWorkflowStatus"].as_str()
        ),
        (Some("LOCKED"), Some("UPDATING"))
    );
    assert_eq!(w.get(A).await["imageSetState"], "LOCKED");

    let (status, code, body) = w.update(A, "latestVersion=2", study_description("X")).await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::CONFLICT, Some("ConflictException")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("LOCKED"));
    let delete = w.uri(A, "deleteImageSet");
    let (status, _, _) = send(&w.service, Method::POST, &delete, "").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a LOCKED set cannot be deleted"
    );

    w.settle();
    let got = w.get(A).await;
    assert_eq!(
        (
            got["versionId"].as_str(),
            got["imageSetState"].as_str(),
            got["imageSetWorkflowStatus"].as_str()
        ),
        (Some("2"), Some("ACTIVE"), Some("UPDATED"))
    );
    let (status, _, body) = w.update(A, "latestVersion=1", study_description("X")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a stale latestVersionId is refused"
    );
    assert!(body["message"].as_str().unwrap().contains("latest is 2"));

    assert_eq!(
        w.metadata(A, 2).await["Study"]["DICOM"]["StudyDescription"],
        "CT CHEST"
    );
    assert_eq!(
        w.metadata(A, 1).await["Study"]["DICOM"]["StudyDescription"],
        "CT HEAD"
    );
    assert_eq!(
        w.versions(A).await,
        vec![
            ("2".into(), "ACTIVE".into(), "UPDATED".into()),
            ("1".into(), "ACTIVE".into(), "IMPORTED".into()),
        ]
    );
}

#[tokio::test]
async fn a_refused_change_consumes_a_version_with_a_message() {
    let w = World::new().await;
    w.plant(
        A,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    let wrong = removals(
        json!({"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyDescription": "MR KNEE"}}}),
    );
    let (status, _, body) = w.update(A, "latestVersion=1", wrong).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["latestVersionId"], "2");
    w.settle();
    let got = w.get(A).await;
    assert_eq!(got["imageSetWorkflowStatus"], "UPDATE_FAILED");
    assert!(
        got["message"].as_str().unwrap().contains("does not match"),
        "{got}"
    );
    assert_eq!(
        w.metadata(A, 2).await["Study"],
        w.metadata(A, 1).await["Study"]
    );
    let (status, _, _) = w
        .update(A, "latestVersion=2", study_description("OK"))
        .await;
    assert_eq!(status, StatusCode::OK, "a failed version is the latest one");
}

#[tokio::test]
async fn revert_restores_an_older_version_as_a_new_one() {
    let w = World::new().await;
    w.plant(
        A,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1", "1.2.3.2"]),
    );
    let remove_one = removals(
        json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.2": {}}}}}}),
    );
    assert_eq!(
        w.update(A, "latestVersion=1", remove_one).await.0,
        StatusCode::OK
    );
    w.settle();
    assert_eq!(
        w.metadata(A, 2).await["Study"]["Series"]["1.2.3"]["Instances"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let (status, _, body) = w
        .update(A, "latestVersion=2", json!({"revertToVersionId": "1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["latestVersionId"], "3");
    w.settle();
    assert_eq!(w.metadata(A, 3).await, w.metadata(A, 1).await);
    let cases = [
        (
            "latestVersion=3",
            json!({"revertToVersionId": "9"}),
            "no earlier version 9",
        ),
        (
            "latestVersion=3",
            json!({"revertToVersionId": "3"}),
            "no earlier version 3",
        ),
        (
            "latestVersion=3&includeStudyImageSets=true",
            json!({"revertToVersionId": "1"}),
            "revertToVersionId",
        ),
        (
            "latestVersion=3",
            json!({"revertToVersionId": "1", "DICOMUpdates": {"updatableAttributes": "e30="}}),
            "not both",
        ),
        ("latestVersion=3", json!({}), "provide DICOMUpdates"),
        (
            "latestVersion=x",
            json!({"revertToVersionId": "1"}),
            "latestVersionId",
        ),
        ("", json!({"revertToVersionId": "1"}), "latestVersionId"),
        (
            "latestVersion=3&force=yes",
            json!({"revertToVersionId": "1"}),
            "force",
        ),
        (
            "latestVersion=3",
            json!({"DICOMUpdates": {"updatableAttributes": "%%%"}}),
            "base64",
        ),
        (
            "latestVersion=3",
            updates(json!({"Patient": {}})),
            "SchemaVersion",
        ),
    ];
    for (query, body, expected) in cases {
        let (status, code, answer) = w.update(A, query, body.clone()).await;
        assert_eq!(
            (status, code.as_deref()),
            (StatusCode::BAD_REQUEST, Some("ValidationException")),
            "{query} {body}"
        );
        assert!(
            answer["message"].as_str().unwrap().contains(expected),
            "{query} {body}: {answer}"
        );
    }
}

#[tokio::test]
async fn study_wide_updates_reach_every_primary_set_of_the_study_and_only_those() {
    let w = World::new().await;
    w.plant(
        A,
        true,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    w.plant(
        B,
        true,
        series_document("SYN-1", "1.2", "1.2.4", &["1.2.4.1"]),
    );
    w.plant(
        C,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.9"]),
    );
    let rename = updates(
        json!({"SchemaVersion": "1.1", "Patient": {"DICOM": {"PatientName": "SYNTHETIC^RENAMED"}}}),
    );

    let (status, _, _) = w.update(A, "latestVersion=1", rename.clone()).await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    let refused = w.get(A).await;
    assert_eq!(refused["imageSetWorkflowStatus"], "UPDATE_FAILED");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("includeStudyImageSets"),
        "{refused}"
    );

    let (status, _, body) = w
        .update(A, "latestVersion=2&includeStudyImageSets=true", rename)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        w.get(B).await["imageSetWorkflowStatus"],
        "UPDATING_FOR_STUDY_CONSISTENCY"
    );
    w.settle();
    assert_eq!(
        w.metadata(A, 3).await["Patient"]["DICOM"]["PatientName"],
        "SYNTHETIC^RENAMED"
    );
    assert_eq!(
        w.metadata(B, 2).await["Patient"]["DICOM"]["PatientName"],
        "SYNTHETIC^RENAMED"
    );
    assert_eq!(
        w.get(C).await["versionId"],
        "1",
        "a non-primary image set is not part of it"
    );

    let series_level = updates(
        json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"DICOM": {"Modality": "MR"}}}}}),
    );
    let (status, _, body) = w
        .update(
            A,
            "latestVersion=3&includeStudyImageSets=true",
            series_level,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn forced_identifier_changes_are_searchable_and_marked() {
    let w = World::new().await;
    w.plant(
        A,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    let move_patient = updates(
        json!({"SchemaVersion": "1.1", "Patient": {"DICOM": {"PatientID": "SYN-2"}},
        "Study": {"DICOM": {"StudyInstanceUID": "1.5"}}}),
    );
    let (status, _, _) = w.update(A, "latestVersion=1", move_patient.clone()).await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    assert_eq!(
        w.get(A).await["imageSetWorkflowStatus"],
        "UPDATE_FAILED",
        "a UID needs force"
    );
    let (status, _, _) = w
        .update(A, "latestVersion=2&force=true", move_patient)
        .await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    let got = w.get(A).await;
    assert_eq!(got["overrides"], json!({"forced": true}));
    assert_eq!(w.search_patient("SYN-2").await, vec![A.to_owned()]);
    assert!(
        w.search_patient("SYN-1").await.is_empty(),
        "the index follows the update"
    );
}
