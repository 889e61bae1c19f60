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
//!   opening refuses any path with a link in it;
//! - only regular files are objects: a FIFO, socket or device under the
//!   root is listed as unreadable and never opened for reading (which
//!   could block the import worker or never end);
//! - an object larger than the configured cap is refused before it is read.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

    /// The path `uri` stands for, built from checked segments only.
    fn object_path(&self, uri: &S3Uri) -> std::io::Result<PathBuf> {
        let checked = S3Uri::parse(&uri.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut path = self.root.join(&checked.bucket);
        for part in checked.key.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
        }
        Ok(path)
    }

    /// Refuses `path` if any component below the root is a symbolic link.
    fn refuse_links(&self, path: &Path) -> std::io::Result<()> {
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| std::io::Error::other("the path leaves the S3 folder"))?;
        let mut at = self.root.clone();
        for component in relative.components() {
            at.push(component);
            match fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "the path goes through a symbolic link, which the S3 folder does not follow",
                    ));
                }
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Whether the bucket exists (a folder, not a link).
    pub fn bucket_exists(&self, bucket: &str) -> bool {
        S3Uri::parse(&format!("s3://{bucket}")).is_ok()
            && fs::symlink_metadata(self.root.join(bucket)).is_ok_and(|m| m.is_dir())
    }

    /// Every object under `prefix`, in key order.
    pub fn list(&self, prefix: &S3Uri) -> std::io::Result<Vec<Listed>> {
        let bucket = self.object_path(&S3Uri {
            bucket: prefix.bucket.clone(),
            key: String::new(),
        })?;
        // Only the folder the prefix's last `/` names can hold matches.
        let folder_key = prefix.key.rfind('/').map_or("", |i| &prefix.key[..=i]);
        let start = self.object_path(&S3Uri {
            bucket: prefix.bucket.clone(),
            key: folder_key.to_owned(),
        })?;
        self.refuse_links(&start)?;
        let mut objects = Vec::new();
        if fs::symlink_metadata(&start).is_ok_and(|m| m.is_dir()) {
            walk(&bucket, &start, &mut objects)?;
        }
        objects.retain(|object| object.key.starts_with(&prefix.key));
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Opens an object for reading: a regular file, reached without a
    /// link, no larger than the cap. Returns the file and its size.
    pub fn open(&self, uri: &S3Uri) -> std::io::Result<(fs::File, u64)> {
        let path = self.object_path(uri)?;
        self.refuse_links(&path)?;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)?;
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
        let path = self.object_path(uri)?;
        self.refuse_links(&path)?;
        fs::create_dir_all(&path)?;
        self.refuse_links(&path)
    }

    /// Writes an object, creating its folders; never through a link.
    pub fn write(&self, uri: &S3Uri, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.object_path(uri)?;
        self.refuse_links(&path)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
            self.refuse_links(parent)?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the object is not a regular file",
            ));
        }
        std::io::Write::write_all(&mut file, bytes)
    }
}

fn too_large(cap: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the object is larger than the emulator's limit of {cap} bytes"),
    )
}

fn walk(bucket: &Path, dir: &Path, objects: &mut Vec<Listed>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // file_type() does not follow links.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(bucket, &path, objects)?;
            continue;
        }
        let Ok(relative) = path.strip_prefix(bucket) else {
            continue;
        };
        let key: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let unreadable = if kind.is_symlink() {
            Some("The object is a symbolic link, which the emulator's S3 folder does not follow")
        } else if !kind.is_file() {
            Some("The object is not a regular file (a FIFO, socket or device)")
        } else {
            None
        };
        objects.push(Listed {
            key: key.join("/"),
            unreadable: unreadable.map(str::to_owned),
        });
    }
    Ok(())
}

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
        assert!(s3.read(&uri("s3://bk/in/link.dcm")).is_err());
        assert!(s3.read(&uri("s3://bk/in/linked-dir/secret.dcm")).is_err());
        assert!(s3.read(&uri("s3://bk/in/pipe.dcm")).is_err(), "no block");
        assert!(
            s3.write(&uri("s3://bk/in/linked-dir/out.json"), b"x")
                .is_err(),
            "nothing is written through a link"
        );
        assert!(!outside.path().join("out.json").exists());
    }
}
