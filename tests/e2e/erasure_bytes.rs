//! Erasure erases: once every image set of a patient is deleted, nothing of
//! the patient can be read through the API, and not one byte of the data
//! directory (the database, its write-ahead log, every blob, gzipped
//! documents decompressed) holds the patient's name, ID, birth date or
//! accession numbers, before and after a restart.

use std::io::Read;
use std::path::Path;

use aws_sdk_medicalimaging::types::{
    ImageFrameInformation, Operator, SearchByAttributeValue, SearchCriteria, SearchFilter,
};
use healthimaging_e2e::{Fixture, metadata, write_fixtures};
use healthimaging_emulator::store::BlobId;
use healthimaging_fixtures::FixtureSet;

/// Every file under `dir`, with gzipped ones decompressed too.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                if flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .is_ok()
                {
                    found.push((format!("{} (gunzipped)", path.display()), plain));
                }
            }
            found.push((path.display().to_string(), bytes));
        }
    }
    found
}

/// The files holding any of `needles`.
fn hits(dir: &Path, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for (name, bytes) in contents(dir) {
        for needle in needles {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                hits.push(format!("{name}: {needle}"));
            }
        }
    }
    hits
}

#[tokio::test]
async fn an_erased_patient_leaves_no_byte_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (data, s3) = (dir.path().join("data"), dir.path().join("s3"));
    let manifest = write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_data_dir(&data).with_s3_root(&s3)).await;
    let ds = fx.active_datastore("erasure").await;
    fx.import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;

    let patient = &manifest.patients[0];
    let other = &manifest.patients[1];
    let mut needles = vec![
        patient.patient_id.clone(),
        patient.name.clone(),
        patient.birth_date.clone(),
    ];
    needles.extend(patient.studies.iter().map(|s| s.accession_number.clone()));
    let others = vec![other.patient_id.clone(), other.name.clone()];
    assert!(
        !hits(&data, &needles).is_empty(),
        "the scan finds the patient before the erasure"
    );

    let criteria = SearchCriteria::builder()
        .filters(
            SearchFilter::builder()
                .operator(Operator::Equal)
                .values(SearchByAttributeValue::DicomPatientId(
                    patient.patient_id.clone(),
                ))
                .build()
                .unwrap(),
        )
        .build();
    let found = fx
        .sdk
        .search_image_sets()
        .datastore_id(&ds)
        .search_criteria(criteria.clone())
        .send()
        .await
        .unwrap();
    let sets: Vec<String> = found
        .image_sets_metadata_summaries()
        .iter()
        .map(|s| s.image_set_id().to_owned())
        .collect();
    assert!(sets.len() >= 2, "the patient has several image sets");
    let mut frames = Vec::new();
    for set in &sets {
        let document = metadata(&fx.sdk, &ds, set, None).await;
        for series in document["Study"]["Series"].as_object().unwrap().values() {
            for instance in series["Instances"].as_object().unwrap().values() {
                for frame in instance["ImageFrames"].as_array().into_iter().flatten() {
                    let id = frame["ID"].as_str().unwrap().to_owned();
                    let bytes = fx
                        .sdk
                        .get_image_frame()
                        .datastore_id(&ds)
                        .image_set_id(set)
                        .image_frame_information(
                            ImageFrameInformation::builder()
                                .image_frame_id(&id)
                                .build()
                                .unwrap(),
                        )
                        .send()
                        .await
                        .unwrap()
                        .image_frame_blob
                        .collect()
                        .await
                        .unwrap()
                        .into_bytes();
                    frames.push((set.clone(), id, BlobId::of(&bytes)));
                }
            }
        }
    }
    assert!(!frames.is_empty());

    for set in &sets {
        fx.sdk
            .delete_image_set()
            .datastore_id(&ds)
            .image_set_id(set)
            .send()
            .await
            .unwrap();
    }
    fx.settle();

    // Nothing is readable through the API.
    for set in &sets {
        let got = fx
            .sdk
            .get_image_set()
            .datastore_id(&ds)
            .image_set_id(set)
            .send()
            .await
            .unwrap();
        assert_eq!(got.image_set_state().as_str(), "DELETED");
        let error = fx
            .sdk
            .get_image_set_metadata()
            .datastore_id(&ds)
            .image_set_id(set)
            .version_id("1")
            .send()
            .await
            .unwrap_err();
        assert!(
            error.into_service_error().is_resource_not_found_exception(),
            "metadata of {set}"
        );
    }
    for (set, id, _) in &frames {
        let error = fx
            .sdk
            .get_image_frame()
            .datastore_id(&ds)
            .image_set_id(set)
            .image_frame_information(
                ImageFrameInformation::builder()
                    .image_frame_id(id)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert!(error.into_service_error().is_resource_not_found_exception());
    }
    let searched = fx
        .sdk
        .search_image_sets()
        .datastore_id(&ds)
        .search_criteria(criteria)
        .send()
        .await
        .unwrap();
    assert!(searched.image_sets_metadata_summaries().is_empty());

    // Not a byte on disk, running and after a restart.
    let blob_file = |id: &BlobId| data.join("blobs").join(&id.as_str()[..2]).join(id.as_str());
    let check = |round: &str| {
        assert_eq!(hits(&data, &needles), Vec::<String>::new(), "{round}");
        for (_, _, blob) in &frames {
            assert!(
                !blob_file(blob).exists(),
                "{round}: frame blob {blob:?} remains"
            );
        }
        assert!(
            !hits(&data, &others).is_empty(),
            "{round}: the other patients are still there"
        );
    };
    check("running");
    fx.emulator.shutdown().await.unwrap();
    let restarted = healthimaging_emulator::Emulator::start(
        healthimaging_emulator::EmulatorConfig::default()
            .with_data_dir(&data)
            .with_s3_root(&s3),
    )
    .await
    .unwrap();
    restarted.shutdown().await.unwrap();
    check("after a restart");
}
