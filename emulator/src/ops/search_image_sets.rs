//! SearchImageSets: `POST /datastore/{datastoreId}/searchImageSets?maxResults=&nextToken=`,
//! body `SearchCriteria` (`{}` or absent for everything).
//!
//! Filters (at most two, both must hold):
//! - `EQUAL` with one value: `DICOMPatientId`, `DICOMAccessionNumber`,
//!   `DICOMStudyId`, `DICOMStudyInstanceUID`, `DICOMSeriesInstanceUID` (exact,
//!   case-sensitive), or `isPrimary`;
//! - `BETWEEN` with two values of one attribute, lower bound first, both
//!   inclusive: `createdAt`, `updatedAt` or `DICOMStudyDateAndTime`.
//!
//! Any other shape is a `ValidationException` naming what is wrong. Results
//! are ordered by `sort` or by `updatedAt` descending, then by image set ID;
//! deleted image sets are never returned. The search runs on the index
//! ([`crate::store::SearchIndex`]).

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::{
    Attribute, Condition, Cursor, ImageSet, Query, SortField, SortKey, normalized_date_time,
};
use crate::wire::{self, JsonBody};

use super::{Request, find_live_datastore, paging};

const OPERATION: &str = "SearchImageSets";

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let datastore_id = request.label(0);
    let body = JsonBody::parse(&request.body)?;
    let conditions = match body.value("filters") {
        None => Vec::new(),
        Some(filters) => parse_filters(filters)?,
    };
    let sort = body.value("sort").map(parse_sort).transpose()?;
    let (field, descending) = sort.unwrap_or((SortField::UpdatedAt, true));
    let limit = paging::page_size(&request.query)?;
    // The token remembers the criteria it was issued for.
    let criteria = format!(
        "{}|{}",
        body.value("filters")
            .map_or(String::new(), Value::to_string),
        body.value("sort").map_or(String::new(), Value::to_string)
    );
    let after = match request.query.next_token()? {
        Some(token) => Some(decode_cursor(
            &paging::decode(OPERATION, token)?,
            &criteria,
        )?),
        None => None,
    };
    let store = service.store();
    find_live_datastore(service, &store, datastore_id)?;
    let query = Query {
        datastore_id: datastore_id.to_owned(),
        conditions,
        sort: field,
        descending,
        after,
        limit,
    };
    let mut hits = store.index.search(&query);
    let more = hits.len() > limit;
    hits.truncate(limit);
    let summaries: Vec<Value> = hits
        .iter()
        .filter_map(|(_, id)| store.image_sets.get(id))
        .map(summary)
        .collect();
    let mut response = json!({ "imageSetsMetadataSummaries": summaries });
    if let Some(sort) = body.value("sort") {
        response["sort"] = sort.clone();
    }
    if let (true, Some((key, id))) = (more, hits.last()) {
        response["nextToken"] = json!(paging::encode(
            OPERATION,
            &encode_cursor(key, id, &criteria)
        ));
    }
    Ok(wire::json(&response))
}

/// `ImageSetsMetadataSummary`.
fn summary(set: &ImageSet) -> Value {
    let latest = set.latest();
    json!({
        "imageSetId": set.id,
        "version": latest.version_id,
        "createdAt": set.created_at,
        "updatedAt": set.updated_at(),
        "isPrimary": set.is_primary,
        "storageTier": "FREQUENT_ACCESS",
        "DICOMTags": latest.tags.to_wire(),
    })
}

fn parse_filters(filters: &Value) -> ApiResult<Vec<Condition>> {
    let filters = filters
        .as_array()
        .ok_or_else(|| ApiError::validation("searchCriteria.filters", "Member must be a list"))?;
    if filters.is_empty() || filters.len() > 2 {
        return Err(ApiError::validation(
            "searchCriteria.filters",
            "Member must have between 1 and 2 filters",
        ));
    }
    filters
        .iter()
        .enumerate()
        .map(|(n, filter)| parse_filter(&format!("searchCriteria.filters.{}", n + 1), filter))
        .collect()
}

