//! The emulator's state: datastores, image sets and their versions, frames,
//! import jobs, idempotency tokens, and the search index, in SQLite.
//!
//! Operations see verbs, not SQL: [`Store::read`] hands them a [`Reader`]
//! over one consistent snapshot, [`Store::write`] a [`Writer`] inside one
//! transaction that commits when the closure succeeds and rolls back when it
//! fails, so an operation is applied whole or not at all, and an error of
//! the disk (full, failing) answers `InternalServerException` with nothing
//! changed.
//!
//! - With a data directory the database is `store.sqlite` in WAL mode:
//!   readers never wait for the writer or each other, and a transaction is
//!   on disk when it commits (`synchronous = FULL`). Frames and metadata
//!   documents are files ([`blobs`]) written before the transaction that
//!   refers to them. A process holds the directory's lock file for as long
//!   as it runs, so two emulators never share one.
//! - Without one, the same database lives in memory (SQLite's `memdb`) and
//!   blobs in a map.
//!
//! Start-up time does not depend on history: nothing is replayed.
//! Erasure ([`Writer::erase`]) removes a deleted image set's attributes and
//! versions' documents from the database (`secure_delete` overwrites them),
//! deletes the blobs nothing else refers to, and truncates the write-ahead
//! log so no copy of the old pages remains.

pub mod blobs;
mod datastore;
mod image_set;
mod job;
mod legacy;
mod reader;
mod schema;
mod search;
mod snapshot;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use crate::error::{ApiError, ErrorCode};

pub use blobs::{BlobId, Blobs, Pinned};
pub use datastore::{Datastore, DatastoreStatus, LosslessStorageFormat};
pub use image_set::{
    DicomTags, ImageSet, ImageSetState, ImageSetVersion, Lock, WorkflowStatus,
    normalized_date_time, wire_name,
};
pub use job::{ImportJob, JobStatus};
pub use reader::{ClientTokenUse, FrameEntry, Reader, TokenKind};
pub use search::{Attribute, Condition, Cursor, Query, SortField, SortKey};
pub use snapshot::SnapshotInfo;
pub use writer::Writer;

/// Where a store keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In memory, gone when the emulator stops.
    Memory,
    /// Under a data directory, across restarts.
    Dir(PathBuf),
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("the database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("a file of the store could not be used: {0}")]
    Io(#[from] std::io::Error),
    /// The store holds something this emulator cannot read.
    #[error("{0}")]
    Damaged(String),
    /// Another process uses the data directory.
    #[error(
        "the data directory {0} is in use by another emulator; stop it first, or give this one another --data-dir"
    )]
    InUse(PathBuf),
}

impl StoreError {
    /// Whether the disk is full.
    fn is_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io(error) => error.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store operation failed");
        let message = if error.is_full() {
            "The service's storage is full; nothing was written"
        } else {
            "The service could not store the request; nothing was written"
        };
        ApiError::new(ErrorCode::InternalServer, message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// The store of one emulator.
#[derive(Debug)]
pub struct Store {
    database: Database,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    blobs: Blobs,
    /// An erasure's pages may still sit in the write-ahead log.
    scrub: AtomicBool,
    _lock: Option<File>,
}

/// How connections to the database are opened.
#[derive(Debug)]
enum Database {
    Memory(String),
    File(PathBuf),
}

/// Idle read connections kept for reuse.
const IDLE_READERS: usize = 32;

impl Store {
    /// Opens the store at `location`, creating it if needed. A data
    /// directory written by an emulator that kept a journal is converted
    /// once ([`legacy`]).
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        static MEMORY_STORES: AtomicU64 = AtomicU64::new(0);
        let (database, blobs, lock) = match location {
            Location::Memory => {
                let n = MEMORY_STORES.fetch_add(1, Ordering::Relaxed);
                let uri = format!(
                    "file:/healthimaging-emulator-{}-{n}?vfs=memdb",
                    std::process::id()
                );
                (Database::Memory(uri), Blobs::in_memory(), None)
            }
            Location::Dir(dir) => {
                std::fs::create_dir_all(dir)?;
                let lock = lock_dir(dir)?;
                (
                    Database::File(dir.join("store.sqlite")),
                    Blobs::in_dir(&dir.join("blobs"))?,
                    Some(lock),
                )
            }
        };
        let writer = database.connect(false)?;
        if matches!(database, Database::Memory(_)) {
            lift_memory_limit(&writer);
        }
        schema::prepare(&writer).map_err(StoreError::Damaged)?;
        let store = Self {
            database,
            writer: Mutex::new(writer),
            readers: Mutex::default(),
            blobs,
            scrub: AtomicBool::new(false),
            _lock: lock,
        };
        if let Location::Dir(dir) = location {
            legacy::convert_if_present(&store, dir)?;
        }
        Ok(store)
    }

    /// The blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Runs `read` over one consistent snapshot of the store.
    pub fn read<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Reader<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let connection = self.reader().map_err(E::from)?;
        let outcome = (|| {
            connection
                .execute_batch("BEGIN")
                .map_err(|e| E::from(e.into()))?;
            let outcome = read(&Reader::new(&connection));
            // A read-only transaction: ending it cannot lose anything.
            let _ = connection.execute_batch("COMMIT");
            outcome
        })();
        self.give_back(connection);
        outcome
    }

