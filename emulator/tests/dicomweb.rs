//! DICOMweb against the `ci` fixture set: QIDO-RS checked against the
//! manifest's expected import (its primary image sets), WADO-RS checked
//! against the manifest's per-frame CRC32 of the decoded pixels and against
//! what the SDK operations serve.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use healthimaging_emulator::{EmulatorConfig, Service, router};
use healthimaging_fixtures::{FixtureSet, Manifest, Spec};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    content_type: String,
    error_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(
    service: &Arc<Service>,
    method: &str,
    uri: &str,
    accept: Option<&str>,
    body: Value,
) -> Answer {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    request(service, method, uri, &headers, body).await
}

/// One request through the router, with `headers` and a raw `body`.
async fn request(
    service: &Arc<Service>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost:4566");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router(service.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, error_type) = (
        response.status(),
        header("content-type"),
        header("x-amzn-errortype"),
    );
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        error_type,
        body,
    }
}

async fn get(service: &Arc<Service>, uri: &str) -> Answer {
    send(service, "GET", uri, None, Value::Null).await
}

/// An emulator in memory with one ACTIVE datastore and nothing in it.
async fn empty_emulator(seed: u64, token: &str) -> (Arc<Service>, String) {
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_transition_delay(Duration::ZERO),
    )
    .unwrap();
    let ds = send(
        &service,
        "POST",
        "/datastore",
        None,
        json!({"clientToken": token}),
    )
    .await
    .json()["datastoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    (service, ds)
}

struct Fixture {
    service: Arc<Service>,
    ds: String,
    manifest: Manifest,
    _dir: tempfile::TempDir,
}

async fn imported() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3/bucket/ci");
    let manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 11,
            patients: None,
        },
        &root,
    )
    .unwrap();
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(4)
            .with_transition_delay(Duration::ZERO)
            .with_s3_root(dir.path().join("s3")),
    )
    .unwrap();
    let ds = send(
        &service,
        "POST",
        "/datastore",
        None,
        json!({"clientToken": "dw"}),
    )
    .await
    .json()["datastoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = send(
        &service,
        "POST",
        &format!("/startDICOMImportJob/datastore/{ds}"),
        None,
        json!({
            "clientToken": "dw-import",
            "dataAccessRoleArn": "arn:aws:iam::123456789012:role/R",
            "inputS3Uri": format!("s3://bucket/ci/{}/", manifest.dicom_root.trim_matches('/')),
            "outputS3Uri": "s3://bucket/out/",
        }),
    )
    .await
    .json();
    let job = job["jobId"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_owned();
    loop {
        let status = send(
            &service,
            "GET",
            &format!("/getDICOMImportJob/datastore/{ds}/job/{job}"),
            None,
            Value::Null,
        )
        .await
        .json();
        match status["jobProperties"]["jobStatus"].as_str() {
            Some("COMPLETED") => break,
            Some("FAILED") => panic!("{status}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Fixture {
        service,
        ds,
        manifest,
        _dir: dir,
    }
}

fn first(record: &Value, tag: &str) -> Value {
    record[tag]["Value"][0].clone()
}

/// Study UID → (patient ID, series UID → instance UIDs) over the primary
/// image sets the manifest expects.
fn expected_primaries(
    manifest: &Manifest,
) -> BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)> {
    let mut studies: BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)> =
        BTreeMap::new();
    for set in manifest
        .expected_import
        .image_sets
        .iter()
        .filter(|s| s.primary)
    {
        let study = studies
            .entry(set.study_instance_uid.clone())
            .or_insert_with(|| (set.patient_id.clone(), BTreeMap::new()));
        study
            .1
            .entry(set.series_instance_uid.clone())
            .or_default()
            .extend(set.sop_instance_uids.iter().cloned());
    }
    studies
}

