//! The read verbs, over one snapshot of the store.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;

use super::StoreError;
use super::blobs::BlobId;
use super::datastore::{Datastore, LosslessStorageFormat};
use super::image_set::{DicomTags, ImageSet, ImageSetState, ImageSetVersion, Lock, WorkflowStatus};
use super::job::{ImportJob, JobStatus};
use super::search::{self, Query, SortKey};

/// What a `clientToken` was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTokenUse {
    /// The request parameters, to tell a retry from a reuse with other values.
    pub fingerprint: String,
    /// The datastore or job the first request created.
    pub resource_id: String,
}

/// The operations whose `clientToken`s are remembered, each in its own space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// CreateDatastore.
    Datastore,
    /// StartDICOMImportJob.
    Job,
}

impl TokenKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TokenKind::Datastore => "datastore",
            TokenKind::Job => "job",
        }
    }
}

/// A frame an image set lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameEntry {
    /// `imageFrameId`.
    pub frame_id: String,
    /// The transfer syntax it is stored in.
    pub transfer_syntax: String,
    /// Its codestream.
    pub blob: BlobId,
}

/// Reads of the store, all from one snapshot.
#[derive(Debug)]
pub struct Reader<'c> {
    pub(super) connection: &'c Connection,
    /// The last datastore whose sequence number was looked up: a read
    /// transaction's calls mostly concern one datastore, and a datastore's
    /// number never changes.
    last_datastore: std::cell::RefCell<Option<(String, i64)>>,
}

type Result<T> = std::result::Result<T, StoreError>;

const DATASTORE_COLUMNS: &str = "id, seq, name, kms_key_arn, lambda_authorizer_arn, lossless_format, created_at, delete_requested_at, tags";
const JOB_COLUMNS: &str = "id, seq, datastore_id, name, status, role_arn, input_s3_uri, output_s3_uri, input_owner, import_configuration, submitted_at, ended_at, message";
// Single-table statements with a subquery rather than joins: written when
// SQLite prepared such joins again at every new binding (the cause, plans
// depending on bound values, is now switched off for every connection:
// QPSG in `schema::configure`); the subquery costs no more than the join.
const IMAGE_SET_COLUMNS: &str = "row, id, (SELECT id FROM datastores WHERE seq = datastore),
    is_primary, created_at, tags, lock_until, lock_status, latest_version,
    coalesce(last_accessed_at, created_at)";
const VERSION_COLUMNS: &str = "version_id, state, workflow_status, created_at, updated_at, message, forced, tags, metadata_blob";

impl<'c> Reader<'c> {
    pub(super) fn new(connection: &'c Connection) -> Self {
        Self {
            connection,
            last_datastore: Default::default(),
        }
    }

    /// The datastore `id`, whatever its status.
    pub fn datastore(&self, id: &str) -> Result<Option<Datastore>> {
        let sql = format!("SELECT {DATASTORE_COLUMNS} FROM datastores WHERE id = ?");
        Ok(self
            .connection
            .prepare_cached(&sql)?
            .query_row([id], datastore_row)
            .optional()?)
    }

    /// Every datastore, in creation order.
    pub fn datastores(&self) -> Result<Vec<Datastore>> {
        let sql = format!("SELECT {DATASTORE_COLUMNS} FROM datastores ORDER BY seq");
        let mut statement = self.connection.prepare_cached(&sql)?;
        let rows = statement.query_map([], datastore_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What `token` of `kind` was used for, if it was.
    pub fn client_token(&self, kind: TokenKind, token: &str) -> Result<Option<ClientTokenUse>> {
        Ok(self
            .connection
            .prepare_cached(
                "SELECT fingerprint, resource_id FROM client_tokens WHERE kind = ? AND token = ?",
            )?
            .query_row(params![kind.as_str(), token], |row| {
                Ok(ClientTokenUse {
                    fingerprint: row.get(0)?,
                    resource_id: row.get(1)?,
                })
            })
            .optional()?)
    }

    /// The import job `id`.
    pub fn job(&self, id: &str) -> Result<Option<ImportJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        Ok(self
            .connection
            .prepare_cached(&sql)?
            .query_row([id], job_row)
            .optional()?)
    }

    /// Jobs of `datastore_id`, newest first, submitted before `before` (a
    /// sequence number), with `status` if given; at most `limit`.
    pub fn jobs(
        &self,
        datastore_id: &str,
        before: Option<u64>,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<ImportJob>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE datastore_id = ?1 AND seq < ?2
             AND (?3 IS NULL OR status = ?3) ORDER BY seq DESC LIMIT ?4"
        );
        let before = before.map_or(i64::MAX, to_sql_u64);
        let mut statement = self.connection.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![
                datastore_id,
                before,
                status.map(JobStatus::as_str),
                limit as i64
            ],
            job_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Jobs that have not ended, oldest first.
    pub fn unfinished_jobs(&self) -> Result<Vec<String>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT id FROM jobs WHERE status IN ('SUBMITTED', 'IN_PROGRESS') ORDER BY seq",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a running job recorded of its progress.
    pub fn job_progress(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .connection
            .prepare_cached("SELECT progress FROM jobs WHERE id = ?")?
            .query_row([id], |row| row.get(0))
            .optional()?
            .flatten())
    }

