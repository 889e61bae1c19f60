//! `delete_datastore`: preview, confirmation tokens, refusals.

use std::time::Duration;

use aws_sdk_medicalimaging::types::DatastoreStatus;
use healthimaging_e2e::{Fixture, Mcp, structured, text};
use healthimaging_mcp::permissions::Grant;
use serde_json::json;

async fn status(f: &Fixture, id: &str) -> DatastoreStatus {
    f.sdk
        .get_datastore()
        .datastore_id(id)
        .send()
        .await
        .unwrap()
        .datastore_properties()
        .unwrap()
        .datastore_status()
        .clone()
}

#[tokio::test]
async fn preview_changes_nothing_and_the_token_deletes_exactly_once() {
    let f = Fixture::start(10).await;
    let mcp = Mcp::connect(f.sdk.clone(), Grant::ALL, Duration::from_secs(300)).await;
    let id = f.active_datastore("to-delete").await;

    let preview = structured(
        &mcp.call("delete_datastore", json!({"datastore_id": id}))
            .await,
    );
    assert_eq!(preview["phase"], "preview");
    assert_eq!(preview["datastore"]["datastore_id"], id.as_str());
    assert!(preview["summary"].as_str().unwrap().contains("to-delete"));
    assert_eq!(
        status(&f, &id).await,
        DatastoreStatus::Active,
        "a preview changes nothing"
    );
    let token = preview["confirmation_token"].as_str().unwrap().to_owned();

    let done = structured(
        &mcp.call(
            "delete_datastore",
            json!({"datastore_id": id, "confirmation_token": token}),
        )
        .await,
    );
    assert_eq!(done["phase"], "executed");
    assert_eq!(done["datastore"]["datastore_status"], "DELETING");
    assert_eq!(status(&f, &id).await, DatastoreStatus::Deleting);

    let records = mcp.audit.records();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["preview", "success"]);
    assert!(records.iter().all(|r| r["resources"] == json!([id])));
}

#[tokio::test]
async fn a_token_works_once_and_only_for_its_datastore() {
    let f = Fixture::start(10).await;
    let mcp = Mcp::connect(f.sdk.clone(), Grant::ALL, Duration::from_secs(300)).await;
    let first = f.active_datastore("first").await;
    let second = f.active_datastore("second").await;

    let preview = structured(
        &mcp.call("delete_datastore", json!({"datastore_id": first}))
            .await,
    );
    let token = preview["confirmation_token"].as_str().unwrap().to_owned();
    let refused = structured(
        &mcp.call(
            "delete_datastore",
            json!({"datastore_id": second, "confirmation_token": token}),
        )
        .await,
    );
    assert_eq!(refused["phase"], "refused");
    assert!(
        refused["summary"]
            .as_str()
            .unwrap()
            .contains("different tool or different arguments")
    );
    assert_ne!(
        refused["confirmation_token"],
        json!(token),
        "a fresh token comes with the refusal"
    );
    assert_eq!(status(&f, &second).await, DatastoreStatus::Active);
    assert_eq!(status(&f, &first).await, DatastoreStatus::Active);

    let again = structured(
        &mcp.call(
            "delete_datastore",
            json!({"datastore_id": first, "confirmation_token": token}),
        )
        .await,
    );
    assert_eq!(
        again["phase"], "refused",
        "the token was spent by the refused attempt"
    );
    assert_eq!(status(&f, &first).await, DatastoreStatus::Active);

    let forged = structured(
        &mcp.call(
            "delete_datastore",
            json!({"datastore_id": first, "confirmation_token": "confirm-00000000000000000000000000000000"}),
        )
        .await,
    );
    assert_eq!(forged["phase"], "refused");
    assert_eq!(mcp.audit.records().last().unwrap()["outcome"], "refused");
}

#[tokio::test]
async fn tokens_expire() {
    let f = Fixture::start(10).await;
    let mcp = Mcp::connect(f.sdk.clone(), Grant::ALL, Duration::from_secs(1)).await;
    let id = f.active_datastore("slow").await;
    let preview = structured(
        &mcp.call("delete_datastore", json!({"datastore_id": id}))
            .await,
    );
    assert_eq!(preview["expires_in_seconds"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = preview["confirmation_token"].as_str().unwrap();
    let refused = structured(
        &mcp.call(
            "delete_datastore",
            json!({"datastore_id": id, "confirmation_token": token}),
        )
        .await,
    );
    assert_eq!(refused["phase"], "refused");
    assert!(refused["summary"].as_str().unwrap().contains("expired"));
    assert_eq!(status(&f, &id).await, DatastoreStatus::Active);
}

#[tokio::test]
async fn datastores_not_active_are_not_previewed() {
    let f = Fixture::start(10).await;
    let mcp = Mcp::connect(f.sdk.clone(), Grant::ALL, Duration::from_secs(300)).await;
    let young = f.sdk.create_datastore().send().await.unwrap().datastore_id;
    let result = mcp
        .call("delete_datastore", json!({"datastore_id": young}))
        .await;
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("CREATING"), "{}", text(&result));
    assert!(text(&result).contains("Wait until"), "{}", text(&result));

    let gone = mcp
        .call(
            "delete_datastore",
            json!({"datastore_id": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert!(text(&gone).starts_with("ResourceNotFoundException"));
}

#[tokio::test]
async fn replicas_sharing_a_key_redeem_each_others_tokens_and_others_do_not() {
    let f = Fixture::start(10).await;
    let replica = |key: &[u8]| {
        Mcp::connect_full(
            f.sdk.clone(),
            healthimaging_e2e::Setup {
                confirmation_key: Some(key.to_vec()),
                ..healthimaging_e2e::Setup::default()
            },
        )
    };
    let key = b"a confirmation key shared by replicas, 32+ bytes";
    let (first, second) = (replica(key).await, replica(key).await);
    let stranger = replica(b"another key altogether, also 32 bytes long").await;
    let id = f.active_datastore("replicated").await;
    let preview = structured(
        &first
            .call("delete_datastore", json!({"datastore_id": id}))
            .await,
    );
    let token = preview["confirmation_token"].as_str().unwrap().to_owned();
    // A server with another key does not know the token.
    let refused = structured(
        &stranger
            .call(
                "delete_datastore",
                json!({"datastore_id": id, "confirmation_token": token}),
            )
            .await,
    );
    assert_eq!(refused["phase"], "refused");
    assert!(refused["summary"].as_str().unwrap().contains("unknown"));
    assert_eq!(status(&f, &id).await, DatastoreStatus::Active);
    // The other replica redeems it.
    let done = structured(
        &second
            .call(
                "delete_datastore",
                json!({"datastore_id": id, "confirmation_token": token}),
            )
            .await,
    );
    assert_eq!(done["phase"], "executed", "{}", done["summary"]);
    assert_eq!(status(&f, &id).await, DatastoreStatus::Deleting);
}
