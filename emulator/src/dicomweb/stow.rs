//! STOW-RS: StoreDICOM (`POST /studies`) and StoreDICOMStudy
//! (`POST /studies/{study}`).
//!
//! The body is one Part 10 file (`Content-Type: application/dicom`) or
//! several (`multipart/related; type="application/dicom"`), optionally in
//! `aws-chunked` encoding as SigV4 streaming uploads send it. Every instance
//! goes through the import's reading and frame storage, and the instances
//! are written as an import writes them (one image set per series and
//! grouping attributes, primary or not), all in one transaction. The answer
//! is the PS3.18 store response: `ReferencedSOPSequence` for what was
//! stored, `FailedSOPSequence` with a `FailureReason` for what was not;
//! 200 when everything was stored, 202 when some was, 409 when none was.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use serde_json::{Value as Json, json};

use super::{Call, media};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::import::{self, Batch, Stop};
use crate::metadata::combine::{GroupingKey, grouping_key};
use crate::service::Service;
use crate::store::LosslessStorageFormat;

/// The most a request may carry (the service's documented limit: 1 GB).
pub const MAX_BODY: usize = 1_000_000_000;

/// Processing failure (PS3.4 C.4.2.1.4: `0110`).
const PROCESSING_FAILURE: u16 = 0x0110;
/// The Study Instance UID differs from the one in the path.
const STUDY_MISMATCH: u16 = 0xA901;
/// The part cannot be understood (not DICOM, no UIDs, unsupported pixels).
const CANNOT_UNDERSTAND: u16 = 0xC000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Validation, message)
}

/// The body without its `aws-chunked` framing:
/// `<hex size>[;chunk-signature=…]\r\n<bytes>\r\n`…, ending with a zero-size
/// chunk (and optional trailers).
pub fn decode_aws_chunked(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    loop {
        let line_end = body[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("an aws-chunked chunk header does not end")?
            + at;
        let header = std::str::from_utf8(&body[at..line_end])
            .map_err(|_| "an aws-chunked chunk header is not text")?;
        let size_text = header.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("'{size_text}' is not an aws-chunked chunk size"))?;
        at = line_end + 2;
        if size == 0 {
            return Ok(out);
        }
        let end = at
            .checked_add(size)
            .filter(|end| *end + 2 <= body.len())
            .ok_or("an aws-chunked chunk is shorter than its size")?;
        out.extend_from_slice(&body[at..end]);
        if &body[end..end + 2] != b"\r\n" {
            return Err("an aws-chunked chunk does not end with CRLF".into());
        }
        at = end + 2;
    }
}

/// The Part 10 files of a request body.
fn parts(headers: &HeaderMap, body: Bytes) -> ApiResult<Vec<Bytes>> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let chunked = text("content-encoding")
        .split(',')
        .any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))
        || text("x-amz-content-sha256").starts_with("STREAMING-");
    let body = if chunked {
        let decoded = decode_aws_chunked(&body).map_err(bad)?;
        if let Ok(expected) = text("x-amz-decoded-content-length").parse::<usize>()
            && expected != decoded.len()
        {
            return Err(bad(format!(
                "x-amz-decoded-content-length says {expected} bytes; the chunks hold {}",
                decoded.len()
            )));
        }
        Bytes::from(decoded)
    } else {
        body
    };
    let content_type = media::parse(&text(header::CONTENT_TYPE.as_str()));
    match content_type.essence.as_str() {
        "application/dicom" if body.is_empty() => Ok(Vec::new()),
        "application/dicom" => Ok(vec![body]),
        "multipart/related" => {
            if content_type
                .param("type")
                .is_some_and(|t| !t.eq_ignore_ascii_case("application/dicom"))
            {
                return Err(unsupported());
            }
            let boundary = content_type
                .param("boundary")
                .ok_or_else(|| bad("The multipart/related body names no boundary"))?;
            let parts = media::parse_multipart(&body, boundary).map_err(bad)?;
            Ok(parts.into_iter().map(|(_, bytes)| bytes).collect())
        }
        _ => Err(unsupported()),
    }
}

fn unsupported() -> ApiError {
    bad(
        "StoreDICOM takes Content-Type application/dicom, or multipart/related; type=\"application/dicom\" with a boundary",
    )
}

/// What a part is, as far as it can be read: SOP Class and Instance UIDs.
fn identify(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(file) = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
    else {
        return (None, None);
    };
    let text = |tag| {
        file.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
    };
    (text(tags::SOP_CLASS_UID), text(tags::SOP_INSTANCE_UID))
}

fn item(class: Option<&str>, sop: Option<&str>) -> serde_json::Map<String, Json> {
    let mut item = serde_json::Map::new();
    if let Some(class) = class {
        item.insert("00081150".into(), json!({"vr": "UI", "Value": [class]}));
    }
    if let Some(sop) = sop {
        item.insert("00081155".into(), json!({"vr": "UI", "Value": [sop]}));
    }
    item
}

