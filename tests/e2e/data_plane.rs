//! aws-sdk-medicalimaging against the data plane and import operations:
//! versions made by a split import, the JPEG 2000 storage format, failed
//! jobs, idempotency, and every modelled error.

use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use aws_sdk_medicalimaging::types::{ImageFrameInformation, JobStatus, LosslessStorageFormat};
use healthimaging_e2e::{Fixture, all_image_sets, metadata, wait_for_job, write_fixtures};
use healthimaging_fixtures::FixtureSet;

const ROLE: &str = "arn:aws:iam::123456789012:role/ImportRole";

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("none").to_owned()
}

#[tokio::test]
async fn a_series_imported_in_two_parts_becomes_version_two_of_its_primary_set() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let manifest = write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let split = manifest
        .edge_cases
        .iter()
        .find(|e| e.kind == "split_series")
        .unwrap();
    let folder = |path: &str| path.rsplit_once('/').unwrap().0.to_owned();
    let first = folder(&split.paths[0]);
    let second = folder(&split.paths[3]);
    assert_ne!(first, second);
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx.active_datastore("split").await;
    for part in [&first, &second] {
        let job = fx
            .import(
                &ds,
                &format!("s3://fixtures/ci/{part}/"),
                "s3://fixtures/out/",
            )
            .await;
        assert_eq!(job.job_status(), &JobStatus::Completed);
    }
    let sets = all_image_sets(&fx.sdk, &ds).await;
    assert_eq!(sets.len(), 1, "one image set for the series");
    let set = sets[0].image_set_id();
    assert_eq!(sets[0].version(), Some(2));
    assert_eq!(sets[0].is_primary(), Some(true));
    let count = |doc: &serde_json::Value| -> usize {
        doc["Study"]["Series"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["Instances"].as_object().unwrap().len())
            .sum()
    };
    assert_eq!(count(&metadata(&fx.sdk, &ds, set, Some("1")).await), 2);
    assert_eq!(count(&metadata(&fx.sdk, &ds, set, None).await), 4);
    let versions = fx
        .sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(set)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.image_set_properties_list()[0].version_id(), "2");
    let rest = fx
        .sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(set)
        .next_token(versions.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.image_set_properties_list()[0].version_id(), "1");
    assert!(rest.next_token().is_none());
    let old = fx
        .sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(set)
        .version_id("1")
        .send()
        .await
        .unwrap();
    assert_eq!(old.version_id(), "1");
    let missing = fx
        .sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(set)
        .version_id("3")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");
}

