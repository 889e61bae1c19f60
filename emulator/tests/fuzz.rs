//! Fuzzing the emulator as a hostile client would: arbitrary operations,
//! labels, query parameters and bodies (mutations of valid requests and
//! plain garbage) against a datastore with real image sets, and malformed
//! HTTP on a real socket.
//!
//! Every answer must be an answer: no panic, no 5xx, and every refusal an
//! AWS-shaped error (`x-amzn-ErrorType` and a JSON `message`). CI runs
//! 20,000 requests; `HEALTHIMAGING_FUZZ_CASES=N` runs N.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use healthimaging_emulator::metadata::stored::gzip;
use healthimaging_emulator::store::{DicomTags, FrameEntry, ImageSetVersion, StoreError};
use healthimaging_emulator::{Emulator, EmulatorConfig, Service, router};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// The world the requests hit: a datastore with three image sets, each one
/// series of one instance with one frame.
struct World {
    service: Arc<Service>,
    datastore: String,
    image_sets: Vec<String>,
    frames: Vec<String>,
}

async fn world() -> World {
    let service = Service::start(
        EmulatorConfig::default()
            .with_seed(11)
            .with_transition_delay(Duration::ZERO)
            .with_datastore_quota(1_000),
    )
    .expect("emulator");
    let (_, created) = call(
        &service,
        Method::POST,
        "/datastore".into(),
        r#"{"clientToken":"fuzz"}"#.into(),
    )
    .await;
    let created: Value = serde_json::from_slice(&created).unwrap();
    let datastore = created["datastoreId"].as_str().unwrap().to_owned();
    let mut image_sets = Vec::new();
    let mut frames = Vec::new();
    for n in 0..3u32 {
        let id = format!("{:032x}", 0xf00d_0000u64 + u64::from(n));
        let frame = format!("{:032x}", 0xfa11_0000u64 + u64::from(n));
        let document = json!({
            "SchemaVersion": "1.1", "DatastoreID": datastore, "ImageSetID": id,
            "Patient": {"DICOM": {"PatientID": "SYN-FUZZ", "PatientName": "Fuzz-Synthetic^Case"}},
            "Study": {"DICOM": {"StudyInstanceUID": "2.25.1", "StudyDate": "20240101"},
                "Series": {format!("2.25.1.{n}"): {"DICOM": {"SeriesInstanceUID": format!("2.25.1.{n}"),
                    "Modality": "CT", "SeriesNumber": "1"},
                "Instances": {format!("2.25.1.{n}.1"): {"DICOM": {"SOPInstanceUID": format!("2.25.1.{n}.1"),
                    "InstanceNumber": "1"}, "ImageFrames": [{"ID": frame}]}}}}}
        });
        let tags = DicomTags::of_document(&document);
        service
            .store()
            .write(|w| {
                let metadata = Some(w.put_blob(&gzip(&document))?);
                let blob = w.put_blob(b"frame bytes")?;
                let first = ImageSetVersion::imported(1, service.now(), tags, metadata);
                let set =
                    w.create_image_set(&id, &datastore, n != 2, service.now(), first, None)?;
                w.add_frames(
                    &set,
                    &[FrameEntry {
                        frame_id: frame.clone(),
                        transfer_syntax: "1.2.840.10008.1.2.4.202".into(),
                        blob,
                    }],
                )
            })
            .map_err(|e: StoreError| e.to_string())
            .unwrap();
        image_sets.push(id);
        frames.push(frame);
    }
    World {
        service,
        datastore,
        image_sets,
        frames,
    }
}

