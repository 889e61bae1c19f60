//! Export jobs and de-identified copies end to end, through MCP, against a
//! standalone emulator holding the demo set: to a folder, to the emulator's
//! S3, by STOW-RS to another datastore, with the two-phase confirmation of
//! identified exports, cancellation, resumption after a restart, and the
//! refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use healthimaging_e2e::{Mcp, demo_emulator, raw_http, structured, text};
use healthimaging_mcp::config::ExportPolicy;
use healthimaging_mcp::export::Destination;
use serde_json::{Value, json};

/// The first patient's first study, by UID.
fn first_study(manifest: &Value) -> String {
    manifest["patients"][0]["studies"][0]["study_instance_uid"]
        .as_str()
        .expect("a study")
        .to_owned()
}

/// The SOP instances of `study` that DICOMweb addresses: those of its
/// primary image sets, as the manifest expects the import to make them.
fn primary_instances(manifest: &Value, study: &str) -> BTreeSet<String> {
    manifest["expected_import"]["image_sets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["study_instance_uid"] == study && s["primary"] == true)
        .flat_map(|s| s["sop_instance_uids"].as_array().unwrap())
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

/// Every file under `dir` ending in `.dcm`, by path.
fn dicom_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "dcm") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn sha256(bytes: &[u8]) -> String {
    healthimaging_mcp::export::run::sha256_hex(bytes)
}

fn read(path: &Path) -> dicom_object::DefaultDicomObject {
    dicom_object::open_file(path).unwrap()
}

fn text_of(object: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

async fn wait_done(mcp: &Mcp, job_id: &str) -> Value {
    for _ in 0..600 {
        let job = structured(
            &mcp.call("get_dicom_export_job", json!({"job_id": job_id}))
                .await,
        )["job"]
            .clone();
        if !matches!(job["status"].as_str(), Some("SUBMITTED" | "IN_PROGRESS")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("export job {job_id} did not end in 30 s");
}

#[tokio::test]
async fn a_study_to_a_folder_identified_with_its_manifest_and_dcmdump() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_exporting(&emulator, sdk, &state, ExportPolicy::default()).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let study = first_study(&manifest);
    let expected = primary_instances(&manifest, &study);
    let folder = state.join("exports");
    let answer = mcp
        .call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "study_instance_uid": study,
                   "destination": format!("file://{}", folder.display()), "wait": true}),
        )
        .await;
    let out = structured(&answer);
    let job = &out["job"];
    assert_eq!(job["status"], "COMPLETED", "{}", out["summary"]);
    assert_eq!(
        job["de_identified"], false,
        "a local folder is identified by default"
    );
    assert_eq!(job["total_instances"], expected.len());
    assert_eq!(job["exported_instances"], expected.len());
    let root = folder.join(job["job_id"].as_str().unwrap());
    let files = dicom_files(&root);
    assert_eq!(files.len(), expected.len());
    // Study/Series/SOP.dcm, exactly the study's primary instances.
    let mut got = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let parts: Vec<_> = relative.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{relative:?}");
        assert_eq!(parts[0], study);
        let object = read(file);
        assert_eq!(
            text_of(&object, dicom_dictionary_std::tags::SERIES_INSTANCE_UID),
            parts[1]
        );
        got.insert(parts[2].trim_end_matches(".dcm").to_owned());
    }
    assert_eq!(got, expected);
    // The manifest lists every file with its checksum.
    let written: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let listed = written["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len());
    for entry in listed {
        let bytes = std::fs::read(root.join(entry["path"].as_str().unwrap())).unwrap();
        assert_eq!(entry["sha256"].as_str().unwrap(), sha256(&bytes));
        assert_eq!(entry["bytes"], bytes.len());
    }
    assert_eq!(
        job["manifest"].as_str().unwrap(),
        format!("file://{}/manifest.json", root.display())
    );
    // An independent reader: dcmtk's dcmdump.
    if std::process::Command::new("dcmdump")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped the dcmdump check: dcmtk is not installed");
    } else {
        for file in &files {
            let out = std::process::Command::new("dcmdump")
                .arg("-q")
                .arg(file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "dcmdump {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains(&study));
        }
    }
    // Listed, newest first, with what it exported.
    let listed = structured(&mcp.call("list_dicom_export_jobs", json!({})).await);
    assert_eq!(listed["jobs"][0]["job_id"], job["job_id"]);
    assert_eq!(listed["jobs"][0]["selection"], format!("study {study}"));
}

