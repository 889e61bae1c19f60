//! Export jobs and de-identified copies: `start_dicom_export_job`,
//! `get_dicom_export_job`, `list_dicom_export_jobs`,
//! `cancel_dicom_export_job` and `de_identify_study`.
//!
//! HealthImaging has no export API: a job reads each instance with
//! DICOMweb GetDICOMInstance and writes it to the destination
//! ([`crate::export`]). Sending identified data anywhere but a local folder
//! is a decision like a delete: two phases, a preview of what goes where,
//! then a single-use token.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::plan::Progress;
use super::search::{equal_criteria, search};
use crate::args::{ConfirmationToken, DatastoreId, DicomUid, ImageSetId, JobId, PatientId};
use crate::audit;
use crate::deid::ProfileOptions;
use crate::errors::ToolError;
use crate::export::jobs::{Planned, Record, Selection, new_job_id, new_key};
use crate::export::{Destination, ExportJob, JobStatus, Runner};
use crate::server::HealthImagingServer;

/// The most instances one job may send.
const MAX_INSTANCES: usize = 100_000;
/// The longest a call waits for its job.
const MAX_WAIT: u64 = 600;

/// Arguments of `start_dicom_export_job`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartExportArgs {
    pub datastore_id: DatastoreId,
    /// Export one image set (primary or not).
    pub image_set_id: Option<ImageSetId>,
    /// Export a series (its primary image set).
    pub series_instance_uid: Option<DicomUid>,
    /// Export a study (its primary image sets).
    pub study_instance_uid: Option<DicomUid>,
    /// Export every study of a patient.
    pub patient_id: Option<PatientId>,
    /// file:///DIR, s3://bucket/prefix, a STOW-RS URL or dicom://AET@host:port, as the operator allowed.
    pub destination: String,
    /// De-identify (PS3.15 basic profile). Default: true, except to a local folder.
    pub de_identify: Option<bool>,
    pub de_identification: Option<ProfileOptions>,
    /// Default: the stored one.
    pub transfer_syntax: Option<DicomUid>,
    #[serde(default)]
    pub wait: bool,
    /// Default 120, at most 600.
    pub wait_timeout_secs: Option<u64>,
    /// Identified data to a non-local destination: omit to preview, then the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments naming one export job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportJobArgs {
    pub job_id: JobId,
}

/// Arguments of `list_dicom_export_jobs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExportArgs {
    pub status: Option<JobStatus>,
    /// 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// Arguments of `de_identify_study`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeidentifyStudyArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    /// Where the copy goes; not the source datastore.
    pub destination_datastore_id: DatastoreId,
    pub de_identification: Option<ProfileOptions>,
    #[serde(default)]
    pub wait: bool,
    pub wait_timeout_secs: Option<u64>,
}

/// Result of the export tools.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportOutput {
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<ExportJob>,
    /// preview when the call only previewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// Result of `list_dicom_export_jobs`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportListOutput {
    pub summary: String,
    pub jobs: Vec<ExportJob>,
}

/// What a plan covers, for previews.
struct Planning {
    instances: Vec<Planned>,
    studies: BTreeSet<String>,
    series: BTreeSet<String>,
    patients: BTreeSet<String>,
}

