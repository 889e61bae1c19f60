//! Destructive tools as plans: preview, confirm, execute.
//!
//! A destructive tool first works out its plan: the exact image sets it
//! would change, each with its version, whether it is primary, and what
//! would happen to it (deleted, or a series or an instance removed). Without
//! a token the plan is the preview, and a token is issued bound to the tool,
//! its arguments and the plan. With a token, the plan is worked out again
//! from the current data; it executes only if the token fits and the plan is
//! the one previewed, else a fresh preview and token come back. Execution
//! goes image set by image set through [`super::edits`], with a progress
//! notification after each, and reports what happened to every one.

use rmcp::model::{ProgressNotificationParam, ProgressToken, RequestMetaObject};
use rmcp::{Json, Peer, RoleServer};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::edits::{self, MetadataChange, UpdateOptions, WriteResult};
use super::views::{ImageSetSummaryView, Phase};
use crate::audit::{self, Outcome};
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// What a planned change does.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// DeleteImageSet.
    DeleteImageSet,
    /// UpdateImageSetMetadata removing one series.
    RemoveSeries,
    /// UpdateImageSetMetadata removing one SOP instance.
    RemoveInstance,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::DeleteImageSet => "delete_image_set",
            Action::RemoveSeries => "remove_series",
            Action::RemoveInstance => "remove_instance",
        }
    }
}

/// One change a destructive tool will make.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct PlannedChange {
    /// The image set.
    pub image_set_id: String,
    /// Its version when the plan was made: the change applies to this version.
    pub version_id: String,
    /// Whether it is the primary image set of its series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    /// delete_image_set, remove_series or remove_instance.
    pub action: Action,
    /// The patient the image set belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    /// Its study.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    /// The series concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_instance_uid: Option<String>,
    /// The instance removed (remove_instance only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sop_instance_uid: Option<String>,
}

impl PlannedChange {
    /// `action` on the image set `summary` describes.
    pub(crate) fn on(summary: &ImageSetSummaryView, action: Action) -> Self {
        Self {
            image_set_id: summary.image_set_id.clone(),
            version_id: summary.version.to_string(),
            is_primary: summary.is_primary,
            action,
            patient_id: summary.patient_id.clone(),
            study_instance_uid: summary.study_instance_uid.clone(),
            series_instance_uid: summary.series_instance_uid.clone(),
            sop_instance_uid: None,
        }
    }
}

/// What a destructive tool would do: its changes, and whether the cap left
/// more matches for a later call.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The datastore.
    pub datastore_id: String,
    /// What the changes are about, for the summary ("every image set of patient …").
    pub subject: String,
    /// The changes, in order.
    pub changes: Vec<PlannedChange>,
    /// Matches beyond the cap, left for another call.
    pub more_remain: bool,
}

/// The result of a destructive tool.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DestructiveOutput {
    /// What happened, or what would happen.
    pub summary: String,
    /// preview, executed or refused.
    pub phase: Phase,
    /// The changes previewed (or executed): each image set with its version, primary or
    /// not, and what happens to it.
    pub changes: Vec<PlannedChange>,
    /// After execution: what happened to each image set, and its final state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<WriteResult>,
    /// True when more image sets match than this call may change; call the tool again
    /// after this one (a new preview) to continue.
    pub more_remain: bool,
    /// Pass this back as confirmation_token to execute exactly the previewed changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    /// Seconds the token stays valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// Progress notifications for one tool call, when the client asked for them.
pub(crate) struct Progress {
    token: Option<ProgressToken>,
    peer: Peer<RoleServer>,
}

impl Progress {
    /// The progress channel of a call.
    pub(crate) fn new(meta: &RequestMetaObject, peer: Peer<RoleServer>) -> Self {
        Self {
            token: meta.get_progress_token(),
            peer,
        }
    }

    /// Reports `done` of `total`.
    pub(crate) async fn report(&self, done: usize, total: usize, message: String) {
        if let Some(token) = &self.token {
            let _ = self
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), done as f64)
                        .with_total(total as f64)
                        .with_message(message),
                )
                .await;
        }
    }
}