#[tokio::test]
async fn qido_finds_what_the_manifest_expects_at_every_level() {
    let f = imported().await;
    let base = format!("/datastore/{}", f.ds);
    let expected = expected_primaries(&f.manifest);

    let studies = send(
        &f.service,
        "GET",
        &format!("{base}/studies"),
        Some("application/dicom+json"),
        Value::Null,
    )
    .await;
    assert_eq!(studies.status, StatusCode::OK);
    assert_eq!(studies.content_type, "application/dicom+json");
    let studies = studies.json();
    let found: BTreeSet<String> = studies
        .as_array()
        .unwrap()
        .iter()
        .map(|s| first(s, "0020000D").as_str().unwrap().to_owned())
        .collect();
    assert_eq!(found, expected.keys().cloned().collect());
    for record in studies.as_array().unwrap() {
        let uid = first(record, "0020000D").as_str().unwrap().to_owned();
        let (patient, series) = &expected[&uid];
        assert_eq!(first(record, "00100020"), json!(patient));
        assert_eq!(first(record, "00201206"), json!(series.len()));
        let instances: usize = series.values().map(BTreeSet::len).sum();
        assert_eq!(first(record, "00201208"), json!(instances));
        assert_eq!(record["00100010"]["vr"], "PN");
        assert!(record["00100010"]["Value"][0]["Alphabetic"].is_string());
        assert!(
            record["00080061"]["Value"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // Every series of every study, then every instance of every series.
    for (study, (_, series)) in &expected {
        let listed = get(&f.service, &format!("{base}/studies/{study}/series"))
            .await
            .json();
        let uids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| first(s, "0020000E").as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            uids.iter().cloned().collect::<BTreeSet<_>>(),
            series.keys().cloned().collect()
        );
        let numbers: Vec<i64> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| first(s, "00200011").as_i64().unwrap_or(i64::MAX))
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] <= w[1]),
            "series in SeriesNumber order: {numbers:?}"
        );
        for (series_uid, instances) in series {
            let listed = get(
                &f.service,
                &format!("{base}/studies/{study}/series/{series_uid}/instances"),
            )
            .await
            .json();
            let found: BTreeSet<String> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|i| first(i, "00080018").as_str().unwrap().to_owned())
                .collect();
            assert_eq!(&found, instances);
            let numbers: Vec<i64> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|i| first(i, "00200013").as_i64().unwrap_or(i64::MAX))
                .collect();
            assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");
        }
    }

    // Filters, against a brute-force filter of the manifest.
    let patient = &f.manifest.patients[0];
    let by_patient = get(
        &f.service,
        &format!("{base}/studies?PatientID={}", patient.patient_id),
    )
    .await
    .json();
    let want: BTreeSet<&String> = expected
        .iter()
        .filter(|(_, (p, _))| *p == patient.patient_id)
        .map(|(uid, _)| uid)
        .collect();
    assert_eq!(by_patient.as_array().unwrap().len(), want.len());
    let family = patient.name.split('^').next().unwrap().to_lowercase();
    let encoded: String =
        form_urlencoded::byte_serialize(format!("{family}*").as_bytes()).collect();
    let by_name = get(&f.service, &format!("{base}/studies?00100010={encoded}"))
        .await
        .json();
    assert!(
        by_name
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["00100010"]["Value"][0]["Alphabetic"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with(&family)),
        "wildcards match names without regard to case"
    );
    assert!(by_name.as_array().unwrap().len() >= want.len());
    let study = &patient.studies[0];
    let by_date = get(
        &f.service,
        &format!(
            "{base}/studies?StudyDate={}-{}&PatientID={}",
            study.study_date, study.study_date, patient.patient_id
        ),
    )
    .await
    .json();
    assert!(
        by_date
            .as_array()
            .unwrap()
            .iter()
            .all(|s| first(s, "00080020") == json!(study.study_date))
    );
    assert!(!by_date.as_array().unwrap().is_empty());

    // Paging and fields.
    let all = studies.as_array().unwrap();
    let page = get(&f.service, &format!("{base}/studies?limit=2&offset=1"))
        .await
        .json();
    assert_eq!(
        page.as_array().unwrap().as_slice(),
        &all[1..3.min(all.len())]
    );
    let fields = get(
        &f.service,
        &format!("{base}/studies?includefield=00081030&limit=1"),
    )
    .await
    .json();
    assert!(fields[0].get("00081030").is_some());
    assert!(
        all[0].get("00100040").is_some(),
        "PatientSex is returned by default"
    );
    let everything = get(
        &f.service,
        &format!("{base}/studies?includefield=all&limit=1"),
    )
    .await
    .json();
    assert!(everything[0].as_object().unwrap().len() > all[0].as_object().unwrap().len());

    // All instances of the datastore, and refusals.
    let instances = get(&f.service, &format!("{base}/instances")).await.json();
    let total: usize = expected
        .values()
        .flat_map(|(_, s)| s.values())
        .map(BTreeSet::len)
        .sum();
    assert_eq!(instances.as_array().unwrap().len(), total);
    let unknown = get(&f.service, &format!("{base}/studies?Modality=CT")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&unknown.body).contains("PatientID (00100020)"));
    let bad_limit = get(&f.service, &format!("{base}/studies?limit=-1")).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    let xml = send(
        &f.service,
        "GET",
        &format!("{base}/studies"),
        Some("application/dicom+xml"),
        Value::Null,
    )
    .await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(xml.error_type, "NotAcceptableException");
    let nowhere = get(
        &f.service,
        &format!("/datastore/{}/studies", "0".repeat(32)),
    )
    .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
}

/// What dciodvfy (Debian's dicom3tools, installed by `.ci/run`) says is
/// wrong with a file: its Error lines.
fn dciodvfy_errors(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instance.dcm");
    std::fs::write(&path, bytes).unwrap();
    let output = std::process::Command::new("dciodvfy")
        .arg("-new")
        .arg(&path)
        .output()
        .expect("dciodvfy runs: install Debian's dicom3tools (apt-get install dicom3tools)");
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .filter(|line| line.starts_with("Error"))
        .map(str::to_owned)
        .collect()
}

/// CRC32 of the decoded pixel buffer, the manifest's `frame_crc32`.
fn crc(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(bytes);
    hasher.finalize()
}

fn multipart_parts(answer: &Answer) -> Vec<(String, Vec<u8>)> {
    let boundary = answer
        .content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary")
        .trim_matches('"')
        .to_owned();
    let delimiter = format!("--{boundary}");
    let text = &answer.body;
    let mut parts = Vec::new();
    let positions: Vec<usize> = (0..text.len().saturating_sub(delimiter.len()))
        .filter(|&i| text[i..].starts_with(delimiter.as_bytes()))
        .collect();
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delimiter.len() + 2..pair[1] - 2];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        parts.push((headers, part[split + 4..].to_vec()));
    }
    parts
}

