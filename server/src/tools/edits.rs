//! The engine under every write and destructive image set tool.
//!
//! HealthImaging's writes are asynchronous and optimistic: a write names the
//! version it read (`latestVersionId`), locks the image set, and settles a
//! little later as `UPDATED`, `UPDATE_FAILED`, `COPIED`, … A LOCKED image set
//! refuses other writes, and a stale version gets a ConflictException. The
//! engine hides that from the tools: it waits for a LOCKED image set to
//! settle, writes with the version it has just read, re-reads and retries on
//! a conflict, waits for its own write to settle, and reports what happened,
//! including a failed write's `message`.

use std::time::Duration;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::primitives::Blob;
use aws_sdk_medicalimaging::types::{DicomUpdates, MetadataUpdates};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::views::ImageSetView;
use crate::errors::ToolError;

/// How long the engine waits for an image set to leave LOCKED.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a write is tried when other writers get in between.
const ATTEMPTS: u32 = 10;

/// GetImageSet, as a view.
pub(crate) async fn current(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
) -> Result<ImageSetView, ToolError> {
    let got = client
        .get_image_set()
        .datastore_id(datastore_id)
        .image_set_id(image_set_id)
        .send()
        .await
        .map_err(ToolError::from_sdk)?;
    Ok(ImageSetView::from(&got))
}

