//! QIDO-RS latency at 1k and 100k image sets in a datastore (each with its
//! metadata document: one series of two instances), through the HTTP
//! handler: searches an indexed attribute narrows (PatientID, AccessionNumber,
//! StudyInstanceUID), searches on attributes the index does not hold
//! (PatientName, a StudyDate, judged from each study's image set summaries
//! before any document is read), and the first page of studies without a
//! filter (read study by study until the page is full).
//!
//! `cargo bench -p healthimaging-emulator --bench qido` prints one row per
//! query, one column per size, and the ratio of the largest to the smallest.
//! `QIDO_BENCH_SIZES=1000,50000` chooses other sizes.

use std::sync::Arc;
use std::time::Instant;

use healthimaging_emulator::store::{DicomTags, ImageSetVersion, StoreError};
use healthimaging_emulator::{Service, Timestamp, metadata};
use serde_json::{Value, json};

mod common;

const QUERIES: u32 = 50;
const BASE: u64 = 1_700_000_000_000;
/// Image sets a patient has; the store's size does not change it.
const PER_PATIENT: u64 = 20;
/// Studies of one day; the store's size does not change it.
const STUDIES_PER_DAY: u64 = 50;

/// The StudyDate of study `study`: consecutive days of 28-day months.
fn study_date(study: u64) -> String {
    let day = study / STUDIES_PER_DAY;
    format!(
        "{}{:02}{:02}",
        2000 + day / 336,
        1 + (day / 28) % 12,
        1 + day % 28
    )
}

async fn get(service: &Arc<Service>, uri: &str) -> Value {
    common::send(
        service,
        "GET",
        uri,
        Some("application/dicom+json"),
        String::new(),
    )
    .await
    .1
}

/// A datastore of `size` image sets with documents: patients of 20 image
/// sets, studies of 2.
async fn datastore(size: u64, data: &std::path::Path) -> (Arc<Service>, String) {
    let (service, ds) = common::empty_datastore(data).await;
    for chunk in (0..size).collect::<Vec<_>>().chunks(5_000) {
        service
            .store()
            .write(|w| {
                for &n in chunk {
                    let id = format!("{n:032x}");
                    let series = format!("2.25.{n}.1");
                    let document = json!({
                        "Patient": {"DICOM": {"PatientID": format!("SYN{:07}", n / PER_PATIENT),
                            "PatientName": format!("SYNTHETIC^P{:07}", n / PER_PATIENT)}},
                        "Study": {"DICOM": {"StudyInstanceUID": format!("2.25.{}", n / 2),
                                "AccessionNumber": format!("ACC{:07}", n / 2),
                                "StudyDate": study_date(n / 2)},
                            "Series": {&series: {"DICOM": {"SeriesInstanceUID": &series,
                                    "Modality": "CT", "SeriesNumber": "1"},
                                "Instances": {
                                    format!("{series}.1"): {"DICOM": {"InstanceNumber": "1"}, "ImageFrames": []},
                                    format!("{series}.2"): {"DICOM": {"InstanceNumber": "2"}, "ImageFrames": []},
                                }}}}
                    });
                    let document = metadata::with_identity(document, &ds, &id);
                    let blob = w.put_blob(&metadata::stored::gzip(&document))?;
                    let at = Timestamp::from_millis(BASE + n * 1000);
                    let version = ImageSetVersion::imported(
                        1,
                        at,
                        DicomTags::of_document(&document),
                        Some(blob),
                    );
                    w.create_image_set(&id, &ds, true, at, version, None)?;
                }
                Ok::<_, StoreError>(())
            })
            .expect("image sets planted");
    }
    (service, ds)
}

fn cases(size: u64) -> Vec<(&'static str, String, usize)> {
    let mid = size / 2;
    vec![
        (
            "studies of a patient",
            format!("/studies?PatientID=SYN{:07}", mid / PER_PATIENT),
            10,
        ),
        (
            "study by StudyInstanceUID",
            format!("/studies?StudyInstanceUID=2.25.{}", mid / 2),
            1,
        ),
        (
            "instances by AccessionNumber",
            format!("/instances?AccessionNumber=ACC{:07}", mid / 2),
            4,
        ),
        (
            "studies by PatientName",
            format!("/studies?PatientName=synthetic^p{:07}", mid / PER_PATIENT),
            10,
        ),
        (
            "studies of a StudyDate",
            format!("/studies?StudyDate={}&limit=100", study_date(mid / 2)),
            STUDIES_PER_DAY as usize,
        ),
        (
            "first 10 studies, no filter",
            "/studies?limit=10".into(),
            10,
        ),
    ]
}

#[tokio::main]
async fn main() {
    let sizes = common::sizes("QIDO_BENCH_SIZES", &[1_000, 100_000]);
    let mut table = common::Table::default();
    for &size in &sizes {
        let (_dir, service, ds) =
            common::planted(size, |data| async move { datastore(size, &data).await }).await;
        for (name, query, expected) in cases(size) {
            let uri = format!("/datastore/{ds}{query}");
            let first = get(&service, &uri).await;
            assert_eq!(
                first.as_array().map(Vec::len),
                Some(expected),
                "{name}: {first}"
            );
            let started = Instant::now();
            for _ in 0..QUERIES {
                get(&service, &uri).await;
            }
            let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(QUERIES);
            table.add(name.to_owned(), micros, size == sizes[0]);
        }
    }
    table.print("µs per QIDO-RS request", &sizes);
}
