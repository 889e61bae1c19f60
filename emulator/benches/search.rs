//! SearchImageSets latency with 1k, 10k and 100k image sets in a datastore:
//! the first page of the default order, an EQUAL patient filter, and a
//! BETWEEN on updatedAt sorted ascending, each through the HTTP handler
//! (request parsing, index, JSON response).
//!
//! `cargo bench -p healthimaging-emulator --bench search` prints one line per
//! store size; with an index the latencies barely move as the store grows.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use healthimaging_emulator::store::{
    DicomTags, ImageSet, ImageSetState, ImageSetVersion, WorkflowStatus,
};
use healthimaging_emulator::{EmulatorConfig, Service, Timestamp, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const QUERIES: u32 = 200;
const BASE: u64 = 1_700_000_000_000;

async fn search(service: &std::sync::Arc<Service>, ds: &str, criteria: &Value) -> Value {
    let request = Request::builder()
        .method("POST")
        .uri(format!("/datastore/{ds}/searchImageSets?maxResults=50"))
        .body(Body::from(criteria.to_string()))
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
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::main]
async fn main() {
    for size in [1_000u64, 10_000, 100_000] {
        let config = EmulatorConfig::default()
            .with_seed(1)
            .with_transition_delay(Duration::ZERO);
        let service = Service::start(config).expect("emulator");
        let request = Request::builder()
            .method("POST")
            .uri("/datastore")
            .body(Body::from(r#"{"clientToken":"bench"}"#))
            .expect("request");
        let response = router(service.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let created: Value = serde_json::from_slice(
            &response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes(),
        )
        .expect("JSON");
        let ds = created["datastoreId"]
            .as_str()
            .expect("datastore")
            .to_owned();
        {
            let mut store = service.store();
            for n in 0..size {
                let at = Timestamp::from_millis(BASE + n * 1000);
                store.put_image_set(ImageSet {
                    id: format!("{n:032x}"),
                    datastore_id: ds.clone(),
                    is_primary: n % 7 != 0,
                    created_at: at,
                    tags: Default::default(),
                    versions: vec![ImageSetVersion {
                        version_id: 1,
                        state: ImageSetState::Active,
                        workflow_status: WorkflowStatus::Imported,
                        created_at: at,
                        updated_at: at,
                        message: None,
                        forced: false,
                        tags: DicomTags {
                            patient_id: Some(format!("SYN{:07}", n % (size / 4))),
                            study_instance_uid: Some(format!("2.25.{}", n / 2)),
                            study_date: Some(format!("2024{:02}{:02}", 1 + n % 12, 1 + n % 28)),
                            ..DicomTags::default()
                        },
                        metadata_key: String::new(),
                    }],
                    frames: Default::default(),
                    lock: None,
                });
            }
        }
        let mid = (BASE + size * 500) as f64 / 1000.0;
        let cases = [
            ("default order", json!({})),
            (
                "EQUAL patient",
                json!({"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "SYN0000003"}]}]}),
            ),
            (
                "BETWEEN updatedAt, ASC",
                json!({"filters": [{"operator": "BETWEEN", "values": [{"updatedAt": mid}, {"updatedAt": mid + 3600.0}]}],
                       "sort": {"sortField": "updatedAt", "sortOrder": "ASC"}}),
            ),
        ];
        let mut line = format!("{size:>7} image sets:");
        for (name, criteria) in &cases {
            let first = search(&service, &ds, criteria).await;
            assert!(
                !first["imageSetsMetadataSummaries"]
                    .as_array()
                    .expect("summaries")
                    .is_empty(),
                "{name} finds something"
            );
            let started = Instant::now();
            for _ in 0..QUERIES {
                search(&service, &ds, criteria).await;
            }
            let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(QUERIES);
            line.push_str(&format!("  {name}: {micros:.0} µs"));
        }
        println!("{line}");
    }
}
