//! Combining metadata documents: import merges, and CopyImageSet's
//! selections, consistency checks and merges.
//!
//! Two documents describe the same series consistently when they agree on
//! the attributes the service groups instances by (StudyDate,
//! AccessionNumber, PatientID, StudyInstanceUID, StudyID, SeriesInstanceUID
//! and SeriesNumber). A merge keeps the receiving document's values.

use dicom_object::InMemDicomObject;
use serde_json::{Map, Value as Json};

/// The attributes whose agreement decides where an instance goes.
pub type GroupingKey = Vec<Json>;

/// The grouping attributes of `series_uid` in `document`.
pub fn grouping_key(document: &Json, series_uid: &str) -> GroupingKey {
    let patient = &document["Patient"]["DICOM"];
    let study = &document["Study"]["DICOM"];
    let series = &document["Study"]["Series"][series_uid]["DICOM"];
    [
        &patient["PatientID"],
        &study["StudyDate"],
        &study["AccessionNumber"],
        &study["StudyInstanceUID"],
        &study["StudyID"],
        &series["SeriesInstanceUID"],
        &series["SeriesNumber"],
    ]
    .into_iter()
    .map(normalized)
    .collect()
}

/// The grouping attributes of an instance's data set: what [`grouping_key`]
/// reads from the instance's one-instance document (values at the level the
/// document puts them, padding trimmed), without building that document.
pub fn grouping_key_of(dataset: &InMemDicomObject) -> GroupingKey {
    use dicom_dictionary_std::tags;

    use super::{Level, level, values};
    [
        (tags::PATIENT_ID, Level::Patient),
        (tags::STUDY_DATE, Level::Study),
        (tags::ACCESSION_NUMBER, Level::Study),
        (tags::STUDY_INSTANCE_UID, Level::Study),
        (tags::STUDY_ID, Level::Study),
        (tags::SERIES_INSTANCE_UID, Level::Series),
        (tags::SERIES_NUMBER, Level::Series),
    ]
    .into_iter()
    .map(|(tag, at)| match dataset.element(tag) {
        Ok(element) if level(tag) == at => normalized(&values::value(element)),
        _ => Json::Null,
    })
    .collect()
}

