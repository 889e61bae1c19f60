//! boto3 and the AWS CLI against the standalone emulator: independent
//! clients of the wire protocol, with their own serializers and validators.

#[path = "support/python.rs"]
mod python;
mod support;

use std::process::Command;

use support::standalone_emulator;

fn run(program: &str, args: &[&str], endpoint: &str) -> std::process::Output {
    Command::new(python::bin().join(program))
        .args(args)
        .env("AWS_ENDPOINT_URL_MEDICAL_IMAGING", endpoint)
        .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the Python client runs")
}

fn assert_ok(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn boto3_drives_the_whole_control_plane() {
    let bin = python::bin();
    let home = tempfile::tempdir().unwrap();
    let mut emulator =
        standalone_emulator(home.path(), &["--seed", "2", "--transition-delay-ms", "50"]).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/python/control_plane.py"
    );
    let output = run(
        bin.join("python").to_str().unwrap(),
        &[script],
        &emulator.url,
    );
    assert_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("control plane: all checks passed"),
        "{stdout}"
    );
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn the_aws_cli_lists_and_creates_datastores() {
    let home = tempfile::tempdir().unwrap();
    let mut emulator = standalone_emulator(home.path(), &["--seed", "3"]).await;
    let created = run(
        "aws",
        &[
            "medical-imaging",
            "create-datastore",
            "--datastore-name",
            "cli-store",
            "--output",
            "json",
        ],
        &emulator.url,
    );
    assert_ok(&created);
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = created["datastoreId"].as_str().unwrap();
    assert_eq!(id.len(), 32);

    let listed = run(
        "aws",
        &["medical-imaging", "list-datastores", "--output", "json"],
        &emulator.url,
    );
    assert_ok(&listed);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed["datastoreSummaries"][0]["datastoreName"],
        "cli-store"
    );

    let missing = run(
        "aws",
        &[
            "medical-imaging",
            "get-datastore",
            "--datastore-id",
            "0123456789abcdef0123456789abcdef",
        ],
        &emulator.url,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn boto3_imports_searches_and_reads_metadata_and_frames() {
    let bin = python::bin();
    let home = tempfile::tempdir().unwrap();
    let s3 = home.path().join("s3");
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Ci,
        seed: 3,
        patients: None,
    };
    let manifest = healthimaging_fixtures::write(&spec, &s3.join("fixtures").join("ci")).unwrap();
    let mut emulator = standalone_emulator(
        home.path(),
        &[
            "--seed",
            "4",
            "--transition-delay-ms",
            "0",
            "--s3-root",
            s3.to_str().unwrap(),
        ],
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/data_plane.py");
    let output = run(
        bin.join("python").to_str().unwrap(),
        &[
            script,
            &manifest.expected_import.image_sets.len().to_string(),
        ],
        &emulator.url,
    );
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("data plane: all checks passed"));
    let out = s3.join("fixtures").join("boto3-out");
    let job_folder = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let failures = std::fs::read_to_string(job_folder.join("FAILURE/failure.ndjson")).unwrap();
    assert_eq!(
        failures.lines().count(),
        manifest.expected_import.failures.len()
    );
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn dicomweb_client_and_pydicom_search_and_retrieve() {
    let bin = python::bin();
    let home = tempfile::tempdir().unwrap();
    let s3 = home.path().join("s3");
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Ci,
        seed: 5,
        patients: None,
    };
    let root = s3.join("fixtures").join("ci");
    healthimaging_fixtures::write(&spec, &root).unwrap();
    let mut emulator = standalone_emulator(
        home.path(),
        &[
            "--seed",
            "6",
            "--transition-delay-ms",
            "0",
            "--s3-root",
            s3.to_str().unwrap(),
        ],
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/dicomweb.py");
    let manifest = root.join("manifest.json");
    let output = run(
        bin.join("python").to_str().unwrap(),
        &[script, manifest.to_str().unwrap()],
        &emulator.url,
    );
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("dicomweb: all checks passed"));
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn signatures_are_verified_when_asked_for() {
    let bin = python::bin();
    let home = tempfile::tempdir().unwrap();
    let support::StandaloneEmulator { mut child, url } = support::standalone_emulator_with(
        home.path(),
        &["--transition-delay-ms", "0", "--verify-sigv4"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
        ],
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/sigv4.py");
    let output = run(bin.join("python").to_str().unwrap(), &[script], &url);
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("sigv4: all checks passed"));
    // The AWS CLI signs too.
    let listed = run(
        bin.join("aws").to_str().unwrap(),
        &["medical-imaging", "list-datastores"],
        &url,
    );
    assert_ok(&listed);
    child.start_kill().unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("SigV4 signatures verified (access key AKIDEXAMPLE, region us-east-1)"),
        "the start-up line says so: {stderr}"
    );

    // Without the credentials to check against, the emulator refuses to start.
    let refused = support::command(&["emulator", "--verify-sigv4"], home.path())
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("AWS_SECRET_ACCESS_KEY"));
}

