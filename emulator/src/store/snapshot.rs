//! Snapshots: a consistent copy of the store, the database and every blob
//! it refers to, in a folder of its own, and the way back.
//!
//! A snapshot is taken while the store's writer is held, so no commit can
//! happen between the copy of the database (SQLite's backup API) and the
//! copy of its blobs; readers go on meanwhile. Blobs are hard-linked where the file
//! system allows it (they never change), copied otherwise. The folder is
//! written under a temporary name and renamed when complete, with
//! `snapshot.json` recording the format, the schema and the emulator version.
//!
//! Restoring adds the snapshot's blobs to the store (content-addressed, so
//! this changes nothing any current row refers to), replaces the database
//! with SQLite's backup API in one step, then deletes the blobs nothing
//! refers to any more. Readers see the old store or the new one.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use super::blobs::BlobId;
use super::{Store, StoreError, schema};

/// What `snapshot.json` says a snapshot folder is.
pub const FORMAT: &str = "healthimaging-emulator-snapshot";

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The folder.
    pub path: PathBuf,
    /// Datastores in it.
    pub datastores: usize,
    /// Image sets in it, deleted ones included.
    pub image_sets: usize,
    /// Blobs in it.
    pub blobs: usize,
}

fn damaged(message: impl Into<String>) -> StoreError {
    StoreError::Damaged(message.into())
}

/// Every blob the database at `path` refers to.
fn referenced_blobs(path: &Path) -> Result<Vec<BlobId>, StoreError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare(
        "SELECT metadata_blob FROM versions WHERE metadata_blob IS NOT NULL
         UNION SELECT blob FROM frames",
    )?;
    let names: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names.iter().filter_map(|n| BlobId::parse(n)).collect())
}

fn totals(path: &Path) -> Result<(usize, usize), StoreError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |table: &str| -> Result<usize, StoreError> {
        let n: i64 =
            connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    };
    Ok((count("datastores")?, count("image_sets")?))
}

fn blob_path(dir: &Path, id: &BlobId) -> PathBuf {
    dir.join("blobs").join(&id.as_str()[..2]).join(id.as_str())
}

/// `to` holds the bytes of `from`: a hard link, or a copy across file systems.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if to.exists() {
        return Ok(());
    }
    fs::hard_link(from, to).or_else(|_| fs::copy(from, to).map(|_| ()))
}

