//! Running an export job: each planned instance read with GetDICOMInstance,
//! de-identified when asked, written to the destination, checksummed into
//! the manifest. A failed instance is counted and listed with its reason;
//! the job goes on.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use dicom_object::meta::FileMetaTable;

use super::destination::Destination;
use super::dimse::{Node, StoreSession};
use super::jobs::{
    ExportJobs, Failure, JobStatus, MAX_LISTED_FAILURES, ManifestEntry, Planned, Record,
    write_atomic,
};
use crate::deid::Deidentifier;
use crate::dicomweb::{DicomWeb, InstanceUids};
use healthimaging_emulator::confined::Folder;

/// What running jobs needs from the server.
#[derive(Debug, Clone)]
pub struct Runner {
    /// DICOMweb, to read instances (and to send STOW-RS).
    pub dicomweb: Arc<DicomWeb>,
    /// The jobs.
    pub jobs: Arc<ExportJobs>,
    /// The emulator's S3 folder, where `s3://` destinations go offline.
    pub local_s3_root: Option<PathBuf>,
    /// An S3 client, where `s3://` destinations go otherwise.
    pub s3: Option<aws_sdk_s3::Client>,
    /// This server's AE title.
    pub calling_ae: String,
    /// The folders `file://` destinations were allowed at or below: a job's
    /// folder is reached from one of them without following a link.
    pub folder_roots: Vec<PathBuf>,
}

impl Runner {
    /// Starts `job_id` in the background unless it runs elsewhere already.
    pub fn spawn(self: &Arc<Self>, job_id: &str) -> bool {
        if !self.jobs.claim(job_id) {
            return false;
        }
        let runner = self.clone();
        let job_id = job_id.to_owned();
        tokio::spawn(async move {
            runner.run(&job_id).await;
            runner.jobs.release(&job_id);
        });
        true
    }

    /// Resumes every job that had not ended.
    pub fn resume_all(self: &Arc<Self>) -> usize {
        self.jobs
            .unfinished()
            .iter()
            .filter(|id| self.spawn(id))
            .count()
    }

    async fn run(&self, job_id: &str) {
        let (Some(record), Some(plan)) = (self.jobs.get(job_id), self.jobs.plan(job_id)) else {
            self.fail(job_id, "the job's record or plan could not be read");
            return;
        };
        let mut sink = match Sink::open(&record, self).await {
            Ok(sink) => sink,
            Err(reason) => {
                self.fail(job_id, &reason);
                return;
            }
        };
        self.jobs
            .update(job_id, |r| r.job.status = JobStatus::InProgress);
        let deidentifier = record
            .job
            .de_identified
            .then(|| Deidentifier::new(&hex_decode(&record.key), record.options));
        let cancel = self.jobs.cancel_flag(job_id).unwrap_or_default();
        for (index, item) in plan.iter().enumerate().skip(record.next) {
            if cancel.load(Ordering::SeqCst) {
                sink.close().await;
                self.jobs.update(job_id, |r| {
                    r.job.status = JobStatus::Cancelled;
                    r.job.message = Some(format!(
                        "Cancelled after {} of {} instances.",
                        index, r.job.total_instances
                    ));
                });
                return;
            }
            match self
                .one(&record, item, deidentifier.as_ref(), &mut sink)
                .await
            {
                Ok(entry) => {
                    let appended = self.jobs.append_manifest(job_id, &entry);
                    self.jobs.update(job_id, |r| {
                        r.next = index + 1;
                        r.job.exported_instances += 1;
                        r.job.bytes += entry.bytes;
                        if let Err(error) = &appended {
                            r.job.message =
                                Some(format!("The manifest could not be appended to: {error}"));
                        }
                    });
                }
                Err(reason) => {
                    self.jobs.update(job_id, |r| {
                        r.next = index + 1;
                        r.job.failed_instances += 1;
                        if r.job.failures.len() < MAX_LISTED_FAILURES {
                            r.job.failures.push(Failure {
                                sop_instance_uid: item.sop.clone(),
                                reason,
                            });
                        }
                    });
                }
            }
        }
        sink.close().await;
        let manifest = self.jobs.manifest(job_id);
        let written = sink.finish(&record, &manifest, &self.jobs).await;
        self.jobs.update(job_id, |r| {
            match written {
                Ok(Some(place)) => r.job.manifest = Some(place),
                Ok(None) => {}
                Err(error) => {
                    r.job.message = Some(format!("The manifest could not be written: {error}"));
                }
            }
            r.job.status = if r.job.failed_instances == 0 {
                JobStatus::Completed
            } else if r.job.exported_instances == 0 {
                JobStatus::Failed
            } else {
                JobStatus::CompletedWithFailures
            };
            if r.job.status == JobStatus::Failed && r.job.message.is_none() {
                r.job.message = Some("Every instance failed; see failures.".to_owned());
            }
        });
        tracing::info!(job_id, "export job ended");
    }