#[tokio::test]
async fn a_patient_to_the_emulators_s3_is_de_identified_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_exporting(&emulator, sdk, &state, ExportPolicy::default()).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let patient = &manifest["patients"][1];
    let id = patient["patient_id"].as_str().unwrap();
    let name = patient["name"].as_str().unwrap();
    let studies: Vec<String> = patient["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["study_instance_uid"].as_str().unwrap().to_owned())
        .collect();
    let expected: usize = studies
        .iter()
        .map(|s| primary_instances(&manifest, s).len())
        .sum();
    let out = structured(
        &mcp.call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "patient_id": id,
                   "destination": "s3://research-exports/deid/batch-1", "wait": true}),
        )
        .await,
    );
    let job = &out["job"];
    assert_eq!(job["de_identified"], true, "S3 is de-identified by default");
    assert_eq!(job["status"], "COMPLETED", "{}", out["summary"]);
    assert_eq!(job["exported_instances"], expected);
    let job_id = job["job_id"].as_str().unwrap();
    let root = emulator
        .s3_root()
        .join("research-exports/deid/batch-1")
        .join(job_id);
    assert_eq!(
        job["manifest"],
        format!("s3://research-exports/deid/batch-1/{job_id}/manifest.json")
    );
    let files = dicom_files(&root);
    assert_eq!(files.len(), expected);
    let family = name.split('^').next().unwrap();
    let mut study_map: BTreeMap<String, String> = BTreeMap::new();
    let mut pseudonyms = BTreeSet::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let haystack = String::from_utf8_lossy(&bytes);
        assert!(
            !haystack.contains(id),
            "the patient ID survives in {}",
            file.display()
        );
        assert!(
            !haystack.contains(family),
            "the patient name survives in {}",
            file.display()
        );
        for study in &studies {
            assert!(!haystack.contains(study.as_str()), "a study UID survives");
        }
        let object = read(file);
        use dicom_dictionary_std::tags;
        assert_eq!(text_of(&object, tags::PATIENT_IDENTITY_REMOVED), "YES");
        assert!(text_of(&object, tags::DEIDENTIFICATION_METHOD).starts_with("PS3.15"));
        pseudonyms.insert(text_of(&object, tags::PATIENT_ID));
        let new_study = text_of(&object, tags::STUDY_INSTANCE_UID);
        assert!(new_study.starts_with("2.25."));
        // The file sits where its new UIDs say.
        let relative = file.strip_prefix(&root).unwrap();
        assert_eq!(relative.iter().next().unwrap().to_str().unwrap(), new_study);
        study_map.insert(text_of(&object, tags::SERIES_INSTANCE_UID), new_study);
    }
    assert_eq!(
        pseudonyms.len(),
        1,
        "one pseudonym for one patient: {pseudonyms:?}"
    );
    assert!(pseudonyms.iter().next().unwrap().starts_with("ANON-"));
    let distinct: BTreeSet<&String> = study_map.values().collect();
    assert_eq!(
        distinct.len(),
        studies.len(),
        "studies stay studies under new UIDs"
    );
}

