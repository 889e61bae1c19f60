//! `start_dicom_import_job`, `get_dicom_import_job`, `list_dicom_import_jobs`.
//!
//! A job's output (its manifest and failure list) is in S3. When the server
//! runs on the embedded emulator it knows the folder standing for S3 and
//! reads them; elsewhere it says where they are instead.

use std::path::Path;
use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::{DicomImportJobProperties, DicomImportJobSummary, JobStatus};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ProgressNotificationParam, RequestMetaObject};
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::views::time;
use healthimaging_emulator::s3::{S3Root, S3Uri as S3Location};

use crate::args::{AccountId, ClientToken, DatastoreId, JobId, JobName, RoleArn, S3Uri};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// The default and largest wait for a job, in seconds.
const DEFAULT_WAIT: u64 = 300;
const MAX_WAIT: u64 = 900;
/// Failures listed in a job answer; the rest are counted.
const MAX_FAILURES_SHOWN: usize = 20;

/// Arguments of `start_dicom_import_job`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartImportArgs {
    /// An ACTIVE datastore.
    pub datastore_id: DatastoreId,
    /// Every object under this prefix is read.
    pub input_s3_uri: S3Uri,
    /// Where the manifest and the success and failure lists go.
    pub output_s3_uri: S3Uri,
    /// The role HealthImaging assumes for both.
    pub data_access_role_arn: RoleArn,
    pub job_name: Option<JobName>,
    /// The owner of another account's input bucket.
    pub input_owner_account_id: Option<AccountId>,
    /// Idempotency token.
    pub client_token: Option<ClientToken>,
    /// Follow the job to its end, with progress.
    #[serde(default)]
    pub wait: bool,
    /// Default 300, at most 900.
    pub wait_timeout_secs: Option<u64>,
}

/// Arguments of `get_dicom_import_job`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetImportArgs {
    pub datastore_id: DatastoreId,
    pub job_id: JobId,
}

/// A job status to filter by.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatusFilter {
    /// Accepted, not started.
    Submitted,
    /// Running.
    InProgress,
    /// Ended; individual files may still have failed.
    Completed,
    /// Could not run.
    Failed,
}

/// Arguments of `list_dicom_import_jobs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListImportsArgs {
    pub datastore_id: DatastoreId,
    pub job_status: Option<JobStatusFilter>,
    /// Most jobs, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// An import job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImportJobView {
    /// The job ID.
    pub job_id: String,
    /// The job name.
    pub job_name: String,
    /// SUBMITTED, IN_PROGRESS, COMPLETED or FAILED.
    pub job_status: String,
    /// The datastore.
    pub datastore_id: String,
    /// When it was submitted (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The input prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_s3_uri: Option<String>,
    /// Where its results are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_s3_uri: Option<String>,
}

impl From<&DicomImportJobProperties> for ImportJobView {
    fn from(p: &DicomImportJobProperties) -> Self {
        Self {
            job_id: p.job_id().to_owned(),
            job_name: p.job_name().to_owned(),
            job_status: p.job_status().as_str().to_owned(),
            datastore_id: p.datastore_id().to_owned(),
            submitted_at: time(p.submitted_at()),
            ended_at: time(p.ended_at()),
            message: p.message().map(str::to_owned),
            input_s3_uri: Some(p.input_s3_uri().to_owned()),
            output_s3_uri: Some(p.output_s3_uri().to_owned()),
        }
    }
}

impl From<&DicomImportJobSummary> for ImportJobView {
    fn from(s: &DicomImportJobSummary) -> Self {
        Self {
            job_id: s.job_id().to_owned(),
            job_name: s.job_name().to_owned(),
            job_status: s.job_status().as_str().to_owned(),
            datastore_id: s.datastore_id().to_owned(),
            submitted_at: time(s.submitted_at()),
            ended_at: time(s.ended_at()),
            message: s.message().map(str::to_owned),
            input_s3_uri: None,
            output_s3_uri: None,
        }
    }
}

/// The counts and failures of a job's output, when the server can read it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImportOutcome {
    /// Files found under the input prefix.
    pub scanned_files: u64,
    /// Files imported.
    pub imported_files: u64,
    /// Files rejected as invalid.
    pub files_with_customer_error: u64,
    /// Files the service failed on.
    pub files_with_server_error: u64,
    /// Image sets created or given a new version.
    pub image_sets: Vec<Value>,
    /// The first failures: input file, exception type, message.
    pub failures: Vec<Value>,
    /// How many failures there are in all.
    pub failure_count: usize,
}