    fn fail(&self, job_id: &str, reason: &str) {
        self.jobs.update(job_id, |r| {
            r.job.status = JobStatus::Failed;
            r.job.message = Some(reason.to_owned());
        });
    }

    async fn one(
        &self,
        record: &Record,
        item: &Planned,
        deidentifier: Option<&Deidentifier>,
        sink: &mut Sink,
    ) -> Result<ManifestEntry, String> {
        let uids = InstanceUids {
            study: item.study.clone(),
            series: item.series.clone(),
            sop: item.sop.clone(),
        };
        let bytes = self
            .dicomweb
            .instance(
                &record.job.datastore_id,
                &uids,
                Some(&item.image_set_id),
                record.job.transfer_syntax.as_deref(),
            )
            .await
            .map_err(|e| format!("reading it failed: {e}"))?;
        let bytes = match deidentifier {
            Some(deidentifier) => {
                let deidentifier = deidentifier.clone();
                tokio::task::spawn_blocking(move || deidentifier.part10(&bytes))
                    .await
                    .map_err(|e| format!("de-identification stopped: {e}"))?
                    .map_err(|e| e.to_string())?
                    .bytes
                    .into()
            }
            None => bytes,
        };
        let facts = Facts::read(&bytes)?;
        let path = sink.write(&facts, bytes.clone()).await?;
        Ok(ManifestEntry {
            path,
            study_instance_uid: facts.study,
            series_instance_uid: facts.series,
            sop_instance_uid: facts.sop_instance,
            sop_class_uid: facts.sop_class,
            transfer_syntax: facts.transfer_syntax,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        })
    }
}

/// What a Part 10 file says about itself.
struct Facts {
    study: String,
    series: String,
    sop_instance: String,
    sop_class: String,
    transfer_syntax: String,
    /// Where the data set starts (after the preamble and file meta).
    dataset_at: usize,
}

impl Facts {
    fn read(bytes: &[u8]) -> Result<Self, String> {
        let meta = bytes
            .get(128..)
            .and_then(|rest| FileMetaTable::from_reader(rest).ok())
            .ok_or("the instance read is not a DICOM Part 10 file")?;
        let dataset_at = 128 + 4 + 12 + meta.information_group_length as usize;
        let object = dicom_object::OpenFileOptions::new()
            .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
            .from_reader(bytes)
            .map_err(|e| format!("the instance read is not readable DICOM: {e}"))?;
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        use dicom_dictionary_std::tags;
        Ok(Self {
            study: text(tags::STUDY_INSTANCE_UID),
            series: text(tags::SERIES_INSTANCE_UID),
            sop_instance: meta.media_storage_sop_instance_uid().to_owned(),
            sop_class: meta.media_storage_sop_class_uid().to_owned(),
            transfer_syntax: meta.transfer_syntax().to_owned(),
            dataset_at,
        })
    }
}

/// Where a job's instances go.
enum Sink {
    /// A folder: the job's own, inside the destination folder or the
    /// emulator's S3 folder, reached from the allowed folder `root` through
    /// the folders `job` (never through a link); `shown` is how it is named
    /// to people.
    Files {
        root: PathBuf,
        job: Vec<OsString>,
        shown: String,
    },
    /// An S3 bucket: objects under `prefix` (which ends with the job ID).
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
    /// A STOW-RS endpoint.
    Stow {
        url: String,
        dicomweb: Arc<DicomWeb>,
    },
    /// A DICOM node.
    Dimse(Option<Box<StoreSession>>),
}