#[tokio::test]
async fn identified_export_to_a_stow_rs_endpoint_needs_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let target = healthimaging_e2e::create_active_datastore(&sdk, "stow-target").await;
    let url = format!("{}/datastore/{target}/studies", emulator.url());
    let policy = ExportPolicy {
        allowed: vec![Destination::parse(&url).unwrap()],
        ..ExportPolicy::default()
    };
    let mcp = Mcp::connect_exporting(&emulator, sdk.clone(), &state, policy).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let study = first_study(&manifest);
    let expected = primary_instances(&manifest, &study);
    let arguments = json!({"datastore_id": ds, "study_instance_uid": study, "destination": url,
                           "de_identify": false, "wait": true});
    let preview = structured(&mcp.call("start_dicom_export_job", arguments.clone()).await);
    assert_eq!(preview["phase"], "preview");
    assert!(preview.get("job").is_none());
    let summary = preview["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("{} instances", expected.len())),
        "{summary}"
    );
    assert!(summary.contains("WITHOUT de-identification"), "{summary}");
    assert!(summary.contains(&url), "{summary}");
    // Nothing was sent.
    let none = sdk
        .search_image_sets()
        .datastore_id(&target)
        .send()
        .await
        .unwrap();
    assert!(none.image_sets_metadata_summaries().is_empty());
    // A token for other arguments is refused, with a fresh preview.
    let token = preview["confirmation_token"].as_str().unwrap();
    let mut other = arguments.clone();
    other["transfer_syntax"] = json!("1.2.840.10008.1.2.1");
    other["confirmation_token"] = json!(token);
    let refused = structured(&mcp.call("start_dicom_export_job", other).await);
    assert_eq!(refused["phase"], "preview");
    assert!(
        refused["summary"]
            .as_str()
            .unwrap()
            .starts_with("Nothing sent")
    );
    // The right token runs it.
    let preview = structured(&mcp.call("start_dicom_export_job", arguments.clone()).await);
    let mut confirmed = arguments;
    confirmed["confirmation_token"] = preview["confirmation_token"].clone();
    let out = structured(&mcp.call("start_dicom_export_job", confirmed).await);
    assert_eq!(out["job"]["status"], "COMPLETED", "{}", out["summary"]);
    assert_eq!(out["job"]["exported_instances"], expected.len());
    // The target datastore holds the study, identified, as sent.
    let found = mcp
        .call(
            "search_dicomweb",
            json!({"datastore_id": target, "level": "instance", "study_instance_uid": study}),
        )
        .await;
    let got: BTreeSet<String> = structured(&found)["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["00080018"]["Value"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    // Its manifest is kept beside the job's record.
    let manifest_path = out["job"]["manifest"].as_str().unwrap();
    assert!(manifest_path.starts_with(&format!("file://{}", state.display())));
}

#[tokio::test]
async fn de_identify_study_writes_a_copy_into_another_datastore() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_exporting(&emulator, sdk.clone(), &state, ExportPolicy::default()).await;
    let created = structured(
        &mcp.call("create_datastore", json!({"datastore_name": "research"}))
            .await,
    );
    let target = created["datastore"]["datastore_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let patient = &manifest["patients"][0];
    let study = patient["studies"][0]["study_instance_uid"]
        .as_str()
        .unwrap();
    let expected = primary_instances(&manifest, study);
    // Not into its own datastore.
    let same = mcp
        .call(
            "de_identify_study",
            json!({"datastore_id": ds, "study_instance_uid": study, "destination_datastore_id": ds}),
        )
        .await;
    assert_eq!(same.is_error, Some(true));
    let out = structured(
        &mcp.call(
            "de_identify_study",
            json!({"datastore_id": ds, "study_instance_uid": study, "destination_datastore_id": target,
                   "de_identification": {"retain_modified_dates": true}, "wait": true}),
        )
        .await,
    );
    assert_eq!(out["job"]["status"], "COMPLETED", "{}", out["summary"]);
    assert_eq!(out["job"]["exported_instances"], expected.len());
    // The copy is searchable under a pseudonym, and its metadata carries no PHI.
    let found = sdk
        .search_image_sets()
        .datastore_id(&target)
        .send()
        .await
        .unwrap();
    let sets = found.image_sets_metadata_summaries();
    assert!(!sets.is_empty());
    let id = patient["patient_id"].as_str().unwrap();
    let family = patient["name"].as_str().unwrap().split('^').next().unwrap();
    for set in sets {
        let tags = set.dicom_tags().unwrap();
        assert!(tags.dicom_patient_id().unwrap().starts_with("ANON-"));
        assert_ne!(tags.dicom_study_instance_uid(), Some(study));
        let document = healthimaging_e2e::metadata(&sdk, &target, set.image_set_id(), None).await;
        let text = document.to_string();
        assert!(!text.contains(id) && !text.contains(family) && !text.contains(study));
        // Dates moved back, and say so.
        assert_eq!(
            document["Patient"]["DICOM"]["PatientIdentityRemoved"].as_str(),
            Some("YES"),
            "{}",
            document["Patient"]
        );
    }
    let original_date = patient["studies"][0]["study_date"].as_str().unwrap();
    let copy_date = sets[0]
        .dicom_tags()
        .unwrap()
        .dicom_study_date()
        .unwrap_or_default();
    assert_ne!(copy_date, original_date);
    assert_eq!(copy_date.len(), 8);
}

