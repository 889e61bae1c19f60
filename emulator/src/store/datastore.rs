//! A datastore and its lifecycle.
//!
//! The status is not stored but derived from the clock: a datastore created
//! at `t` is `CREATING` until `t + delay` and `ACTIVE` afterwards; one whose
//! deletion was requested at `d` is `DELETING` until `d + delay`, then
//! `DELETED`. Deriving it means no background task has to run for a
//! transition to happen, and a test moves a datastore through its states by
//! moving a manual clock.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// `DatastoreStatus` of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatastoreStatus {
    /// Being created.
    Creating,
    /// Creation failed (never produced by the emulator on its own).
    CreateFailed,
    /// Ready for use.
    Active,
    /// Being deleted.
    Deleting,
    /// Deleted; still reported by Get and List.
    Deleted,
}

impl DatastoreStatus {
    /// Every status with its wire name.
    pub const ALL: [(&'static str, DatastoreStatus); 5] = [
        ("CREATING", DatastoreStatus::Creating),
        ("CREATE_FAILED", DatastoreStatus::CreateFailed),
        ("ACTIVE", DatastoreStatus::Active),
        ("DELETING", DatastoreStatus::Deleting),
        ("DELETED", DatastoreStatus::Deleted),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, status)| *status == self)
            .map(|(name, _)| *name)
            .unwrap_or("ACTIVE")
    }
}

/// `LosslessStorageFormat` of the model: how lossless frames are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LosslessStorageFormat {
    /// HTJ2K lossless (transfer syntax 1.2.840.10008.1.2.4.202), the default.
    Htj2k,
    /// JPEG 2000 lossless (1.2.840.10008.1.2.4.90).
    Jpeg2000Lossless,
}

impl LosslessStorageFormat {
    /// Every format with its wire name.
    pub const ALL: [(&'static str, LosslessStorageFormat); 2] = [
        ("HTJ2K", LosslessStorageFormat::Htj2k),
        (
            "JPEG_2000_LOSSLESS",
            LosslessStorageFormat::Jpeg2000Lossless,
        ),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LosslessStorageFormat::Htj2k => "HTJ2K",
            LosslessStorageFormat::Jpeg2000Lossless => "JPEG_2000_LOSSLESS",
        }
    }
}

/// One datastore.
#[derive(Debug, Clone, PartialEq)]
pub struct Datastore {
    /// `datastoreId`.
    pub id: String,
    /// `datastoreName`.
    pub name: String,
    /// Creation order, the key of ListDatastores pagination.
    pub seq: u64,
    /// `kmsKeyArn`, echoed.
    pub kms_key_arn: Option<String>,
    /// `lambdaAuthorizerArn`, echoed.
    pub lambda_authorizer_arn: Option<String>,
    /// `losslessStorageFormat`.
    pub lossless_storage_format: LosslessStorageFormat,
    /// When CreateDatastore was accepted.
    pub created_at: Timestamp,
    /// When DeleteDatastore was accepted, if it was.
    pub delete_requested_at: Option<Timestamp>,
    /// The resource tags.
    pub tags: BTreeMap<String, String>,
}

impl Datastore {
    /// The status at `now`.
    pub fn status(&self, now: Timestamp, delay: Duration) -> DatastoreStatus {
        match self.delete_requested_at {
            Some(requested) if now >= requested.after(delay) => DatastoreStatus::Deleted,
            Some(_) => DatastoreStatus::Deleting,
            None if now >= self.created_at.after(delay) => DatastoreStatus::Active,
            None => DatastoreStatus::Creating,
        }
    }

    /// The time of the last status change that has happened by `now`.
    pub fn updated_at(&self, now: Timestamp, delay: Duration) -> Timestamp {
        let ready = self.created_at.after(delay);
        let mut last = if now >= ready { ready } else { self.created_at };
        if let Some(requested) = self.delete_requested_at {
            let done = requested.after(delay);
            last = if now >= done { done } else { requested };
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datastore(created: u64) -> Datastore {
        Datastore {
            id: "0".repeat(32),
            name: "n".into(),
            seq: 0,
            kms_key_arn: None,
            lambda_authorizer_arn: None,
            lossless_storage_format: LosslessStorageFormat::Htj2k,
            created_at: Timestamp::from_millis(created),
            delete_requested_at: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn status_follows_the_clock_through_the_whole_lifecycle() {
        let delay = Duration::from_millis(100);
        let mut ds = datastore(1_000);
        let at = Timestamp::from_millis;
        assert_eq!(ds.status(at(1_099), delay), DatastoreStatus::Creating);
        assert_eq!(ds.updated_at(at(1_099), delay), at(1_000));
        assert_eq!(ds.status(at(1_100), delay), DatastoreStatus::Active);
        assert_eq!(ds.updated_at(at(5_000), delay), at(1_100));
        ds.delete_requested_at = Some(at(6_000));
        assert_eq!(ds.status(at(6_050), delay), DatastoreStatus::Deleting);
        assert_eq!(ds.updated_at(at(6_050), delay), at(6_000));
        assert_eq!(ds.status(at(6_100), delay), DatastoreStatus::Deleted);
        assert_eq!(ds.updated_at(at(9_000), delay), at(6_100));
    }

    #[test]
    fn zero_delay_is_active_at_once() {
        let ds = datastore(1_000);
        assert_eq!(
            ds.status(Timestamp::from_millis(1_000), Duration::ZERO),
            DatastoreStatus::Active
        );
    }
}
