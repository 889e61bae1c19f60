//! The built binary: MCP over stdio on each backend, the permission flags,
//! startup errors, and the standalone emulator.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Session, command, standalone_emulator};

const READ_TOOLS: [&str; 23] = [
    "get_datastore",
    "get_dicom_export_job",
    "get_dicom_import_job",
    "get_image_frame",
    "get_image_set",
    "get_image_set_metadata",
    "get_patient_dicomweb_studies",
    "get_patient_series",
    "get_patient_studies",
    "get_report_text",
    "get_series_montage",
    "get_series_primary_image_set",
    "get_study_primary_image_sets",
    "list_datastores",
    "list_dicom_export_jobs",
    "list_dicom_import_jobs",
    "list_image_set_versions",
    "list_tags_for_resource",
    "search_by_patient_id",
    "search_by_series_uid",
    "search_by_study_uid",
    "search_dicomweb",
    "search_image_sets",
];
const WRITE_TOOLS: [&str; 11] = [
    "bulk_update_patient_metadata",
    "cancel_dicom_export_job",
    "copy_image_set",
    "create_datastore",
    "de_identify_study",
    "start_dicom_export_job",
    "start_dicom_import_job",
    "tag_resource",
    "untag_resource",
    "update_image_set_metadata",
    "update_patient_study_metadata",
];

const DELETE_TOOLS: [&str; 10] = [
    "bulk_delete_by_criteria",
    "delete_datastore",
    "delete_image_set",
    "delete_instance_in_series",
    "delete_instance_in_study",
    "delete_patient_studies",
    "delete_series_by_uid",
    "delete_study",
    "remove_instance_from_image_set",
    "remove_series_from_image_set",
];

