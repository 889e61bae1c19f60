//! Export jobs: what they are, and where they are kept.
//!
//! Each job is a small JSON record in the state directory's `export-jobs`
//! folder, rewritten atomically (temporary file, rename) as it advances,
//! beside its plan (the instances to send, written once) and a manifest of
//! what was written, one JSON line per instance. A job that was running when
//! the server stopped is resumed at its next instance by the next server
//! that opens the folder; an advisory lock on `<job>.lock` keeps two servers
//! sharing a state directory from running the same job.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::deid::ProfileOptions;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Planned, not started.
    Submitted,
    /// Sending instances.
    InProgress,
    /// Every instance sent.
    Completed,
    /// Done, some instances failed (listed).
    CompletedWithFailures,
    /// Stopped by an error that concerns every instance (the destination).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        !matches!(self, JobStatus::Submitted | JobStatus::InProgress)
    }
}

/// What a job exports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Selection {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Every study of this patient.
    pub patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A study.
    pub study_instance_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A series.
    pub series_instance_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// One image set.
    pub image_set_id: Option<String>,
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection {
                image_set_id: Some(id),
                ..
            } => write!(f, "image set {id}"),
            Selection {
                series_instance_uid: Some(uid),
                ..
            } => write!(f, "series {uid}"),
            Selection {
                study_instance_uid: Some(uid),
                ..
            } => write!(f, "study {uid}"),
            Selection {
                patient_id: Some(id),
                ..
            } => write!(f, "the studies of patient {id}"),
            _ => f.write_str("nothing"),
        }
    }
}

/// One instance that could not be exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    /// The instance.
    pub sop_instance_uid: String,
    /// Why it failed.
    pub reason: String,
}

/// The most failures a job lists (all are counted).
pub const MAX_LISTED_FAILURES: usize = 100;

/// A job as the tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExportJob {
    /// The job ID (32 hex digits).
    pub job_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The datastore read.
    pub datastore_id: String,
    /// What is exported, e.g. `study 1.2.3`.
    pub selection: String,
    /// Where it goes.
    pub destination: String,
    /// Whether instances are de-identified.
    pub de_identified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The transfer syntax asked for (default: the stored one).
    pub transfer_syntax: Option<String>,
    /// When it was started.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Instances planned.
    pub total_instances: usize,
    /// Instances written.
    pub exported_instances: usize,
    /// Instances that failed.
    pub failed_instances: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Where the manifest (every file and its SHA-256) is, once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// What happened, when there is more to say.
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// The first failures, with reasons.
    pub failures: Vec<Failure>,
}

/// An instance a job sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// The image set it is read from.
    pub image_set_id: String,
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// SOP Instance UID.
    pub sop: String,
}

/// A job's persisted record: the public view and what running it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The public view.
    pub job: ExportJob,
    /// The de-identification options.
    pub options: ProfileOptions,
    /// The de-identification key, hex (secret: links outputs to inputs).
    pub key: String,
    /// The index in the plan of the next instance to send.
    pub next: usize,
}

/// One line of a job's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The file's path under the job's folder, or the instance's place at
    /// the destination (STOW-RS, DICOM node).
    pub path: String,
    /// The UIDs as written (de-identified ones when de-identified).
    pub study_instance_uid: String,
    /// Series.
    pub series_instance_uid: String,
    /// Instance.
    pub sop_instance_uid: String,
    /// SOP class.
    pub sop_class_uid: String,
    /// Transfer syntax of the bytes sent.
    pub transfer_syntax: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256 of the bytes sent, hex.
    pub sha256: String,
}

/// Progress of a running job: instances done, of all.
pub type Progress = (usize, usize);

struct Entry {
    record: Record,
    cancel: Arc<AtomicBool>,
    progress: watch::Sender<Progress>,
    lock: Option<File>,
}

/// Every export job this server knows.
pub struct ExportJobs {
    dir: Option<PathBuf>,
    jobs: Mutex<BTreeMap<String, Entry>>,
    plans: Mutex<BTreeMap<String, Arc<Vec<Planned>>>>,
}