#[tokio::test]
async fn wado_serves_instances_frames_and_metadata_faithfully() {
    let f = imported().await;
    let base = format!("/datastore/{}", f.ds);
    let primaries: Vec<_> = f
        .manifest
        .expected_import
        .image_sets
        .iter()
        .filter(|s| s.primary)
        .collect();
    let mut checked_instances = 0;
    for set in &primaries {
        let series_entry = f
            .manifest
            .patients
            .iter()
            .flat_map(|p| &p.studies)
            .flat_map(|s| &s.series)
            .find(|s| s.series_instance_uid == set.series_instance_uid)
            .unwrap();
        let (study, series) = (&set.study_instance_uid, &set.series_instance_uid);
        // Series metadata: every instance, in instance number order.
        let metadata = get(
            &f.service,
            &format!("{base}/studies/{study}/series/{series}/metadata"),
        )
        .await;
        assert_eq!(metadata.status, StatusCode::OK);
        let metadata = metadata.json();
        let sops: BTreeSet<String> = metadata
            .as_array()
            .unwrap()
            .iter()
            .map(|i| first(i, "00080018").as_str().unwrap().to_owned())
            .collect();
        let expected_sops: BTreeSet<String> = primaries
            .iter()
            .filter(|s| &s.series_instance_uid == series)
            .flat_map(|s| s.sop_instance_uids.iter().cloned())
            .collect();
        assert_eq!(sops, expected_sops);
        for instance in series_entry
            .instances
            .iter()
            .filter(|i| set.sop_instance_uids.contains(&i.sop_instance_uid))
        {
            let path = format!(
                "{base}/studies/{study}/series/{series}/instances/{}",
                instance.sop_instance_uid
            );
            let one = get(&f.service, &format!("{path}/metadata")).await.json();
            assert_eq!(first(&one[0], "0020000D"), json!(study));
            assert_eq!(first(&one[0], "00080016"), json!(instance.sop_class_uid));
            assert!(
                one[0].get("7FE00010").is_none(),
                "no pixel data in metadata"
            );
            assert!(
                one[0].get("00020010").is_none(),
                "no file meta information in metadata"
            );

            // The instance, Explicit VR Little Endian by default.
            let file = get(&f.service, &path).await;
            assert_eq!(
                file.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&file.body)
            );
            assert_eq!(
                file.content_type,
                "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
            );
            let object = dicom_object::from_reader(&file.body[128..]).expect("a Part 10 file");
            if checked_instances % 4 == 0 {
                let errors = dciodvfy_errors(&file.body);
                assert!(errors.is_empty(), "{}: {errors:#?}", instance.path);
            }
            assert_eq!(
                object.meta().transfer_syntax().trim_end_matches('\0'),
                "1.2.840.10008.1.2.1"
            );
            assert_eq!(
                object
                    .element_by_name("SOPInstanceUID")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_end_matches('\0'),
                instance.sop_instance_uid
            );
            if let Some(pixels) = instance.pixels {
                let data = object
                    .element_by_name("PixelData")
                    .unwrap()
                    .to_bytes()
                    .unwrap()
                    .to_vec();
                let frame_len = data.len() / instance.frame_crc32.len();
                for (n, expected) in instance.frame_crc32.iter().enumerate() {
                    assert_eq!(
                        crc(&data[n * frame_len..(n + 1) * frame_len]),
                        *expected,
                        "frame {n} of {} ({}x{}) equals the imported file's pixels",
                        instance.path,
                        pixels.columns,
                        pixels.rows
                    );
                }
                // Frame 1 as native bytes and as stored.
                let native = send(
                    &f.service,
                    "GET",
                    &format!("{path}/frames/1"),
                    Some("multipart/related; type=\"application/octet-stream\""),
                    Value::Null,
                )
                .await;
                assert_eq!(native.status, StatusCode::OK);
                let parts = multipart_parts(&native);
                assert_eq!(parts.len(), 1);
                assert_eq!(crc(&parts[0].1), instance.frame_crc32[0]);
                assert!(parts[0].0.contains("transfer-syntax=1.2.840.10008.1.2.1"));
                let stored = send(
                    &f.service,
                    "GET",
                    &format!("{path}/frames/1"),
                    Some("multipart/related; type=application/octet-stream; transfer-syntax=*"),
                    Value::Null,
                )
                .await;
                let stored_parts = multipart_parts(&stored);
                let as_stored = send(
                    &f.service,
                    "GET",
                    &format!("{path}?x"),
                    Some("application/dicom; transfer-syntax=*"),
                    Value::Null,
                )
                .await;
                let stored_file = dicom_object::from_reader(&as_stored.body[128..]).unwrap();
                let syntax = stored_file
                    .meta()
                    .transfer_syntax()
                    .trim_end_matches('\0')
                    .to_owned();
                // Debian's dciodvfy (2022) cannot read the HTJ2K syntaxes (2023).
                if checked_instances % 4 == 0 && !syntax.starts_with("1.2.840.10008.1.2.4.20") {
                    let errors = dciodvfy_errors(&as_stored.body);
                    assert!(
                        errors.is_empty(),
                        "{} as stored: {errors:#?}",
                        instance.path
                    );
                }
                assert!(
                    stored_parts[0]
                        .0
                        .contains(&format!("transfer-syntax={syntax}"))
                );
                if syntax != "1.2.840.10008.1.2.1" {
                    let fragments = stored_file
                        .element_by_name("PixelData")
                        .unwrap()
                        .value()
                        .fragments()
                        .unwrap()
                        .to_vec();
                    let mut codestream = stored_parts[0].1.clone();
                    if codestream.len() % 2 == 1 {
                        // Fragments are padded to an even length.
                        codestream.push(0);
                    }
                    assert!(
                        fragments[0] == codestream,
                        "the stored codestream, unchanged"
                    );
                    let refused = send(
                        &f.service,
                        "GET",
                        &path,
                        Some("application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80"),
                        Value::Null,
                    )
                    .await;
                    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
                }
                let beyond = instance.frame_crc32.len() + 1;
                let missing = get(&f.service, &format!("{path}/frames/{beyond}")).await;
                assert_eq!(missing.status, StatusCode::NOT_FOUND);
                let twice = get(&f.service, &format!("{path}/frames/1,1")).await;
                assert_eq!(twice.status, StatusCode::BAD_REQUEST);
            }
            checked_instances += 1;
        }
    }
    assert!(checked_instances > 5, "{checked_instances}");
}