/// Result of the job tools.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportJobOutput {
    /// One sentence on the job.
    pub summary: String,
    /// The job.
    pub job: ImportJobView,
    /// Its output, when the job ended and the server can read S3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ImportOutcome>,
}

/// Result of `list_dicom_import_jobs`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListImportsOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The jobs, newest first.
    pub jobs: Vec<ImportJobView>,
    /// True when the limit cut the list short.
    pub truncated: bool,
}

#[tool_router(router = import_job_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Import DICOM Part 10 files from S3. Each series becomes an image set (or a new version
    /// of its primary one); conflicting files go to non-primary sets; invalid files are listed
    /// as failures. Set wait to follow the job.
    #[tool(
        name = "start_dicom_import_job",
        annotations(
            title = "Start DICOM import job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn start_dicom_import_job(
        &self,
        Parameters(args): Parameters<StartImportArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ImportJobOutput>, ToolError> {
        audit::touch(args.datastore_id.as_str());
        let wait_for = args.wait_timeout_secs.unwrap_or(DEFAULT_WAIT);
        if !(1..=MAX_WAIT).contains(&wait_for) {
            return Err(ToolError::new(
                "InvalidArgument",
                format!("wait_timeout_secs must be between 1 and {MAX_WAIT}, not {wait_for}"),
                "Pass a shorter wait and follow the job with get_dicom_import_job.",
            ));
        }
        let mut request = self
            .client
            .start_dicom_import_job()
            .datastore_id(args.datastore_id.as_str())
            .input_s3_uri(args.input_s3_uri.as_str())
            .output_s3_uri(args.output_s3_uri.as_str())
            .data_access_role_arn(args.data_access_role_arn.as_str())
            .set_job_name(args.job_name.map(String::from))
            .set_input_owner_account_id(args.input_owner_account_id.map(String::from));
        if let Some(token) = &args.client_token {
            request = request.client_token(token.as_str());
        }
        let started = request.send().await.map_err(|e| {
            ToolError::from_sdk(e).advise_on(
                "ConflictException",
                "The datastore must be ACTIVE: check it with get_datastore and try again once it is.",
            )
        })?;
        audit::touch(started.job_id());
        let datastore_id = args.datastore_id.as_str();
        if !args.wait {
            let job = get_job(&self.client, datastore_id, started.job_id()).await?;
            return Ok(Json(ImportJobOutput {
                summary: format!(
                    "Import job {} is {}. Follow it with get_dicom_import_job.",
                    job.job_id, job.job_status
                ),
                job,
                outcome: None,
            }));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_for);
        let progress = meta.get_progress_token();
        let mut pause = Duration::from_millis(100);
        let mut polls = 0u32;
        loop {
            let job = get_job(&self.client, datastore_id, started.job_id()).await?;
            if let Some(token) = &progress {
                polls += 1;
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), f64::from(polls))
                            .with_message(format!("import job {}: {}", job.job_id, job.job_status)),
                    )
                    .await;
            }
            let ended = matches!(job.job_status.as_str(), "COMPLETED" | "FAILED");
            if ended || tokio::time::Instant::now() >= deadline {
                return Ok(Json(self.describe(job, ended)));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// An import job's status, times and locations; on the embedded emulator also its counts,
    /// image sets and failed files.
    #[tool(
        name = "get_dicom_import_job",
        annotations(
            title = "Get DICOM import job",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_dicom_import_job(
        &self,
        Parameters(args): Parameters<GetImportArgs>,
    ) -> Result<Json<ImportJobOutput>, ToolError> {
        audit::touch(&args.job_id);
        let job = get_job(&self.client, args.datastore_id.as_str(), &args.job_id).await?;
        let ended = matches!(job.job_status.as_str(), "COMPLETED" | "FAILED");
        Ok(Json(self.describe(job, ended)))
    }

    /// A datastore's import jobs, newest first, optionally in one status.
    #[tool(
        name = "list_dicom_import_jobs",
        annotations(
            title = "List DICOM import jobs",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_dicom_import_jobs(
        &self,
        Parameters(args): Parameters<ListImportsArgs>,
    ) -> Result<Json<ListImportsOutput>, ToolError> {
        audit::touch(args.datastore_id.as_str());
        let cap = super::search::limit(args.limit)?;
        let status = args.job_status.map(|s| match s {
            JobStatusFilter::Submitted => JobStatus::Submitted,
            JobStatusFilter::InProgress => JobStatus::InProgress,
            JobStatusFilter::Completed => JobStatus::Completed,
            JobStatusFilter::Failed => JobStatus::Failed,
        });
        let mut jobs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_dicom_import_jobs()
                .datastore_id(args.datastore_id.as_str())
                .set_job_status(status.clone())
                .max_results((cap - jobs.len()).min(50) as i32)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(ToolError::from_sdk)?;
            jobs.extend(page.job_summaries().iter().map(ImportJobView::from));
            token = page.next_token().map(str::to_owned);
            if token.is_none() || jobs.len() >= cap {
                break;
            }
        }
        let truncated = token.is_some();
        Ok(Json(ListImportsOutput {
            summary: format!(
                "Found {}{} import jobs.",
                jobs.len(),
                if truncated {
                    " (more exist; raise limit)"
                } else {
                    ""
                }
            ),
            jobs,
            truncated,
        }))
    }
}

impl HealthImagingServer {
    /// The job with its outcome, when readable.
    fn describe(&self, job: ImportJobView, ended: bool) -> ImportJobOutput {
        let outcome = match (&self.local_s3_root, &job.output_s3_uri, ended) {
            (Some(root), Some(output), true) => read_outcome(root, output),
            _ => None,
        };
        let summary = match (&outcome, job.job_status.as_str()) {
            (Some(o), _) => format!(
                "Import job {} is {}: {} of {} files imported into {} image sets; {} files failed.",
                job.job_id,
                job.job_status,
                o.imported_files,
                o.scanned_files,
                o.image_sets.len(),
                o.failure_count
            ),
            (None, "COMPLETED") => format!(
                "Import job {} is COMPLETED; individual files may still have failed: see job-output-manifest.json and FAILURE/failure.ndjson under {}.",
                job.job_id,
                job.output_s3_uri
                    .as_deref()
                    .unwrap_or("its output location")
            ),
            (None, "FAILED") => format!(
                "Import job {} FAILED: {}",
                job.job_id,
                job.message.as_deref().unwrap_or("no message")
            ),
            (None, status) => format!(
                "Import job {} is {status}; call get_dicom_import_job again to follow it.",
                job.job_id
            ),
        };
        ImportJobOutput {
            summary,
            job,
            outcome,
        }
    }
}

async fn get_job(
    client: &Client,
    datastore_id: &str,
    job_id: &str,
) -> Result<ImportJobView, ToolError> {
    let output = client
        .get_dicom_import_job()
        .datastore_id(datastore_id)
        .job_id(job_id)
        .send()
        .await
        .map_err(ToolError::from_sdk)?;
    output
        .job_properties()
        .map(ImportJobView::from)
        .ok_or_else(|| {
            ToolError::new(
                "MalformedResponse",
                "GetDICOMImportJob returned no jobProperties",
                "Check the endpoint.",
            )
        })
}

/// Reads a job's manifest and failures from the local folder standing for
/// S3, through the emulator's own confinement: a location with `..`, a link
/// or anything but a regular file is not read.
fn read_outcome(root: &Path, output: &str) -> Option<ImportOutcome> {
    let s3 = S3Root::new(root, MAX_OUTPUT_BYTES);
    let base = S3Location::parse(output).ok()?;
    let manifest: Value =
        serde_json::from_slice(&s3.read(&base.join("job-output-manifest.json")).ok()?).ok()?;
    let summary = &manifest["jobSummary"];
    let failures: Vec<Value> = s3
        .read(&base.join("FAILURE/failure.ndjson"))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    Some(ImportOutcome {
        scanned_files: count("numberOfScannedFiles"),
        imported_files: count("numberOfImportedFiles"),
        files_with_customer_error: count("numberOfFilesWithCustomerError"),
        files_with_server_error: count("numberOfFilesWithServerError"),
        image_sets: summary["imageSetsSummary"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        failure_count: failures.len(),
        failures: failures.into_iter().take(MAX_FAILURES_SHOWN).collect(),
    })
}

/// The largest output file read back.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_read_inside_the_s3_folder_only() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let manifest = r#"{"jobSummary":{"numberOfScannedFiles":3}}"#;
        std::fs::write(outside.path().join("job-output-manifest.json"), manifest).unwrap();
        let inside = root.path().join("bucket").join("out");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("job-output-manifest.json"), manifest).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("bucket").join("link"))
            .unwrap();
        let read = |uri: &str| read_outcome(root.path(), uri).map(|o| o.scanned_files);
        assert_eq!(read("s3://bucket/out/"), Some(3));
        assert_eq!(read("s3://bucket/link/"), None, "not through a link");
        let escape = format!("s3://bucket/../../{}/", outside.path().display());
        assert_eq!(read(&escape), None, "not out of the folder");
    }
}
