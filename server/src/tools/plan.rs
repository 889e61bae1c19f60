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
use serde_json::{Map, Value, json};

use super::edits::{self, MetadataChange, UpdateOptions, WriteResult};
use super::views::{ImageSetSummaryView, Phase};
use crate::audit::{self, Outcome};
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// The most changes the preview's text lists one by one (all are in `changes`).
const PREVIEW_LINES: usize = 25;

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
    /// What a person recognises it by: patient name and ID, study date and
    /// description, modality, series number and description, instance
    /// counts, primary or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
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
            label: None,
        }
    }
}

/// What an execution removed, and what remains, change by change.
fn executed_summary(plan: &Plan, results: &[WriteResult]) -> String {
    let failed = results.iter().filter(|r| !r.succeeded()).count();
    let mut text = format!(
        "Executed {} of {}: {} done, {failed} failed.",
        match results.len() {
            1 => "1 change".to_owned(),
            n => format!("{n} changes"),
        },
        plan.subject,
        results.len() - failed
    );
    for (change, result) in plan.changes.iter().zip(results) {
        let id = &change.image_set_id;
        let label = change
            .label
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        let line = match (change.action, result.succeeded()) {
            (Action::DeleteImageSet, true) => {
                format!("deleted image set {id} with every version{label}; nothing of it remains")
            }
            (Action::RemoveSeries | Action::RemoveInstance, true) => {
                let what = if change.action == Action::RemoveSeries {
                    "the series"
                } else {
                    "the instance"
                };
                let old = result
                    .from_version_id
                    .as_deref()
                    .unwrap_or(&change.version_id);
                format!(
                    "removed {what} from image set {id}{label}: its version {} no longer holds it; versions 1 to {old} still do (delete_image_set removes every version)",
                    result.version_id
                )
            }
            (_, false) => format!(
                "FAILED on image set {id}{label}, which remains as it was: {}",
                result.message.as_deref().unwrap_or("see results")
            ),
        };
        text.push_str(&format!("\n- {line}"));
    }
    text.push('\n');
    text.push_str(if plan.more_remain {
        "More image sets still match than one call may change: they remain. Call the tool again for a new preview to continue."
    } else {
        "No other image set matched when the plan was made."
    });
    text
}

