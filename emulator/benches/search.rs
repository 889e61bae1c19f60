//! SearchImageSets latency at 1k, 100k and 1M image sets in a datastore, for
//! every filter and sort, through the HTTP handler (request parsing, the
//! store's index walk, JSON response): the first page and the page after a
//! continuation token.
//!
//! `cargo bench -p healthimaging-emulator --bench search` prints a table, one
//! row per query, one column per store size, and the ratio of the largest
//! store to the smallest (the goal: within 2x). `SEARCH_BENCH_SIZES=1000,100000`
//! chooses other sizes.

use std::sync::Arc;
use std::time::Instant;

use healthimaging_emulator::store::{DicomTags, ImageSetVersion, StoreError};
use healthimaging_emulator::{Service, Timestamp};
use serde_json::{Value, json};

mod common;

const QUERIES: u32 = 200;
const BASE: u64 = 1_700_000_000_000;
/// Image sets a patient has; the store's size does not change it.
const PER_PATIENT: u64 = 20;

async fn search(service: &Arc<Service>, ds: &str, criteria: &Value, token: Option<&str>) -> Value {
    let mut uri = format!("/datastore/{ds}/searchImageSets?maxResults=50");
    if let Some(token) = token {
        uri.push_str(&format!("&nextToken={token}"));
    }
    common::post(service, &uri, &criteria.to_string()).await
}

/// A datastore of `size` image sets: a new one every second, patients of
/// 20 image sets each, studies of 2, one in 7 non-primary. Kept in a data
/// directory (`data`): an emulator in memory holds at most about 2 GiB.
async fn datastore(size: u64, data: &std::path::Path) -> (Arc<Service>, String) {
    let (service, ds) = common::empty_datastore(data).await;
    for chunk in (0..size).collect::<Vec<_>>().chunks(20_000) {
        service
            .store()
            .write(|w| {
                for &n in chunk {
                    let at = Timestamp::from_millis(BASE + n * 1000);
                    let tags = DicomTags {
                        patient_id: Some(format!("SYN{:07}", n / PER_PATIENT)),
                        accession_number: Some(format!("ACC{:07}", n / 2)),
                        study_id: Some(format!("{}", n / 2)),
                        study_instance_uid: Some(format!("2.25.{}", n / 2)),
                        series_instance_uid: Some(format!("2.25.{n}.1")),
                        study_date: Some(format!("2024{:02}{:02}", 1 + n % 12, 1 + n % 28)),
                        study_time: Some(format!("{:06}", n % 240_000)),
                        ..DicomTags::default()
                    };
                    let first = ImageSetVersion {
                        updated_at: Timestamp::from_millis(BASE + ((n * 7919) % size) * 1000),
                        ..ImageSetVersion::imported(1, at, tags, None)
                    };
                    w.create_image_set(&format!("{n:032x}"), &ds, n % 7 != 0, at, first, None)?;
                }
                Ok::<_, StoreError>(())
            })
            .expect("image sets planted");
    }
    (service, ds)
}

fn cases(size: u64) -> Vec<(&'static str, Value)> {
    let seconds = |n: u64| (BASE + n * 1000) as f64 / 1000.0;
    let mid = size / 2;
    let equal = |name: &str, value: Value| json!({"filters": [{"operator": "EQUAL", "values": [{name: value}]}]});
    let between = |name: &str, low: Value, high: Value| json!({"filters": [{"operator": "BETWEEN", "values": [{name: low}, {name: high}]}]});
    let date = |d: &str| json!({"DICOMStudyDate": d});
    vec![
        ("default order (updatedAt DESC)", json!({})),
        (
            "sort createdAt ASC",
            json!({"sort": {"sortField": "createdAt", "sortOrder": "ASC"}}),
        ),
        (
            "sort DICOMStudyDateAndTime DESC",
            json!({"sort": {"sortField": "DICOMStudyDateAndTime", "sortOrder": "DESC"}}),
        ),
        (
            "EQUAL patient",
            equal(
                "DICOMPatientId",
                json!(format!("SYN{:07}", mid / PER_PATIENT)),
            ),
        ),
        (
            "EQUAL accession",
            equal("DICOMAccessionNumber", json!(format!("ACC{:07}", mid / 2))),
        ),
        (
            "EQUAL study ID",
            equal("DICOMStudyId", json!(format!("{}", mid / 2))),
        ),
        (
            "EQUAL study UID",
            equal("DICOMStudyInstanceUID", json!(format!("2.25.{}", mid / 2))),
        ),
        (
            "EQUAL series UID",
            equal("DICOMSeriesInstanceUID", json!(format!("2.25.{mid}.1"))),
        ),
        ("EQUAL isPrimary false", equal("isPrimary", json!(false))),
        (
            "BETWEEN updatedAt (sort field)",
            between("updatedAt", json!(seconds(mid)), json!(seconds(mid + 3600))),
        ),
        (
            "BETWEEN createdAt, default sort",
            between("createdAt", json!(seconds(mid)), json!(seconds(mid + 600))),
        ),
        (
            "BETWEEN study date, default sort",
            between("DICOMStudyDateAndTime", date("20240301"), date("20240302")),
        ),
        (
            "patient + isPrimary true",
            json!({"filters": [
            {"operator": "EQUAL", "values": [{"DICOMPatientId": format!("SYN{:07}", mid / PER_PATIENT)}]},
            {"operator": "EQUAL", "values": [{"isPrimary": true}]}]}),
        ),
    ]
}

/// Microseconds per query: the first page, then the page after its token.
async fn measure(service: &Arc<Service>, ds: &str, criteria: &Value) -> (f64, Option<f64>) {
    let first = search(service, ds, criteria, None).await;
    assert!(
        first["imageSetsMetadataSummaries"].is_array(),
        "the search answers: {first}"
    );
    let started = Instant::now();
    for _ in 0..QUERIES {
        search(service, ds, criteria, None).await;
    }
    let first_page = started.elapsed().as_secs_f64() * 1e6 / f64::from(QUERIES);
    let Some(token) = first["nextToken"].as_str() else {
        return (first_page, None);
    };
    let started = Instant::now();
    for _ in 0..QUERIES {
        search(service, ds, criteria, Some(token)).await;
    }
    let next_page = started.elapsed().as_secs_f64() * 1e6 / f64::from(QUERIES);
    (first_page, Some(next_page))
}

#[tokio::main]
async fn main() {
    let sizes = common::sizes("SEARCH_BENCH_SIZES", &[1_000, 100_000, 1_000_000]);
    let mut table = common::Table::default();
    for &size in &sizes {
        let (_dir, service, ds) =
            common::planted(size, |data| async move { datastore(size, &data).await }).await;
        for (name, criteria) in cases(size) {
            let (first, next) = measure(&service, &ds, &criteria).await;
            for (label, micros) in [("first page", Some(first)), ("next page", next)] {
                let Some(micros) = micros else { continue };
                table.add(format!("{name}, {label}"), micros, size == sizes[0]);
            }
        }
    }
    table.print("µs per SearchImageSets", &sizes);
}
