//! An image set, its versions, and the DICOM attributes search reads.
//!
//! An image set never forgets a version while it lives: every write appends
//! one, and every old version stays readable (`?version=`). The metadata
//! document of each version is a blob ([`ImageSetVersion::metadata`]);
//! frames are shared by every version that lists them. Once the image set is
//! deleted its versions keep only their states and times.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::clock::Timestamp;

use super::blobs::BlobId;

/// `ImageSetState` of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageSetState {
    /// Readable and writable.
    Active,
    /// A write is in progress.
    Locked,
    /// Deleted.
    Deleted,
}

/// `ImageSetWorkflowStatus` of the model (the values the emulator produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowStatus {
    /// Made by an import.
    Imported,
    /// Being imported.
    Importing,
    /// An import failed.
    ImportFailed,
    /// An update is being applied.
    Updating,
    /// A Study-level update of another primary image set of the study is
    /// being applied (`includeStudyImageSets`).
    UpdatingForStudyConsistency,
    /// An update was applied.
    Updated,
    /// An update failed; the version's `message` says why.
    UpdateFailed,
    /// A copy is being written into this image set.
    Copying,
    /// This image set is the source of a running copy: readable, not writable.
    CopyingWithReadOnlyAccess,
    /// A copy was written into this image set.
    Copied,
    /// A copy into this image set failed; the version's `message` says why.
    CopyFailed,
    /// Being deleted.
    Deleting,
    /// Deleted.
    Deleted,
}

/// A write in progress: the image set is `LOCKED` with `status` until `until`.
///
/// Like a datastore's status, the lock is not released by a task but read
/// against the clock, so a write settles by itself after the transition
/// delay and a test settles it by moving a manual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    /// When the write settles.
    pub until: Timestamp,
    /// The workflow status while it runs.
    pub status: WorkflowStatus,
}

/// The wire name of a serde enum value.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Json::String(name)) => name,
        _ => String::new(),
    }
}

/// The attributes a search filters on and its summaries report
/// (`DICOMTags` of `ImageSetsMetadataSummary`), read from the Patient, Study
/// and Series levels of the version's metadata document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DicomTags {
    /// PatientID.
    pub patient_id: Option<String>,
    /// PatientName.
    pub patient_name: Option<String>,
    /// PatientBirthDate.
    pub patient_birth_date: Option<String>,
    /// PatientSex.
    pub patient_sex: Option<String>,
    /// StudyInstanceUID.
    pub study_instance_uid: Option<String>,
    /// StudyID.
    pub study_id: Option<String>,
    /// StudyDescription.
    pub study_description: Option<String>,
    /// AccessionNumber.
    pub accession_number: Option<String>,
    /// StudyDate.
    pub study_date: Option<String>,
    /// StudyTime.
    pub study_time: Option<String>,
    /// SeriesInstanceUID.
    pub series_instance_uid: Option<String>,
    /// Modality.
    pub series_modality: Option<String>,
    /// BodyPartExamined.
    pub series_body_part: Option<String>,
    /// SeriesNumber.
    pub series_number: Option<i32>,
    /// Series in the study, as far as this image set knows.
    pub number_of_study_related_series: u32,
    /// Instances in the study, as far as this image set knows.
    pub number_of_study_related_instances: u32,
}

impl DicomTags {
    /// The attributes of a metadata document.
    pub fn of_document(document: &Json) -> Self {
        let patient = &document["Patient"]["DICOM"];
        let study = &document["Study"]["DICOM"];
        let series_map = document["Study"]["Series"].as_object();
        let first_series = series_map.and_then(|all| all.values().next());
        let series = first_series.map(|s| &s["DICOM"]).unwrap_or(&Json::Null);
        let text = |level: &Json, key: &str| -> Option<String> {
            match &level[key] {
                Json::String(s) => Some(s.trim().to_owned()),
                Json::Array(values) => values.first().and_then(Json::as_str).map(str::to_owned),
                _ => None,
            }
        };
        let instances: usize = series_map
            .map(|all| {
                all.values()
                    .map(|s| s["Instances"].as_object().map_or(0, |i| i.len()))
                    .sum()
            })
            .unwrap_or(0);
        Self {
            patient_id: text(patient, "PatientID"),
            patient_name: text(patient, "PatientName"),
            patient_birth_date: text(patient, "PatientBirthDate"),
            patient_sex: text(patient, "PatientSex"),
            study_instance_uid: text(study, "StudyInstanceUID"),
            study_id: text(study, "StudyID"),
            study_description: text(study, "StudyDescription"),
            accession_number: text(study, "AccessionNumber"),
            study_date: text(study, "StudyDate"),
            study_time: text(study, "StudyTime"),
            series_instance_uid: text(series, "SeriesInstanceUID"),
            series_modality: text(series, "Modality"),
            series_body_part: text(series, "BodyPartExamined"),
            series_number: text(series, "SeriesNumber").and_then(|n| n.trim().parse().ok()),
            number_of_study_related_series: series_map.map_or(0, |all| all.len() as u32),
            number_of_study_related_instances: instances as u32,
        }
    }

