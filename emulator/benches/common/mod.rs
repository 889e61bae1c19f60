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

/// The store sizes to measure: `variable` (comma-separated) or `default`.
pub fn sizes(variable: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(variable)
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

/// Measurements by row name, one column per store size, in the order the
/// rows were first met.
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, Vec<f64>)>,
}

impl Table {
    /// Adds `value` to row `name` (made at the first size only: a row
    /// missing there would not line up).
    pub fn add(&mut self, name: String, value: f64, first_size: bool) {
        match self.rows.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, values)) => values.push(value),
            None if first_size => self.rows.push((name, vec![value])),
            None => {}
        }
    }

    /// Prints the table: `title`, a column per size, and the largest
    /// size's value over the smallest's.
    pub fn print(&self, title: &str, sizes: &[u64]) {
        let width = self
            .rows
            .iter()
            .map(|(name, _)| name.len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
            + 2;
        let header: String = sizes.iter().map(|s| format!("{s:>12}")).collect();
        println!("{title:<width$}{header}  largest/smallest");
        for (name, values) in &self.rows {
            let cells: String = values.iter().map(|v| format!("{v:>12.0}")).collect();
            let ratio = match (values.first(), values.last()) {
                (Some(a), Some(b)) if values.len() == sizes.len() => format!("{:.2}x", b / a),
                _ => String::new(),
            };
            println!("{name:<width$}{cells}  {ratio}");
        }
    }
}

/// A store of `size` image sets planted by `plant` in a new temporary data
/// directory (kept alive by the returned folder), with the time it took on
/// stderr.
pub async fn planted<Fut>(
    size: u64,
    plant: impl FnOnce(std::path::PathBuf) -> Fut,
) -> (tempfile::TempDir, Arc<Service>, String)
where
    Fut: std::future::Future<Output = (Arc<Service>, String)>,
{
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("temporary folder");
    let (service, ds) = plant(dir.path().to_owned()).await;
    eprintln!(
        "{size} image sets planted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (dir, service, ds)
}