#[tokio::test]
async fn refusals_name_what_is_wrong_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect_exporting(&emulator, sdk, &state, ExportPolicy::default()).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let study = manifest["patients"][0]["studies"][0]["study_instance_uid"].clone();
    for (arguments, expected) in [
        (
            json!({"datastore_id": ds, "study_instance_uid": study, "destination": "file:///tmp/elsewhere"}),
            "DestinationNotAllowed",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": study, "destination": "dicom://PACS@127.0.0.1:104"}),
            "DestinationNotAllowed",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": study,
                   "destination": format!("file://{}/exports/../../etc", state.display())}),
            "may not contain . or ..",
        ),
        (
            json!({"datastore_id": ds, "destination": "s3://b-1/x"}),
            "select exactly one",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": study, "patient_id": "X", "destination": "s3://b-1/x"}),
            "select exactly one",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": "1.2.3.4", "destination": "s3://b-1/x"}),
            "ResourceNotFoundException",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": study, "destination": "s3://b-1/x",
                   "de_identify": false, "de_identification": {"retain_uids": true}}),
            "apply only with de_identify true",
        ),
        (
            json!({"datastore_id": ds, "study_instance_uid": study, "destination": "s3://b-1/x", "wait_timeout_secs": 0}),
            "wait_timeout_secs",
        ),
    ] {
        let answer = mcp.call("start_dicom_export_job", arguments.clone()).await;
        assert_eq!(answer.is_error, Some(true), "{arguments}");
        assert!(
            text(&answer).contains(expected),
            "{arguments}: {}",
            text(&answer)
        );
    }
    let listed = structured(&mcp.call("list_dicom_export_jobs", json!({})).await);
    assert_eq!(listed["jobs"], json!([]), "no refused call made a job");
    let unknown = mcp
        .call(
            "get_dicom_export_job",
            json!({"job_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert!(text(&unknown).starts_with("ResourceNotFoundException"));
}

#[tokio::test]
async fn a_job_can_be_cancelled_and_an_unfinished_one_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let patient = manifest["patients"][0]["patient_id"].as_str().unwrap();
    {
        let mcp =
            Mcp::connect_exporting(&emulator, sdk.clone(), &state, ExportPolicy::default()).await;
        // Each instance read takes 100 ms: time to cancel.
        let rule = json!({"operation": "GetDICOMInstance", "fault": "latency", "latencyMs": 100});
        let (status, _, _) = raw_http(
            emulator.url(),
            "POST",
            "/_emulator/faults",
            &[],
            &rule.to_string(),
        )
        .await;
        assert_eq!(status, 200);
        let started = structured(
            &mcp.call(
                "start_dicom_export_job",
                json!({"datastore_id": ds, "patient_id": patient, "destination": "s3://b-1/cancel"}),
            )
            .await,
        );
        let job_id = started["job"]["job_id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let cancelled = structured(
            &mcp.call("cancel_dicom_export_job", json!({"job_id": job_id}))
                .await,
        );
        let job = &cancelled["job"];
        assert_eq!(job["status"], "CANCELLED", "{}", cancelled["summary"]);
        let done = job["exported_instances"].as_u64().unwrap();
        assert!(done >= 1 && done < job["total_instances"].as_u64().unwrap());
        raw_http(emulator.url(), "DELETE", "/_emulator/faults", &[], "").await;
    }

    // A job a stopped server left half done: recorded with the first
    // instance sent, then picked up by the next server on the state folder.
    let first =
        Mcp::connect_exporting(&emulator, sdk.clone(), &state, ExportPolicy::default()).await;
    let out = structured(
        &first
            .call(
                "start_dicom_export_job",
                json!({"datastore_id": ds, "patient_id": patient, "destination": "s3://b-1/resume", "wait": true}),
            )
            .await,
    );
    let total = out["job"]["total_instances"].as_u64().unwrap() as usize;
    let finished_id = out["job"]["job_id"].as_str().unwrap().to_owned();
    drop(first);
    record_stopped_copy(&state, &finished_id, "0000000000000000000000000000abcd");
    let second = Mcp::connect_exporting(&emulator, sdk, &state, ExportPolicy::default()).await;
    let resumed = wait_done(&second, "0000000000000000000000000000abcd").await;
    assert_eq!(resumed["status"], "COMPLETED", "{resumed}");
    assert_eq!(resumed["exported_instances"], total);
    let written = dicom_files(
        &emulator
            .s3_root()
            .join("b-1/resume/0000000000000000000000000000abcd"),
    );
    assert_eq!(
        written.len(),
        total - 1,
        "the first instance was not sent again"
    );
}

/// Records in `state` a copy of the finished job `finished_id`, as `copy_id`,
/// as a stopped server leaves a job: in progress, its first instance sent.
/// The next server on the state folder resumes it.
fn record_stopped_copy(state: &Path, finished_id: &str, copy_id: &str) {
    let jobs = healthimaging_mcp::export::ExportJobs::open(Some(state));
    let plan = jobs.plan(finished_id).unwrap();
    let mut record = jobs
        .get(finished_id)
        .expect("the job is recorded in the state folder");
    record.job.job_id = copy_id.to_owned();
    record.job.status = healthimaging_mcp::export::JobStatus::InProgress;
    record.job.exported_instances = 1;
    record.job.bytes = 0;
    record.job.manifest = None;
    record.next = 1;
    jobs.add(record, &plan).unwrap();
}

/// A demo emulator, the MCP server's state folder, an empty folder outside
/// every allowed destination, and the first patient's first study.
struct LinkAttack {
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    outside: std::path::PathBuf,
    emulator: healthimaging_emulator::Emulator,
    sdk: aws_sdk_medicalimaging::Client,
    ds: String,
    study: String,
}

impl LinkAttack {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
        let study = first_study(&healthimaging_e2e::demo_manifest(&emulator));
        Self {
            _dir: dir,
            state,
            outside,
            emulator,
            sdk,
            ds,
            study,
        }
    }

    async fn mcp(&self) -> Mcp {
        Mcp::connect_exporting(
            &self.emulator,
            self.sdk.clone(),
            &self.state,
            ExportPolicy::default(),
        )
        .await
    }

    /// Nothing was written outside.
    fn nothing_outside(&self) {
        assert_eq!(
            std::fs::read_dir(&self.outside).unwrap().count(),
            0,
            "nothing was written through a link"
        );
    }
}

