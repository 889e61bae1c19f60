//! The metadata document of every series of the `ci` fixture set, checked
//! against the fixtures' manifest: levels, keys, value forms and frames.

use healthimaging_emulator::metadata::{FrameRecord, InstanceRecord, document};
use healthimaging_fixtures::{FixtureSet, Spec};
use serde_json::json;

#[test]
fn every_series_of_the_ci_set_gives_a_faithful_document() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 3,
            patients: None,
        },
        dir.path(),
    )
    .unwrap();
    let mut documents = 0;
    for patient in &manifest.patients {
        for study in &patient.studies {
            for series in &study.series {
                let files: Vec<_> = series
                    .instances
                    .iter()
                    .map(|i| dicom_object::open_file(dir.path().join(&i.path)).unwrap())
                    .collect();
                let frames: Vec<Vec<FrameRecord>> = series
                    .instances
                    .iter()
                    .map(|i| {
                        i.frame_crc32
                            .iter()
                            .enumerate()
                            .map(|(n, crc)| FrameRecord {
                                id: format!("{:032x}", n + 1),
                                width: u32::from(i.pixels.unwrap().columns),
                                height: u32::from(i.pixels.unwrap().rows),
                                checksum: *crc,
                                min: 0,
                                max: 1,
                                size_in_bytes: 10,
                            })
                            .collect()
                    })
                    .collect();
                let records: Vec<InstanceRecord<'_>> = files
                    .iter()
                    .zip(&frames)
                    .map(|(file, frames)| InstanceRecord {
                        meta: file.meta(),
                        dataset: file,
                        stored_transfer_syntax: "1.2.840.10008.1.2.4.202",
                        frames,
                    })
                    .collect();
                let doc = document(&"d".repeat(32), &"i".repeat(32), &records);
                documents += 1;

                assert_eq!(doc["SchemaVersion"], "1.1");
                let patient_dicom = &doc["Patient"]["DICOM"];
                assert_eq!(patient_dicom["PatientID"], patient.patient_id.as_str());
                assert_eq!(
                    patient_dicom["PatientName"],
                    patient.name.as_str(),
                    "UTF-8 names survive"
                );
                assert_eq!(patient_dicom["PatientSex"], patient.sex.as_str());
                let study_dicom = &doc["Study"]["DICOM"];
                assert_eq!(
                    study_dicom["StudyInstanceUID"],
                    study.study_instance_uid.as_str()
                );
                assert_eq!(study_dicom["StudyDate"], study.study_date.as_str());
                assert!(
                    study_dicom["PatientAge"].is_string(),
                    "Patient Study attributes are study level"
                );

                let all_series = doc["Study"]["Series"].as_object().unwrap();
                assert_eq!(all_series.len(), 1);
                let series_doc = &all_series[&series.series_instance_uid];
                let series_dicom = &series_doc["DICOM"];
                assert_eq!(series_dicom["Modality"], series.modality.as_str());
                assert_eq!(
                    series_dicom["SeriesInstanceUID"],
                    series.series_instance_uid.as_str()
                );
                // IS "1" is written padded to an even length, and kept padded.
                let number = series_dicom["SeriesNumber"].as_str().unwrap();
                assert_eq!(number.trim(), series.series_number.to_string());
                assert!(
                    series_dicom["Manufacturer"].is_string(),
                    "General Equipment is series level"
                );
                assert!(
                    series_dicom["SoftwareVersions"].is_array(),
                    "VM 1-n is always an array"
                );

                let instances = series_doc["Instances"].as_object().unwrap();
                assert_eq!(instances.len(), series.instances.len());
                for (entry, frames) in series.instances.iter().zip(&frames) {
                    let instance = &instances[&entry.sop_instance_uid];
                    let dicom = &instance["DICOM"];
                    assert_eq!(dicom["SOPInstanceUID"], entry.sop_instance_uid.as_str());
                    assert_eq!(dicom["TransferSyntaxUID"], entry.transfer_syntax.as_str());
                    assert_eq!(dicom["FileMetaInformationVersion"], "AAE=");
                    assert!(dicom["FileMetaInformationGroupLength"].is_u64());
                    assert!(
                        dicom.get("PixelData").is_none(),
                        "pixel data never enters the document"
                    );
                    assert!(
                        dicom.get("PatientName").is_none(),
                        "patient attributes are hoisted"
                    );
                    assert!(
                        dicom.get("Modality").is_none(),
                        "series attributes are hoisted"
                    );
                    assert_eq!(
                        instance["StoredTransferSyntaxUID"],
                        "1.2.840.10008.1.2.4.202"
                    );
                    assert_eq!(instance["ChecksumType"], "DECOMPRESSED");
                    assert!(instance["DICOMVRs"].is_object());
                    let image_frames = instance["ImageFrames"].as_array().unwrap();
                    assert_eq!(image_frames.len(), frames.len());
                    if let Some(pixels) = entry.pixels {
                        assert_eq!(dicom["Rows"], json!(pixels.rows), "US values are numbers");
                        assert!(dicom["ImageType"].is_array());
                        let levels = image_frames[0]["PixelDataChecksumFromBaseToFullResolution"]
                            .as_array()
                            .unwrap();
                        assert_eq!(
                            levels.last().unwrap()["Checksum"],
                            json!(entry.frame_crc32[0])
                        );
                        assert_eq!(levels.last().unwrap()["Width"], json!(pixels.columns));
                    }
                    if series.modality == "CT" || series.modality == "MR" {
                        assert_eq!(dicom["PixelSpacing"].as_array().unwrap().len(), 2);
                        assert_eq!(dicom["ImagePositionPatient"].as_array().unwrap().len(), 3);
                        assert!(dicom["SliceThickness"].is_string(), "VM 1 DS is a string");
                    }
                    if series.modality == "CT" {
                        assert!(
                            dicom["RescaleIntercept"].is_string(),
                            "DS values are strings"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(documents, manifest.totals.series);
}

/// Grouping reads each file's key straight from its data set; it must be the
/// key the file's one-instance document gives, which is what later imports
/// compare with: checked on every readable file of the `ci` set (its edge
/// cases included) and the `demo` set, and on hand-made padded and missing
/// values.
#[test]
fn the_grouping_key_of_a_data_set_is_the_key_of_its_document() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use healthimaging_emulator::metadata::combine::{grouping_key, grouping_key_of};

    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let key_of_document = |file: &dicom_object::DefaultDicomObject| {
        let series = file
            .element(tags::SERIES_INSTANCE_UID)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default();
        let record = InstanceRecord {
            meta: file.meta(),
            dataset: file,
            stored_transfer_syntax: "",
            frames: &[],
        };
        grouping_key(&document("", "", &[record]), &series)
    };
    let mut checked = 0;
    for (set, seed) in [(FixtureSet::Ci, 5), (FixtureSet::Demo, 2)] {
        let dir = tempfile::tempdir().unwrap();
        healthimaging_fixtures::write(
            &Spec {
                set,
                seed,
                patients: None,
            },
            dir.path(),
        )
        .unwrap();
        let mut files = Vec::new();
        walk(&dir.path().join("dicom"), &mut files);
        for path in files {
            let Ok(file) = dicom_object::open_file(&path) else {
                continue;
            };
            let key = grouping_key_of(&file);
            assert_eq!(key, key_of_document(&file), "{}", path.display());
            assert!(
                key.iter().filter(|v| !v.is_null()).count() >= 2,
                "{}: the key has values",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} files");

    // Padding, a missing attribute and a multi-valued one.
    let mut object = dicom_object::InMemDicomObject::new_empty();
    let put = |object: &mut dicom_object::InMemDicomObject, tag, vr, value: &str| {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    };
    put(&mut object, tags::PATIENT_ID, VR::LO, "P-1 ");
    put(&mut object, tags::STUDY_DATE, VR::DA, "20240101");
    put(&mut object, tags::ACCESSION_NUMBER, VR::SH, "A\\B");
    put(&mut object, tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3\0");
    put(&mut object, tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4\0");
    put(&mut object, tags::SERIES_NUMBER, VR::IS, " 7");
    put(&mut object, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5");
    let file = object
        .with_meta(
            dicom_object::meta::FileMetaTableBuilder::new()
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                .media_storage_sop_instance_uid("1.2.3.4.5")
                .transfer_syntax("1.2.840.10008.1.2.1"),
        )
        .unwrap();
    let key = grouping_key_of(&file);
    assert_eq!(key, key_of_document(&file));
    assert_eq!(key[0], json!("P-1"), "padding trimmed");
    assert_eq!(key[4], serde_json::Value::Null, "no StudyID");
}
