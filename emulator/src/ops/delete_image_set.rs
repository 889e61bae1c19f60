//! DeleteImageSet: `POST /datastore/{datastoreId}/imageSet/{imageSetId}/deleteImageSet`.
//!
//! The image set leaves search at once and reads `LOCKED` / `DELETING` until
//! the transition delay has passed, then `DELETED` (GetImageSet answers with
//! `deletedAt`). Its data is erased in the same transaction
//! ([`crate::store::Writer::erase`]): no version's metadata or frame is
//! readable from then on. The model marks the operation idempotent: deleting
//! a deleted image set answers its current state. A `LOCKED` image set
//! cannot be deleted (ConflictException).

use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::{WorkflowStatus, wire_name};
use crate::wire;

use super::Request;
use super::image_set_writes::lock;
use super::image_sets::find;

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let now = service.now();
    let set = service.store().write(|w| -> ApiResult<_> {
        let mut set = find(service, w, request)?;
        if !set.is_deleted() {
            if let Some(running) = set.lock_at(now) {
                return Err(ApiError::conflict(format!(
                    "Image set {} is LOCKED ({}) until its current write finishes; retry when it is ACTIVE",
                    set.id,
                    wire_name(&running.status)
                )));
            }
            w.erase(&mut set, now)?;
            lock(service, w, &mut set, WorkflowStatus::Deleting)?;
        }
        Ok(set)
    })?;
    let (state, status) = set.status_of(set.latest(), now);
    Ok(wire::json(&json!({
        "datastoreId": set.datastore_id,
        "imageSetId": set.id,
        "imageSetState": wire_name(&state),
        "imageSetWorkflowStatus": wire_name(&status),
    })))
}
