//! QIDO-RS: studies, series and instances matching a query, as DICOM JSON.
//!
//! - Keys are given by tag (`00100020`) or keyword (`PatientID`); only the
//!   documented keys of each level are accepted, anything else is a 400
//!   naming the keys that are. `limit`, `offset`, `includefield` (`all` or
//!   tags and keywords, repeated or comma-separated) and
//!   `fuzzymatching=false` are the other parameters.
//! - Matching (PS3.4 C.2.2.2): single values exactly, person names without
//!   regard to case; `*` and `?` wildcards in text other than dates, times
//!   and UIDs; `A-B`, `A-` and `-B` ranges on dates and times; lists of
//!   UIDs separated by `\` or `,`. A multi-valued attribute matches when one
//!   of its values does.
//! - Order: studies by last update, newest first; series by SeriesNumber;
//!   instances by InstanceNumber. At most 10,000 records are reachable.

use std::collections::{BTreeMap, BTreeSet};

use axum::response::Response;
use dicom_core::header::Header;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value as Json};

use super::{Action, Call, dataset, media};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::Service;
use crate::store::DicomTags;

/// The most records a search can reach.
pub const MAX_RECORDS: usize = 10_000;

const STUDY_KEYS: [Tag; 12] = [
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::ACCESSION_NUMBER,
    tags::MODALITIES_IN_STUDY,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_DESCRIPTION,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_BIRTH_TIME,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_ID,
];
const SERIES_KEYS: [Tag; 5] = [
    tags::MODALITY,
    tags::SERIES_INSTANCE_UID,
    tags::SERIES_NUMBER,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
    tags::PERFORMED_PROCEDURE_STEP_START_TIME,
];
const INSTANCE_KEYS: [Tag; 3] = [
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::INSTANCE_NUMBER,
];

/// What each level returns by default (PS3.18 Tables 10.6.3-3 to -5, for
/// the attributes an image set holds).
const STUDY_RETURN: [Tag; 15] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::ACCESSION_NUMBER,
    tags::INSTANCE_AVAILABILITY,
    tags::MODALITIES_IN_STUDY,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_ID,
    tags::NUMBER_OF_STUDY_RELATED_SERIES,
];
const STUDY_RETURN_MORE: [Tag; 2] = [
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
    tags::STUDY_DESCRIPTION,
];
const SERIES_RETURN: [Tag; 8] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::MODALITY,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::SERIES_DESCRIPTION,
    tags::SERIES_INSTANCE_UID,
    tags::SERIES_NUMBER,
    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
];
const INSTANCE_RETURN: [Tag; 10] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::INSTANCE_AVAILABILITY,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::INSTANCE_NUMBER,
    tags::ROWS,
    tags::COLUMNS,
    tags::BITS_ALLOCATED,
    tags::NUMBER_OF_FRAMES,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Study,
    Series,
    Instance,
}

/// One matching condition.
#[derive(Debug, Clone)]
struct Filter {
    tag: Tag,
    value: String,
}

/// A parsed query.
#[derive(Debug)]
struct Search {
    filters: Vec<Filter>,
    include_all: bool,
    include: BTreeSet<Tag>,
    limit: usize,
    offset: usize,
}

fn key_name(tag: Tag) -> String {
    let keyword = crate::metadata::keyword(tag);
    format!("{keyword} ({:04X}{:04X})", tag.group(), tag.element())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Validation, message)
}

fn parse(call: &Call, level: Level) -> ApiResult<Search> {
    let mut allowed: Vec<Tag> = STUDY_KEYS.to_vec();
    if level != Level::Study {
        allowed.extend(SERIES_KEYS);
    }
    if level == Level::Instance {
        allowed.extend(INSTANCE_KEYS);
    }
    let mut search = Search {
        filters: Vec::new(),
        include_all: false,
        include: BTreeSet::new(),
        limit: MAX_RECORDS,
        offset: 0,
    };
    for (name, value) in call.query.pairs() {
        match name {
            "imageSetId" => {}
            "limit" | "offset" => {
                let n: usize = value.trim().parse().map_err(|_| {
                    bad(format!(
                        "{name} must be a whole number of 0 or more, e.g. {name}=10"
                    ))
                })?;
                if name == "limit" {
                    search.limit = n.min(MAX_RECORDS);
                } else {
                    search.offset = n;
                }
            }
            "fuzzymatching" => {
                if value != "false" {
                    return Err(bad(
                        "fuzzymatching is not supported; leave it out or set it to false",
                    ));
                }
            }
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        search.include_all = true;
                    } else {
                        let tag = dataset::tag_of(field).ok_or_else(|| {
                            bad(format!("includefield '{field}' is neither a tag (8 hex digits) nor a keyword"))
                        })?;
                        search.include.insert(tag);
                    }
                }
            }
            key => {
                let tag = dataset::tag_of(key)
                    .filter(|t| allowed.contains(t))
                    .ok_or_else(|| {
                        bad(format!(
                            "'{key}' is not a search key here; the keys are {}",
                            allowed
                                .iter()
                                .map(|t| key_name(*t))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                search.filters.push(Filter {
                    tag,
                    value: value.to_owned(),
                });
            }
        }
    }
    Ok(search)
}

/// The text values of `tag` in `record`.
fn texts(record: &InMemDicomObject, tag: Tag) -> Option<Vec<String>> {
    let element = record.element(tag).ok()?;
    let values: Vec<String> = element
        .to_multi_str()
        .ok()?
        .iter()
        .map(|s| s.trim_matches(['\0', ' ']).to_owned())
        .collect();
    Some(values)
}

fn wildcard(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| wildcard(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && wildcard(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && wildcard(rest, &text[1..]),
    }
}

/// Whether one value matches `pattern` for an attribute of `vr`.
fn value_matches(vr: VR, pattern: &str, value: &str) -> bool {
    match vr {
        VR::UI => pattern
            .split(['\\', ','])
            .map(str::trim)
            .any(|uid| uid == value),
        VR::DA | VR::TM | VR::DT => match pattern.split_once('-') {
            Some((from, to)) => {
                let value = value.trim();
                (from.is_empty() || value >= from.trim())
                    && (to.is_empty()
                        || value.get(..to.trim().len().max(1)).unwrap_or(value) <= to.trim())
            }
            None => value == pattern,
        },
        _ => {
            let (pattern, value) = if vr == VR::PN {
                (pattern.to_uppercase(), value.to_uppercase())
            } else {
                (pattern.to_owned(), value.to_owned())
            };
            if pattern.contains(['*', '?']) {
                let p: Vec<char> = pattern.chars().collect();
                let v: Vec<char> = value.chars().collect();
                wildcard(&p, &v)
            } else {
                pattern == value
            }
        }
    }
}

fn matches(record: &InMemDicomObject, filters: &[Filter]) -> bool {
    filters.iter().all(|filter| {
        let pattern = filter.value.trim();
        if pattern.is_empty() || pattern == "*" {
            return true;
        }
        let vr = dataset::vr_of(filter.tag, None);
        texts(record, filter.tag)
            .is_some_and(|values| values.iter().any(|v| value_matches(vr, pattern, v)))
    })
}

fn put_text(record: &mut InMemDicomObject, tag: Tag, vr: VR, values: Vec<String>) {
    record.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::Strs(values.into()),
    ));
}