impl Sink {
    async fn open(record: &Record, runner: &Runner) -> Result<Self, String> {
        let job_id = &record.job.job_id;
        let destination = Destination::parse(&record.job.destination)?;
        let fresh = record.next == 0;
        match destination {
            Destination::Folder(dir) => {
                let roots: Vec<&Path> = runner.folder_roots.iter().map(PathBuf::as_path).collect();
                let (root, job) = job_folder(&roots, &dir, job_id, fresh)?;
                Ok(Sink::Files {
                    shown: format!("file://{}", dir.join(job_id).display()),
                    root,
                    job,
                })
            }
            Destination::S3 { bucket, prefix } => {
                let Some(s3) = &runner.local_s3_root else {
                    let Some(client) = &runner.s3 else {
                        return Err(
                            "this server has no S3: on an endpoint other than AWS, set AWS_ENDPOINT_URL_S3 to an S3-compatible service".to_owned(),
                        );
                    };
                    let prefix = if prefix.is_empty() {
                        job_id.clone()
                    } else {
                        format!("{prefix}/{job_id}")
                    };
                    return Ok(Sink::S3 {
                        client: client.clone(),
                        bucket,
                        prefix,
                    });
                };
                let mut dir = s3.join(&bucket);
                if !prefix.is_empty() {
                    dir = dir.join(&prefix);
                }
                let (root, job) = job_folder(&[s3.as_path()], &dir, job_id, fresh)?;
                let key = if prefix.is_empty() {
                    job_id.clone()
                } else {
                    format!("{prefix}/{job_id}")
                };
                Ok(Sink::Files {
                    root,
                    job,
                    shown: format!("s3://{bucket}/{key}"),
                })
            }
            Destination::Stow(url) => Ok(Sink::Stow {
                url,
                dicomweb: runner.dicomweb.clone(),
            }),
            Destination::Dimse {
                called_ae,
                host,
                port,
            } => Ok(Sink::Dimse(Some(Box::new(StoreSession::new(Node {
                calling_ae: runner.calling_ae.clone(),
                called_ae,
                address: format!("{host}:{port}"),
            }))))),
        }
    }

    /// Writes one instance; returns its place for the manifest.
    async fn write(&mut self, facts: &Facts, bytes: Bytes) -> Result<String, String> {
        match self {
            Sink::Files { root, job, .. } => {
                let relative = format!(
                    "{}/{}/{}.dcm",
                    safe(&facts.study),
                    safe(&facts.series),
                    safe(&facts.sop_instance)
                );
                let (root, job) = (root.clone(), job.clone());
                let (study, series, name) = (
                    safe(&facts.study),
                    safe(&facts.series),
                    format!("{}.dcm", safe(&facts.sop_instance)),
                );
                tokio::task::spawn_blocking(move || {
                    // Entered again from the allowed folder at every write:
                    // a folder replaced by a link since the job started (or
                    // while it was stopped) is refused, not followed.
                    let series = job_folder_again(&root, &job)?
                        .descend([OsStr::new(&study), OsStr::new(&series)])?;
                    series
                        .write_new_file(OsStr::new(&name), &bytes)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("writing the file failed: {e}"))?;
                Ok(relative)
            }
            Sink::S3 {
                client,
                bucket,
                prefix,
            } => {
                let relative = format!(
                    "{}/{}/{}.dcm",
                    safe(&facts.study),
                    safe(&facts.series),
                    safe(&facts.sop_instance)
                );
                put_object(
                    client,
                    bucket,
                    &format!("{prefix}/{relative}"),
                    bytes,
                    "application/dicom",
                )
                .await?;
                Ok(relative)
            }
            Sink::Stow { url, dicomweb } => {
                let boundary = format!("{:032x}", rand_u128());
                let mut body = Vec::with_capacity(bytes.len() + 200);
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(&bytes);
                body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                let content_type =
                    format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
                // HealthImaging's own STOW-RS (another datastore) is signed;
                // another archive gets no AWS credentials.
                let signed = url.starts_with(dicomweb.base());
                let response = dicomweb
                    .send(
                        "POST",
                        url,
                        &[
                            ("content-type", content_type.as_str()),
                            ("accept", "application/dicom+json"),
                        ],
                        Bytes::from(body),
                        signed,
                    )
                    .await
                    .map_err(|e| format!("STOW-RS failed: {e}"))?;
                if failed_in_stow_response(&response.body, &facts.sop_instance) {
                    return Err(format!(
                        "STOW-RS answered {} and lists the instance as failed",
                        response.status
                    ));
                }
                Ok(format!(
                    "{url} {}/{}/{}",
                    facts.study, facts.series, facts.sop_instance
                ))
            }
            Sink::Dimse(session) => {
                let mut taken = session.take().ok_or("the DICOM association was lost")?;
                let (class, sop, syntax) = (
                    facts.sop_class.clone(),
                    facts.sop_instance.clone(),
                    facts.transfer_syntax.clone(),
                );
                let at = facts.dataset_at;
                let (taken, outcome) = tokio::task::spawn_blocking(move || {
                    let dataset = bytes.get(at..).unwrap_or_default();
                    let outcome = taken.store(&class, &sop, &syntax, dataset);
                    (taken, outcome)
                })
                .await
                .map_err(|e| e.to_string())?;
                *session = Some(taken);
                outcome?;
                Ok(format!(
                    "C-STORE {}/{}/{}",
                    facts.study, facts.series, facts.sop_instance
                ))
            }
        }
    }

    async fn close(&mut self) {
        if let Sink::Dimse(session) = self
            && let Some(mut taken) = session.take()
        {
            let _ = tokio::task::spawn_blocking(move || taken.close()).await;
        }
    }

    /// Writes the whole manifest: into the job's folder or S3 prefix, or
    /// beside the job's record. Returns where.
    async fn finish(
        &self,
        record: &Record,
        manifest: &[ManifestEntry],
        jobs: &ExportJobs,
    ) -> std::io::Result<Option<String>> {
        let document = serde_json::json!({
            "job_id": record.job.job_id,
            "destination": record.job.destination,
            "de_identified": record.job.de_identified,
            "de_identification": record.job.de_identified.then(|| serde_json::json!({
                "profile": "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile",
                "table_edition": crate::deid::table::EDITION,
                "options": record.options,
            })),
            "files": manifest,
        });
        let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        match self {
            Sink::Files { root, job, shown } => {
                job_folder_again(root, job)
                    .map_err(std::io::Error::other)?
                    .write_new_file(OsStr::new("manifest.json"), &bytes)?;
                Ok(Some(format!("{shown}/manifest.json")))
            }
            Sink::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}/manifest.json");
                put_object(client, bucket, &key, Bytes::from(bytes), "application/json")
                    .await
                    .map_err(std::io::Error::other)?;
                Ok(Some(format!("s3://{bucket}/{key}")))
            }
            _ => match jobs.manifest_path(&record.job.job_id) {
                Some(path) => {
                    write_atomic(&path, &bytes)?;
                    Ok(Some(format!("file://{}", path.display())))
                }
                None => Ok(None),
            },
        }
    }
}