/// The names of the tools `session` offers, sorted.
async fn tool_names(session: &Session) -> Vec<String> {
    let mut names: Vec<String> = session
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

fn sorted(parts: &[&[&str]]) -> Vec<String> {
    let mut names: Vec<String> = parts.concat().iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

const FAKE_AWS: [(&str, &str); 3] = [
    ("AWS_REGION", "eu-west-2"),
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
];

#[tokio::test]
async fn serve_runs_on_the_embedded_emulator_by_default() {
    let session = Session::start(&["serve", "--seed", "9"], &[]).await;
    assert_eq!(
        tool_names(&session).await,
        sorted(&[&READ_TOOLS, &WRITE_TOOLS, &DELETE_TOOLS])
    );
    assert!(
        session
            .instructions()
            .contains("embedded HealthImaging emulator")
    );
    assert!(session.instructions().contains("synthetic"));
    assert!(
        session.instructions().contains("datastore `demo`"),
        "the demo set is loaded at start: {}",
        session.instructions()
    );

    let created = session
        .call("create_datastore", json!({"datastore_name": "stdio"}))
        .await;
    assert_ne!(created.is_error, Some(true), "{created:?}");
    let listed = session.call("list_datastores", json!({})).await;
    let listed = listed.structured_content.unwrap();
    assert_eq!(listed["count"], 2, "demo and the new one");
    let demo = listed["datastores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["datastore_name"] == "demo")
        .unwrap()["datastore_id"]
        .clone();

    // DICOMweb goes into the embedded emulator in this process, and an
    // export to its S3 runs to the end.
    let studies = session
        .call(
            "search_dicomweb",
            json!({"datastore_id": demo, "level": "study", "limit": 1}),
        )
        .await;
    assert_ne!(studies.is_error, Some(true), "{studies:?}");
    let study = studies.structured_content.unwrap()["records"][0]["0020000D"]["Value"][0].clone();
    let exported = session
        .call(
            "start_dicom_export_job",
            json!({"datastore_id": demo, "study_instance_uid": study,
                       "destination": "s3://exports/stdio", "wait": true}),
        )
        .await;
    let job = &exported.structured_content.unwrap()["job"];
    assert_eq!(job["de_identified"], true);
    assert!(job["exported_instances"].as_u64().unwrap() > 0, "{job}");
    // Ultrasound may show burned-in text: refused, instance by instance.
    for failure in job["failures"].as_array().into_iter().flatten() {
        assert!(
            failure["reason"].as_str().unwrap().contains("burned-in"),
            "{job}"
        );
    }
    assert!(
        matches!(
            job["status"].as_str(),
            Some("COMPLETED" | "COMPLETED_WITH_FAILURES")
        ),
        "{job}"
    );

    let stderr = session.finish().await;
    assert!(stderr.contains("holds the demo set"), "{stderr}");
    assert!(
        stderr.contains("backend: the embedded HealthImaging emulator"),
        "{stderr}"
    );
    assert!(
        stderr.contains("permissions: read, write and delete"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("\"audit\":\"tool_call\"").count(),
        4,
        "{stderr}"
    );
    assert!(
        !stderr.contains("stdio\""),
        "tool arguments never reach stderr: {stderr}"
    );
}

#[tokio::test]
async fn the_aws_backend_offers_read_tools_only_unless_allowed() {
    let session = Session::start(&["serve", "--backend", "aws"], &FAKE_AWS).await;
    assert_eq!(tool_names(&session).await, sorted(&[&READ_TOOLS]));
    assert!(
        session
            .instructions()
            .contains("AWS HealthImaging in region eu-west-2")
    );
    let stderr = session.finish().await;
    assert!(stderr.contains("permissions: read only"), "{stderr}");

    let session = Session::start(&["serve", "--backend", "aws", "--allow-write"], &FAKE_AWS).await;
    assert_eq!(
        tool_names(&session).await,
        sorted(&[&READ_TOOLS, &WRITE_TOOLS])
    );
    session.finish().await;

    let session = Session::start(
        &[
            "serve",
            "--backend",
            "aws",
            "--allow-write",
            "--allow-delete",
            "--region",
            "us-east-1",
        ],
        &FAKE_AWS,
    )
    .await;
    assert_eq!(
        tool_names(&session).await,
        sorted(&[&READ_TOOLS, &WRITE_TOOLS, &DELETE_TOOLS])
    );
    assert!(
        session.instructions().contains("region us-east-1"),
        "--region wins over AWS_REGION"
    );
    session.finish().await;
}

#[tokio::test]
async fn read_only_wins_on_the_emulator_and_the_config_file_is_read() {
    let session = Session::start(&["serve", "--read-only", "--fixtures", "none"], &[]).await;
    assert_eq!(tool_names(&session).await, sorted(&[&READ_TOOLS]));
    session.finish().await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(
        &config,
        format!(
            "backend = \"aws\"\nallow_write = true\naudit_log = {:?}\n",
            audit.to_str().unwrap()
        ),
    )
    .unwrap();
    let session = Session::start(&["serve", "--config", config.to_str().unwrap()], &FAKE_AWS).await;
    assert_eq!(
        tool_names(&session).await,
        sorted(&[&READ_TOOLS, &WRITE_TOOLS])
    );
    let bad = session
        .call("get_datastore", json!({"datastore_id": "x"}))
        .await;
    assert_eq!(bad.is_error, Some(true));
    session.finish().await;
    let records = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(records.lines().count(), 1, "{records}");
    assert!(records.contains("\"tool\":\"get_datastore\""));
}

async fn failed_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = command(args, home.path());
    cmd.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("a failed start is quick")
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test]
async fn missing_region_or_credentials_are_reported_at_start() {
    let stderr = failed_start(
        &["serve", "--backend", "aws"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ],
    )
    .await;
    assert!(stderr.contains("No AWS region is configured"), "{stderr}");
    assert!(stderr.contains("AWS_REGION"), "{stderr}");

    let stderr = failed_start(
        &["serve", "--backend", "aws"],
        &[("AWS_REGION", "us-east-1")],
    )
    .await;
    assert!(stderr.contains("No AWS credentials were found"), "{stderr}");
    assert!(
        stderr.contains("Set AWS_ACCESS_KEY_ID"),
        "says what to set: {stderr}"
    );
    assert!(
        !stderr.contains("ProviderAttempt") && stderr.lines().count() <= 2,
        "one readable message, not the provider chain's dump: {stderr}"
    );

    let stderr = failed_start(
        &[
            "serve",
            "--backend",
            "emulator",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ],
        &[],
    )
    .await;
    assert!(stderr.contains("Choose one"), "{stderr}");

    let stderr = failed_start(
        &["serve", "--config", "/nonexistent/healthimaging.toml"],
        &[],
    )
    .await;
    assert!(
        stderr.contains("Could not read the config file"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_reaches_a_standalone_emulator_through_endpoint_url() {
    let home = tempfile::tempdir().unwrap();
    let mut emulator = standalone_emulator(home.path(), &["--seed", "4"]).await;
    let session = Session::start(
        &["serve", "--allow-write"],
        &[("AWS_ENDPOINT_URL_MEDICAL_IMAGING", emulator.url.as_str())],
    )
    .await;
    assert!(
        session.instructions().contains(&emulator.url),
        "{}",
        session.instructions()
    );
    assert_eq!(
        tool_names(&session).await,
        sorted(&[&READ_TOOLS, &WRITE_TOOLS])
    );
    let created = session.call("create_datastore", json!({})).await;
    assert_ne!(created.is_error, Some(true), "{created:?}");
    session.finish().await;
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn the_standalone_emulator_announces_its_address_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut emulator =
        standalone_emulator(home.path(), &["--seed", "1", "--datastore-quota", "3"]).await;
    assert!(emulator.url.starts_with("http://127.0.0.1:"));
    let pid = emulator.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), emulator.child.wait())
        .await
        .expect("the emulator stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");

    let output = command(&["emulator", "--account-id", "12"], home.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("12 digits"));
}

#[tokio::test]
async fn fixtures_generate_writes_a_set_and_its_manifest() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("fixtures");
    let output = command(
        &[
            "fixtures",
            "generate",
            "--set",
            "ci",
            "--out",
            out.to_str().unwrap(),
            "--seed",
            "5",
        ],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("wrote the ci set (seed 5)"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["set"], "ci");
    assert_eq!(manifest["synthetic"], true);
    let first = manifest["patients"][0]["studies"][0]["series"][0]["instances"][0]["path"]
        .as_str()
        .unwrap();
    assert!(out.join(first).is_file());

    let refused = command(
        &[
            "fixtures",
            "generate",
            "--set",
            "ci",
            "--out",
            out.to_str().unwrap(),
            "--patients",
            "3",
        ],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("scale set only"));
}

#[tokio::test]
async fn the_second_start_restores_the_demo_set_from_the_cache() {
    let home = tempfile::tempdir().unwrap();
    let caches = home.path().join(".cache/healthimaging-mcp");
    // What earlier builds left: the most recently used other build's cache
    // stays (a debug and a release build take turns), older builds' and a
    // dead process's half-written cache go when this build writes its own.
    let stale = caches.join("0.1.0-1-demo-fixtures1-emulator9");
    let recent = caches.join("0.1.0-2-demo-fixtures1-emulator9");
    let partial = caches.join("0.1.0-3-demo-fixtures1-emulator9.partial-4194399");
    for (dir, age) in [(&stale, 7200), (&recent, 60), (&partial, 60)] {
        std::fs::create_dir_all(dir.join("store")).unwrap();
        let when = std::time::SystemTime::now() - Duration::from_secs(age);
        std::fs::File::open(dir)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let mut outcomes = Vec::new();
    for run in 0..2 {
        let session = Session::start_in(home.path(), &["serve", "--seed", "9"], &[], ()).await;
        let ds = session.first_datastore().await;
        // A search of the demo datastore waits for the load (on the first
        // run the import job starts only after the files are generated).
        let searched = session
            .call("search_image_sets", json!({"datastore_id": ds}))
            .await;
        assert_ne!(searched.is_error, Some(true), "run {run}: {searched:?}");
        let listed = session
            .call("list_dicom_import_jobs", json!({"datastore_id": ds}))
            .await;
        let jobs = listed.structured_content.unwrap();
        assert_eq!(
            jobs["jobs"].as_array().unwrap().len(),
            1,
            "run {run}: {jobs}"
        );
        // The import's outcome is read from the (restored) S3 folder.
        let job = session
            .call(
                "get_dicom_import_job",
                json!({"datastore_id": ds, "job_id": jobs["jobs"][0]["job_id"]}),
            )
            .await;
        let outcome = job.structured_content.unwrap()["outcome"]["imported_files"].clone();
        assert_eq!(outcome, 512, "run {run}");
        let stderr = session.finish().await;
        outcomes.push(stderr);
        // The cache is written beside the first session: wait for it.
        for _ in 0..200 {
            let complete = std::fs::read_dir(&caches)
                .unwrap()
                .flatten()
                .any(|e| e.path().join("store/snapshot.json").exists() && e.path() != stale);
            if complete {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(outcomes[0].contains("imported in"), "{}", outcomes[0]);
    assert!(
        outcomes[1].contains("restored from the cache"),
        "{}",
        outcomes[1]
    );
    assert!(!stale.exists(), "an older build's cache is removed");
    assert!(
        recent.exists(),
        "the most recently used other build's cache stays"
    );
    assert!(
        !partial.exists(),
        "a dead process's half-written cache is removed"
    );
}