#[tool_router(router = export_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Export DICOM Part 10 instances (an image set, series, study or a patient's studies) to a
    /// destination the operator allowed, de-identified by default. Runs in the background; set
    /// wait to follow it. Identified data to a non-local destination needs a confirmation.
    #[tool(
        name = "start_dicom_export_job",
        annotations(
            title = "Start DICOM export job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn start_dicom_export_job(
        &self,
        Parameters(args): Parameters<StartExportArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ExportOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let wait_for = wait_time(args.wait_timeout_secs)?;
        let destination = self.allowed_destination(&args.destination)?;
        let selection = selection(&args)?;
        let de_identify = args.de_identify.unwrap_or(!destination.is_local());
        let options = args.de_identification.unwrap_or_default();
        if args.de_identification.is_some() && !de_identify {
            return Err(invalid(
                "de_identification options apply only with de_identify true",
            ));
        }
        let planning = self.plan_export(ds, &selection).await?;
        let bound = json!({
            "datastore_id": ds, "selection": selection, "destination": destination.to_string(),
            "transfer_syntax": args.transfer_syntax.as_ref().map(|t| t.as_str()),
        });
        if !de_identify && !destination.is_local() {
            let fingerprint = json!(
                planning
                    .instances
                    .iter()
                    .map(|p| &p.sop)
                    .collect::<Vec<_>>()
            );
            let what = describe(&planning, &destination);
            let refusal = match &args.confirmation_token {
                None => {
                    let preview = format!(
                        "Preview only, nothing sent: {what} WITHOUT de-identification: patient data leaves this system. Show this to the user; call again with confirmation_token only if they agree."
                    );
                    // A client that can ask its user shows the preview there.
                    match super::plan::ask_the_user(&peer, &preview).await {
                        Some(true) => None,
                        Some(false) => {
                            audit::outcome(audit::Outcome::Refused);
                            return Ok(Json(ExportOutput {
                                summary: format!(
                                    "Nothing sent: the user declined in the client. {what}."
                                ),
                                job: None,
                                phase: Some("refused".to_owned()),
                                confirmation_token: None,
                                expires_in_seconds: None,
                            }));
                        }
                        None => Some(preview),
                    }
                }
                Some(token) => match self.confirmations.redeem(
                    token.as_str(),
                    "start_dicom_export_job",
                    &bound,
                ) {
                    Err(refusal) => Some(format!("Nothing sent: {refusal}. {what}.")),
                    Ok(previewed) if previewed != crate::confirm::digest(&fingerprint) => Some(
                        format!("Nothing sent: the instances changed since the preview. {what}."),
                    ),
                    Ok(_) => None,
                },
            };
            if let Some(summary) = refusal {
                audit::outcome(audit::Outcome::Preview);
                let issued = self
                    .confirmations
                    .issue("start_dicom_export_job", bound, fingerprint);
                return Ok(Json(ExportOutput {
                    summary,
                    job: None,
                    phase: Some("preview".to_owned()),
                    confirmation_token: Some(issued.token),
                    expires_in_seconds: Some(issued.expires_in.as_secs()),
                }));
            }
        }
        let job = self.start_job(
            ds,
            selection,
            &destination,
            de_identify,
            options,
            args.transfer_syntax.map(String::from),
            planning.instances,
        )?;
        self.follow(job, args.wait, wait_for, &meta, peer).await
    }

    /// An export job's status, counts, bytes, failures (with reasons) and manifest.
    #[tool(
        name = "get_dicom_export_job",
        annotations(
            title = "Get DICOM export job",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_dicom_export_job(
        &self,
        Parameters(args): Parameters<ExportJobArgs>,
    ) -> Result<Json<ExportOutput>, ToolError> {
        let job = self.export_job(args.job_id.as_str())?;
        Ok(Json(ExportOutput {
            summary: job_summary(&job),
            job: Some(job),
            phase: None,
            confirmation_token: None,
            expires_in_seconds: None,
        }))
    }

    /// Export jobs, newest first, kept across restarts in the server's state directory.
    #[tool(
        name = "list_dicom_export_jobs",
        annotations(
            title = "List DICOM export jobs",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_dicom_export_jobs(
        &self,
        Parameters(args): Parameters<ListExportArgs>,
    ) -> Result<Json<ExportListOutput>, ToolError> {
        let limit = args.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(invalid(&format!(
                "limit must be between 1 and 1000, not {limit}"
            )));
        }
        let runner = self.runner()?;
        let mut jobs: Vec<ExportJob> = runner
            .jobs
            .list()
            .into_iter()
            .filter(|job| args.status.is_none_or(|s| s == job.status))
            .collect();
        let total = jobs.len();
        jobs.truncate(limit);
        Ok(Json(ExportListOutput {
            summary: format!(
                "{total} export job{}{}.",
                if total == 1 { "" } else { "s" },
                if total > jobs.len() {
                    format!(", the newest {} shown", jobs.len())
                } else {
                    String::new()
                }
            ),
            jobs,
        }))
    }

    /// Stop a running export job after the instance in hand; what was sent stays sent.
    #[tool(
        name = "cancel_dicom_export_job",
        annotations(
            title = "Cancel DICOM export job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn cancel_dicom_export_job(
        &self,
        Parameters(args): Parameters<ExportJobArgs>,
    ) -> Result<Json<ExportOutput>, ToolError> {
        let runner = self.runner()?;
        let id = args.job_id.as_str();
        let running = runner.jobs.cancel(id).ok_or_else(|| unknown_job(id))?;
        // A running job stops between two instances.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut job = self.export_job(id)?;
        while running && !job.status.ended() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            job = self.export_job(id)?;
        }
        let summary = if running {
            format!("Cancellation asked. {}", job_summary(&job))
        } else {
            format!("The job had already ended. {}", job_summary(&job))
        };
        Ok(Json(ExportOutput {
            summary,
            job: Some(job),
            phase: None,
            confirmation_token: None,
            expires_in_seconds: None,
        }))
    }

    /// Write a de-identified copy of a study (PS3.15 basic profile, with options) into another
    /// datastore through DICOMweb STOW-RS: new UIDs, the same for the same input within the job.
    #[tool(
        name = "de_identify_study",
        annotations(
            title = "De-identify study",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn de_identify_study(
        &self,
        Parameters(args): Parameters<DeidentifyStudyArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ExportOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        let target = args.destination_datastore_id.as_str();
        audit::touch(ds);
        if ds == target {
            return Err(invalid(
                "destination_datastore_id must be another datastore: a de-identified copy beside its source mixes them up",
            ));
        }
        let wait_for = wait_time(args.wait_timeout_secs)?;
        // The destination must exist and be ACTIVE.
        let view = super::datastores_get(&self.client, target).await?;
        if view.datastore_status != "ACTIVE" {
            return Err(ToolError::new(
                "ConflictException",
                format!("Datastore {target} is {}", view.datastore_status),
                "Wait until it is ACTIVE (get_datastore), or choose another.",
            ));
        }
        let selection = Selection {
            study_instance_uid: Some(args.study_instance_uid.as_str().to_owned()),
            ..Selection::default()
        };
        let planning = self.plan_export(ds, &selection).await?;
        let url = self.dicomweb()?.datastore_url(target, "/studies");
        let destination = Destination::Stow(url);
        let job = self.start_job(
            ds,
            selection,
            &destination,
            true,
            args.de_identification.unwrap_or_default(),
            None,
            planning.instances,
        )?;
        self.follow(job, args.wait, wait_for, &meta, peer).await
    }
}