/// StoreDICOM and StoreDICOMStudy.
pub fn store(
    service: &Service,
    call: &Call,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    media::accepts_json(&call.accept)?;
    let datastore = &call.route.datastore;
    let format = service
        .store()
        .read(|r| -> ApiResult<LosslessStorageFormat> {
            Ok(crate::ops::find_live_datastore(service, r, datastore)?.lossless_storage_format)
        })?;
    let parts = parts(headers, body)?;
    if parts.is_empty() {
        return Err(bad("The request holds no DICOM instance"));
    }
    let mut failed: Vec<Json> = Vec::new();
    let mut referenced: Vec<(String, String, String, String)> = Vec::new();
    // Instances grouped by series and grouping attributes, in arrival order.
    let mut groups: Vec<(String, GroupingKey, Batch)> = Vec::new();
    for (n, bytes) in parts.iter().enumerate() {
        let key = format!("part {}", n + 1);
        let failure = |reason: u16| {
            let (class, sop) = identify(bytes);
            let mut item = item(class.as_deref(), sop.as_deref());
            item.insert("00081197".into(), json!({"vr": "US", "Value": [reason]}));
            Json::Object(item)
        };
        let stored = match import::store_instance(
            service,
            &key,
            bytes,
            format,
            &import::Overrides::default(),
        ) {
            Err(error) => return Err(crate::store::StoreError::from(error).into()),
            Ok(Err(problem)) => {
                let reason = if problem.server_error {
                    PROCESSING_FAILURE
                } else {
                    CANNOT_UNDERSTAND
                };
                failed.push(failure(reason));
                continue;
            }
            Ok(Ok(stored)) => stored,
        };
        let instance = stored.instance();
        if let Some(study) = &call.route.study
            && &instance.study_uid != study
        {
            failed.push(failure(STUDY_MISMATCH));
            continue;
        }
        let class = instance.document["Study"]["Series"][&instance.series_uid]["Instances"]
            [&instance.sop_uid]["DICOM"]["SOPClassUID"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        referenced.push((
            class,
            instance.sop_uid.clone(),
            instance.series_uid.clone(),
            instance.study_uid.clone(),
        ));
        let series = instance.series_uid.clone();
        let key = grouping_key(&instance.document, &series);
        let index = match groups.iter().position(|g| g.0 == series && g.1 == key) {
            Some(index) => index,
            None => {
                groups.push((series, key, Batch::default()));
                groups.len() - 1
            }
        };
        groups[index].2.add(service, stored);
    }
    if !groups.is_empty() {
        service
            .store()
            .write(|w| {
                for (series, key, batch) in groups {
                    import::write_batch(w, service, datastore, (&series, &key), batch)?;
                }
                Ok::<_, Stop>(())
            })
            .map_err(|stop| match stop {
                Stop::Store(error) => ApiError::from(error),
                Stop::Failed(message) => ApiError::new(ErrorCode::InternalServer, message),
                Stop::Gone => ApiError::not_found(format!("Datastore {datastore} does not exist")),
            })?;
    }
    let base = format!("{}/datastore/{datastore}", call.base);
    let mut answer = serde_json::Map::new();
    if let Some(study) = call
        .route
        .study
        .clone()
        .or_else(|| referenced.first().map(|r| r.3.clone()))
    {
        answer.insert(
            "00081190".into(),
            json!({"vr": "UR", "Value": [format!("{base}/studies/{study}")]}),
        );
    }
    if !failed.is_empty() {
        answer.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    if !referenced.is_empty() {
        let items: Vec<Json> = referenced
            .iter()
            .map(|(class, sop, series, study)| {
                let mut item = item(Some(class), Some(sop));
                item.insert(
                    "00081190".into(),
                    json!({"vr": "UR", "Value": [format!("{base}/studies/{study}/series/{series}/instances/{sop}")]}),
                );
                Json::Object(item)
            })
            .collect();
        answer.insert("00081199".into(), json!({"vr": "SQ", "Value": items}));
    }
    let status = match (referenced.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CONFLICT,
    };
    let mut response = media::dicom_json(&Json::Object(answer)).into_response();
    *response.status_mut() = status;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_bodies_are_unframed() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=0\r\n\r\n";
        assert_eq!(decode_aws_chunked(body).unwrap(), b"hello world");
        assert!(decode_aws_chunked(b"5\r\nhel").is_err());
        assert!(decode_aws_chunked(b"zz\r\n").is_err());
        assert!(decode_aws_chunked(b"2\r\nabXX0\r\n\r\n").is_err());
    }
}