impl std::fmt::Debug for ExportJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportJobs")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ExportJobs {
    /// The jobs kept in `state_dir/export-jobs` (created), or in memory only.
    pub fn open(state_dir: Option<&Path>) -> Self {
        let dir = state_dir.map(|s| s.join("export-jobs"));
        let mut jobs = BTreeMap::new();
        if let Some(dir) = &dir {
            if let Err(error) = std::fs::create_dir_all(dir) {
                tracing::warn!(%error, "the export job folder could not be created; export jobs stay in memory");
                return Self {
                    dir: None,
                    jobs: Mutex::new(jobs),
                    plans: Mutex::default(),
                };
            }
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let is_record = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".json"))
                    .is_some_and(|stem| {
                        stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit())
                    });
                if !is_record {
                    continue;
                }
                match std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
                {
                    Some(record) => {
                        let done = (record.next, record.job.total_instances);
                        jobs.insert(
                            record.job.job_id.clone(),
                            Entry {
                                record,
                                cancel: Arc::default(),
                                progress: watch::channel(done).0,
                                lock: None,
                            },
                        );
                    }
                    None => tracing::warn!(
                        file = %path.display(),
                        "an export job record could not be read; it is skipped"
                    ),
                }
            }
        }
        Self {
            dir,
            jobs: Mutex::new(jobs),
            plans: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether jobs survive a restart.
    pub fn persistent(&self) -> bool {
        self.dir.is_some()
    }

    /// Adds a new job with its plan, on disk first when persistent.
    pub fn add(&self, record: Record, plan: &[Planned]) -> std::io::Result<()> {
        if let Some(dir) = &self.dir {
            write_atomic(
                &dir.join(format!("{}.plan.json", record.job.job_id)),
                &serde_json::to_vec(plan).unwrap_or_default(),
            )?;
            write_atomic(
                &dir.join(format!("{}.json", record.job.job_id)),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )?;
        }
        self.plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.job.job_id.clone(), Arc::new(plan.to_vec()));
        let done = (record.next, record.job.total_instances);
        self.lock().insert(
            record.job.job_id.clone(),
            Entry {
                record,
                cancel: Arc::default(),
                progress: watch::channel(done).0,
                lock: None,
            },
        );
        Ok(())
    }

    /// The plan of `job_id`: held since it was added, or read from disk.
    pub fn plan(&self, job_id: &str) -> Option<Arc<Vec<Planned>>> {
        if let Some(plan) = self
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(job_id)
        {
            return Some(plan.clone());
        }
        let dir = self.dir.as_ref()?;
        let bytes = std::fs::read(dir.join(format!("{job_id}.plan.json"))).ok()?;
        serde_json::from_slice(&bytes).ok().map(Arc::new)
    }

    /// Takes the right to run `job_id` in this process: false when another
    /// process holds it (or it is already running here).
    pub fn claim(&self, job_id: &str) -> bool {
        let mut jobs = self.lock();
        let Some(entry) = jobs.get_mut(job_id) else {
            return false;
        };
        if entry.lock.is_some() {
            return false;
        }
        let Some(dir) = &self.dir else {
            // In memory: only this process knows the job.
            entry.lock = File::open("/dev/null").ok();
            return entry.lock.is_some();
        };
        let Ok(file) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{job_id}.lock")))
        else {
            return false;
        };
        if file.try_lock().is_err() {
            return false;
        }
        entry.lock = Some(file);
        true
    }

    /// Releases the right to run `job_id`.
    pub fn release(&self, job_id: &str) {
        if let Some(entry) = self.lock().get_mut(job_id) {
            entry.lock = None;
        }
    }

    /// A job's record.
    pub fn get(&self, job_id: &str) -> Option<Record> {
        self.lock().get(job_id).map(|e| e.record.clone())
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<ExportJob> {
        let mut jobs: Vec<ExportJob> = self.lock().values().map(|e| e.record.job.clone()).collect();
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.job_id.cmp(&a.job_id))
        });
        jobs
    }

    /// Jobs that did not end (to resume).
    pub fn unfinished(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| !e.record.job.status.ended())
            .map(|e| e.record.job.job_id.clone())
            .collect()
    }

    /// Changes a job's record with `f`, then keeps it (on disk when
    /// persistent) and tells waiters of the progress.
    pub fn update(&self, job_id: &str, f: impl FnOnce(&mut Record)) -> Option<Record> {
        let record = {
            let mut jobs = self.lock();
            let entry = jobs.get_mut(job_id)?;
            f(&mut entry.record);
            entry.record.job.updated_at = crate::timefmt::now();
            let done = entry.record.job.exported_instances + entry.record.job.failed_instances;
            entry
                .progress
                .send_replace((done, entry.record.job.total_instances));
            entry.record.clone()
        };
        if let Some(dir) = &self.dir
            && let Err(error) = write_atomic(
                &dir.join(format!("{job_id}.json")),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )
        {
            tracing::warn!(%error, job_id, "an export job record could not be written");
        }
        Some(record)
    }

    /// The cancellation flag of a job.
    pub fn cancel_flag(&self, job_id: &str) -> Option<Arc<AtomicBool>> {
        self.lock().get(job_id).map(|e| e.cancel.clone())
    }

    /// Asks a running job to stop; true when it was running.
    pub fn cancel(&self, job_id: &str) -> Option<bool> {
        let jobs = self.lock();
        let entry = jobs.get(job_id)?;
        entry.cancel.store(true, Ordering::SeqCst);
        Some(!entry.record.job.status.ended())
    }

    /// A receiver of a job's progress.
    pub fn watch(&self, job_id: &str) -> Option<watch::Receiver<Progress>> {
        self.lock().get(job_id).map(|e| e.progress.subscribe())
    }

    /// Appends one line to a job's manifest (kept beside its record, or in
    /// memory for in-memory jobs).
    pub fn append_manifest(&self, job_id: &str, entry: &ManifestEntry) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            MEMORY_MANIFESTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(job_id.to_owned())
                .or_default()
                .push(entry.clone());
            return Ok(());
        };
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("{job_id}.manifest.jsonl")))?;
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()
    }

    /// A job's manifest lines so far (a damaged last line, from a crash
    /// while writing it, is left out: its instance is sent again).
    pub fn manifest(&self, job_id: &str) -> Vec<ManifestEntry> {
        let Some(dir) = &self.dir else {
            return MEMORY_MANIFESTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(job_id)
                .cloned()
                .unwrap_or_default();
        };
        std::fs::read_to_string(dir.join(format!("{job_id}.manifest.jsonl")))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Where a job's whole manifest is written for destinations without a
    /// folder of their own.
    pub fn manifest_path(&self, job_id: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{job_id}.manifest.json")))
    }
}

