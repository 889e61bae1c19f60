//! ListDatastores: filters, page sizes, and tokens that survive concurrent creation.

use std::collections::HashMap;

use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use aws_sdk_medicalimaging::types::DatastoreStatus;
use healthimaging_e2e::Fixture;

#[tokio::test]
async fn every_datastore_appears_exactly_once_while_others_are_created_between_pages() {
    let f = Fixture::start(200).await;
    let mut originals = Vec::new();
    for i in 0..23 {
        let created = f
            .sdk
            .create_datastore()
            .datastore_name(format!("original-{i}"))
            .send()
            .await
            .unwrap();
        originals.push(created.datastore_id);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = f
            .sdk
            .list_datastores()
            .max_results(5)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.datastore_summaries().len() <= 5);
        for summary in page.datastore_summaries() {
            *seen.entry(summary.datastore_id().to_owned()).or_default() += 1;
        }
        // Someone else creates datastores while this listing is under way.
        f.sdk
            .create_datastore()
            .datastore_name(format!("concurrent-{pages}"))
            .send()
            .await
            .unwrap();
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
        assert!(pages < 100, "pagination must end");
    }
    for id in &originals {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "datastore {id} listed {:?} times",
            seen.get(id)
        );
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "no datastore is listed twice"
    );
}

#[tokio::test]
async fn the_sdk_paginator_collects_everything() {
    let f = Fixture::start(200).await;
    for _ in 0..12 {
        f.sdk.create_datastore().send().await.unwrap();
    }
    let all: Vec<_> = f
        .sdk
        .list_datastores()
        .max_results(5)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 12);
}

#[tokio::test]
async fn the_status_filter_selects_by_current_status() {
    let f = Fixture::start(10).await;
    let active = f.active_datastore("ready").await;
    f.sdk
        .create_datastore()
        .datastore_name("young")
        .send()
        .await
        .unwrap();
    let list = |status| f.sdk.list_datastores().datastore_status(status).send();
    let creating = list(DatastoreStatus::Creating).await.unwrap();
    assert_eq!(creating.datastore_summaries().len(), 1);
    assert_eq!(creating.datastore_summaries()[0].datastore_name(), "young");
    let listed = list(DatastoreStatus::Active).await.unwrap();
    assert_eq!(listed.datastore_summaries()[0].datastore_id(), active);
}

#[tokio::test]
async fn bad_page_sizes_tokens_and_statuses_are_validation_errors() {
    let f = Fixture::start(10).await;
    for size in [0, 51, -1] {
        let error = f
            .sdk
            .list_datastores()
            .max_results(size)
            .send()
            .await
            .unwrap_err();
        let error = error.into_service_error();
        assert_eq!(
            error.code(),
            Some("ValidationException"),
            "maxResults={size}"
        );
        assert!(error.message().unwrap().contains("maxResults"));
    }
    let error = f
        .sdk
        .list_datastores()
        .next_token("forged")
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .into_service_error()
            .message()
            .unwrap()
            .contains("nextToken")
    );
    let error = f
        .sdk
        .list_datastores()
        .datastore_status(DatastoreStatus::from("SLEEPING"))
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .into_service_error()
            .message()
            .unwrap()
            .contains("datastoreStatus")
    );
}
