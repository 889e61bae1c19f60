//! Import throughput: instances and megabytes per second through
//! StartDICOMImportJob, and the share of the time spent encoding and
//! verifying HTJ2K frames.
//!
//! `cargo bench -p healthimaging-emulator --bench import` prints one line per
//! patient count of the `scale` fixture set.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use healthimaging_emulator::{EmulatorConfig, Service, router};
use healthimaging_fixtures::{FixtureSet, Spec};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(service: &std::sync::Arc<Service>, method: &str, uri: &str, body: Value) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router(service.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[tokio::main]
async fn main() {
    for patients in [10, 40] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let spec = Spec {
            set: FixtureSet::Scale,
            seed: 5,
            patients: Some(patients),
        };
        let manifest = healthimaging_fixtures::write(&spec, &dir.path().join("s3/bench/scale"))
            .expect("fixtures");
        let config = EmulatorConfig::default()
            .with_seed(1)
            .with_transition_delay(Duration::ZERO)
            .with_s3_root(dir.path().join("s3"));
        let service = Service::start(config).expect("emulator");
        let ds = call(
            &service,
            "POST",
            "/datastore",
            json!({"clientToken": "bench"}),
        )
        .await["datastoreId"]
            .as_str()
            .expect("datastore")
            .to_owned();
        let started = Instant::now();
        let job = call(
            &service,
            "POST",
            &format!("/startDICOMImportJob/datastore/{ds}"),
            json!({
                "clientToken": "bench-import",
                "dataAccessRoleArn": "arn:aws:iam::123456789012:role/Bench",
                "inputS3Uri": "s3://bench/scale/dicom/",
                "outputS3Uri": "s3://bench/out/",
            }),
        )
        .await["jobId"]
            .as_str()
            .expect("job")
            .to_owned();
        loop {
            let status = call(
                &service,
                "GET",
                &format!("/getDICOMImportJob/datastore/{ds}/job/{job}"),
                json!({}),
            )
            .await;
            if status["jobProperties"]["jobStatus"] == "COMPLETED" {
                break;
            }
            assert_ne!(status["jobProperties"]["jobStatus"], "FAILED", "{status}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let totals = service.imports.totals();
        println!(
            "import of the scale set, {patients} patients: {} instances, {:.1} MB in {seconds:.2} s = {:.0} instances/s, {:.1} MB/s; encoding and verifying frames took {:.0}% of the thread time ({:.2} s over all threads)",
            manifest.totals.instances,
            totals.bytes as f64 / 1e6,
            totals.imported as f64 / seconds,
            totals.bytes as f64 / 1e6 / seconds,
            100.0 * totals.encode_time.as_secs_f64()
                / (seconds * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)),
            totals.encode_time.as_secs_f64(),
        );
    }
}