    /// What a running job recorded for its outputs: (kind, line), in order.
    pub fn job_outcomes(&self, id: &str) -> Result<Vec<(String, String)>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT kind, line FROM job_outcomes WHERE job_id = ? ORDER BY n")?;
        let rows = statement.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The image set `image_set_id` if it is in `datastore_id`.
    pub fn image_set(&self, datastore_id: &str, image_set_id: &str) -> Result<Option<ImageSet>> {
        let sql = format!("SELECT {IMAGE_SET_COLUMNS} FROM image_sets WHERE id = ?");
        let set =
            self.image_set_where(&sql, rusqlite::types::Value::Text(image_set_id.to_owned()))?;
        Ok(set.filter(|set| set.datastore_id == datastore_id))
    }

    fn image_set_at(&self, row: i64) -> Result<Option<ImageSet>> {
        let sql = format!("SELECT {IMAGE_SET_COLUMNS} FROM image_sets WHERE row = ?");
        self.image_set_where(&sql, rusqlite::types::Value::Integer(row))
    }

    fn image_set_where(&self, sql: &str, key: rusqlite::types::Value) -> Result<Option<ImageSet>> {
        let Some((mut set, latest)) = self
            .connection
            .prepare_cached(sql)?
            .query_row([key], image_set_row)
            .optional()?
        else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE image_set = ? AND version_id = ?"
        );
        let version = self
            .connection
            .prepare_cached(&sql)?
            .query_row(params![set.row, latest], |row| version_row(row, 0))
            .optional()?
            .ok_or_else(|| {
                StoreError::Damaged(format!("image set {} has no version {latest}", set.id))
            })?;
        set.latest = version;
        Ok(Some(set))
    }

    /// Whether any image set, anywhere, has the ID `id`.
    pub fn image_set_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .connection
            .prepare_cached("SELECT 1 FROM image_sets WHERE id = ?")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The version `version_id` of `set`.
    pub fn version(&self, set: &ImageSet, version_id: u32) -> Result<Option<ImageSetVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE image_set = ? AND version_id = ?"
        );
        Ok(self
            .connection
            .prepare_cached(&sql)?
            .query_row(params![set.row, version_id], |row| version_row(row, 0))
            .optional()?)
    }

    /// Versions of `set` older than `before` (every one when `None`),
    /// newest first, at most `limit`.
    pub fn versions(
        &self,
        set: &ImageSet,
        before: Option<u32>,
        limit: usize,
    ) -> Result<Vec<ImageSetVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE image_set = ? AND version_id < ?
             ORDER BY version_id DESC LIMIT ?"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![set.row, before.map_or(i64::MAX, i64::from), limit as i64],
            |row| version_row(row, 0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The frame `frame_id` if `set` lists it.
    pub fn frame(&self, set: &ImageSet, frame_id: &str) -> Result<Option<FrameEntry>> {
        Ok(self
            .connection
            .prepare_cached(
                "SELECT frame_id, transfer_syntax, blob FROM frames WHERE image_set = ? AND frame_id = ?",
            )?
            .query_row(params![set.row, frame_id], frame_row)
            .optional()?)
    }

    /// The frames of `ids` that `set` lists.
    pub fn frames(&self, set: &ImageSet, ids: &[String]) -> Result<Vec<FrameEntry>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(frame) = self.frame(set, id)? {
                found.push(frame);
            }
        }
        Ok(found)
    }

    /// Every frame `set` lists.
    pub fn all_frames(&self, set: &ImageSet) -> Result<Vec<FrameEntry>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT frame_id, transfer_syntax, blob FROM frames WHERE image_set = ? ORDER BY frame_id",
        )?;
        let rows = statement.query_map([set.row], frame_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One page of a search: image sets with their sort keys, in order; one
    /// more than `query.limit` when more follow.
    pub fn search(&self, query: &Query) -> Result<Vec<(SortKey, ImageSet)>> {
        let Some(datastore) = self.datastore_seq(&query.datastore_id)? else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for (key, row) in search::page(self.connection, datastore, query)? {
            if let Some(set) = self.image_set_at(row)? {
                found.push((key, set));
            }
        }
        Ok(found)
    }

    /// The primary image set of `series_uid` in `datastore_id`, if any.
    pub fn primary_image_set(
        &self,
        datastore_id: &str,
        series_uid: &str,
    ) -> Result<Option<ImageSet>> {
        Ok(self
            .primaries(datastore_id, "series_uid", series_uid, 1)?
            .into_iter()
            .next())
    }

    /// The primary image sets of `study_uid` in `datastore_id`, oldest first.
    pub fn study_primaries(&self, datastore_id: &str, study_uid: &str) -> Result<Vec<ImageSet>> {
        self.primaries(datastore_id, "study_uid", study_uid, i64::MAX)
    }

    /// The summaries of the primary image sets of `study_uid` in
    /// `datastore_id`, oldest first: one query, without reading the rest of
    /// the image sets.
    pub fn study_summaries(&self, datastore_id: &str, study_uid: &str) -> Result<Vec<DicomTags>> {
        let Some(datastore) = self.datastore_seq(datastore_id)? else {
            return Ok(Vec::new());
        };
        let summaries = self
            .connection
            .prepare_cached(
                "SELECT v.tags FROM image_sets AS s INDEXED BY search_study_uid_created_at
                 JOIN versions AS v ON v.image_set = s.row AND v.version_id = s.latest_version
                 WHERE s.datastore = ? AND s.deleted = 0 AND s.study_uid = ? AND s.is_primary = 1
                 ORDER BY s.created_at, s.row",
            )?
            .query_map(params![datastore, study_uid], |row| {
                row.get::<_, Option<String>>(0)
            })?
            .map(|tags| Ok(summary(tags?)))
            .collect::<Result<_>>()?;
        Ok(summaries)
    }

    /// The primary image sets of `datastore_id` whose `attribute` is
    /// `value` (exactly, as SearchImageSets' EQUAL), oldest first.
    pub fn primaries_where(
        &self,
        datastore_id: &str,
        attribute: super::Attribute,
        value: &str,
    ) -> Result<Vec<ImageSet>> {
        self.primaries(datastore_id, attribute.column(), value, i64::MAX)
    }

    /// The primary image sets of `datastore_id`, most recently updated
    /// first (what DICOMweb addresses without an `imageSetId`).
    pub fn primaries_by_update(&self, datastore_id: &str) -> Result<Vec<ImageSet>> {
        let Some(datastore) = self.datastore_seq(datastore_id)? else {
            return Ok(Vec::new());
        };
        let rows: Vec<i64> = self
            .connection
            .prepare_cached(
                "SELECT row FROM image_sets INDEXED BY search_is_primary_updated_at
                 WHERE datastore = ? AND deleted = 0 AND is_primary = 1
                 ORDER BY updated_at DESC, row DESC",
            )?
            .query_map(params![datastore], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut sets = Vec::with_capacity(rows.len());
        for row in rows {
            sets.extend(self.image_set_at(row)?);
        }
        Ok(sets)
    }

    /// Up to `limit` primary image sets of `datastore_id` as (updatedAt,
    /// row, StudyInstanceUID), most recently updated first, after the
    /// position `after` (an earlier answer's last updatedAt and row), without
    /// reading the image sets: what a DICOMweb search needs to meet studies
    /// one at a time. Each page is one walk of an index.
    pub fn primary_rows_by_update(
        &self,
        datastore_id: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, i64, Option<String>)>> {
        let Some(datastore) = self.datastore_seq(datastore_id)? else {
            return Ok(Vec::new());
        };
        let (updated, row) = after.unwrap_or((i64::MAX, i64::MAX));
        Ok(self
            .connection
            .prepare_cached(
                "SELECT updated_at, row, study_uid FROM image_sets
                 INDEXED BY search_is_primary_updated_at
                 WHERE datastore = ? AND deleted = 0 AND is_primary = 1
                   AND (updated_at, row) < (?, ?)
                 ORDER BY updated_at DESC, row DESC LIMIT ?",
            )?
            .query_map(params![datastore, updated, row, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The image sets at `rows` (of any datastore), in that order; rows
    /// that no longer hold one are left out.
    pub fn image_sets_at(&self, rows: &[i64]) -> Result<Vec<ImageSet>> {
        let mut sets = Vec::with_capacity(rows.len());
        for &row in rows {
            sets.extend(self.image_set_at(row)?);
        }
        Ok(sets)
    }

    fn primaries(
        &self,
        datastore_id: &str,
        column: &str,
        value: &str,
        limit: i64,
    ) -> Result<Vec<ImageSet>> {
        let Some(datastore) = self.datastore_seq(datastore_id)? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT row FROM image_sets INDEXED BY search_{column}_created_at
             WHERE datastore = ? AND deleted = 0 AND {column} = ? AND is_primary = 1
             ORDER BY created_at, row LIMIT ?"
        );
        let rows: Vec<i64> = self
            .connection
            .prepare_cached(&sql)?
            .query_map(params![datastore, value, limit], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut sets = Vec::with_capacity(rows.len());
        for row in rows {
            sets.extend(self.image_set_at(row)?);
        }
        Ok(sets)
    }

    /// How many image sets `datastore_id` holds (deleted ones excluded).
    pub fn image_set_count(&self, datastore_id: &str) -> Result<usize> {
        let Some(datastore) = self.datastore_seq(datastore_id)? else {
            return Ok(0);
        };
        let count: i64 = self
            .connection
            .prepare_cached(
                "SELECT count(*) FROM image_sets INDEXED BY search_updated_at
                 WHERE datastore = ? AND deleted = 0",
            )?
            .query_row([datastore], |row| row.get(0))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// How many datastores and image sets (deleted ones included) exist.
    pub fn totals(&self) -> Result<(usize, usize)> {
        let count = |sql: &str| -> Result<usize> {
            let n: i64 = self.connection.query_row(sql, [], |row| row.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        Ok((
            count("SELECT count(*) FROM datastores")?,
            count("SELECT count(*) FROM image_sets")?,
        ))
    }

    /// A value the store keeps about itself.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .connection
            .prepare_cached("SELECT value FROM meta WHERE key = ?")?
            .query_row([key], |row| row.get(0))
            .optional()?)
    }

    /// Whether any version or frame refers to the blob `id`.
    pub fn blob_referenced(&self, id: &BlobId) -> Result<bool> {
        let referenced = self
            .connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE metadata_blob = ?1)
                     OR EXISTS (SELECT 1 FROM frames WHERE blob = ?1)",
            )?
            .query_row([id.as_str()], |row| row.get(0))?;
        Ok(referenced)
    }

    pub(super) fn datastore_seq(&self, datastore_id: &str) -> Result<Option<i64>> {
        if let Some((id, seq)) = &*self.last_datastore.borrow()
            && id == datastore_id
        {
            return Ok(Some(*seq));
        }
        let seq: Option<i64> = self
            .connection
            .prepare_cached("SELECT seq FROM datastores WHERE id = ?")?
            .query_row([datastore_id], |row| row.get(0))
            .optional()?;
        if let Some(seq) = seq {
            *self.last_datastore.borrow_mut() = Some((datastore_id.to_owned(), seq));
        }
        Ok(seq)
    }
}

pub(super) fn to_sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let millis: i64 = row.get(index)?;
    Ok(Timestamp::from_millis(u64::try_from(millis).unwrap_or(0)))
}

fn optional_timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    let millis: Option<i64> = row.get(index)?;
    Ok(millis.map(|ms| Timestamp::from_millis(u64::try_from(ms).unwrap_or(0))))
}

/// A JSON column read back into `T`.
fn json<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

/// A wire name stored as text, read back into its enum.
fn named<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_value(serde_json::Value::String(text)).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

fn datastore_row(row: &Row<'_>) -> rusqlite::Result<Datastore> {
    let format: String = row.get(5)?;
    let seq: i64 = row.get(1)?;
    Ok(Datastore {
        id: row.get(0)?,
        seq: u64::try_from(seq).unwrap_or(0),
        name: row.get(2)?,
        kms_key_arn: row.get(3)?,
        lambda_authorizer_arn: row.get(4)?,
        lossless_storage_format: LosslessStorageFormat::ALL
            .iter()
            .find(|(name, _)| *name == format)
            .map_or(LosslessStorageFormat::Htj2k, |(_, f)| *f),
        created_at: timestamp(row, 6)?,
        delete_requested_at: optional_timestamp(row, 7)?,
        tags: json::<BTreeMap<String, String>>(row, 8)?,
    })
}

fn job_row(row: &Row<'_>) -> rusqlite::Result<ImportJob> {
    let status: String = row.get(4)?;
    let seq: i64 = row.get(1)?;
    let configuration: Option<String> = row.get(9)?;
    Ok(ImportJob {
        id: row.get(0)?,
        seq: u64::try_from(seq).unwrap_or(0),
        datastore_id: row.get(2)?,
        name: row.get(3)?,
        status: JobStatus::ALL
            .iter()
            .find(|(name, _)| *name == status)
            .map_or(JobStatus::Failed, |(_, s)| *s),
        data_access_role_arn: row.get(5)?,
        input_s3_uri: row.get(6)?,
        output_s3_uri: row.get(7)?,
        input_owner_account_id: row.get(8)?,
        import_configuration: configuration.and_then(|text| serde_json::from_str(&text).ok()),
        submitted_at: timestamp(row, 10)?,
        ended_at: optional_timestamp(row, 11)?,
        message: row.get(12)?,
    })
}

/// An image set row, with a placeholder for its latest version, and the
/// number of that version.
fn image_set_row(row: &Row<'_>) -> rusqlite::Result<(ImageSet, i64)> {
    let lock_until = optional_timestamp(row, 6)?;
    let lock = match lock_until {
        Some(until) => Some(Lock {
            until,
            status: named(row, 7)?,
        }),
        None => None,
    };
    let set = ImageSet {
        row: row.get(0)?,
        id: row.get(1)?,
        datastore_id: row.get(2)?,
        is_primary: row.get(3)?,
        created_at: timestamp(row, 4)?,
        tags: json(row, 5)?,
        lock,
        latest: ImageSetVersion::imported(0, Timestamp::from_millis(0), DicomTags::default(), None),
        last_accessed_at: timestamp(row, 9)?,
    };
    Ok((set, row.get(8)?))
}

fn version_row(row: &Row<'_>, at: usize) -> rusqlite::Result<ImageSetVersion> {
    let tags: Option<String> = row.get(at + 7)?;
    let blob: Option<String> = row.get(at + 8)?;
    let version: i64 = row.get(at)?;
    Ok(ImageSetVersion {
        version_id: u32::try_from(version).unwrap_or(u32::MAX),
        state: named::<ImageSetState>(row, at + 1)?,
        workflow_status: named::<WorkflowStatus>(row, at + 2)?,
        created_at: timestamp(row, at + 3)?,
        updated_at: timestamp(row, at + 4)?,
        message: row.get(at + 5)?,
        forced: row.get(at + 6)?,
        tags: summary(tags),
        metadata: blob.as_deref().and_then(BlobId::parse),
    })
}

/// The summary stored as `tags` (none when it is missing or unreadable).
fn summary(tags: Option<String>) -> DicomTags {
    tags.and_then(|text| serde_json::from_str::<DicomTags>(&text).ok())
        .unwrap_or_default()
}

fn frame_row(row: &Row<'_>) -> rusqlite::Result<FrameEntry> {
    let blob: String = row.get(2)?;
    Ok(FrameEntry {
        frame_id: row.get(0)?,
        transfer_syntax: row.get(1)?,
        blob: BlobId::parse(&blob).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                "not a blob name".into(),
            )
        })?,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{active_datastore, plant_document, send, series_document, service};

    /// One read transaction that moves between datastores finds each
    /// one's own image sets (the remembered datastore number follows).
    #[tokio::test]
    async fn reads_that_alternate_between_datastores_find_each_ones_image_sets() {
        let (service, clock) = service();
        let first = active_datastore(&service, &clock).await;
        let (_, _, created) = send(
            &service,
            axum::http::Method::POST,
            "/datastore",
            r#"{"clientToken":"another"}"#,
        )
        .await;
        clock.advance(std::time::Duration::from_millis(100));
        let second = created["datastoreId"].as_str().unwrap().to_owned();
        assert_ne!(first, second);
        for (n, ds) in [&first, &second].into_iter().enumerate() {
            let document = series_document("P1", "1.1", &format!("1.1.{n}"), &["x"]);
            plant_document(&service, ds, &format!("{:032x}", n + 1), true, document);
        }
        let found = service
            .store()
            .read(|r| {
                let mut found = Vec::new();
                for ds in [&first, &second, &first, "not-a-datastore", &second] {
                    let sets = r.study_primaries(ds, "1.1")?;
                    let summaries = r.study_summaries(ds, "1.1")?;
                    assert_eq!(sets.len(), summaries.len(), "{ds}");
                    found.push(
                        summaries
                            .iter()
                            .map(|s| s.series_instance_uid.clone().unwrap_or_default())
                            .collect::<Vec<_>>(),
                    );
                }
                Ok::<_, super::StoreError>(found)
            })
            .unwrap();
        let one = |uid: &str| vec![uid.to_owned()];
        assert_eq!(
            found,
            vec![
                one("1.1.0"),
                one("1.1.1"),
                one("1.1.0"),
                Vec::new(),
                one("1.1.1")
            ]
        );
    }
}
