//! Wire details the SDKs depend on, checked on the raw HTTP exchange.

use healthimaging_e2e::{Fixture, raw_http};
use serde_json::Value;

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn routing_ignores_a_runtime_host_prefix() {
    let f = Fixture::start(10).await;
    f.active_datastore("store").await;
    let (status, _, body) = raw_http(
        f.emulator.url(),
        "GET",
        "/datastore",
        &[("Host", "runtime-medical-imaging.us-east-1.amazonaws.com")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["datastoreSummaries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn timestamps_are_epoch_second_numbers_and_responses_carry_a_request_id() {
    let f = Fixture::start(10).await;
    let id = f.active_datastore("store").await;
    let (status, headers, body) = raw_http(
        f.emulator.url(),
        "GET",
        &format!("/datastore/{id}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(header(&headers, "x-amzn-requestid").map(str::len), Some(36));
    let body: Value = serde_json::from_str(&body).unwrap();
    let created = &body["datastoreProperties"]["createdAt"];
    assert!(
        created.is_number(),
        "createdAt must be a JSON number: {created}"
    );
    assert_eq!(created.as_f64(), Some(1_767_225_600.0));
}

#[tokio::test]
async fn errors_carry_the_code_header_and_a_message_body() {
    let f = Fixture::start(10).await;
    let (status, headers, body) = raw_http(
        f.emulator.url(),
        "GET",
        "/datastore/0123456789abcdef0123456789abcdef",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("0123456789abcdef")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_aws_shaped_errors() {
    let f = Fixture::start(10).await;
    for (method, path, expected) in [
        ("GET", "/no/such/operation", 404),
        ("PUT", "/datastore", 405),
        ("PATCH", "/tags/x", 405),
        ("GET", "/_emulator/nothing", 404),
        ("DELETE", "/_emulator/health", 405),
    ] {
        let (status, headers, body) = raw_http(f.emulator.url(), method, path, &[], "").await;
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(
            header(&headers, "x-amzn-errortype"),
            Some("UnknownOperationException"),
            "{method} {path}"
        );
        let body: Value = serde_json::from_str(&body).expect("a JSON body, never HTML");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn a_post_with_an_empty_body_and_no_content_type_is_accepted() {
    let f = Fixture::start(10).await;
    let (status, _, body) = raw_http(f.emulator.url(), "POST", "/datastore", &[], "").await;
    // clientToken is required: the empty body is read as {} and validated.
    assert_eq!(status, 400);
    assert!(body.contains("clientToken"), "{body}");
    let (status, _, body) =
        raw_http(f.emulator.url(), "POST", "/datastore", &[], "{not json").await;
    assert_eq!(status, 400);
    assert!(body.contains("JSON"), "{body}");
}

#[tokio::test]
async fn health_and_reset() {
    let f = Fixture::start(10).await;
    f.active_datastore("store").await;
    let (status, health) = f.control("GET", "/_emulator/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["datastores"], 1);
    assert_eq!(health["seed"], 7);

    let (status, _) = f.control("POST", "/_emulator/reset", None).await;
    assert_eq!(status, 200);
    let listed = f.sdk.list_datastores().send().await.unwrap();
    assert!(listed.datastore_summaries().is_empty());
}

#[tokio::test]
async fn the_same_seed_gives_the_same_ids_and_reset_starts_over() {
    let a = Fixture::start(10).await;
    let b = Fixture::start(10).await;
    let first_a = a.active_datastore("x").await;
    let first_b = b.active_datastore("x").await;
    assert_eq!(first_a, first_b);
    a.control("POST", "/_emulator/reset", None).await;
    assert_eq!(a.active_datastore("x").await, first_a);
}

#[tokio::test]
async fn data_plane_calls_reach_the_endpoint_despite_the_runtime_host_prefix() {
    use aws_sdk_medicalimaging::error::SdkError;
    let f = Fixture::start(10).await;
    let id = f.active_datastore("store").await;
    // SearchImageSets carries the `runtime-` host prefix. Without the fix the
    // SDK would ask DNS for runtime-127.0.0.1 and fail to dispatch; with it
    // the request reaches the emulator and gets its (empty) answer.
    let found = f
        .sdk
        .search_image_sets()
        .datastore_id(&id)
        .send()
        .await
        .expect("the request reaches the emulator");
    assert!(found.image_sets_metadata_summaries().is_empty());

    // The SDK alone, without the interceptor, cannot reach it.
    let config = aws_sdk_medicalimaging::Config::builder()
        .behavior_version(aws_sdk_medicalimaging::config::BehaviorVersion::latest())
        .region(aws_sdk_medicalimaging::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_medicalimaging::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .endpoint_url(f.emulator.url())
        .http_client(healthimaging_mcp::sdk::http_client())
        .retry_config(aws_sdk_medicalimaging::config::retry::RetryConfig::disabled())
        .build();
    let bare = aws_sdk_medicalimaging::Client::from_conf(config);
    let error = bare
        .search_image_sets()
        .datastore_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(error, SdkError::DispatchFailure(_)), "{error:?}");
}