#[tokio::test]
async fn a_jpeg_2000_datastore_stores_jpeg_2000_lossless_frames() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = fx
        .sdk
        .create_datastore()
        .lossless_storage_format(LosslessStorageFormat::Jpeg2000Lossless)
        .send()
        .await
        .unwrap()
        .datastore_id;
    fx.settle();
    let job = fx
        .import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    assert_eq!(
        job.job_status(),
        &JobStatus::Completed,
        "{:?}",
        job.message()
    );
    let mut found = None;
    for summary in all_image_sets(&fx.sdk, &ds).await {
        if summary.dicom_tags().and_then(|t| t.dicom_series_modality()) != Some("CT") {
            continue;
        }
        let set = summary.image_set_id().to_owned();
        let doc = metadata(&fx.sdk, &ds, &set, None).await;
        let series = doc["Study"]["Series"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        let instance = series["Instances"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .cloned()
            .unwrap();
        found = Some((set, instance));
        break;
    }
    let (set, instance) = found.expect("a CT image set");
    assert_eq!(
        instance["StoredTransferSyntaxUID"],
        "1.2.840.10008.1.2.4.90"
    );
    let frame = &instance["ImageFrames"][0];
    let got = fx
        .sdk
        .get_image_frame()
        .datastore_id(&ds)
        .image_set_id(&set)
        .image_frame_information(
            ImageFrameInformation::builder()
                .image_frame_id(frame["ID"].as_str().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("image/j2c"));
    let bytes = got.image_frame_blob.collect().await.unwrap().into_bytes();
    assert!(
        !healthimaging_codec::htj2k::is_htj2k(&bytes),
        "plain JPEG 2000, not HTJ2K"
    );
    let decoded = healthimaging_codec::jpeg2000::decode(&bytes).unwrap();
    let buffer: Vec<u8> = decoded
        .samples
        .iter()
        .flat_map(|&s| (s as u16).to_le_bytes())
        .collect();
    assert_eq!(
        u64::from(crc32fast::hash(&buffer)),
        frame["PixelDataChecksumFromBaseToFullResolution"][0]["Checksum"]
            .as_u64()
            .unwrap()
    );
}

#[tokio::test]
async fn import_jobs_are_idempotent_validated_and_fail_on_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let fx = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let creating = fx.sdk.create_datastore().send().await.unwrap().datastore_id;
    let start = |ds: &str| {
        fx.sdk
            .start_dicom_import_job()
            .datastore_id(ds)
            .data_access_role_arn(ROLE)
            .input_s3_uri("s3://fixtures/ci/dicom/")
            .output_s3_uri("s3://fixtures/out/")
    };
    let error = start(&creating).send().await.unwrap_err();
    assert_eq!(
        code(&error),
        "ConflictException",
        "the datastore is still CREATING"
    );
    fx.settle();
    let ds = creating;
    let a = start(&ds).client_token("same").send().await.unwrap();
    let b = start(&ds).client_token("same").send().await.unwrap();
    assert_eq!(
        a.job_id(),
        b.job_id(),
        "a retry with the same token is the same job"
    );
    let other = start(&ds)
        .client_token("same")
        .job_name("other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&other), "ConflictException");
    wait_for_job(&fx.sdk, &ds, a.job_id()).await;

    for (builder, member) in [
        (start(&ds).input_s3_uri("https://bucket/x"), "inputS3Uri"),
        (start(&ds).output_s3_uri("s3://UPPER/x"), "outputS3Uri"),
        (
            start(&ds).data_access_role_arn("arn:aws:iam::12:role/x"),
            "dataAccessRoleArn",
        ),
        (start(&ds).job_name("bad name"), "jobName"),
        (
            start(&ds).input_owner_account_id("123"),
            "inputOwnerAccountId",
        ),
    ] {
        let error = builder.send().await.unwrap_err();
        assert_eq!(code(&error), "ValidationException", "{member}");
        assert!(
            error.message().unwrap_or_default().contains(member),
            "{member}: {error:?}"
        );
    }
    let unknown = start(&"0".repeat(32)).send().await.unwrap_err();
    assert_eq!(code(&unknown), "ResourceNotFoundException");

    let missing_bucket = start(&ds)
        .input_s3_uri("s3://no-such-bucket/x/")
        .send()
        .await
        .unwrap();
    let ended = wait_for_job(&fx.sdk, &ds, missing_bucket.job_id()).await;
    assert_eq!(ended.job_status(), &JobStatus::Failed);
    assert!(ended.message().unwrap().contains("no-such-bucket"));
    let empty = start(&ds)
        .input_s3_uri("s3://fixtures/nothing-here/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait_for_job(&fx.sdk, &ds, empty.job_id())
            .await
            .job_status(),
        &JobStatus::Failed
    );

    let jobs = fx
        .sdk
        .list_dicom_import_jobs()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.job_summaries().len(), 3);
    assert_eq!(
        jobs.job_summaries()[0].job_id(),
        empty.job_id(),
        "newest first"
    );
    let failed = fx
        .sdk
        .list_dicom_import_jobs()
        .datastore_id(&ds)
        .job_status(JobStatus::Failed)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.job_summaries().len(), 2);
    let too_many = fx
        .sdk
        .list_dicom_import_jobs()
        .datastore_id(&ds)
        .max_results(51)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&too_many), "ValidationException");
    let no_job = fx
        .sdk
        .get_dicom_import_job()
        .datastore_id(&ds)
        .job_id("abc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_job), "ResourceNotFoundException");
    let bad_job = fx
        .sdk
        .get_dicom_import_job()
        .datastore_id(&ds)
        .job_id("NOT-AN-ID")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_job), "ValidationException");
}

#[tokio::test]
async fn image_set_reads_answer_the_modelled_errors() {
    let fx = Fixture::start(5).await;
    let ds = fx.active_datastore("empty").await;
    let set = "a".repeat(32);
    let get = fx
        .sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&get), "ResourceNotFoundException");
    let bad = fx
        .sdk
        .get_image_set()
        .datastore_id(&ds)
        .image_set_id("BAD")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "ValidationException");
    let version = fx
        .sdk
        .get_image_set_metadata()
        .datastore_id(&ds)
        .image_set_id(&set)
        .version_id("x1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&version), "ValidationException");
    let frame = fx
        .sdk
        .get_image_frame()
        .datastore_id(&ds)
        .image_set_id(&set)
        .image_frame_information(
            ImageFrameInformation::builder()
                .image_frame_id("zz")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(["ValidationException", "ResourceNotFoundException"].contains(&code(&frame).as_str()));
    let versions = fx
        .sdk
        .list_image_set_versions()
        .datastore_id(&ds)
        .image_set_id(&set)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&versions), "ResourceNotFoundException");
    let search = fx
        .sdk
        .search_image_sets()
        .datastore_id("0".repeat(32))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&search), "ResourceNotFoundException");
}
