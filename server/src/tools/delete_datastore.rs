//! `delete_datastore`, in two phases.
//!
//! The first call (no token) reads the datastore, shows what would be
//! deleted and returns a confirmation token bound to the datastore ID and to
//! its state as shown. The second call re-reads the datastore and deletes it
//! only if the token fits and the state is unchanged; otherwise it refuses
//! and returns a fresh preview. HealthImaging refuses to delete a datastore
//! that still holds image sets; the tool says so and what to do.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::datastores::get;
use super::search::search;
use super::views::{DatastoreView, Phase};
use crate::args::{ConfirmationToken, DatastoreId};
use crate::audit::{self, Outcome};
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

const TOOL: &str = "delete_datastore";
/// Image sets counted for the preview.
const COUNT_CAP: usize = 1000;

/// Arguments of `delete_datastore`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteDatastoreArgs {
    pub datastore_id: DatastoreId,
    /// Omit to preview; then, once the user agrees, the preview's token.
    pub confirmation_token: Option<ConfirmationToken>,
}

/// Result of `delete_datastore`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteDatastoreOutput {
    /// What happened, or what would happen.
    pub summary: String,
    /// preview, executed or refused.
    pub phase: Phase,
    /// The datastore as it is now (after deletion: DELETING, then DELETED).
    pub datastore: DatastoreView,
    /// Image sets the datastore still holds (counted up to 1000): while any remain,
    /// HealthImaging refuses the deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set_count: Option<usize>,
    /// Pass this back as confirmation_token to execute the previewed deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    /// Seconds the token stays valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

#[tool_router(router = delete_datastore_tool, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Delete an empty datastore (delete its image sets first). Two phases (see
    /// confirmation_token).
    #[tool(
        name = "delete_datastore",
        annotations(
            title = "Delete datastore",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn delete_datastore(
        &self,
        Parameters(args): Parameters<DeleteDatastoreArgs>,
        peer: rmcp::Peer<rmcp::RoleServer>,
    ) -> Result<Json<DeleteDatastoreOutput>, ToolError> {
        let id = args.datastore_id.as_str();
        audit::touch(id);
        let bound_arguments = json!({ "datastore_id": id });
        let current = get(&self.client, id).await?;
        if current.datastore_status != "ACTIVE" && current.datastore_status != "CREATE_FAILED" {
            return Err(ToolError::new(
                "InvalidState",
                format!("Datastore {id} is {}", current.datastore_status),
                match current.datastore_status.as_str() {
                    "CREATING" => "Wait until get_datastore reports ACTIVE, then delete it.",
                    _ => "It is already being deleted or deleted; nothing to do.",
                },
            ));
        }
        let (sets, more) = search(&self.client, id, None, COUNT_CAP, None).await?;
        let held = if more.is_some() {
            COUNT_CAP + 1
        } else {
            sets.len()
        };
        let state = fingerprint(&current, held);

        let Some(token) = args.confirmation_token else {
            let preview = self.preview(
                Phase::Preview,
                current,
                held,
                bound_arguments,
                state,
                "Preview only, nothing changed.",
            );
            // A client that can ask its user shows the preview there.
            match super::plan::ask_the_user(&peer, &preview.0.summary).await {
                Some(true) => return self.delete_now(id).await,
                Some(false) => {
                    audit::outcome(Outcome::Refused);
                    let mut declined = preview.0;
                    declined.summary = "Not deleted: the user declined in the client.".to_owned();
                    declined.phase = Phase::Refused;
                    declined.confirmation_token = None;
                    declined.expires_in_seconds = None;
                    return Ok(Json(declined));
                }
                None => {
                    audit::outcome(Outcome::Preview);
                    return Ok(preview);
                }
            }
        };
        match self
            .confirmations
            .redeem(token.as_str(), TOOL, &bound_arguments)
        {
            Err(refusal) => {
                audit::outcome(Outcome::Refused);
                let reason = format!("Not deleted: {refusal}.");
                return Ok(self.preview(
                    Phase::Refused,
                    current,
                    held,
                    bound_arguments,
                    state,
                    &reason,
                ));
            }
            Ok(previewed) if previewed != crate::confirm::digest(&state) => {
                audit::outcome(Outcome::Refused);
                return Ok(self.preview(
                    Phase::Refused,
                    current,
                    held,
                    bound_arguments,
                    state,
                    "Not deleted: the datastore changed since the preview.",
                ));
            }
            Ok(_) => {}
        }
        self.delete_now(id).await
    }
}

impl HealthImagingServer {
    async fn delete_now(&self, id: &str) -> Result<Json<DeleteDatastoreOutput>, ToolError> {
        self.client
            .delete_datastore()
            .datastore_id(id)
            .send()
            .await
            .map_err(|error| {
                ToolError::from_sdk(error).advise_on(
                    "ConflictException",
                    "The datastore still holds image sets. Delete them first (search_image_sets lists them; delete_image_set deletes one), then preview the deletion again.",
                )
            })?;
        let datastore = get(&self.client, id).await?;
        Ok(Json(DeleteDatastoreOutput {
            summary: format!(
                "Deleted datastore {} ({}); it is now {}.",
                datastore.datastore_name, datastore.datastore_id, datastore.datastore_status
            ),
            phase: Phase::Executed,
            datastore,
            image_set_count: None,
            confirmation_token: None,
            expires_in_seconds: None,
        }))
    }
}

impl HealthImagingServer {
    fn preview(
        &self,
        phase: Phase,
        current: DatastoreView,
        image_sets: usize,
        bound_arguments: serde_json::Value,
        state: serde_json::Value,
        lead: &str,
    ) -> Json<DeleteDatastoreOutput> {
        let issued = self.confirmations.issue(TOOL, bound_arguments, state);
        let holding = match image_sets {
            0 => "It holds no image sets.".to_owned(),
            n if n > COUNT_CAP => format!(
                "It still holds more than {COUNT_CAP} image sets: HealthImaging will refuse the deletion until every one is deleted."
            ),
            1 => "It still holds 1 image set: HealthImaging will refuse the deletion until it is deleted.".to_owned(),
            n => format!(
                "It still holds {n} image sets: HealthImaging will refuse the deletion until every one is deleted."
            ),
        };
        Json(DeleteDatastoreOutput {
            summary: format!(
                "{lead} Deleting datastore {} ({}, created {}) is permanent. {holding} To delete, call delete_datastore again with this confirmation_token within {} seconds.",
                current.datastore_name,
                current.datastore_id,
                current
                    .created_at
                    .as_deref()
                    .unwrap_or("at an unknown time"),
                issued.expires_in.as_secs()
            ),
            phase,
            datastore: current,
            image_set_count: Some(image_sets),
            confirmation_token: Some(issued.token),
            expires_in_seconds: Some(issued.expires_in.as_secs()),
        })
    }
}

/// What must not change between preview and deletion.
fn fingerprint(datastore: &DatastoreView, image_sets: usize) -> serde_json::Value {
    json!({
        "image_sets": image_sets,
        "name": datastore.datastore_name,
        "status": datastore.datastore_status,
        "updated_at": datastore.updated_at,
    })
}
