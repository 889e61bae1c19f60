//! Where an export job may write, and the operator's allowlist.
//!
//! Four kinds: a local folder (`file:///abs/dir`), S3 (`s3://bucket/prefix`),
//! a STOW-RS endpoint (`http(s)://…/studies`), and a DICOM node over DIMSE
//! (`dicom://AET@host:port`). An assistant can only name a destination the
//! operator allowed: a folder or S3 prefix at or below an allowed one, a
//! STOW-RS URL or DICOM node exactly as configured. The state directory's
//! `exports` folder and the embedded emulator's S3 are always allowed.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// An export destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local folder (absolute, without `..`).
    Folder(PathBuf),
    /// An S3 bucket and key prefix (no leading or trailing slash).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, possibly empty.
        prefix: String,
    },
    /// A STOW-RS endpoint: instances are POSTed to this URL.
    Stow(String),
    /// A DICOM node, sent to with C-STORE.
    Dimse {
        /// The called AE title.
        called_ae: String,
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
}

impl Destination {
    /// Parses a destination URI, refusing anything ambiguous.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let uri = uri.trim();
        if let Some(path) = uri.strip_prefix("file://") {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err(
                    "a file:// destination needs an absolute path (file:///data/exports)".into(),
                );
            }
            if path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
            {
                return Err("a file:// destination may not contain . or .. segments".into());
            }
            let clean: PathBuf = path.components().collect();
            return Ok(Destination::Folder(clean));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket)?;
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty()
                && prefix
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
            {
                return Err(
                    "an S3 prefix may not contain empty, . or .. segments or backslashes".into(),
                );
            }
            return Ok(Destination::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if uri.starts_with("http://") || uri.starts_with("https://") {
            let without = uri.split_once("://").map_or("", |(_, r)| r);
            let host = without.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || host.contains('@') {
                return Err("a STOW-RS URL needs a host and no user information".into());
            }
            if uri.contains(['?', '#']) {
                return Err("a STOW-RS URL may not carry a query or fragment".into());
            }
            return Ok(Destination::Stow(uri.trim_end_matches('/').to_owned()));
        }
        if let Some(rest) = uri.strip_prefix("dicom://") {
            let (called_ae, address) = rest
                .split_once('@')
                .ok_or("a DICOM node is dicom://AET@host:port")?;
            super::dimse::check_ae_title(called_ae)?;
            let address = address.trim_end_matches('/');
            let (host, port) = address
                .rsplit_once(':')
                .ok_or("a DICOM node is dicom://AET@host:port (the port is required)")?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port of a DICOM node is a number from 1 to 65535")?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err("a DICOM node needs a host".into());
            }
            return Ok(Destination::Dimse {
                called_ae: called_ae.to_owned(),
                host: host.to_owned(),
                port,
            });
        }
        Err("a destination is file:///DIR, s3://bucket/prefix, an http(s) STOW-RS URL, or dicom://AET@host:port".into())
    }

    /// Whether this destination is `allowed` or lies below it.
    pub fn within(&self, allowed: &Destination) -> bool {
        match (self, allowed) {
            (Destination::Folder(path), Destination::Folder(root)) => path.starts_with(root),
            (
                Destination::S3 { bucket, prefix },
                Destination::S3 {
                    bucket: allowed_bucket,
                    prefix: allowed_prefix,
                },
            ) => {
                bucket == allowed_bucket
                    && (allowed_prefix.is_empty()
                        || prefix == allowed_prefix
                        || prefix.starts_with(&format!("{allowed_prefix}/")))
            }
            (Destination::Stow(url), Destination::Stow(allowed)) => url == allowed,
            (a @ Destination::Dimse { .. }, b @ Destination::Dimse { .. }) => {
                a.to_string().eq_ignore_ascii_case(&b.to_string())
            }
            _ => false,
        }
    }

    /// Whether data sent here stays on this machine (a local folder).
    pub fn is_local(&self) -> bool {
        matches!(self, Destination::Folder(_))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Folder(path) => write!(f, "file://{}", path.display()),
            Destination::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Destination::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Destination::Stow(url) => f.write_str(url),
            Destination::Dimse {
                called_ae,
                host,
                port,
            } => write!(f, "dicom://{called_ae}@{host}:{port}"),
        }
    }
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.'])
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{bucket}' is not an S3 bucket name (3–63 lowercase letters, digits, - and .)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            Destination::parse("file:///data/exports/").unwrap(),
            Destination::Folder(PathBuf::from("/data/exports"))
        );
        assert_eq!(
            Destination::parse("s3://research-bucket/deid/2026/").unwrap(),
            Destination::S3 {
                bucket: "research-bucket".into(),
                prefix: "deid/2026".into()
            }
        );
        assert_eq!(
            Destination::parse("http://127.0.0.1:8042/dicom-web/studies").unwrap(),
            Destination::Stow("http://127.0.0.1:8042/dicom-web/studies".into())
        );
        assert_eq!(
            Destination::parse("dicom://ORTHANC@127.0.0.1:4242").unwrap(),
            Destination::Dimse {
                called_ae: "ORTHANC".into(),
                host: "127.0.0.1".into(),
                port: 4242
            }
        );
    }

    #[test]
    fn refuses_escapes_and_malformed_uris() {
        for bad in [
            "file://relative/dir",
            "file:///data/../etc",
            "s3://Bucket/x",
            "s3://bucket/a/../b",
            "s3://bucket/a//b",
            "http://user:pw@host/studies",
            "http://host/studies?x=1",
            "dicom://host:104",
            "dicom://AET@host",
            "dicom://AET@host:0",
            "dicom://A_TITLE_LONGER_THAN_16@host:104",
            "ftp://host/x",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn within_means_at_or_below_for_folders_and_prefixes_exact_otherwise() {
        let root = Destination::parse("file:///data/exports").unwrap();
        assert!(
            Destination::parse("file:///data/exports/a")
                .unwrap()
                .within(&root)
        );
        assert!(
            !Destination::parse("file:///data/exports2")
                .unwrap()
                .within(&root)
        );
        let prefix = Destination::parse("s3://b-1/deid").unwrap();
        assert!(
            Destination::parse("s3://b-1/deid/x")
                .unwrap()
                .within(&prefix)
        );
        assert!(
            !Destination::parse("s3://b-1/deidx")
                .unwrap()
                .within(&prefix)
        );
        assert!(!Destination::parse("s3://b-2/deid").unwrap().within(&prefix));
        let node = Destination::parse("dicom://PACS@10.0.0.1:104").unwrap();
        assert!(
            Destination::parse("dicom://pacs@10.0.0.1:104")
                .unwrap()
                .within(&node)
        );
        assert!(
            !Destination::parse("dicom://PACS@10.0.0.2:104")
                .unwrap()
                .within(&node)
        );
        let stow = Destination::parse("https://pacs.example/studies").unwrap();
        assert!(
            !Destination::parse("https://pacs.example/studies/1.2")
                .unwrap()
                .within(&stow)
        );
    }
}
