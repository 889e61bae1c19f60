//! CopyImageSet and DeleteImageSet.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{A, B, C, World, study_description};
use crate::testing::{frame_id, send, send_raw, series_document};

#[tokio::test]
async fn a_copy_makes_a_new_set_sharing_frames_and_locks_its_source_read_only() {
    let w = World::new().await;
    w.plant(
        A,
        true,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1", "1.2.3.2"]),
    );
    let selection = json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.2": {}}}}}});
    let body = json!({"sourceImageSet": {"latestVersionId": "1",
        "DICOMCopies": {"copiableAttributes": selection.to_string()}}});
    let (status, _, answer) = w.copy(A, "", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let source = &answer["sourceImageSetProperties"];
    assert_eq!(
        (
            source["latestVersionId"].as_str(),
            source["imageSetWorkflowStatus"].as_str()
        ),
        (Some("1"), Some("COPYING_WITH_READ_ONLY_ACCESS"))
    );
    let destination = &answer["destinationImageSetProperties"];
    assert_eq!(
        (
            destination["latestVersionId"].as_str(),
            destination["imageSetState"].as_str(),
            destination["imageSetWorkflowStatus"].as_str()
        ),
        (Some("1"), Some("LOCKED"), Some("COPYING"))
    );
    let copy = destination["imageSetId"].as_str().unwrap().to_owned();
    assert!(
        destination["imageSetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("imageset/{copy}"))
    );
    assert_eq!(
        w.update(A, "latestVersion=1", study_description("X"))
            .await
            .0,
        StatusCode::CONFLICT
    );

    w.settle();
    let got = w.get(&copy).await;
    assert_eq!(
        (
            got["isPrimary"].as_bool(),
            got["imageSetWorkflowStatus"].as_str()
        ),
        (Some(false), Some("COPIED"))
    );
    assert_eq!(
        w.get(A).await["imageSetWorkflowStatus"],
        "IMPORTED",
        "the source keeps its version and status"
    );
    let doc = w.metadata(&copy, 1).await;
    assert_eq!(doc["ImageSetID"], copy.as_str());
    let instances = doc["Study"]["Series"]["1.2.3"]["Instances"]
        .as_object()
        .unwrap();
    assert_eq!(instances.keys().collect::<Vec<_>>(), vec!["1.2.3.2"]);
    let frame = json!({"imageFrameId": frame_id("1.2.3.2")}).to_string();
    let (status, bytes) = send_raw(
        &w.service,
        Method::POST,
        &w.uri(&copy, "getImageFrame"),
        &frame,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &bytes[..],
        frame_id("1.2.3.2").as_bytes(),
        "the copy serves the source's frame blob"
    );
    assert_eq!(w.search_patient("SYN-1").await.len(), 2);
}

#[tokio::test]
async fn copies_into_a_destination_merge_fail_or_force() {
    let w = World::new().await;
    w.plant(
        A,
        false,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    w.plant(
        B,
        true,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.2"]),
    );
    w.plant(
        C,
        false,
        series_document("SYN-1", "1.2", "1.2.9", &["1.2.9.1"]),
    );
    let into = |dest: &str, version: &str, source_version: &str| {
        json!({
        "sourceImageSet": {"latestVersionId": source_version},
        "destinationImageSet": {"imageSetId": dest, "latestVersionId": version}})
    };

    let (status, _, answer) = w.copy(A, "", into(B, "1", "1")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["destinationImageSetProperties"]["latestVersionId"],
        "2"
    );
    w.settle();
    let merged = w.metadata(B, 2).await;
    assert_eq!(
        merged["Study"]["Series"]["1.2.3"]["Instances"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(w.get(B).await["isPrimary"], true);

    let (status, _, _) = w.copy(C, "", into(B, "2", "1")).await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    let failed = w.get(B).await;
    assert_eq!(
        (
            failed["versionId"].as_str(),
            failed["imageSetWorkflowStatus"].as_str()
        ),
        (Some("3"), Some("COPY_FAILED"))
    );
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("Series of SourceImageSet and DestinationImageSet"),
        "{failed}"
    );

    let (status, _, _) = w.copy(C, "force=true", into(A, "1", "1")).await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    let forced = w.metadata(A, 2).await;
    assert_eq!(forced["Study"]["Series"].as_object().unwrap().len(), 2);

    let (status, _, _) = w.copy(A, "force=true", into(B, "3", "2")).await;
    assert_eq!(status, StatusCode::OK);
    w.settle();
    assert!(
        w.get(B).await["message"]
            .as_str()
            .unwrap()
            .contains("already in"),
        "an SOP instance is never in a set twice"
    );

    let errors = [
        (A, into(B, "1", "2"), StatusCode::CONFLICT, "latest is 4"),
        (
            A,
            into(A, "2", "2"),
            StatusCode::BAD_REQUEST,
            "differ from the source",
        ),
        (
            A,
            into(&"d".repeat(32), "1", "2"),
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
        (
            A,
            json!({"sourceImageSet": {}}),
            StatusCode::BAD_REQUEST,
            "latestVersionId",
        ),
        (
            A,
            json!({"sourceImageSet": {"latestVersionId": "2", "DICOMCopies": {"copiableAttributes": "{\"Study\":{\"Series\":{\"9\":{}}}}"}}}),
            StatusCode::BAD_REQUEST,
            "Series 9",
        ),
    ];
    for (source, body, expected_status, expected) in errors {
        let (status, _, answer) = w.copy(source, "", body.clone()).await;
        assert_eq!(status, expected_status, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(expected),
            "{body}: {answer}"
        );
    }
    let (status, _, answer) = w
        .copy(
            C,
            "promoteToPrimary=true",
            json!({"sourceImageSet": {"latestVersionId": "1"}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "series 1.2.9 has no primary set yet: {answer}"
    );
    w.settle();
    let promoted = answer["destinationImageSetProperties"]["imageSetId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.get(&promoted).await["isPrimary"], true);
    let (status, _, answer) = w
        .copy(
            C,
            "promoteToPrimary=true",
            json!({"sourceImageSet": {"latestVersionId": "1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains(&promoted));
}

#[tokio::test]
async fn a_deleted_set_leaves_search_reads_deleted_and_frees_its_datastore() {
    let w = World::new().await;
    w.plant(
        A,
        true,
        series_document("SYN-1", "1.2", "1.2.3", &["1.2.3.1"]),
    );
    let uri = w.uri(A, "deleteImageSet");
    let (status, _, body) = send(&w.service, Method::POST, &uri, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["imageSetState"].as_str(),
            body["imageSetWorkflowStatus"].as_str()
        ),
        (Some("LOCKED"), Some("DELETING"))
    );
    assert!(w.search_patient("SYN-1").await.is_empty());
    let (status, _, again) = send(&w.service, Method::POST, &uri, "").await;
    assert_eq!(
        (status, again["imageSetWorkflowStatus"].as_str()),
        (StatusCode::OK, Some("DELETING")),
        "a repeated delete answers the running one"
    );
    w.settle();
    let got = w.get(A).await;
    assert_eq!(
        (
            got["imageSetState"].as_str(),
            got["imageSetWorkflowStatus"].as_str()
        ),
        (Some("DELETED"), Some("DELETED"))
    );
    assert!(got["deletedAt"].is_number());
    let (status, _, again) = send(&w.service, Method::POST, &uri, "").await;
    assert_eq!(
        (status, again["imageSetState"].as_str()),
        (StatusCode::OK, Some("DELETED")),
        "idempotent"
    );
    assert_eq!(
        w.update(A, "latestVersion=1", study_description("X"))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (status, _, _) = send(
        &w.service,
        Method::DELETE,
        &format!("/datastore/{}", w.ds),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an empty datastore can be deleted");
}
