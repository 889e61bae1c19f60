//! CopyImageSet:
//! `POST /datastore/{datastoreId}/imageSet/{sourceImageSetId}/copyImageSet?force=&promoteToPrimary=`
//! with `{"sourceImageSet":{"latestVersionId","DICOMCopies"?:{"copiableAttributes"}},
//! "destinationImageSet"?:{"imageSetId","latestVersionId"}}`.
//!
//! - Without a destination the selection becomes a new image set (version 1,
//!   `COPIED`), non-primary unless `promoteToPrimary`.
//! - With one, the selection is merged into it as a new version. Source and
//!   destination must agree on their Patient, Study and Series attributes
//!   unless `force` (the destination's values are kept); an SOP instance
//!   already in the destination fails the copy even with `force`. A failed
//!   copy consumes the destination's version (`COPY_FAILED`, with a
//!   `message`), as in the service's own example.
//! - `promoteToPrimary` with a destination writes the merged result to a
//!   new primary image set (a new ID, as the service documents) and leaves
//!   the destination as it was.
//! - The source keeps its version and reads `LOCKED` /
//!   `COPYING_WITH_READ_ONLY_ACCESS` until the copy settles.
//!
//! Frames are never duplicated: the destination lists the source's frame
//! IDs, whose blobs are shared.
//!
//! A failed copy (`COPY_FAILED`) still locks the source until it settles, as
//! a running copy would.

use axum::response::Response;
use serde_json::{Map, Value as Json, json};

use crate::error::{ApiError, ApiResult};
use crate::metadata::combine;
use crate::service::Service;
use crate::store::{Reader, WorkflowStatus};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::Request;
use super::image_set_writes::{
    Outcome, append_version, create, latest_document, lock, properties, version_id, writable,
};
use super::image_sets::find;

const COPY: (WorkflowStatus, WorkflowStatus, WorkflowStatus) = (
    WorkflowStatus::Copying,
    WorkflowStatus::Copied,
    WorkflowStatus::CopyFailed,
);

/// The request body, validated.
struct CopyRequest {
    source_version: u32,
    copiable: Option<Json>,
    destination: Option<(String, u32)>,
}

