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
//!
//! GetImageSetMetadata and GetImageFrame are touches of the storage tier
//! (`storageTier`, `lastAccessedAt` on GetImageSet).
//!
//! A deleted image set is erased: GetImageSet and ListImageSetVersions still
//! report it `DELETED` (versions, states and times, nothing of its content),
//! while GetImageSetMetadata and GetImageFrame answer
//! `ResourceNotFoundException` for every version.

use axum::response::Response;
use serde_json::{Value, json};

use axum::body::Bytes;

use crate::arn;
use crate::clock::Timestamp;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::Service;
use crate::store::{BlobId, ImageSet, ImageSetState, ImageSetVersion, Reader, wire_name};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::{Request, find_live_datastore, paging};

/// The image set a request's labels name, in a datastore that exists.
pub(super) fn find(
    service: &Service,
    reader: &Reader<'_>,
    request: &Request,
) -> ApiResult<ImageSet> {
    let (datastore_id, image_set_id) = (request.label(0), request.label(1));
    find_live_datastore(service, reader, datastore_id)?;
    validate::resource_id("imageSetId", image_set_id)?;
    reader
        .image_set(datastore_id, image_set_id)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Image set {image_set_id} does not exist in datastore {datastore_id}"
            ))
        })
}

/// The image set a request names, unless it is deleted: a deleted image
/// set's data is erased, so its documents and frames are not found.
fn find_readable(service: &Service, reader: &Reader<'_>, request: &Request) -> ApiResult<ImageSet> {
    let set = find(service, reader, request)?;
    if set.is_deleted() {
        return Err(ApiError::not_found(format!(
            "Image set {} has been deleted; its metadata and image frames no longer exist",
            set.id
        )));
    }
    Ok(set)
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
fn requested_version(
    reader: &Reader<'_>,
    set: &ImageSet,
    version: Option<u32>,
) -> ApiResult<ImageSetVersion> {
    match version {
        None => Ok(set.latest().clone()),
        Some(v) => reader
            .version(set, v)?
            .ok_or_else(|| ApiError::not_found(format!("Image set {} has no version {v}", set.id))),
    }
}

pub(super) fn get(service: &Service, request: &Request) -> ApiResult<Response> {
    let version = version_param(request)?;
    let (set, version) = service.store().read(|r| -> ApiResult<_> {
        let set = find(service, r, request)?;
        let version = requested_version(r, &set, version)?;
        Ok((set, version))
    })?;
    let now = service.now();
    let mut body = properties(&set, &version, now);
    body["datastoreId"] = json!(set.datastore_id);
    body["imageSetWorkflowStatus"] = json!(wire_name(&set.status_of(&version, now).1));
    body["imageSetArn"] = json!(arn::image_set(
        &service.config.region,
        &service.config.account_id,
        &set.datastore_id,
        &set.id
    ));
    body["storageTier"] = json!(set.storage_tier(now));
    body["lastAccessedAt"] = json!(set.last_accessed_at);
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
    let (set, blob) = service.store().read(|r| -> ApiResult<_> {
        let set = find_readable(service, r, request)?;
        let blob = requested_version(r, &set, version)?.metadata;
        Ok((set, blob))
    })?;
    let bytes = read_blob(service, request, &set, blob.as_ref())?;
    service.touch(&set);
    Ok(wire::payload("application/json", Some("gzip"), bytes))
}

pub(super) fn get_frame(service: &Service, request: &Request) -> ApiResult<Response> {
    let body = JsonBody::parse(&request.body)?;
    let frame_id = body.required_string("imageFrameId")?;
    validate::resource_id("imageFrameId", &frame_id)?;
    let (set, frame) = service.store().read(|r| -> ApiResult<_> {
        let set = find_readable(service, r, request)?;
        let frame = r.frame(&set, &frame_id)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "Image frame {frame_id} does not exist in image set {}",
                set.id
            ))
        })?;
        Ok((set, frame))
    })?;
    let bytes = read_blob(service, request, &set, Some(&frame.blob))?;
    service.touch(&set);
    Ok(wire::payload(
        frame_content_type(&frame.transfer_syntax),
        None,
        bytes,
    ))
}

/// The bytes of `blob`. A blob can vanish between the read that named it
/// and this one only when a concurrent deletion erased the image set; that
/// answers not found, anything else is the store's fault.
fn read_blob(
    service: &Service,
    request: &Request,
    set: &ImageSet,
    blob: Option<&BlobId>,
) -> ApiResult<Bytes> {
    if let Some(bytes) = blob.and_then(|id| service.store().blobs().get(id).ok().flatten()) {
        return Ok(bytes);
    }
    service
        .store()
        .read(|r| find_readable(service, r, request))?;
    tracing::error!(image_set = %set.id, "a blob the store refers to is missing");
    Err(ApiError::new(
        ErrorCode::InternalServer,
        "The image set's data could not be read",
    ))
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
    let mut v = validate::Violations::default();
    let page_size = v.check(paging::page_size(&request.query))?.unwrap_or(1);
    let after = v
        .check(paging::after_seq(&request.query, OPERATION))?
        .flatten();
    v.finish()?;
    let before = after.map(|a| u32::try_from(a).unwrap_or(u32::MAX));
    let (set, mut page) = service.store().read(|r| -> ApiResult<_> {
        let set = find(service, r, request)?;
        let page = r.versions(&set, before, page_size + 1)?;
        Ok((set, page))
    })?;
    let more = page.len() > page_size;
    page.truncate(page_size);
    let now = service.now();
    let list: Vec<Value> = page
        .iter()
        .map(|version| {
            let mut value = properties(&set, version, now);
            value["ImageSetWorkflowStatus"] = json!(wire_name(&set.status_of(version, now).1));
            value
        })
        .collect();
    let mut body = json!({ "imageSetPropertiesList": list });
    if let (true, Some(last)) = (more, page.last()) {
        body["nextToken"] = json!(paging::seq_token(OPERATION, u64::from(last.version_id)));
    }
    Ok(wire::json(&body))
}