#[tokio::test]
async fn without_a_local_s3_folder_exports_go_through_the_s3_client() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    // An S3-compatible endpoint on loopback that takes every PutObject.
    let s3_server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).insert_header("ETag", "\"0\""))
        .mount(&s3_server)
        .await;
    let s3 = healthimaging_mcp::backend::s3_at_endpoint(
        &s3_server.uri(),
        "us-east-1",
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
        ),
    );
    let mcp = Mcp::connect_full(
        sdk,
        healthimaging_e2e::Setup {
            local_s3_root: None,
            state_dir: Some(state),
            s3: Some(s3),
            export: ExportPolicy {
                allowed: vec![Destination::parse("s3://research-bucket/deid").unwrap()],
                ..ExportPolicy::default()
            },
            ..healthimaging_e2e::Setup::for_emulator(&emulator)
        },
    )
    .await;
    let manifest = healthimaging_e2e::demo_manifest(&emulator);
    let study = first_study(&manifest);
    let expected = primary_instances(&manifest, &study);
    // Without a local folder, S3 needs the operator's allowlist.
    let refused = mcp
        .call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "study_instance_uid": study, "destination": "s3://other-bucket/x"}),
        )
        .await;
    assert!(
        text(&refused).starts_with("DestinationNotAllowed"),
        "{}",
        text(&refused)
    );
    let out = structured(
        &mcp.call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "study_instance_uid": study,
                   "destination": "s3://research-bucket/deid/run-7", "wait": true}),
        )
        .await,
    );
    let job = &out["job"];
    assert_eq!(job["status"], "COMPLETED", "{}", out["summary"]);
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(
        job["manifest"],
        format!("s3://research-bucket/deid/run-7/{job_id}/manifest.json")
    );
    let requests = s3_server.received_requests().await.unwrap();
    let prefix = format!("/research-bucket/deid/run-7/{job_id}/");
    let objects: BTreeMap<String, Vec<u8>> = requests
        .iter()
        .map(|r| (r.url.path().to_owned(), r.body.clone()))
        .collect();
    assert!(
        objects.keys().all(|k| k.starts_with(&prefix)),
        "{:?}",
        objects.keys()
    );
    let written: Value =
        serde_json::from_slice(&objects[&format!("{prefix}manifest.json")]).unwrap();
    let files = written["files"].as_array().unwrap();
    assert_eq!(files.len(), expected.len());
    assert_eq!(
        objects.len(),
        expected.len() + 1,
        "every instance and the manifest"
    );
    for file in files {
        let body = &objects[&format!("{prefix}{}", file["path"].as_str().unwrap())];
        assert_eq!(file["sha256"].as_str().unwrap(), sha256(body));
        assert!(contains_bytes(body, b"DICM"));
    }
    // Signed as S3 wants it.
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
        "{auth}"
    );
    assert!(auth.contains("/s3/aws4_request"), "{auth}");
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn links_planted_below_an_allowed_folder_are_not_followed() {
    let attack = LinkAttack::new().await;
    let (ds, study, outside, emulator) =
        (&attack.ds, &attack.study, &attack.outside, &attack.emulator);
    let mcp = attack.mcp().await;
    let exports = attack.state.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    std::os::unix::fs::symlink(outside, exports.join("link")).unwrap();
    std::os::unix::fs::symlink(outside, emulator.s3_root().join("linked-bucket")).unwrap();
    for destination in [
        format!("file://{}/link", exports.display()),
        format!("file://{}/link/deeper", exports.display()),
        "s3://linked-bucket/research".to_owned(),
    ] {
        let answer = mcp
            .call(
                "start_dicom_export_job",
                json!({"datastore_id": ds, "study_instance_uid": study,
                       "destination": destination, "de_identify": true, "wait": true}),
            )
            .await;
        let out = structured(&answer);
        assert_eq!(out["job"]["status"], "FAILED", "{destination}: {out}");
        assert!(
            out["job"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("exports do not follow links"),
            "{destination}: {out}"
        );
    }
    attack.nothing_outside();
    // Real folders below the allowed one are made as needed.
    let answer = mcp
        .call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "study_instance_uid": study,
                   "destination": format!("file://{}/a/b", exports.display()), "wait": true}),
        )
        .await;
    assert_eq!(structured(&answer)["job"]["status"], "COMPLETED");
    assert!(!dicom_files(&exports.join("a/b")).is_empty());
}

