//! The write verbs, inside one transaction.

use std::collections::BTreeMap;
use std::ops::Deref;

use rusqlite::{OptionalExtension, params};

use crate::clock::Timestamp;

use super::StoreError;
use super::blobs::{BlobId, Blobs, Pinned};
use super::datastore::Datastore;
use super::image_set::{ImageSet, ImageSetState, ImageSetVersion, Lock, WorkflowStatus, wire_name};
use super::job::{ImportJob, JobStatus};
use super::reader::{FrameEntry, Reader, TokenKind, to_sql_u64};

type Result<T> = std::result::Result<T, StoreError>;

/// Changes to the store, committed together when the write succeeds.
/// Reads through it see the transaction's own changes.
#[derive(Debug)]
pub struct Writer<'c> {
    reader: Reader<'c>,
    blobs: &'c Blobs,
    pinned: Vec<Pinned>,
    released: Vec<BlobId>,
    erased: bool,
}

impl<'c> Deref for Writer<'c> {
    type Target = Reader<'c>;

    fn deref(&self) -> &Reader<'c> {
        &self.reader
    }
}

impl<'c> Writer<'c> {
    pub(super) fn new(connection: &'c rusqlite::Connection, blobs: &'c Blobs) -> Self {
        Self {
            reader: Reader::new(connection),
            blobs,
            pinned: Vec::new(),
            released: Vec::new(),
            erased: false,
        }
    }

    fn execute(&self, sql: &str, parameters: impl rusqlite::Params) -> Result<usize> {
        Ok(self
            .reader
            .connection
            .prepare_cached(sql)?
            .execute(parameters)?)
    }

    /// Flushes the blobs this transaction wrote and counts the write; runs
    /// just before COMMIT.
    pub(super) fn finish(&mut self) -> Result<()> {
        if !self.pinned.is_empty() {
            self.blobs.sync()?;
        }
        self.execute(
            "INSERT INTO meta (key, value) VALUES ('writes', '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            [],
        )?;
        Ok(())
    }

    /// The blobs that lost a reference, and whether an image set was
    /// erased; the pins end here, after the commit.
    pub(super) fn into_released(self) -> (Vec<BlobId>, bool) {
        (self.released, self.erased)
    }

    /// Stores `bytes` as a blob for this transaction to refer to.
    pub fn put_blob(&mut self, bytes: &[u8]) -> Result<BlobId> {
        let pinned = self.blobs.put(bytes)?;
        let id = pinned.id().clone();
        self.pinned.push(pinned);
        Ok(id)
    }

    /// Keeps `pinned` (a blob written before the transaction) pinned until
    /// it commits, and flushes blobs before the commit.
    pub fn hold(&mut self, pinned: Pinned) {
        self.pinned.push(pinned);
    }

    /// The sequence number the next datastore or job gets.
    pub fn next_seq(&mut self) -> Result<u64> {
        let next: Option<i64> = self
            .reader
            .connection
            .prepare_cached(
                "SELECT max(seq) + 1 FROM (SELECT seq FROM datastores UNION ALL SELECT seq FROM jobs)",
            )?
            .query_row([], |row| row.get(0))
            .optional()?
            .flatten();
        Ok(next.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// How many write transactions the store has committed.
    pub fn writes(&self) -> Result<u64> {
        Ok(self
            .meta("writes")?
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Records that `token` of `kind` created `resource_id`.
    pub fn insert_client_token(
        &mut self,
        kind: TokenKind,
        token: &str,
        fingerprint: &str,
        resource_id: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO client_tokens (kind, token, fingerprint, resource_id) VALUES (?, ?, ?, ?)",
            params![kind.as_str(), token, fingerprint, resource_id],
        )?;
        Ok(())
    }

    /// A new datastore.
    pub fn insert_datastore(&mut self, datastore: &Datastore) -> Result<()> {
        self.execute(
            "INSERT INTO datastores (id, seq, name, kms_key_arn, lambda_authorizer_arn,
                 lossless_format, created_at, delete_requested_at, tags)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                datastore.id,
                to_sql_u64(datastore.seq),
                datastore.name,
                datastore.kms_key_arn,
                datastore.lambda_authorizer_arn,
                datastore.lossless_storage_format.as_str(),
                millis(datastore.created_at),
                datastore.delete_requested_at.map(millis),
                tags_json(&datastore.tags),
            ],
        )?;
        Ok(())
    }

    /// DeleteDatastore accepted at `at`.
    pub fn request_datastore_deletion(&mut self, id: &str, at: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE datastores SET delete_requested_at = ? WHERE id = ?",
            params![millis(at), id],
        )?;
        Ok(())
    }

