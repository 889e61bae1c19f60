//! The emulator's S3: a folder. `s3://bucket/key` is `<root>/bucket/key`.
//!
//! Listing follows S3: every object whose key starts with the prefix (a
//! plain string prefix, not a folder), in key order. Keys use `/` whatever
//! the platform.

use std::fs;
use std::path::{Path, PathBuf};

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket.
    pub bucket: String,
    /// The key or key prefix; may be empty.
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://bucket[/key]`.
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| Self {
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

/// The S3 folder.
#[derive(Debug, Clone)]
pub struct S3Root {
    root: PathBuf,
}

impl S3Root {
    /// S3 kept under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The file of an object.
    pub fn object_path(&self, uri: &S3Uri) -> PathBuf {
        let mut path = self.root.join(&uri.bucket);
        for part in uri.key.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
        }
        path
    }

    /// Whether the bucket exists.
    pub fn bucket_exists(&self, bucket: &str) -> bool {
        self.root.join(bucket).is_dir()
    }

    /// The keys of every object under `prefix`, in key order.
    pub fn list(&self, prefix: &S3Uri) -> std::io::Result<Vec<String>> {
        let bucket = self.root.join(&prefix.bucket);
        // Only the folder the prefix's last `/` names can hold matches.
        let folder_key = prefix.key.rfind('/').map_or("", |i| &prefix.key[..=i]);
        let start = self.object_path(&S3Uri {
            bucket: prefix.bucket.clone(),
            key: folder_key.to_owned(),
        });
        let mut keys = Vec::new();
        if start.is_dir() {
            walk(&bucket, &start, &mut keys)?;
        }
        keys.retain(|key| key.starts_with(&prefix.key));
        keys.sort();
        Ok(keys)
    }

    /// Reads an object.
    pub fn read(&self, uri: &S3Uri) -> std::io::Result<Vec<u8>> {
        fs::read(self.object_path(uri))
    }

    /// Writes an object, creating its folders.
    pub fn write(&self, uri: &S3Uri, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.object_path(uri);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, bytes)
    }
}

fn walk(bucket: &Path, dir: &Path, keys: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(bucket, &path, keys)?;
        } else if let Ok(relative) = path.strip_prefix(bucket) {
            let key: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            keys.push(key.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_join() {
        let uri = S3Uri::parse("s3://bucket/in/").unwrap();
        assert_eq!(uri.key, "in/");
        assert_eq!(uri.join("x/y.json").to_string(), "s3://bucket/in/x/y.json");
        assert_eq!(S3Uri::parse("s3://bucket").unwrap().key, "");
        assert!(S3Uri::parse("http://bucket/x").is_none());
        assert!(S3Uri::parse("s3:///x").is_none());
    }

    #[test]
    fn listing_is_a_string_prefix_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Root::new(dir.path());
        for key in ["in/b/2.dcm", "in/a/1.dcm", "in-other/3.dcm", "out/4.dcm"] {
            s3.write(&S3Uri::parse(&format!("s3://bk/{key}")).unwrap(), b"x")
                .unwrap();
        }
        let keys = s3.list(&S3Uri::parse("s3://bk/in/").unwrap()).unwrap();
        assert_eq!(keys, ["in/a/1.dcm", "in/b/2.dcm"]);
        let keys = s3.list(&S3Uri::parse("s3://bk/in").unwrap()).unwrap();
        assert_eq!(keys, ["in-other/3.dcm", "in/a/1.dcm", "in/b/2.dcm"]);
        assert!(
            s3.list(&S3Uri::parse("s3://none/").unwrap())
                .unwrap()
                .is_empty()
        );
        assert!(s3.bucket_exists("bk") && !s3.bucket_exists("none"));
    }
}
