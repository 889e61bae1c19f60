//! JPEG-LS input: files of the `ci` set re-encoded by dcmtk's `dcmcjpls`
//! (an independent encoder, its own CharLS build) as JPEG-LS lossless
//! (`.4.80`) and near-lossless (`.4.81`), imported, and checked: every frame
//! is stored as HTJ2K, and lossless frames keep the manifest's CRC32 of the
//! original pixels.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use healthimaging_emulator::{EmulatorConfig, Service, router};
use healthimaging_fixtures::{FixtureSet, Spec};
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

#[tokio::test]
async fn jpeg_ls_files_from_dcmtk_are_imported_and_stored_losslessly() {
    if Command::new("dcmcjpls").arg("--version").output().is_err() {
        eprintln!("skipped: dcmtk's dcmcjpls is not installed (apt-get install dcmtk)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 31,
            patients: None,
        },
        &fixtures,
    )
    .unwrap();
    // Native single-component instances, re-encoded both ways.
    let natives: Vec<_> = manifest
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .flat_map(|s| &s.series)
        .flat_map(|s| &s.instances)
        .filter(|i| {
            i.transfer_syntax == "1.2.840.10008.1.2.1"
                && i.pixels.is_some_and(|p| p.samples_per_pixel == 1)
        })
        .take(4)
        .collect();
    assert!(!natives.is_empty());
    let s3 = dir.path().join("s3");
    for (folder, flag) in [("lossless", "+el"), ("near", "+en")] {
        let out = s3.join("jls").join(folder);
        std::fs::create_dir_all(&out).unwrap();
        for (n, instance) in natives.iter().enumerate() {
            let status = Command::new("dcmcjpls")
                .arg(flag)
                .arg(fixtures.join(&instance.path))
                .arg(out.join(format!("{n}.dcm")))
                .status()
                .unwrap();
            assert!(status.success(), "dcmcjpls {flag} {}", instance.path);
        }
    }
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(3)
            .with_transition_delay(Duration::ZERO)
            .with_s3_root(&s3),
    )
    .unwrap();
    for (folder, syntax) in [
        ("lossless", "1.2.840.10008.1.2.4.80"),
        ("near", "1.2.840.10008.1.2.4.81"),
    ] {
        let file = std::fs::read(s3.join("jls").join(folder).join("0.dcm")).unwrap();
        let object = dicom_object::from_reader(&file[128..]).unwrap();
        assert_eq!(
            object.meta().transfer_syntax().trim_end_matches('\0'),
            syntax
        );
        let (_, created) = call(
            &service,
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
            &service,
            "POST",
            &format!("/startDICOMImportJob/datastore/{ds}"),
            json!({
                "clientToken": format!("job-{folder}"),
                "dataAccessRoleArn": "arn:aws:iam::123456789012:role/R",
                "inputS3Uri": format!("s3://jls/{folder}/"),
                "outputS3Uri": format!("s3://jls/out-{folder}/"),
            }),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&job));
        let job_id = json_of(&job)["jobId"].as_str().unwrap().to_owned();
        let mut properties = Value::Null;
        for _ in 0..1000 {
            let (_, answer) = call(
                &service,
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
        let failures = Path::new(&s3)
            .join("jls")
            .join(
                properties["outputS3Uri"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("s3://jls/"),
            )
            .join("FAILURE/failure.ndjson");
        let failed = std::fs::read_to_string(&failures).unwrap_or_default();
        assert_eq!(failed.lines().count(), 0, "{failed}");
        // Every stored frame: HTJ2K, and for lossless input the original pixels' CRC32.
        let (_, found) = call(
            &service,
            "POST",
            &format!("/datastore/{ds}/searchImageSets"),
            json!({}),
        )
        .await;
        let mut checked = 0;
        for summary in json_of(&found)["imageSetsMetadataSummaries"]
            .as_array()
            .unwrap()
        {
            let id = summary["imageSetId"].as_str().unwrap();
            let (_, gz) = call(
                &service,
                "POST",
                &format!("/datastore/{ds}/imageSet/{id}/getImageSetMetadata"),
                Value::Null,
            )
            .await;
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
                .unwrap();
            let document: Value = serde_json::from_slice(&text).unwrap();
            for series in document["Study"]["Series"].as_object().unwrap().values() {
                for (sop, instance) in series["Instances"].as_object().unwrap() {
                    assert_eq!(
                        instance["StoredTransferSyntaxUID"],
                        "1.2.840.10008.1.2.4.202"
                    );
                    let checksum =
                        instance["ImageFrames"][0]["PixelDataChecksumFromBaseToFullResolution"][0]
                            ["Checksum"]
                            .as_u64()
                            .unwrap();
                    // dcmcjpls gives near-lossless (lossy) output new SOP Instance UIDs.
                    if folder == "lossless" {
                        let original = natives.iter().find(|i| &i.sop_instance_uid == sop).unwrap();
                        assert_eq!(checksum, u64::from(original.frame_crc32[0]), "{sop}");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, natives.len(), "{folder}");
    }
}