/// `value` of a DICOM attribute as display text: the first of several
/// values, a person name's components joined.
fn text(value: &Value) -> Option<String> {
    let first = match value {
        Value::Array(values) => values.first()?,
        other => other,
    };
    let text = match first {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Object(name) => name
            .get("Alphabetic")
            .and_then(Value::as_str)?
            .trim()
            .to_owned(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// YYYYMMDD as YYYY-MM-DD; anything else as it is.
fn date(value: &str) -> String {
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &value[..4], &value[4..6], &value[6..])
    } else {
        value.to_owned()
    }
}

/// One series in words: "CT series 3 \"AXIAL 2.5mm\", 120 instances".
fn series_words(series: &Value) -> String {
    let dicom = &series["DICOM"];
    let instances = series["Instances"].as_object().map_or(0, Map::len);
    let mut words = match text(&dicom["Modality"]) {
        Some(modality) => format!("{modality} series"),
        None => "series".to_owned(),
    };
    if let Some(number) = text(&dicom["SeriesNumber"]) {
        words.push_str(&format!(" {number}"));
    }
    if let Some(description) = text(&dicom["SeriesDescription"]) {
        words.push_str(&format!(" \"{description}\""));
    }
    words.push_str(&format!(
        ", {instances} instance{}",
        if instances == 1 { "" } else { "s" }
    ));
    words
}

/// The label of `change` from the metadata of the version it applies to.
pub(crate) fn label(change: &PlannedChange, document: &Value) -> String {
    let patient = &document["Patient"]["DICOM"];
    let study = &document["Study"]["DICOM"];
    let all_series = document["Study"]["Series"].as_object();
    let mut parts = vec![format!(
        "{} ({})",
        text(&patient["PatientName"]).unwrap_or_else(|| "no name".to_owned()),
        text(&patient["PatientID"]).unwrap_or_else(|| "no PatientID".to_owned())
    )];
    let mut study_words = "study".to_owned();
    if let Some(day) = text(&study["StudyDate"]) {
        study_words.push_str(&format!(" of {}", date(&day)));
    }
    if let Some(description) = text(&study["StudyDescription"]) {
        study_words.push_str(&format!(" \"{description}\""));
    }
    parts.push(study_words);
    let named = change
        .series_instance_uid
        .as_deref()
        .and_then(|uid| all_series.and_then(|all| all.get(uid)));
    match (change.action, named) {
        (Action::RemoveInstance, Some(series)) => {
            let sop = change.sop_instance_uid.as_deref().unwrap_or_default();
            let number = text(&series["Instances"][sop]["DICOM"]["InstanceNumber"])
                .map_or_else(String::new, |n| format!(" {n}"));
            parts.push(format!("instance{number} of {}", series_words(series)));
        }
        (Action::RemoveSeries, Some(series)) => {
            let total: usize = all_series
                .into_iter()
                .flatten()
                .map(|(_, s)| s["Instances"].as_object().map_or(0, Map::len))
                .sum();
            parts.push(format!(
                "{} (of {total} in the image set)",
                series_words(series)
            ));
        }
        _ => match all_series.map(|all| (all.len(), all)) {
            Some((1, all)) => parts.extend(all.values().map(series_words)),
            Some((count, all)) => {
                let instances: usize = all
                    .values()
                    .map(|s| s["Instances"].as_object().map_or(0, Map::len))
                    .sum();
                parts.push(format!("{count} series, {instances} instances"));
            }
            None => parts.push("no series".to_owned()),
        },
    }
    parts.push(
        match change.is_primary {
            Some(true) => "primary",
            Some(false) => "not primary",
            None => "primary or not unknown",
        }
        .to_owned(),
    );
    parts.join("; ")
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

/// The answer a client's user gives to a preview shown through elicitation.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Confirmation {
    /// Carry out exactly the changes the preview lists?
    confirm: bool,
}
rmcp::elicit_safe!(Confirmation);

/// Shows `preview` to the client's user and returns their answer: `None`
/// when the client cannot ask (no elicitation capability, the 2026-07-28
/// flow, an error). An answer only confirms a call the grant already
/// allows; it is never authentication.
pub(crate) async fn ask_the_user(peer: &Peer<RoleServer>, preview: &str) -> Option<bool> {
    let message = preview
        .split("To execute exactly this, call")
        .next()
        .unwrap_or(preview)
        .split("Show this to the user")
        .next()
        .unwrap_or(preview)
        .to_owned();
    let asked = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        peer.elicit::<Confirmation>(format!("{message}\n\nConfirm to carry this out.")),
    )
    .await
    .ok()?;
    match asked {
        Ok(Some(answer)) => Some(answer.confirm),
        Err(
            rmcp::service::ElicitationError::UserDeclined
            | rmcp::service::ElicitationError::UserCancelled,
        ) => Some(false),
        _ => None,
    }
}

