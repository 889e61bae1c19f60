//! The emulator's S3: a folder. `s3://bucket/key` is `<root>/bucket/key`.
//!
//! Listing follows S3: every object whose key starts with the prefix (a
//! plain string prefix, not a folder), in key order. Keys use `/` whatever
//! the platform.
//!
//! Nothing outside the root is ever read or written:
//! - a key with an empty, `.` or `..` segment is not a key
//!   ([`S3Uri::parse`] refuses it, and StartDICOMImportJob answers a
//!   ValidationException naming the member);
//! - no symbolic link is followed, inside the root or on the way to it from
//!   the bucket: listing reports it as an object that cannot be read, and
//!   opening refuses any path with a link in it. Every folder is entered
//!   relative to the one above, held open, without following a link
//!   ([`crate::confined`]), and every file opened inside a held folder: a
//!   folder swapped for a link while a job runs is not followed either;
//! - only regular files are objects: a FIFO, socket or device under the
//!   root is listed as unreadable and never opened for reading (which
//!   could block the import worker or never end);
//! - an object larger than the configured cap is refused before it is read.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::confined::{Folder, Kind, is_link_refusal};

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket.
    pub bucket: String,
    /// The key or key prefix; may be empty.
    pub key: String,
}

/// Why a location cannot stand for an object or prefix of the S3 folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not of the form `s3://bucket[/key]`.
    #[error("it is not an S3 URI of the form s3://bucket/key")]
    NotS3,
    /// The key has a segment that names no object.
    #[error("its key has an empty, '.' or '..' segment")]
    Segment,
}

impl S3Uri {
    /// Parses `s3://bucket[/key]`. A key may end in `/` (a prefix) but has
    /// no other empty segment, and no `.` or `..` segment.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri.strip_prefix("s3://").ok_or(UriError::NotS3)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_valid = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.as_bytes()[0].is_ascii_alphanumeric();
        if !bucket_valid {
            return Err(UriError::NotS3);
        }
        let body = key.strip_suffix('/').unwrap_or(key);
        if !key.is_empty()
            && body
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(UriError::Segment);
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// This location with `suffix` appended to the key.
    pub fn join(&self, suffix: &str) -> Self {
        Self {
            bucket: self.bucket.clone(),
            key: format!("{}{suffix}", self.key),
        }
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Why it cannot be read, when it is not a regular file.
    pub unreadable: Option<String>,
}

/// The S3 folder.
#[derive(Debug, Clone)]
pub struct S3Root {
    root: PathBuf,
    max_object_bytes: u64,
}

impl S3Root {
    /// S3 kept under `root`; objects larger than `max_object_bytes` are refused.
    pub fn new(root: impl Into<PathBuf>, max_object_bytes: u64) -> Self {
        Self {
            root: root.into(),
            max_object_bytes,
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The largest object read.
    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    /// The bucket and key segments `uri` stands for, checked.
    fn segments(uri: &S3Uri) -> std::io::Result<Vec<String>> {
        let checked = S3Uri::parse(&uri.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(std::iter::once(checked.bucket.clone())
            .chain(
                checked
                    .key
                    .split('/')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            )
            .collect())
    }

    /// The folder `segments` lead to from the root, entered one at a time
    /// without following a link (made when `create` is set).
    fn folder(&self, segments: &[String], create: bool) -> std::io::Result<Folder> {
        let mut folder = if create {
            Folder::root(&self.root)?
        } else {
            Folder::existing(&self.root)?
        };
        for segment in segments {
            folder = folder.enter(OsStr::new(segment), create).map_err(said)?;
        }
        Ok(folder)
    }

    /// The bucket and key segments of the object `uri`: a key is needed.
    fn object_segments(uri: &S3Uri) -> std::io::Result<Vec<String>> {
        let segments = Self::segments(uri)?;
        if segments.len() < 2 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an object needs a key",
            ));
        }
        Ok(segments)
    }

    /// The folder holding the object `uri`, and the object's name.
    fn parent(&self, uri: &S3Uri, create: bool) -> std::io::Result<(Folder, String)> {
        let mut segments = Self::object_segments(uri)?;
        let name = segments.pop().expect("two segments or more");
        Ok((self.folder(&segments, create)?, name))
    }

    /// Whether the bucket exists (a folder, not a link).
    pub fn bucket_exists(&self, bucket: &str) -> bool {
        S3Uri::parse(&format!("s3://{bucket}")).is_ok()
            && self.folder(&[bucket.to_owned()], false).is_ok()
    }