/// PutObject, its error told with the service's code and message.
async fn put_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Bytes,
    content_type: &str,
) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "S3 PutObject of s3://{bucket}/{key} failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })
}

/// The job's folder inside `dir`, which lies at or below one of `roots`:
/// created fresh for a new job (refused if it exists), reused when resuming.
/// Every folder from the root down is entered or created without following
/// a link ([`Folder`]), so a link planted below an allowed folder cannot
/// carry an export elsewhere (the root itself is the operator's and may be
/// a link). Answers the root and the folders from it to the job's.
fn job_folder(
    roots: &[&Path],
    dir: &Path,
    job_id: &str,
    fresh: bool,
) -> Result<(PathBuf, Vec<OsString>), String> {
    let root = roots
        .iter()
        .filter(|root| dir.starts_with(root))
        .max_by_key(|root| root.components().count())
        .ok_or_else(|| format!("{} is not inside an allowed folder", dir.display()))?;
    let rest = dir.strip_prefix(root).map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    for part in rest.components() {
        let std::path::Component::Normal(part) = part else {
            return Err(format!("{} has a . or .. segment", dir.display()));
        };
        parts.push(part.to_owned());
    }
    let above = Folder::root(root)
        .map_err(|e| format!("the destination folder could not be created: {e}"))?
        .descend(parts.iter().map(OsString::as_os_str))?;
    above.child(OsStr::new(job_id), fresh)?;
    parts.push(job_id.into());
    Ok((root.to_path_buf(), parts))
}

/// The job's folder, entered again from its allowed root.
fn job_folder_again(root: &Path, job: &[OsString]) -> Result<Folder, String> {
    Folder::root(root)
        .map_err(|e| format!("the destination folder could not be opened: {e}"))?
        .descend(job.iter().map(OsString::as_os_str))
}

/// A UID as a path component, or a digest of it when it is not a UID.
fn safe(uid: &str) -> String {
    let ok = (1..=64).contains(&uid.len())
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && uid != "."
        && uid != "..";
    if ok {
        uid.to_owned()
    } else {
        format!("x{}", &sha256_hex(uid.as_bytes())[..32])
    }
}

/// Whether a STOW-RS response lists `sop` under FailedSOPSequence.
fn failed_in_stow_response(body: &[u8], sop: &str) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let failed = &value["00081198"]["Value"];
    failed.as_array().is_some_and(|items| {
        items
            .iter()
            .any(|item| item["00081155"]["Value"][0].as_str() == Some(sop))
    })
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    u128::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_are_uids_or_digests() {
        assert_eq!(safe("1.2.840.1"), "1.2.840.1");
        for bad in ["..", ".", "../../etc", "1.2/3", ""] {
            let got = safe(bad);
            assert!(got.starts_with('x') && got.len() == 33, "{bad} → {got}");
        }
    }

    #[test]
    fn stow_failures_are_found_by_instance() {
        let body =
            br#"{"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3"]}}]}}"#;
        assert!(failed_in_stow_response(body, "1.2.3"));
        assert!(!failed_in_stow_response(body, "1.2.4"));
        assert!(!failed_in_stow_response(b"not json", "1.2.3"));
    }
}
