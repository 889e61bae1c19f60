//! Removing series and instances, in two phases:
//! `remove_series_from_image_set`, `remove_instance_from_image_set`,
//! `delete_series_by_uid`, `delete_instance_in_study`,
//! `delete_instance_in_series`.
//!
//! Removal uses UpdateImageSetMetadata's documented `removableAttributes`
//! shapes: `{"SchemaVersion":"1.1","Study":{"Series":{"<series>":{}}}}` for a
//! series and `…{"<series>":{"Instances":{"<sop>":{}}}}` for an instance.
//! Each removal makes a new version; the old ones stay readable (and a
//! revert brings the content back). Where a whole image set holds nothing
//! but the series being deleted, the image set itself is deleted instead.

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::edits;
use super::plan::{Action, DestructiveOutput, Plan, PlannedChange, Progress};
use super::search::{equal_criteria, search};
use super::views::ImageSetSummaryView;
use crate::args::{DatastoreId, DicomUid, ImageSetId};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments of `remove_series_from_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveSeriesArgs {
    /// The datastore, from list_datastores.
    pub datastore_id: DatastoreId,
    /// The image set holding the series.
    pub image_set_id: ImageSetId,
    /// The series to remove (a key of Study.Series in get_image_set_metadata).
    pub series_instance_uid: DicomUid,
    /// Leave empty to preview; then the token the preview returned.
    pub confirmation_token: Option<String>,
}

/// Arguments of `remove_instance_from_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveInstanceArgs {
    /// The datastore, from list_datastores.
    pub datastore_id: DatastoreId,
    /// The image set holding the instance.
    pub image_set_id: ImageSetId,
    /// The instance's series.
    pub series_instance_uid: DicomUid,
    /// The SOPInstanceUID to remove.
    pub sop_instance_uid: DicomUid,
    /// Leave empty to preview; then the token the preview returned.
    pub confirmation_token: Option<String>,
}

/// Arguments of `delete_series_by_uid`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteSeriesArgs {
    /// The datastore, from list_datastores.
    pub datastore_id: DatastoreId,
    /// The series to delete from every image set that holds it.
    pub series_instance_uid: DicomUid,
    /// The most image sets this call changes (default 25, at most the server's ceiling).
    pub max_image_sets: Option<usize>,
    /// Leave empty to preview; then the token the preview returned.
    pub confirmation_token: Option<String>,
}

/// Arguments of `delete_instance_in_study`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteInstanceInStudyArgs {
    /// The datastore, from list_datastores.
    pub datastore_id: DatastoreId,
    /// The study searched.
    pub study_instance_uid: DicomUid,
    /// The SOPInstanceUID removed wherever it appears in the study.
    pub sop_instance_uid: DicomUid,
    /// The most image sets this call changes (default 25, at most the server's ceiling).
    pub max_image_sets: Option<usize>,
    /// Leave empty to preview; then the token the preview returned.
    pub confirmation_token: Option<String>,
}

/// Arguments of `delete_instance_in_series`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteInstanceInSeriesArgs {
    /// The datastore, from list_datastores.
    pub datastore_id: DatastoreId,
    /// The series searched.
    pub series_instance_uid: DicomUid,
    /// The SOPInstanceUID removed from every image set of the series holding it.
    pub sop_instance_uid: DicomUid,
    /// The most image sets this call changes (default 25, at most the server's ceiling).
    pub max_image_sets: Option<usize>,
    /// Leave empty to preview; then the token the preview returned.
    pub confirmation_token: Option<String>,
}

