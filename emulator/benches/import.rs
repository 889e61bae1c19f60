//! Import throughput, and its cost against the work that cannot be avoided:
//! the wall time of StartDICOMImportJob (in memory and with a data
//! directory) divided by the time one thread takes to HTJ2K-encode the same
//! frames and nothing else (the goal: at most 1.5). Every figure is the
//! median of three runs.
//!
//! `cargo bench -p healthimaging-emulator --bench import` prints one line per
//! fixture set: the `scale` set (many small images) and the `demo` set
//! (realistic sizes). `IMPORT_BENCH_SETS=demo` chooses.
//! `IMPORT_BENCH_PROFILE=N` runs only the import, N times (with a data
//! directory when `IMPORT_BENCH_DURABLE` is set), and prints wall, CPU and
//! codec seconds of each: what to run under `perf` (the baseline's own
//! decoding would otherwise dominate the profile).

use std::path::Path;
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use healthimaging_codec::{Layout, htj2k, jpeg2000};
use healthimaging_emulator::import::frames;
use healthimaging_emulator::store::LosslessStorageFormat;
use healthimaging_emulator::{EmulatorConfig, Service};
use healthimaging_fixtures::{FixtureSet, Spec};
use serde_json::{Value, json};

mod common;

async fn call(service: &std::sync::Arc<Service>, method: &str, uri: &str, body: Value) -> Value {
    common::send(service, method, uri, None, body.to_string())
        .await
        .1
}

fn files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixture folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// The samples and layout of every frame the import encodes (its lossless
/// inputs not already in the storage format), as the import reads them.
fn frames_to_encode(dicom: &Path) -> Vec<(Vec<i32>, Layout)> {
    let mut paths = Vec::new();
    files(dicom, &mut paths);
    let mut all = Vec::new();
    for path in paths {
        let Ok(object) = OpenFileOptions::new().open_file(&path) else {
            continue;
        };
        let syntax = object
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned();
        if syntax == frames::HTJ2K_RPCL
            || syntax.ends_with(".4.91")
            || syntax.ends_with(".4.203")
            || syntax.ends_with(".4.50")
        {
            continue;
        }
        let Ok(stored) = frames::store(&object, &syntax, LosslessStorageFormat::Htj2k) else {
            continue;
        };
        let int = |tag| {
            object
                .element(tag)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok())
                .unwrap_or(0)
        };
        let layout = Layout {
            columns: int(tags::COLUMNS),
            rows: int(tags::ROWS),
            components: int(tags::SAMPLES_PER_PIXEL),
            precision: int(tags::BITS_STORED),
            signed: int(tags::PIXEL_REPRESENTATION) == 1,
        };
        for frame in stored.frames {
            let decoded = jpeg2000::decode(&frame.bytes).expect("a stored frame decodes");
            all.push((decoded.samples, layout));
        }
    }
    all
}

/// Runs of each measure; the median is reported.
const RUNS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The medians of each field of `runs`.
fn medians(runs: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
        median(runs.iter().map(|r| r.2).collect()),
    )
}

/// Seconds one thread takes to HTJ2K-encode `frames`.
fn encode_alone(frames: &[(Vec<i32>, Layout)]) -> f64 {
    let started = Instant::now();
    for (samples, layout) in frames {
        htj2k::encode(samples, *layout).expect("encodes");
    }
    started.elapsed().as_secs_f64()
}

/// CPU seconds this process has used (user and system, every thread).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5); 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall seconds, CPU seconds and seconds spent encoding and verifying.
async fn import(dir: &Path, data_dir: Option<&Path>) -> (f64, f64, f64) {
    let mut config = EmulatorConfig::default()
        .with_seed(1)
        .with_transition_delay(Duration::ZERO)
        .with_s3_root(dir.join("s3"));
    if let Some(data) = data_dir {
        config = config.with_data_dir(data);
    }
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
    let cpu = cpu_seconds();
    let job = call(
        &service,
        "POST",
        &format!("/startDICOMImportJob/datastore/{ds}"),
        json!({
            "clientToken": "bench-import",
            "dataAccessRoleArn": "arn:aws:iam::123456789012:role/Bench",
            "inputS3Uri": "s3://bench/set/dicom/",
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
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        service.imports.totals().encode_time.as_secs_f64(),
    )
}

#[tokio::main]
async fn main() {
    let sets: Vec<String> = std::env::var("IMPORT_BENCH_SETS")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| vec!["scale".into(), "demo".into()]);
    for name in sets {
        let (set, patients) = match name.as_str() {
            "demo" => (FixtureSet::Demo, None),
            _ => (FixtureSet::Scale, Some(40)),
        };
        let dir = tempfile::tempdir().expect("temporary folder");
        let spec = Spec {
            set,
            seed: 5,
            patients,
        };
        let root = dir.path().join("s3/bench/set");
        let manifest = healthimaging_fixtures::write(&spec, &root).expect("fixtures");
        // The input is on disk before the clock starts, as a user's files
        // are: otherwise the first durable commit's syncfs also flushes the
        // fixtures just written.
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
        if let Some(runs) = std::env::var("IMPORT_BENCH_PROFILE")
            .ok()
            .map(|n| n.parse::<usize>().unwrap_or(5))
        {
            let durable = std::env::var_os("IMPORT_BENCH_DURABLE").is_some();
            for run in 0..runs {
                let data = dir.path().join(format!("data-{run}"));
                let (wall, cpu, codec) = import(dir.path(), durable.then_some(&*data)).await;
                let mode = if durable {
                    "with a data directory"
                } else {
                    "in memory"
                };
                println!(
                    "{name} set {mode}: {wall:.2} s, {cpu:.2} s of CPU, {codec:.2} s of codec work"
                );
            }
            continue;
        }
        let frames = frames_to_encode(&root.join("dicom"));
        let alone = median((0..RUNS).map(|_| encode_alone(&frames)).collect());
        let encoded = frames.len();
        drop(frames);
        // Each measure is the median of RUNS, the two kinds of import taking
        // turns so that a slow moment of the machine does not fall on one.
        let (mut memory_runs, mut durable_runs) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            memory_runs.push(import(dir.path(), None).await);
            let data = dir.path().join(format!("data-{run}"));
            durable_runs.push(import(dir.path(), Some(&data)).await);
        }
        let (in_memory, cpu, codec) = medians(&memory_runs);
        let (durable, durable_cpu, _) = medians(&durable_runs);
        let instances = manifest.totals.instances as f64;
        // What the import adds to the encoding, per instance: the figure
        // that compares sets of very different image sizes.
        let added = |wall: f64| (wall - alone) * 1000.0 / instances;
        println!(
            "{name} set: {} instances, {encoded} frames encoded; one thread encodes them alone in {alone:.2} s; import in memory {in_memory:.2} s ({:.2}x, {:.0} instances/s, {:.2} ms per instance over the encoding; {cpu:.2} s of CPU, {codec:.2} s of it decoding, encoding and verifying), with a data directory {durable:.2} s ({:.2}x, {:.2} ms per instance over the encoding; {durable_cpu:.2} s of CPU)",
            manifest.totals.instances,
            in_memory / alone,
            instances / in_memory,
            added(in_memory),
            durable / alone,
            added(durable),
        );
    }
}
