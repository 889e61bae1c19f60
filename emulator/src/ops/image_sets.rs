//! The read operations on one image set:
//!
//! - GetImageSet: `POST /datastore/{datastoreId}/imageSet/{imageSetId}/getImageSet?version=`
//! - GetImageSetMetadata: `…/getImageSetMetadata?version=`; the body is the
//!   gzipped document with `Content-Type: application/json` and
//!   `Content-Encoding: gzip`, exactly as stored (no transparent compression).
//! - GetImageFrame: `…/getImageFrame`, body `{"imageFrameId"}`; the stored
//!   codestream with the `Content-Type` of its transfer syntax.
//! - ListImageSetVersions: `…/listImageSetVersions?maxResults=&nextToken=`,
//!   newest first, with the model's `ImageSetWorkflowStatus` (capital I).

use axum::response::Response;
use serde_json::{Value, json};

use crate::arn;
use crate::blobs;
use crate::clock::Timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::Service;
use crate::store::{ImageSet, ImageSetState, ImageSetVersion, Store, wire_name};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::{Request, find_live_datastore, paging};

/// The image set a request's labels name, in a datastore that exists.
pub(super) fn find<'s>(
    service: &Service,
    store: &'s Store,
    request: &Request,
) -> ApiResult<&'s ImageSet> {
    let (datastore_id, image_set_id) = (request.label(0), request.label(1));
    find_live_datastore(service, store, datastore_id)?;
    validate::resource_id("imageSetId", image_set_id)?;
    store.image_set(datastore_id, image_set_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "Image set {image_set_id} does not exist in datastore {datastore_id}"
        ))
    })
}

/// The `?version=` parameter, checked against the model before anything is
/// looked up (the service validates input first).
pub(super) fn version_param(request: &Request) -> ApiResult<Option<u32>> {
    let Some(raw) = request.query.get("version") else {
        return Ok(None);
    };
    validate::pattern("versionId", raw, &validate::VERSION_ID)?;
    // More digits than any version ever written: no such version.
    Ok(Some(raw.parse::<u32>().unwrap_or(u32::MAX)))
}

/// The version asked for, or the latest.
fn requested_version(set: &ImageSet, version: Option<u32>) -> ApiResult<&ImageSetVersion> {
    match version {
        None => Ok(set.latest()),
        Some(v) => set
            .version(v)
            .ok_or_else(|| ApiError::not_found(format!("Image set {} has no version {v}", set.id))),
    }
}

pub(super) fn get(service: &Service, request: &Request) -> ApiResult<Response> {
    let version = version_param(request)?;
    let store = service.store();
    let set = find(service, &store, request)?;
    let version = requested_version(set, version)?;
    let now = service.now();
    let mut body = properties(set, version, now);
    body["datastoreId"] = json!(set.datastore_id);
    body["imageSetWorkflowStatus"] = json!(wire_name(&set.status_of(version, now).1));
    body["imageSetArn"] = json!(arn::image_set(
        &service.config.region,
        &service.config.account_id,
        &set.datastore_id,
        &set.id
    ));
    body["storageTier"] = json!("FREQUENT_ACCESS");
    Ok(wire::json(&body))
}

/// The members GetImageSet and ListImageSetVersions share, as they read at
/// `now`.
fn properties(set: &ImageSet, version: &ImageSetVersion, now: Timestamp) -> Value {
    let (state, _) = set.status_of(version, now);
    let mut value = json!({
        "imageSetId": set.id,
        "versionId": version.version_id.to_string(),
        "imageSetState": wire_name(&state),
        "createdAt": set.created_at,
        "updatedAt": version.updated_at,
        "isPrimary": set.is_primary,
    });
    if let Some(message) = &version.message {
        value["message"] = json!(message);
    }
    if version.forced {
        value["overrides"] = json!({ "forced": true });
    }
    if state == ImageSetState::Deleted {
        value["deletedAt"] = json!(version.updated_at);
    }
    value
}

pub(super) fn get_metadata(service: &Service, request: &Request) -> ApiResult<Response> {
    let version = version_param(request)?;
    let key = {
        let store = service.store();
        let set = find(service, &store, request)?;
        requested_version(set, version)?.metadata_key.clone()
    };
    let bytes = service.blobs.get(&key).ok().flatten().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InternalServer,
            "The emulator could not read the image set's metadata",
        )
    })?;
    Ok(wire::payload("application/json", Some("gzip"), bytes))
}

pub(super) fn get_frame(service: &Service, request: &Request) -> ApiResult<Response> {
    let body = JsonBody::parse(&request.body)?;
    let frame_id = body.required_string("imageFrameId")?;
    validate::resource_id("imageFrameId", &frame_id)?;
    let syntax = {
        let store = service.store();
        let set = find(service, &store, request)?;
        set.frames.get(&frame_id).cloned().ok_or_else(|| {
            ApiError::not_found(format!(
                "Image frame {frame_id} does not exist in image set {}",
                set.id
            ))
        })?
    };
    let bytes = service
        .blobs
        .get(&blobs::frame_key(&frame_id))
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InternalServer,
                "The emulator could not read the image frame",
            )
        })?;
    Ok(wire::payload(frame_content_type(&syntax), None, bytes))
}

/// The `Content-Type` of a frame stored in `transfer_syntax` (model
/// documentation of GetImageFrame). JPEG 2000 lossless, which the table
/// predates, is a J2K codestream like JPEG 2000 lossy: `image/j2c`.
pub fn frame_content_type(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.202" | "" => "image/jph",
        "1.2.840.10008.1.2.4.203" => "image/jphc",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/j2c",
        "1.2.840.10008.1.2.4.50" => "image/jpeg",
        "1.2.840.10008.1.2.4.112" => "image/jxl",
        _ => "application/octet-stream",
    }
}

pub(super) fn list_versions(service: &Service, request: &Request) -> ApiResult<Response> {
    const OPERATION: &str = "ListImageSetVersions";
    let page_size = paging::page_size(&request.query)?;
    let after = paging::after_seq(&request.query, OPERATION)?;
    let store = service.store();
    let set = find(service, &store, request)?;
    let now = service.now();
    let mut matching = set
        .versions
        .iter()
        .rev()
        .filter(|v| after.is_none_or(|a| u64::from(v.version_id) < a));
    let page: Vec<&ImageSetVersion> = matching.by_ref().take(page_size).collect();
    let list: Vec<Value> = page
        .iter()
        .map(|version| {
            let mut value = properties(set, version, now);
            value["ImageSetWorkflowStatus"] = json!(wire_name(&set.status_of(version, now).1));
            value
        })
        .collect();
    let mut body = json!({ "imageSetPropertiesList": list });
    if let (Some(_), Some(last)) = (matching.next(), page.last()) {
        body["nextToken"] = json!(paging::seq_token(OPERATION, u64::from(last.version_id)));
    }
    Ok(wire::json(&body))
}
