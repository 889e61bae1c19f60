//! What bulk tools tell a client while they work, and how the write tools
//! wait for a LOCKED image set instead of failing on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_medicalimaging::primitives::Blob;
use aws_sdk_medicalimaging::types::{DicomUpdates, ImageSetState, MetadataUpdates};
use healthimaging_e2e::{Fixture, Mcp, all_image_sets, ci_emulator, structured};
use healthimaging_mcp::audit::AuditLog;
use healthimaging_mcp::permissions::Grant;
use rmcp::model::{
    CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::json;

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

#[tokio::test]
async fn bulk_corrections_report_progress_image_set_by_image_set() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = ci_emulator(dir.path()).await;
    let sets = all_image_sets(&sdk, &ds).await;
    let patient = sets[0]
        .dicom_tags()
        .unwrap()
        .dicom_patient_id()
        .unwrap()
        .to_owned();
    let of_patient = sets
        .iter()
        .filter(|s| s.dicom_tags().and_then(|t| t.dicom_patient_id()) == Some(patient.as_str()))
        .count();
    let server =
        healthimaging_e2e::Setup::default().server(sdk, AuditLog::to_writer(std::io::sink()));
    let collector = Collector::default();
    let client = healthimaging_e2e::serve_with(server, collector.clone()).await;
    let mut request = CallToolRequestParams::new("bulk_update_patient_metadata").with_arguments(
        json!({"datastore_id": ds, "patient_id": patient, "patient_attributes": {"PatientSex": "O"}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let token = ProgressToken(NumberOrString::String("bulk-1".into()));
    request.meta = Some(RequestMetaObject::with_progress_token(token));
    let result = client.call_tool(request).await.unwrap();
    let changed = structured(&result)["results"].as_array().unwrap().len();
    assert_eq!(changed, of_patient);
    // Notifications may trail the response by a moment.
    for _ in 0..100 {
        if collector.0.lock().unwrap().len() == changed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = collector.0.lock().unwrap().clone();
    assert_eq!(seen.len(), changed, "one notification per image set");
    // The client library puts its own token on the request; every notification carries it.
    for (n, params) in seen.iter().enumerate() {
        assert_eq!(params.progress_token, seen[0].progress_token);
        assert_eq!(params.progress, (n + 1) as f64);
        assert_eq!(params.total, Some(changed as f64));
    }
}

#[tokio::test]
async fn a_write_waits_for_a_locked_image_set_to_settle() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    healthimaging_e2e::write_fixtures(
        healthimaging_fixtures::FixtureSet::Ci,
        &s3,
        "fixtures",
        "ci",
    );
    let f = Fixture::start_with(5, |c| c.with_s3_root(&s3)).await;
    let ds = f.active_datastore("locks").await;
    f.import(&ds, "s3://fixtures/ci/dicom/", "s3://fixtures/out/")
        .await;
    let id = all_image_sets(&f.sdk, &ds).await[0]
        .image_set_id()
        .to_owned();
    let change = r#"{"SchemaVersion":"1.1","Study":{"DICOM":{"StudyDescription":"FIRST"}}}"#;
    let first = f
        .sdk
        .update_image_set_metadata()
        .datastore_id(&ds)
        .image_set_id(&id)
        .latest_version_id("1")
        .update_image_set_metadata_updates(MetadataUpdates::DicomUpdates(
            DicomUpdates::builder()
                .updatable_attributes(Blob::new(change))
                .build(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.image_set_state(),
        &ImageSetState::Locked,
        "the manual clock holds the lock"
    );

    let mcp = Mcp::connect(f.sdk.clone(), Grant::ALL, Duration::from_secs(60)).await;
    let args = json!({"datastore_id": ds, "image_set_id": id,
        "updatable_attributes": {"Study": {"DICOM": {"StudyDescription": "SECOND"}}}});
    let call = tokio::spawn(async move { mcp.call("update_image_set_metadata", args).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "the tool waits while the image set is LOCKED"
    );
    let clock = f.clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            clock.advance(Duration::from_millis(200));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let result = structured(&call.await.unwrap());
    ticker.abort();
    assert_eq!(
        result["result"]["from_version_id"], "2",
        "written on the settled version"
    );
    assert_eq!(result["result"]["version_id"], "3");
    assert_eq!(result["result"]["outcome"], "done");
}

#[tokio::test]
async fn a_waited_export_reports_progress_up_to_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, sdk, ds) = healthimaging_e2e::demo_emulator(dir.path()).await;
    let server = healthimaging_e2e::Setup::for_emulator(&emulator)
        .server(sdk, AuditLog::to_writer(std::io::sink()));
    let collector = Collector::default();
    let client = healthimaging_e2e::serve_with(server, collector.clone()).await;
    let sets = all_image_sets(
        &healthimaging_mcp::backend::emulator_client(
            emulator.url(),
            healthimaging_e2e::fast_tuning(),
        ),
        &ds,
    )
    .await;
    let patient = sets[0]
        .dicom_tags()
        .unwrap()
        .dicom_patient_id()
        .unwrap()
        .to_owned();
    let mut request = CallToolRequestParams::new("start_dicom_export_job").with_arguments(
        json!({"datastore_id": ds, "patient_id": patient, "destination": "s3://b-1/progress", "wait": true})
            .as_object()
            .unwrap()
            .clone(),
    );
    request.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("export-1".into()),
    )));
    let result = client.call_tool(request).await.unwrap();
    let job = structured(&result)["job"].clone();
    let total = job["total_instances"].as_u64().unwrap() as f64;
    assert!(total > 1.0);
    for _ in 0..100 {
        if collector
            .0
            .lock()
            .unwrap()
            .last()
            .is_some_and(|p| p.progress == total)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = collector.0.lock().unwrap().clone();
    assert!(!seen.is_empty(), "progress was reported");
    let last = seen.last().unwrap();
    assert_eq!(last.progress, total, "{seen:?}");
    assert_eq!(last.total, Some(total));
    assert!(
        seen.windows(2).all(|w| w[0].progress <= w[1].progress),
        "progress never goes back"
    );
}
