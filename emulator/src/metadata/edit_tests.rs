//! Tests of the metadata changes of UpdateImageSetMetadata.

use serde_json::{Value as Json, json};

use super::edit::*;

fn document() -> Json {
    json!({
        "SchemaVersion": "1.1",
        "Patient": {"DICOM": {"PatientID": "SYN-1", "PatientName": "SYNTHETIC^ONE"}},
        "Study": {"DICOM": {"StudyInstanceUID": "1.2", "StudyDescription": "CT HEAD"},
            "Series": {"1.2.3": {"DICOM": {"SeriesInstanceUID": "1.2.3", "Modality": "CT"},
                "Instances": {
                    "1.2.3.1": {"DICOM": {"SOPInstanceUID": "1.2.3.1", "InstanceNumber": "1 "}},
                    "1.2.3.2": {"DICOM": {"SOPInstanceUID": "1.2.3.2"}}}}}}
    })
}

fn change(value: Json) -> Json {
    let bytes = serde_json::to_vec(&value).unwrap();
    parse("updatableAttributes", &bytes).unwrap()
}

#[test]
fn shape_errors_are_named_with_their_path() {
    assert!(parse("u", b"[]").unwrap_err().contains("object"));
    assert!(
        parse("u", br#"{"Patient":{}}"#)
            .unwrap_err()
            .contains("SchemaVersion")
    );
    assert!(
        parse("u", br#"{"SchemaVersion":1.1,"Patients":{}}"#)
            .unwrap_err()
            .contains("\"Patients\"")
    );
    let err = parse(
        "u",
        br#"{"SchemaVersion":"1.1","Study":{"Series":{"1":{"Instances":{"2":{"DICM":{}}}}}}}"#,
    )
    .unwrap_err();
    assert!(err.contains("Study.Series.1.Instances.2"), "{err}");
    assert!(
        parse(
            "u",
            br#"{"SchemaVersion":1.1,"Patient":{"DICOM":{"PatientName":"A"}}}"#
        )
        .is_ok()
    );
}

#[test]
fn updates_merge_at_every_level_and_keep_the_rest() {
    let mut doc = document();
    let updates = change(json!({"SchemaVersion": "1.1",
        "Patient": {"DICOM": {"PatientName": "SYNTHETIC^TWO", "PatientSex": "O"}},
        "Study": {"DICOM": {"StudyDescription": "CT CHEST"},
            "Series": {"1.2.3": {"DICOM": {"BodyPartExamined": "CHEST"},
                "Instances": {"1.2.3.2": {"DICOM": {"InstanceNumber": "2"}}}}}}}));
    update(&mut doc, &updates, Rules::default()).unwrap();
    assert_eq!(doc["Patient"]["DICOM"]["PatientName"], "SYNTHETIC^TWO");
    assert_eq!(doc["Patient"]["DICOM"]["PatientID"], "SYN-1");
    assert_eq!(doc["Study"]["DICOM"]["StudyDescription"], "CT CHEST");
    let series = &doc["Study"]["Series"]["1.2.3"];
    assert_eq!(series["DICOM"]["BodyPartExamined"], "CHEST");
    assert_eq!(series["DICOM"]["Modality"], "CT");
    assert_eq!(
        series["Instances"]["1.2.3.2"]["DICOM"]["InstanceNumber"],
        "2"
    );
}

#[test]
fn constraints_refuse_what_the_service_refuses() {
    let cases = [
        (
            json!({"Study": {"DICOM": {"PatientName": "X"}}}),
            "belongs to the Patient level",
        ),
        (
            json!({"Study": {"DICOM": {"StudyInstanceUID": "9.9"}}}),
            "only be changed with force",
        ),
        (
            json!({"Study": {"DICOM": {"NotAnAttribute": "x"}}}),
            "not a DICOM attribute",
        ),
        (
            json!({"Patient": {"DICOM": {"OtherPatientNames": ["A", "B"]}}}),
            "multi-valued",
        ),
        (
            json!({"Study": {"Series": {"9.9": {"DICOM": {"Modality": "MR"}}}}}),
            "Series 9.9 is not",
        ),
        (
            json!({"Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.1": {"DICOM": {"Rows": "12"}}}}}}}),
            "does not fit its VR US",
        ),
        (
            json!({"Patient": {"DICOM": {"PatientBirthDate": "1984-09-13"}}}),
            "a date is YYYYMMDD",
        ),
        (
            json!({"Study": {"DICOM": {"StudyTime": "25:00"}}}),
            "a time is HHMMSS",
        ),
        (
            json!({"Study": {"DICOM": {"AccessionNumber": "A-VERY-LONG-ACCESSION"}}}),
            "at most 16 characters",
        ),
        (
            json!({"Study": {"Series": {"1.2.3": {"DICOM": {"Modality": "ct"}}}}}),
            "upper-case letters",
        ),
        (
            json!({"Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.1": {"DICOM": {"00091001": "x"}}}}}}}),
            "with force",
        ),
    ];
    for (body, expected) in cases {
        let mut body = body;
        body["SchemaVersion"] = json!("1.1");
        let mut doc = document();
        let Refusal(message) =
            update(&mut doc, &change(body.clone()), Rules::default()).unwrap_err();
        assert!(message.contains(expected), "{body}: {message}");
        assert!(
            crate::metadata::vr::message_safe(&message),
            "a failed version's message fits the model's Message pattern as written: {message}"
        );
    }
    let forced = Rules {
        force: true,
        ..Rules::default()
    };
    let mut doc = document();
    let private = change(
        json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.1": {"DICOM": {"00091001": "x"}}}}}}}),
    );
    update(&mut doc, &private, forced).unwrap();
    assert_eq!(
        doc["Study"]["Series"]["1.2.3"]["Instances"]["1.2.3.1"]["DICOM"]["00091001"],
        "x"
    );
}