static MEMORY_MANIFESTS: std::sync::LazyLock<Mutex<BTreeMap<String, Vec<ManifestEntry>>>> =
    std::sync::LazyLock::new(Mutex::default);

/// Writes `bytes` to `path` through a temporary file and a rename, synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

/// A new job ID: 32 lowercase hex digits.
pub fn new_job_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new de-identification key, hex.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            job: ExportJob {
                job_id: id.to_owned(),
                status: JobStatus::InProgress,
                datastore_id: "d".repeat(32),
                selection: "study 1.2.3".to_owned(),
                destination: "s3://b-1/x".to_owned(),
                de_identified: true,
                transfer_syntax: None,
                created_at: "2026-01-01T00:00:00.000Z".to_owned(),
                updated_at: "2026-01-01T00:00:00.000Z".to_owned(),
                total_instances: 2,
                exported_instances: 0,
                failed_instances: 0,
                bytes: 0,
                manifest: None,
                message: None,
                failures: Vec::new(),
            },
            options: ProfileOptions::default(),
            key: "00".repeat(32),
            next: 0,
        }
    }

    #[test]
    fn records_plans_and_manifests_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = new_job_id();
        let plan = vec![Planned {
            image_set_id: "i".repeat(32),
            study: "1.2".into(),
            series: "1.2.3".into(),
            sop: "1.2.3.4".into(),
        }];
        {
            let jobs = ExportJobs::open(Some(dir.path()));
            jobs.add(record(&id), &plan).unwrap();
            jobs.update(&id, |r| r.next = 1);
            let entry = ManifestEntry {
                path: "a/b/c.dcm".into(),
                study_instance_uid: "1.2".into(),
                series_instance_uid: "1.2.3".into(),
                sop_instance_uid: "1.2.3.4".into(),
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntax: "1.2.840.10008.1.2.1".into(),
                bytes: 10,
                sha256: "ab".into(),
            };
            jobs.append_manifest(&id, &entry).unwrap();
        }
        // A damaged last manifest line (a crash while appending) is skipped.
        let manifest = dir
            .path()
            .join("export-jobs")
            .join(format!("{id}.manifest.jsonl"));
        let mut file = File::options().append(true).open(&manifest).unwrap();
        file.write_all(b"{\"path\":\"half").unwrap();
        std::fs::write(dir.path().join("export-jobs").join("notes.json"), b"{}").unwrap();
        let jobs = ExportJobs::open(Some(dir.path()));
        let got = jobs.get(&id).expect("the record is read back");
        assert_eq!(got.next, 1);
        assert_eq!(got.job.status, JobStatus::InProgress);
        assert_eq!(jobs.plan(&id).unwrap().as_slice(), plan.as_slice());
        assert_eq!(jobs.manifest(&id).len(), 1);
        assert_eq!(jobs.unfinished(), vec![id.clone()]);
        // One runner at a time per job.
        assert!(jobs.claim(&id));
        assert!(!jobs.claim(&id));
        let other = ExportJobs::open(Some(dir.path()));
        assert!(!other.claim(&id), "another process's runner is locked out");
        jobs.release(&id);
        assert!(other.claim(&id));
    }
}