fn parse(body: &JsonBody) -> ApiResult<CopyRequest> {
    let source = body
        .value("sourceImageSet")
        .and_then(Json::as_object)
        .ok_or_else(|| {
            ApiError::validation(
                "copyImageSetInformation.sourceImageSet",
                "Member must not be null",
            )
        })?;
    let string = |members: &Map<String, Json>, field: &str, name: &str| -> ApiResult<String> {
        match members.get(name) {
            Some(Json::String(s)) => Ok(s.clone()),
            None | Some(Json::Null) => Err(ApiError::validation(
                &format!("{field}.{name}"),
                "Member must not be null",
            )),
            Some(_) => Err(ApiError::validation(
                &format!("{field}.{name}"),
                "Member must be a string",
            )),
        }
    };
    let source_version = version_id(
        "sourceImageSet.latestVersionId",
        &string(source, "sourceImageSet", "latestVersionId")?,
    )?;
    let copiable = match source.get("DICOMCopies").filter(|v| !v.is_null()) {
        None => None,
        Some(Json::Object(copies)) => {
            let text = string(copies, "sourceImageSet.DICOMCopies", "copiableAttributes")?;
            validate::length(
                "sourceImageSet.DICOMCopies.copiableAttributes",
                &text,
                1,
                260_000,
            )?;
            let parsed: Json = serde_json::from_str(&text).map_err(|e| {
                ApiError::validation(
                    "sourceImageSet.DICOMCopies.copiableAttributes",
                    format!("not a JSON document: {e}"),
                )
            })?;
            Some(parsed)
        }
        Some(_) => {
            return Err(ApiError::validation(
                "sourceImageSet.DICOMCopies",
                "Member must be an object",
            ));
        }
    };
    let destination = match body.value("destinationImageSet") {
        None => None,
        Some(Json::Object(destination)) => {
            let id = string(destination, "destinationImageSet", "imageSetId")?;
            validate::resource_id("destinationImageSet.imageSetId", &id)?;
            let version = version_id(
                "destinationImageSet.latestVersionId",
                &string(destination, "destinationImageSet", "latestVersionId")?,
            )?;
            Some((id, version))
        }
        Some(_) => {
            return Err(ApiError::validation(
                "destinationImageSet",
                "Member must be an object",
            ));
        }
    };
    Ok(CopyRequest {
        source_version,
        copiable,
        destination,
    })
}

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    // Each member is checked before the first violation is answered.
    let mut v = crate::validate::Violations::default();
    let force = v
        .check(request.query.boolean("force"))?
        .flatten()
        .unwrap_or(false);
    let promote = v
        .check(request.query.boolean("promoteToPrimary"))?
        .flatten()
        .unwrap_or(false);
    let copy = v.check(JsonBody::parse(&request.body).and_then(|body| parse(&body)))?;
    v.finish()?;
    let Some(copy) = copy else {
        return Err(ApiError::validation(
            "copyImageSetInformation",
            "Member must not be null",
        ));
    };
    if copy
        .destination
        .as_ref()
        .is_some_and(|(id, _)| id == &request.labels[1])
    {
        return Err(ApiError::validation(
            "destinationImageSet.imageSetId",
            "the destination must differ from the source",
        ));
    }
    let now = service.now();
    let body = service.store().write(|w| -> ApiResult<_> {
        let mut source = find(service, w, request)?;
        writable(&source, now, copy.source_version)?;
        let destination = match &copy.destination {
            None => None,
            Some((id, version)) => {
                let set = w.image_set(&source.datastore_id, id)?.ok_or_else(|| {
                    ApiError::not_found(format!(
                        "Image set {id} does not exist in datastore {}",
                        source.datastore_id
                    ))
                })?;
                writable(&set, now, *version)?;
                Some(set)
            }
        };
        let source_document = latest_document(service, &source)?;
        let selected = match &copy.copiable {
            None => source_document,
            Some(copiable) => combine::select(&source_document, copiable).map_err(|why| {
                ApiError::validation("sourceImageSet.DICOMCopies.copiableAttributes", why)
            })?,
        };
        let frames = w.frames(&source, &combine::frame_ids(&selected))?;
        let ds = source.datastore_id.clone();
        let result = match destination {
            None => {
                let series = series_of(&selected);
                if promote {
                    refuse_second_primary(w, &ds, &series)?;
                }
                let set = create(service, w, &ds, promote, selected, COPY, false)?;
                w.add_frames(&set, &frames)?;
                set
            }
            Some(mut destination) => {
                let mut merged = latest_document(service, &destination)?;
                match combine::copy_conflict(&merged, &selected, force) {
                    Some(why) => {
                        append_version(
                            service,
                            w,
                            &mut destination,
                            Outcome::Failed(why),
                            COPY,
                            false,
                        )?;
                        destination
                    }
                    None if promote && !destination.is_primary => {
                        combine::merge(&mut merged, selected);
                        refuse_second_primary(w, &ds, &series_of(&merged))?;
                        let kept = w.all_frames(&destination)?;
                        let set = create(service, w, &ds, true, merged, COPY, force)?;
                        w.add_frames(&set, &kept)?;
                        w.add_frames(&set, &frames)?;
                        lock(
                            service,
                            w,
                            &mut destination,
                            WorkflowStatus::CopyingWithReadOnlyAccess,
                        )?;
                        set
                    }
                    None => {
                        combine::merge(&mut merged, selected);
                        w.add_frames(&destination, &frames)?;
                        append_version(
                            service,
                            w,
                            &mut destination,
                            Outcome::Written(merged),
                            COPY,
                            force,
                        )?;
                        destination
                    }
                }
            }
        };
        lock(
            service,
            w,
            &mut source,
            WorkflowStatus::CopyingWithReadOnlyAccess,
        )?;
        Ok(json!({
            "datastoreId": source.datastore_id,
            "sourceImageSetProperties": properties(service, &source, now),
            "destinationImageSetProperties": properties(service, &result, now),
        }))
    })?;
    Ok(wire::json(&body))
}

/// The series UIDs a document holds.
fn series_of(document: &Json) -> Vec<String> {
    document["Study"]["Series"]
        .as_object()
        .map(|series| series.keys().cloned().collect())
        .unwrap_or_default()
}

/// A primary image set holds one series, and a series has at most one
/// primary image set.
fn refuse_second_primary(
    reader: &Reader<'_>,
    datastore_id: &str,
    series: &[String],
) -> ApiResult<()> {
    if series.len() != 1 {
        return Err(ApiError::validation(
            "promoteToPrimary",
            "a primary image set holds exactly one series",
        ));
    }
    if let Some(existing) = reader.primary_image_set(datastore_id, &series[0])? {
        return Err(ApiError::conflict(format!(
            "Series {} already has the primary image set {}; copy into it instead",
            series[0], existing.id
        )));
    }
    Ok(())
}
