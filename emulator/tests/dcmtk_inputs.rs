//! Compressed input made by independent encoders: native files of the `ci`
//! set re-encoded by dcmtk, imported, and checked frame by frame.
//!
//! - JPEG-LS (`dcmcjpls`, its own CharLS build): lossless (`.4.80`) and
//!   near-lossless (`.4.81`);
//! - lossless JPEG (`dcmcjpeg`, the IJG lossless codec): every selection
//!   value (predictor) 1 to 7 with dcmtk's optimized Huffman tables, and a
//!   point transform.
//!
//! Every frame must be stored as HTJ2K; lossless frames keep the manifest's
//! CRC32 of the original pixels, and the others the CRC32 of what dcmtk's
//! own decoder (`dcmdjpeg`) makes of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use dicom_dictionary_std::tags;
use healthimaging_emulator::{EmulatorConfig, Service, router};
use healthimaging_fixtures::manifest::InstanceEntry;
use healthimaging_fixtures::{FixtureSet, Manifest, Spec};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(service: &Arc<Service>, method: &str, uri: &str, body: Value) -> (u16, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(if body.is_null() {
            String::new()
        } else {
            body.to_string()
        }))
        .unwrap();
    let response = router(service.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Whether dcmtk's `tool` runs here; says why the test skips when not.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("skipped: dcmtk's {tool} is not installed (apt-get install dcmtk)");
    }
    found
}

/// The `ci` set written under `dir`, and up to `count` of its native
/// single-component instances.
fn natives(dir: &Path, count: usize) -> (PathBuf, Vec<InstanceEntry>) {
    let fixtures = dir.join("fixtures");
    let manifest: Manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 31,
            patients: None,
        },
        &fixtures,
    )
    .unwrap();
    let natives: Vec<InstanceEntry> = manifest
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .flat_map(|s| &s.series)
        .flat_map(|s| &s.instances)
        .filter(|i| {
            i.transfer_syntax == "1.2.840.10008.1.2.1"
                && i.pixels.is_some_and(|p| p.samples_per_pixel == 1)
        })
        .take(count)
        .cloned()
        .collect();
    assert!(!natives.is_empty());
    (fixtures, natives)
}

/// Runs `tool args... input output` for each native instance, into `out`.
fn reencode(tool: &str, args: &[&str], fixtures: &Path, natives: &[InstanceEntry], out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for (n, instance) in natives.iter().enumerate() {
        let status = Command::new(tool)
            .args(args)
            .arg(fixtures.join(&instance.path))
            .arg(out.join(format!("{n}.dcm")))
            .status()
            .unwrap();
        assert!(status.success(), "{tool} {args:?} {}", instance.path);
    }
}

fn transfer_syntax(file: &Path) -> String {
    let object = dicom_object::open_file(file).unwrap();
    object
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned()
}

/// SOP Instance UID -> CRC32 of the first frame, as dcmtk's `dcmdjpeg`
/// decodes the files of `folder`.
fn dcmtk_checksums(folder: &Path) -> HashMap<String, u32> {
    let mut found = HashMap::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let native = path.with_extension("native");
        let status = Command::new("dcmdjpeg")
            .arg(&path)
            .arg(&native)
            .status()
            .unwrap();
        assert!(status.success(), "dcmdjpeg {}", path.display());
        let object = dicom_object::open_file(&native).unwrap();
        let sop = object
            .element(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0')
            .to_owned();
        let pixels = object
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        found.insert(sop, crc32fast::hash(&pixels));
        std::fs::remove_file(native).unwrap();
    }
    found
}

