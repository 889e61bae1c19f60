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
//!
//! A job's files are grouped by series and those attributes ([`plan`]), in
//! the order their first file comes; each group is then written in its own
//! transaction, where [`target`] decides against the datastore as it is at
//! that moment. A group written earlier in the job counts as existing, so
//! the first group of a series becomes its primary image set and later
//! groups that disagree with it become non-primary.

use crate::metadata::combine::GroupingKey;

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

/// Files bound for one image set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The series.
    pub series_uid: String,
    /// The attributes every instance of the group agrees on.
    pub key: GroupingKey,
    /// The input keys of its files, in input order.
    pub files: Vec<String>,
}

/// Groups files, given in input order with their series and key.
pub fn plan(files: impl IntoIterator<Item = (String, String, GroupingKey)>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (file, series_uid, key) in files {
        match groups
            .iter_mut()
            .find(|g| g.series_uid == series_uid && g.key == key)
        {
            Some(group) => group.files.push(file),
            None => groups.push(Group {
                series_uid,
                key,
                files: vec![file],
            }),
        }
    }
    groups
}

/// Where a group with `key` goes, given the series' primary image set and
/// its key, if the datastore has one.
pub fn target(key: &GroupingKey, existing_primary: Option<(String, GroupingKey)>) -> Target {
    match existing_primary {
        Some((id, primary)) if primary == *key => Target::Merge(id),
        Some(_) => Target::NewNonPrimary,
        None => Target::NewPrimary,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(accession: &str) -> GroupingKey {
        vec![json!("P"), json!(accession)]
    }

    #[test]
    fn files_group_by_series_and_attributes_in_first_file_order() {
        let groups = plan([
            ("a".into(), "1.2.3".into(), key("ACC1")),
            ("b".into(), "1.2.3".into(), key("ACC1")),
            ("c".into(), "1.2.3".into(), key("ACC2")),
            ("d".into(), "1.2.4".into(), key("ACC1")),
            ("e".into(), "1.2.3".into(), key("ACC2")),
        ]);
        let shape: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.series_uid.as_str(),
                    g.files.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("1.2.3", vec!["a", "b"]),
                ("1.2.3", vec!["c", "e"]),
                ("1.2.4", vec!["d"]),
            ]
        );
    }

    #[test]
    fn an_existing_primary_takes_agreeing_groups_and_not_the_others() {
        assert_eq!(target(&key("A"), None), Target::NewPrimary);
        assert_eq!(
            target(&key("A"), Some(("set".into(), key("A")))),
            Target::Merge("set".into())
        );
        assert_eq!(
            target(&key("B"), Some(("set".into(), key("A")))),
            Target::NewNonPrimary
        );
    }
}
