//! WADO-RS: instances as Part 10 files, their frames, their metadata (and
//! a series' metadata) as DICOM JSON, and their bulk data.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value as Json;

use super::media::{self, Part};
use super::part10::{self, Description, Pixels};
use super::{Call, Source, dataset, sources};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::Service;

/// One instance found: where it is and its document node.
struct Found {
    source: Source,
    series: String,
    instance: String,
}

impl Found {
    fn node(&self) -> &Json {
        &self.source.document["Study"]["Series"][&self.series]["Instances"][&self.instance]
    }

    fn stored_syntax(&self) -> String {
        self.node()["StoredTransferSyntaxUID"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("1.2.840.10008.1.2.4.202")
            .to_owned()
    }

    fn frame_ids(&self) -> Vec<String> {
        self.node()["ImageFrames"]
            .as_array()
            .map(|frames| {
                frames
                    .iter()
                    .filter_map(|f| f["ID"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn attributes(&self) -> dicom_object::InMemDicomObject {
        part10::attributes(&self.source.document, &self.series, &self.instance)
            .unwrap_or_else(dicom_object::InMemDicomObject::new_empty)
    }

    /// Where its bulk data lives.
    fn bulk_base(&self, call: &Call) -> String {
        let route = &call.route;
        format!(
            "{}/datastore/{}/studies/{}/series/{}/instances/{}",
            call.base,
            route.datastore,
            route.study.as_deref().unwrap_or_default(),
            self.series,
            self.instance
        )
    }
}

fn label(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// The series the path names, in the image sets addressed (in order).
fn series_sources(service: &Service, call: &Call) -> ApiResult<Vec<Source>> {
    let (study, series) = (label(&call.route.study), label(&call.route.series));
    let found: Vec<Source> = sources(service, call, None)?
        .into_iter()
        .filter(|s| super::study_uid(&s.document) == study)
        .filter(|s| s.document["Study"]["Series"].get(series).is_some())
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "Series {series} of study {study} was not found{}",
            scope(call)
        )));
    }
    Ok(found)
}

fn scope(call: &Call) -> String {
    match call.query.get("imageSetId") {
        Some(id) => format!(" in image set {id}"),
        None => " in the datastore's primary image sets".to_owned(),
    }
}

/// The instance the path names.
fn find_instance(service: &Service, call: &Call) -> ApiResult<Found> {
    let (series, instance) = (label(&call.route.series), label(&call.route.instance));
    for source in series_sources(service, call)? {
        if source.document["Study"]["Series"][series]["Instances"]
            .get(instance)
            .is_some()
        {
            // Every WADO-RS read is a touch of the image set's storage tier.
            service.touch(&source.set);
            return Ok(Found {
                source,
                series: series.to_owned(),
                instance: instance.to_owned(),
            });
        }
    }
    Err(ApiError::not_found(format!(
        "Instance {instance} of series {series} was not found{}",
        scope(call)
    )))
}

/// The stored bytes of the frames `ids` of `found`, in that order.
fn stored_frames(service: &Service, found: &Found, ids: &[String]) -> ApiResult<Vec<Bytes>> {
    let entries = service.store().read(|r| r.frames(&found.source.set, ids))?;
    let mut frames = Vec::with_capacity(ids.len());
    for id in ids {
        let entry = entries.iter().find(|e| &e.frame_id == id);
        match entry.and_then(|e| service.store().blobs().get(&e.blob).ok().flatten()) {
            Some(bytes) => frames.push(bytes),
            None => {
                // Gone only when a deletion erased the image set meanwhile.
                return Err(ApiError::not_found(format!(
                    "Image set {} no longer holds this instance's frames",
                    found.source.set.id
                )));
            }
        }
    }
    Ok(frames)
}

/// GetDICOMInstance: a Part 10 file, Explicit VR Little Endian unless the
/// stored syntax is asked for.
pub fn instance(service: &Service, call: &Call) -> ApiResult<Response> {
    let found = find_instance(service, call)?;
    let stored = found.stored_syntax();
    let form = media::instance_form(&call.accept, &stored)?;
    let attributes = found.attributes();
    let ids = found.frame_ids();
    let frames = stored_frames(service, &found, &ids)?;
    let pixels = if frames.is_empty() {
        Pixels::None
    } else if form.syntax == stored && form.syntax != part10::EXPLICIT_LE {
        Pixels::Encapsulated(frames.iter().map(|f| f.to_vec()).collect())
    } else {
        let description = Description::of(&attributes);
        let mut bytes = Vec::new();
        for frame in &frames {
            bytes.extend(decode(frame, &stored, description)?);
        }
        Pixels::Native(bytes)
    };
    let file = part10::file(attributes, &form.syntax, pixels)
        .map_err(|e| ApiError::new(ErrorCode::InternalServer, e))?;
    let content_type = format!("application/dicom; transfer-syntax={}", form.syntax);
    Ok(if form.multipart {
        media::multipart(
            vec![Part {
                content_type,
                location: None,
                body: Bytes::from(file),
            }],
            "application/dicom",
        )
    } else {
        media::single(&content_type, file)
    })
}

fn decode(frame: &[u8], stored: &str, description: Description) -> ApiResult<Vec<u8>> {
    part10::decode_frame(frame, stored, description)
        .map_err(|e| ApiError::new(ErrorCode::InternalServer, e))
}

/// The 1-based frame numbers of a frame list: comma-separated, unique.
fn frame_numbers(list: &str, count: usize) -> ApiResult<Vec<usize>> {
    let mut numbers = Vec::new();
    for piece in list.split(',') {
        let number: usize = piece.trim().parse().map_err(|_| {
            ApiError::new(
                ErrorCode::Validation,
                format!("The frame list '{list}' must be 1-based frame numbers separated by commas, e.g. 1,2,3"),
            )
        })?;
        if number == 0 {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "Frame numbers start at 1",
            ));
        }
        if numbers.contains(&number) {
            return Err(ApiError::new(
                ErrorCode::Validation,
                format!("Frame {number} is listed twice; each frame may be asked for once"),
            ));
        }
        if number > count {
            return Err(ApiError::not_found(format!(
                "Frame {number} does not exist; the instance has {count} frame{}",
                if count == 1 { "" } else { "s" }
            )));
        }
        numbers.push(number);
    }
    Ok(numbers)
}

/// GetDICOMInstanceFrames: the frames asked for, as a multipart body.
pub fn frames(service: &Service, call: &Call) -> ApiResult<Response> {
    let found = find_instance(service, call)?;
    let stored = found.stored_syntax();
    let ids = found.frame_ids();
    let numbers = frame_numbers(label(&call.route.last), ids.len())?;
    let form = media::frame_form(&call.accept, &stored)?;
    let wanted: Vec<String> = numbers.iter().map(|n| ids[n - 1].clone()).collect();
    let frames = stored_frames(service, &found, &wanted)?;
    let description = Description::of(&found.attributes());
    let location = found.bulk_base(call);
    let mut parts = Vec::with_capacity(frames.len());
    for (number, frame) in numbers.iter().zip(frames) {
        let body = if form.syntax == stored && form.syntax != part10::EXPLICIT_LE {
            frame
        } else {
            Bytes::from(decode(&frame, &stored, description)?)
        };
        let content_type = if form.part_type == "application/octet-stream" {
            format!("application/octet-stream; transfer-syntax={}", form.syntax)
        } else {
            format!("{}; transfer-syntax={}", form.part_type, form.syntax)
        };
        parts.push(Part {
            content_type,
            location: Some(format!("{location}/frames/{number}")),
            body,
        });
    }
    Ok(media::multipart(parts, &form.part_type))
}

/// The DICOM JSON of an instance.
fn instance_json(found: &Found, call: &Call) -> Json {
    dataset::to_json(
        &found.attributes(),
        &found.bulk_base(call),
        &bulk_suffix(call),
    )
}

/// What follows a bulk data URI's hash: the image set it was read from.
fn bulk_suffix(call: &Call) -> String {
    call.query
        .get("imageSetId")
        .map(|id| format!("?imageSetId={id}"))
        .unwrap_or_default()
}

/// GetDICOMInstanceMetadata: an array of one DICOM JSON object.
pub fn instance_metadata(service: &Service, call: &Call) -> ApiResult<Response> {
    media::accepts_json(&call.accept)?;
    let found = find_instance(service, call)?;
    Ok(media::dicom_json(&Json::Array(vec![instance_json(
        &found, call,
    )])))
}

/// GetDICOMSeriesMetadata: every instance of the series, in instance
/// number order.
pub fn series_metadata(service: &Service, call: &Call) -> ApiResult<Response> {
    media::accepts_json(&call.accept)?;
    let series = label(&call.route.series).to_owned();
    let mut instances: Vec<(i64, String, Json)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for source in series_sources(service, call)? {
        service.touch(&source.set);
        let Some(listed) = source.document["Study"]["Series"][&series]["Instances"].as_object()
        else {
            continue;
        };
        let uids: Vec<String> = listed.keys().cloned().collect();
        for uid in uids {
            if !seen.insert(uid.clone()) {
                continue;
            }
            let found = Found {
                source: source.clone(),
                series: series.clone(),
                instance: uid.clone(),
            };
            let number = super::qido::instance_number(found.node());
            instances.push((number, uid, instance_json(&found, call)));
        }
    }
    instances.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(media::dicom_json(&Json::Array(
        instances.into_iter().map(|(_, _, json)| json).collect(),
    )))
}

/// GetDICOMBulkdata: one binary attribute of an instance.
pub fn bulk_data(service: &Service, call: &Call) -> ApiResult<Response> {
    let found = find_instance(service, call)?;
    let hash = label(&call.route.last);
    let bytes = dataset::bulk_data(&found.attributes(), hash).ok_or_else(|| {
        ApiError::not_found(format!("The instance has no bulk data named {hash}"))
    })?;
    let multipart = call.accept.iter().any(|r| r.essence == "multipart/related");
    let single = call
        .accept
        .iter()
        .any(|r| r.essence == "application/octet-stream");
    if single && !multipart {
        return Ok(media::single("application/octet-stream", bytes));
    }
    if !multipart && !call.accept.iter().any(|r| r.essence == "*/*") {
        return Err(ApiError::new(
            ErrorCode::NotAcceptable,
            "Bulk data is sent as multipart/related; type=\"application/octet-stream\"",
        ));
    }
    Ok(media::multipart(
        vec![Part {
            content_type: "application/octet-stream".into(),
            location: Some(format!(
                "{}/bulkdata/{hash}{}",
                found.bulk_base(call),
                bulk_suffix(call)
            )),
            body: Bytes::from(bytes),
        }],
        "application/octet-stream",
    ))
}