#[tokio::test]
async fn orthanc_searches_retrieves_and_stores_through_dicomweb() {
    // Debian's orthanc and orthanc-dicomweb, installed by .ci/run.
    let orthanc = std::path::Path::new("/usr/sbin/Orthanc");
    let plugin = std::path::Path::new("/usr/share/orthanc/plugins/libOrthancDicomWeb.so");
    if !orthanc.exists() || !plugin.exists() {
        eprintln!(
            "skipped: Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)"
        );
        return;
    }
    let bin = python::bin();
    let home = tempfile::tempdir().unwrap();
    let s3 = home.path().join("s3");
    let spec = healthimaging_fixtures::Spec {
        set: healthimaging_fixtures::FixtureSet::Ci,
        seed: 8,
        patients: None,
    };
    healthimaging_fixtures::write(&spec, &s3.join("fixtures").join("ci")).unwrap();
    let mut emulator = standalone_emulator(
        home.path(),
        &[
            "--transition-delay-ms",
            "0",
            "--s3-root",
            s3.to_str().unwrap(),
        ],
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/orthanc.py");
    let output = run(
        bin.join("python").to_str().unwrap(),
        &[script],
        &emulator.url,
    );
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("orthanc: all checks passed"));
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn the_developer_guides_curl_stow_is_signed_and_stored() {
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--aws-sigv4",
                "aws:amz:us-east-1:medical-imaging",
            ])
            .args(["--user", "AKIDCURL:curl-secret"])
            .args(args)
            .output()
    };
    if curl(&["--version"]).is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let fixtures = home.path().join("fixtures");
    let manifest = healthimaging_fixtures::write(
        &healthimaging_fixtures::Spec {
            set: healthimaging_fixtures::FixtureSet::Ci,
            seed: 9,
            patients: None,
        },
        &fixtures,
    )
    .unwrap();
    let support::StandaloneEmulator { mut child, url } = support::standalone_emulator_with(
        home.path(),
        &["--transition-delay-ms", "0", "--verify-sigv4"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDCURL"),
            ("AWS_SECRET_ACCESS_KEY", "curl-secret"),
        ],
    )
    .await;
    let created = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"clientToken":"curl","datastoreName":"curl"}"#,
        &format!("{url}/datastore"),
    ])
    .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let ds = created["datastoreId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let instance = manifest
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .flat_map(|s| &s.series)
        .flat_map(|s| &s.instances)
        .find(|i| i.pixels.is_some())
        .unwrap();
    // The developer guide's form: one Part 10 file, application/dicom, SigV4 by curl.
    let stored = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/dicom",
        "-H",
        "Accept: application/dicom+json",
        "--data-binary",
        &format!("@{}", fixtures.join(&instance.path).display()),
        &format!("{url}/datastore/{ds}/studies"),
    ])
    .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(
        stored["00081199"]["Value"][0]["00081155"]["Value"][0],
        serde_json::json!(instance.sop_instance_uid),
        "{stored}"
    );
    let found = curl(&[&format!("{url}/datastore/{ds}/instances")]).unwrap();
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    // The same request unsigned is refused.
    let unsigned = Command::new("curl")
        .args(["--silent", &format!("{url}/datastore/{ds}/instances")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unsigned.stdout).contains("Missing Authentication Token"));
    child.start_kill().unwrap();
}
