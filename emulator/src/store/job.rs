//! A DICOM import job.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// `JobStatus` of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Accepted, not started.
    Submitted,
    /// Running.
    InProgress,
    /// Finished; individual files may still have failed.
    Completed,
    /// Could not run at all.
    Failed,
}

impl JobStatus {
    /// Every status with its wire name.
    pub const ALL: [(&'static str, JobStatus); 4] = [
        ("SUBMITTED", JobStatus::Submitted),
        ("IN_PROGRESS", JobStatus::InProgress),
        ("COMPLETED", JobStatus::Completed),
        ("FAILED", JobStatus::Failed),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, status)| *status == self)
            .map_or("SUBMITTED", |(name, _)| *name)
    }

    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

/// One import job.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportJob {
    /// `jobId`.
    pub id: String,
    /// `jobName`.
    pub name: String,
    /// The datastore imported into.
    pub datastore_id: String,
    /// Submission order within the emulator, the key of listing.
    pub seq: u64,
    /// `jobStatus`.
    pub status: JobStatus,
    /// `dataAccessRoleArn`, echoed.
    pub data_access_role_arn: String,
    /// `inputS3Uri` as given.
    pub input_s3_uri: String,
    /// `outputS3Uri` as reported: the caller's prefix plus
    /// `{datastoreId}-DicomImport-{jobId}/`.
    pub output_s3_uri: String,
    /// `inputOwnerAccountId`, echoed.
    pub input_owner_account_id: Option<String>,
    /// `importConfiguration`, echoed.
    pub import_configuration: Option<serde_json::Value>,
    /// `submittedAt`.
    pub submitted_at: Timestamp,
    /// `endedAt`.
    pub ended_at: Option<Timestamp>,
    /// `message`, when the job failed.
    pub message: Option<String>,
}
