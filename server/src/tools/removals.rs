//! Removing one series or one instance from one image set, in two phases:
//! `remove_series_from_image_set` and `remove_instance_from_image_set`.
//!
//! Removal uses UpdateImageSetMetadata's documented `removableAttributes`
//! shapes: `{"SchemaVersion":"1.1","Study":{"Series":{"<series>":{}}}}` for a
//! series and `…{"<series>":{"Instances":{"<sop>":{}}}}` for an instance.
//! The removal makes a new version; the old ones stay readable, and a revert
//! brings the content back.

use std::sync::Arc;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::edits;
use super::plan::{Action, DestructiveOutput, Plan, PlannedChange, Progress};
use super::views::ImageSetSummaryView;
use crate::args::{ConfirmationToken, DatastoreId, DicomUid, ImageSetId};
use crate::audit;
use crate::errors::ToolError;
use crate::metadata_cache::ParsedMetadata;
use crate::server::HealthImagingServer;

/// Arguments of `remove_series_from_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveSeriesArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    pub series_instance_uid: DicomUid,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `remove_instance_from_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveInstanceArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    pub series_instance_uid: DicomUid,
    pub sop_instance_uid: DicomUid,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

#[tool_router(router = removal_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Remove one series from one image set (a new version). Two phases (see
    /// confirmation_token).
    #[tool(
        name = "remove_series_from_image_set",
        annotations(
            title = "Remove series from image set",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn remove_series_from_image_set(
        &self,
        Parameters(args): Parameters<RemoveSeriesArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let (ds, id) = (args.datastore_id.as_str(), args.image_set_id.as_str());
        let series = args.series_instance_uid.as_str();
        audit::touch(ds);
        let (view, parsed) = self.read(ds, id).await?;
        let document = &parsed.document;
        if document["Study"]["Series"].get(series).is_none() {
            return Err(not_held(id, &format!("series {series}"), document));
        }
        let mut change = PlannedChange::on(&view, Action::RemoveSeries);
        change.series_instance_uid = Some(series.to_owned());
        let plan = single(ds, format!("series {series} of image set {id}"), change);
        let bound = json!({"datastore_id": ds, "image_set_id": id, "series_instance_uid": series});
        self.two_phase(
            "remove_series_from_image_set",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Remove one SOP instance from one image set (a new version). Two phases (see
    /// confirmation_token).
    #[tool(
        name = "remove_instance_from_image_set",
        annotations(
            title = "Remove instance from image set",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn remove_instance_from_image_set(
        &self,
        Parameters(args): Parameters<RemoveInstanceArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let (ds, id) = (args.datastore_id.as_str(), args.image_set_id.as_str());
        let (series, sop) = (
            args.series_instance_uid.as_str(),
            args.sop_instance_uid.as_str(),
        );
        audit::touch(ds);
        let (view, parsed) = self.read(ds, id).await?;
        let document = &parsed.document;
        if document["Study"]["Series"][series]["Instances"]
            .get(sop)
            .is_none()
        {
            return Err(not_held(
                id,
                &format!("instance {sop} in series {series}"),
                document,
            ));
        }
        let mut change = PlannedChange::on(&view, Action::RemoveInstance);
        change.series_instance_uid = Some(series.to_owned());
        change.sop_instance_uid = Some(sop.to_owned());
        let plan = single(ds, format!("instance {sop} of image set {id}"), change);
        let bound = json!({"datastore_id": ds, "image_set_id": id, "series_instance_uid": series, "sop_instance_uid": sop});
        self.two_phase(
            "remove_instance_from_image_set",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }
}

impl HealthImagingServer {
    /// An image set's current properties and latest metadata.
    pub(super) async fn read(
        &self,
        ds: &str,
        id: &str,
    ) -> Result<(ImageSetSummaryView, Arc<ParsedMetadata>), ToolError> {
        let view = edits::current(&self.client, ds, id).await?;
        if view.image_set_state == "DELETED" {
            return Err(ToolError::new(
                "ImageSetDeleted",
                format!("Image set {id} is deleted"),
                "Search again: deleted image sets cannot be changed.",
            ));
        }
        // The document of the very version the summary names.
        let parsed = self.metadata(ds, id, Some(&view.version_id)).await?;
        let summary = ImageSetSummaryView {
            image_set_id: view.image_set_id,
            version: view.version_id.parse().unwrap_or_default(),
            is_primary: view.is_primary,
            ..summary_of(&parsed.document)
        };
        Ok((summary, parsed))
    }
}

/// The Patient and Study attributes of a document, as a summary view.
fn summary_of(document: &Value) -> ImageSetSummaryView {
    let text = |level: &str, key: &str| document[level]["DICOM"][key].as_str().map(str::to_owned);
    ImageSetSummaryView {
        patient_id: text("Patient", "PatientID"),
        study_instance_uid: text("Study", "StudyInstanceUID"),
        series_instance_uid: document["Study"]["Series"]
            .as_object()
            .and_then(|s| s.keys().next().cloned()),
        ..ImageSetSummaryView::default()
    }
}

fn single(ds: &str, subject: String, change: PlannedChange) -> Plan {
    Plan {
        datastore_id: ds.to_owned(),
        subject,
        changes: vec![change],
        more_remain: false,
    }
}

fn not_held(id: &str, what: &str, document: &Value) -> ToolError {
    let series: Vec<&String> = document["Study"]["Series"]
        .as_object()
        .map(|s| s.keys().collect())
        .unwrap_or_default();
    ToolError::new(
        "NotFound",
        format!("Image set {id} does not hold {what}; its series are {series:?}"),
        "Read the image set's metadata with get_image_set_metadata to find the right series and instance UIDs.",
    )
}