    /// StudyDate and StudyTime as one sortable string,
    /// `YYYYMMDDHHMMSS.FFFFFF`; a missing time counts as midnight.
    pub fn study_date_and_time(&self) -> Option<String> {
        let date = self.study_date.as_deref()?;
        Some(normalized_date_time(date, self.study_time.as_deref()))
    }

    /// `DICOMTags` on the wire: only the attributes the image set has.
    pub fn to_wire(&self) -> Json {
        let mut out = serde_json::Map::new();
        let mut put = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                out.insert(key.to_owned(), Json::String(value.clone()));
            }
        };
        put("DICOMPatientId", &self.patient_id);
        put("DICOMPatientName", &self.patient_name);
        put("DICOMPatientBirthDate", &self.patient_birth_date);
        put("DICOMPatientSex", &self.patient_sex);
        put("DICOMStudyInstanceUID", &self.study_instance_uid);
        put("DICOMStudyId", &self.study_id);
        put("DICOMStudyDescription", &self.study_description);
        put("DICOMAccessionNumber", &self.accession_number);
        put("DICOMSeriesInstanceUID", &self.series_instance_uid);
        put("DICOMSeriesModality", &self.series_modality);
        put("DICOMSeriesBodyPart", &self.series_body_part);
        put("DICOMStudyDate", &self.study_date);
        put("DICOMStudyTime", &self.study_time);
        if let Some(number) = self.series_number {
            out.insert("DICOMSeriesNumber".into(), number.into());
        }
        out.insert(
            "DICOMNumberOfStudyRelatedSeries".into(),
            self.number_of_study_related_series.into(),
        );
        out.insert(
            "DICOMNumberOfStudyRelatedInstances".into(),
            self.number_of_study_related_instances.into(),
        );
        Json::Object(out)
    }
}

/// A DICOM date and optional time (`HHMMSS.FFFFFF`, any precision) as
/// `YYYYMMDDHHMMSS.FFFFFF`, so that string order is time order.
pub fn normalized_date_time(date: &str, time: Option<&str>) -> String {
    let time = time.unwrap_or("").trim();
    let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
    let whole: String = whole.chars().filter(char::is_ascii_digit).take(6).collect();
    let fraction: String = fraction
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    format!("{}{whole:0<6}.{fraction:0<6}", date.trim())
}

/// One version of an image set.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSetVersion {
    /// `versionId`: 1, 2, …
    pub version_id: u32,
    /// `imageSetState`.
    pub state: ImageSetState,
    /// `imageSetWorkflowStatus`.
    pub workflow_status: WorkflowStatus,
    /// When this version was written.
    pub created_at: Timestamp,
    /// When this version last changed state.
    pub updated_at: Timestamp,
    /// `message`, on a failed write.
    pub message: Option<String>,
    /// `overrides.forced`.
    pub forced: bool,
    /// The attributes of this version's document (empty once erased).
    pub tags: DicomTags,
    /// The gzipped document; `None` once the image set is erased.
    pub metadata: Option<BlobId>,
}

impl ImageSetVersion {
    /// Version `version_id` as an import writes it: `ACTIVE` and `IMPORTED`
    /// from `at`, describing `tags`, with its document stored as `metadata`.
    pub fn imported(
        version_id: u32,
        at: Timestamp,
        tags: DicomTags,
        metadata: Option<BlobId>,
    ) -> Self {
        Self {
            version_id,
            state: ImageSetState::Active,
            workflow_status: WorkflowStatus::Imported,
            created_at: at,
            updated_at: at,
            message: None,
            forced: false,
            tags,
            metadata,
        }
    }
}

