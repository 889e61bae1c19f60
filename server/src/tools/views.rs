//! The shapes tools return: API objects in snake_case with readable times.

use aws_sdk_medicalimaging::operation::get_image_set::GetImageSetOutput;
use aws_sdk_medicalimaging::types::{
    DatastoreProperties, DatastoreSummary, ImageSetProperties, ImageSetsMetadataSummary,
};
use aws_smithy_types::DateTime;
use schemars::JsonSchema;
use serde::Serialize;

/// A datastore as GetDatastore or ListDatastores reports it.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct DatastoreView {
    /// The datastore ID (32 lowercase letters and digits).
    pub datastore_id: String,
    /// The datastore name.
    pub datastore_name: String,
    /// CREATING, CREATE_FAILED, ACTIVE, DELETING or DELETED.
    pub datastore_status: String,
    /// The datastore ARN, for tag tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_arn: Option<String>,
    /// When it was created (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When its status last changed (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// How lossless frames are stored: HTJ2K or JPEG_2000_LOSSLESS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lossless_storage_format: Option<String>,
    /// The customer-managed KMS key, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The Lambda authorizer for DICOMweb OIDC access, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_authorizer_arn: Option<String>,
}

/// RFC 3339 text with milliseconds for an SDK timestamp.
pub fn time(value: Option<&DateTime>) -> Option<String> {
    value.map(crate::timefmt::rfc3339_millis)
}

impl From<&DatastoreProperties> for DatastoreView {
    fn from(p: &DatastoreProperties) -> Self {
        Self {
            datastore_id: p.datastore_id().to_owned(),
            datastore_name: p.datastore_name().to_owned(),
            datastore_status: p.datastore_status().as_str().to_owned(),
            datastore_arn: p.datastore_arn().map(str::to_owned),
            created_at: time(p.created_at()),
            updated_at: time(p.updated_at()),
            lossless_storage_format: p.lossless_storage_format().map(|f| f.as_str().to_owned()),
            kms_key_arn: p.kms_key_arn().map(str::to_owned),
            lambda_authorizer_arn: p.lambda_authorizer_arn().map(str::to_owned),
        }
    }
}

impl From<&DatastoreSummary> for DatastoreView {
    fn from(s: &DatastoreSummary) -> Self {
        Self {
            datastore_id: s.datastore_id().to_owned(),
            datastore_name: s.datastore_name().to_owned(),
            datastore_status: s.datastore_status().as_str().to_owned(),
            datastore_arn: s.datastore_arn().map(str::to_owned),
            created_at: time(s.created_at()),
            updated_at: time(s.updated_at()),
            lossless_storage_format: None,
            kms_key_arn: None,
            lambda_authorizer_arn: None,
        }
    }
}

/// Which phase a call of a destructive tool was.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing changed; this is what would happen. Confirm with the token.
    Preview,
    /// The change was made.
    Executed,
    /// The token was not accepted; nothing changed. A fresh preview and token follow.
    Refused,
}

/// An image set as SearchImageSets summarizes it, with its DICOM attributes.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct ImageSetSummaryView {
    /// The image set ID: pass it to get_image_set, get_image_set_metadata, get_image_frame.
    pub image_set_id: String,
    /// The latest version number (use it as latest_version_id for updates).
    pub version: i32,
    /// Whether this is the primary image set of its series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    /// When it was created (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it last changed (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// FREQUENT_ACCESS or ARCHIVE_INSTANT_ACCESS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_tier: Option<String>,
    /// PatientID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    /// PatientName (DICOM PN: Family^Given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    /// PatientBirthDate (YYYYMMDD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_birth_date: Option<String>,
    /// PatientSex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_sex: Option<String>,
    /// StudyInstanceUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    /// StudyID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_id: Option<String>,
    /// StudyDescription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_description: Option<String>,
    /// StudyDate (YYYYMMDD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    /// StudyTime (HHMMSS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_time: Option<String>,
    /// AccessionNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    /// SeriesInstanceUID: an image set holds one series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_instance_uid: Option<String>,
    /// Modality of the series (CT, MR, CR, US, DOC, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_modality: Option<String>,
    /// BodyPartExamined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_body_part: Option<String>,
    /// SeriesNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_number: Option<i32>,
    /// Instances in the image set's study, as far as it knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_study_related_instances: Option<i32>,
}