fn parse_filter(field: &str, filter: &Value) -> ApiResult<Condition> {
    let operator = filter["operator"].as_str().ok_or_else(|| {
        ApiError::validation(&format!("{field}.operator"), "Member must not be null")
    })?;
    let values = filter["values"].as_array().ok_or_else(|| {
        ApiError::validation(&format!("{field}.values"), "Member must not be null")
    })?;
    if values.is_empty() || values.len() > 2 {
        return Err(ApiError::validation(
            &format!("{field}.values"),
            "Member must have between 1 and 2 values",
        ));
    }
    let values: Vec<(&str, &Value)> = values
        .iter()
        .enumerate()
        .map(|(n, value)| match value.as_object() {
            Some(object) if object.len() == 1 => {
                let (name, v) = object.iter().next().expect("one member");
                Ok((name.as_str(), v))
            }
            _ => Err(ApiError::validation(
                &format!("{field}.values.{}", n + 1),
                "Exactly one member of SearchByAttributeValue must be set",
            )),
        })
        .collect::<ApiResult<_>>()?;
    match operator {
        "EQUAL" => {
            let [(name, value)] = values[..] else {
                return Err(ApiError::validation(
                    &format!("{field}.values"),
                    "The EQUAL operator takes exactly one value",
                ));
            };
            equal(field, name, value)
        }
        "BETWEEN" => {
            let [(low_name, low), (high_name, high)] = values[..] else {
                return Err(ApiError::validation(
                    &format!("{field}.values"),
                    "The BETWEEN operator takes exactly two values: the lower and the upper bound",
                ));
            };
            if low_name != high_name {
                return Err(ApiError::validation(
                    &format!("{field}.values"),
                    format!(
                        "The bounds of BETWEEN must name one attribute, not {low_name} and {high_name}"
                    ),
                ));
            }
            between(field, low_name, low, high)
        }
        other => Err(ApiError::validation(
            &format!("{field}.operator"),
            format!("Member must be one of: EQUAL, BETWEEN (got {other})"),
        )),
    }
}

fn equal(field: &str, name: &str, value: &Value) -> ApiResult<Condition> {
    let attribute = match name {
        "DICOMPatientId" => Attribute::PatientId,
        "DICOMAccessionNumber" => Attribute::AccessionNumber,
        "DICOMStudyId" => Attribute::StudyId,
        "DICOMStudyInstanceUID" => Attribute::StudyInstanceUid,
        "DICOMSeriesInstanceUID" => Attribute::SeriesInstanceUid,
        "isPrimary" => {
            return value.as_bool().map(Condition::IsPrimary).ok_or_else(|| {
                ApiError::validation(
                    &format!("{field}.values.isPrimary"),
                    "Member must be a boolean",
                )
            });
        }
        "createdAt" | "updatedAt" | "DICOMStudyDateAndTime" => {
            return Err(ApiError::validation(
                &format!("{field}.operator"),
                format!("{name} is searched with BETWEEN and two bounds, not EQUAL"),
            ));
        }
        other => return Err(unknown_attribute(field, other)),
    };
    let member = format!("{field}.values.{name}");
    let text = value
        .as_str()
        .ok_or_else(|| ApiError::validation(&member, "Member must be a string"))?;
    crate::validate::length(&member, text, 0, 512)?;
    if matches!(
        attribute,
        Attribute::StudyInstanceUid | Attribute::SeriesInstanceUid
    ) && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(ApiError::validation(
            &member,
            "Member must satisfy regular expression pattern: [0-9.]+",
        ));
    }
    Ok(Condition::Equal(attribute, text.to_owned()))
}

fn between(field: &str, name: &str, low: &Value, high: &Value) -> ApiResult<Condition> {
    let member = format!("{field}.values.{name}");
    let (field_kind, low, high) = match name {
        "createdAt" | "updatedAt" => {
            let millis = |v: &Value| {
                v.as_f64()
                    .filter(|s| *s >= 0.0 && s.is_finite())
                    .map(|s| SortKey::Millis((s * 1000.0).round() as u64))
                    .ok_or_else(|| {
                        ApiError::validation(&member, "Member must be a timestamp in epoch seconds")
                    })
            };
            let kind = if name == "createdAt" {
                SortField::CreatedAt
            } else {
                SortField::UpdatedAt
            };
            (kind, millis(low)?, millis(high)?)
        }
        "DICOMStudyDateAndTime" => (
            SortField::StudyDateAndTime,
            study_date_and_time(&member, low)?,
            study_date_and_time(&member, high)?,
        ),
        "DICOMPatientId"
        | "DICOMAccessionNumber"
        | "DICOMStudyId"
        | "DICOMStudyInstanceUID"
        | "DICOMSeriesInstanceUID"
        | "isPrimary" => {
            return Err(ApiError::validation(
                &format!("{field}.operator"),
                format!("{name} is searched with EQUAL and one value, not BETWEEN"),
            ));
        }
        other => return Err(unknown_attribute(field, other)),
    };
    if low > high {
        return Err(ApiError::validation(
            &member,
            "The lower bound of BETWEEN must not be after the upper bound",
        ));
    }
    Ok(Condition::Between(field_kind, low, high))
}

