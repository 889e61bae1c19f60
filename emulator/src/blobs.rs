//! Blobs: encoded frames and gzipped metadata documents, by key.
//!
//! With a data directory each blob is a file (`frames/<id>`,
//! `metadata/<image set>-<version>.json.gz`), written to a temporary name,
//! synced and renamed, so a reader never sees half a blob. Without one they
//! live in memory. Blobs are immutable once written: a new version writes a
//! new document, and frames are shared by every version that lists them.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Bytes;

/// Where blobs are kept.
#[derive(Debug)]
pub enum Blobs {
    /// In memory, for a run without a data directory.
    Memory(Mutex<HashMap<String, Bytes>>),
    /// Files under a directory.
    Dir(PathBuf),
}

/// The kinds of blob, each in its own folder.
pub const FOLDERS: [&str; 2] = ["frames", "metadata"];

/// The key of a stored frame.
pub fn frame_key(frame_id: &str) -> String {
    format!("frames/{frame_id}")
}

/// The key of a version's metadata document.
pub fn metadata_key(image_set_id: &str, version: u32) -> String {
    format!("metadata/{image_set_id}-{version}.json.gz")
}

impl Blobs {
    /// Blobs in memory.
    pub fn in_memory() -> Self {
        Blobs::Memory(Mutex::default())
    }

    /// Blobs under `dir`, which is created if needed.
    pub fn in_dir(dir: &Path) -> std::io::Result<Self> {
        for folder in FOLDERS {
            fs::create_dir_all(dir.join(folder))?;
        }
        Ok(Blobs::Dir(dir.to_owned()))
    }

    /// Stores `bytes` under `key`, durably before it returns.
    pub fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Blobs::Memory(map) => {
                lock(map).insert(key.to_owned(), Bytes::copy_from_slice(bytes));
                Ok(())
            }
            Blobs::Dir(dir) => {
                let path = dir.join(key);
                let partial = path.with_extension("partial");
                let mut file = fs::File::create(&partial)?;
                file.write_all(bytes)?;
                file.sync_data()?;
                fs::rename(&partial, &path)
            }
        }
    }

    /// Makes every `put` so far survive a power loss: the renames too.
    pub fn sync(&self) -> std::io::Result<()> {
        if let Blobs::Dir(dir) = self {
            for folder in FOLDERS {
                fs::File::open(dir.join(folder))?.sync_all()?;
            }
        }
        Ok(())
    }

    /// The blob under `key`.
    pub fn get(&self, key: &str) -> std::io::Result<Option<Bytes>> {
        match self {
            Blobs::Memory(map) => Ok(lock(map).get(key).cloned()),
            Blobs::Dir(dir) => match fs::read(dir.join(key)) {
                Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            },
        }
    }

    /// Removes every blob.
    pub fn clear(&self) -> std::io::Result<()> {
        match self {
            Blobs::Memory(map) => {
                lock(map).clear();
                Ok(())
            }
            Blobs::Dir(dir) => {
                for folder in FOLDERS {
                    let path = dir.join(folder);
                    if path.exists() {
                        fs::remove_dir_all(&path)?;
                    }
                    fs::create_dir_all(&path)?;
                }
                Ok(())
            }
        }
    }
}

fn lock(map: &Mutex<HashMap<String, Bytes>>) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(blobs: &Blobs) {
        assert_eq!(blobs.get("frames/a").unwrap(), None);
        blobs.put("frames/a", b"abc").unwrap();
        blobs.put("metadata/x-1.json.gz", b"doc").unwrap();
        blobs.sync().unwrap();
        assert_eq!(blobs.get("frames/a").unwrap().unwrap().as_ref(), b"abc");
        blobs.clear().unwrap();
        assert_eq!(blobs.get("frames/a").unwrap(), None);
    }

    #[test]
    fn memory_and_directory_blobs_behave_alike() {
        round_trip(&Blobs::in_memory());
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::in_dir(dir.path()).unwrap();
        round_trip(&blobs);
        blobs.put("frames/b", b"kept").unwrap();
        let reopened = Blobs::in_dir(dir.path()).unwrap();
        assert_eq!(reopened.get("frames/b").unwrap().unwrap().as_ref(), b"kept");
    }
}