fn level_object(node: &Json, recorded: Option<&Map<String, Json>>) -> InMemDicomObject {
    dataset::object(node["DICOM"].as_object().unwrap_or(&Map::new()), recorded)
}

/// The InstanceNumber of an instance node, or `i64::MAX` without one.
pub fn instance_number(node: &Json) -> i64 {
    number(&node["DICOM"]["InstanceNumber"])
}

fn number(value: &Json) -> i64 {
    match value {
        Json::String(text) => text.trim().parse().unwrap_or(i64::MAX),
        Json::Number(n) => n.as_i64().unwrap_or(i64::MAX),
        _ => i64::MAX,
    }
}

fn merge(into: &mut InMemDicomObject, from: InMemDicomObject) {
    for element in from {
        into.put(element);
    }
}

/// The JSON of `record` restricted to what the search returns.
fn output(record: &InMemDicomObject, search: &Search, defaults: &[Tag], call: &Call) -> Json {
    let keep: BTreeSet<Tag> = defaults
        .iter()
        .copied()
        .chain(search.filters.iter().map(|f| f.tag))
        .chain(search.include.iter().copied())
        .collect();
    let mut shown = InMemDicomObject::new_empty();
    for element in record {
        if search.include_all || keep.contains(&element.tag()) {
            shown.put(element.clone());
        }
    }
    dataset::to_json(&shown, &call.base, "")
}

/// SearchDICOMStudies, SearchDICOMSeries and SearchDICOMInstances.
pub fn search(service: &Service, call: &Call) -> ApiResult<Response> {
    search_with(service, call, true)
}

/// The studies that can hold a match, when a filter names them through an
/// indexed attribute (StudyInstanceUID, SeriesInstanceUID, PatientID,
/// AccessionNumber, StudyID) with exact values: only their image sets are
/// read, instead of every primary image set of the datastore. A record
/// matching such a filter takes the value from an image set whose indexed
/// value is the same (both trimmed), so no match is left out. The one
/// exception is malformed data: an attribute of value multiplicity 1 given
/// several values is indexed by its first, so a search for another of them
/// does not find it (a full scan would).
fn candidate_studies(
    service: &Service,
    call: &Call,
    search: &Search,
) -> ApiResult<Option<BTreeSet<String>>> {
    use crate::store::Attribute;

    if call.route.study.is_some() || call.query.get("imageSetId").is_some() {
        return Ok(None);
    }
    for filter in &search.filters {
        let attribute = match filter.tag {
            tags::STUDY_INSTANCE_UID => Attribute::StudyInstanceUid,
            tags::SERIES_INSTANCE_UID => Attribute::SeriesInstanceUid,
            tags::PATIENT_ID => Attribute::PatientId,
            tags::ACCESSION_NUMBER => Attribute::AccessionNumber,
            tags::STUDY_ID => Attribute::StudyId,
            _ => continue,
        };
        let pattern = filter.value.trim();
        let values: Vec<&str> = if dataset::vr_of(filter.tag, None) == VR::UI {
            // A list of UIDs matches any of them.
            pattern
                .split(['\\', ','])
                .map(str::trim)
                .filter(|uid| !uid.is_empty())
                .collect()
        } else if pattern.is_empty() || pattern.contains(['*', '?']) {
            continue;
        } else {
            vec![pattern]
        };
        if values.is_empty() {
            continue;
        }
        if attribute == Attribute::StudyInstanceUid {
            return Ok(Some(values.into_iter().map(str::to_owned).collect()));
        }
        let datastore = &call.route.datastore;
        let studies = service.store().read(|r| -> ApiResult<BTreeSet<String>> {
            let mut studies = BTreeSet::new();
            for value in values {
                for set in r.primaries_where(datastore, attribute, value)? {
                    studies.extend(set.latest().tags.study_instance_uid.clone());
                }
            }
            Ok(studies)
        })?;
        return Ok(Some(studies));
    }
    Ok(None)
}

/// What an image set's summary says of an attribute's value in its
/// document.
enum Summarized<'a> {
    /// The value (the first, were there several).
    Value(&'a str),
    /// No value.
    Absent,
    /// The summary cannot tell.
    Unknown,
}

