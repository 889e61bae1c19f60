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

use crate::metadata::combine::{GroupingKey, grouping_key};

use super::instance::ReadInstance;

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
}