/// Padding does not make two values differ.
fn normalized(value: &Json) -> Json {
    match value {
        Json::String(s) => Json::String(s.trim().to_owned()),
        Json::Array(values) => Json::Array(values.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// Adds the instances of `addition` (a document of the same series) to
/// `document`. Attributes `document` already has keep their values.
/// `addition` is taken apart, not copied.
pub fn merge(document: &mut Json, mut addition: Json) {
    fn take(value: &mut Json, path: &[&str]) -> Option<Map<String, Json>> {
        let mut at = value;
        for key in path {
            at = at.get_mut(*key)?;
        }
        match at.take() {
            Json::Object(map) => Some(map),
            _ => None,
        }
    }
    for level in ["Patient", "Study"] {
        if let (Some(into), Some(from)) = (
            document[level]["DICOM"].as_object_mut(),
            take(&mut addition, &[level, "DICOM"]),
        ) {
            keep_first(into, from);
        }
    }
    let Some(added_series) = take(&mut addition, &["Study", "Series"]) else {
        return;
    };
    for (uid, mut series) in added_series {
        let all = &mut document["Study"]["Series"];
        if all.get(&uid).is_none() {
            all[&uid] = series;
            continue;
        }
        if let (Some(into), Some(from)) = (
            all[&uid]["DICOM"].as_object_mut(),
            take(&mut series, &["DICOM"]),
        ) {
            keep_first(into, from);
        }
        if let (Some(into), Some(from)) = (
            all[&uid]["Instances"].as_object_mut(),
            take(&mut series, &["Instances"]),
        ) {
            into.extend(from);
        }
    }
}

fn keep_first(into: &mut Map<String, Json>, from: Map<String, Json>) {
    for (key, value) in from {
        into.entry(key).or_insert(value);
    }
}

/// The part of `source` that `copiableAttributes` names:
/// `{"SchemaVersion":"1.1","Study":{"Series":{"<uid>":{"Instances":{"<sop>":{}}}}}}`;
/// a series without `Instances` (or with an empty one) is copied whole. The
/// error is the ValidationException's message.
pub fn select(source: &Json, copiable: &Json) -> Result<Json, String> {
    let wanted = copiable["Study"]["Series"]
        .as_object()
        .filter(|series| !series.is_empty())
        .ok_or("copiableAttributes must name at least one series under Study.Series")?;
    let mut series_out = Map::new();
    for (uid, selection) in wanted {
        let series = source["Study"]["Series"]
            .get(uid)
            .ok_or_else(|| format!("Series {uid} is not in the source image set"))?;
        let instances = selection["Instances"].as_object().filter(|i| !i.is_empty());
        let Some(instances) = instances else {
            series_out.insert(uid.clone(), series.clone());
            continue;
        };
        let mut kept = Map::new();
        for sop in instances.keys() {
            let instance = series["Instances"].get(sop).ok_or_else(|| {
                format!("SOP instance {sop} is not in series {uid} of the source image set")
            })?;
            kept.insert(sop.clone(), instance.clone());
        }
        let mut series = series.clone();
        series["Instances"] = Json::Object(kept);
        series_out.insert(uid.clone(), series);
    }
    let mut selected = source.clone();
    selected["Study"]["Series"] = Json::Object(series_out);
    Ok(selected)
}

/// Why `addition` cannot be copied into `destination` without `force`, or
/// at all: the failed version's `message`, in the service's words.
pub fn copy_conflict(destination: &Json, addition: &Json, force: bool) -> Option<String> {
    let empty = Map::new();
    let added = addition["Study"]["Series"].as_object().unwrap_or(&empty);
    let existing = destination["Study"]["Series"].as_object().unwrap_or(&empty);
    for (uid, series) in added {
        for sop in series["Instances"].as_object().unwrap_or(&empty).keys() {
            if existing.values().any(|s| s["Instances"].get(sop).is_some()) {
                return Some(format!(
                    "INVALID_REQUEST: SOP Instance {sop} of SourceImageSet is already in DestinationImageSet"
                ));
            }
        }
        if force {
            continue;
        }
        if !existing.contains_key(uid) {
            return Some(
                "INVALID_REQUEST:  Series of SourceImageSet and DestinationImageSet don't match."
                    .into(),
            );
        }
        if grouping_key(destination, uid) != grouping_key(addition, uid) {
            return Some(
                "INVALID_REQUEST: Patient, Study or Series attributes of SourceImageSet and DestinationImageSet don't match.".into(),
            );
        }
    }
    None
}

/// The IDs of the frames `document` lists.
pub fn frame_ids(document: &Json) -> Vec<String> {
    let mut ids = Vec::new();
    for series in document["Study"]["Series"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, s)| s)
    {
        for instance in series["Instances"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, i)| i)
        {
            for frame in instance["ImageFrames"].as_array().into_iter().flatten() {
                if let Some(id) = frame["ID"].as_str() {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(series: &str, sops: &[&str], accession: &str) -> Json {
        let instances: Map<String, Json> = sops
            .iter()
            .map(|sop| {
                (
                    (*sop).to_owned(),
                    json!({"DICOM": {}, "ImageFrames": [{"ID": format!("f{sop}")}]}),
                )
            })
            .collect();
        json!({
            "Patient": {"DICOM": {"PatientID": "P"}},
            "Study": {"DICOM": {"StudyInstanceUID": "1.2", "AccessionNumber": accession},
                "Series": {series: {"DICOM": {"SeriesInstanceUID": series, "SeriesNumber": "1 "},
                    "Instances": instances}}}
        })
    }

    #[test]
    fn merging_a_malformed_addition_changes_nothing_it_cannot_read() {
        let mut doc = document("1.2.3", &["a"], "ACC1");
        let before = doc.clone();
        merge(
            &mut doc,
            json!({"Patient": "not an object", "Study": {"DICOM": 7,
            "Series": {"1.2.3": {"DICOM": "x", "Instances": ["y"]}}}}),
        );
        assert_eq!(doc, before);
        merge(&mut doc, json!("not a document"));
        assert_eq!(doc, before);
    }

    #[test]
    fn merging_adds_instances_and_keeps_existing_values() {
        let mut doc = document("1.2.3", &["a"], "ACC1");
        let mut other = document("1.2.3", &["b"], "ACC1");
        other["Patient"]["DICOM"]["PatientSex"] = json!("O");
        other["Patient"]["DICOM"]["PatientID"] = json!("CHANGED");
        merge(&mut doc, other);
        let instances = doc["Study"]["Series"]["1.2.3"]["Instances"]
            .as_object()
            .unwrap();
        assert_eq!(instances.len(), 2);
        assert_eq!(doc["Patient"]["DICOM"]["PatientID"], "P");
        assert_eq!(doc["Patient"]["DICOM"]["PatientSex"], "O");
    }

    #[test]
    fn selection_keeps_named_instances_and_refuses_unknown_ones() {
        let source = document("1.2.3", &["a", "b", "c"], "ACC1");
        let picked = select(
            &source,
            &json!({"Study": {"Series": {"1.2.3": {"Instances": {"b": {}}}}}}),
        )
        .unwrap();
        assert_eq!(frame_ids(&picked), vec!["fb"]);
        let whole = select(&source, &json!({"Study": {"Series": {"1.2.3": {}}}})).unwrap();
        assert_eq!(frame_ids(&whole).len(), 3);
        assert!(
            select(&source, &json!({"Study": {"Series": {"9": {}}}}))
                .unwrap_err()
                .contains("Series 9")
        );
        assert!(
            select(
                &source,
                &json!({"Study": {"Series": {"1.2.3": {"Instances": {"z": {}}}}}})
            )
            .is_err()
        );
        assert!(select(&source, &json!({"SchemaVersion": "1.1"})).is_err());
    }

    #[test]
    fn copies_must_agree_unless_forced_and_never_repeat_an_instance() {
        let destination = document("1.2.3", &["a"], "ACC1");
        assert_eq!(
            copy_conflict(&destination, &document("1.2.3", &["b"], "ACC1 "), false),
            None
        );
        let other_series = document("1.2.9", &["b"], "ACC1");
        assert!(
            copy_conflict(&destination, &other_series, false)
                .unwrap()
                .contains("Series of")
        );
        assert_eq!(copy_conflict(&destination, &other_series, true), None);
        let other_study = document("1.2.3", &["b"], "ACC2");
        assert!(
            copy_conflict(&destination, &other_study, false)
                .unwrap()
                .contains("Patient, Study")
        );
        let repeated = document("1.2.3", &["a"], "ACC1");
        assert!(
            copy_conflict(&destination, &repeated, true)
                .unwrap()
                .contains("already in")
        );
    }
}
