//! Deleting whole image sets, in two phases: `delete_image_set`,
//! `delete_patient_studies` (GDPR erasure), `delete_study` and
//! `bulk_delete_by_criteria`.
//!
//! The composite tools page through every match, primary and non-primary,
//! up to a per-call cap (default 25, at most the server's ceiling), and say
//! when more remain: a deleted image set leaves search, so calling again
//! continues where the last call stopped.

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::plan::{Action, DestructiveOutput, Plan, PlannedChange, Progress};
use super::search::{FilterArg, criteria, equal_criteria, search};
use super::views::ImageSetSummaryView;
use crate::args::{ConfirmationToken, DatastoreId, DicomUid, ImageSetId, PatientId};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// A bulk tool's cap when the caller names none.
pub(crate) const DEFAULT_CAP: usize = 25;

/// Arguments of `delete_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteImageSetArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `delete_patient_studies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePatientArgs {
    pub datastore_id: DatastoreId,
    /// Exact PatientID (case-sensitive).
    pub patient_id: PatientId,
    /// Most image sets deleted per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `delete_study`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteStudyArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    /// Most image sets deleted per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Arguments of `bulk_delete_by_criteria`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteArgs {
    pub datastore_id: DatastoreId,
    /// One or two filters, as search_image_sets takes them.
    pub filters: Vec<FilterArg>,
    /// Most image sets deleted per call (default 25).
    pub max_image_sets: Option<usize>,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

#[tool_router(router = erasure_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Delete one image set, every version. Two phases (see confirmation_token).
    #[tool(
        name = "delete_image_set",
        annotations(
            title = "Delete image set",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_image_set(
        &self,
        Parameters(args): Parameters<DeleteImageSetArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let (ds, id) = (args.datastore_id.as_str(), args.image_set_id.as_str());
        audit::touch(ds);
        let (summary, _) = self.read(ds, id).await?;
        let change = PlannedChange::on(&summary, Action::DeleteImageSet);
        let plan = Plan {
            datastore_id: ds.to_owned(),
            subject: format!("image set {id}"),
            changes: vec![change],
            more_remain: false,
        };
        let bound = json!({"datastore_id": ds, "image_set_id": id});
        self.two_phase(
            "delete_image_set",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Erase a patient (GDPR): delete every image set of a PatientID, in every study, primary
    /// and non-primary. Two phases (see confirmation_token), capped per call: call again until
    /// none match.
    #[tool(
        name = "delete_patient_studies",
        annotations(
            title = "Delete all of a patient's studies",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_patient_studies(
        &self,
        Parameters(args): Parameters<DeletePatientArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let cap = self.cap(args.max_image_sets)?;
        let criteria = equal_criteria(vec![SearchByAttributeValue::DicomPatientId(
            args.patient_id.to_string(),
        )]);
        let plan = self
            .deletion_plan(
                ds,
                Some(criteria),
                cap,
                format!("patient {}", args.patient_id),
            )
            .await?;
        let bound =
            json!({"datastore_id": ds, "patient_id": args.patient_id, "max_image_sets": cap});
        self.two_phase(
            "delete_patient_studies",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Delete every image set of a study. Two phases (see confirmation_token), capped per call.
    #[tool(
        name = "delete_study",
        annotations(
            title = "Delete study",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_study(
        &self,
        Parameters(args): Parameters<DeleteStudyArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let cap = self.cap(args.max_image_sets)?;
        let study = args.study_instance_uid.as_str();
        let criteria = equal_criteria(vec![SearchByAttributeValue::DicomStudyInstanceUid(
            study.to_owned(),
        )]);
        let plan = self
            .deletion_plan(ds, Some(criteria), cap, format!("study {study}"))
            .await?;
        let bound = json!({"datastore_id": ds, "study_instance_uid": study, "max_image_sets": cap});
        self.two_phase(
            "delete_study",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Delete the image sets matching one or two search_image_sets filters. Two phases (see
    /// confirmation_token), capped per call.
    #[tool(
        name = "bulk_delete_by_criteria",
        annotations(
            title = "Bulk delete by search criteria",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn bulk_delete_by_criteria(
        &self,
        Parameters(args): Parameters<BulkDeleteArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        if args.filters.is_empty() {
            return Err(ToolError::new(
                "InvalidArgument",
                "bulk_delete_by_criteria needs at least one filter",
                "Name the image sets to delete with one or two filters; to empty a datastore, delete by patient or study.",
            ));
        }
        let cap = self.cap(args.max_image_sets)?;
        let criteria = criteria(&args.filters, None, None)?;
        let subject = format!("the {} filter(s) given", args.filters.len());
        let plan = self.deletion_plan(ds, criteria, cap, subject).await?;
        let bound = json!({
            "datastore_id": ds,
            "filters": format!("{:?}", args.filters),
            "max_image_sets": cap,
        });
        self.two_phase(
            "bulk_delete_by_criteria",
            bound,
            args.confirmation_token,
            plan,
            Progress::new(&meta, peer),
        )
        .await
    }
}

impl HealthImagingServer {
    /// A caller's per-call cap, checked against the server's ceiling.
    pub(crate) fn cap(&self, requested: Option<usize>) -> Result<usize, ToolError> {
        let cap = requested.unwrap_or(DEFAULT_CAP.min(self.bulk_ceiling));
        if (1..=self.bulk_ceiling).contains(&cap) {
            Ok(cap)
        } else {
            Err(ToolError::new(
                "InvalidArgument",
                format!(
                    "max_image_sets must be between 1 and {}, not {cap}",
                    self.bulk_ceiling
                ),
                "Use a smaller max_image_sets and call again to continue; the operator sets the ceiling with --bulk-ceiling.",
            ))
        }
    }

    /// Deleting every image set `criteria` matches, up to `cap`.
    async fn deletion_plan(
        &self,
        datastore_id: &str,
        criteria: Option<aws_sdk_medicalimaging::types::SearchCriteria>,
        cap: usize,
        subject: String,
    ) -> Result<Plan, ToolError> {
        let (sets, next) = search(&self.client, datastore_id, criteria, cap, None).await?;
        Ok(Plan {
            datastore_id: datastore_id.to_owned(),
            subject,
            changes: sets
                .iter()
                .map(|set: &ImageSetSummaryView| PlannedChange::on(set, Action::DeleteImageSet))
                .collect(),
            more_remain: next.is_some(),
        })
    }
}