    /// Every object under `prefix`, in key order.
    pub fn list(&self, prefix: &S3Uri) -> std::io::Result<Vec<Listed>> {
        // Only the folder the prefix's last `/` names can hold matches.
        let folder_key = prefix.key.rfind('/').map_or("", |i| &prefix.key[..=i]);
        let segments = Self::segments(&S3Uri {
            bucket: prefix.bucket.clone(),
            key: folder_key.to_owned(),
        })?;
        let start = match self.folder(&segments, false) {
            Ok(folder) => folder,
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::NotFound)
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut objects = Vec::new();
        walk(&start, folder_key, &mut objects)?;
        objects.retain(|object| object.key.starts_with(&prefix.key));
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Opens an object for reading: a regular file, reached without a
    /// link, no larger than the cap. Returns the file and its size.
    pub fn open(&self, uri: &S3Uri) -> std::io::Result<(fs::File, u64)> {
        let segments = Self::object_segments(uri)?;
        let names: Vec<&OsStr> = segments.iter().map(OsStr::new).collect();
        let file = Folder::existing(&self.root)?
            .open_beneath(&names)
            .map_err(said)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the object is not a regular file",
            ));
        }
        if meta.len() > self.max_object_bytes {
            return Err(too_large(self.max_object_bytes));
        }
        Ok((file, meta.len()))
    }

    /// Reads an object (see [`S3Root::open`]).
    pub fn read(&self, uri: &S3Uri) -> std::io::Result<Vec<u8>> {
        let (file, size) = self.open(uri)?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // Bounded even if the file grows while it is read.
        file.take(self.max_object_bytes + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > self.max_object_bytes {
            return Err(too_large(self.max_object_bytes));
        }
        Ok(bytes)
    }

    /// Creates the folder of the prefix `uri`, refusing one reached through
    /// a link: what a job checks before it writes its outputs there.
    pub fn prepare_folder(&self, uri: &S3Uri) -> std::io::Result<()> {
        self.folder(&Self::segments(uri)?, true).map(drop)
    }

    /// Writes an object, creating its folders; never through a link.
    pub fn write(&self, uri: &S3Uri, bytes: &[u8]) -> std::io::Result<()> {
        let (folder, name) = self.parent(uri, true)?;
        folder.write_file(OsStr::new(&name), bytes).map_err(said)
    }
}

/// A refused link, said as the S3 folder's rule.
fn said(error: std::io::Error) -> std::io::Error {
    if is_link_refusal(&error) {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the path goes through a symbolic link, which the S3 folder does not follow",
        )
    } else {
        error
    }
}

fn too_large(cap: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the object is larger than the emulator's limit of {cap} bytes"),
    )
}

