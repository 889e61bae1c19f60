//! What the three image set writes share: UpdateImageSetMetadata,
//! CopyImageSet and DeleteImageSet.
//!
//! A write is checked and committed in one write transaction, and writers
//! run one at a time, so two writers with the same `latestVersionId` are
//! serialized: the first appends version n+1 and locks the image set, the
//! second finds the lock (or the stale version) and gets a
//! `ConflictException`. The write's content is
//! complete when it is committed; only the state it reports is asynchronous:
//! `LOCKED` with the in-progress workflow status until the transition delay
//! has passed (see [`crate::store::Lock`]).

use serde_json::{Value as Json, json};

use crate::arn;
use crate::clock::Timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::import::load_document;
use crate::metadata;
use crate::service::Service;
use crate::store::{
    DicomTags, ImageSet, ImageSetState, ImageSetVersion, Lock, Reader, WorkflowStatus, Writer,
    wire_name,
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
    version
        .metadata
        .as_ref()
        .and_then(|blob| load_document(service, blob))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InternalServer,
                "The image set's metadata could not be read",
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

/// The workflow statuses of a kind of write: while it runs, once it is
/// done, and when it failed.
pub(super) type Statuses = (WorkflowStatus, WorkflowStatus, WorkflowStatus);

/// The version after `previous` (or version 1) of the image set `image_set_id`
/// with `outcome`, its document stored as a blob of this transaction.
fn next_version(
    service: &Service,
    w: &mut Writer<'_>,
    (datastore_id, image_set_id): (&str, &str),
    previous: Option<&ImageSetVersion>,
    outcome: Outcome,
    statuses: Statuses,
    forced: bool,
) -> ApiResult<ImageSetVersion> {
    let (_, done, failed) = statuses;
    let now = service.now();
    let version_id = previous.map_or(1, |v| v.version_id + 1);
    match outcome {
        Outcome::Written(document) => {
            let document = metadata::with_identity(document, datastore_id, image_set_id);
            let blob = w.put_blob(&metadata::stored::gzip(&document))?;
            Ok(ImageSetVersion {
                version_id,
                state: ImageSetState::Active,
                workflow_status: done,
                created_at: now,
                updated_at: now,
                message: None,
                forced,
                tags: DicomTags::of_document(&document),
                metadata: Some(blob),
            })
        }
        Outcome::Failed(why) => {
            let previous = previous.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InternalServer,
                    "A failed write has no version to keep",
                )
            })?;
            Ok(ImageSetVersion {
                version_id,
                state: ImageSetState::Active,
                workflow_status: failed,
                created_at: now,
                updated_at: now,
                message: Some(message(&why)),
                forced: false,
                tags: previous.tags.clone(),
                metadata: previous.metadata.clone(),
            })
        }
    }
}

/// Appends the next version of `set` with `outcome` and locks `set` with
/// the running status until the write settles.
pub(super) fn append_version(
    service: &Service,
    w: &mut Writer<'_>,
    set: &mut ImageSet,
    outcome: Outcome,
    statuses: Statuses,
    forced: bool,
) -> ApiResult<u32> {
    let version = next_version(
        service,
        w,
        (&set.datastore_id, &set.id),
        Some(set.latest()),
        outcome,
        statuses,
        forced,
    )?;
    let version_id = version.version_id;
    w.append_version(set, version)?;
    lock(service, w, set, statuses.0)?;
    Ok(version_id)
}

/// A new image set in `datastore_id` holding `document` as its version 1,
/// locked with the running status until the write settles.
pub(super) fn create(
    service: &Service,
    w: &mut Writer<'_>,
    datastore_id: &str,
    primary: bool,
    document: Json,
    statuses: Statuses,
    forced: bool,
) -> ApiResult<ImageSet> {
    let id = new_image_set_id(service, w)?;
    let first = next_version(
        service,
        w,
        (datastore_id, &id),
        None,
        Outcome::Written(document),
        statuses,
        forced,
    )?;
    let lock = Lock {
        until: service.now().after(service.config.transition_delay),
        status: statuses.0,
    };
    Ok(w.create_image_set(&id, datastore_id, primary, service.now(), first, Some(lock))?)
}

/// Locks `set` with `status` for the transition delay from now. Every write
/// (update, either side of a copy) locks, and is a touch of the storage tier.
pub(super) fn lock(
    service: &Service,
    w: &mut Writer<'_>,
    set: &mut ImageSet,
    status: WorkflowStatus,
) -> ApiResult<()> {
    let now = service.now();
    let lock = Lock {
        until: now.after(service.config.transition_delay),
        status,
    };
    w.touch(set, now)?;
    Ok(w.set_lock(set, Some(lock))?)
}

/// A fresh image set ID.
pub(super) fn new_image_set_id(service: &Service, reader: &Reader<'_>) -> ApiResult<String> {
    loop {
        let id = service.resource_ids.resource_id();
        if !reader.image_set_exists(&id)? {
            return Ok(id);
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
