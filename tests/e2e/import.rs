//! DICOM import of the `ci` fixture set through the SDK, checked against the
//! fixtures' manifest: image sets, grouping, primary flags, failures file by
//! file, the job's output files, and every frame bit for bit.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_medicalimaging::types::JobStatus;
use healthimaging_e2e::{Fixture, all_image_sets, metadata, write_fixtures};
use healthimaging_fixtures::FixtureSet;
use serde_json::Value;

#[tokio::test]
async fn importing_the_ci_set_gives_what_its_manifest_expects() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let manifest = write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx.active_datastore("import").await;

    let job = fx
        .import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out")
        .await;
    assert_eq!(
        job.job_status(),
        &JobStatus::Completed,
        "{:?}",
        job.message()
    );
    let output = job.output_s3_uri();
    assert_eq!(
        output,
        format!("s3://fixtures/out/{ds}-DicomImport-{}/", job.job_id())
    );
    assert!(job.ended_at().is_some());

    // Image sets: one per expected set, with its instances and primary flag.
    let summaries = all_image_sets(&fx.sdk, &ds).await;
    assert_eq!(summaries.len(), manifest.expected_import.image_sets.len());
    let mut found: Vec<(String, bool, BTreeSet<String>)> = Vec::new();
    for summary in &summaries {
        assert_eq!(summary.version(), Some(1));
        let doc = metadata(&fx.sdk, &ds, summary.image_set_id(), None).await;
        assert_eq!(doc["ImageSetID"], summary.image_set_id());
        assert_eq!(doc["DatastoreID"], ds.as_str());
        let series = doc["Study"]["Series"].as_object().unwrap();
        assert_eq!(series.len(), 1, "an image set holds one series");
        let (series_uid, series) = series.iter().next().unwrap();
        let tags = summary.dicom_tags().unwrap();
        assert_eq!(tags.dicom_series_instance_uid(), Some(series_uid.as_str()));
        let sops = series["Instances"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        found.push((series_uid.clone(), summary.is_primary().unwrap(), sops));
    }
    for expected in &manifest.expected_import.image_sets {
        let sops: BTreeSet<String> = expected.sop_instance_uids.iter().cloned().collect();
        assert!(
            found.contains(&(expected.series_instance_uid.clone(), expected.primary, sops)),
            "no image set matches {expected:?}"
        );
    }

    // Failures, file by file, and the job's output files.
    let out_dir = s3
        .join("fixtures/out")
        .join(format!("{ds}-DicomImport-{}", job.job_id()));
    let failures: BTreeMap<String, String> = ndjson(&out_dir.join("FAILURE/failure.ndjson"))
        .into_iter()
        .map(|line| {
            assert!(
                line["exception"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            (
                line["inputFile"].as_str().unwrap().to_owned(),
                line["exception"]["exceptionType"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let expected_failures: BTreeSet<String> = manifest
        .expected_import
        .failures
        .iter()
        .map(|f| format!("ci/{}", f.path))
        .collect();
    assert_eq!(
        failures.keys().cloned().collect::<BTreeSet<_>>(),
        expected_failures
    );
    let successes = ndjson(&out_dir.join("SUCCESS/success.ndjson"));
    assert_eq!(successes.len(), manifest.totals.instances);
    let job_manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("job-output-manifest.json")).unwrap())
            .unwrap();
    let summary = &job_manifest["jobSummary"];
    assert_eq!(summary["numberOfScannedFiles"], manifest.totals.files);
    assert_eq!(summary["numberOfImportedFiles"], manifest.totals.instances);
    assert_eq!(
        summary["numberOfFilesWithCustomerError"],
        manifest.expected_import.failures.len()
    );
    assert_eq!(
        summary["numberOfGeneratedImageSets"],
        manifest.expected_import.image_sets.len()
    );
}

#[tokio::test]
async fn every_stored_frame_decodes_to_its_source_pixels_and_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let manifest = write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx.active_datastore("frames").await;
    let job = fx
        .import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    assert_eq!(job.job_status(), &JobStatus::Completed);

    let mut expected: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for patient in &manifest.patients {
        for study in &patient.studies {
            for series in &study.series {
                for instance in &series.instances {
                    expected.insert(
                        instance.sop_instance_uid.clone(),
                        instance.frame_crc32.clone(),
                    );
                }
            }
        }
    }
    let mut frames_checked = 0;
    for summary in all_image_sets(&fx.sdk, &ds).await {
        let set = summary.image_set_id();
        let doc = metadata(&fx.sdk, &ds, set, None).await;
        for series in doc["Study"]["Series"].as_object().unwrap().values() {
            for (sop, instance) in series["Instances"].as_object().unwrap() {
                let frames = instance["ImageFrames"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let crcs = &expected[sop];
                assert_eq!(frames.len(), crcs.len(), "instance {sop}");
                if !frames.is_empty() {
                    assert_eq!(
                        instance["StoredTransferSyntaxUID"],
                        "1.2.840.10008.1.2.4.202"
                    );
                }
                let bits: u32 = instance["DICOM"]["BitsAllocated"].as_u64().unwrap_or(16) as u32;
                for (frame, crc) in frames.iter().zip(crcs) {
                    let checksum = frame["PixelDataChecksumFromBaseToFullResolution"][0]["Checksum"]
                        .as_u64()
                        .unwrap() as u32;
                    assert_eq!(checksum, *crc, "the metadata checksum is the source's");
                    let got = fx
                        .sdk
                        .get_image_frame()
                        .datastore_id(&ds)
                        .image_set_id(set)
                        .image_frame_information(
                            aws_sdk_medicalimaging::types::ImageFrameInformation::builder()
                                .image_frame_id(frame["ID"].as_str().unwrap())
                                .build()
                                .unwrap(),
                        )
                        .send()
                        .await
                        .expect("frame");
                    assert_eq!(got.content_type(), Some("image/jph"));
                    let bytes = got.image_frame_blob.collect().await.unwrap().into_bytes();
                    assert_eq!(
                        bytes.len() as u64,
                        frame["FrameSizeInBytes"].as_u64().unwrap()
                    );
                    let decoded = healthimaging_codec::jpeg2000::decode(&bytes).unwrap();
                    let buffer: Vec<u8> = if bits <= 8 {
                        decoded.samples.iter().map(|&s| s as u8).collect()
                    } else {
                        decoded
                            .samples
                            .iter()
                            .flat_map(|&s| (s as u16).to_le_bytes())
                            .collect()
                    };
                    assert_eq!(
                        crc32fast::hash(&buffer),
                        *crc,
                        "lossless: the source pixels come back"
                    );
                    let min = decoded.samples.iter().min().copied().unwrap();
                    assert_eq!(frame["MinPixelValue"].as_i64(), Some(i64::from(min)));
                    frames_checked += 1;
                }
            }
        }
    }
    let all: usize = expected.values().map(Vec::len).sum();
    assert_eq!(frames_checked, all);
    assert!(frames_checked > 0);
}

fn ndjson(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
