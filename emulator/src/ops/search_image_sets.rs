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
//! are ordered by `sort` or by `updatedAt` descending, then by the order the
//! image sets were created in; deleted image sets are never returned. The
//! search runs on the store's indexes ([`crate::store::Query`]).

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
    // Each member is checked before the first violation is answered (a
    // filter list reports its own first violation).
    let mut v = crate::validate::Violations::default();
    let conditions = match body.value("filters") {
        None => Vec::new(),
        Some(filters) => v.check(parse_filters(filters))?.unwrap_or_default(),
    };
    let sort = v
        .check(body.value("sort").map(parse_sort).transpose())?
        .flatten();
    let (field, descending) = sort.unwrap_or((SortField::UpdatedAt, true));
    let limit = v.check(paging::page_size(&request.query))?.unwrap_or(1);
    v.finish()?;
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
    let query = Query {
        datastore_id: datastore_id.to_owned(),
        conditions,
        sort: field,
        descending,
        after,
        limit,
    };
    let mut hits = service.store().read(|r| -> ApiResult<_> {
        find_live_datastore(service, r, datastore_id)?;
        Ok(r.search(&query)?)
    })?;
    let more = hits.len() > limit;
    hits.truncate(limit);
    let now = service.now();
    let summaries: Vec<Value> = hits.iter().map(|(_, set)| summary(set, now)).collect();
    let mut response = json!({ "imageSetsMetadataSummaries": summaries });
    if let Some(sort) = body.value("sort") {
        response["sort"] = sort.clone();
    }
    if let (true, Some((key, set))) = (more, hits.last()) {
        response["nextToken"] = json!(paging::encode(
            OPERATION,
            &encode_cursor(key, set.row, &criteria)
        ));
    }
    Ok(wire::json(&response))
}

