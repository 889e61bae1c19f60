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
use crate::store::ImageSetVersion;

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

/// An image set to put into the store directly.
pub(crate) struct Planted<'a> {
    pub(crate) datastore_id: &'a str,
    pub(crate) image_set_id: &'a str,
    pub(crate) primary: bool,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) tags: crate::store::DicomTags,
}

impl<'a> Planted<'a> {
    /// A primary image set imported now, without attributes.
    pub(crate) fn now(service: &Service, datastore_id: &'a str, image_set_id: &'a str) -> Self {
        Self {
            datastore_id,
            image_set_id,
            primary: true,
            created_at: service.now(),
            updated_at: service.now(),
            tags: Default::default(),
        }
    }
}

/// Puts `planted` into the store as version 1, with `document` if given
/// (its frames stored as blobs holding their own IDs).
pub(crate) fn plant(service: &Service, planted: Planted<'_>, document: Option<Value>) {
    service
        .store()
        .write(|w| {
            let metadata = match &document {
                Some(document) => Some(w.put_blob(&crate::metadata::stored::gzip(document))?),
                None => None,
            };
            let first = ImageSetVersion {
                updated_at: planted.updated_at,
                ..ImageSetVersion::imported(1, planted.created_at, planted.tags, metadata)
            };
            let set = w.create_image_set(
                planted.image_set_id,
                planted.datastore_id,
                planted.primary,
                planted.created_at,
                first,
                None,
            )?;
            let mut frames = Vec::new();
            for id in document
                .as_ref()
                .map(crate::metadata::combine::frame_ids)
                .unwrap_or_default()
            {
                frames.push(crate::store::FrameEntry {
                    blob: w.put_blob(id.as_bytes())?,
                    frame_id: id,
                    transfer_syntax: "1.2.840.10008.1.2.4.202".to_owned(),
                });
            }
            w.add_frames(&set, &frames)
        })
        .expect("image set planted");
}

/// Puts an image set into `datastore_id` directly, without a document.
pub(crate) fn plant_image_set(service: &Service, datastore_id: &str, image_set_id: &str) {
    plant(
        service,
        Planted::now(service, datastore_id, image_set_id),
        None,
    );
}

/// Deletes (and erases) an image set directly.
pub(crate) fn erase_image_set(service: &Service, datastore_id: &str, image_set_id: &str) {
    let now = service.now();
    service
        .store()
        .write(|w| {
            let mut set = w
                .image_set(datastore_id, image_set_id)?
                .expect("planted image set");
            w.erase(&mut set, now)
        })
        .expect("image set erased");
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
    let tags = crate::store::DicomTags::of_document(&document);
    let planted = Planted {
        primary,
        tags,
        ..Planted::now(service, datastore_id, image_set_id)
    };
    plant(service, planted, Some(document));
}