/// An image set and its newest version.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// The image set's row in the store.
    pub(crate) row: i64,
    /// `imageSetId`.
    pub id: String,
    /// The datastore holding it.
    pub datastore_id: String,
    /// `isPrimary`.
    pub is_primary: bool,
    /// When version 1 was written.
    pub created_at: Timestamp,
    /// The resource tags.
    pub tags: BTreeMap<String, String>,
    /// The write in progress, if one was started and may not have settled.
    pub lock: Option<Lock>,
    /// The newest version.
    pub latest: ImageSetVersion,
    /// When its data was last read or written (the storage tier's clock).
    pub last_accessed_at: Timestamp,
}

/// How long an image set stays `FREQUENT_ACCESS` without a touch.
pub const ARCHIVE_AFTER_MILLIS: u64 = 30 * 24 * 60 * 60 * 1000;

impl ImageSet {
    /// `storageTier` at `now`: `ARCHIVE_INSTANT_ACCESS` after 30 days
    /// without a touch, `FREQUENT_ACCESS` otherwise.
    pub fn storage_tier(&self, now: Timestamp) -> &'static str {
        if now
            .as_millis()
            .saturating_sub(self.last_accessed_at.as_millis())
            >= ARCHIVE_AFTER_MILLIS
        {
            "ARCHIVE_INSTANT_ACCESS"
        } else {
            "FREQUENT_ACCESS"
        }
    }

    /// The newest version.
    pub fn latest(&self) -> &ImageSetVersion {
        &self.latest
    }

    /// When the image set last changed: its newest version's update time.
    pub fn updated_at(&self) -> Timestamp {
        self.latest.updated_at
    }

    /// The lock that holds at `now`, if any.
    pub fn lock_at(&self, now: Timestamp) -> Option<Lock> {
        self.lock.filter(|lock| now < lock.until)
    }

    /// The state and workflow status `version` reports at `now`: the latest
    /// version shows a running write's lock; older versions never change.
    pub fn status_of(
        &self,
        version: &ImageSetVersion,
        now: Timestamp,
    ) -> (ImageSetState, WorkflowStatus) {
        match self.lock_at(now) {
            Some(lock) if version.version_id == self.latest.version_id => {
                (ImageSetState::Locked, lock.status)
            }
            _ => (version.state, version.workflow_status),
        }
    }

    /// Whether the image set has been deleted (or is being deleted).
    pub fn is_deleted(&self) -> bool {
        self.latest.state == ImageSetState::Deleted
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn date_and_time_normalize_to_a_sortable_form() {
        assert_eq!(
            normalized_date_time("20240101", None),
            "20240101000000.000000"
        );
        assert_eq!(
            normalized_date_time("20240101", Some("0930")),
            "20240101093000.000000"
        );
        assert_eq!(
            normalized_date_time("20240101", Some("093012.5")),
            "20240101093012.500000"
        );
        assert!(
            normalized_date_time("20240101", Some("0930"))
                < normalized_date_time("20240101", Some("1")),
            "a time of lower precision is padded, not compared as text"
        );
    }

    #[test]
    fn tags_come_from_their_levels_and_count_instances() {
        let doc = json!({
            "Patient": {"DICOM": {"PatientID": "P1", "PatientName": "SYNTHETIC^A"}},
            "Study": {"DICOM": {"StudyInstanceUID": "1.2", "StudyDate": "20240101"},
                "Series": {"1.2.3": {"DICOM": {"SeriesInstanceUID": "1.2.3", "Modality": "CT",
                    "SeriesNumber": "7 "}, "Instances": {"a": {}, "b": {}}}}}
        });
        let tags = DicomTags::of_document(&doc);
        assert_eq!(tags.patient_id.as_deref(), Some("P1"));
        assert_eq!(tags.series_number, Some(7));
        assert_eq!(tags.number_of_study_related_instances, 2);
        let wire = tags.to_wire();
        assert_eq!(wire["DICOMSeriesModality"], "CT");
        assert_eq!(wire["DICOMSeriesNumber"], 7);
        assert!(wire.get("DICOMAccessionNumber").is_none());
    }
}