async fn call(
    service: &Arc<Service>,
    method: Method,
    uri: String,
    body: Vec<u8>,
) -> (axum::response::Response<()>, axum::body::Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router(service.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (axum::response::Response::from_parts(parts, ()), bytes)
}

/// A label: a real one, a well-formed unknown one, or garbage.
fn label(real: Vec<String>) -> impl Strategy<Value = String> {
    let garbage = prop_oneof![
        Just(String::new()),
        Just("..".to_owned()),
        Just("%2F..%2F".to_owned()),
        Just("a".repeat(5_000)),
        "[0-9a-z]{32}",
        "\\PC{0,40}",
        "[%0-9A-F]{0,12}",
    ];
    prop_oneof![3 => proptest::sample::select(real), 2 => garbage]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::String),
        Just(json!("2.25.1.0")),
        Just(json!("1")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,24}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies the operations take, valid or nearly so, as JSON objects.
fn templates(world: &World) -> Vec<Value> {
    let blob = |v: &Value| {
        use base64::Engine as _;
        json!(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
    };
    vec![
        json!({"clientToken": "t", "datastoreName": "n", "tags": {"a": "b"}}),
        json!({"tags": {"k": "v"}}),
        json!({"clientToken": "j", "dataAccessRoleArn": "arn:aws:iam::123456789012:role/R",
               "inputS3Uri": "s3://bucket/in/", "outputS3Uri": "s3://bucket/out/"}),
        json!({"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "SYN-FUZZ"}]}],
               "sort": {"sortField": "updatedAt", "sortOrder": "ASC"}}),
        json!({"filters": [{"operator": "BETWEEN", "values": [{"createdAt": 0}, {"createdAt": 2e9}]}]}),
        json!({"imageFrameId": world.frames[0]}),
        json!({"DICOMUpdates": {"updatableAttributes": blob(&json!({"SchemaVersion": 1.1,
            "Study": {"DICOM": {"StudyDescription": "X"}}}))}}),
        json!({"DICOMUpdates": {"removableAttributes": blob(&json!({"SchemaVersion": 1.1,
            "Study": {"Series": {"2.25.1.0": {"Instances": {"2.25.1.0.1": {}}}}}}))}}),
        json!({"revertToVersionId": "1"}),
        json!({"sourceImageSet": {"latestVersionId": "1"},
               "destinationImageSet": {"imageSetId": world.image_sets[1], "latestVersionId": "1"}}),
        json!({"sourceImageSet": {"latestVersionId": "1", "DICOMCopies": {"copiableAttributes":
            "{\"SchemaVersion\":1.1,\"Study\":{\"Series\":{\"2.25.1.0\":{\"Instances\":{\"2.25.1.0.1\":{}}}}}}"}}}),
    ]
}

/// A body: a template, a template with one member replaced, any JSON, or bytes.
fn body(world: &World) -> impl Strategy<Value = Vec<u8>> {
    let templates = templates(world);
    let mutated = (
        proptest::sample::select(templates.clone()),
        "[a-zA-Z]{1,24}",
        json_value(),
        any::<bool>(),
    )
        .prop_map(|(mut template, key, value, replace_existing)| {
            if let Some(object) = template.as_object_mut() {
                let key = if replace_existing {
                    object.keys().next().cloned().unwrap_or(key)
                } else {
                    key
                };
                object.insert(key, value);
            }
            template.to_string().into_bytes()
        });
    prop_oneof![
        2 => proptest::sample::select(templates).prop_map(|t| t.to_string().into_bytes()),
        4 => mutated,
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => Just(Vec::new()),
        1 => (1usize..3000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
    ]
}

/// A query string of known names with odd values.
fn query() -> impl Strategy<Value = String> {
    let names = proptest::sample::select(vec![
        "maxResults",
        "nextToken",
        "version",
        "latestVersion",
        "force",
        "includeStudyImageSets",
        "promoteToPrimary",
        "datastoreStatus",
        "jobStatus",
        "tagKeys",
    ]);
    let value = prop_oneof![
        Just("1".to_owned()),
        Just("50".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("ACTIVE".to_owned()),
        "[a-f0-9]{0,64}",
        "\\PC{0,20}",
    ];
    proptest::collection::vec((names, value), 0..4).prop_map(|pairs| {
        let encoded: Vec<String> = pairs
            .into_iter()
            .map(|(name, value)| {
                let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
                format!("{name}={value}")
            })
            .collect();
        encoded.join("&")
    })
}

/// A request line: a method and a path built from an operation's template.
fn target(world: &World) -> impl Strategy<Value = (Method, String)> {
    let datastores = label(vec![world.datastore.clone()]);
    let sets = label(world.image_sets.clone());
    let arn = format!(
        "arn:aws:medical-imaging:us-east-1:123456789012:datastore/{}/imageset/{}",
        world.datastore, world.image_sets[0]
    );
    let arns = label(vec![arn]);
    let method = prop_oneof![
        3 => Just(Method::POST),
        2 => Just(Method::GET),
        1 => Just(Method::DELETE),
        1 => Just(Method::PUT),
        1 => Just(Method::PATCH),
    ];
    let action = proptest::sample::select(vec![
        "getImageSet",
        "getImageSetMetadata",
        "getImageFrame",
        "listImageSetVersions",
        "updateImageSetMetadata",
        "copyImageSet",
        "deleteImageSet",
        "nothing",
    ]);
    let path = (datastores, sets, arns, action, 0u8..8).prop_map(|(ds, set, arn, action, kind)| {
        let encode =
            |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        match kind {
            0 => "/datastore".to_owned(),
            1 => format!("/datastore/{ds}"),
            2 => format!("/tags/{}", encode(&arn)),
            3 => format!("/startDICOMImportJob/datastore/{ds}"),
            4 => format!("/getDICOMImportJob/datastore/{ds}/job/{set}"),
            5 => format!("/listDICOMImportJobs/datastore/{ds}"),
            6 => format!("/datastore/{ds}/searchImageSets"),
            _ => format!("/datastore/{ds}/imageSet/{set}/{action}"),
        }
    });
    (method, path)
}

fn cases() -> u32 {
    std::env::var("HEALTHIMAGING_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn arbitrary_requests_get_answers_never_5xx_and_refusals_are_aws_shaped() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = runtime.block_on(world());
    let strategy = (target(&world), query(), body(&world));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |((method, path), query, body)| {
            let uri = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            let Ok(uri) = uri.parse::<axum::http::Uri>() else {
                // Not a request an HTTP client could send.
                return Ok(());
            };
            let (response, bytes) =
                runtime.block_on(call(&world.service, method.clone(), uri.to_string(), body));
            let status = response.status();
            prop_assert!(
                status.as_u16() < 500,
                "{method} {uri}: {status} {}",
                String::from_utf8_lossy(&bytes)
            );
            if status.as_u16() >= 400 {
                prop_assert!(
                    response.headers().contains_key("x-amzn-ErrorType"),
                    "{method} {uri}: {status} without x-amzn-ErrorType"
                );
                let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                prop_assert!(
                    message["message"].is_string(),
                    "{method} {uri}: {status} body {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            Ok(())
        })
        .unwrap();
    // Still serving after it all.
    let (response, _) = runtime.block_on(call(
        &world.service,
        Method::GET,
        "/datastore".into(),
        Vec::new(),
    ));
    assert_eq!(response.status().as_u16(), 200);
}

/// Sends raw bytes on a fresh connection and returns what came back.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    answer
}

#[test]
fn malformed_http_is_answered_or_closed_and_never_takes_the_listener_down() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let addr = emulator.addr();
        let host = format!("Host: {addr}\r\n");
        let chunked = |chunks: &str| {
            format!(
                "POST /datastore HTTP/1.1\r\n{host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
            )
        };
        // A body that is not valid chunking: an AWS-shaped 400, not a hang or a 5xx.
        for chunks in ["zz\r\n{}\r\n0\r\n\r\n", "5\r\n{}\r\n0\r\n\r\n", "ffffffffffffffffff\r\n"] {
            let answer = String::from_utf8_lossy(&raw(addr, chunked(chunks).as_bytes()).await).into_owned();
            if !answer.is_empty() {
                assert!(!answer.starts_with("HTTP/1.1 5"), "{answer}");
                if answer.starts_with("HTTP/1.1 4") && answer.contains("x-amzn-errortype") {
                    assert!(answer.contains("\"message\""), "{answer}");
                }
            }
        }
        let mut runner = TestRunner::new(Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        });
        let junk = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            "[A-Z]{0,8} [ -~]{0,40} HTTP/[0-9].[0-9]\r\n([ -~]{0,30}: [ -~]{0,30}\r\n){0,4}\r\n"
                .prop_map(String::into_bytes),
            "(GET|POST) /datastore HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: [0-9-]{1,22}\r\n\r\n\\{\\}"
                .prop_map(String::into_bytes),
        ];
        runner
            .run(&junk, |bytes| {
                let answer = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(raw(addr, &bytes))
                });
                let text = String::from_utf8_lossy(&answer);
                prop_assert!(!text.starts_with("HTTP/1.1 5"), "{text}");
                Ok(())
            })
            .unwrap();
        let answer = String::from_utf8_lossy(
            &raw(addr, format!("GET /datastore HTTP/1.1\r\n{host}Connection: close\r\n\r\n").as_bytes()).await,
        )
        .into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "still serving: {answer}");
        emulator.shutdown().await.unwrap();
    });
}
