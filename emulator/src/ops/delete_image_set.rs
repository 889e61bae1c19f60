//! DeleteImageSet: `POST /datastore/{datastoreId}/imageSet/{imageSetId}/deleteImageSet`.
//!
//! The image set leaves search at once and reads `LOCKED` / `DELETING` until
//! the transition delay has passed, then `DELETED` (GetImageSet answers with
//! `deletedAt`; every version's metadata stays readable, as the service's
//! `?version=` reads do). The model marks the operation idempotent: deleting
//! a deleted image set answers its current state. A `LOCKED` image set
//! cannot be deleted (ConflictException).

use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::{Change, ImageSetState, WorkflowStatus, wire_name};
use crate::wire;

use super::Request;
use super::image_set_writes::lock;
use super::image_sets::find;

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let now = service.now();
    let mut store = service.store();
    let mut set = find(service, &store, request)?.clone();
    if !set.is_deleted() {
        if let Some(running) = set.lock_at(now) {
            return Err(ApiError::conflict(format!(
                "Image set {} is LOCKED ({}) until its current write finishes; retry when it is ACTIVE",
                set.id,
                wire_name(&running.status)
            )));
        }
        if let Some(latest) = set.versions.last_mut() {
            latest.state = ImageSetState::Deleted;
            latest.workflow_status = WorkflowStatus::Deleted;
            latest.updated_at = now;
        }
        lock(service, &mut set, WorkflowStatus::Deleting);
        store.commit(Change::ImageSetsWritten {
            image_sets: vec![set.clone()],
        })?;
    }
    let (state, status) = set.status_of(set.latest(), now);
    Ok(wire::json(&json!({
        "datastoreId": set.datastore_id,
        "imageSetId": set.id,
        "imageSetState": wire_name(&state),
        "imageSetWorkflowStatus": wire_name(&status),
    })))
}
