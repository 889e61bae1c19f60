//! Blobs: encoded frames and gzipped metadata documents, named by content.
//!
//! A blob's name is the SHA-256 of its bytes, so identical frames and
//! documents are stored once and a name can never point at other bytes.
//! With a data directory each blob is a file `blobs/<2 hex>/<name>`, written
//! to a temporary name and renamed; without one they live in memory.
//!
//! Blobs are written *before* the transaction that refers to them commits,
//! and flushed with one `syncfs` per transaction rather than one `fsync` per
//! file. A blob nothing refers to any more is deleted after the transaction
//! that dropped the last reference commits. Between its write and its
//! commit a blob is *pinned*: a deletion (or the start-up sweep of files a
//! crash left behind) never removes a pinned blob, and a writer pins before
//! it writes, so a blob another writer is about to refer to is never lost.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use axum::body::Bytes;
use sha2::{Digest, Sha256};

/// The name of a blob: 64 lowercase hex characters of its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

impl BlobId {
    /// The name of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut name = String::with_capacity(64);
        for byte in digest {
            name.push_str(&format!("{byte:02x}"));
        }
        Self(name)
    }

    /// A name read back from the database or a file name; `None` unless it
    /// has the form of a name.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

type PinCounts = Arc<Mutex<HashMap<BlobId, usize>>>;

/// A blob written and not yet referred to by a committed transaction:
/// while this guard lives, nothing deletes it.
#[derive(Debug)]
pub struct Pinned {
    id: BlobId,
    pins: PinCounts,
}

impl Pinned {
    /// The blob's name.
    pub fn id(&self) -> &BlobId {
        &self.id
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let mut pins = lock(&self.pins);
        if let Some(count) = pins.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.id);
            }
        }
    }
}

#[derive(Debug)]
enum Place {
    Memory(RwLock<HashMap<BlobId, Bytes>>),
    Dir(PathBuf),
}

/// Where blobs are kept.
#[derive(Debug)]
pub struct Blobs {
    place: Place,
    pins: PinCounts,
    temporaries: AtomicU64,
}

impl Blobs {
    /// Blobs in memory.
    pub fn in_memory() -> Self {
        Self::new(Place::Memory(RwLock::default()))
    }

    /// Blobs under `dir` (created if needed, with its 256 folders).
    pub fn in_dir(dir: &Path) -> std::io::Result<Self> {
        make_folders(dir)?;
        Ok(Self::new(Place::Dir(dir.to_owned())))
    }

    fn new(place: Place) -> Self {
        Self {
            place,
            pins: PinCounts::default(),
            temporaries: AtomicU64::new(0),
        }
    }