/// Lists the held folder `folder`, whose key is `key` (empty or ending in
/// `/`), and every folder below it, each entered without following a link.
fn walk(folder: &Folder, key: &str, objects: &mut Vec<Listed>) -> std::io::Result<()> {
    for (entry, kind) in folder.entries()? {
        let name = entry.to_string_lossy().into_owned();
        let unreadable = match kind {
            Kind::Folder => match folder.enter(&entry, false) {
                Ok(below) => {
                    walk(&below, &format!("{key}{name}/"), objects)?;
                    continue;
                }
                // Gone since it was listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Swapped for a link (or a file) since it was listed.
                Err(e) if is_link_refusal(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => {
                    Some(LINK)
                }
                Err(e) => return Err(e),
            },
            Kind::File => None,
            Kind::Link => Some(LINK),
            Kind::Other => Some("The object is not a regular file (a FIFO, socket or device)"),
        };
        objects.push(Listed {
            key: format!("{key}{name}"),
            unreadable: unreadable.map(str::to_owned),
        });
    }
    Ok(())
}

const LINK: &str = "The object is a symbolic link, which the emulator's S3 folder does not follow";

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> S3Uri {
        S3Uri::parse(text).unwrap()
    }

    #[test]
    fn uris_parse_and_join() {
        let parsed = uri("s3://bucket/in/");
        assert_eq!(parsed.key, "in/");
        assert_eq!(
            parsed.join("x/y.json").to_string(),
            "s3://bucket/in/x/y.json"
        );
        assert_eq!(uri("s3://bucket").key, "");
        assert_eq!(S3Uri::parse("http://bucket/x"), Err(UriError::NotS3));
        assert_eq!(S3Uri::parse("s3:///x"), Err(UriError::NotS3));
        for bad in [
            "s3://bucket/../outside/",
            "s3://bucket/in/../../etc/",
            "s3://bucket/./in/",
            "s3://bucket/in//x",
            "s3://bucket//",
            "s3://bucket/..",
        ] {
            assert_eq!(S3Uri::parse(bad), Err(UriError::Segment), "{bad}");
        }
        assert_eq!(S3Uri::parse("s3://../x"), Err(UriError::NotS3));
    }

    #[test]
    fn listing_is_a_string_prefix_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Root::new(dir.path(), 1 << 20);
        for key in ["in/b/2.dcm", "in/a/1.dcm", "in-other/3.dcm", "out/4.dcm"] {
            s3.write(&uri(&format!("s3://bk/{key}")), b"x").unwrap();
        }
        let keys = |prefix: &str| -> Vec<String> {
            s3.list(&uri(prefix))
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect()
        };
        assert_eq!(keys("s3://bk/in/"), ["in/a/1.dcm", "in/b/2.dcm"]);
        assert_eq!(
            keys("s3://bk/in"),
            ["in-other/3.dcm", "in/a/1.dcm", "in/b/2.dcm"]
        );
        assert!(keys("s3://none/").is_empty());
        assert!(s3.bucket_exists("bk") && !s3.bucket_exists("none"));
        std::os::unix::fs::symlink(dir.path().join("bk"), dir.path().join("linked")).unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert!(!s3.bucket_exists("linked"), "a link is no bucket");
        assert!(!s3.bucket_exists("file"), "a file is no bucket");
        assert!(!s3.bucket_exists(".."), "not a bucket name");
    }

    /// A folder whose name is not UTF-8 is still listed into (its key
    /// spelled with replacement characters), not silently left out.
    #[test]
    fn a_folder_named_in_bytes_that_are_not_utf8_is_listed() {
        use std::os::unix::ffi::OsStrExt;

        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Root::new(dir.path(), 1 << 20);
        let folder = dir.path().join("bk/in").join(OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("a.dcm"), b"x").unwrap();
        let listed = s3.list(&uri("s3://bk/in/")).unwrap();
        assert_eq!(
            listed,
            vec![Listed {
                key: "in/caf\u{FFFD}/a.dcm".into(),
                unreadable: None
            }]
        );
    }

    #[test]
    fn links_fifos_and_large_files_are_never_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.dcm"), b"outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Root::new(dir.path(), 8);
        s3.write(&uri("s3://bk/in/ok.dcm"), b"12345678").unwrap();
        s3.write(&uri("s3://bk/in/big.dcm"), b"123456789").unwrap();
        let folder = dir.path().join("bk").join("in");
        std::os::unix::fs::symlink(outside.path().join("secret.dcm"), folder.join("link.dcm"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), folder.join("linked-dir")).unwrap();
        let fifo = std::ffi::CString::new(folder.join("pipe.dcm").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let listed = s3.list(&uri("s3://bk/in/")).unwrap();
        let keys: Vec<(&str, bool)> = listed
            .iter()
            .map(|o| (o.key.as_str(), o.unreadable.is_some()))
            .collect();
        assert_eq!(
            keys,
            [
                ("in/big.dcm", false),
                ("in/link.dcm", true),
                ("in/linked-dir", true),
                ("in/ok.dcm", false),
                ("in/pipe.dcm", true),
            ],
            "links are not followed into the outside folder"
        );
        assert_eq!(s3.read(&uri("s3://bk/in/ok.dcm")).unwrap(), b"12345678");
        let error = s3.read(&uri("s3://bk/in/big.dcm")).unwrap_err();
        assert!(error.to_string().contains("limit of 8 bytes"), "{error}");
        for through_a_link in ["s3://bk/in/link.dcm", "s3://bk/in/linked-dir/secret.dcm"] {
            let error = s3.read(&uri(through_a_link)).unwrap_err();
            assert!(
                error.to_string().contains("S3 folder does not follow"),
                "{through_a_link}: {error}"
            );
        }
        let error = s3.list(&uri("s3://bk/in/linked-dir/")).unwrap_err();
        assert!(error.to_string().contains("does not follow"), "{error}");
        let error = s3
            .prepare_folder(&uri("s3://bk/in/linked-dir/out/"))
            .unwrap_err();
        assert!(error.to_string().contains("does not follow"), "{error}");
        assert_eq!(
            s3.list(&uri("s3://bk/in/ok.dcm/")).unwrap(),
            Vec::new(),
            "a file where a folder is expected holds nothing"
        );
        assert!(s3.read(&uri("s3://bk/in/pipe.dcm")).is_err(), "no block");
        assert!(
            s3.write(&uri("s3://bk/in/linked-dir/out.json"), b"x")
                .is_err(),
            "nothing is written through a link"
        );
        assert!(!outside.path().join("out.json").exists());
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            1,
            "nothing made in the outside folder"
        );
    }
}
