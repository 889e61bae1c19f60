//! Imports never read or write outside the emulator's S3 folder: `..` in a
//! location is refused up front; links, FIFOs and oversized files under the
//! input prefix fail one by one (and nothing of what a link points to is
//! imported or listed); an output location through a link fails the job
//! before anything is written.

use aws_sdk_medicalimaging::types::JobStatus;
use healthimaging_e2e::{Fixture, all_image_sets, write_fixtures};
use healthimaging_fixtures::FixtureSet;

#[tokio::test]
async fn locations_with_dot_segments_are_validation_errors() {
    let fx = Fixture::start(5).await;
    let ds = fx.active_datastore("attacks").await;
    for (input, output, member) in [
        (
            "s3://bucket/../../outside/",
            "s3://bucket/out/",
            "inputS3Uri",
        ),
        (
            "s3://bucket/in/../../../etc/",
            "s3://bucket/out/",
            "inputS3Uri",
        ),
        ("s3://bucket/in//x/", "s3://bucket/out/", "inputS3Uri"),
        (
            "s3://bucket/in/",
            "s3://bucket/../../chosen/",
            "outputS3Uri",
        ),
        ("s3://bucket/in/", "s3://bucket/./out/", "outputS3Uri"),
    ] {
        let error = fx
            .sdk
            .start_dicom_import_job()
            .datastore_id(&ds)
            .data_access_role_arn("arn:aws:iam::123456789012:role/ImportRole")
            .input_s3_uri(input)
            .output_s3_uri(output)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(
            error.is_validation_exception(),
            "{input} {output}: {error:?}"
        );
        assert!(
            error.to_string().contains(member),
            "{input} {output}: {error}"
        );
    }
}

#[tokio::test]
async fn links_fifos_and_large_files_fail_one_by_one_and_nothing_outside_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let outside = dir.path().join("outside");
    // A whole valid fixture set outside the S3 folder, and one inside.
    write_fixtures(FixtureSet::Ci, &outside, "b", "ci");
    let manifest = write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let input = s3.join("fixtures").join("ci").join("dicom");
    let secret = outside.join("b").join("ci").join("dicom");
    std::os::unix::fs::symlink(&secret, input.join("linked-folder")).unwrap();
    let a_file = first_file(&secret);
    std::os::unix::fs::symlink(&a_file, input.join("linked.dcm")).unwrap();
    let fifo = std::ffi::CString::new(input.join("pipe.dcm").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::write(input.join("huge.dcm"), vec![0u8; 3 * 1024 * 1024]).unwrap();

    let fx = Fixture::start_with(5, |c| {
        c.with_s3_root(&s3).with_max_object_bytes(2 * 1024 * 1024)
    })
    .await;
    let ds = fx.active_datastore("links").await;
    let job = fx
        .import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    assert_eq!(
        job.job_status(),
        &JobStatus::Completed,
        "{:?}",
        job.message()
    );
    let sets = all_image_sets(&fx.sdk, &ds).await;
    assert_eq!(
        sets.len(),
        manifest.expected_import.image_sets.len(),
        "only the inside set is imported, once"
    );
    let failures = std::fs::read_to_string(
        s3.join("fixtures")
            .join("out")
            .join(format!("{ds}-DicomImport-{}", job.job_id()))
            .join("FAILURE")
            .join("failure.ndjson"),
    )
    .unwrap();
    for (key, why) in [
        ("linked-folder", "symbolic link"),
        ("linked.dcm", "symbolic link"),
        ("pipe.dcm", "not a regular file"),
        ("huge.dcm", "limit of 2097152 bytes"),
    ] {
        let line = failures
            .lines()
            .find(|line| line.contains(key))
            .unwrap_or_else(|| panic!("{key} has a failure line: {failures}"));
        assert!(line.contains(why), "{line}");
    }
    assert_eq!(
        failures.lines().count(),
        manifest.expected_import.failures.len() + 4,
        "the fixture set's own failures and these four: {failures}"
    );
}

#[tokio::test]
async fn an_output_location_through_a_link_fails_the_job_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let chosen = dir.path().join("chosen");
    std::fs::create_dir_all(&chosen).unwrap();
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    std::os::unix::fs::symlink(&chosen, s3.join("fixtures").join("out")).unwrap();
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx.active_datastore("outputs").await;
    let job = fx
        .import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    assert_eq!(job.job_status(), &JobStatus::Failed);
    assert!(
        job.message()
            .unwrap_or_default()
            .contains("cannot be written"),
        "{:?}",
        job.message()
    );
    assert!(all_image_sets(&fx.sdk, &ds).await.is_empty());
    assert_eq!(std::fs::read_dir(&chosen).unwrap().count(), 0);
}

fn first_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_file() {
            return path;
        }
        if path.is_dir() {
            return first_file(&path);
        }
    }
    panic!("no file under {}", dir.display())
}
