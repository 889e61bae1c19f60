//! A first start: `serve` answers at once while the demo set loads beside
//! it; calls that need the set wait for it (with progress) or, past the
//! configured wait, say that it is loading and how long it will take.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use support::Session;

/// A client that keeps every progress notification.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for Collector {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params);
    }
}

type Started = Session<Collector>;

async fn start(home: &std::path::Path, args: &[&str]) -> Started {
    Session::start_in(home, args, &[], Collector::default()).await
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// The demo set's expected image sets, from the manifest the load wrote.
fn expected_image_sets(s3: &std::path::Path) -> usize {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(s3.join("healthimaging-fixtures/demo/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["expected_import"]["image_sets"]
        .as_array()
        .unwrap()
        .len()
}

async fn search_all(session: &Started, ds: &str) -> CallToolResult {
    session
        .call(
            "search_image_sets",
            json!({"datastore_id": ds, "limit": 500}),
        )
        .await
}

#[tokio::test]
async fn a_first_start_answers_at_once_and_says_the_demo_set_is_loading() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let args = ["serve", "--data-dir", data.to_str().unwrap()];
    let session = start(
        home.path(),
        &[&args[..], &["--fixtures-wait-secs", "0"]].concat(),
    )
    .await;
    // Generating and importing take seconds; initialize is answered first.
    let instructions = session.instructions();
    assert!(
        instructions.contains("datastore `demo`")
            && instructions.contains("is loading the demo set"),
        "{instructions}"
    );
    assert_eq!(session.client.list_all_tools().await.unwrap().len(), 44);

    // The datastore is there from the start, and its tools answer.
    let ds = session.first_datastore().await;
    let jobs = session
        .call("list_dicom_import_jobs", json!({"datastore_id": ds}))
        .await;
    assert_ne!(jobs.is_error, Some(true), "{}", text(&jobs));

    // A read of it says the set is loading, how far it got and what is left.
    let early = search_all(&session, &ds).await;
    assert_eq!(early.is_error, Some(true));
    let said = text(&early);
    assert!(said.starts_with("FixturesLoading: "), "{said}");
    assert!(
        said.contains("patients") || said.contains("import job"),
        "how far it got: {said}"
    );
    assert!(said.contains("Call again in"), "{said}");
    // Another datastore is not held up by the load.
    let other = search_all(&session, &"0".repeat(32)).await;
    assert!(
        text(&other).starts_with("ResourceNotFoundException"),
        "{}",
        text(&other)
    );

    // Later the same call answers from the whole set.
    let mut found = None;
    for _ in 0..600 {
        let result = search_all(&session, &ds).await;
        if result.is_error != Some(true) {
            found = Some(result);
            break;
        }
        assert!(
            text(&result).starts_with("FixturesLoading: "),
            "{}",
            text(&result)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let found = found.expect("the demo set loads within five minutes");
    let count = found.structured_content.unwrap()["count"].as_u64().unwrap();
    assert_eq!(count as usize, expected_image_sets(&data.join("s3")));
    let stderr = session.finish().await;
    assert!(stderr.contains("imported in"), "{stderr}");
}

#[tokio::test]
async fn a_call_made_while_the_set_loads_waits_for_it_and_reports_progress() {
    let home = tempfile::tempdir().unwrap();
    // HEALTHIMAGING_MCP_FIXTURES_WAIT_SECS (300) from the test environment.
    let session = start(home.path(), &["serve", "--seed", "9"]).await;
    let ds = session.first_datastore().await;
    let mut request = CallToolRequestParams::new("search_image_sets").with_arguments(
        json!({"datastore_id": ds, "limit": 500})
            .as_object()
            .unwrap()
            .clone(),
    );
    request.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("first-search".into()),
    )));
    let result = session.client.call_tool(request).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let count = result.structured_content.unwrap()["count"]
        .as_u64()
        .unwrap();
    assert!(count >= 50, "the whole demo set: {count}");

    let progress = session.client.service().0.lock().unwrap().clone();
    assert!(!progress.is_empty(), "the wait reported its progress");
    assert!(
        progress.iter().all(|p| p
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("The demo set is loading")),
        "{progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0].progress < w[1].progress),
        "progress only rises: {progress:?}"
    );
    session.finish().await;
}

#[tokio::test]
async fn a_first_import_cut_short_is_followed_to_its_end_at_the_next_start() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let args = ["serve", "--data-dir", data.to_str().unwrap()];
    let mut session = start(home.path(), &args).await;
    let ds = session.first_datastore().await;
    // Killed once the import job runs.
    let mut running = false;
    for _ in 0..1200 {
        let jobs = session
            .call("list_dicom_import_jobs", json!({"datastore_id": ds}))
            .await;
        let jobs = jobs.structured_content.unwrap();
        if jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_status"] == "IN_PROGRESS" || j["job_status"] == "SUBMITTED")
        {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running, "the import job started");
    session.child.kill().await.unwrap();
    drop(session);

    let session = start(home.path(), &args).await;
    let found = search_all(&session, &ds).await;
    assert_ne!(found.is_error, Some(true), "{}", text(&found));
    let count = found.structured_content.unwrap()["count"].as_u64().unwrap();
    assert_eq!(
        count as usize,
        expected_image_sets(&data.join("s3")),
        "the resumed import completed before the search answered"
    );
    let jobs = session
        .call("list_dicom_import_jobs", json!({"datastore_id": ds}))
        .await;
    let jobs = jobs.structured_content.unwrap();
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        1,
        "no second import: {jobs}"
    );
    session.finish().await;
}