/// What `summary` says of `tag`: the Patient- and Study-level attributes it
/// holds, and the Modality of an image set of one series (the summary holds
/// its first series' Modality and how many series it has). `None` for the
/// other attributes.
fn summarized(summary: &DicomTags, tag: Tag) -> Option<Summarized<'_>> {
    let value = match tag {
        tags::PATIENT_ID => &summary.patient_id,
        tags::PATIENT_NAME => &summary.patient_name,
        tags::PATIENT_BIRTH_DATE => &summary.patient_birth_date,
        tags::PATIENT_SEX => &summary.patient_sex,
        tags::STUDY_INSTANCE_UID => &summary.study_instance_uid,
        tags::STUDY_ID => &summary.study_id,
        tags::STUDY_DESCRIPTION => &summary.study_description,
        tags::ACCESSION_NUMBER => &summary.accession_number,
        tags::STUDY_DATE => &summary.study_date,
        tags::STUDY_TIME => &summary.study_time,
        tags::MODALITY | tags::MODALITIES_IN_STUDY => {
            match summary.number_of_study_related_series {
                0 => return Some(Summarized::Absent),
                1 => &summary.series_modality,
                _ => return Some(Summarized::Unknown),
            }
        }
        _ => return None,
    };
    Some(match value.as_deref() {
        Some(value) if value.chars().any(char::is_control) => Summarized::Unknown,
        Some(value) => Summarized::Value(value),
        None => Summarized::Absent,
    })
}

/// Whether a study whose primary image sets are summarized by `summaries`
/// can hold a record matching `filters`, judged before any metadata
/// document is read. Every record of a study takes its Patient- and
/// Study-level attributes from one of the study's image sets, and its
/// Modality (or ModalitiesInStudy) from their series (each attribute lives
/// at its own level only: imports and edits put it nowhere else); each
/// image set's summary holds the same values from the same document. So a
/// study none of whose summaries can match a filter on such an attribute
/// has no match, and is skipped. Where a summary may differ from the
/// record, the study is read: a pattern with `?` (which could match a
/// character the summary trims) or control characters, a summary holding
/// control characters, an image set of several series for Modality.
/// Malformed data is the one blind spot, as for the index: an attribute of
/// value multiplicity 1 given several values (or a non-text value written
/// with force) is summarized by its first (or as absent).
fn may_match(filters: &[Filter], summaries: &[DicomTags]) -> bool {
    filters.iter().all(|filter| {
        let pattern = filter.value.trim();
        if pattern.is_empty()
            || pattern == "*"
            || pattern.contains('?')
            || pattern.chars().any(char::is_control)
        {
            return true;
        }
        let vr = dataset::vr_of(filter.tag, None);
        summaries
            .iter()
            .any(|summary| match summarized(summary, filter.tag) {
                None | Some(Summarized::Unknown) => true,
                Some(Summarized::Absent) => false,
                Some(Summarized::Value(value)) => value_matches(vr, pattern, value),
            })
    })
}

/// What a search has built so far: study records in the order studies were
/// met, and what is already counted.
#[derive(Default)]
struct Built {
    studies: Vec<(String, InMemDicomObject)>,
    study_index: BTreeMap<String, usize>,
    modalities: Vec<BTreeSet<String>>,
    seen_series: BTreeSet<(String, String)>,
    seen_instances: BTreeSet<String>,
}

/// A series record: its study's index, SeriesNumber, UID and record.
type SeriesRecord = (usize, i64, String, InMemDicomObject);
/// An instance record: its study's index, SeriesNumber, InstanceNumber,
/// SOP Instance UID and record.
type InstanceRecord = (usize, i64, i64, String, InMemDicomObject);

