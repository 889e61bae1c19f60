//! Fault injection through the control API, as the SDK experiences it.

use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use healthimaging_e2e::Fixture;
use serde_json::json;

#[tokio::test]
async fn throttling_for_fewer_calls_than_attempts_is_retried_away() {
    let f = Fixture::start(10).await;
    let (status, rule) = f
        .control(
            "POST",
            "/_emulator/faults",
            Some(json!({"operation": "ListDatastores", "fault": "throttling", "count": 2})),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(rule["remaining"], 2);
    f.sdk
        .list_datastores()
        .send()
        .await
        .expect("the third attempt succeeds");
    let (_, faults) = f.control("GET", "/_emulator/faults", None).await;
    assert_eq!(
        faults["faults"],
        json!([]),
        "both throttled attempts were used up"
    );
}

#[tokio::test]
async fn persistent_internal_errors_reach_the_caller_after_the_retries() {
    let f = Fixture::start(10).await;
    f.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"operation": "GetDatastore", "fault": "internal_error", "count": 5})),
    )
    .await;
    let error = f
        .sdk
        .get_datastore()
        .datastore_id("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("InternalServerException"));
    let (_, faults) = f.control("GET", "/_emulator/faults", None).await;
    assert_eq!(
        faults["faults"][0]["remaining"], 2,
        "three attempts were made"
    );
    let (status, cleared) = f.control("DELETE", "/_emulator/faults", None).await;
    assert_eq!((status, cleared["removed"].as_u64()), (200, Some(1)));
}

#[tokio::test]
async fn faults_apply_only_to_their_operation_and_latency_delays() {
    let f = Fixture::start(10).await;
    f.control(
        "POST",
        "/_emulator/faults",
        Some(
            json!({"operation": "CreateDatastore", "fault": "internal_error", "probability": 1.0}),
        ),
    )
    .await;
    f.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"operation": "ListDatastores", "fault": "latency", "latencyMs": 150})),
    )
    .await;
    let untouched = f
        .sdk
        .get_datastore()
        .datastore_id("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(untouched.is_resource_not_found_exception(), "{untouched:?}");
    let started = std::time::Instant::now();
    f.sdk.list_datastores().send().await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    assert!(f.sdk.create_datastore().send().await.is_err());
}

#[tokio::test]
async fn bad_fault_rules_are_refused_with_the_field_named() {
    let f = Fixture::start(10).await;
    for (body, field) in [
        (json!({"fault": "meteor"}), "fault"),
        (
            json!({"operation": "Nope", "fault": "throttling"}),
            "operation",
        ),
        (json!({"fault": "latency"}), "latencyMs"),
        (
            json!({"fault": "throttling", "probability": 2}),
            "probability",
        ),
        (json!({"fault": "throttling", "count": 0}), "count"),
    ] {
        let (status, reply) = f.control("POST", "/_emulator/faults", Some(body)).await;
        assert_eq!(status, 400);
        assert!(
            reply["message"].as_str().unwrap().contains(field),
            "{reply}"
        );
    }
}