/// `{"DICOMStudyDate": "YYYYMMDD", "DICOMStudyTime"?: "HHMMSS[.FFFFFF]"}`.
fn study_date_and_time(member: &str, value: &Value) -> ApiResult<SortKey> {
    let object: &Map<String, Value> = value
        .as_object()
        .ok_or_else(|| ApiError::validation(member, "Member must be a structure"))?;
    let date = object
        .get("DICOMStudyDate")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::validation(
                &format!("{member}.DICOMStudyDate"),
                "Member must not be null",
            )
        })?;
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(
            &format!("{member}.DICOMStudyDate"),
            "Member must be a date in the form YYYYMMDD",
        ));
    }
    let time = match object.get("DICOMStudyTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(time)) => {
            let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
            let valid = matches!(whole.len(), 2 | 4 | 6)
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.len() <= 6
                && fraction.bytes().all(|b| b.is_ascii_digit());
            if !valid {
                return Err(ApiError::validation(
                    &format!("{member}.DICOMStudyTime"),
                    "Member must be a time in the form HHMMSS.FFFFFF",
                ));
            }
            Some(time.as_str())
        }
        Some(_) => {
            return Err(ApiError::validation(
                &format!("{member}.DICOMStudyTime"),
                "Member must be a string",
            ));
        }
    };
    Ok(SortKey::Text(normalized_date_time(date, time)))
}

fn unknown_attribute(field: &str, name: &str) -> ApiError {
    ApiError::validation(
        &format!("{field}.values"),
        format!(
            "{name} is not a search attribute; use one of DICOMPatientId, DICOMAccessionNumber, DICOMStudyId, DICOMStudyInstanceUID, DICOMSeriesInstanceUID, createdAt, updatedAt, DICOMStudyDateAndTime, isPrimary"
        ),
    )
}

fn parse_sort(sort: &Value) -> ApiResult<(SortField, bool)> {
    let field = match sort["sortField"].as_str() {
        Some("updatedAt") => SortField::UpdatedAt,
        Some("createdAt") => SortField::CreatedAt,
        Some("DICOMStudyDateAndTime") => SortField::StudyDateAndTime,
        _ => {
            return Err(ApiError::validation(
                "searchCriteria.sort.sortField",
                "Member must be one of: updatedAt, createdAt, DICOMStudyDateAndTime",
            ));
        }
    };
    let descending = match sort["sortOrder"].as_str() {
        Some("ASC") => false,
        Some("DESC") => true,
        _ => {
            return Err(ApiError::validation(
                "searchCriteria.sort.sortOrder",
                "Member must be one of: ASC, DESC",
            ));
        }
    };
    Ok((field, descending))
}

fn criteria_hash(criteria: &str) -> u64 {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    criteria.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn encode_cursor(key: &SortKey, id: &str, criteria: &str) -> String {
    let key = match key {
        SortKey::Millis(ms) => format!("m{ms}"),
        SortKey::Text(text) => format!("t{text}"),
    };
    format!("{:016x}|{id}|{key}", criteria_hash(criteria))
}

fn decode_cursor(position: &str, criteria: &str) -> ApiResult<Cursor> {
    let invalid = || {
        ApiError::validation(
            "nextToken",
            "Member must be a token returned by SearchImageSets for the same search criteria",
        )
    };
    let mut parts = position.splitn(3, '|');
    let (Some(hash), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if hash != format!("{:016x}", criteria_hash(criteria)) {
        return Err(invalid());
    }
    let key = if let Some(ms) = key.strip_prefix('m') {
        SortKey::Millis(ms.parse().map_err(|_| invalid())?)
    } else if let Some(text) = key.strip_prefix('t') {
        SortKey::Text(text.to_owned())
    } else {
        return Err(invalid());
    };
    Ok(Cursor {
        key,
        image_set_id: id.to_owned(),
    })
}
