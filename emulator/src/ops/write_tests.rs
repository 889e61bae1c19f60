//! Tests of UpdateImageSetMetadata, CopyImageSet and DeleteImageSet through
//! the router, with a manual clock moving image sets through their locks:
//! the shared test world here, the cases in `update` and `copy_delete`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::clock::ManualClock;
use crate::service::Service;
use crate::testing::{active_datastore, plant_document, send, send_raw, service};

pub(super) const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(super) const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub(super) const C: &str = "cccccccccccccccccccccccccccccccc";

pub(super) struct World {
    pub(super) service: Arc<Service>,
    clock: ManualClock,
    pub(super) ds: String,
}

impl World {
    pub(super) async fn new() -> Self {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        Self { service, clock, ds }
    }

    pub(super) fn plant(&self, id: &str, primary: bool, document: Value) {
        plant_document(&self.service, &self.ds, id, primary, document);
    }

    pub(super) fn settle(&self) {
        self.clock.advance(Duration::from_millis(100));
    }

    pub(super) fn uri(&self, id: &str, action: &str) -> String {
        format!("/datastore/{}/imageSet/{id}/{action}", self.ds)
    }

    pub(super) async fn update(
        &self,
        id: &str,
        query: &str,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let uri = format!("{}?{query}", self.uri(id, "updateImageSetMetadata"));
        send(&self.service, Method::POST, &uri, &body.to_string()).await
    }

    pub(super) async fn get(&self, id: &str) -> Value {
        let (status, _, body) = send(
            &self.service,
            Method::POST,
            &self.uri(id, "getImageSet"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(super) async fn metadata(&self, id: &str, version: u32) -> Value {
        let uri = format!("{}?version={version}", self.uri(id, "getImageSetMetadata"));
        let (status, bytes) = send_raw(&self.service, Method::POST, &uri, "").await;
        assert_eq!(status, StatusCode::OK);
        crate::metadata::stored::gunzip(&bytes).expect("gzipped JSON")
    }

    /// The status GetImageSetMetadata answers for a version.
    pub(super) async fn metadata_status(&self, id: &str, version: u32) -> StatusCode {
        let uri = format!("{}?version={version}", self.uri(id, "getImageSetMetadata"));
        send_raw(&self.service, Method::POST, &uri, "").await.0
    }

    pub(super) async fn versions(&self, id: &str) -> Vec<(String, String, String)> {
        let uri = self.uri(id, "listImageSetVersions");
        let (_, _, body) = send(&self.service, Method::POST, &uri, "").await;
        body["imageSetPropertiesList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (
                    text("versionId"),
                    text("imageSetState"),
                    text("ImageSetWorkflowStatus"),
                )
            })
            .collect()
    }

    pub(super) async fn search_patient(&self, patient_id: &str) -> Vec<String> {
        let body = json!({"filters": [
            {"values": [{"DICOMPatientId": patient_id}], "operator": "EQUAL"}]});
        let uri = format!("/datastore/{}/searchImageSets", self.ds);
        let (_, _, body) = send(&self.service, Method::POST, &uri, &body.to_string()).await;
        let mut ids: Vec<String> = body["imageSetsMetadataSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["imageSetId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    pub(super) async fn copy(
        &self,
        source: &str,
        query: &str,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let uri = format!("{}?{query}", self.uri(source, "copyImageSet"));
        send(&self.service, Method::POST, &uri, &body.to_string()).await
    }
}

pub(super) fn updates(updatable: Value) -> Value {
    let blob = base64::engine::general_purpose::STANDARD.encode(updatable.to_string());
    json!({"DICOMUpdates": {"updatableAttributes": blob}})
}

pub(super) fn removals(removable: Value) -> Value {
    let blob = base64::engine::general_purpose::STANDARD.encode(removable.to_string());
    json!({"DICOMUpdates": {"removableAttributes": blob}})
}

pub(super) fn study_description(text: &str) -> Value {
    updates(json!({"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": text}}}))
}

mod copy_delete;
mod model;
mod update;