impl HealthImagingServer {
    /// Previews `plan`, or executes it when `token` confirms exactly this plan.
    pub(crate) async fn two_phase(
        &self,
        tool: &str,
        bound_arguments: Value,
        token: Option<crate::args::ConfirmationToken>,
        plan: Plan,
        progress: Progress,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        for change in &plan.changes {
            audit::touch(&change.image_set_id);
        }
        let fingerprint = json!(plan.changes);
        let refusal = match token {
            None => {
                audit::outcome(Outcome::Preview);
                return Ok(self.plan_preview(tool, bound_arguments, fingerprint, plan, Phase::Preview, "Preview only, nothing changed."));
            }
            Some(token) => match self.confirmations.redeem(token.as_str(), tool, &bound_arguments) {
                Err(refusal) => Some(format!("Nothing changed: {refusal}.")),
                Ok(previewed) if previewed != fingerprint => Some(
                    "Nothing changed: the image sets changed since the preview (a version, a new or a removed image set).".to_owned(),
                ),
                Ok(_) => None,
            },
        };
        if let Some(reason) = refusal {
            audit::outcome(Outcome::Refused);
            return Ok(self.plan_preview(
                tool,
                bound_arguments,
                fingerprint,
                plan,
                Phase::Refused,
                &reason,
            ));
        }
        if plan.changes.is_empty() {
            return Ok(Json(DestructiveOutput {
                summary: format!("Nothing to change: no image set matches {}.", plan.subject),
                phase: Phase::Executed,
                changes: Vec::new(),
                results: Vec::new(),
                more_remain: false,
                confirmation_token: None,
                expires_in_seconds: None,
            }));
        }
        let results = self.execute(&plan, &progress).await;
        let failed = results.iter().filter(|r| !r.succeeded()).count();
        let more = if plan.more_remain {
            " More image sets match than one call may change: call the tool again for a new preview to continue."
        } else {
            ""
        };
        Ok(Json(DestructiveOutput {
            summary: format!(
                "Executed {} changes to {}: {} done, {failed} failed (see results).{more}",
                results.len(),
                plan.subject,
                results.len() - failed
            ),
            phase: Phase::Executed,
            changes: plan.changes,
            results,
            more_remain: plan.more_remain,
            confirmation_token: None,
            expires_in_seconds: None,
        }))
    }

    async fn execute(&self, plan: &Plan, progress: &Progress) -> Vec<WriteResult> {
        let total = plan.changes.len();
        let mut results = Vec::with_capacity(total);
        for (n, change) in plan.changes.iter().enumerate() {
            let ds = plan.datastore_id.as_str();
            let id = change.image_set_id.as_str();
            let series = change.series_instance_uid.as_deref().unwrap_or_default();
            let outcome = match change.action {
                Action::DeleteImageSet => edits::delete(&self.client, ds, id).await,
                Action::RemoveSeries | Action::RemoveInstance => {
                    let removable = edits::removal(series, change.sop_instance_uid.as_deref());
                    let removal = MetadataChange::Dicom {
                        updatable: None,
                        removable: Some(removable),
                    };
                    let action = change.action.name();
                    edits::update(
                        &self.client,
                        ds,
                        id,
                        &removal,
                        &UpdateOptions::default(),
                        action,
                    )
                    .await
                }
            };
            let result = outcome.unwrap_or_else(|error| {
                WriteResult::failed(id, change.action.name(), change.version_id.clone(), &error)
            });
            progress
                .report(
                    n + 1,
                    total,
                    format!("{} {}: {}", result.action, id, result.outcome),
                )
                .await;
            results.push(result);
        }
        if results.iter().any(|r| !r.succeeded()) {
            audit::outcome(Outcome::Error);
        }
        results
    }

    fn plan_preview(
        &self,
        tool: &str,
        bound_arguments: Value,
        fingerprint: Value,
        plan: Plan,
        phase: Phase,
        lead: &str,
    ) -> Json<DestructiveOutput> {
        let issued = self.confirmations.issue(tool, bound_arguments, fingerprint);
        let count = |action: Action| plan.changes.iter().filter(|c| c.action == action).count();
        let primary = plan
            .changes
            .iter()
            .filter(|c| c.is_primary == Some(true))
            .count();
        let what = if plan.changes.is_empty() {
            format!(
                "No image set matches {}; confirming changes nothing.",
                plan.subject
            )
        } else {
            format!(
                "This would change {} image sets ({primary} primary) of {}: {} deleted, {} with a series removed, {} with an instance removed. Deletion is permanent.",
                plan.changes.len(),
                plan.subject,
                count(Action::DeleteImageSet),
                count(Action::RemoveSeries),
                count(Action::RemoveInstance)
            )
        };
        let more = if plan.more_remain {
            " More image sets match than one call may change; after this one, call again to continue."
        } else {
            ""
        };
        Json(DestructiveOutput {
            summary: format!(
                "{lead} {what}{more} To execute exactly this, call {tool} again with this confirmation_token within {} seconds.",
                issued.expires_in.as_secs()
            ),
            phase,
            changes: plan.changes,
            results: Vec::new(),
            more_remain: plan.more_remain,
            confirmation_token: Some(issued.token),
            expires_in_seconds: Some(issued.expires_in.as_secs()),
        })
    }
}