/// `ImageSetsMetadataSummary`.
fn summary(set: &ImageSet, now: crate::clock::Timestamp) -> Value {
    let latest = set.latest();
    json!({
        "imageSetId": set.id,
        "version": latest.version_id,
        "createdAt": set.created_at,
        "updatedAt": set.updated_at(),
        "isPrimary": set.is_primary,
        "lastAccessedAt": set.last_accessed_at,
        "storageTier": set.storage_tier(now),
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

fn encode_cursor(key: &SortKey, row: i64, criteria: &str) -> String {
    let key = match key {
        SortKey::Millis(ms) => format!("m{ms}"),
        SortKey::Text(text) => format!("t{text}"),
    };
    format!("{:016x}|{row}|{key}", criteria_hash(criteria))
}

fn decode_cursor(position: &str, criteria: &str) -> ApiResult<Cursor> {
    let invalid = || {
        ApiError::validation(
            "nextToken",
            "Member must be a token returned by SearchImageSets for the same search criteria",
        )
    };
    let mut parts = position.splitn(3, '|');
    let (Some(hash), Some(row), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
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
        row: row.parse().map_err(|_| invalid())?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::http::{Method, StatusCode};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::clock::Timestamp;
    use crate::store::DicomTags;
    use crate::testing::{active_datastore, send, service};

    /// One synthetic image set of the model.
    #[derive(Debug, Clone)]
    struct Model {
        patient: u8,
        study: u8,
        primary: bool,
        created: u64,
        updated_after: u64,
        date: Option<(u8, Option<u8>)>,
    }

    fn model() -> impl Strategy<Value = Model> {
        (
            0u8..3,
            0u8..3,
            any::<bool>(),
            0u64..20,
            0u64..5,
            proptest::option::of((0u8..4, proptest::option::of(0u8..3))),
        )
            .prop_map(
                |(patient, study, primary, created, updated_after, date)| Model {
                    patient,
                    study,
                    primary,
                    created,
                    updated_after,
                    date,
                },
            )
    }

    #[derive(Debug, Clone)]
    enum Filter {
        Patient(u8),
        Study(u8),
        Primary(bool),
        Created(u64, u64),
        Updated(u64, u64),
        StudyDate(u8, u8),
    }

    fn filter() -> impl Strategy<Value = Filter> {
        prop_oneof![
            (0u8..3).prop_map(Filter::Patient),
            (0u8..3).prop_map(Filter::Study),
            any::<bool>().prop_map(Filter::Primary),
            (0u64..20, 0u64..20).prop_map(|(a, b)| Filter::Created(a.min(b), a.max(b))),
            (0u64..25, 0u64..25).prop_map(|(a, b)| Filter::Updated(a.min(b), a.max(b))),
            (0u8..4, 0u8..4).prop_map(|(a, b)| Filter::StudyDate(a.min(b), a.max(b))),
        ]
    }

    const BASE: u64 = 1_700_000_000_000;

    fn date(day: u8) -> String {
        format!("2024010{}", day + 1)
    }

    impl Model {
        fn tags(&self) -> DicomTags {
            DicomTags {
                patient_id: Some(format!("P{}", self.patient)),
                study_instance_uid: Some(format!("1.2.{}", self.study)),
                study_date: self.date.map(|(d, _)| date(d)),
                study_time: self
                    .date
                    .and_then(|(_, t)| t.map(|t| format!("{:02}0000", t * 8))),
                ..DicomTags::default()
            }
        }

        fn matches(&self, filter: &Filter) -> bool {
            let updated = self.created + self.updated_after;
            match *filter {
                Filter::Patient(p) => self.patient == p,
                Filter::Study(s) => self.study == s,
                Filter::Primary(p) => self.primary == p,
                Filter::Created(a, b) => (a..=b).contains(&self.created),
                Filter::Updated(a, b) => (a..=b).contains(&updated),
                // A bound without a time is midnight: the upper day's later times fall outside.
                Filter::StudyDate(a, b) => match self.date {
                    None => false,
                    Some((d, t)) => d >= a && (d < b || (d == b && t.unwrap_or(0) == 0)),
                },
            }
        }

        fn key(&self, sort: &str) -> String {
            match sort {
                "createdAt" => format!("{:020}", self.created),
                "DICOMStudyDateAndTime" => self.tags().study_date_and_time().unwrap_or_default(),
                _ => format!("{:020}", self.created + self.updated_after),
            }
        }
    }

    fn wire(filter: &Filter) -> Value {
        let seconds = |ms: u64| json!((BASE + ms * 1000) as f64 / 1000.0);
        match *filter {
            Filter::Patient(p) => {
                json!({"operator": "EQUAL", "values": [{"DICOMPatientId": format!("P{p}")}]})
            }
            Filter::Study(s) => {
                json!({"operator": "EQUAL", "values": [{"DICOMStudyInstanceUID": format!("1.2.{s}")}]})
            }
            Filter::Primary(p) => json!({"operator": "EQUAL", "values": [{"isPrimary": p}]}),
            Filter::Created(a, b) => {
                json!({"operator": "BETWEEN", "values": [{"createdAt": seconds(a)}, {"createdAt": seconds(b)}]})
            }
            Filter::Updated(a, b) => {
                json!({"operator": "BETWEEN", "values": [{"updatedAt": seconds(a)}, {"updatedAt": seconds(b)}]})
            }
            Filter::StudyDate(a, b) => json!({"operator": "BETWEEN", "values": [
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": date(a)}},
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": date(b)}}]}),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn paging_yields_every_match_once_in_order(
            sets in proptest::collection::vec(model(), 0..30),
            filters in proptest::collection::vec(filter(), 0..=2),
            sort in proptest::option::of((0usize..3, any::<bool>())),
            page in 1usize..8,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (service, clock) = service();
                let ds = active_datastore(&service, &clock).await;
                let mut ids = BTreeMap::new();
                for (n, set) in sets.iter().enumerate() {
                    let id = format!("{n:032x}");
                    let created = Timestamp::from_millis(BASE + set.created * 1000);
                    let updated = Timestamp::from_millis(BASE + (set.created + set.updated_after) * 1000);
                    crate::testing::plant(&service, crate::testing::Planted {
                        datastore_id: &ds,
                        image_set_id: &id,
                        primary: set.primary,
                        created_at: created,
                        updated_at: updated,
                        tags: set.tags(),
                    }, None);
                    ids.insert(id, set.clone());
                }
                let fields = ["updatedAt", "createdAt", "DICOMStudyDateAndTime"];
                let (field, descending) = sort.map_or(("updatedAt", true), |(f, d)| (fields[f], d));
                let mut expected: Vec<(String, String)> = ids
                    .iter()
                    .filter(|(_, m)| filters.iter().all(|f| m.matches(f)))
                    .map(|(id, m)| (m.key(field), id.clone()))
                    .collect();
                expected.sort();
                if descending {
                    expected.reverse();
                }
                let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

                let mut criteria = json!({});
                if !filters.is_empty() {
                    criteria["filters"] = filters.iter().map(wire).collect();
                }
                if sort.is_some() {
                    criteria["sort"] = json!({"sortField": field, "sortOrder": if descending { "DESC" } else { "ASC" }});
                }
                let mut got = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let mut uri = format!("/datastore/{ds}/searchImageSets?maxResults={page}");
                    if let Some(t) = &token {
                        uri.push_str(&format!("&nextToken={t}"));
                    }
                    let (status, _, body) = send(&service, Method::POST, &uri, &criteria.to_string()).await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                    let summaries = body["imageSetsMetadataSummaries"].as_array().unwrap();
                    assert!(summaries.len() <= page);
                    got.extend(summaries.iter().map(|s| s["imageSetId"].as_str().unwrap().to_owned()));
                    match body["nextToken"].as_str() {
                        Some(t) => token = Some(t.to_owned()),
                        None => break,
                    }
                }
                assert_eq!(got, expected, "criteria {criteria}");
            });
        }
    }

    #[tokio::test]
    async fn invalid_criteria_are_validation_errors() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let uri = format!("/datastore/{ds}/searchImageSets");
        for (body, needle) in [
            (json!({"filters": []}), "between 1 and 2"),
            (json!({"filters": [1, 2, 3]}), "between 1 and 2"),
            (
                json!({"filters": [{"operator": "EQUAL", "values": [{"DICOMModality": "CT"}]}]}),
                "not a search attribute",
            ),
            (
                json!({"filters": [{"operator": "EQUAL", "values": [{"createdAt": 1}]}]}),
                "BETWEEN",
            ),
            (
                json!({"filters": [{"operator": "BETWEEN", "values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}]}]}),
                "EQUAL",
            ),
            (
                json!({"filters": [{"operator": "BETWEEN", "values": [{"createdAt": 5}, {"createdAt": 1}]}]}),
                "lower bound",
            ),
            (
                json!({"filters": [{"operator": "BETWEEN", "values": [{"createdAt": 1}, {"updatedAt": 5}]}]}),
                "one attribute",
            ),
            (
                json!({"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "a", "DICOMStudyId": "b"}]}]}),
                "Exactly one",
            ),
            (
                json!({"filters": [{"operator": "LIKE", "values": [{"DICOMPatientId": "a"}]}]}),
                "EQUAL, BETWEEN",
            ),
            (
                json!({"filters": [{"operator": "EQUAL", "values": [{"DICOMStudyInstanceUID": "abc"}]}]}),
                "[0-9.]+",
            ),
            (
                json!({"filters": [{"operator": "BETWEEN", "values": [
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": "2024-01-01"}},
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20240102"}}]}]}),
                "YYYYMMDD",
            ),
            (
                // The model's documentation says yyMMdd; the service's examples are YYYYMMDD.
                json!({"filters": [{"operator": "BETWEEN", "values": [
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": "240101"}},
                {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20240102"}}]}]}),
                "YYYYMMDD",
            ),
            (
                json!({"sort": {"sortField": "name", "sortOrder": "ASC"}}),
                "sortField",
            ),
            (json!({"sort": {"sortField": "createdAt"}}), "sortOrder"),
        ] {
            let (status, code, answer) =
                send(&service, Method::POST, &uri, &body.to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(code.as_deref(), Some("ValidationException"));
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(needle), "{body}: {message}");
        }
        let (status, _, _) = send(
            &service,
            Method::POST,
            &format!("{uri}?nextToken=abcd"),
            "{}",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a token not from this search"
        );
    }

    #[tokio::test]
    async fn a_next_token_is_refused_with_other_criteria() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        for n in 0..3 {
            crate::testing::plant_image_set(&service, &ds, &format!("{n:032x}"));
        }
        let uri = format!("/datastore/{ds}/searchImageSets?maxResults=1");
        let (status, _, first) = send(&service, Method::POST, &uri, "{}").await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let token = first["nextToken"].as_str().expect("more pages").to_owned();
        let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let next = format!("{uri}&nextToken={encoded}");
        let (status, _, _) = send(&service, Method::POST, &next, "{}").await;
        assert_eq!(status, StatusCode::OK, "the same criteria go on");
        let other = json!({"sort": {"sortField": "createdAt", "sortOrder": "ASC"}});
        let (status, code, answer) = send(&service, Method::POST, &next, &other.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code.as_deref(), Some("ValidationException"));
        assert!(
            answer["message"].as_str().unwrap().contains("nextToken"),
            "{answer}"
        );
    }
}
