//! `importConfiguration.dicomJsonMetadataImportConfiguration`: DICOM JSON
//! metadata files (paths relative to `inputS3Uri`) applied to the imported
//! instances of a study, or of one series of it.
//!
//! Each file is one DICOM JSON object (PS3.18 F.2). Its attributes replace
//! or add to those of every instance of the mapped study (and series), as
//! the instance is read: before grouping, so the image sets, their primary
//! status and their documents all see the enhanced metadata. Study-level
//! mappings apply first, series-level ones after. A file cannot change the
//! UIDs, the file meta information or the pixel data. The files themselves
//! are not imported. A mapping file that cannot be read or used fails the
//! job before anything is imported.

use dicom_core::Tag;
use dicom_core::header::Header;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde_json::Value as Json;

use crate::s3::{S3Root, S3Uri};

#[derive(Debug, Clone)]
struct Mapping {
    study: String,
    series: Option<String>,
    attributes: InMemDicomObject,
}

/// The mappings of a job (none for a plain import).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    mappings: Vec<Mapping>,
    /// The keys of the mapping files, which are not imported.
    pub files: Vec<String>,
}

/// Attributes a metadata file may not set.
const PROTECTED: [Tag; 4] = [
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::SOP_INSTANCE_UID,
    tags::PIXEL_DATA,
];

