//! The store under a long history and under load:
//!
//! - start time and resident memory of an emulator whose data directory
//!   holds 10 and then 10,000 metadata updates (the goal: the same);
//! - bytes a metadata update of a 3,000-instance image set adds to the data
//!   directory, early and after a hundred versions (the goal: the same);
//! - GetImageFrame throughput of 16 clients, alone and beside one client
//!   looping an unselective search (the goal: within 1.5x).
//!
//! `cargo bench -p healthimaging-emulator --bench store`. Start time and
//! memory are measured in a fresh process (this benchmark run again), so
//! the writes that built the history do not count.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use healthimaging_emulator::metadata::stored::gzip;
use healthimaging_emulator::store::{DicomTags, FrameEntry, ImageSetVersion, StoreError};
use healthimaging_emulator::{EmulatorConfig, Service};
use serde_json::{Map, Value, json};

mod common;

const CHILD: &str = "STORE_BENCH_START_ONLY";

async fn call(service: &Arc<Service>, uri: &str, body: String) -> (u16, Value) {
    common::send(service, "POST", uri, None, body).await
}

fn config(data: &Path) -> EmulatorConfig {
    EmulatorConfig::default()
        .with_seed(3)
        .with_transition_delay(Duration::ZERO)
        .with_data_dir(data)
}

/// A document of one series of `instances` instances, one frame each.
fn document(instances: usize) -> Value {
    let mut all = Map::new();
    for n in 0..instances {
        all.insert(
            format!("2.25.7.{n}"),
            json!({"DICOM": {"SOPInstanceUID": format!("2.25.7.{n}"), "InstanceNumber": format!("{}", n + 1),
                "ImagePositionPatient": [0.0, 0.0, n as f64 * 1.25], "SliceThickness": "1.25",
                "WindowCenter": "40", "WindowWidth": "400", "Rows": 512, "Columns": 512},
                "ImageFrames": [{"ID": format!("{n:032x}"), "FrameSizeInBytes": 300_000,
                    "PixelDataChecksumFromBaseToFullResolution": [{"Width": 512, "Height": 512, "Checksum": n}]}]}),
        );
    }
    json!({"SchemaVersion": "1.1",
        "Patient": {"DICOM": {"PatientID": "SYN-BENCH", "PatientName": "Bench-Synthetic^Store"}},
        "Study": {"DICOM": {"StudyInstanceUID": "2.25.7", "StudyDate": "20240101", "StudyDescription": "CT"},
            "Series": {"2.25.7.0": {"DICOM": {"SeriesInstanceUID": "2.25.7.0", "Modality": "CT",
                "SeriesNumber": "1"}, "Instances": all}}}})
}