impl Built {
    /// Adds the studies, series and instances of `document`.
    fn add(
        &mut self,
        document: &Json,
        call: &Call,
        level: Level,
        series_records: &mut Vec<SeriesRecord>,
        instance_records: &mut Vec<InstanceRecord>,
    ) {
        let uid = super::study_uid(document).to_owned();
        if call.route.study.as_deref().is_some_and(|s| s != uid) {
            return;
        }
        let series_filter = call.route.series.as_deref();
        let s = *self.study_index.entry(uid.clone()).or_insert_with(|| {
            let mut record = level_object(&document["Patient"], None);
            merge(&mut record, level_object(&document["Study"], None));
            self.studies.push((uid.clone(), record));
            self.modalities.push(BTreeSet::new());
            self.studies.len() - 1
        });
        let Some(series_map) = document["Study"]["Series"].as_object() else {
            return;
        };
        for (series_uid, series_node) in series_map {
            if !self.seen_series.insert((uid.clone(), series_uid.clone())) {
                continue;
            }
            let series_object = level_object(series_node, None);
            if let Some(modality) =
                texts(&series_object, tags::MODALITY).and_then(|m| m.into_iter().next())
            {
                self.modalities[s].insert(modality);
            }
            let instances = series_node["Instances"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let series_number = number(&series_node["DICOM"]["SeriesNumber"]);
            let mut series_record = series_object.clone();
            put_text(
                &mut series_record,
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                vec![uid.clone()],
            );
            put_text(
                &mut series_record,
                tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
                VR::IS,
                vec![instances.len().to_string()],
            );
            if level == Level::Instance && series_filter.is_none_or(|f| f == series_uid) {
                for (sop, node) in &instances {
                    if !self.seen_instances.insert(sop.clone()) {
                        continue;
                    }
                    let mut record = level_object(node, node["DICOMVRs"].as_object());
                    let frames = node["ImageFrames"].as_array().map_or(0, Vec::len);
                    if record.element(tags::NUMBER_OF_FRAMES).is_err() && frames > 1 {
                        put_text(
                            &mut record,
                            tags::NUMBER_OF_FRAMES,
                            VR::IS,
                            vec![frames.to_string()],
                        );
                    }
                    merge(&mut record, series_record.clone());
                    instance_records.push((
                        s,
                        series_number,
                        instance_number(node),
                        sop.clone(),
                        record,
                    ));
                }
            }
            series_records.push((s, series_number, series_uid.clone(), series_record));
        }
    }

    /// Completes the records of studies `from..` with what their series
    /// and instances count.
    fn complete_studies(&mut self, from: usize, series_records: &[SeriesRecord]) {
        for s in from..self.studies.len() {
            let series = series_records.iter().filter(|r| r.0 == s).count();
            let instances: usize = series_records
                .iter()
                .filter(|r| r.0 == s)
                .map(|r| {
                    texts(&r.3, tags::NUMBER_OF_SERIES_RELATED_INSTANCES)
                        .and_then(|v| v.first().and_then(|n| n.parse::<usize>().ok()))
                        .unwrap_or(0)
                })
                .sum();
            let modalities = self.modalities[s].iter().cloned().collect();
            let record = &mut self.studies[s].1;
            put_text(record, tags::MODALITIES_IN_STUDY, VR::CS, modalities);
            put_text(
                record,
                tags::NUMBER_OF_STUDY_RELATED_SERIES,
                VR::IS,
                vec![series.to_string()],
            );
            put_text(
                record,
                tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
                VR::IS,
                vec![instances.to_string()],
            );
            put_text(
                record,
                tags::INSTANCE_AVAILABILITY,
                VR::CS,
                vec!["ONLINE".into()],
            );
        }
    }

    /// `record` with its study's attributes.
    fn with_study(&self, s: usize, record: &InMemDicomObject) -> InMemDicomObject {
        let mut full = self.studies[s].1.clone();
        merge(&mut full, record.clone());
        full
    }
}

/// The attributes a level returns by default.
fn defaults(level: Level, call: &Call) -> Vec<Tag> {
    match level {
        Level::Study => STUDY_RETURN
            .iter()
            .chain(&STUDY_RETURN_MORE)
            .copied()
            .collect(),
        Level::Series => SERIES_RETURN
            .iter()
            .copied()
            .chain([tags::STUDY_INSTANCE_UID])
            .collect(),
        Level::Instance => {
            let mut defaults: Vec<Tag> = INSTANCE_RETURN
                .iter()
                .copied()
                .chain([tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID])
                .collect();
            if call.route.series.is_none() {
                defaults.extend(SERIES_RETURN);
            }
            if call.route.study.is_none() {
                defaults.extend(STUDY_RETURN);
            }
            defaults
        }
    }
}

/// The search. Studies are read one at a time, most recently updated
/// first (each with all its primary image sets), and reading stops once
/// the page is full. With `narrow`, only the studies an indexed filter names
/// are read; without it, every study is read to the end: the tests compare
/// both ways.
fn search_with(service: &Service, call: &Call, narrow: bool) -> ApiResult<Response> {
    media::accepts_json(&call.accept)?;
    let level = match call.route.action {
        Action::SearchDICOMStudies => Level::Study,
        Action::SearchDICOMSeries => Level::Series,
        _ => Level::Instance,
    };
    let search = parse(call, level)?;
    let candidates = if narrow {
        candidate_studies(service, call, &search)?
    } else {
        None
    };
    let enough = if narrow {
        MAX_RECORDS.min(search.offset.saturating_add(search.limit))
    } else {
        usize::MAX
    };
    let defaults = defaults(level, call);
    // One read transaction: the studies are met in one consistent state.
    let matched = service
        .store()
        .read(|r| -> ApiResult<Vec<InMemDicomObject>> {
            let mut studies = super::Studies::new(r, service, call, candidates.as_ref())?;
            let mut built = Built::default();
            let mut matched: Vec<InMemDicomObject> = Vec::new();
            while matched.len() < enough {
                let keep =
                    |summaries: &[DicomTags]| !narrow || may_match(&search.filters, summaries);
                let Some(sets) = studies.next(r, call, &keep)? else {
                    break;
                };
                let from = built.studies.len();
                let mut series_records = Vec::new();
                let mut instance_records = Vec::new();
                for set in sets {
                    let Some(source) = super::source(service, set)? else {
                        continue;
                    };
                    built.add(
                        &source.document,
                        call,
                        level,
                        &mut series_records,
                        &mut instance_records,
                    );
                }
                built.complete_studies(from, &series_records);
                let records: Vec<InMemDicomObject> = match level {
                    Level::Study => built.studies[from..]
                        .iter()
                        .map(|(_, record)| record.clone())
                        .collect(),
                    Level::Series => {
                        series_records.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
                        series_records
                            .iter()
                            .map(|s| built.with_study(s.0, &s.3))
                            .collect()
                    }
                    Level::Instance => {
                        instance_records
                            .sort_by(|a, b| (a.0, a.1, a.2, &a.3).cmp(&(b.0, b.1, b.2, &b.3)));
                        instance_records
                            .iter()
                            .map(|i| built.with_study(i.0, &i.4))
                            .collect()
                    }
                };
                matched.extend(
                    records
                        .into_iter()
                        .filter(|record| matches(record, &search.filters)),
                );
            }
            Ok(matched)
        })?;
    let page: Vec<Json> = matched
        .iter()
        .take(MAX_RECORDS)
        .skip(search.offset)
        .take(search.limit)
        .map(|record| output(record, &search, &defaults, call))
        .collect();
    Ok(media::dicom_json(&Json::Array(page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_the_dicom_rules() {
        assert!(value_matches(VR::PN, "doe^*", "DOE^JANE"));
        assert!(value_matches(VR::PN, "DOE^J?NE", "DOE^JANE"));
        assert!(
            !value_matches(VR::LO, "p1", "P1"),
            "case matters outside names"
        );
        assert!(value_matches(VR::LO, "P*", "P1"));
        assert!(value_matches(VR::DA, "20200101-20201231", "20200615"));
        assert!(!value_matches(VR::DA, "20200101-20201231", "20210101"));
        assert!(value_matches(VR::DA, "20200101-", "20250101"));
        assert!(value_matches(VR::DA, "-20200101", "19991231"));
        assert!(
            !value_matches(VR::DA, "2020*", "20200101"),
            "no wildcards in dates"
        );
        assert!(value_matches(VR::UI, "1.2\\1.3", "1.3"));
        assert!(value_matches(VR::UI, "1.2,1.3", "1.2"));
        assert!(!value_matches(VR::UI, "1.*", "1.2"));
        assert!(value_matches(VR::TM, "080000-120000", "093000.123"));
    }

    /// A QIDO-RS call on `path` (under the datastore `ds`) with `query`.
    fn call_of(ds: &str, path: &str, query: &str) -> Call {
        Call {
            route: super::super::route(&axum::http::Method::GET, &format!("/datastore/{ds}{path}"))
                .unwrap()
                .unwrap(),
            query: crate::wire::Query::parse(Some(query)),
            accept: media::accept(Some("application/dicom+json")),
            base: "http://localhost".into(),
            bearer: None,
        }
    }

    /// The parsed filters of `call`.
    fn search_of(call: &Call) -> Search {
        let level = match call.route.action {
            Action::SearchDICOMStudies => Level::Study,
            Action::SearchDICOMSeries => Level::Series,
            _ => Level::Instance,
        };
        parse(call, level).unwrap()
    }

    /// The studies an indexed filter narrows the search to, and the answer,
    /// narrowed or read from every study to the end.
    async fn answer(
        service: &Service,
        ds: &str,
        path: &str,
        query: &str,
        narrow: bool,
    ) -> (Option<BTreeSet<String>>, Json) {
        use http_body_util::BodyExt;

        let call = call_of(ds, path, query);
        let narrowed = candidate_studies(service, &call, &search_of(&call)).unwrap();
        let response = search_with(service, &call, narrow).unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (narrowed, serde_json::from_slice::<Json>(&bytes).unwrap())
    }

    /// Reading only the studies an indexed filter names gives exactly the
    /// answer of reading every primary image set, for every level and every
    /// kind of filter (narrowing or not), and it does narrow.
    #[tokio::test]
    async fn narrowed_searches_answer_as_full_scans_do() {
        use serde_json::json;

        use crate::testing::{active_datastore, plant_document, series_document, service};

        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let document =
            |patient: &str, study: &str, series: &str, accession: &str, sops: &[&str]| {
                let mut document = series_document(patient, study, series, sops);
                document["Study"]["DICOM"]["AccessionNumber"] = json!(accession);
                document["Study"]["DICOM"]["StudyID"] = json!(format!("ID-{study}"));
                document
            };
        let planted = [
            // A study of two series, a one-series study of another patient.
            (
                "P1",
                "1.1",
                "1.1.1",
                "ACC1",
                vec!["1.1.1.1", "1.1.1.2"],
                true,
            ),
            ("P1", "1.1", "1.1.2", "ACC1", vec!["1.1.2.1"], true),
            ("P2", "1.2", "1.2.1", "ACC2", vec!["1.2.1.1"], true),
            // A study whose image sets disagree on PatientID.
            ("P3", "1.3", "1.3.1", "ACC3", vec!["1.3.1.1"], true),
            ("P3X", "1.3", "1.3.2", "ACC3", vec!["1.3.2.1"], true),
            // Padding, and a non-primary image set.
            ("P4 ", "1.4", "1.4.1", "ACC4", vec!["1.4.1.1"], true),
            ("P1", "1.1", "1.1.1", "ACC1", vec!["1.1.1.9"], false),
        ];
        for (n, (patient, study, series, accession, sops, primary)) in planted.iter().enumerate() {
            plant_document(
                &service,
                &ds,
                &format!("{:032x}", n + 1),
                *primary,
                document(patient, study, series, accession, sops),
            );
            clock.advance(std::time::Duration::from_secs(1));
        }
        let cases: &[(&str, &str, Option<&[&str]>, usize)] = &[
            ("/studies", "PatientID=P1", Some(&["1.1"]), 1),
            ("/studies", "PatientID=P3", Some(&["1.3"]), 0),
            ("/studies", "PatientID=P3X", Some(&["1.3"]), 1),
            ("/studies", "PatientID=P4", Some(&["1.4"]), 1),
            ("/studies", "PatientID=NOBODY", Some(&[]), 0),
            ("/studies", "PatientID=P*", None, 4),
            ("/studies", "AccessionNumber=ACC2", Some(&["1.2"]), 1),
            ("/studies", "StudyID=ID-1.3", Some(&["1.3"]), 1),
            (
                "/studies",
                "StudyInstanceUID=1.1\\1.2",
                Some(&["1.1", "1.2"]),
                2,
            ),
            (
                "/studies",
                "StudyInstanceUID=1.1,1.4&limit=1&offset=0",
                Some(&["1.1", "1.4"]),
                1,
            ),
            ("/instances", "PatientID=P1&Modality=CT", Some(&["1.1"]), 3),
            ("/instances", "SeriesInstanceUID=1.3.2", Some(&["1.3"]), 1),
            ("/studies/1.1/series", "Modality=CT", None, 2),
            ("/instances", "PatientID=P1", Some(&["1.1"]), 3),
            (
                "/instances",
                "SeriesInstanceUID=1.1.1&includefield=all",
                Some(&["1.1"]),
                2,
            ),
            (
                "/instances",
                "AccessionNumber=ACC3&offset=1",
                Some(&["1.3"]),
                1,
            ),
            // Pages that end before the last study: reading stops early.
            ("/studies", "limit=2", None, 2),
            ("/studies", "limit=2&offset=2", None, 2),
            ("/studies", "offset=3", None, 1),
            ("/studies", "PatientName=synthetic*&limit=1", None, 1),
            ("/instances", "limit=3&offset=1", None, 3),
            ("/instances", "Modality=CT&limit=4&offset=2", None, 4),
            ("/instances", "", None, 7),
        ];
        for &(path, query, studies, count) in cases {
            let (narrowed, answer_narrowed) = answer(&service, &ds, path, query, true).await;
            let (_, answer_full) = answer(&service, &ds, path, query, false).await;
            assert_eq!(answer_narrowed, answer_full, "{path}?{query}");
            assert_eq!(
                answer_full.as_array().map(Vec::len),
                Some(count),
                "{path}?{query}: {answer_full}"
            );
            let expected = studies.map(|s| s.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(narrowed, expected, "{path}?{query}");
        }
    }

    /// Filters on Patient- and Study-level attributes the index does not
    /// hold skip, from the image sets' summaries, every study that cannot
    /// match, and the answers are exactly those of reading every study.
    #[tokio::test]
    async fn studies_skipped_from_their_summaries_answer_as_full_scans_do() {
        use serde_json::json;

        use crate::testing::{active_datastore, plant_document, series_document, service};

        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        /// PatientID, PatientName, study, series, StudyDate, StudyTime,
        /// StudyDescription, instances.
        type Planted<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a [&'a str],
        );
        let planted: &[Planted] = &[
            (
                "P1",
                "DOE^JANE",
                "2.1",
                "2.1.1",
                "20240105",
                "101500",
                Some("CT HEAD"),
                &["2.1.1.1", "2.1.1.2"],
            ),
            (
                "P1",
                "DOE^JANE",
                "2.1",
                "2.1.2",
                "20240105",
                "101500",
                Some("CT HEAD"),
                &["2.1.2.1"],
            ),
            // No StudyDescription.
            (
                "P2",
                "ROE^RICHARD",
                "2.2",
                "2.2.1",
                "20240210",
                "083000",
                None,
                &["2.2.1.1"],
            ),
            // Image sets of one study that disagree: the record takes the
            // most recently updated one's values.
            (
                "P3",
                "SMITH^ANN",
                "2.3",
                "2.3.1",
                "20230101",
                "120000",
                Some("MR KNEE"),
                &["2.3.1.1"],
            ),
            (
                "P3",
                "SMYTHE^ANN",
                "2.3",
                "2.3.2",
                "20230102",
                "120000",
                Some("MR KNEE"),
                &["2.3.2.1"],
            ),
            // Padding the summary trims as the record does.
            (
                "P4",
                " PADDED^NAME  ",
                "2.4",
                "2.4.1",
                "20240301",
                "070000",
                Some("MR KNEE "),
                &["2.4.1.1"],
            ),
            // An ideographic space ends the name: the summary trims it, the
            // record does not, and `?` matches it.
            (
                "P5",
                "YAMADA^TARO\u{3000}",
                "2.5",
                "2.5.1",
                "20240302",
                "070000",
                Some("XR"),
                &["2.5.1.1"],
            ),
        ];
        for (n, (patient, name, study, series, date, time, description, sops)) in
            planted.iter().enumerate()
        {
            let mut document = series_document(patient, study, series, sops);
            document["Patient"]["DICOM"]["PatientName"] = json!(name);
            document["Study"]["DICOM"]["StudyDate"] = json!(date);
            document["Study"]["DICOM"]["StudyTime"] = json!(time);
            document["Study"]["DICOM"]["StudyDescription"] = json!(description);
            if *study == "2.4" {
                document["Study"]["Series"][series]["DICOM"]["Modality"] = json!("MR");
            }
            plant_document(&service, &ds, &format!("{:032x}", n + 1), true, document);
            clock.advance(std::time::Duration::from_secs(1));
        }
        // An image set of two series, CT and then PT: its summary holds the
        // first series' Modality only.
        let mut two_series = series_document("P6", "2.6", "2.6.1", &["2.6.1.1"]);
        let mut second =
            series_document("P6", "2.6", "2.6.2", &["2.6.2.1"])["Study"]["Series"]["2.6.2"].clone();
        second["DICOM"]["Modality"] = json!("PT");
        two_series["Study"]["Series"]["2.6.2"] = second;
        two_series["Study"]["DICOM"]["StudyDescription"] = json!("PET CT");
        plant_document(&service, &ds, &format!("{:032x}", 99), true, two_series);
        let all = ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"];
        // (path, query, records, the studies read)
        let cases: &[(&str, &str, usize, &[&str])] = &[
            ("/studies", "PatientName=doe^jane", 1, &["2.1"]),
            ("/studies", "PatientName=DOE*", 1, &["2.1"]),
            ("/studies", "PatientName=*ANN", 1, &["2.3"]),
            ("/studies", "PatientName=SMYTHE^ANN", 1, &["2.3"]),
            // One of the study's image sets matches, its record does not.
            ("/studies", "PatientName=SMITH^ANN", 0, &["2.3"]),
            ("/studies", "PatientName=PADDED^NAME", 1, &["2.4"]),
            ("/studies", "PatientName=YAMADA^TARO?", 1, &all),
            ("/studies", "PatientName=NOBODY", 0, &[]),
            ("/studies", "PatientName=", 6, &all),
            (
                "/studies",
                "StudyDate=20240101-20240229",
                2,
                &["2.1", "2.2"],
            ),
            ("/studies", "StudyDate=20240301", 1, &["2.4"]),
            ("/studies", "StudyDate=-20231231", 1, &["2.3"]),
            ("/studies", "StudyDescription=*KNEE", 2, &["2.3", "2.4"]),
            ("/studies", "StudyDescription=CT HEAD", 1, &["2.1"]),
            ("/studies", "AccessionNumber=SYN*", 6, &all),
            ("/studies", "PatientID=P?", 6, &all),
            // Modalities: an image set of one series answers from its
            // summary, one of several series is read.
            ("/studies", "ModalitiesInStudy=MR", 1, &["2.4", "2.6"]),
            ("/studies", "ModalitiesInStudy=PT", 1, &["2.6"]),
            (
                "/studies",
                "ModalitiesInStudy=CT",
                5,
                &["2.1", "2.2", "2.3", "2.5", "2.6"],
            ),
            ("/studies/2.4/series", "Modality=CT", 0, &[]),
            ("/studies/2.6/series", "Modality=PT", 1, &["2.6"]),
            ("/instances", "Modality=MR", 1, &["2.4", "2.6"]),
            ("/instances", "Modality=PT&PatientID=P6", 1, &["2.6"]),
            ("/studies", "PatientID=P*&StudyDate=20240302", 1, &["2.5"]),
            (
                "/studies",
                "PatientName=DOE^JANE&ModalitiesInStudy=MR",
                0,
                &[],
            ),
            (
                "/studies/2.2/series",
                "PatientName=ROE^RICHARD",
                1,
                &["2.2"],
            ),
            ("/studies/2.2/series", "PatientName=DOE^JANE", 0, &[]),
            (
                "/studies/2.3/series",
                "StudyDate=20230101-20230102",
                2,
                &["2.3"],
            ),
            ("/instances", "StudyTime=100000-110000", 3, &["2.1"]),
            (
                "/instances",
                "StudyTime=100000-110000&limit=1&offset=2",
                1,
                &["2.1"],
            ),
            (
                "/studies/2.1/instances",
                "PatientName=DOE^JANE",
                3,
                &["2.1"],
            ),
            ("/studies/2.1/instances", "PatientName=ROE^RICHARD", 0, &[]),
        ];
        for &(path, query, count, read) in cases {
            let (_, narrowed) = answer(&service, &ds, path, query, true).await;
            let (_, full) = answer(&service, &ds, path, query, false).await;
            assert_eq!(narrowed, full, "{path}?{query}");
            assert_eq!(
                full.as_array().map(Vec::len),
                Some(count),
                "{path}?{query}: {full}"
            );
            let call = call_of(&ds, path, query);
            let search = search_of(&call);
            let studies: Vec<&str> = all
                .iter()
                .copied()
                .filter(|study| call.route.study.as_deref().is_none_or(|s| s == *study))
                .filter(|study| {
                    let (summaries, sets) = service
                        .store()
                        .read(|r| {
                            Ok::<_, crate::store::StoreError>((
                                r.study_summaries(&ds, study)?,
                                r.study_primaries(&ds, study)?,
                            ))
                        })
                        .unwrap();
                    assert_eq!(
                        summaries,
                        super::super::summaries_of(&sets),
                        "the summaries of {study}'s image sets"
                    );
                    may_match(&search.filters, &summaries)
                })
                .collect();
            assert_eq!(studies, read, "{path}?{query}: the studies read");
        }
    }

    /// One image set of the property below: indexes into the value lists.
    #[derive(Debug, Clone)]
    struct Drawn {
        study: usize,
        name: usize,
        date: usize,
        description: usize,
        modalities: Vec<usize>,
    }

    const STUDIES: [&str; 3] = ["3.1", "3.2", "3.3"];
    const NAMES: [&str; 6] = [
        "DOE^JANE",
        "doe^jane",
        " DOE^JANE  ",
        "ROE^R",
        "YAMADA^T\u{3000}",
        "",
    ];
    const DATES: [&str; 5] = ["20240101", "20231231", "2024.01.05", "", "2024"];
    const DESCRIPTIONS: [&str; 4] = ["CT HEAD", "MR KNEE ", "", "ct head"];
    const MODALITIES: [&str; 3] = ["CT", "MR", "PT"];
    /// (level path, key, patterns)
    const QUERIES: [(&str, &str, &[&str]); 7] = [
        (
            "/studies",
            "PatientName",
            &[
                "DOE^JANE",
                "doe*",
                "*JANE",
                "D?E^JANE",
                "YAMADA^T?",
                "ROE^R",
                "NOBODY",
            ],
        ),
        (
            "/studies",
            "StudyDate",
            &[
                "20240101",
                "20240101-",
                "-20231231",
                "20230101-20241231",
                "2024",
                "2024-2025",
            ],
        ),
        (
            "/studies",
            "StudyDescription",
            &["CT HEAD", "*KNEE*", "ct*", "MR KNEE"],
        ),
        ("/studies", "ModalitiesInStudy", &["CT", "MR", "PT", "M*"]),
        ("/series", "Modality", &["CT", "PT", "?R"]),
        ("/instances", "Modality", &["MR", "PT"]),
        ("/instances", "PatientName", &["*", "DOE^JANE", "ROE*"]),
    ];

    fn drawn() -> impl proptest::strategy::Strategy<Value = Drawn> {
        use proptest::prelude::*;
        (
            0..STUDIES.len(),
            0..NAMES.len(),
            0..DATES.len(),
            0..DESCRIPTIONS.len(),
            proptest::collection::vec(0..MODALITIES.len(), 0..3),
        )
            .prop_map(|(study, name, date, description, modalities)| Drawn {
                study,
                name,
                date,
                description,
                modalities,
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(160))]

        /// Whatever the studies hold (image sets that disagree, padding,
        /// empty values, old-style dates, image sets of zero to two
        /// series), skipping studies from their summaries answers exactly
        /// as reading every study does.
        #[test]
        fn skipping_from_summaries_never_changes_an_answer(
            sets in proptest::collection::vec(drawn(), 1..7),
            queries in proptest::collection::vec((0..QUERIES.len(), 0usize..7, 0usize..7, proptest::prelude::any::<bool>()), 1..6),
        ) {
            use serde_json::json;

            use crate::testing::{active_datastore, plant_document, series_document, service};

            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (service, clock) = service();
                let ds = active_datastore(&service, &clock).await;
                for (n, set) in sets.iter().enumerate() {
                    let study = STUDIES[set.study];
                    let mut document = series_document("P1", study, &format!("{study}.{n}.0"), &[&format!("{study}.{n}.0.1")]);
                    document["Study"]["Series"] = json!({});
                    for (k, modality) in set.modalities.iter().enumerate() {
                        let series = format!("{study}.{n}.{k}");
                        let mut one = series_document("P1", study, &series, &[&format!("{series}.1")]);
                        one["Study"]["Series"][&series]["DICOM"]["Modality"] = json!(MODALITIES[*modality]);
                        document["Study"]["Series"][&series] = one["Study"]["Series"][&series].take();
                    }
                    document["Patient"]["DICOM"]["PatientName"] = json!(NAMES[set.name]);
                    document["Study"]["DICOM"]["StudyDate"] = json!(DATES[set.date]);
                    document["Study"]["DICOM"]["StudyDescription"] = json!(DESCRIPTIONS[set.description]);
                    plant_document(&service, &ds, &format!("{:032x}", n + 1), true, document);
                    clock.advance(std::time::Duration::from_secs(1));
                }
                for (query, first, second, both) in queries {
                    let (level, key, patterns) = QUERIES[query];
                    let mut text = format!("{key}={}", patterns[first % patterns.len()]);
                    if both {
                        let (_, other, patterns) = QUERIES[(query + 1) % 4];
                        text.push_str(&format!("&{other}={}", patterns[second % patterns.len()]));
                    }
                    let paths: Vec<String> = if level == "/series" {
                        STUDIES.iter().map(|s| format!("/studies/{s}/series")).collect()
                    } else {
                        vec![level.to_owned()]
                    };
                    for path in paths {
                        let (_, narrowed) = answer(&service, &ds, &path, &text, true).await;
                        let (_, full) = answer(&service, &ds, &path, &text, false).await;
                        assert_eq!(narrowed, full, "{path}?{text}");
                    }
                }
            });
        }
    }

    /// The datastore's listing is read a page at a time: studies met across
    /// pages come once each, in order, with image sets listed pages apart.
    #[tokio::test]
    async fn studies_listed_over_many_pages_come_once_each_and_complete() {
        use axum::http::Method;

        use crate::testing::{active_datastore, plant_document, send, series_document, service};

        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let studies = super::super::STUDY_LISTING_PAGE + 94;
        // Image set i belongs to study i % studies, so each study's two image
        // sets are listed about a page apart; every three share a time.
        for i in 0..2 * studies {
            let (study, sop) = (
                format!("1.{}", i % studies),
                format!("1.{}.{i}.1", i % studies),
            );
            let series = format!("1.{}.{i}", i % studies);
            plant_document(
                &service,
                &ds,
                &format!("{:032x}", i + 1),
                true,
                series_document("P", &study, &series, &[&sop]),
            );
            if i % 3 == 2 {
                clock.advance(std::time::Duration::from_secs(1));
            }
        }
        let uids = |answer: &Json, tag: &str| -> Vec<String> {
            answer
                .as_array()
                .unwrap()
                .iter()
                .map(|record| {
                    record[tag]["Value"][0]
                        .to_string()
                        .trim_matches('"')
                        .to_owned()
                })
                .collect()
        };
        // The most recently updated study first: the last planted.
        let expected: Vec<String> = (0..studies).rev().map(|k| format!("1.{k}")).collect();
        let (status, _, answer) = send(
            &service,
            Method::GET,
            &format!("/datastore/{ds}/studies"),
            "",
        )
        .await;
        assert_eq!(status.as_u16(), 200, "{answer}");
        assert_eq!(uids(&answer, "0020000D"), expected);
        assert!(
            uids(&answer, "00201206").iter().all(|n| n == "2"),
            "every study has both its series: {:?}",
            uids(&answer, "00201206")
        );
        let (_, _, page) = send(
            &service,
            Method::GET,
            &format!("/datastore/{ds}/studies?offset=300&limit=10"),
            "",
        )
        .await;
        assert_eq!(uids(&page, "0020000D"), expected[300..310]);
        let (_, _, instances) = send(
            &service,
            Method::GET,
            &format!("/datastore/{ds}/instances?offset={}", 2 * studies - 3),
            "",
        )
        .await;
        assert_eq!(
            uids(&instances, "0020000D"),
            ["1.1", "1.0", "1.0"],
            "the last instances: of the studies updated first"
        );
    }

    #[tokio::test]
    async fn at_most_ten_thousand_records_are_reachable() {
        use axum::http::Method;

        use crate::testing::{active_datastore, plant_document, send, series_document, service};

        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let sops: Vec<String> = (0..MAX_RECORDS + 25)
            .map(|n| format!("1.2.3.{n}"))
            .collect();
        let refs: Vec<&str> = sops.iter().map(String::as_str).collect();
        plant_document(
            &service,
            &ds,
            &"a".repeat(32),
            true,
            series_document("SYN1", "1.2", "1.2.3", &refs),
        );
        let count = |query: &'static str| {
            let service = service.clone();
            let ds = ds.clone();
            async move {
                let (status, _, answer) = send(
                    &service,
                    Method::GET,
                    &format!("/datastore/{ds}/instances{query}"),
                    "",
                )
                .await;
                assert_eq!(status.as_u16(), 200, "{answer}");
                answer.as_array().unwrap().len()
            }
        };
        assert_eq!(count("").await, MAX_RECORDS);
        assert_eq!(count("?limit=20000").await, MAX_RECORDS);
        assert_eq!(
            count("?offset=9990").await,
            10,
            "the cap holds past an offset"
        );
        assert_eq!(count("?offset=10000").await, 0);
    }
}