#[test]
fn primary_image_sets_keep_patient_and_series_and_their_uids() {
    let primary = Rules {
        primary: true,
        ..Rules::default()
    };
    let patient =
        change(json!({"SchemaVersion": "1.1", "Patient": {"DICOM": {"PatientName": "X"}}}));
    let err = update(&mut document(), &patient, primary).unwrap_err();
    assert!(err.0.contains("includeStudyImageSets"), "{}", err.0);
    let study_wide = Rules {
        study_wide: true,
        ..primary
    };
    update(&mut document(), &patient, study_wide).unwrap();
    let study =
        change(json!({"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyDescription": "X"}}}));
    update(&mut document(), &study, primary).unwrap();
    let uid =
        change(json!({"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyInstanceUID": "9"}}}));
    let forced_primary = Rules {
        force: true,
        ..primary
    };
    assert!(
        update(&mut document(), &uid, forced_primary)
            .unwrap_err()
            .0
            .contains("even with force")
    );
}

#[test]
fn forced_uid_changes_rekey_series_and_instances() {
    let forced = Rules {
        force: true,
        ..Rules::default()
    };
    let mut doc = document();
    let updates = change(
        json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {
        "DICOM": {"SeriesInstanceUID": "1.2.4"},
        "Instances": {"1.2.3.1": {"DICOM": {"SOPInstanceUID": "1.2.4.1"}}}}}}}),
    );
    update(&mut doc, &updates, forced).unwrap();
    let series = &doc["Study"]["Series"]["1.2.4"];
    assert_eq!(series["DICOM"]["SeriesInstanceUID"], "1.2.4");
    assert!(series["Instances"]["1.2.4.1"].is_object());
    assert!(series["Instances"]["1.2.3.2"].is_object());
    assert!(doc["Study"]["Series"].get("1.2.3").is_none());
}

#[test]
fn removal_needs_the_matching_value_and_empty_objects_remove_nodes() {
    let mut doc = document();
    let wrong =
        change(json!({"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyDescription": "MR"}}}));
    assert!(
        remove(&mut doc, &wrong, Rules::default())
            .unwrap_err()
            .0
            .contains("does not match")
    );
    let right = change(
        json!({"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyDescription": "CT HEAD"},
        "Series": {"1.2.3": {"Instances": {"1.2.3.2": {}, "1.2.3.1": {"DICOM": {"InstanceNumber": "1"}}}}}}}),
    );
    remove(&mut doc, &right, Rules::default()).unwrap();
    assert!(doc["Study"]["DICOM"].get("StudyDescription").is_none());
    let instances = doc["Study"]["Series"]["1.2.3"]["Instances"]
        .as_object()
        .unwrap();
    assert_eq!(instances.len(), 1);
    assert!(
        instances["1.2.3.1"]["DICOM"]
            .get("InstanceNumber")
            .is_none(),
        "padding is not a difference"
    );
    let series = change(json!({"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {}}}}));
    remove(&mut doc, &series, Rules::default()).unwrap();
    assert!(doc["Study"]["Series"].as_object().unwrap().is_empty());
    assert!(
        remove(&mut doc, &series, Rules::default())
            .unwrap_err()
            .0
            .contains("not in the image set")
    );
}