impl HealthImagingServer {
    pub(crate) fn runner(&self) -> Result<Arc<Runner>, ToolError> {
        self.exports.clone().ok_or_else(|| {
            ToolError::new(
                "NotConfigured",
                "This server was started without DICOMweb, which exports read through",
                "Start the server with `healthimaging-mcp serve`.",
            )
        })
    }

    fn export_job(&self, job_id: &str) -> Result<ExportJob, ToolError> {
        self.runner()?
            .jobs
            .get(job_id)
            .map(|r| r.job)
            .ok_or_else(|| unknown_job(job_id))
    }

    /// `uri` parsed, if the operator allows it.
    fn allowed_destination(&self, uri: &str) -> Result<Destination, ToolError> {
        let destination = Destination::parse(uri).map_err(|e| invalid(&e))?;
        let local_s3 =
            matches!(destination, Destination::S3 { .. }) && self.local_s3_root.is_some();
        let default_folder = self
            .exports_folder
            .as_ref()
            .is_some_and(|root| destination.within(&Destination::Folder(root.to_path_buf())));
        let configured = self
            .export_policy
            .allowed
            .iter()
            .any(|allowed| destination.within(allowed));
        if local_s3 || default_folder || configured {
            return Ok(destination);
        }
        let mut allowed: Vec<String> = self
            .export_policy
            .allowed
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Some(root) = &self.exports_folder {
            allowed.push(format!("file://{}", root.display()));
        }
        if self.local_s3_root.is_some() {
            allowed.push("s3://… (the emulator's S3 folder)".to_owned());
        }
        Err(ToolError::new(
            "DestinationNotAllowed",
            format!("{destination} is not a destination the operator allowed"),
            format!(
                "Use one of: {}. The operator adds destinations with --export-destination or export_destinations in the config file.",
                if allowed.is_empty() {
                    "none is configured".to_owned()
                } else {
                    allowed.join(", ")
                }
            ),
        ))
    }

