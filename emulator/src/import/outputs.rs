//! What an import job writes to its output location:
//! `{outputS3Uri}{datastoreId}-DicomImport-{jobId}/` holding
//! `job-output-manifest.json`, `SUCCESS/success.ndjson` and
//! `FAILURE/failure.ndjson`.

use serde_json::{Value as Json, json};

use crate::s3::{S3Root, S3Uri};
use crate::store::{ImageSet, ImportJob};

use super::instance::Failure;

/// One imported file and where it went.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The input key.
    pub key: String,
    /// SOPInstanceUID.
    pub sop_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// StudyInstanceUID.
    pub study_uid: String,
    /// The image set it went into.
    pub image_set_id: String,
    /// The version that holds it.
    pub version: u32,
    /// Whether that image set is primary.
    pub is_primary: bool,
}

/// Everything a job did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files listed under the input prefix.
    pub scanned: usize,
    /// Files imported.
    pub imported: Vec<Imported>,
    /// Files not imported, with why.
    pub failed: Vec<(String, Failure)>,
    /// Image sets written (new ones and new versions), with how many
    /// instances of this job each received.
    pub image_sets: Vec<(ImageSet, usize)>,
}

/// Writes the output files of `job`.
pub fn write(s3: &S3Root, job: &ImportJob, outcome: &Outcome) -> std::io::Result<()> {
    let base = S3Uri::parse(&job.output_s3_uri)
        .ok_or_else(|| std::io::Error::other("the output location is not an S3 URI"))?;
    let success: String = outcome
        .imported
        .iter()
        .map(|i| {
            let line = json!({
                "inputFile": i.key,
                "importResponse": {
                    "imageSetId": i.image_set_id,
                    "imageSetVersion": i.version.to_string(),
                    "isPrimary": i.is_primary,
                    "studyInstanceUID": i.study_uid,
                    "seriesInstanceUID": i.series_uid,
                    "sopInstanceUID": i.sop_uid,
                },
            });
            format!("{line}\n")
        })
        .collect();
    let failure: String = outcome
        .failed
        .iter()
        .map(|(key, f)| {
            let line = json!({
                "inputFile": key,
                "exception": { "exceptionType": f.exception_type, "message": f.message },
            });
            format!("{line}\n")
        })
        .collect();
    s3.write(&base.join("SUCCESS/success.ndjson"), success.as_bytes())?;
    s3.write(&base.join("FAILURE/failure.ndjson"), failure.as_bytes())?;
    let manifest = manifest(job, outcome, &base);
    s3.write(
        &base.join("job-output-manifest.json"),
        serde_json::to_string_pretty(&manifest)
            .unwrap_or_default()
            .as_bytes(),
    )
}

fn manifest(job: &ImportJob, outcome: &Outcome, base: &S3Uri) -> Json {
    let server_errors = outcome
        .failed
        .iter()
        .filter(|(_, f)| f.server_error)
        .count();
    let summaries: Vec<Json> = outcome
        .image_sets
        .iter()
        .map(|(set, instances)| {
            json!({
                "imageSetId": set.id,
                "imageSetVersion": set.latest().version_id,
                "isPrimary": set.is_primary,
                "numberOfMatchedSOPInstances": instances,
            })
        })
        .collect();
    json!({
        "jobSummary": {
            "jobId": job.id,
            "datastoreId": job.datastore_id,
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": base.to_string(),
            "successOutputS3Uri": base.join("SUCCESS/").to_string(),
            "failureOutputS3Uri": base.join("FAILURE/").to_string(),
            "numberOfScannedFiles": outcome.scanned,
            "numberOfImportedFiles": outcome.imported.len(),
            "numberOfFilesWithCustomerError": outcome.failed.len() - server_errors,
            "numberOfFilesWithServerError": server_errors,
            "numberOfGeneratedImageSets": outcome.image_sets.len(),
            "imageSetsSummary": summaries,
        }
    })
}