#[tool_router(router = hierarchy_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Remove one series from an image set (a new version; older versions stay
    /// readable). Two phases: the preview names the image set, its version and the
    /// series, with a token; call again with the token after the user agrees.
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
        let (view, document) = self.read(ds, id).await?;
        if document["Study"]["Series"].get(series).is_none() {
            return Err(not_held(id, &format!("series {series}"), &document));
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

    /// Remove one SOP instance from an image set (a new version; older versions stay
    /// readable). Two phases, like remove_series_from_image_set.
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
        let (view, document) = self.read(ds, id).await?;
        if document["Study"]["Series"][series]["Instances"]
            .get(sop)
            .is_none()
        {
            return Err(not_held(
                id,
                &format!("instance {sop} in series {series}"),
                &document,
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

    /// Delete a series everywhere: every image set (primary and non-primary) found by
    /// its SeriesInstanceUID loses the series; an image set holding nothing else is
    /// deleted. Two phases, capped per call (default 25); the preview lists each image
    /// set, its version and what happens to it.
    #[tool(
        name = "delete_series_by_uid",
        annotations(
            title = "Delete series",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_series_by_uid(
        &self,
        Parameters(args): Parameters<DeleteSeriesArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        let series = args.series_instance_uid.as_str();
        audit::touch(ds);
        let cap = self.cap(args.max_image_sets)?;
        let found = SearchByAttributeValue::DicomSeriesInstanceUid(series.to_owned());
        let plan = self
            .plan_over(ds, found, cap, format!("series {series}"), |document| {
                let all = document["Study"]["Series"].as_object()?;
                all.get(series)?;
                let only = all.len() == 1;
                Some(if only {
                    (Action::DeleteImageSet, series.to_owned(), None)
                } else {
                    (Action::RemoveSeries, series.to_owned(), None)
                })
            })
            .await?;
        let bound =
            json!({"datastore_id": ds, "series_instance_uid": series, "max_image_sets": cap});
        self.two_phase(
            "delete_series_by_uid",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Remove one SOP instance wherever it appears in a study (every image set of the
    /// study, primary and non-primary). Two phases, capped per call (default 25).
    #[tool(
        name = "delete_instance_in_study",
        annotations(
            title = "Delete instance in study",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_instance_in_study(
        &self,
        Parameters(args): Parameters<DeleteInstanceInStudyArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        let (study, sop) = (
            args.study_instance_uid.as_str(),
            args.sop_instance_uid.as_str(),
        );
        audit::touch(ds);
        let cap = self.cap(args.max_image_sets)?;
        let found = SearchByAttributeValue::DicomStudyInstanceUid(study.to_owned());
        let subject = format!("instance {sop} in study {study}");
        let plan = self
            .plan_over(ds, found, cap, subject, |document| {
                instance_removal(document, None, sop)
            })
            .await?;
        let bound = json!({"datastore_id": ds, "study_instance_uid": study, "sop_instance_uid": sop, "max_image_sets": cap});
        self.two_phase(
            "delete_instance_in_study",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Remove one SOP instance from every image set of a series that holds it (primary
    /// and non-primary). Two phases, capped per call (default 25).
    #[tool(
        name = "delete_instance_in_series",
        annotations(
            title = "Delete instance in series",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_instance_in_series(
        &self,
        Parameters(args): Parameters<DeleteInstanceInSeriesArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        let (series, sop) = (
            args.series_instance_uid.as_str(),
            args.sop_instance_uid.as_str(),
        );
        audit::touch(ds);
        let cap = self.cap(args.max_image_sets)?;
        let found = SearchByAttributeValue::DicomSeriesInstanceUid(series.to_owned());
        let subject = format!("instance {sop} in series {series}");
        let plan = self
            .plan_over(ds, found, cap, subject, |document| {
                instance_removal(document, Some(series), sop)
            })
            .await?;
        let bound = json!({"datastore_id": ds, "series_instance_uid": series, "sop_instance_uid": sop, "max_image_sets": cap});
        self.two_phase(
            "delete_instance_in_series",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }
}

/// What `decide` makes of one image set's document: the action, its series
/// and instance; `None` leaves the image set alone.
type Decision = Option<(Action, String, Option<String>)>;

impl HealthImagingServer {
    /// An image set's current properties and latest metadata.
    pub(super) async fn read(
        &self,
        ds: &str,
        id: &str,
    ) -> Result<(ImageSetSummaryView, Value), ToolError> {
        let view = edits::current(&self.client, ds, id).await?;
        if view.image_set_state == "DELETED" {
            return Err(ToolError::new(
                "ImageSetDeleted",
                format!("Image set {id} is deleted"),
                "Search again: deleted image sets cannot be changed.",
            ));
        }
        let document = super::fetch_metadata(&self.client, ds, id, None).await?;
        let summary = ImageSetSummaryView {
            image_set_id: view.image_set_id,
            version: view.version_id.parse().unwrap_or_default(),
            is_primary: view.is_primary,
            ..summary_of(&document)
        };
        Ok((summary, document))
    }

    /// The changes `decide` makes of every image set `found` matches (up to
    /// `cap` of them changed), reading each one's metadata.
    async fn plan_over(
        &self,
        ds: &str,
        found: SearchByAttributeValue,
        cap: usize,
        subject: String,
        decide: impl Fn(&Value) -> Decision,
    ) -> Result<Plan, ToolError> {
        let (sets, mut next) = search(
            &self.client,
            ds,
            Some(equal_criteria(vec![found])),
            super::search::MAX_LIMIT,
            None,
        )
        .await?;
        let mut changes = Vec::new();
        for (n, set) in sets.iter().enumerate() {
            if changes.len() == cap {
                next = next.or_else(|| (n < sets.len()).then(String::new));
                break;
            }
            let document = super::fetch_metadata(
                &self.client,
                ds,
                &set.image_set_id,
                Some(&set.version.to_string()),
            )
            .await?;
            if let Some((action, series, sop)) = decide(&document) {
                let mut change = PlannedChange::on(set, action);
                change.series_instance_uid = Some(series);
                change.sop_instance_uid = sop;
                changes.push(change);
            }
        }
        Ok(Plan {
            datastore_id: ds.to_owned(),
            subject,
            changes,
            more_remain: next.is_some(),
        })
    }
}

/// Removing `sop` from a document (within `series` when given).
fn instance_removal(document: &Value, series: Option<&str>, sop: &str) -> Decision {
    let all = document["Study"]["Series"].as_object()?;
    all.iter()
        .filter(|(uid, _)| series.is_none_or(|s| s == uid.as_str()))
        .find(|(_, node)| node["Instances"].get(sop).is_some())
        .map(|(uid, _)| (Action::RemoveInstance, uid.clone(), Some(sop.to_owned())))
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