    async fn plan_export(&self, ds: &str, selection: &Selection) -> Result<Planning, ToolError> {
        let image_sets: Vec<String> = match selection {
            Selection {
                image_set_id: Some(id),
                ..
            } => vec![id.clone()],
            _ => {
                let by = if let Some(series) = &selection.series_instance_uid {
                    SearchByAttributeValue::DicomSeriesInstanceUid(series.clone())
                } else if let Some(study) = &selection.study_instance_uid {
                    SearchByAttributeValue::DicomStudyInstanceUid(study.clone())
                } else if let Some(patient) = &selection.patient_id {
                    SearchByAttributeValue::DicomPatientId(patient.clone())
                } else {
                    return Err(invalid("nothing selected"));
                };
                let criteria = equal_criteria(vec![by, SearchByAttributeValue::IsPrimary(true)]);
                let (found, _) = search(&self.client, ds, Some(criteria), 10_000, None).await?;
                found.into_iter().map(|s| s.image_set_id).collect()
            }
        };
        let mut planning = Planning {
            instances: Vec::new(),
            studies: BTreeSet::new(),
            series: BTreeSet::new(),
            patients: BTreeSet::new(),
        };
        let mut seen = BTreeSet::new();
        for id in image_sets {
            let parsed = self.metadata(ds, &id, None).await?;
            let document = &parsed.document;
            let study = document["Study"]["DICOM"]["StudyInstanceUID"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(patient) = document["Patient"]["DICOM"]["PatientID"].as_str() {
                planning.patients.insert(patient.to_owned());
            }
            let Some(series_map) = document["Study"]["Series"].as_object() else {
                continue;
            };
            for (series, body) in series_map {
                if selection
                    .series_instance_uid
                    .as_ref()
                    .is_some_and(|wanted| wanted != series)
                {
                    continue;
                }
                let Some(instances) = body["Instances"].as_object() else {
                    continue;
                };
                for sop in instances.keys() {
                    if !seen.insert(sop.clone()) {
                        continue;
                    }
                    planning.studies.insert(study.clone());
                    planning.series.insert(series.clone());
                    planning.instances.push(Planned {
                        image_set_id: id.clone(),
                        study: study.clone(),
                        series: series.clone(),
                        sop: sop.clone(),
                    });
                    if planning.instances.len() > MAX_INSTANCES {
                        return Err(invalid(&format!(
                            "the selection holds more than {MAX_INSTANCES} instances: export it in parts (by study or series)"
                        )));
                    }
                }
            }
        }
        if planning.instances.is_empty() {
            return Err(ToolError::new(
                "ResourceNotFoundException",
                "The selection holds no instance (only primary image sets are exported unless image_set_id is given)",
                "Check the UIDs or patient ID with a search tool.",
            ));
        }
        Ok(planning)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_job(
        &self,
        ds: &str,
        selection: Selection,
        destination: &Destination,
        de_identify: bool,
        options: ProfileOptions,
        transfer_syntax: Option<String>,
        instances: Vec<Planned>,
    ) -> Result<ExportJob, ToolError> {
        let runner = self.runner()?;
        let now = crate::timefmt::now();
        let job = ExportJob {
            job_id: new_job_id(),
            status: JobStatus::Submitted,
            datastore_id: ds.to_owned(),
            selection: selection.to_string(),
            destination: destination.to_string(),
            de_identified: de_identify,
            transfer_syntax,
            created_at: now.clone(),
            updated_at: now,
            total_instances: instances.len(),
            exported_instances: 0,
            failed_instances: 0,
            bytes: 0,
            manifest: None,
            message: None,
            failures: Vec::new(),
        };
        audit::touch(&job.job_id);
        let record = Record {
            job: job.clone(),
            options,
            key: new_key(),
            next: 0,
        };
        runner.jobs.add(record, &instances).map_err(|e| {
            ToolError::new(
                "StateDirectoryError",
                format!("The job could not be recorded in the state directory: {e}"),
                "Check that the state directory (--state-dir) is writable and has space.",
            )
        })?;
        runner.spawn(&job.job_id);
        Ok(job)
    }

    /// Answers with the job, after following it for up to `wait_for` when asked.
    async fn follow(
        &self,
        job: ExportJob,
        wait: bool,
        wait_for: u64,
        meta: &RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ExportOutput>, ToolError> {
        let id = job.job_id.clone();
        if wait {
            let runner = self.runner()?;
            let progress = Progress::new(meta, peer);
            if let Some(mut watch) = runner.jobs.watch(&id) {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_for);
                loop {
                    let current = self.export_job(&id)?;
                    let (done, total) = *watch.borrow_and_update();
                    progress
                        .report(
                            done,
                            total,
                            format!("export job {id}: {done} of {total} instances"),
                        )
                        .await;
                    if current.status.ended() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, watch.changed()).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
            }
        }
        let job = self.export_job(&id)?;
        let summary = if job.status.ended() {
            job_summary(&job)
        } else {
            format!("{} Follow it with get_dicom_export_job.", job_summary(&job))
        };
        Ok(Json(ExportOutput {
            summary,
            job: Some(job),
            phase: None,
            confirmation_token: None,
            expires_in_seconds: None,
        }))
    }
}

fn selection(args: &StartExportArgs) -> Result<Selection, ToolError> {
    let given = [
        args.image_set_id.is_some(),
        args.series_instance_uid.is_some() || args.study_instance_uid.is_some(),
        args.patient_id.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        return Err(invalid(
            "select exactly one of image_set_id, series_instance_uid (optionally with its study_instance_uid), study_instance_uid, or patient_id",
        ));
    }
    Ok(Selection {
        patient_id: args.patient_id.as_ref().map(|p| p.as_str().to_owned()),
        study_instance_uid: args
            .study_instance_uid
            .as_ref()
            .map(|u| u.as_str().to_owned()),
        series_instance_uid: args
            .series_instance_uid
            .as_ref()
            .map(|u| u.as_str().to_owned()),
        image_set_id: args.image_set_id.as_ref().map(|i| i.as_str().to_owned()),
    })
}

fn describe(planning: &Planning, destination: &Destination) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} in {} of {} ({}) go to {destination}",
        plural(planning.instances.len(), "instance", "instances"),
        plural(planning.series.len(), "series", "series"),
        plural(planning.studies.len(), "study", "studies"),
        plural(planning.patients.len(), "patient", "patients"),
    )
}