impl Store {
    /// Writes a snapshot of the whole store to `dir`, which must not exist.
    pub fn snapshot(&self, dir: &Path) -> Result<SnapshotInfo, StoreError> {
        if dir.exists() {
            return Err(damaged(format!("{} exists already", dir.display())));
        }
        let name = dir
            .file_name()
            .ok_or_else(|| damaged("a snapshot needs a folder name"))?
            .to_string_lossy()
            .into_owned();
        let partial = dir.with_file_name(format!(".{name}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial)?;
        }
        fs::create_dir_all(partial.join("blobs"))?;
        let database = partial.join("store.sqlite");
        // Holding the writer: nothing commits until the blobs are copied too.
        // (The backup API rather than VACUUM INTO: it also copies a store
        // kept in memory, whose VFS cannot write a file.)
        let writer = self.writer_connection();
        {
            let mut copy = Connection::open(&database)?;
            let backup = rusqlite::backup::Backup::new(&writer, &mut copy)?;
            backup.run_to_completion(i32::MAX, std::time::Duration::from_millis(10), None)?;
        }
        let blobs = referenced_blobs(&database)?;
        for id in &blobs {
            let target = blob_path(&partial, id);
            match self.blobs.dir() {
                Some(store) => {
                    link_or_copy(&store.join(&id.as_str()[..2]).join(id.as_str()), &target)?
                }
                None => {
                    let bytes = self
                        .blobs
                        .get(id)?
                        .ok_or_else(|| damaged(format!("blob {} is missing", id.as_str())))?;
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    fs::write(&target, &bytes)?;
                }
            }
        }
        drop(writer);
        let (datastores, image_sets) = totals(&database)?;
        let manifest = json!({
            "format": FORMAT,
            "schema": schema::VERSION,
            "emulatorVersion": env!("CARGO_PKG_VERSION"),
            "datastores": datastores,
            "imageSets": image_sets,
            "blobs": blobs.len(),
        });
        fs::write(
            partial.join("snapshot.json"),
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )?;
        fs::File::open(&database)?.sync_all()?;
        fs::rename(&partial, dir)?;
        Ok(SnapshotInfo {
            path: dir.to_owned(),
            datastores,
            image_sets,
            blobs: blobs.len(),
        })
    }

    /// Replaces everything in the store with the snapshot in `dir`.
    pub fn restore(&self, dir: &Path) -> Result<SnapshotInfo, StoreError> {
        let manifest: Value = fs::read(dir.join("snapshot.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| damaged(format!("{} is not a snapshot", dir.display())))?;
        if manifest["format"] != FORMAT {
            return Err(damaged(format!("{} is not a snapshot", dir.display())));
        }
        // An older schema is brought up to date once restored (`schema::prepare`).
        if manifest["schema"]
            .as_i64()
            .is_none_or(|v| !(1..=schema::VERSION).contains(&v))
        {
            return Err(damaged(format!(
                "the snapshot {} has store schema {} (emulator {}); this emulator {} reads schemas 1 to {}",
                dir.display(),
                manifest["schema"],
                manifest["emulatorVersion"],
                env!("CARGO_PKG_VERSION"),
                schema::VERSION
            )));
        }
        let database = dir.join("store.sqlite");
        let blobs = referenced_blobs(&database)?;
        let mut writer = self.writer_connection();
        // Pinned until the database that refers to them is in place.
        let mut pins = Vec::with_capacity(blobs.len());
        for id in &blobs {
            let bytes = fs::read(blob_path(dir, id))?;
            if BlobId::of(&bytes) != *id {
                return Err(damaged(format!(
                    "the snapshot's blob {} does not hold what its name says",
                    id.as_str()
                )));
            }
            pins.push(self.blobs.put(&bytes)?);
        }
        self.blobs.sync()?;
        {
            let source = Connection::open_with_flags(&database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            let backup = rusqlite::backup::Backup::new(&source, &mut writer)?;
            backup.run_to_completion(i32::MAX, std::time::Duration::from_millis(10), None)?;
        }
        schema::prepare(&writer).map_err(StoreError::Damaged)?;
        drop(writer);
        drop(pins);
        self.collect_garbage()?;
        let (datastores, image_sets) = totals(&database)?;
        Ok(SnapshotInfo {
            path: dir.to_owned(),
            datastores,
            image_sets,
            blobs: blobs.len(),
        })
    }

    /// Deletes every blob that is neither referred to nor pinned.
    fn collect_garbage(&self) -> Result<usize, StoreError> {
        let ids = self.blobs.ids()?;
        self.release(ids)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::Timestamp;
    use crate::store::{Datastore, Location, LosslessStorageFormat};

    fn datastore(id: &str) -> Datastore {
        Datastore {
            id: id.to_owned(),
            name: "snap".into(),
            seq: 0,
            kms_key_arn: None,
            lambda_authorizer_arn: None,
            lossless_storage_format: LosslessStorageFormat::Htj2k,
            created_at: Timestamp::from_millis(1),
            delete_requested_at: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_snapshot_round_trips_between_memory_and_directory_stores() {
        let dir = tempfile::tempdir().unwrap();
        let source = Store::open(&Location::Memory).unwrap();
        let blob = source
            .write(|w| {
                w.insert_datastore(&datastore(&"a".repeat(32)))?;
                w.put_blob(b"kept")
            })
            .unwrap();
        let info = source.snapshot(&dir.path().join("one")).unwrap();
        assert_eq!(info.datastores, 1);
        assert!(dir.path().join("one").join("snapshot.json").exists());

        let target = Store::open(&Location::Dir(dir.path().join("data"))).unwrap();
        target
            .write(|w| w.insert_datastore(&datastore(&"b".repeat(32))))
            .unwrap();
        target.restore(&dir.path().join("one")).unwrap();
        let ids: Vec<String> = target
            .read(|r| r.datastores())
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, vec!["a".repeat(32)]);
        assert!(
            target.blobs().get(&blob).unwrap().is_none(),
            "a blob nothing refers to is not carried over"
        );
        drop(target);
        let reopened = Store::open(&Location::Dir(dir.path().join("data"))).unwrap();
        let mode: String = reopened
            .writer_connection()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "the restored store stays in WAL mode");
        assert_eq!(
            reopened.read(|r| r.totals()).unwrap(),
            (1, 0),
            "and kept its content"
        );
    }
}