/// The image set once it is not LOCKED.
pub(crate) async fn settled(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
) -> Result<ImageSetView, ToolError> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        let view = current(client, datastore_id, image_set_id).await?;
        if view.image_set_state != "LOCKED" {
            return Ok(view);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ToolError::new(
                "StillLocked",
                format!(
                    "Image set {image_set_id} is still LOCKED ({}) after {} seconds",
                    view.image_set_workflow_status.as_deref().unwrap_or("?"),
                    SETTLE_TIMEOUT.as_secs()
                ),
                "Another write is running on it. Check it later with get_image_set and retry.",
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The version `version_id` of an image set once the image set has left
/// LOCKED: the state and status of that write, whatever came after it.
pub(crate) async fn settled_version(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
    version_id: &str,
) -> Result<ImageSetView, ToolError> {
    let latest = settled(client, datastore_id, image_set_id).await?;
    if latest.version_id == version_id {
        return Ok(latest);
    }
    let got = client
        .get_image_set()
        .datastore_id(datastore_id)
        .image_set_id(image_set_id)
        .version_id(version_id)
        .send()
        .await
        .map_err(ToolError::from_sdk)?;
    Ok(ImageSetView::from(&got))
}

/// A change of an image set's metadata, as UpdateImageSetMetadata takes it.
#[derive(Debug, Clone)]
pub(crate) enum MetadataChange {
    /// `DICOMUpdates`: JSON documents of the metadata's shape.
    Dicom {
        /// Attributes to add or replace.
        updatable: Option<Value>,
        /// Attributes (key and value), series or instances to remove.
        removable: Option<Value>,
    },
    /// `revertToVersionId`.
    Revert(String),
}

impl MetadataChange {
    /// The API's union member, each document with `SchemaVersion` 1.1.
    fn to_api(&self) -> MetadataUpdates {
        match self {
            MetadataChange::Revert(version) => MetadataUpdates::RevertToVersionId(version.clone()),
            MetadataChange::Dicom {
                updatable,
                removable,
            } => {
                let blob = |document: &Option<Value>| {
                    document
                        .as_ref()
                        .map(|d| Blob::new(with_schema(d).to_string()))
                };
                MetadataUpdates::DicomUpdates(
                    DicomUpdates::builder()
                        .set_updatable_attributes(blob(updatable))
                        .set_removable_attributes(blob(removable))
                        .build(),
                )
            }
        }
    }
}

/// `document` with the `"SchemaVersion": "1.1"` the service expects.
pub(crate) fn with_schema(document: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("SchemaVersion".into(), json!("1.1"));
    if let Some(members) = document.as_object() {
        for (key, value) in members {
            if key != "SchemaVersion" {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// The removable attributes that remove `series_uid` (and with
/// `sop_instance_uid`, only that instance).
pub(crate) fn removal(series_uid: &str, sop_instance_uid: Option<&str>) -> Value {
    match sop_instance_uid {
        None => json!({"Study": {"Series": {series_uid: {}}}}),
        Some(sop) => json!({"Study": {"Series": {series_uid: {"Instances": {sop: {}}}}}}),
    }
}

/// What one write did to one image set.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct WriteResult {
    /// The image set written.
    pub image_set_id: String,
    /// What was done.
    pub action: String,
    /// done, failed or skipped.
    pub outcome: String,
    /// The version the write started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_version_id: Option<String>,
    /// The image set's latest version afterwards.
    pub version_id: String,
    /// ACTIVE, LOCKED or DELETED afterwards.
    pub image_set_state: String,
    /// UPDATED, UPDATE_FAILED, COPIED, COPY_FAILED, DELETED, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set_workflow_status: Option<String>,
    /// Why the write failed, from HealthImaging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl WriteResult {
    /// The result of `action` on an image set that ended as `view`.
    pub(crate) fn of(action: &str, from: Option<String>, view: ImageSetView) -> Self {
        let failed = view
            .image_set_workflow_status
            .as_deref()
            .is_some_and(|s| s.ends_with("_FAILED"));
        Self {
            image_set_id: view.image_set_id,
            action: action.to_owned(),
            outcome: if failed { "failed" } else { "done" }.to_owned(),
            from_version_id: from,
            version_id: view.version_id,
            image_set_state: view.image_set_state,
            image_set_workflow_status: view.image_set_workflow_status,
            message: view.message,
        }
    }

    /// A write to `image_set_id` (at `version_id`) that could not be made.
    pub(crate) fn failed(
        image_set_id: &str,
        action: &str,
        version_id: String,
        error: &ToolError,
    ) -> Self {
        Self {
            image_set_id: image_set_id.to_owned(),
            action: action.to_owned(),
            outcome: "failed".to_owned(),
            from_version_id: Some(version_id.clone()),
            version_id,
            image_set_state: "UNKNOWN".to_owned(),
            image_set_workflow_status: None,
            message: Some(error.to_string()),
        }
    }

    /// Whether the write took effect.
    pub(crate) fn succeeded(&self) -> bool {
        self.outcome == "done"
    }
}

/// How an update is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpdateOptions {
    /// The version the caller read and means to change; `None` uses the
    /// current one and retries when other writers get in between.
    pub expected: Option<String>,
    /// `force`.
    pub force: bool,
    /// `includeStudyImageSets`.
    pub include_study_image_sets: bool,
}

/// Applies `change` to the latest version of an image set: waits for a lock
/// to clear, writes with the version just read, re-reads and retries on a
/// conflict, then waits for the write to settle. With `options.expected`,
/// the write is made on that version only: a conflict is reported, not
/// retried, so a caller never overwrites a change it has not seen.
pub(crate) async fn update(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
    change: &MetadataChange,
    options: &UpdateOptions,
    action: &str,
) -> Result<WriteResult, ToolError> {
    let mut last_conflict = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let before = settled(client, datastore_id, image_set_id).await?;
        if before.image_set_state == "DELETED" {
            return Err(deleted(image_set_id));
        }
        let version = options
            .expected
            .clone()
            .unwrap_or(before.version_id.clone());
        let sent = client
            .update_image_set_metadata()
            .datastore_id(datastore_id)
            .image_set_id(image_set_id)
            .latest_version_id(&version)
            .force(options.force)
            .include_study_image_sets(options.include_study_image_sets)
            .update_image_set_metadata_updates(change.to_api())
            .send()
            .await;
        match sent {
            Ok(written) => {
                // This write's own version, as it settled: another writer's
                // later version must not be reported as this one.
                let after = settled_version(
                    client,
                    datastore_id,
                    image_set_id,
                    written.latest_version_id(),
                )
                .await?;
                return Ok(WriteResult::of(action, Some(before.version_id), after));
            }
            Err(error) => {
                let error = ToolError::from_sdk(error);
                if error.code != "ConflictException" {
                    return Err(error);
                }
                if options.expected.is_some() {
                    return Err(error.advise_on(
                        "ConflictException",
                        format!(
                            "Version {version} is not the latest (the image set is at version {}): read it again with get_image_set_metadata, check the change still applies, and retry with the new version.",
                            before.version_id
                        ),
                    ));
                }
                last_conflict = Some(error);
            }
        }
    }
    Err(last_conflict
        .unwrap_or_else(|| deleted(image_set_id))
        .advise_on(
            "ConflictException",
            "Other writers kept changing this image set. Read it again with get_image_set and retry.",
        ))
}

/// Deletes an image set once it is not LOCKED, and waits for DELETED.
pub(crate) async fn delete(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
) -> Result<WriteResult, ToolError> {
    let before = settled(client, datastore_id, image_set_id).await?;
    if before.image_set_state != "DELETED" {
        client
            .delete_image_set()
            .datastore_id(datastore_id)
            .image_set_id(image_set_id)
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
    }
    let after = settled(client, datastore_id, image_set_id).await?;
    Ok(WriteResult::of(
        "delete_image_set",
        Some(before.version_id),
        after,
    ))
}

/// The pause before retry `attempt`: growing, with jitter so that writers
/// who lost the same race do not meet again.
fn backoff(attempt: u32) -> Duration {
    let mut random = [0u8; 1];
    let jitter = match getrandom::fill(&mut random) {
        Ok(()) => u64::from(random[0]) % 50,
        Err(_) => 25,
    };
    Duration::from_millis((10u64 << attempt.min(5)) + jitter)
}

fn deleted(image_set_id: &str) -> ToolError {
    ToolError::new(
        "ImageSetDeleted",
        format!("Image set {image_set_id} is deleted"),
        "Search again: deleted image sets cannot be changed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_get_the_schema_version() {
        let document = with_schema(&json!({"Patient": {"DICOM": {}}, "SchemaVersion": 2}));
        assert_eq!(document["SchemaVersion"], "1.1");
        assert_eq!(document["Patient"], json!({"DICOM": {}}));
        assert_eq!(with_schema(&json!({}))["SchemaVersion"], "1.1");
    }

    #[test]
    fn removals_have_the_documented_shape() {
        assert_eq!(
            removal("1.2", None),
            json!({"Study": {"Series": {"1.2": {}}}})
        );
        assert_eq!(
            removal("1.2", Some("1.2.3")),
            json!({"Study": {"Series": {"1.2": {"Instances": {"1.2.3": {}}}}}})
        );
    }
}
