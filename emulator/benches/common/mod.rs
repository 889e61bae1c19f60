//! What the benches share: one request through the emulator's router, in
//! process (no socket), answered with its status and JSON body. Each bench
//! is its own crate and uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use healthimaging_emulator::{EmulatorConfig, Service, router};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Sends `method uri` with `body` (and `accept`, when given) and returns the
/// status and the body as JSON (`Null` when it is not JSON).
pub async fn send(
    service: &Arc<Service>,
    method: &str,
    uri: &str,
    accept: Option<&str>,
    body: String,
) -> (u16, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = router(service.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A POST with a JSON body, answered as JSON.
pub async fn post(service: &Arc<Service>, uri: &str, body: &str) -> Value {
    send(service, "POST", uri, None, body.to_owned()).await.1
}

/// An emulator keeping its store in `data`, and a new active datastore.
pub async fn empty_datastore(data: &std::path::Path) -> (Arc<Service>, String) {
    let config = EmulatorConfig::default()
        .with_seed(1)
        .with_transition_delay(std::time::Duration::ZERO)
        .with_data_dir(data);
    let service = Service::start(config).expect("emulator");
    let created = post(&service, "/datastore", r#"{"clientToken":"bench"}"#).await;
    let ds = created["datastoreId"]
        .as_str()
        .expect("datastore")
        .to_owned();
    (service, ds)
}