impl Overrides {
    /// Reads every mapping file of `configuration` from under `input`.
    pub fn load(s3: &S3Root, input: &S3Uri, configuration: &Json) -> Result<Self, String> {
        let mappings =
            configuration["dicomJsonMetadataImportConfiguration"]["dicomMetadataMappings"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        let prefix = if input.key.is_empty() || input.key.ends_with('/') {
            input.key.clone()
        } else {
            format!("{}/", input.key)
        };
        let mut overrides = Self::default();
        for mapping in mappings {
            let path = mapping["metadataFilePath"].as_str().unwrap_or_default();
            let key = format!("{prefix}{path}");
            let uri = S3Uri {
                bucket: input.bucket.clone(),
                key: key.clone(),
            };
            let bytes = s3
                .read(&uri)
                .map_err(|e| format!("Could not read the metadata file {path}: {e}"))?;
            let json: Json = serde_json::from_slice(&bytes)
                .map_err(|e| format!("The metadata file {path} is not JSON: {e}"))?;
            let attributes = crate::dicomweb::dataset::from_json(&json)
                .map_err(|e| format!("The metadata file {path} is not DICOM JSON: {e}"))?;
            if let Some(element) = attributes
                .iter()
                .find(|e| e.tag().group() == 0x0002 || PROTECTED.contains(&e.tag()))
            {
                let tag = element.tag();
                return Err(format!(
                    "The metadata file {path} sets {} ({:04X}{:04X}), which an import cannot change",
                    crate::metadata::keyword(tag),
                    tag.group(),
                    tag.element()
                ));
            }
            overrides.mappings.push(Mapping {
                study: mapping["studyInstanceUID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                series: mapping["seriesInstanceUID"].as_str().map(str::to_owned),
                attributes,
            });
            overrides.files.push(key);
        }
        // Study-wide mappings first, so that a series' own mapping wins.
        overrides.mappings.sort_by_key(|m| m.series.is_some());
        Ok(overrides)
    }

    /// Applies the mappings that concern `dataset`'s study and series.
    pub fn apply(&self, dataset: &mut InMemDicomObject) {
        if self.mappings.is_empty() {
            return;
        }
        let text = |dataset: &InMemDicomObject, tag| {
            dataset
                .element(tag)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let study = text(dataset, tags::STUDY_INSTANCE_UID);
        let series = text(dataset, tags::SERIES_INSTANCE_UID);
        for mapping in &self.mappings {
            if mapping.study == study && mapping.series.as_ref().is_none_or(|s| *s == series) {
                for element in mapping.attributes.iter() {
                    dataset.put(element.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::Method;
    use healthimaging_fixtures::{FixtureSet, Spec};
    use serde_json::json;

    use super::*;
    use crate::testing::{active_datastore, send, service};

    async fn run_job(
        service: &std::sync::Arc<crate::Service>,
        ds: &str,
        token: &str,
        configuration: Json,
    ) -> Json {
        let body = json!({
            "clientToken": token,
            "dataAccessRoleArn": "arn:aws:iam::123456789012:role/R",
            "inputS3Uri": "s3://fixtures/ci/dicom/",
            "outputS3Uri": format!("s3://fixtures/out-{token}/"),
            "importConfiguration": configuration,
        });
        let (status, _, job) = send(
            service,
            Method::POST,
            &format!("/startDICOMImportJob/datastore/{ds}"),
            &body.to_string(),
        )
        .await;
        assert_eq!(status.as_u16(), 200, "{job}");
        let uri = format!(
            "/getDICOMImportJob/datastore/{ds}/job/{}",
            job["jobId"].as_str().unwrap()
        );
        for _ in 0..2000 {
            let properties = send(service, Method::GET, &uri, "").await.2["jobProperties"].clone();
            if properties["jobStatus"] == "COMPLETED" || properties["jobStatus"] == "FAILED" {
                return properties;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the job did not end");
    }

    fn mapping(study: &str, series: Option<&str>, path: &str) -> Json {
        let mut mapping = json!({"studyInstanceUID": study, "metadataFilePath": path});
        if let Some(series) = series {
            mapping["seriesInstanceUID"] = json!(series);
        }
        mapping
    }

    #[tokio::test]
    async fn metadata_files_enhance_their_study_and_series_and_are_not_imported() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let manifest = healthimaging_fixtures::write(
            &Spec {
                set: FixtureSet::Ci,
                seed: 21,
                patients: None,
            },
            &service.s3.path().join("fixtures/ci"),
        )
        .unwrap();
        let study = &manifest.patients[0].studies[0];
        let series = &study.series[0];
        let write = |key: &str, value: Json| {
            let uri = S3Uri::parse(&format!("s3://fixtures/ci/dicom/{key}")).unwrap();
            service
                .s3
                .write(&uri, value.to_string().as_bytes())
                .unwrap();
        };
        write(
            "meta/study.json",
            json!({"00081030": {"vr": "LO", "Value": ["ENHANCED STUDY"]},
                   "00100010": {"vr": "PN", "Value": [{"Alphabetic": "ENHANCED^NAME"}]}}),
        );
        write(
            "meta/series.json",
            json!([{"0008103E": {"vr": "LO", "Value": ["ENHANCED SERIES"]}}]),
        );
        let configuration = json!({"dicomJsonMetadataImportConfiguration": {"dicomMetadataMappings": [
            mapping(&study.study_instance_uid, Some(&series.series_instance_uid), "meta/series.json"),
            mapping(&study.study_instance_uid, None, "meta/study.json"),
        ]}});
        let job = run_job(&service, &ds, "enhance", configuration.clone()).await;
        assert_eq!(job["jobStatus"], "COMPLETED", "{job}");
        assert_eq!(job["importConfiguration"], configuration, "echoed");
        let failures = std::fs::read_to_string(
            service
                .s3
                .path()
                .join("fixtures")
                .join(
                    job["outputS3Uri"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("s3://fixtures/"),
                )
                .join("FAILURE/failure.ndjson"),
        )
        .unwrap_or_default();
        assert_eq!(
            failures.lines().count(),
            manifest.expected_import.failures.len(),
            "the metadata files are not imported: {failures}"
        );
        let documents: Vec<Json> = service
            .store()
            .read(|r| {
                let mut documents = Vec::new();
                for set in r.primaries_by_update(&ds)? {
                    let blob = set.latest().metadata.clone().unwrap();
                    documents.push(crate::import::load_document(&service, &blob).unwrap());
                }
                Ok::<_, crate::store::StoreError>(documents)
            })
            .unwrap();
        let mut seen = (0, 0, 0);
        for document in &documents {
            let uid = document["Study"]["DICOM"]["StudyInstanceUID"]
                .as_str()
                .unwrap();
            let description = &document["Study"]["DICOM"]["StudyDescription"];
            if uid == study.study_instance_uid {
                assert_eq!(description, "ENHANCED STUDY");
                assert_eq!(document["Patient"]["DICOM"]["PatientName"], "ENHANCED^NAME");
                for (series_uid, node) in document["Study"]["Series"].as_object().unwrap() {
                    let text = &node["DICOM"]["SeriesDescription"];
                    if *series_uid == series.series_instance_uid {
                        assert_eq!(text, "ENHANCED SERIES");
                        seen.1 += 1;
                    } else {
                        assert_ne!(text, "ENHANCED SERIES");
                    }
                }
                seen.0 += 1;
            } else {
                assert_ne!(description, "ENHANCED STUDY");
                seen.2 += 1;
            }
        }
        assert!(seen.0 >= 1 && seen.1 >= 1 && seen.2 >= 1, "{seen:?}");

        // A file that would change a UID, or one that is missing: the job fails, naming it.
        write(
            "meta/bad.json",
            json!({"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}),
        );
        for (token, path, says) in [
            ("uid", "meta/bad.json", "StudyInstanceUID"),
            ("missing", "meta/none.json", "meta/none.json"),
        ] {
            let configuration = json!({"dicomJsonMetadataImportConfiguration": {"dicomMetadataMappings": [
                mapping(&study.study_instance_uid, None, path),
            ]}});
            let job = run_job(&service, &ds, token, configuration).await;
            assert_eq!(job["jobStatus"], "FAILED", "{job}");
            assert!(
                job["message"].as_str().unwrap_or_default().contains(says),
                "{job}"
            );
        }
    }
}
