//! The shapes tools return: API objects in snake_case with readable times.

use aws_sdk_medicalimaging::types::{DatastoreProperties, DatastoreSummary};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
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

/// RFC 3339 text for an SDK timestamp.
pub fn time(value: Option<&DateTime>) -> Option<String> {
    value.and_then(|t| t.fmt(Format::DateTime).ok())
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