/// Imports `s3://inputs/{folder}/` into a new datastore and returns, for
/// every stored instance, its SOP Instance UID, stored transfer syntax and
/// first frame's checksum. The job must complete without a failed file.
async fn import(service: &Arc<Service>, s3: &Path, folder: &str) -> Vec<(String, String, u64)> {
    let (_, created) = call(
        service,
        "POST",
        "/datastore",
        json!({"clientToken": folder}),
    )
    .await;
    let ds = json_of(&created)["datastoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, job) = call(
        service,
        "POST",
        &format!("/startDICOMImportJob/datastore/{ds}"),
        json!({
            "clientToken": format!("job-{folder}"),
            "dataAccessRoleArn": "arn:aws:iam::123456789012:role/R",
            "inputS3Uri": format!("s3://inputs/{folder}/"),
            "outputS3Uri": format!("s3://inputs/out-{folder}/"),
        }),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&job));
    let job_id = json_of(&job)["jobId"].as_str().unwrap().to_owned();
    let mut properties = Value::Null;
    for _ in 0..1000 {
        let (_, answer) = call(
            service,
            "GET",
            &format!("/getDICOMImportJob/datastore/{ds}/job/{job_id}"),
            Value::Null,
        )
        .await;
        properties = json_of(&answer)["jobProperties"].clone();
        if properties["jobStatus"] == "COMPLETED" || properties["jobStatus"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(properties["jobStatus"], "COMPLETED", "{properties}");
    let failures = s3
        .join("inputs")
        .join(
            properties["outputS3Uri"]
                .as_str()
                .unwrap()
                .trim_start_matches("s3://inputs/"),
        )
        .join("FAILURE/failure.ndjson");
    let failed = std::fs::read_to_string(&failures).unwrap_or_default();
    assert_eq!(failed.lines().count(), 0, "{folder}: {failed}");
    let (_, found) = call(
        service,
        "POST",
        &format!("/datastore/{ds}/searchImageSets"),
        json!({}),
    )
    .await;
    let mut stored = Vec::new();
    for summary in json_of(&found)["imageSetsMetadataSummaries"]
        .as_array()
        .unwrap()
    {
        let id = summary["imageSetId"].as_str().unwrap();
        let (_, gz) = call(
            service,
            "POST",
            &format!("/datastore/{ds}/imageSet/{id}/getImageSetMetadata"),
            Value::Null,
        )
        .await;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
        let document: Value = serde_json::from_slice(&text).unwrap();
        for series in document["Study"]["Series"].as_object().unwrap().values() {
            for (sop, instance) in series["Instances"].as_object().unwrap() {
                let checksum = instance["ImageFrames"][0]
                    ["PixelDataChecksumFromBaseToFullResolution"][0]["Checksum"]
                    .as_u64()
                    .unwrap();
                let syntax = instance["StoredTransferSyntaxUID"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                stored.push((sop.clone(), syntax, checksum));
            }
        }
    }
    stored
}

fn service(s3: &Path) -> Arc<Service> {
    Service::start(
        EmulatorConfig::default()
            .with_seed(3)
            .with_transition_delay(Duration::ZERO)
            .with_s3_root(s3),
    )
    .unwrap()
}

#[tokio::test]
async fn jpeg_ls_files_from_dcmtk_are_imported_and_stored_losslessly() {
    if !have("dcmcjpls") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, natives) = natives(dir.path(), 4);
    let s3 = dir.path().join("s3");
    let service = service(&s3);
    for (folder, flag, syntax) in [
        ("lossless", "+el", "1.2.840.10008.1.2.4.80"),
        ("near", "+en", "1.2.840.10008.1.2.4.81"),
    ] {
        let out = s3.join("inputs").join(folder);
        reencode("dcmcjpls", &[flag], &fixtures, &natives, &out);
        assert_eq!(transfer_syntax(&out.join("0.dcm")), syntax);
        let stored = import(&service, &s3, folder).await;
        assert_eq!(stored.len(), natives.len(), "{folder}");
        for (sop, syntax, checksum) in stored {
            assert_eq!(syntax, "1.2.840.10008.1.2.4.202");
            // dcmcjpls gives near-lossless (lossy) output new SOP Instance UIDs.
            if folder == "lossless" {
                let original = natives.iter().find(|i| i.sop_instance_uid == sop).unwrap();
                assert_eq!(checksum, u64::from(original.frame_crc32[0]), "{sop}");
            }
        }
    }
}

#[tokio::test]
async fn lossless_jpeg_files_from_dcmtk_are_read_with_every_predictor() {
    if !have("dcmcjpeg") || !have("dcmdjpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, natives) = natives(dir.path(), 3);
    let s3 = dir.path().join("s3");
    let service = service(&s3);
    for predictor in 1..=7 {
        let folder = format!("sv{predictor}");
        let out = s3.join("inputs").join(&folder);
        let predictor = predictor.to_string();
        reencode(
            "dcmcjpeg",
            &["+el", "+sv", &predictor],
            &fixtures,
            &natives,
            &out,
        );
        assert_eq!(
            transfer_syntax(&out.join("0.dcm")),
            "1.2.840.10008.1.2.4.57"
        );
        let stored = import(&service, &s3, &folder).await;
        assert_eq!(stored.len(), natives.len(), "{folder}");
        for (sop, syntax, checksum) in stored {
            assert_eq!(syntax, "1.2.840.10008.1.2.4.202", "{folder}");
            let original = natives.iter().find(|i| i.sop_instance_uid == sop).unwrap();
            assert_eq!(
                checksum,
                u64::from(original.frame_crc32[0]),
                "{folder}: {sop} is stored with its original pixels"
            );
        }
    }
    // A point transform drops low bits: the pixels are dcmtk's decoding of them.
    let out = s3.join("inputs").join("pt2");
    reencode(
        "dcmcjpeg",
        &["+el", "+sv", "6", "+pt", "2"],
        &fixtures,
        &natives,
        &out,
    );
    let expected = dcmtk_checksums(&out);
    let stored = import(&service, &s3, "pt2").await;
    assert_eq!(stored.len(), natives.len());
    for (sop, _, checksum) in stored {
        assert_eq!(checksum, u64::from(expected[&sop]), "pt2: {sop}");
        let original = natives.iter().find(|i| i.sop_instance_uid == sop);
        assert!(
            original.is_none_or(|o| u64::from(o.frame_crc32[0]) != checksum),
            "the low bits were dropped"
        );
    }
}