    /// Runs `write` in one transaction: everything it changed is committed
    /// (and on disk) when it returns `Ok`, nothing when it returns `Err` or
    /// the commit fails. Writers run one at a time; readers never wait.
    pub fn write<T, E: From<StoreError>>(
        &self,
        write: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let connection = self.writer_connection();
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| E::from(e.into()))?;
        let mut writer = Writer::new(&connection, &self.blobs);
        let outcome = write(&mut writer).and_then(|value| {
            writer.finish().map_err(E::from)?;
            connection
                .execute_batch("COMMIT")
                .map_err(|e| E::from(e.into()))?;
            Ok(value)
        });
        if outcome.is_err() {
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            return outcome;
        }
        let (released, erased) = writer.into_released();
        if !released.is_empty() {
            // Committed: the blobs nothing refers to any more can go. A
            // failure here leaves files the next start's sweep removes.
            if let Err(error) = self.release(released) {
                tracing::warn!(%error, "could not delete unreferenced blobs");
            }
        }
        if erased || self.scrub.load(Ordering::Relaxed) {
            self.scrub_erased(&connection);
        }
        outcome
    }

    /// Deletes the blobs of `ids` that nothing refers to.
    fn release(&self, ids: Vec<BlobId>) -> Result<usize, StoreError> {
        let connection = self.reader()?;
        let outcome = self.blobs.release(ids, |id| {
            Reader::new(&connection).blob_referenced(id).unwrap_or(true)
        });
        self.give_back(connection);
        Ok(outcome?)
    }

    /// Frees the pages an erasure emptied and truncates the write-ahead
    /// log, which may still hold copies of them. Retried after later writes
    /// while a reader keeps the log from being truncated.
    fn scrub_erased(&self, connection: &Connection) {
        let scrubbed = (|| -> rusqlite::Result<bool> {
            connection.execute_batch("PRAGMA incremental_vacuum")?;
            if matches!(self.database, Database::Memory(_)) {
                return Ok(true);
            }
            let busy: i64 =
                connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            Ok(busy == 0)
        })();
        let done = matches!(scrubbed, Ok(true));
        self.scrub.store(!done, Ordering::Relaxed);
        if let Err(error) = scrubbed {
            tracing::warn!(%error, "could not truncate the write-ahead log after an erasure");
        }
    }

    /// Deletes the blob files a crash left behind (see [`Blobs::sweep`]).
    pub fn sweep(&self, before: std::time::SystemTime) -> Result<usize, StoreError> {
        let connection = self.reader()?;
        let removed = self.blobs.sweep(before, |id| {
            Reader::new(&connection).blob_referenced(id).unwrap_or(true)
        });
        self.give_back(connection);
        Ok(removed?)
    }

    /// Forgets everything: every row and every blob.
    pub fn clear(&self) -> Result<(), StoreError> {
        let connection = self.writer_connection();
        connection.execute_batch(
            "BEGIN IMMEDIATE;
             DELETE FROM meta; DELETE FROM datastores; DELETE FROM client_tokens;
             DELETE FROM jobs; DELETE FROM job_outcomes; DELETE FROM image_sets;
             DELETE FROM versions; DELETE FROM frames;
             COMMIT;",
        )?;
        // Still holding the writer: no transaction can refer to a blob
        // while they are removed.
        self.blobs.clear()?;
        self.scrub_erased(&connection);
        Ok(())
    }

    fn writer_connection(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.database.connect(true),
        }
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
    }

    /// The database file, when there is one.
    pub fn database_path(&self) -> Option<&Path> {
        match &self.database {
            Database::File(path) => Some(path),
            Database::Memory(_) => None,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.scrub.load(Ordering::Relaxed) {
            let connection = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
            let _ = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }
}

impl Database {
    fn connect(&self, read_only: bool) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let (connection, durable) = match self {
            Database::Memory(uri) => (Connection::open_with_flags(uri, flags)?, false),
            Database::File(path) => (Connection::open_with_flags(path, flags)?, true),
        };
        schema::configure(&connection, durable)?;
        connection.set_prepared_statement_cache_capacity(128);
        if read_only {
            connection.pragma_update(None, "query_only", "ON")?;
        }
        Ok(connection)
    }
}

/// SQLite keeps an in-memory database under 1 GiB unless told otherwise.
/// Lifted here; the database still grows as one allocation, which SQLite
/// caps near 2 GiB (a few hundred thousand image sets with their indexes):
/// larger stores want a data directory.
fn lift_memory_limit(connection: &Connection) {
    let mut limit: i64 = 1 << 40;
    // SAFETY: the handle is this open connection's; the size-limit control
    // of the memdb VFS reads and writes one sqlite3_int64.
    let code = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_SIZE_LIMIT,
            (&mut limit as *mut i64).cast(),
        )
    };
    if code != rusqlite::ffi::SQLITE_OK {
        tracing::warn!(code, "could not lift the in-memory store's size limit");
    }
}

/// Takes the data directory's lock for the life of the process.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    // SAFETY: flock on a descriptor `file` owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(StoreError::InUse(dir.to_owned()));
    }
    Ok(file)
}