fn job_summary(job: &ExportJob) -> String {
    let status = serde_json::to_value(job.status)
        .ok()
        .and_then(|v| v.as_str().map(ToOwned::to_owned))
        .unwrap_or_default();
    let mut text = format!(
        "Export job {} is {status}: {} of {} instances exported ({} bytes), {} failed, to {}{}.",
        job.job_id,
        job.exported_instances,
        job.total_instances,
        job.bytes,
        job.failed_instances,
        job.destination,
        if job.de_identified {
            ", de-identified"
        } else {
            ""
        }
    );
    if let Some(message) = &job.message {
        text.push(' ');
        text.push_str(message);
    }
    text
}

fn wait_time(requested: Option<u64>) -> Result<u64, ToolError> {
    let wait = requested.unwrap_or(120);
    if !(1..=MAX_WAIT).contains(&wait) {
        return Err(invalid(&format!(
            "wait_timeout_secs must be between 1 and {MAX_WAIT}, not {wait}"
        )));
    }
    Ok(wait)
}

fn unknown_job(job_id: &str) -> ToolError {
    ToolError::new(
        "ResourceNotFoundException",
        format!("No export job {job_id}"),
        "list_dicom_export_jobs lists the jobs this server knows.",
    )
}

fn invalid(message: &str) -> ToolError {
    ToolError::new(
        "ValidationException",
        message,
        "Correct the argument the message names and call again.",
    )
}