    /// Gives datastore `id` the tag set `tags`.
    pub fn set_datastore_tags(&mut self, id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.execute(
            "UPDATE datastores SET tags = ? WHERE id = ?",
            params![tags_json(tags), id],
        )?;
        Ok(())
    }

    /// A new import job.
    pub fn insert_job(&mut self, job: &ImportJob) -> Result<()> {
        self.execute(
            "INSERT INTO jobs (id, seq, datastore_id, name, status, role_arn, input_s3_uri,
                 output_s3_uri, input_owner, import_configuration, submitted_at, ended_at, message)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                job.id,
                to_sql_u64(job.seq),
                job.datastore_id,
                job.name,
                job.status.as_str(),
                job.data_access_role_arn,
                job.input_s3_uri,
                job.output_s3_uri,
                job.input_owner_account_id,
                job.import_configuration.as_ref().map(|c| c.to_string()),
                millis(job.submitted_at),
                job.ended_at.map(millis),
                job.message,
            ],
        )?;
        Ok(())
    }

    /// A job's new status; `ended_at` and `message` when it ended.
    pub fn update_job(
        &mut self,
        id: &str,
        status: JobStatus,
        ended_at: Option<Timestamp>,
        message: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "UPDATE jobs SET status = ?, ended_at = ?, message = ? WHERE id = ?",
            params![status.as_str(), ended_at.map(millis), message, id],
        )?;
        Ok(())
    }

    /// What a running job has done so far, for it to resume from.
    pub fn set_job_progress(&mut self, id: &str, progress: Option<&str>) -> Result<()> {
        self.execute(
            "UPDATE jobs SET progress = ? WHERE id = ?",
            params![progress, id],
        )?;
        Ok(())
    }

    /// Records a line of a running job's outputs.
    pub fn record_job_outcome(&mut self, id: &str, kind: &str, line: &str) -> Result<()> {
        self.execute(
            "INSERT INTO job_outcomes (job_id, n, kind, line)
             VALUES (?1, (SELECT coalesce(max(n), -1) + 1 FROM job_outcomes WHERE job_id = ?1), ?2, ?3)",
            params![id, kind, line],
        )?;
        Ok(())
    }

    /// Forgets what a job recorded for its outputs, once they are written.
    pub fn clear_job_outcomes(&mut self, id: &str) -> Result<()> {
        self.execute("DELETE FROM job_outcomes WHERE job_id = ?", [id])?;
        Ok(())
    }

    /// A new image set with its first version.
    pub fn create_image_set(
        &mut self,
        id: &str,
        datastore_id: &str,
        is_primary: bool,
        created_at: Timestamp,
        first: ImageSetVersion,
        lock: Option<Lock>,
    ) -> Result<ImageSet> {
        let datastore = self.datastore_seq(datastore_id)?.ok_or_else(|| {
            StoreError::Damaged(format!("no datastore {datastore_id} for a new image set"))
        })?;
        self.execute(
            "INSERT INTO image_sets (id, datastore, is_primary, created_at, updated_at, latest_version)
             VALUES (?, ?, ?, ?, ?, 0)",
            params![
                id,
                datastore,
                is_primary,
                millis(created_at),
                millis(first.updated_at)
            ],
        )?;
        let mut set = ImageSet {
            row: self.reader.connection.last_insert_rowid(),
            id: id.to_owned(),
            datastore_id: datastore_id.to_owned(),
            is_primary,
            created_at,
            tags: BTreeMap::new(),
            lock: None,
            latest: first.clone(),
            last_accessed_at: created_at,
        };
        self.append_version(&mut set, first)?;
        self.set_lock(&mut set, lock)?;
        Ok(set)
    }

    /// Appends `version` to `set` as its newest, and indexes its attributes.
    pub fn append_version(&mut self, set: &mut ImageSet, version: ImageSetVersion) -> Result<()> {
        self.execute(
            "INSERT INTO versions (image_set, version_id, state, workflow_status, created_at,
                 updated_at, message, forced, tags, metadata_blob)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                set.row,
                version.version_id,
                wire_name(&version.state),
                wire_name(&version.workflow_status),
                millis(version.created_at),
                millis(version.updated_at),
                version.message,
                version.forced,
                serde_json::to_string(&version.tags).unwrap_or_default(),
                version.metadata.as_ref().map(BlobId::as_str),
            ],
        )?;
        let tags = &version.tags;
        self.execute(
            "UPDATE image_sets SET latest_version = ?, updated_at = ?, patient_id = ?,
                 accession_number = ?, study_id = ?, study_uid = ?, series_uid = ?,
                 study_date_time = ?
             WHERE row = ?",
            params![
                version.version_id,
                millis(version.updated_at),
                tags.patient_id,
                tags.accession_number,
                tags.study_id,
                tags.study_instance_uid,
                tags.series_instance_uid,
                tags.study_date_and_time().unwrap_or_default(),
                set.row,
            ],
        )?;
        set.latest = version;
        Ok(())
    }

    /// Records that `set`'s data was read or written at `at` (a touch of
    /// the storage tier).
    pub fn touch(&mut self, set: &mut ImageSet, at: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE image_sets SET last_accessed_at = ? WHERE row = ?",
            params![millis(at), set.row],
        )?;
        set.last_accessed_at = at;
        Ok(())
    }

    /// Locks `set` (or unlocks it with `None`).
    pub fn set_lock(&mut self, set: &mut ImageSet, lock: Option<Lock>) -> Result<()> {
        self.execute(
            "UPDATE image_sets SET lock_until = ?, lock_status = ? WHERE row = ?",
            params![
                lock.map(|l| millis(l.until)),
                lock.map(|l| wire_name(&l.status)),
                set.row
            ],
        )?;
        set.lock = lock;
        Ok(())
    }

    /// Gives `set` the resource tag set `tags`.
    pub fn set_image_set_tags(
        &mut self,
        set: &mut ImageSet,
        tags: BTreeMap<String, String>,
    ) -> Result<()> {
        self.execute(
            "UPDATE image_sets SET tags = ? WHERE row = ?",
            params![tags_json(&tags), set.row],
        )?;
        set.tags = tags;
        Ok(())
    }

    /// Lists `frames` in `set` (frames it lists already stay as they are).
    pub fn add_frames(&mut self, set: &ImageSet, frames: &[FrameEntry]) -> Result<()> {
        for frame in frames {
            self.execute(
                "INSERT OR IGNORE INTO frames (image_set, frame_id, transfer_syntax, blob)
                 VALUES (?, ?, ?, ?)",
                params![
                    set.row,
                    frame.frame_id,
                    frame.transfer_syntax,
                    frame.blob.as_str()
                ],
            )?;
        }
        Ok(())
    }

    /// Deletes `set` at `at`, erasing its data: the latest version reads
    /// `DELETED`; every version keeps its number, states and times but loses
    /// its attributes, message and document; the frames are unlisted; the
    /// image set leaves the search index. Blobs nothing else refers to are
    /// deleted once the transaction commits.
    pub fn erase(&mut self, set: &mut ImageSet, at: Timestamp) -> Result<()> {
        let connection = self.reader.connection;
        let mut released: Vec<BlobId> = Vec::new();
        {
            let mut documents = connection.prepare_cached(
                "SELECT metadata_blob FROM versions WHERE image_set = ? AND metadata_blob IS NOT NULL",
            )?;
            for blob in documents.query_map([set.row], |row| row.get::<_, String>(0))? {
                released.extend(BlobId::parse(&blob?));
            }
            let mut frames =
                connection.prepare_cached("SELECT blob FROM frames WHERE image_set = ?")?;
            for blob in frames.query_map([set.row], |row| row.get::<_, String>(0))? {
                released.extend(BlobId::parse(&blob?));
            }
        }
        released.sort();
        released.dedup();
        self.execute(
            "UPDATE versions SET tags = NULL, message = NULL, metadata_blob = NULL WHERE image_set = ?",
            [set.row],
        )?;
        self.execute(
            "UPDATE versions SET state = ?, workflow_status = ?, updated_at = ?
             WHERE image_set = ? AND version_id = ?",
            params![
                wire_name(&ImageSetState::Deleted),
                wire_name(&WorkflowStatus::Deleted),
                millis(at),
                set.row,
                set.latest.version_id
            ],
        )?;
        self.execute("DELETE FROM frames WHERE image_set = ?", [set.row])?;
        self.execute(
            "UPDATE image_sets SET deleted = 1, updated_at = ?, tags = '{}', patient_id = NULL,
                 accession_number = NULL, study_id = NULL, study_uid = NULL, series_uid = NULL,
                 study_date_time = ''
             WHERE row = ?",
            params![millis(at), set.row],
        )?;
        set.latest.state = ImageSetState::Deleted;
        set.latest.workflow_status = WorkflowStatus::Deleted;
        set.latest.updated_at = at;
        set.latest.tags = Default::default();
        set.latest.message = None;
        set.latest.metadata = None;
        set.tags.clear();
        self.released.extend(released);
        self.erased = true;
        Ok(())
    }
}

fn millis(at: Timestamp) -> i64 {
    to_sql_u64(at.as_millis())
}

fn tags_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".to_owned())
}
