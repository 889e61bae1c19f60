//! Checking DICOM attributes before a correction is sent.
//!
//! Every attribute a correction tool is given is checked against the DICOM
//! data dictionary (dicom-rs's standard dictionary): a known keyword (or a
//! private tag, with `force`), the level of the metadata document it belongs
//! to, and its value against its Value Representation (dates, times, person
//! names, code strings, lengths, numbers), with the emulator's own checker
//! ([`healthimaging_emulator::metadata::vr`]). A refusal is a tool error that
//! names the attribute, the rule and a valid example; nothing is written and
//! no version is consumed.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;
use healthimaging_emulator::metadata::{Level, level, vr};
use serde_json::{Map, Value};

use crate::errors::ToolError;

/// Attributes HealthImaging generates: never changed.
const GENERATED: &[&str] = &[
    "SchemaVersion",
    "DatastoreID",
    "ImageSetID",
    "PixelData",
    "Checksum",
    "Width",
    "Height",
    "MinPixelValue",
    "MaxPixelValue",
    "FrameSizeInBytes",
];

/// Attributes only `force` changes.
const IDENTIFYING: &[&str] = &[
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "StudyID",
];

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Patient => "Patient",
        Level::Study => "Study",
        Level::Series => "Series",
        Level::Instance => "Instance",
    }
}

fn refused(key: &str, message: String, advice: &str) -> ToolError {
    ToolError::new(
        "InvalidAttribute",
        format!("{key}: {message}. Nothing was changed"),
        advice,
    )
}

/// Checks one attribute given for the document's `at` level.
fn check_one(key: &str, value: &Value, at: Level, force: bool) -> Result<(), ToolError> {
    if GENERATED.contains(&key) {
        return Err(refused(
            key,
            "HealthImaging generates this attribute; it cannot be changed".into(),
            "Leave it out of the change.",
        ));
    }
    if IDENTIFYING.contains(&key) && !force {
        return Err(refused(
            key,
            "a UID or the StudyID changes only with force".into(),
            "Pass force: true if the change is intended (never possible on a primary image set's UIDs).",
        ));
    }
    let private = key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit());
    if private {
        let group = u16::from_str_radix(&key[..4], 16).unwrap_or(0);
        if group % 2 == 1 {
            if at != Level::Instance || !force {
                return Err(refused(
                    key,
                    "a private attribute changes only on one SOP instance, with force".into(),
                    "Give it under Study.Series.<series>.Instances.<sop>.DICOM with force: true.",
                ));
            }
            return Ok(());
        }
    }
    let entry = if private {
        u32::from_str_radix(key, 16).ok().and_then(|n| {
            StandardDataDictionary.by_tag(dicom_core::Tag((n >> 16) as u16, n as u16))
        })
    } else {
        StandardDataDictionary.by_name(key)
    };
    let Some(entry) = entry else {
        if force {
            return Ok(());
        }
        return Err(refused(
            key,
            "not a DICOM keyword in the standard data dictionary".into(),
            "Use the attribute's DICOM keyword exactly, e.g. PatientName, PatientBirthDate, StudyDescription.",
        ));
    };
    let home = level(entry.tag());
    if home != at {
        return Err(refused(
            key,
            format!(
                "a {} level attribute, not a {} level one",
                level_name(home),
                level_name(at)
            ),
            &format!("Give it with the {} level attributes.", level_name(home)),
        ));
    }
    let VirtualVr::Exact(vr) = entry.vr() else {
        return Ok(());
    };
    match value {
        Value::Array(items) if items.iter().any(Value::is_object) => {
            if force {
                Ok(())
            } else {
                Err(refused(
                    key,
                    "a sequence, which changes only with force".into(),
                    "Pass force: true to replace a sequence.",
                ))
            }
        }
        Value::Array(items) => {
            if !force {
                return Err(refused(
                    key,
                    "several values, which change only with force".into(),
                    "Give one value, or pass force: true for a multi-valued attribute.",
                ));
            }
            items.iter().try_for_each(|item| check_value(key, vr, item))
        }
        Value::Object(_) | Value::Bool(_) => Err(refused(
            key,
            format!("its VR {vr} takes text or a number, not this"),
            &format!("Give a value such as {}.", vr::example(vr)),
        )),
        _ if force => Ok(()),
        other => check_value(key, vr, other),
    }
}