#[tokio::test]
async fn wado_addresses_primaries_unless_an_image_set_is_named_and_forgets_deleted_ones() {
    let f = imported().await;
    let base = format!("/datastore/{}", f.ds);
    let set = f
        .manifest
        .expected_import
        .image_sets
        .iter()
        .find(|s| s.primary)
        .unwrap();
    let (study, series, sop) = (
        &set.study_instance_uid,
        &set.series_instance_uid,
        &set.sop_instance_uids[0],
    );
    let path = format!("{base}/studies/{study}/series/{series}/instances/{sop}/metadata");
    assert_eq!(get(&f.service, &path).await.status, StatusCode::OK);
    let found = send(
        &f.service,
        "POST",
        &format!("{base}/searchImageSets"),
        None,
        json!({"searchCriteria": {"filters": [{"operator": "EQUAL", "values": [{"DICOMSeriesInstanceUID": series}]}]}}),
    )
    .await
    .json();
    let id = found["imageSetsMetadataSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["isPrimary"] == true && s["DICOMTags"]["DICOMSeriesInstanceUID"] == json!(series)
        })
        .unwrap_or_else(|| panic!("{found}"))["imageSetId"]
        .as_str()
        .unwrap()
        .to_owned();
    let named = get(&f.service, &format!("{path}?imageSetId={id}")).await;
    assert_eq!(
        named.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&named.body)
    );
    let other_study = get(
        &f.service,
        &format!("{base}/studies/1.2.3/series/{series}/instances/{sop}/metadata?imageSetId={id}"),
    )
    .await;
    assert_eq!(other_study.status, StatusCode::NOT_FOUND);
    let bad_uid = get(&f.service, &format!("{base}/studies/not-a-uid/series")).await;
    assert_eq!(bad_uid.status, StatusCode::BAD_REQUEST);
    let post = send(
        &f.service,
        "DELETE",
        &format!("{base}/studies"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    let deleted = send(
        &f.service,
        "POST",
        &format!("{base}/imageSet/{id}/deleteImageSet"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(
        deleted.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&deleted.body)
    );
    for uri in [path.clone(), format!("{path}?imageSetId={id}")] {
        let gone = get(&f.service, &uri).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(gone.error_type, "ResourceNotFoundException");
    }
    let series_list = get(&f.service, &format!("{base}/studies/{study}/series"))
        .await
        .json();
    assert!(
        series_list
            .as_array()
            .unwrap()
            .iter()
            .all(|s| first(s, "0020000E") != json!(series)),
        "a deleted image set's series is no longer found"
    );
}

async fn post_dicom(
    service: &Arc<Service>,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    request(service, "POST", uri, headers, body).await
}

fn multipart_body(files: &[Vec<u8>], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for file in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn uids_in(answer: &Value, sequence: &str) -> Vec<String> {
    answer[sequence]["Value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["00081155"]["Value"][0].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn stow_stores_instances_as_an_import_would_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 12,
            patients: None,
        },
        dir.path(),
    )
    .unwrap();
    let (service, ds) = empty_emulator(7, "stow").await;
    let base = format!("/datastore/{ds}");
    // A series that the manifest expects whole in one primary image set.
    let set = manifest
        .expected_import
        .image_sets
        .iter()
        .find(|s| s.primary && s.sop_instance_uids.len() >= 2)
        .unwrap();
    let series = manifest
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .flat_map(|s| &s.series)
        .find(|s| s.series_instance_uid == set.series_instance_uid)
        .unwrap();
    let files: Vec<Vec<u8>> = series
        .instances
        .iter()
        .filter(|i| set.sop_instance_uids.contains(&i.sop_instance_uid))
        .map(|i| std::fs::read(dir.path().join(&i.path)).unwrap())
        .collect();
    let mut parts = files.clone();
    parts.push(b"not a DICOM file".to_vec());
    let boundary = "stow-boundary-1";
    let stored = post_dicom(
        &service,
        &format!("{base}/studies"),
        &[
            (
                "content-type",
                &format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
            ),
            ("accept", "application/dicom+json"),
        ],
        multipart_body(&parts, boundary),
    )
    .await;
    assert_eq!(
        stored.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );
    let answer = stored.json();
    let referenced: BTreeSet<String> = uids_in(&answer, "00081199").into_iter().collect();
    assert_eq!(referenced, set.sop_instance_uids.iter().cloned().collect());
    let failed = &answer["00081198"]["Value"];
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["00081197"]["Value"][0], json!(0xC000));
    assert!(
        answer["00081199"]["Value"][0]["00081190"]["Value"][0]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:4566/datastore/")
    );

    // Searchable and readable at once, through DICOMweb and the SDK.
    let study = &set.study_instance_uid;
    let instances = get(
        &service,
        &format!(
            "{base}/studies/{study}/series/{}/instances",
            set.series_instance_uid
        ),
    )
    .await
    .json();
    assert_eq!(instances.as_array().unwrap().len(), files.len());
    let found = send(
        &service,
        "POST",
        &format!("{base}/searchImageSets"),
        None,
        json!({"searchCriteria": {"filters": [{"operator": "EQUAL", "values": [{"DICOMStudyInstanceUID": study}]}]}}),
    )
    .await
    .json();
    let summaries = found["imageSetsMetadataSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1, "one image set for the series: {found}");
    assert_eq!(summaries[0]["isPrimary"], true);
    let instance = &series.instances[0];
    if let Some(_pixels) = instance.pixels {
        let file = get(
            &service,
            &format!(
                "{base}/studies/{study}/series/{}/instances/{}",
                set.series_instance_uid, instance.sop_instance_uid
            ),
        )
        .await;
        let object = dicom_object::from_reader(&file.body[128..]).unwrap();
        let data = object
            .element_by_name("PixelData")
            .unwrap()
            .to_bytes()
            .unwrap()
            .to_vec();
        let size = data.len() / instance.frame_crc32.len();
        assert_eq!(
            crc(&data[..size]),
            instance.frame_crc32[0],
            "stored pixels are the sent pixels"
        );
    }

    // StoreDICOMStudy with another study's instance: nothing stored, 409.
    let other = post_dicom(
        &service,
        &format!("{base}/studies/1.2.3.4"),
        &[("content-type", "application/dicom")],
        files[0].clone(),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(
        other.json()["00081198"]["Value"][0]["00081197"]["Value"][0],
        json!(0xA901)
    );

    // One instance again, single part and aws-chunked as SigV4 streaming sends it:
    // it replaces itself in the primary image set, as a new version.
    let file = &files[0];
    let mut chunked = Vec::new();
    for chunk in file.chunks(4096) {
        chunked.extend_from_slice(format!("{:x};chunk-signature=00\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0;chunk-signature=00\r\n\r\n");
    let again = post_dicom(
        &service,
        &format!("{base}/studies/{study}"),
        &[
            ("content-type", "application/dicom"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-decoded-content-length", &file.len().to_string()),
        ],
        chunked,
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    let id = summaries[0]["imageSetId"].as_str().unwrap();
    let current = send(
        &service,
        "POST",
        &format!("{base}/imageSet/{id}/getImageSet"),
        None,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(current["versionId"], "2");
    let after = get(
        &service,
        &format!(
            "{base}/studies/{study}/series/{}/instances",
            set.series_instance_uid
        ),
    )
    .await
    .json();
    assert_eq!(
        after.as_array().unwrap().len(),
        files.len(),
        "replaced, not added"
    );

    // Refusals.
    let plain = post_dicom(
        &service,
        &format!("{base}/studies"),
        &[("content-type", "text/plain")],
        file.clone(),
    )
    .await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    assert_eq!(plain.error_type, "ValidationException");
    let empty = post_dicom(
        &service,
        &format!("{base}/studies"),
        &[(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=b",
        )],
        b"--b--\r\n".to_vec(),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let lying = post_dicom(
        &service,
        &format!("{base}/studies"),
        &[
            ("content-type", "application/dicom"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "1"),
        ],
        b"3\r\nabc\r\n0\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(lying.status, StatusCode::BAD_REQUEST);
    let nowhere = post_dicom(
        &service,
        &format!("/datastore/{}/studies", "0".repeat(32)),
        &[("content-type", "application/dicom")],
        file.clone(),
    )
    .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let retrieve_study = get(&service, &format!("{base}/studies/{study}")).await;
    assert_eq!(retrieve_study.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// One study as the brute-force model sees it.
struct ModelStudy {
    uid: String,
    patient_id: String,
    name: String,
    date: String,
    modalities: BTreeSet<String>,
}

fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[test]
fn qido_matching_equals_a_brute_force_filter_of_the_manifest() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let f = runtime.block_on(imported());
    let expected = expected_primaries(&f.manifest);
    let mut model: Vec<ModelStudy> = Vec::new();
    for patient in &f.manifest.patients {
        for study in &patient.studies {
            let Some((_, series)) = expected.get(&study.study_instance_uid) else {
                continue;
            };
            let modalities = study
                .series
                .iter()
                .filter(|s| series.contains_key(&s.series_instance_uid))
                .map(|s| s.modality.clone())
                .collect();
            model.push(ModelStudy {
                uid: study.study_instance_uid.clone(),
                patient_id: patient.patient_id.clone(),
                name: patient.name.clone(),
                date: study.study_date.clone(),
                modalities,
            });
        }
    }
    let ids: Vec<String> = model.iter().map(|m| m.patient_id.clone()).collect();
    let names: Vec<String> = model.iter().map(|m| m.name.clone()).collect();
    let mut dates: Vec<String> = model.iter().map(|m| m.date.clone()).collect();
    dates.sort();
    let modalities: Vec<String> = model
        .iter()
        .flat_map(|m| m.modalities.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let n = model.len();
    // (patient ID: exact or prefix wildcard), (name prefix, any case), (date range), (modality)
    let strategy = (
        proptest::option::of((0..n, any::<bool>())),
        proptest::option::of((0..n, 1usize..6)),
        proptest::option::of((0..dates.len(), 0..dates.len(), any::<bool>(), any::<bool>())),
        proptest::option::of(0..modalities.len()),
    );
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(id, name, range, modality)| {
            let mut query: Vec<(String, String)> = Vec::new();
            let mut want: Vec<&ModelStudy> = model.iter().collect();
            if let Some((i, wildcard)) = id {
                let pattern = if wildcard {
                    format!("{}*", &ids[i][..ids[i].len() - 2])
                } else {
                    ids[i].clone()
                };
                want.retain(|m| glob(&pattern, &m.patient_id));
                query.push(("PatientID".into(), pattern));
            }
            if let Some((i, length)) = name {
                let prefix: String = names[i]
                    .chars()
                    .take(length)
                    .collect::<String>()
                    .to_lowercase();
                let pattern = format!("{prefix}*");
                want.retain(|m| glob(&pattern.to_uppercase(), &m.name.to_uppercase()));
                query.push(("00100010".into(), pattern));
            }
            if let Some((a, b, open_from, open_to)) = range {
                let (from, to) = (dates[a.min(b)].clone(), dates[a.max(b)].clone());
                let from = if open_from { String::new() } else { from };
                let to = if open_to && !from.is_empty() {
                    String::new()
                } else {
                    to
                };
                want.retain(|m| {
                    (from.is_empty() || m.date >= from) && (to.is_empty() || m.date <= to)
                });
                query.push(("StudyDate".into(), format!("{from}-{to}")));
            }
            if let Some(i) = modality {
                want.retain(|m| m.modalities.contains(&modalities[i]));
                query.push(("ModalitiesInStudy".into(), modalities[i].clone()));
            }
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish();
            let answer = runtime.block_on(get(
                &f.service,
                &format!("/datastore/{}/studies?{encoded}", f.ds),
            ));
            prop_assert_eq!(answer.status, StatusCode::OK);
            let got: BTreeSet<String> = answer
                .json()
                .as_array()
                .unwrap()
                .iter()
                .map(|s| first(s, "0020000D").as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = want.iter().map(|m| m.uid.clone()).collect();
            prop_assert_eq!(got, want, "query {}", encoded);
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn storage_tiers_follow_touches_on_the_emulators_clock() {
    let f = imported().await;
    let base = format!("/datastore/{}", f.ds);
    let search = || async {
        send(
            &f.service,
            "POST",
            &format!("{base}/searchImageSets"),
            None,
            json!({"maxResults": 50}),
        )
        .await
        .json()["imageSetsMetadataSummaries"]
            .as_array()
            .unwrap()
            .clone()
    };
    let tier = |id: String| {
        let service = f.service.clone();
        let base = base.clone();
        async move {
            let set = send(
                &service,
                "POST",
                &format!("{base}/imageSet/{id}/getImageSet"),
                None,
                Value::Null,
            )
            .await
            .json();
            assert!(set["lastAccessedAt"].is_number(), "{set}");
            set["storageTier"].as_str().unwrap().to_owned()
        }
    };
    let sets = search().await;
    assert!(
        sets.iter()
            .all(|s| s["storageTier"] == "FREQUENT_ACCESS" && s["lastAccessedAt"].is_number())
    );
    let days = |n: u64| json!({"advanceSeconds": n * 24 * 3600});
    let moved = send(&f.service, "POST", "/_emulator/clock", None, days(29)).await;
    assert_eq!(moved.status, StatusCode::OK);
    let first = sets[0]["imageSetId"].as_str().unwrap().to_owned();
    assert_eq!(
        tier(first.clone()).await,
        "FREQUENT_ACCESS",
        "29 days untouched"
    );
    send(&f.service, "POST", "/_emulator/clock", None, days(2)).await;
    assert!(
        search()
            .await
            .iter()
            .all(|s| s["storageTier"] == "ARCHIVE_INSTANT_ACCESS"),
        "31 days untouched"
    );

    // Touches: metadata, a frame, a WADO-RS read. GetImageSet and search are not.
    let primaries: Vec<&Value> = sets.iter().filter(|s| s["isPrimary"] == true).collect();
    assert!(primaries.len() >= 3);
    let ids: Vec<String> = primaries
        .iter()
        .map(|s| s["imageSetId"].as_str().unwrap().to_owned())
        .collect();
    let meta = send(
        &f.service,
        "POST",
        &format!("{base}/imageSet/{}/getImageSetMetadata", ids[0]),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(meta.status, StatusCode::OK);
    let doc_of = |id: String| {
        let service = f.service.clone();
        let base = base.clone();
        async move {
            let meta = send(
                &service,
                "POST",
                &format!("{base}/imageSet/{id}/getImageSetMetadata"),
                None,
                Value::Null,
            )
            .await;
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&meta.body[..]),
                &mut text,
            )
            .unwrap();
            serde_json::from_slice::<Value>(&text).unwrap()
        }
    };
    assert_eq!(
        tier(ids[0].clone()).await,
        "FREQUENT_ACCESS",
        "metadata is a touch"
    );
    // WADO-RS on the second (its document read through the cache, not the SDK).
    let second = f
        .manifest
        .expected_import
        .image_sets
        .iter()
        .filter(|s| s.primary)
        .find(|s| {
            primaries.iter().any(|p| {
                p["imageSetId"] == json!(ids[1])
                    && p["DICOMTags"]["DICOMSeriesInstanceUID"] == json!(s.series_instance_uid)
            })
        })
        .unwrap();
    let read = get(
        &f.service,
        &format!(
            "{base}/studies/{}/series/{}/instances/{}/metadata",
            second.study_instance_uid, second.series_instance_uid, second.sop_instance_uids[0]
        ),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        tier(ids[1].clone()).await,
        "FREQUENT_ACCESS",
        "a WADO-RS read is a touch"
    );
    assert_eq!(
        tier(ids[2].clone()).await,
        "ARCHIVE_INSTANT_ACCESS",
        "GetImageSet is not a touch"
    );
    // A frame of the third.
    let third = doc_of(ids[2].clone()).await;
    send(&f.service, "POST", "/_emulator/clock", None, days(31)).await;
    assert_eq!(tier(ids[2].clone()).await, "ARCHIVE_INSTANT_ACCESS");
    let frame_id = third["Study"]["Series"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["Instances"].as_object().unwrap().values())
        .find_map(|i| i["ImageFrames"][0]["ID"].as_str())
        .map(str::to_owned);
    if let Some(frame_id) = frame_id {
        let frame = send(
            &f.service,
            "POST",
            &format!("{base}/imageSet/{}/getImageFrame", ids[2]),
            None,
            json!({"imageFrameId": frame_id}),
        )
        .await;
        assert_eq!(frame.status, StatusCode::OK);
        assert_eq!(
            tier(ids[2].clone()).await,
            "FREQUENT_ACCESS",
            "a frame is a touch"
        );
    }
    assert_eq!(
        tier(ids[0].clone()).await,
        "ARCHIVE_INSTANT_ACCESS",
        "31 more days"
    );

    let backwards = send(
        &f.service,
        "POST",
        "/_emulator/clock",
        None,
        json!({"advanceSeconds": -5}),
    )
    .await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
    let clock = get(&f.service, "/_emulator/clock").await.json();
    assert_eq!(clock["advancedSeconds"], json!(62.0 * 24.0 * 3600.0));
}

#[tokio::test]
async fn oidc_bearer_tokens_open_datastores_with_an_authorizer() {
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let random = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
        .unwrap();
    let point = pair.public_key().as_ref();
    let jwks = healthimaging_emulator::oidc::Jwks::parse(
        &json!({"keys": [{"kty": "EC", "crv": "P-256", "x": encode(&point[1..33]), "y": encode(&point[33..])}]})
            .to_string(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |claims: Value| {
        let signed = format!(
            "{}.{}",
            encode(br#"{"alg":"ES256","typ":"JWT"}"#),
            encode(claims.to_string().as_bytes())
        );
        let signature = pair.sign(&random, signed.as_bytes()).unwrap();
        format!("{signed}.{}", encode(signature.as_ref()))
    };
    let fresh = token(json!({"iat": now - 5, "exp": now + 300}));
    let expired = token(json!({"iat": now - 600, "exp": now - 60}));
    let start = |jwks: Option<healthimaging_emulator::oidc::Jwks>| {
        let mut config = EmulatorConfig::default().with_seed(9);
        if let Some(jwks) = jwks {
            config = config.with_oidc_jwks(jwks);
        }
        Service::start(config).unwrap()
    };
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:authorizer";
    let service = start(Some(jwks));
    let create = |service: Arc<Service>, body: Value| async move {
        let id = send(&service, "POST", "/datastore", None, body)
            .await
            .json()["datastoreId"]
            .as_str()
            .unwrap()
            .to_owned();
        tokio::time::sleep(Duration::from_millis(150)).await;
        id
    };
    let with = create(
        service.clone(),
        json!({"clientToken": "a", "lambdaAuthorizerArn": lambda}),
    )
    .await;
    let without = create(service.clone(), json!({"clientToken": "b"})).await;
    let bearer = |service: Arc<Service>, ds: String, token: String| async move {
        let request = Request::builder()
            .uri(format!("/datastore/{ds}/studies"))
            .header("host", "localhost:4566")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = router(service).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let (status, body) = bearer(service.clone(), with.clone(), fresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = bearer(service.clone(), without.clone(), fresh.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("lambdaAuthorizerArn"), "{body}");
    let (status, body) = bearer(service.clone(), with.clone(), expired).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("expired"), "{body}");
    let (status, _) = bearer(service.clone(), with.clone(), format!("{fresh}x")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a tampered signature");
    // Without a JWKS to check against, no bearer token passes.
    let bare = start(None);
    let ds = create(
        bare.clone(),
        json!({"clientToken": "c", "lambdaAuthorizerArn": lambda}),
    )
    .await;
    let (status, body) = bearer(bare, ds, fresh).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("--oidc-jwks"), "{body}");
}

#[tokio::test]
async fn large_binaries_come_back_as_bulk_data_and_oversized_stores_are_refused() {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, Tag, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;

    let (service, ds) = empty_emulator(5, "bulk").await;
    let (study, series, sop) = ("2.25.901", "2.25.901.1", "2.25.901.1.1");
    let mut object = InMemDicomObject::new_empty();
    for (tag, vr, value) in [
        (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
        (tags::SOP_INSTANCE_UID, VR::UI, sop),
        (tags::STUDY_INSTANCE_UID, VR::UI, study),
        (tags::SERIES_INSTANCE_UID, VR::UI, series),
        (tags::PATIENT_ID, VR::LO, "SYN0009999"),
        (tags::MODALITY, VR::CS, "OT"),
        (Tag(0x0009, 0x0010), VR::LO, "HIMCP TEST"),
    ] {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }
    let blob: Vec<u8> = (0..1_200_000u32).map(|n| (n % 251) as u8).collect();
    object.put(DataElement::new(
        Tag(0x0009, 0x1010),
        VR::OB,
        PrimitiveValue::U8(blob.clone().into()),
    ));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid(sop)
        .transfer_syntax("1.2.840.10008.1.2.1")
        .build()
        .unwrap();
    let mut file = Vec::new();
    object.with_exact_meta(meta).write_all(&mut file).unwrap();
    let stored = post_dicom(
        &service,
        &format!("/datastore/{ds}/studies"),
        &[("content-type", "application/dicom")],
        file,
    )
    .await;
    assert_eq!(
        stored.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );

    let path = format!("/datastore/{ds}/studies/{study}/series/{series}/instances/{sop}");
    let metadata = get(&service, &format!("{path}/metadata")).await.json();
    let attribute = &metadata[0]["00091010"];
    assert_eq!(attribute["vr"], "UN");
    let uri = attribute["BulkDataURI"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!("http://localhost:4566{path}/bulkdata/")),
        "{uri}"
    );
    assert_eq!(
        metadata[0]["00090010"]["Value"][0], "HIMCP TEST",
        "small values stay inline"
    );
    let bulk_path = uri.trim_start_matches("http://localhost:4566");
    let multipart = send(
        &service,
        "GET",
        bulk_path,
        Some("multipart/related; type=\"application/octet-stream\""),
        Value::Null,
    )
    .await;
    assert_eq!(multipart.status, StatusCode::OK);
    let parts = multipart_parts(&multipart);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].1 == blob, "the attribute's bytes");
    let single = send(
        &service,
        "GET",
        bulk_path,
        Some("application/octet-stream"),
        Value::Null,
    )
    .await;
    assert_eq!(single.content_type, "application/octet-stream");
    assert!(single.body == blob);
    let unknown = get(&service, &format!("{path}/bulkdata/0123")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A body declared larger than the documented 1 GB is refused before it is read.
    let oversized = post_dicom(
        &service,
        &format!("/datastore/{ds}/studies"),
        &[
            ("content-type", "application/dicom"),
            ("content-length", "2000000000"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversized.error_type, "RequestEntityTooLargeException");
}

#[test]
fn arbitrary_dicomweb_requests_never_fail_the_server() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let f = runtime.block_on(imported());
    let set = f
        .manifest
        .expected_import
        .image_sets
        .iter()
        .find(|s| s.primary)
        .unwrap()
        .clone();
    let uid = prop_oneof![
        Just(set.study_instance_uid.clone()),
        Just(set.series_instance_uid.clone()),
        Just(set.sop_instance_uids[0].clone()),
        "[0-9.]{1,70}",
        "[ -~]{0,12}",
    ];
    let tail = prop_oneof![
        Just(String::new()),
        Just("/metadata".to_owned()),
        "/frames/[0-9,]{0,8}",
        "/bulkdata/[0-9a-f]{0,40}",
        "/[a-z]{1,8}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        "\\?(limit|offset|includefield|PatientID|StudyDate|fuzzymatching|imageSetId|Modality)=[ -~]{0,16}",
    ];
    let accept = prop_oneof![
        Just(None),
        Just(Some("application/dicom; transfer-syntax=*".to_owned())),
        Just(Some(
            "multipart/related; type=\"application/octet-stream\"".to_owned()
        )),
        "[ -~]{0,40}".prop_map(Some),
    ];
    let method = prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("PUT")];
    let body = prop::collection::vec(any::<u8>(), 0..64);
    let strategy = (
        method,
        uid.clone(),
        uid.clone(),
        uid,
        tail,
        query,
        accept,
        body,
        0..5usize,
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(method, study, series, sop, tail, query, accept, body, shape)| {
            let ds = &f.ds;
            let path = match shape {
                0 => format!("/datastore/{ds}/studies{query}"),
                1 => format!("/datastore/{ds}/studies/{study}/series{query}"),
                2 => format!("/datastore/{ds}/studies/{study}/series/{series}/instances{query}"),
                3 => format!("/datastore/{ds}/studies/{study}/series/{series}/instances/{sop}{tail}{query}"),
                _ => format!("/datastore/{ds}/studies/{study}{query}"),
            };
            let Ok(uri) = path.parse::<axum::http::Uri>() else {
                return Ok(());
            };
            let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/dicom")];
            if let Some(accept) = accept.as_deref() {
                headers.push(("accept", accept));
            }
            if axum::http::HeaderValue::from_str(accept.as_deref().unwrap_or("")).is_err() {
                return Ok(());
            }
            let answer = runtime.block_on(request(&f.service, method, &uri.to_string(), &headers, body));
            prop_assert!(answer.status.as_u16() < 500, "{method} {uri}: {}", answer.status);
            let store_response = answer.content_type == "application/dicom+json"
                && serde_json::from_slice::<Value>(&answer.body)
                    .is_ok_and(|json| json.get("00081198").is_some());
            if !answer.status.is_success() && !store_response {
                prop_assert!(!answer.error_type.is_empty(), "{method} {uri}: {}", answer.status);
                let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                prop_assert!(json["message"].is_string(), "{method} {uri}: an AWS-shaped error");
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn faults_can_be_injected_into_dicomweb_actions() {
    let f = imported().await;
    let studies = format!("/datastore/{}/studies", f.ds);
    let rule = send(
        &f.service,
        "POST",
        "/_emulator/faults",
        None,
        json!({"operation": "SearchDICOMStudies", "fault": "throttling", "count": 1}),
    )
    .await;
    assert_eq!(
        rule.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&rule.body)
    );
    let throttled = get(&f.service, &studies).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.error_type, "ThrottlingException");
    assert_eq!(
        get(&f.service, &studies).await.status,
        StatusCode::OK,
        "once"
    );
    let unknown = send(
        &f.service,
        "POST",
        "/_emulator/faults",
        None,
        json!({"operation": "GetDICOMStudy", "fault": "throttling"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&unknown.body).contains("StoreDICOMStudy"));
}
