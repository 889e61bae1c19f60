//! Grouping imported instances into image sets, as the service does.
//!
//! An image set holds one series. For each series the import either creates
//! a new primary image set, or merges into the series' existing primary image
//! set (a new version), or, when an instance's Patient, Study or Series
//! attributes conflict with the primary set's, puts it into a non-primary
//! image set. The attributes compared are the service's: StudyDate,
//! AccessionNumber, PatientID, StudyInstanceUID, StudyID, SeriesInstanceUID
//! and SeriesNumber. Instances of one job that conflict with the primary set
//! in the same way share one non-primary set.

use serde_json::{Map, Value as Json};

use super::instance::ReadInstance;

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

/// Padding does not make two values differ.
fn normalized(value: &Json) -> Json {
    match value {
        Json::String(s) => Json::String(s.trim().to_owned()),
        Json::Array(values) => Json::Array(values.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// Where a group of instances goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new primary image set.
    NewPrimary,
    /// A new version of the existing primary image set.
    Merge(String),
    /// A new non-primary image set.
    NewNonPrimary,
}

/// Instances bound for one image set.
#[derive(Debug)]
pub struct Group {
    /// The series.
    pub series_uid: String,
    /// The attributes every instance of the group agrees on.
    pub key: GroupingKey,
    /// Where the group goes.
    pub target: Target,
    /// The instances, in input order.
    pub instances: Vec<ReadInstance>,
}

/// Groups `instances` (in input order). `existing_primary` gives, for a
/// series, the primary image set already in the datastore and its grouping
/// key.
pub fn group(
    instances: Vec<ReadInstance>,
    existing_primary: impl Fn(&str) -> Option<(String, GroupingKey)>,
) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for instance in instances {
        let key = grouping_key(&instance.document, &instance.series_uid);
        if let Some(group) = groups
            .iter_mut()
            .find(|g| g.series_uid == instance.series_uid && g.key == key)
        {
            group.instances.push(instance);
            continue;
        }
        let primary_key = existing_primary(&instance.series_uid)
            .map(|(id, key)| (Target::Merge(id), key))
            .or_else(|| {
                groups
                    .iter()
                    .find(|g| g.series_uid == instance.series_uid && g.target == Target::NewPrimary)
                    .map(|g| (Target::NewPrimary, g.key.clone()))
            });
        let target = match primary_key {
            Some((target, primary)) if primary == key => target,
            Some(_) => Target::NewNonPrimary,
            None => Target::NewPrimary,
        };
        groups.push(Group {
            series_uid: instance.series_uid.clone(),
            key,
            target,
            instances: vec![instance],
        });
    }
    groups
}

/// Adds the instances of `addition` (a document of the same series) to
/// `document`. Attributes `document` already has keep their values.
pub fn merge(document: &mut Json, addition: &Json) {
    for level in ["Patient", "Study"] {
        if let (Some(into), Some(from)) = (
            document[level]["DICOM"].as_object_mut(),
            addition[level]["DICOM"].as_object(),
        ) {
            keep_first(into, from);
        }
    }
    let Some(added_series) = addition["Study"]["Series"].as_object() else {
        return;
    };
    for (uid, series) in added_series {
        let all = &mut document["Study"]["Series"];
        if all.get(uid).is_none() {
            all[uid] = series.clone();
            continue;
        }
        if let (Some(into), Some(from)) = (
            all[uid]["DICOM"].as_object_mut(),
            series["DICOM"].as_object(),
        ) {
            keep_first(into, from);
        }
        if let (Some(into), Some(from)) = (
            all[uid]["Instances"].as_object_mut(),
            series["Instances"].as_object(),
        ) {
            for (sop, instance) in from {
                into.insert(sop.clone(), instance.clone());
            }
        }
    }
}

fn keep_first(into: &mut Map<String, Json>, from: &Map<String, Json>) {
    for (key, value) in from {
        into.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn instance(series: &str, sop: &str, accession: &str) -> ReadInstance {
        ReadInstance {
            key: format!("{sop}.dcm"),
            study_uid: "1.2".into(),
            series_uid: series.into(),
            sop_uid: sop.into(),
            document: json!({
                "Patient": {"DICOM": {"PatientID": "P"}},
                "Study": {"DICOM": {"StudyInstanceUID": "1.2", "AccessionNumber": accession},
                    "Series": {series: {"DICOM": {"SeriesInstanceUID": series, "SeriesNumber": "1 "},
                        "Instances": {sop: {"DICOM": {}}}}}}
            }),
            frames: vec![],
            stored_transfer_syntax: String::new(),
            encode_time: Default::default(),
        }
    }

    #[test]
    fn a_series_becomes_one_primary_set_and_conflicts_go_apart() {
        let groups = group(
            vec![
                instance("1.2.3", "a", "ACC1"),
                instance("1.2.3", "b", "ACC1 "),
                instance("1.2.3", "c", "ACC2"),
                instance("1.2.4", "d", "ACC1"),
                instance("1.2.3", "e", "ACC2"),
            ],
            |_| None,
        );
        let shape: Vec<(Target, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.target.clone(),
                    g.instances.iter().map(|i| i.sop_uid.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (Target::NewPrimary, vec!["a", "b"]),
                (Target::NewNonPrimary, vec!["c", "e"]),
                (Target::NewPrimary, vec!["d"]),
            ]
        );
    }

    #[test]
    fn an_existing_primary_set_takes_agreeing_instances_as_a_merge() {
        let existing = grouping_key(&instance("1.2.3", "x", "ACC1").document, "1.2.3");
        let groups = group(
            vec![
                instance("1.2.3", "a", "ACC1"),
                instance("1.2.3", "b", "ACC9"),
            ],
            |series| (series == "1.2.3").then(|| ("set".to_owned(), existing.clone())),
        );
        assert_eq!(groups[0].target, Target::Merge("set".into()));
        assert_eq!(groups[1].target, Target::NewNonPrimary);
    }

    #[test]
    fn merging_adds_instances_and_keeps_existing_values() {
        let mut doc = instance("1.2.3", "a", "ACC1").document;
        let mut other = instance("1.2.3", "b", "ACC1").document;
        other["Patient"]["DICOM"]["PatientSex"] = json!("O");
        other["Patient"]["DICOM"]["PatientID"] = json!("CHANGED");
        merge(&mut doc, &other);
        let instances = doc["Study"]["Series"]["1.2.3"]["Instances"]
            .as_object()
            .unwrap();
        assert_eq!(instances.len(), 2);
        assert_eq!(doc["Patient"]["DICOM"]["PatientID"], "P");
        assert_eq!(doc["Patient"]["DICOM"]["PatientSex"], "O");
    }
}