fn check_value(key: &str, vr: dicom_core::VR, value: &Value) -> Result<(), ToolError> {
    vr::check(vr, value).map_err(|misfit| {
        refused(
            key,
            format!("{} (VR {vr})", misfit.rule),
            &format!("Give a valid value, e.g. {}.", misfit.example),
        )
    })
}

/// Checks attributes given for the `at` level.
pub(crate) fn check_level(
    attributes: &Map<String, Value>,
    at: Level,
    force: bool,
) -> Result<(), ToolError> {
    attributes
        .iter()
        .try_for_each(|(key, value)| check_one(key, value, at, force))
}

/// Checks every attribute of a change in the metadata document's shape
/// (`Patient.DICOM`, `Study.DICOM`, `Study.Series.<uid>.DICOM`,
/// `…Instances.<sop>.DICOM`). Removals name attributes only: their values
/// are the stored ones and are not checked.
pub(crate) fn check_change(change: &Value, force: bool, removal: bool) -> Result<(), ToolError> {
    let dicom = |node: &Value, at: Level| -> Result<(), ToolError> {
        match node["DICOM"].as_object() {
            Some(attributes) if removal => attributes
                .keys()
                .try_for_each(|key| check_one(key, &Value::Null, at, force)),
            Some(attributes) => check_level(attributes, at, force),
            None => Ok(()),
        }
    };
    dicom(&change["Patient"], Level::Patient)?;
    dicom(&change["Study"], Level::Study)?;
    for series in change["Study"]["Series"]
        .as_object()
        .into_iter()
        .flat_map(Map::values)
    {
        dicom(series, Level::Series)?;
        for instance in series["Instances"]
            .as_object()
            .into_iter()
            .flat_map(Map::values)
        {
            dicom(instance, Level::Instance)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patient(attributes: Value) -> Result<(), ToolError> {
        check_level(attributes.as_object().unwrap(), Level::Patient, false)
    }

    #[test]
    fn refusals_name_the_attribute_the_rule_and_an_example() {
        let error = patient(json!({"PatientBirthDate": "1984-09-13"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("PatientBirthDate"), "{error}");
        assert!(error.contains("YYYYMMDD"), "{error}");
        assert!(error.contains("19840913"), "{error}");
        let error = patient(json!({"StudyDescription": "CT"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("a Study level attribute"), "{error}");
        let error = patient(json!({"PatientNmae": "X"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a DICOM keyword"), "{error}");
        let error = patient(json!({"PatientName": "A^B^C^D^E^F"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("five components"), "{error}");
        let error = patient(json!({"PatientSex": "female"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("upper-case"), "{error}");
        assert!(patient(json!({"PatientName": "DOE^JANE", "PatientBirthDate": "19700101", "PatientSex": "F"})).is_ok());
    }

    #[test]
    fn whole_changes_are_walked_level_by_level() {
        let change = json!({"Study": {"Series": {"1.2": {"Instances": {"1.2.3": {"DICOM": {"InstanceNumber": "x"}}}}}}});
        let error = check_change(&change, false, false).unwrap_err().to_string();
        assert!(
            error.contains("InstanceNumber") && error.contains("integer"),
            "{error}"
        );
        let removal = json!({"Study": {"DICOM": {"StudyDescription": "whatever it is"}}});
        assert!(check_change(&removal, false, true).is_ok());
        let uid = json!({"Study": {"DICOM": {"StudyInstanceUID": "2.25.1"}}});
        assert!(check_change(&uid, false, false).is_err());
        assert!(check_change(&uid, true, false).is_ok());
    }
}
