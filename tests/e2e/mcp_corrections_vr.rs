//! Corrections are checked before anything is written: arbitrary values,
//! valid and invalid for their attribute's VR, through
//! `update_image_set_metadata`. Every invalid one is a tool error naming the
//! attribute, with no new version; every valid one is stored exactly.
//!
//! Each generated value carries its validity, built by construction (valid
//! forms) or by a known violation (invalid forms), so the test does not
//! lean on the checker it tests.

use std::time::Duration;

use healthimaging_e2e::{Mcp, all_image_sets, ci_emulator, metadata, structured, text};
use healthimaging_mcp::permissions::Grant;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// An attribute, its level in the document, and a value with its validity.
#[derive(Debug, Clone)]
struct Case {
    keyword: &'static str,
    level: &'static str,
    value: String,
    valid: bool,
}

fn date() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (1900u32..2100, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| (format!("{y:04}{m:02}{d:02}"), true)),
        (1900u32..2100, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| (format!("{y:04}-{m:02}-{d:02}"), false)),
        (1900u32..2100, 13u32..=99, 1u32..=28)
            .prop_map(|(y, m, d)| (format!("{y:04}{m:02}{d:02}"), false)),
        (1900u32..2100, 1u32..=12, 32u32..=99)
            .prop_map(|(y, m, d)| (format!("{y:04}{m:02}{d:02}"), false)),
        "[0-9]{1,7}".prop_map(|s| (s, false)),
        "[0-9]{9,12}".prop_map(|s| (s, false)),
    ]
}

fn time() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (0u32..24, 0u32..60, 0u32..60).prop_map(|(h, m, s)| (format!("{h:02}{m:02}{s:02}"), true)),
        (0u32..24, 0u32..60).prop_map(|(h, m)| (format!("{h:02}{m:02}"), true)),
        (0u32..24, 0u32..60, 0u32..60, 0u32..999_999)
            .prop_map(|(h, m, s, f)| (format!("{h:02}{m:02}{s:02}.{f}"), true)),
        (0u32..24, 0u32..60).prop_map(|(h, m)| (format!("{h:02}:{m:02}"), false)),
        (24u32..99, 0u32..60).prop_map(|(h, m)| (format!("{h:02}{m:02}"), false)),
        (0u32..24, 60u32..99).prop_map(|(h, m)| (format!("{h:02}{m:02}"), false)),
    ]
}

fn code_string() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        "[A-Z0-9_ ]{1,16}".prop_map(|s| (s, true)),
        "[a-z]{1,16}".prop_map(|s| (s, false)),
        "[A-Z]{17,24}".prop_map(|s| (s, false)),
        "[A-Z]{0,4}[-.,;][A-Z]{0,4}".prop_map(|s| (s, false)),
    ]
}

fn person_name() -> impl Strategy<Value = (String, bool)> {
    let component = "[A-Za-z][A-Za-z -]{0,10}";
    prop_oneof![
        proptest::collection::vec(component, 1..=5).prop_map(|parts| (parts.join("^"), true)),
        proptest::collection::vec(component, 6..=8).prop_map(|parts| (parts.join("^"), false)),
        "[A-Za-z]{65,80}".prop_map(|s| (s, false)),
        ("[A-Za-z]{1,8}", "[A-Za-z]{1,8}").prop_map(|(a, b)| (format!("{a}\\{b}"), false)),
    ]
}

fn long_string(max: usize) -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        proptest::string::string_regex(&format!("[A-Za-z0-9 .-]{{1,{max}}}"))
            .unwrap()
            .prop_map(|s| (s, true)),
        proptest::string::string_regex(&format!("[A-Za-z]{{{},{}}}", max + 1, max + 20))
            .unwrap()
            .prop_map(|s| (s, false)),
        ("[A-Za-z]{1,8}", "[A-Za-z]{1,8}").prop_map(|(a, b)| (format!("{a}\\{b}"), false)),
    ]
}

