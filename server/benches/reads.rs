//! The cost of a frame and of a narrowed metadata read as image sets grow.
//!
//! Image sets of 10, 1,000 and 3,000 instances (one 64x64 HTJ2K frame each)
//! are planted in an embedded emulator, and the MCP server is driven over
//! an in-memory pipe exactly as a client drives it. For each size:
//!
//! - the first `get_image_frame` of the run (the document fetched,
//!   gunzipped, parsed and indexed: what every read cost before the cache);
//! - later `get_image_frame` calls on other frames of the same version;
//! - `get_image_set_metadata` narrowed to one instance.
//!
//! The goal: later reads cost the same whatever the image set's size.
//! `cargo bench -p healthimaging-mcp --bench reads`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use healthimaging_codec::Layout;
use healthimaging_emulator::metadata::stored::gzip;
use healthimaging_emulator::store::{DicomTags, FrameEntry, ImageSetVersion, StoreError};
use healthimaging_emulator::{EmulatorConfig, Service};
use healthimaging_mcp::audit::AuditLog;
use healthimaging_mcp::backend::embedded_client;
use healthimaging_mcp::permissions::Grant;
use healthimaging_mcp::sdk::Tuning;
use healthimaging_mcp::{HealthImagingServer, ServerOptions};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};

const SIZES: [usize; 3] = [10, 1_000, 3_000];
const CALLS: usize = 200;

/// A one-series document of `instances` instances, one frame each.
fn document(tag: usize, instances: usize) -> Value {
    let mut all = Map::new();
    for n in 0..instances {
        let sop = format!("2.25.{tag}.{n}");
        all.insert(
            sop.clone(),
            json!({"DICOM": {"SOPInstanceUID": sop, "InstanceNumber": format!("{}", n + 1),
                "ImagePositionPatient": [0.0, 0.0, n as f64 * 1.25], "SliceThickness": "1.25",
                "WindowCenter": "40", "WindowWidth": "400", "Rows": 64, "Columns": 64,
                "BitsAllocated": 16, "BitsStored": 12, "HighBit": 11, "PixelRepresentation": 0,
                "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
                "ImageOrientationPatient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]},
                "StoredTransferSyntaxUID": "1.2.840.10008.1.2.4.202",
                "ImageFrames": [{"ID": frame_id(tag, n), "FrameSizeInBytes": 8192,
                    "PixelDataChecksumFromBaseToFullResolution": [{"Width": 64, "Height": 64, "Checksum": 0}]}]}),
        );
    }
    json!({"SchemaVersion": "1.1",
        "Patient": {"DICOM": {"PatientID": format!("SYN-BENCH-{tag}"), "PatientName": "Bench^Synthetic"}},
        "Study": {"DICOM": {"StudyInstanceUID": format!("2.25.{tag}"), "StudyDate": "20240101"},
            "Series": {format!("2.25.{tag}.0"): {"DICOM": {"SeriesInstanceUID": format!("2.25.{tag}.0"),
                "Modality": "CT", "SeriesNumber": "1"}, "Instances": all}}}})
}

fn frame_id(tag: usize, n: usize) -> String {
    format!("{:016x}{n:016x}", tag + 1)
}

fn image_set_id(tag: usize) -> String {
    format!("{:032x}", tag + 1)
}

fn plant(service: &Arc<Service>, ds: &str, frame: &[u8]) {
    for (tag, &instances) in SIZES.iter().enumerate() {
        let document = document(tag, instances);
        service
            .store()
            .write(|w| {
                let metadata = Some(w.put_blob(&gzip(&document))?);
                let blob = w.put_blob(frame)?;
                let first = ImageSetVersion::imported(
                    1,
                    service.now(),
                    DicomTags::of_document(&document),
                    metadata,
                );
                let set =
                    w.create_image_set(&image_set_id(tag), ds, true, service.now(), first, None)?;
                let frames: Vec<FrameEntry> = (0..instances)
                    .map(|n| FrameEntry {
                        frame_id: frame_id(tag, n),
                        transfer_syntax: "1.2.840.10008.1.2.4.202".into(),
                        blob: blob.clone(),
                    })
                    .collect();
                w.add_frames(&set, &frames)?;
                Ok::<_, StoreError>(())
            })
            .expect("planted");
    }
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

async fn run() {
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(5)
            .with_transition_delay(Duration::ZERO),
    )
    .expect("emulator");
    let sdk = embedded_client(&service, Tuning::default());
    let ds = sdk
        .create_datastore()
        .datastore_name("reads")
        .send()
        .await
        .expect("datastore")
        .datastore_id;
    let samples: Vec<i32> = (0..64 * 64).map(|i| i * 7 % 4096).collect();
    let layout = Layout {
        columns: 64,
        rows: 64,
        components: 1,
        precision: 12,
        signed: false,
    };
    let frame = healthimaging_codec::htj2k::encode(&samples, layout).expect("encoded");
    plant(&service, &ds, &frame);

    let server = HealthImagingServer::new(
        sdk,
        ServerOptions {
            grant: Grant::READ_ONLY,
            confirmation_ttl: Duration::from_secs(60),
            audit: AuditLog::to_writer(std::io::sink()),
            backend_description: "the benchmark".into(),
            synthetic: true,
            local_s3_root: None,
            dicomweb: None,
            state_dir: None,
            export: Default::default(),
            s3: None,
            confirmation_key: None,
            loading: None,
            loading_wait: std::time::Duration::ZERO,
            bulk_ceiling: 25,
        },
    );
    let (server_end, client_end) = tokio::io::duplex(1 << 22);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    let client = ().serve(client_end).await.expect("session");
    let call = |tool: &'static str, arguments: Value| {
        let client = &client;
        async move {
            let Value::Object(arguments) = arguments else {
                unreachable!("objects")
            };
            let started = Instant::now();
            let result = client
                .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
                .await
                .expect("answered");
            assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
            started.elapsed()
        }
    };
    // A first pass warms the runtime, the store and the allocator; the
    // second is reported.
    let mut cold = [Duration::ZERO; SIZES.len()];
    for pass in 0..2 {
        let mut baseline = None;
        for (tag, &instances) in SIZES.iter().enumerate() {
            let set = image_set_id(tag);
            let frame_args = |n: usize| json!({"datastore_id": ds, "image_set_id": set, "image_frame_id": frame_id(tag, n), "max_size": 64});
            let first = call("get_image_frame", frame_args(0)).await;
            if pass == 0 {
                cold[tag] = first;
            }
            let mut frames = Duration::ZERO;
            for n in 0..CALLS {
                frames += call("get_image_frame", frame_args((n * 37 + 1) % instances)).await;
            }
            let mut narrowed = Duration::ZERO;
            for n in 0..CALLS {
                let sop = format!("2.25.{tag}.{}", (n * 37 + 1) % instances);
                narrowed += call(
                    "get_image_set_metadata",
                    json!({"datastore_id": ds, "image_set_id": set, "sop_instance_uid": sop}),
                )
                .await;
            }
            let frame_ms = millis(frames) / CALLS as f64;
            let narrowed_ms = millis(narrowed) / CALLS as f64;
            let (base_frame, base_narrowed) = *baseline.get_or_insert((frame_ms, narrowed_ms));
            if pass == 0 {
                continue;
            }
            println!(
                "{instances:>5} instances: first frame (uncached) {:7.2} ms; later frames {frame_ms:6.2} ms ({:.2}x the 10-instance set); one instance's metadata {narrowed_ms:6.2} ms ({:.2}x)",
                millis(cold[tag]),
                frame_ms / base_frame,
                narrowed_ms / base_narrowed,
            );
        }
    }
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}
