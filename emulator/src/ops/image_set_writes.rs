//! What the three image set writes share: UpdateImageSetMetadata,
//! CopyImageSet and DeleteImageSet.
//!
//! A write is checked and committed under the store's one lock, so two
//! writers with the same `latestVersionId` are serialized: the first appends
//! version n+1 and locks the image set, the second finds the lock (or the
//! stale version) and gets a `ConflictException`. The write's content is
//! complete when it is committed; only the state it reports is asynchronous:
//! `LOCKED` with the in-progress workflow status until the transition delay
//! has passed (see [`crate::store::Lock`]).

use serde_json::{Value as Json, json};

use crate::arn;
use crate::blobs;
use crate::clock::Timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::import::load_document;
use crate::metadata;
use crate::service::Service;
use crate::store::{
    DicomTags, ImageSet, ImageSetState, ImageSetVersion, Lock, Store, WorkflowStatus, wire_name,
};
use crate::validate;

/// A `latestVersionId` member or parameter.
pub(super) fn version_id(field: &str, raw: &str) -> ApiResult<u32> {
    validate::pattern(field, raw, &validate::VERSION_ID)?;
    Ok(raw.parse::<u32>().unwrap_or(u32::MAX))
}

/// Checks that `set` accepts a write at `now` from a caller who last saw
/// `expected` as its latest version.
pub(super) fn writable(set: &ImageSet, now: Timestamp, expected: u32) -> ApiResult<()> {
    if set.is_deleted() {
        return Err(ApiError::conflict(format!(
            "Image set {} is deleted",
            set.id
        )));
    }
    if let Some(lock) = set.lock_at(now) {
        return Err(ApiError::conflict(format!(
            "Image set {} is LOCKED ({}) until its current write finishes; retry when it is ACTIVE",
            set.id,
            wire_name(&lock.status)
        )));
    }
    let latest = set.latest().version_id;
    if expected != latest {
        return Err(ApiError::conflict(format!(
            "Version {expected} is not the latest version of image set {}: the latest is {latest}",
            set.id
        )));
    }
    Ok(())
}

/// The document of `set`'s latest version.
pub(super) fn latest_document(service: &Service, set: &ImageSet) -> ApiResult<Json> {
    document_of(service, set.latest())
}

/// The document of `version`.
pub(super) fn document_of(service: &Service, version: &ImageSetVersion) -> ApiResult<Json> {
    load_document(service, &version.metadata_key).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InternalServer,
            "The emulator could not read the image set's metadata",
        )
    })
}

/// How a write ended for one image set.
pub(super) enum Outcome {
    /// The new content.
    Written(Json),
    /// The write failed: the content stays, the version is consumed.
    Failed(String),
}

/// Appends the next version of `set` with `outcome`, storing its document,
/// and locks `set` with `running` until the write settles. The document is
/// synced before the caller commits the change naming it.
pub(super) fn append_version(
    service: &Service,
    set: &mut ImageSet,
    outcome: Outcome,
    statuses: (WorkflowStatus, WorkflowStatus, WorkflowStatus),
    forced: bool,
) -> ApiResult<u32> {
    let (running, done, failed) = statuses;
    let now = service.now();
    let version_id = set.versions.last().map_or(1, |v| v.version_id + 1);
    let previous = set.versions.last().cloned();
    let version = match outcome {
        Outcome::Written(document) => {
            let document = metadata::with_identity(document, &set.datastore_id, &set.id);
            let key = blobs::metadata_key(&set.id, version_id);
            store_blob(service, &key, &metadata::stored::gzip(&document))?;
            ImageSetVersion {
                version_id,
                state: ImageSetState::Active,
                workflow_status: done,
                created_at: now,
                updated_at: now,
                message: None,
                forced,
                tags: DicomTags::of_document(&document),
                metadata_key: key,
            }
        }
        Outcome::Failed(why) => {
            let previous = previous.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InternalServer,
                    "A failed write has no version to keep",
                )
            })?;
            ImageSetVersion {
                version_id,
                state: ImageSetState::Active,
                workflow_status: failed,
                created_at: now,
                updated_at: now,
                message: Some(message(&why)),
                forced: false,
                tags: previous.tags,
                metadata_key: previous.metadata_key,
            }
        }
    };
    set.versions.push(version);
    lock(service, set, running);
    Ok(version_id)
}

/// Locks `set` with `status` for the transition delay from now.
pub(super) fn lock(service: &Service, set: &mut ImageSet, status: WorkflowStatus) {
    set.lock = Some(Lock {
        until: service.now().after(service.config.transition_delay),
        status,
    });
}

fn store_blob(service: &Service, key: &str, bytes: &[u8]) -> ApiResult<()> {
    service
        .blobs
        .put(key, bytes)
        .and_then(|()| service.blobs.sync())
        .map_err(|error| {
            tracing::error!(%error, "metadata write failed");
            ApiError::new(
                ErrorCode::InternalServer,
                "The emulator could not store the image set's metadata",
            )
        })
}

/// A fresh image set ID.
pub(super) fn new_image_set_id(service: &Service, store: &Store) -> String {
    loop {
        let id = service.resource_ids.resource_id();
        if !store.image_sets.contains_key(&id) {
            return id;
        }
    }
}

/// The `ImageSetProperties`-like members a write answers with, as `set`
/// reads at `now`.
pub(super) fn properties(service: &Service, set: &ImageSet, now: Timestamp) -> Json {
    let latest = set.latest();
    let (state, status) = set.status_of(latest, now);
    let mut value = json!({
        "imageSetId": set.id,
        "latestVersionId": latest.version_id.to_string(),
        "imageSetState": wire_name(&state),
        "imageSetWorkflowStatus": wire_name(&status),
        "createdAt": set.created_at,
        "updatedAt": latest.updated_at,
        "imageSetArn": arn::image_set(
            &service.config.region,
            &service.config.account_id,
            &set.datastore_id,
            &set.id
        ),
    });
    if let (Some(message), ImageSetState::Active) = (&latest.message, state) {
        value["message"] = json!(message);
    }
    value
}

/// `text` in the model's `Message` form: 1–2048 characters of
/// `[\w -:`]`; anything else becomes a space.
pub(super) fn message(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '`' || (' '..=':').contains(&c) {
                c
            } else {
                ' '
            }
        })
        .take(2048)
        .collect();
    if cleaned.is_empty() {
        "The write failed".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fit_the_model_pattern() {
        let m = message("Attribute {x} is ^bad^ — [sic]");
        assert!(
            m.chars().all(|c| c.is_ascii_alphanumeric()
                || c == '_'
                || c == '`'
                || (' '..=':').contains(&c)),
            "{m}"
        );
        assert!(m.starts_with("Attribute  x  is  bad"));
        assert_eq!(message(&"a".repeat(3000)).len(), 2048);
        assert_eq!(message(""), "The write failed");
    }
}