fn age() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (
            0u32..1000,
            proptest::sample::select(vec!['D', 'W', 'M', 'Y'])
        )
            .prop_map(|(n, unit)| (format!("{n:03}{unit}"), true)),
        (0u32..100).prop_map(|n| (format!("{n}Y"), false)),
        (0u32..1000).prop_map(|n| (format!("{n:03}y"), false)),
    ]
}

fn decimal() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (0u32..500, 0u32..100).prop_map(|(w, f)| (format!("{w}.{f}"), true)),
        (0u32..500, 0u32..100).prop_map(|(w, f)| (format!("{w},{f}"), false)),
        "[a-z]{1,5}".prop_map(|s| (s, false)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let with = |keyword: &'static str, level: &'static str| {
        move |(value, valid): (String, bool)| Case {
            keyword,
            level,
            value,
            valid,
        }
    };
    prop_oneof![
        date().prop_map(with("PatientBirthDate", "Patient")),
        code_string().prop_map(with("PatientSex", "Patient")),
        person_name().prop_map(with("PatientName", "Patient")),
        long_string(64).prop_map(with("StudyDescription", "Study")),
        long_string(16).prop_map(with("AccessionNumber", "Study")),
        time().prop_map(with("StudyTime", "Study")),
        date().prop_map(with("StudyDate", "Study")),
        age().prop_map(with("PatientAge", "Study")),
        decimal().prop_map(with("PatientWeight", "Study")),
    ]
}

#[test]
fn every_invalid_value_is_refused_unwritten_and_every_valid_one_stored_exactly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds, id, mcp) = runtime.block_on(async {
        let (emulator, sdk, ds) = ci_emulator(dir.path()).await;
        let sets = all_image_sets(&sdk, &ds).await;
        // A non-primary image set: its Patient and Study attributes change alone.
        let id = sets
            .iter()
            .find(|s| s.is_primary() == Some(false))
            .expect("the ci set has a non-primary image set")
            .image_set_id()
            .to_owned();
        let mcp = Mcp::connect(
            sdk.clone(),
            Grant {
                write: true,
                delete: false,
            },
            Duration::from_secs(300),
        )
        .await;
        (emulator, sdk, ds, id, mcp)
    });
    let versions = |sdk: &aws_sdk_medicalimaging::Client| {
        let (sdk, ds, id) = (sdk.clone(), ds.clone(), id.clone());
        async move {
            sdk.list_image_set_versions()
                .datastore_id(&ds)
                .image_set_id(&id)
                .send()
                .await
                .unwrap()
                .image_set_properties_list()
                .len()
        }
    };
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            runtime.block_on(async {
                let before = versions(&sdk).await;
                let change = json!({case.level: {"DICOM": {case.keyword: case.value}}});
                let result = mcp
                    .call(
                        "update_image_set_metadata",
                        json!({"datastore_id": ds, "image_set_id": id, "updatable_attributes": change}),
                    )
                    .await;
                let after = versions(&sdk).await;
                if case.valid {
                    prop_assert_ne!(result.is_error, Some(true), "{:?}: {}", case, text(&result));
                    let out = structured(&result);
                    prop_assert_eq!(&out["result"]["outcome"], "done", "{:?}: {}", case, out);
                    prop_assert_eq!(after, before + 1);
                    let document = metadata(&sdk, &ds, &id, None).await;
                    prop_assert_eq!(
                        &document[case.level]["DICOM"][case.keyword],
                        &Value::String(case.value.clone()),
                        "stored exactly"
                    );
                } else {
                    prop_assert_eq!(result.is_error, Some(true), "{:?} was accepted", case);
                    let message = text(&result);
                    prop_assert!(message.contains(case.keyword), "{:?}: {}", case, message);
                    prop_assert_eq!(after, before, "no version consumed: {:?}", case);
                }
                Ok(())
            })
        })
        .unwrap();
}
