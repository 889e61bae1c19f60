//! The DICOMweb tools end to end: the server's own signed DICOMweb client
//! against the emulator's routes, checked against the demo set's manifest.

use std::collections::BTreeSet;

use healthimaging_e2e::{Mcp, demo_emulator, structured, text};
use healthimaging_fixtures::Manifest;
use healthimaging_mcp::permissions::Grant;
use serde_json::{Value, json};

#[tokio::test]
async fn patient_studies_and_qido_searches_match_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_to(&emulator, sdk, Grant::READ_ONLY, None).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let _: Option<Manifest> = None;
    for patient in manifest["patients"].as_array().unwrap() {
        let id = patient["patient_id"].as_str().unwrap();
        let answer = mcp
            .call(
                "get_patient_dicomweb_studies",
                json!({"datastore_id": ds, "patient_id": id}),
            )
            .await;
        let out = structured(&answer);
        let got: BTreeSet<&str> = out["studies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["study_instance_uid"].as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = patient["studies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["study_instance_uid"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "the studies of patient {id}");
        // The records are standard DICOM JSON with the patient's ID.
        for record in out["records"].as_array().unwrap() {
            assert_eq!(record["00100020"]["vr"], "LO");
            assert_eq!(record["00100020"]["Value"][0], id);
        }
    }

    // Series of one study, by the series search.
    let study = &manifest["patients"][0]["studies"][0];
    let study_uid = study["study_instance_uid"].as_str().unwrap();
    let out = structured(
        &mcp.call(
            "search_dicomweb",
            json!({"datastore_id": ds, "level": "series", "study_instance_uid": study_uid}),
        )
        .await,
    );
    let got: BTreeSet<String> = out["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["0020000E"]["Value"][0].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = study["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["series_instance_uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want);

    // Filters by keyword, with a wildcard, at study level.
    let name = manifest["patients"][0]["name"].as_str().unwrap();
    let family = name.split('^').next().unwrap();
    let out = structured(
        &mcp.call(
            "search_dicomweb",
            json!({"datastore_id": ds, "level": "study", "filters": {"PatientName": format!("{family}*")}, "include_fields": ["StudyDescription"]}),
        )
        .await,
    );
    let records = out["records"].as_array().unwrap();
    assert!(!records.is_empty());
    for record in records {
        let got = record["00100010"]["Value"][0]["Alphabetic"]
            .as_str()
            .unwrap();
        assert!(got.starts_with(family), "{got} matches {family}*");
    }

    // Bad input is refused before any request, with what to do.
    for (arguments, expected) in [
        (
            json!({"datastore_id": ds, "level": "series"}),
            "needs study_instance_uid",
        ),
        (
            json!({"datastore_id": ds, "level": "study", "filters": {"NotAKeyword": "x"}}),
            "not a DICOM keyword",
        ),
        (
            json!({"datastore_id": ds, "level": "study", "limit": 0}),
            "limit must be between 1 and 10000",
        ),
        (
            json!({"datastore_id": ds, "level": "study", "filters": {"PatientID": {"x": 1}}}),
            "must be a string",
        ),
    ] {
        let answer = mcp.call("search_dicomweb", arguments).await;
        assert_eq!(answer.is_error, Some(true));
        assert!(text(&answer).contains(expected), "{}", text(&answer));
    }

    // A study that is not there is the API's 404, named.
    let answer = mcp
        .call(
            "search_dicomweb",
            json!({"datastore_id": ds, "level": "series", "study_instance_uid": "1.2.3.4"}),
        )
        .await;
    let listed = if answer.is_error == Some(true) {
        text(&answer)
    } else {
        structured(&answer)["records"].to_string()
    };
    assert!(
        listed.contains("[]") || listed.contains("404"),
        "an unknown study has no series: {listed}"
    );
}

#[tokio::test]
async fn report_text_equals_what_the_fixtures_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_to(&emulator, sdk, Grant::READ_ONLY, None).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let mut checked = 0;
    for patient in manifest["patients"].as_array().unwrap() {
        for study in patient["studies"].as_array().unwrap() {
            let reports: Vec<&Value> = study["series"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["instances"].as_array().unwrap())
                .filter(|i| i.get("report_text").is_some())
                .collect();
            let answer = mcp
                .call(
                    "get_report_text",
                    json!({"datastore_id": ds, "study_instance_uid": study["study_instance_uid"]}),
                )
                .await;
            let out = structured(&answer);
            let got = out["reports"].as_array().unwrap();
            assert_eq!(got.len(), reports.len(), "{}", out["summary"]);
            for (report, instance) in got.iter().zip(&reports) {
                assert_eq!(report["sop_instance_uid"], instance["sop_instance_uid"]);
                assert_eq!(report["kind"], "pdf");
                assert_eq!(report["title"], "Radiology report (synthetic)");
                assert_eq!(report["date"], study["study_date"]);
                let lines: Vec<&str> = report["text"]
                    .as_str()
                    .unwrap()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let mut want: Vec<String> = vec!["Radiology report (synthetic)".to_owned()];
                want.extend(
                    instance["report_text"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l.as_str().unwrap().trim().to_owned())
                        .filter(|l| !l.is_empty()),
                );
                assert_eq!(lines, want);
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "the demo set has reports ({checked} checked)");

    // The cap cuts the text and says so.
    let study = manifest["patients"][0]["studies"][0]["study_instance_uid"].clone();
    let out = structured(
        &mcp.call(
            "get_report_text",
            json!({"datastore_id": ds, "study_instance_uid": study, "max_chars": 100}),
        )
        .await,
    );
    if let Some(first) = out["reports"].as_array().unwrap().first() {
        assert_eq!(first["text"].as_str().unwrap().chars().count(), 100);
        assert_eq!(first["truncated"], true);
        assert!(out["summary"].as_str().unwrap().contains("max_chars"));
    }

    // An image is not a report.
    let series = &manifest["patients"][0]["studies"][0]["series"][0];
    let answer = mcp
        .call(
            "get_report_text",
            json!({"datastore_id": ds, "study_instance_uid": study,
                   "series_instance_uid": series["series_instance_uid"],
                   "sop_instance_uid": series["instances"][0]["sop_instance_uid"]}),
        )
        .await;
    assert_eq!(answer.is_error, Some(true));
    assert!(text(&answer).starts_with("NotAReport"), "{}", text(&answer));
}

#[tokio::test]
async fn qido_pages_add_up_and_throttling_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let dicomweb = healthimaging_e2e::dicomweb_for(emulator.url());
    // Page by page gives what one big page gives.
    for (path, page) in [("/studies", 1), ("/instances", 37)] {
        let (whole, cut) = dicomweb.qido(&ds, path, &[], 10_000).await.unwrap();
        assert!(!cut);
        let (paged, cut) = dicomweb
            .qido_paged(&ds, path, &[], 10_000, page)
            .await
            .unwrap();
        assert!(!cut);
        assert_eq!(paged, whole, "{path}");
        assert!(whole.len() > 3);
        let (capped, cut) = dicomweb.qido_paged(&ds, path, &[], 3, 2).await.unwrap();
        assert!(cut, "more than 3 match");
        assert_eq!(capped, whole[..3]);
    }
    let mcp = Mcp::connect_to(&emulator, sdk, Grant::READ_ONLY, None).await;
    let fault = |count: u64| {
        json!({"operation": "SearchDICOMStudies", "fault": "throttling", "count": count})
            .to_string()
    };
    // Two throttled attempts, then an answer: the tool never sees them.
    healthimaging_e2e::raw_http(emulator.url(), "POST", "/_emulator/faults", &[], &fault(2)).await;
    let answer = mcp
        .call(
            "search_dicomweb",
            json!({"datastore_id": ds, "level": "study"}),
        )
        .await;
    assert_ne!(answer.is_error, Some(true), "{}", text(&answer));
    // Throttled beyond the retries: the tool says so.
    healthimaging_e2e::raw_http(emulator.url(), "POST", "/_emulator/faults", &[], &fault(5)).await;
    let answer = mcp
        .call(
            "search_dicomweb",
            json!({"datastore_id": ds, "level": "study"}),
        )
        .await;
    assert_eq!(answer.is_error, Some(true));
    assert!(text(&answer).contains("HTTP 429"), "{}", text(&answer));
}
