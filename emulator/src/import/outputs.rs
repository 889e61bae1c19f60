//! What an import job writes to its output location:
//! `{outputS3Uri}{datastoreId}-DicomImport-{jobId}/` holding
//! `job-output-manifest.json`, `SUCCESS/success.ndjson` and
//! `FAILURE/failure.ndjson`.
//!
//! The lines are recorded in the store as each image set commits
//! ([`Line`]), so a job resumed after a crash still reports every file.

use serde_json::{Value as Json, json};

use crate::s3::{S3Root, S3Uri};
use crate::store::ImportJob;

use super::instance::Failure;

/// One imported file and where it went.
#[derive(Debug, Clone)]
pub struct Imported<'a> {
    /// The input key.
    pub key: &'a str,
    /// SOPInstanceUID.
    pub sop_uid: &'a str,
    /// SeriesInstanceUID.
    pub series_uid: &'a str,
    /// StudyInstanceUID.
    pub study_uid: &'a str,
    /// The image set it went into.
    pub image_set_id: &'a str,
    /// The version that holds it.
    pub version: u32,
    /// Whether that image set is primary.
    pub is_primary: bool,
}

/// A recorded line of a job's outputs, by the kind the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A line of `success.ndjson`.
    Success(Json),
    /// A line of `failure.ndjson`, and whether the fault was the service's.
    Failure(Json, bool),
    /// An entry of the manifest's `imageSetsSummary`.
    ImageSet(Json),
}

impl Line {
    /// The line for an imported file.
    pub fn success(imported: &Imported<'_>) -> Self {
        Line::Success(json!({
            "inputFile": imported.key,
            "importResponse": {
                "imageSetId": imported.image_set_id,
                "imageSetVersion": imported.version.to_string(),
                "isPrimary": imported.is_primary,
                "studyInstanceUID": imported.study_uid,
                "seriesInstanceUID": imported.series_uid,
                "sopInstanceUID": imported.sop_uid,
            },
        }))
    }

    /// The line for a file that was not imported.
    pub fn failure(key: &str, failure: &Failure) -> Self {
        Line::Failure(
            json!({
                "inputFile": key,
                "exception": { "exceptionType": failure.exception_type, "message": failure.message },
            }),
            failure.server_error,
        )
    }

    /// The summary of an image set the job wrote.
    pub fn image_set(id: &str, version: u32, primary: bool, instances: usize) -> Self {
        Line::ImageSet(json!({
            "imageSetId": id,
            "imageSetVersion": version,
            "isPrimary": primary,
            "numberOfMatchedSOPInstances": instances,
        }))
    }

    /// How the store keeps it: a kind and a line of text.
    pub fn to_record(&self) -> (&'static str, String) {
        match self {
            Line::Success(line) => ("success", line.to_string()),
            Line::Failure(line, false) => ("failure", line.to_string()),
            Line::Failure(line, true) => ("server_failure", line.to_string()),
            Line::ImageSet(line) => ("image_set", line.to_string()),
        }
    }

    /// A line read back from the store.
    pub fn from_record(kind: &str, text: &str) -> Option<Self> {
        let line: Json = serde_json::from_str(text).ok()?;
        match kind {
            "success" => Some(Line::Success(line)),
            "failure" => Some(Line::Failure(line, false)),
            "server_failure" => Some(Line::Failure(line, true)),
            "image_set" => Some(Line::ImageSet(line)),
            _ => None,
        }
    }
}

/// Writes the output files of `job`, which listed `scanned` files.
pub fn write(s3: &S3Root, job: &ImportJob, scanned: usize, lines: &[Line]) -> std::io::Result<()> {
    let base = S3Uri::parse(&job.output_s3_uri)
        .map_err(|_| std::io::Error::other("the output location is not an S3 URI"))?;
    let mut success = String::new();
    let mut failure = String::new();
    let (mut imported, mut failed, mut server_errors) = (0, 0, 0);
    let mut summaries = Vec::new();
    for line in lines {
        match line {
            Line::Success(line) => {
                imported += 1;
                success.push_str(&format!("{line}\n"));
            }
            Line::Failure(line, server) => {
                failed += 1;
                server_errors += usize::from(*server);
                failure.push_str(&format!("{line}\n"));
            }
            Line::ImageSet(summary) => summaries.push(summary.clone()),
        }
    }
    s3.write(&base.join("SUCCESS/success.ndjson"), success.as_bytes())?;
    s3.write(&base.join("FAILURE/failure.ndjson"), failure.as_bytes())?;
    let manifest = json!({
        "jobSummary": {
            "jobId": job.id,
            "datastoreId": job.datastore_id,
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": base.to_string(),
            "successOutputS3Uri": base.join("SUCCESS/").to_string(),
            "failureOutputS3Uri": base.join("FAILURE/").to_string(),
            "numberOfScannedFiles": scanned,
            "numberOfImportedFiles": imported,
            "numberOfFilesWithCustomerError": failed - server_errors,
            "numberOfFilesWithServerError": server_errors,
            "numberOfGeneratedImageSets": summaries.len(),
            "imageSetsSummary": summaries,
        }
    });
    s3.write(
        &base.join("job-output-manifest.json"),
        serde_json::to_string_pretty(&manifest)
            .unwrap_or_default()
            .as_bytes(),
    )
}