#[tokio::test]
async fn a_folder_replaced_by_a_link_while_a_job_was_stopped_is_not_followed() {
    let attack = LinkAttack::new().await;
    let (ds, study, outside) = (&attack.ds, &attack.study, &attack.outside);
    let exports = attack.state.join("exports");
    let first = attack.mcp().await;
    let out = structured(
        &first
            .call(
                "start_dicom_export_job",
                json!({"datastore_id": ds, "study_instance_uid": study,
                       "destination": format!("file://{}", exports.display()), "wait": true}),
            )
            .await,
    );
    assert_eq!(out["job"]["status"], "COMPLETED", "{out}");
    let finished_id = out["job"]["job_id"].as_str().unwrap().to_owned();
    drop(first);
    // The same job, recorded as stopped after its first instance; while it
    // was stopped, its study folder became a link out of the allowed folder.
    let resumed_id = "0000000000000000000000000000beef";
    record_stopped_copy(&attack.state, &finished_id, resumed_id);
    let job_folder = exports.join(resumed_id);
    std::fs::create_dir_all(&job_folder).unwrap();
    std::os::unix::fs::symlink(outside, job_folder.join(study)).unwrap();

    let second = attack.mcp().await;
    let resumed = wait_done(&second, resumed_id).await;
    assert_ne!(resumed["status"], "COMPLETED", "{resumed}");
    let said = resumed.to_string();
    assert!(said.contains("exports do not follow links"), "{said}");
    attack.nothing_outside();
}
