//! Deleting series and instances wherever they are, in two phases:
//! `delete_series_by_uid`, `delete_instance_in_study`,
//! `delete_instance_in_series`.
//!
//! Each searches the image sets that may hold the series or instance
//! (primary and non-primary, every page), reads their metadata, and plans a
//! removal (UpdateImageSetMetadata's documented `removableAttributes`) for
//! each that holds it; an image set holding nothing but the series being
//! deleted is deleted whole instead. Each removal makes a new version; the
//! old ones stay readable.

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::plan::{Action, DestructiveOutput, Plan, PlannedChange, Progress};
use super::search::{equal_criteria, search};
use crate::args::{ConfirmationToken, DatastoreId, DicomUid};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments of `delete_series_by_uid`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteSeriesArgs {
    pub datastore_id: DatastoreId,
    pub series_instance_uid: DicomUid,
    /// Most image sets changed per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `delete_instance_in_study`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteInstanceInStudyArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    pub sop_instance_uid: DicomUid,
    /// Most image sets changed per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `delete_instance_in_series`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteInstanceInSeriesArgs {
    pub datastore_id: DatastoreId,
    pub series_instance_uid: DicomUid,
    pub sop_instance_uid: DicomUid,
    /// Most image sets changed per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

#[tool_router(router = hierarchy_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Delete a series everywhere: it is removed from every image set holding it, and an image
    /// set left empty is deleted. Two phases (see confirmation_token), capped per call.
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

    /// Remove one SOP instance wherever it appears in a study. Two phases (see
    /// confirmation_token), capped per call.
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

    /// Remove one SOP instance from every image set of a series holding it. Two phases (see
    /// confirmation_token), capped per call.
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
            let parsed = self
                .metadata(ds, &set.image_set_id, Some(&set.version.to_string()))
                .await?;
            if let Some((action, series, sop)) = decide(&parsed.document) {
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