    /// Stores `bytes` and pins them until the returned guard is dropped.
    /// On disk the file is complete when it appears under its name, but not
    /// yet flushed: call [`Blobs::sync`] before committing a reference.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<Pinned> {
        let id = BlobId::of(bytes);
        let pinned = self.pin(&id);
        match &self.place {
            Place::Memory(map) => {
                map.write()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(id)
                    .or_insert_with(|| Bytes::copy_from_slice(bytes));
            }
            Place::Dir(dir) => {
                // Always written, even when a file of that name exists: a
                // file a crash left behind may never have reached the disk.
                let path = file_of(dir, &id);
                let folder = path.parent().expect("a blob file has a folder");
                let n = self.temporaries.fetch_add(1, Ordering::Relaxed);
                let temporary = folder.join(format!("{}.{}.{n}.tmp", id.0, std::process::id()));
                // The folder is made the first time it is missing, not
                // looked up for every blob.
                let created = match fs::File::create(&temporary) {
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        fs::create_dir_all(folder).and_then(|()| fs::File::create(&temporary))
                    }
                    other => other,
                };
                let written = created
                    .and_then(|mut file| file.write_all(bytes))
                    .and_then(|()| fs::rename(&temporary, &path));
                if let Err(error) = written {
                    let _ = fs::remove_file(&temporary);
                    return Err(error);
                }
            }
        }
        Ok(pinned)
    }

    fn pin(&self, id: &BlobId) -> Pinned {
        *lock(&self.pins).entry(id.clone()).or_insert(0) += 1;
        Pinned {
            id: id.clone(),
            pins: self.pins.clone(),
        }
    }

    /// Flushes every blob written so far to disk, renames included: one
    /// `syncfs` for the file system holding them.
    pub fn sync(&self) -> std::io::Result<()> {
        let Place::Dir(dir) = &self.place else {
            return Ok(());
        };
        sync_file_system(dir)
    }

    /// The blob `id`.
    pub fn get(&self, id: &BlobId) -> std::io::Result<Option<Bytes>> {
        match &self.place {
            Place::Memory(map) => Ok(map
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .cloned()),
            Place::Dir(dir) => match fs::read(file_of(dir, id)) {
                Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            },
        }
    }

    /// Deletes each blob of `ids` that is neither pinned nor referred to.
    /// `referenced` must read the committed state afresh: it runs while the
    /// pins are held still, so no writer can start referring to a blob
    /// between the check and the deletion.
    pub fn release(
        &self,
        ids: impl IntoIterator<Item = BlobId>,
        referenced: impl Fn(&BlobId) -> bool,
    ) -> std::io::Result<usize> {
        let mut deleted = 0;
        for id in ids {
            let pins = lock(&self.pins);
            if pins.contains_key(&id) || referenced(&id) {
                continue;
            }
            self.remove(&id)?;
            drop(pins);
            deleted += 1;
        }
        Ok(deleted)
    }

    fn remove(&self, id: &BlobId) -> std::io::Result<()> {
        match &self.place {
            Place::Memory(map) => {
                map.write().unwrap_or_else(|e| e.into_inner()).remove(id);
                Ok(())
            }
            Place::Dir(dir) => match fs::remove_file(file_of(dir, id)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
        }
    }

    /// Deletes the files a crash left behind: temporary files, and blobs
    /// nothing refers to, among the files older than `before` (the start of
    /// this process, so that nothing this process is writing is touched).
    /// Returns how many files were removed.
    pub fn sweep(
        &self,
        before: SystemTime,
        referenced: impl Fn(&BlobId) -> bool,
    ) -> std::io::Result<usize> {
        let Place::Dir(dir) = &self.place else {
            return Ok(0);
        };
        let mut removed = 0;
        for folder in fs::read_dir(dir)? {
            let folder = folder?;
            if !folder.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(folder.path())? {
                let entry = entry?;
                let modified = entry.metadata()?.modified()?;
                if modified >= before {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tmp") {
                    fs::remove_file(entry.path())?;
                    removed += 1;
                    continue;
                }
                let Some(id) = BlobId::parse(&name) else {
                    continue;
                };
                removed += self.release([id], &referenced)?;
            }
        }
        Ok(removed)
    }

    /// Removes every blob.
    pub fn clear(&self) -> std::io::Result<()> {
        match &self.place {
            Place::Memory(map) => {
                map.write().unwrap_or_else(|e| e.into_inner()).clear();
                Ok(())
            }
            Place::Dir(dir) => {
                if dir.exists() {
                    fs::remove_dir_all(dir)?;
                }
                make_folders(dir)
            }
        }
    }

    /// The folder of the blob files, when they are files.
    pub fn dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Dir(dir) => Some(dir),
            Place::Memory(_) => None,
        }
    }

    /// Every blob name held, for snapshots and consistency checks.
    pub fn ids(&self) -> std::io::Result<Vec<BlobId>> {
        match &self.place {
            Place::Memory(map) => Ok(map
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect()),
            Place::Dir(dir) => {
                let mut ids = Vec::new();
                for folder in fs::read_dir(dir)? {
                    let folder = folder?;
                    if folder.file_type()?.is_dir() {
                        for entry in fs::read_dir(folder.path())? {
                            if let Some(id) = BlobId::parse(&entry?.file_name().to_string_lossy()) {
                                ids.push(id);
                            }
                        }
                    }
                }
                Ok(ids)
            }
        }
    }
}