impl HealthImagingServer {
    /// Previews `plan`, or executes it when `token` confirms exactly this plan.
    pub(crate) async fn two_phase(
        &self,
        tool: &str,
        bound_arguments: Value,
        token: Option<crate::args::ConfirmationToken>,
        mut plan: Plan,
        progress: Progress,
    ) -> Result<Json<DestructiveOutput>, ToolError> {
        for change in &mut plan.changes {
            audit::touch(&change.image_set_id);
            // The version's document, held from planning: what a person
            // recognises the image set by. Unreadable, the change has no label.
            if let Ok(parsed) = self
                .metadata(
                    &plan.datastore_id,
                    &change.image_set_id,
                    Some(&change.version_id),
                )
                .await
            {
                change.label = Some(label(change, &parsed.document));
            }
        }
        let fingerprint = json!(plan.changes);
        let refusal = match token {
            None => {
                let preview = self.plan_preview(tool, bound_arguments.clone(), fingerprint.clone(), plan.clone(), Phase::Preview, "Preview only, nothing changed.");
                // A client that can ask its user shows the preview there; the
                // user's answer completes the call. Without that, the token.
                let asked = if plan.changes.is_empty() {
                    None
                } else {
                    ask_the_user(&progress.peer, &preview.0.summary).await
                };
                match asked {
                    Some(true) => None,
                    Some(false) => {
                        audit::outcome(Outcome::Refused);
                        return Ok(Json(DestructiveOutput {
                            summary: format!(
                                "Nothing changed: the user declined in the client. {}",
                                preview.0.summary.split("To execute exactly this, call").next().unwrap_or_default().trim_end()
                            ),
                            phase: Phase::Refused,
                            confirmation_token: None,
                            expires_in_seconds: None,
                            ..preview.0
                        }));
                    }
                    None => {
                        audit::outcome(Outcome::Preview);
                        return Ok(preview);
                    }
                }
            }
            Some(token) => match self.confirmations.redeem(token.as_str(), tool, &bound_arguments) {
                Err(refusal) => Some(format!("Nothing changed: {refusal}.")),
                Ok(previewed) if previewed != crate::confirm::digest(&fingerprint) => Some(
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
        let summary = executed_summary(&plan, &results);
        Ok(Json(DestructiveOutput {
            summary,
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
                Action::DeleteImageSet => {
                    // Its documents leave memory with it, whatever the outcome.
                    self.metadata.forget(id);
                    edits::delete(&self.client, ds, id).await
                }
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
        if plan.changes.is_empty() {
            // Nothing to confirm: no token, and no invitation to call again.
            let lead = if phase == Phase::Refused {
                format!("{lead} ")
            } else {
                String::new()
            };
            return Json(DestructiveOutput {
                summary: format!(
                    "{lead}Nothing to do: no image set matches {}.",
                    plan.subject
                ),
                phase,
                changes: Vec::new(),
                results: Vec::new(),
                more_remain: false,
                confirmation_token: None,
                expires_in_seconds: None,
            });
        }
        let issued = self.confirmations.issue(tool, bound_arguments, fingerprint);
        let count = |action: Action| plan.changes.iter().filter(|c| c.action == action).count();
        let primary = plan
            .changes
            .iter()
            .filter(|c| c.is_primary == Some(true))
            .count();
        let mut what = format!(
            "This would change {} ({primary} primary) of {}: {} deleted, {} with a series removed, {} with an instance removed. Deletion is permanent.",
            match plan.changes.len() {
                1 => "1 image set".to_owned(),
                n => format!("{n} image sets"),
            },
            plan.subject,
            count(Action::DeleteImageSet),
            count(Action::RemoveSeries),
            count(Action::RemoveInstance)
        );
        for change in plan.changes.iter().take(PREVIEW_LINES) {
            let verb = match change.action {
                Action::DeleteImageSet => "delete image set",
                Action::RemoveSeries => "remove a series from image set",
                Action::RemoveInstance => "remove an instance from image set",
            };
            what.push_str(&format!(
                "\n- {verb} {} (version {}): {}",
                change.image_set_id,
                change.version_id,
                change
                    .label
                    .as_deref()
                    .unwrap_or("its metadata could not be read")
            ));
        }
        if plan.changes.len() > PREVIEW_LINES {
            what.push_str(&format!(
                "\n- and {} more (see changes)",
                plan.changes.len() - PREVIEW_LINES
            ));
        }
        let more = if plan.more_remain {
            "More image sets match than one call may change; after this one, call again to continue. "
        } else {
            ""
        };
        Json(DestructiveOutput {
            summary: format!(
                "{lead} {what}\n{more}To execute exactly this, call {tool} again with this confirmation_token within {} seconds.",
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