impl From<&ImageSetsMetadataSummary> for ImageSetSummaryView {
    fn from(s: &ImageSetsMetadataSummary) -> Self {
        let tags = s.dicom_tags();
        let text = |f: fn(&aws_sdk_medicalimaging::types::DicomTags) -> Option<&str>| {
            tags.and_then(f).map(str::to_owned)
        };
        Self {
            image_set_id: s.image_set_id().to_owned(),
            version: s.version().unwrap_or_default(),
            is_primary: s.is_primary(),
            created_at: time(s.created_at()),
            updated_at: time(s.updated_at()),
            storage_tier: s.storage_tier().map(|t| t.as_str().to_owned()),
            patient_id: text(|t| t.dicom_patient_id()),
            patient_name: text(|t| t.dicom_patient_name()),
            patient_birth_date: text(|t| t.dicom_patient_birth_date()),
            patient_sex: text(|t| t.dicom_patient_sex()),
            study_instance_uid: text(|t| t.dicom_study_instance_uid()),
            study_id: text(|t| t.dicom_study_id()),
            study_description: text(|t| t.dicom_study_description()),
            study_date: text(|t| t.dicom_study_date()),
            study_time: text(|t| t.dicom_study_time()),
            accession_number: text(|t| t.dicom_accession_number()),
            series_instance_uid: text(|t| t.dicom_series_instance_uid()),
            series_modality: text(|t| t.dicom_series_modality()),
            series_body_part: text(|t| t.dicom_series_body_part()),
            series_number: tags.and_then(|t| t.dicom_series_number()),
            number_of_study_related_instances: tags
                .map(|t| t.dicom_number_of_study_related_instances()),
        }
    }
}

/// An image set version's properties, as GetImageSet or ListImageSetVersions
/// reports them.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ImageSetView {
    /// The image set ID.
    pub image_set_id: String,
    /// The version these properties describe.
    pub version_id: String,
    /// ACTIVE, LOCKED or DELETED.
    pub image_set_state: String,
    /// What last happened to it: IMPORTED, UPDATED, COPIED, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set_workflow_status: Option<String>,
    /// Whether this is the primary image set of its series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    /// When the image set was created (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When this version last changed (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// When it was deleted, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Why a write failed, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the version was written with force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<bool>,
    /// The image set ARN, for tag tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set_arn: Option<String>,
    /// FREQUENT_ACCESS or ARCHIVE_INSTANT_ACCESS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_tier: Option<String>,
}

impl From<&GetImageSetOutput> for ImageSetView {
    fn from(o: &GetImageSetOutput) -> Self {
        Self {
            image_set_id: o.image_set_id().to_owned(),
            version_id: o.version_id().to_owned(),
            image_set_state: o.image_set_state().as_str().to_owned(),
            image_set_workflow_status: o.image_set_workflow_status().map(|s| s.as_str().to_owned()),
            is_primary: o.is_primary(),
            created_at: time(o.created_at()),
            updated_at: time(o.updated_at()),
            deleted_at: time(o.deleted_at()),
            message: o.message().map(str::to_owned),
            forced: o.overrides().and_then(|ov| ov.forced()),
            image_set_arn: o.image_set_arn().map(str::to_owned),
            storage_tier: o.storage_tier().map(|t| t.as_str().to_owned()),
        }
    }
}

impl From<&ImageSetProperties> for ImageSetView {
    fn from(p: &ImageSetProperties) -> Self {
        Self {
            image_set_id: p.image_set_id().to_owned(),
            version_id: p.version_id().to_owned(),
            image_set_state: p.image_set_state().as_str().to_owned(),
            image_set_workflow_status: p.image_set_workflow_status().map(|s| s.as_str().to_owned()),
            is_primary: p.is_primary(),
            created_at: time(p.created_at()),
            updated_at: time(p.updated_at()),
            deleted_at: time(p.deleted_at()),
            message: p.message().map(str::to_owned),
            forced: p.overrides().and_then(|ov| ov.forced()),
            image_set_arn: None,
            storage_tier: None,
        }
    }
}