/// Makes `dir` and the folder of every first byte of a name, `00` to `ff`,
/// where missing: made once with the store rather than by the import that
/// first needs them (in `perf`, about a fifth of what writing the demo set's
/// blob files into a new store cost). A folder removed later is made again
/// by the write that misses it.
fn make_folders(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for byte in 0..=u8::MAX {
        match fs::create_dir(dir.join(format!("{byte:02x}"))) {
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

fn file_of(dir: &Path, id: &BlobId) -> PathBuf {
    dir.join(&id.0[..2]).join(&id.0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(target_os = "linux")]
fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = fs::File::open(dir)?;
    // SAFETY: syncfs takes an open descriptor, which `handle` owns for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    // Without syncfs: every blob file and folder, one by one.
    for folder in fs::read_dir(dir)? {
        let folder = folder?;
        if folder.file_type()?.is_dir() {
            for entry in fs::read_dir(folder.path())? {
                fs::File::open(entry?.path())?.sync_all()?;
            }
            fs::File::open(folder.path())?.sync_all()?;
        }
    }
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(blobs: &Blobs) {
        let a = blobs.put(b"abc").unwrap();
        assert_eq!(a.id(), &BlobId::of(b"abc"));
        blobs.sync().unwrap();
        assert_eq!(blobs.get(a.id()).unwrap().unwrap().as_ref(), b"abc");
        let again = blobs.put(b"abc").unwrap();
        assert_eq!(again.id(), a.id(), "the same bytes, the same name");
        let id = a.id().clone();
        assert_eq!(blobs.release([id.clone()], |_| false).unwrap(), 0, "pinned");
        drop((a, again));
        assert_eq!(
            blobs.release([id.clone()], |_| true).unwrap(),
            0,
            "referenced"
        );
        assert_eq!(blobs.release([id.clone()], |_| false).unwrap(), 1);
        assert_eq!(blobs.get(&id).unwrap(), None);
    }

    #[test]
    fn memory_and_directory_blobs_behave_alike() {
        round_trip(&Blobs::in_memory());
        let dir = tempfile::tempdir().unwrap();
        round_trip(&Blobs::in_dir(dir.path()).unwrap());
    }

    #[test]
    fn a_new_store_has_every_folder_and_a_missing_one_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::in_dir(dir.path()).unwrap();
        let folders = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
            .count();
        assert_eq!(folders, 256);
        // Opening an existing store keeps what it holds.
        let kept = blobs.put(b"kept").unwrap();
        blobs.sync().unwrap();
        let reopened = Blobs::in_dir(dir.path()).unwrap();
        assert_eq!(reopened.get(kept.id()).unwrap().unwrap().as_ref(), b"kept");
        // A folder removed behind the store's back is made by the next write.
        let id = BlobId::of(b"again");
        fs::remove_dir_all(dir.path().join(&id.as_str()[..2])).unwrap();
        let again = reopened.put(b"again").unwrap();
        assert_eq!(
            reopened.get(again.id()).unwrap().unwrap().as_ref(),
            b"again"
        );
        // Clearing leaves every folder, empty.
        reopened.clear().unwrap();
        assert_eq!(reopened.ids().unwrap(), Vec::new());
        assert!(dir.path().join("ff").is_dir() && dir.path().join("00").is_dir());
    }

    #[test]
    fn the_sweep_removes_old_unreferenced_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::in_dir(dir.path()).unwrap();
        let kept = blobs.put(b"kept").unwrap().id().clone();
        let orphan = blobs.put(b"orphan").unwrap().id().clone();
        let pinned = blobs.put(b"pinned").unwrap();
        let stray = dir.path().join("ab").join("x.tmp");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, b"half").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let removed = blobs.sweep(later, |id| *id == kept).unwrap();
        assert_eq!(removed, 2, "the orphan and the temporary file");
        assert!(blobs.get(&kept).unwrap().is_some());
        assert!(blobs.get(&orphan).unwrap().is_none());
        assert!(
            blobs.get(pinned.id()).unwrap().is_some(),
            "pinned blobs stay"
        );
        assert!(!stray.exists());
        let earlier = SystemTime::UNIX_EPOCH;
        blobs.put(b"young").unwrap();
        assert_eq!(
            blobs.sweep(earlier, |_| false).unwrap(),
            0,
            "files newer than the cut-off are this process's own"
        );
    }

    #[test]
    fn names_are_sha256_and_parse_back() {
        let id = BlobId::of(b"");
        assert_eq!(
            id.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(BlobId::parse(id.as_str()), Some(id));
        assert_eq!(BlobId::parse("E3B0"), None);
        assert_eq!(BlobId::parse(&"G".repeat(64)), None);
    }
}