/// A datastore with one non-primary image set of `instances` instances.
async fn image_set(service: &Arc<Service>, instances: usize) -> (String, String) {
    let (_, created) = call(service, "/datastore", r#"{"clientToken":"bench"}"#.into()).await;
    let ds = created["datastoreId"]
        .as_str()
        .expect("datastore")
        .to_owned();
    let id = "e".repeat(32);
    let document = document(instances);
    service
        .store()
        .write(|w| {
            let metadata = Some(w.put_blob(&gzip(&document))?);
            let first = ImageSetVersion::imported(
                1,
                service.now(),
                DicomTags::of_document(&document),
                metadata,
            );
            w.create_image_set(&id, &ds, false, service.now(), first, None)?;
            Ok::<_, StoreError>(())
        })
        .expect("planted");
    (ds, id)
}

/// Updates the study description of `id` `count` times, version after version.
async fn update(service: &Arc<Service>, ds: &str, id: &str, from: u64, count: u64) {
    for n in from..from + count {
        let change = json!({"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": format!("CT {n}")}}});
        let body = json!({"DICOMUpdates": {"updatableAttributes":
            base64::engine::general_purpose::STANDARD.encode(change.to_string())}});
        let (status, answer) = call(
            service,
            &format!("/datastore/{ds}/imageSet/{id}/updateImageSetMetadata?latestVersion={n}"),
            body.to_string(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("folder") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Starts an emulator on `data` in a fresh process: milliseconds and RSS.
fn start_in_child(data: &Path) -> (f64, u64) {
    let output = std::process::Command::new(std::env::current_exe().expect("this benchmark"))
        .env(CHILD, data)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    let millis = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(f64::NAN);
    let rss = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    (millis, rss)
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn start_time_and_memory() {
    for writes in [10u64, 10_000] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let data = dir.path().join("data");
        let service = Service::start(config(&data)).expect("emulator");
        let (ds, id) = image_set(&service, 20).await;
        let started = Instant::now();
        update(&service, &ds, &id, 1, writes).await;
        let took = started.elapsed();
        drop(service);
        let (millis, rss) = start_in_child(&data);
        println!(
            "after {writes:>6} updates ({:.1} ms each): start {millis:.1} ms, RSS {:.1} MiB, data directory {:.1} MiB",
            took.as_secs_f64() * 1000.0 / writes as f64,
            rss as f64 / 1024.0,
            dir_size(&data) as f64 / 1048576.0
        );
    }
}

async fn bytes_per_update() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let data = dir.path().join("data");
    let service = Service::start(config(&data)).expect("emulator");
    let (ds, id) = image_set(&service, 3000).await;
    let mut version = 1;
    // Windows of 100 updates after the write-ahead log has grown to its
    // steady size (about 4 MiB, reused after each checkpoint).
    for (label, warmup) in [("versions 62 to 161", 60u64), ("versions 462 to 561", 300)] {
        update(&service, &ds, &id, version, warmup).await;
        version += warmup;
        let before = dir_size(&data);
        update(&service, &ds, &id, version, 100).await;
        version += 100;
        println!(
            "an update of a 3,000-instance image set, {label}: {:.1} KiB each",
            (dir_size(&data) - before) as f64 / 100.0 / 1024.0
        );
    }
}

async fn frame_throughput() {
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(4)
            .with_transition_delay(Duration::ZERO),
    )
    .expect("emulator");
    let (_, created) = call(&service, "/datastore", r#"{"clientToken":"frames"}"#.into()).await;
    let ds = created["datastoreId"]
        .as_str()
        .expect("datastore")
        .to_owned();
    let frame_bytes = vec![7u8; 64 * 1024];
    let mut targets = Vec::new();
    for chunk in 0..10u64 {
        service
            .store()
            .write(|w| {
                let blob = w.put_blob(&frame_bytes)?;
                for n in chunk * 1000..(chunk + 1) * 1000 {
                    let id = format!("{n:032x}");
                    let tags = DicomTags {
                        patient_id: Some(format!("SYN{n}")),
                        ..DicomTags::default()
                    };
                    let first = ImageSetVersion::imported(1, service.now(), tags, None);
                    let set = w.create_image_set(&id, &ds, true, service.now(), first, None)?;
                    let frame = format!("{:032x}", n + 1_000_000);
                    w.add_frames(
                        &set,
                        &[FrameEntry {
                            frame_id: frame.clone(),
                            transfer_syntax: "1.2.840.10008.1.2.4.202".into(),
                            blob: blob.clone(),
                        }],
                    )?;
                    if n % 100 == 0 {
                        targets.push((id, frame));
                    }
                }
                Ok::<_, StoreError>(())
            })
            .expect("planted");
    }
    let targets = Arc::new(targets);
    let measure = |with_search: bool| {
        let service = service.clone();
        let targets = targets.clone();
        let ds = ds.clone();
        async move {
            let count = Arc::new(AtomicU64::new(0));
            let stop = Instant::now() + Duration::from_secs(3);
            let mut tasks = Vec::new();
            for client in 0..16usize {
                let (service, targets, ds, count) =
                    (service.clone(), targets.clone(), ds.clone(), count.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = client;
                    while Instant::now() < stop {
                        let (id, frame) = &targets[n % targets.len()];
                        let (status, _) = call(
                            &service,
                            &format!("/datastore/{ds}/imageSet/{id}/getImageFrame"),
                            json!({"imageFrameId": frame}).to_string(),
                        )
                        .await;
                        assert_eq!(status, 200);
                        count.fetch_add(1, Ordering::Relaxed);
                        n += 16;
                    }
                }));
            }
            if with_search {
                let (service, ds) = (service.clone(), ds.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < stop {
                        call(
                            &service,
                            &format!("/datastore/{ds}/searchImageSets"),
                            "{}".into(),
                        )
                        .await;
                    }
                }));
            }
            for task in tasks {
                task.await.expect("client");
            }
            count.load(Ordering::Relaxed) as f64 / 3.0
        }
    };
    let alone = measure(false).await;
    let beside = measure(true).await;
    println!(
        "GetImageFrame, 16 clients: {alone:.0}/s alone, {beside:.0}/s beside an unselective search loop ({:.2}x slower)",
        alone / beside
    );
}

fn main() {
    if let Ok(data) = std::env::var(CHILD) {
        let started = Instant::now();
        let service = Service::start(config(Path::new(&data))).expect("emulator starts");
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        println!("{millis:.2} {}", resident_kib());
        drop(service);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        start_time_and_memory().await;
        bytes_per_update().await;
        frame_throughput().await;
    });
}
