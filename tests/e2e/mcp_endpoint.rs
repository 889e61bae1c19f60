//! What the emulator never produces: endpoints that answer badly. The MCP
//! server must turn each into a clear tool error, never a crash or a hang.

use std::time::Duration;

use healthimaging_e2e::{Mcp, fast_tuning, text};
use healthimaging_mcp::backend::emulator_client;
use healthimaging_mcp::permissions::Grant;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ID: &str = "0123456789abcdef0123456789abcdef";

async fn connect(server: &MockServer) -> Mcp {
    let sdk = emulator_client(&server.uri(), fast_tuning());
    Mcp::connect(sdk, Grant::ALL, Duration::from_secs(300)).await
}

#[tokio::test]
async fn a_non_json_success_body_is_a_malformed_response_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/datastore"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body>Welcome to the proxy</body></html>"),
        )
        .mount(&server)
        .await;
    let mcp = connect(&server).await;
    let result = mcp.call("list_datastores", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).starts_with("MalformedResponse:"),
        "{}",
        text(&result)
    );
    assert!(
        text(&result).contains("--endpoint-url"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn an_html_503_is_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/datastore/.*"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("content-type", "text/html")
                .set_body_string("<html>Service Unavailable</html>"),
        )
        .expect(3)
        .mount(&server)
        .await;
    let mcp = connect(&server).await;
    let result = mcp.call("get_datastore", json!({"datastore_id": ID})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(!text(&result).is_empty());
    server.verify().await;
}

#[tokio::test]
async fn a_conflict_on_delete_says_to_delete_the_image_sets_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/datastore/{ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "datastoreProperties": {
                "datastoreId": ID, "datastoreName": "full", "datastoreStatus": "ACTIVE",
                "createdAt": 1_700_000_000.5, "updatedAt": 1_700_000_001.5
            }
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/datastore/{ID}/searchImageSets")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "imageSetsMetadataSummaries": [{"imageSetId": "b".repeat(32), "version": 1}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/datastore/{ID}")))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("x-amzn-ErrorType", "ConflictException")
                .set_body_json(json!({"message": "Datastore still has image sets"})),
        )
        .mount(&server)
        .await;
    let mcp = connect(&server).await;
    let preview = mcp
        .call("delete_datastore", json!({"datastore_id": ID}))
        .await;
    let preview = preview.structured_content.unwrap();
    assert_eq!(preview["image_set_count"], 1);
    assert!(
        preview["summary"]
            .as_str()
            .unwrap()
            .contains("still holds 1 image set"),
        "{preview}"
    );
    let token = preview["confirmation_token"].as_str().unwrap().to_owned();
    let result = mcp
        .call(
            "delete_datastore",
            json!({"datastore_id": ID, "confirmation_token": token}),
        )
        .await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.starts_with("ConflictException: Datastore still has image sets"),
        "{message}"
    );
    assert!(message.contains("Delete them first"), "{message}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let sdk = emulator_client(&url, fast_tuning());
    let mcp = Mcp::connect(sdk, Grant::ALL, Duration::from_secs(300)).await;
    let result = mcp.call("list_datastores", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).starts_with("ConnectionFailure:"),
        "{}",
        text(&result)
    );
}
