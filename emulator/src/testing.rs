//! Helpers for the crate's own tests: requests straight into the router.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::clock::{ManualClock, Timestamp};
use crate::config::EmulatorConfig;
use crate::server::router;
use crate::service::Service;
use crate::store::{ImageSet, ImageSetState, ImageSetVersion, WorkflowStatus};

/// An emulator with a manual clock and a 100 ms transition delay.
pub(crate) fn service() -> (Arc<Service>, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    let config = EmulatorConfig::default()
        .with_seed(1)
        .with_clock(Arc::new(clock.clone()))
        .with_transition_delay(Duration::from_millis(100));
    (Service::start(config).expect("emulator starts"), clock)
}

/// Sends one request through the router.
async fn respond(
    service: &Arc<Service>,
    method: Method,
    uri: &str,
    body: &str,
) -> axum::response::Response {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .expect("valid request");
    router(service.clone())
        .oneshot(request)
        .await
        .expect("infallible")
}

/// Sends one request and returns the status, the error type header and the body.
pub(crate) async fn send(
    service: &Arc<Service>,
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let response = respond(service, method, uri, body).await;
    let error_type = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, bytes) = collected(response).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, error_type, json)
}

/// Sends one request and returns the raw response body.
pub(crate) async fn send_raw(
    service: &Arc<Service>,
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, axum::body::Bytes) {
    collected(respond(service, method, uri, body).await).await
}

async fn collected(response: axum::response::Response) -> (StatusCode, axum::body::Bytes) {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, bytes)
}

/// Creates an ACTIVE datastore (the clock is moved past the delay).
pub(crate) async fn active_datastore(service: &Arc<Service>, clock: &ManualClock) -> String {
    let (status, _, body) = send(
        service,
        Method::POST,
        "/datastore",
        r#"{"clientToken":"t-1"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    clock.advance(Duration::from_millis(100));
    body["datastoreId"]
        .as_str()
        .expect("datastoreId")
        .to_owned()
}

/// Puts an image set into `datastore_id` directly, without a document.
pub(crate) fn plant_image_set(service: &Service, datastore_id: &str, image_set_id: &str) {
    let set = planted(
        service,
        datastore_id,
        image_set_id,
        true,
        Default::default(),
        String::new(),
    );
    service.store().put_image_set(set);
}

/// An image set at version 1, imported now.
fn planted(
    service: &Service,
    datastore_id: &str,
    image_set_id: &str,
    primary: bool,
    tags: crate::store::DicomTags,
    metadata_key: String,
) -> ImageSet {
    let now = service.now();
    ImageSet {
        id: image_set_id.to_owned(),
        datastore_id: datastore_id.to_owned(),
        is_primary: primary,
        created_at: now,
        tags: Default::default(),
        versions: vec![ImageSetVersion {
            version_id: 1,
            state: ImageSetState::Active,
            workflow_status: WorkflowStatus::Imported,
            created_at: now,
            updated_at: now,
            message: None,
            forced: false,
            tags,
            metadata_key,
        }],
        frames: Default::default(),
        lock: None,
    }
}

/// A synthetic metadata document of one series with `sops`, one frame each
/// (frame IDs `f<sop>` padded to 32 characters).
pub(crate) fn series_document(patient_id: &str, study: &str, series: &str, sops: &[&str]) -> Value {
    let instances: serde_json::Map<String, Value> = sops
        .iter()
        .map(|sop| {
            let frame = frame_id(sop);
            (
                (*sop).to_owned(),
                serde_json::json!({"DICOM": {"SOPInstanceUID": sop},
                    "ImageFrames": [{"ID": frame}]}),
            )
        })
        .collect();
    serde_json::json!({
        "Patient": {"DICOM": {"PatientID": patient_id, "PatientName": "SYNTHETIC^TEST"}},
        "Study": {"DICOM": {"StudyInstanceUID": study, "StudyDescription": "CT HEAD",
                "AccessionNumber": "SYN1"},
            "Series": {series: {"DICOM": {"SeriesInstanceUID": series, "Modality": "CT",
                "SeriesNumber": "1"}, "Instances": instances}}}
    })
}

/// The frame ID `series_document` gives the instance `sop`.
pub(crate) fn frame_id(sop: &str) -> String {
    let digits: String = sop.chars().filter(char::is_ascii_digit).collect();
    format!("{digits:f>32}")
}

/// Puts an image set with `document` as its version 1 into `datastore_id`.
pub(crate) fn plant_document(
    service: &Service,
    datastore_id: &str,
    image_set_id: &str,
    primary: bool,
    document: Value,
) {
    let document = crate::metadata::with_identity(document, datastore_id, image_set_id);
    let key = crate::blobs::metadata_key(image_set_id, 1);
    service
        .blobs
        .put(&key, &crate::metadata::stored::gzip(&document))
        .expect("blob stored");
    for id in crate::metadata::combine::frame_ids(&document) {
        service
            .blobs
            .put(&crate::blobs::frame_key(&id), id.as_bytes())
            .expect("frame stored");
    }
    let tags = crate::store::DicomTags::of_document(&document);
    let mut set = planted(service, datastore_id, image_set_id, primary, tags, key);
    set.frames = crate::metadata::combine::frame_ids(&document)
        .into_iter()
        .map(|id| (id, "1.2.840.10008.1.2.4.202".to_owned()))
        .collect();
    service.store().put_image_set(set);
}
