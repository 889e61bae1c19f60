//! `update_image_set_metadata` and `copy_image_set`.
//!
//! Both are writes, not deletions: every update and copy-into makes a new
//! version and the old ones stay readable, so a bad edit is undone with
//! `revert_to_version_id`. The tools take attributes as JSON objects in the
//! metadata's own shape and encode them as the API wants (base64 blobs for
//! updates, a JSON string for copies), send the `latestVersionId` strings the
//! API checks, wait for the image sets to settle, and report the outcome,
//! including HealthImaging's `message` when a write fails.

use aws_sdk_medicalimaging::types::{
    CopyDestinationImageSet, CopyImageSetInformation, CopySourceImageSetInformation, MetadataCopies,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attributes;
use super::edits::{self, MetadataChange, UpdateOptions, WriteResult, with_schema};
use crate::args::{DatastoreId, ImageSetId, VersionId};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments of `update_image_set_metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMetadataArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    /// The version you read; refused if another change landed since (default: the current one).
    pub latest_version_id: Option<VersionId>,
    /// Attributes to add or replace, in the metadata's shape:
    /// {"Patient":{"DICOM":{"PatientName":"DOE^JANE"}}}; series and instances under
    /// Study.Series.<UID>[.Instances.<UID>].DICOM.
    pub updatable_attributes: Option<Value>,
    /// Attributes to remove, same shape, values as stored; {} on a series or instance removes
    /// it.
    pub removable_attributes: Option<Value>,
    /// Restore this version's content as a new version.
    pub revert_to_version_id: Option<VersionId>,
    /// Allow changes otherwise refused: UIDs and StudyID (not on primary sets), one instance's
    /// private attributes, sequences, multiple values.
    #[serde(default)]
    pub force: bool,
    /// Apply a Patient or Study change to every primary image set of the study; needed on a
    /// primary set.
    #[serde(default)]
    pub include_study_image_sets: bool,
}

/// Result of `update_image_set_metadata`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateMetadataOutput {
    /// What happened.
    pub summary: String,
    /// The image set's new version and state, and HealthImaging's message if it failed.
    pub result: WriteResult,
}

/// Arguments of `copy_image_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyImageSetArgs {
    /// Holds both image sets.
    pub datastore_id: DatastoreId,
    pub source_image_set_id: ImageSetId,
    /// The source version you read (default: current).
    pub source_version_id: Option<VersionId>,
    /// Merge into this image set instead of a new one.
    pub destination_image_set_id: Option<ImageSetId>,
    /// The destination version you read (default: current).
    pub destination_version_id: Option<VersionId>,
    /// Only these instances: {"Study":{"Series":{"<UID>":{"Instances":{"<UID>":{}}}}}}.
    /// Default: all.
    pub copiable_attributes: Option<Value>,
    /// Copy even if Patient, Study or Series attributes differ (the destination's are kept).
    #[serde(default)]
    pub force: bool,
    /// Make the result its series' primary image set (under a new ID).
    #[serde(default)]
    pub promote_to_primary: bool,
}

/// Result of `copy_image_set`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CopyImageSetOutput {
    /// What happened.
    pub summary: String,
    /// The source afterwards (its version is unchanged by a copy).
    pub source: WriteResult,
    /// The destination: the new image set, or the merged one's new version.
    pub destination: WriteResult,
}

/// The model's limit on each of an update's attribute documents.
const MAX_CHANGE_BYTES: usize = 30_000;
/// The model's limit on a copy's `copiableAttributes`.
const MAX_COPIABLE_CHARS: usize = 260_000;

#[tool_router(router = image_set_write_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Change an image set's metadata: add, replace or remove attributes, remove a series or an
    /// instance, or revert to an earlier version. Waits for the new version and reports it, or
    /// HealthImaging's message when refused (a refusal still uses a version).
    #[tool(
        name = "update_image_set_metadata",
        annotations(
            title = "Update image set metadata",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn update_image_set_metadata(
        &self,
        Parameters(args): Parameters<UpdateMetadataArgs>,
    ) -> Result<Json<UpdateMetadataOutput>, ToolError> {
        let (ds, id) = (args.datastore_id.as_str(), args.image_set_id.as_str());
        audit::touch(ds);
        audit::touch(id);
        let change = match (
            &args.revert_to_version_id,
            &args.updatable_attributes,
            &args.removable_attributes,
        ) {
            (Some(version), None, None) => {
                if args.include_study_image_sets {
                    return Err(invalid(
                        "revert_to_version_id cannot be combined with include_study_image_sets",
                    ));
                }
                MetadataChange::Revert(version.as_str().to_owned())
            }
            (Some(_), _, _) => {
                return Err(invalid(
                    "give either revert_to_version_id or attribute changes, not both",
                ));
            }
            (None, None, None) => {
                return Err(invalid(
                    "give updatable_attributes, removable_attributes or revert_to_version_id",
                ));
            }
            (None, updatable, removable) => {
                for (name, document) in [
                    ("updatable_attributes", updatable),
                    ("removable_attributes", removable),
                ] {
                    if document.as_ref().is_some_and(|d| !d.is_object()) {
                        return Err(invalid(&format!(
                            "{name} must be a JSON object in the metadata's shape"
                        )));
                    }
                    if let Some(document) = document {
                        attributes::check_change(
                            document,
                            args.force,
                            name == "removable_attributes",
                        )?;
                    }
                    let size = document.as_ref().map_or(0, |d| d.to_string().len());
                    if size > MAX_CHANGE_BYTES {
                        return Err(invalid(&format!(
                            "{name} is {size} bytes of JSON; HealthImaging takes at most {MAX_CHANGE_BYTES} per update, so split the change"
                        )));
                    }
                }
                MetadataChange::Dicom {
                    updatable: updatable.clone(),
                    removable: removable.clone(),
                }
            }
        };
        let options = UpdateOptions {
            expected: args.latest_version_id.map(|v| v.as_str().to_owned()),
            force: args.force,
            include_study_image_sets: args.include_study_image_sets,
        };
        let result = edits::update(
            &self.client,
            ds,
            id,
            &change,
            &options,
            "update_image_set_metadata",
        )
        .await?;
        let summary = match (result.succeeded(), &result.message) {
            (true, _) => format!(
                "Image set {id} is now at version {} ({}).",
                result.version_id,
                result
                    .image_set_workflow_status
                    .as_deref()
                    .unwrap_or("updated")
            ),
            (false, message) => format!(
                "HealthImaging refused the change: version {} of image set {id} is {} and holds the previous content. Reason: {}",
                result.version_id,
                result
                    .image_set_workflow_status
                    .as_deref()
                    .unwrap_or("failed"),
                message.as_deref().unwrap_or("none given")
            ),
        };
        Ok(Json(UpdateMetadataOutput { summary, result }))
    }

    /// Copy an image set, or some of its instances, into a new image set (a split or duplicate)
    /// or an existing one (a merge, as its new version). Patient, Study and Series attributes
    /// must agree unless force. Reports both outcomes.
    #[tool(
        name = "copy_image_set",
        annotations(
            title = "Copy image set",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn copy_image_set(
        &self,
        Parameters(args): Parameters<CopyImageSetArgs>,
    ) -> Result<Json<CopyImageSetOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        let source_id = args.source_image_set_id.as_str();
        audit::touch(ds);
        audit::touch(source_id);
        if args
            .copiable_attributes
            .as_ref()
            .is_some_and(|c| !c.is_object())
        {
            return Err(invalid(
                "copiable_attributes must be a JSON object naming series and instances",
            ));
        }
        let size = args
            .copiable_attributes
            .as_ref()
            .map_or(0, |c| c.to_string().chars().count());
        if size > MAX_COPIABLE_CHARS {
            return Err(invalid(&format!(
                "copiable_attributes is {size} characters of JSON; HealthImaging takes at most {MAX_COPIABLE_CHARS}, so copy in several calls"
            )));
        }
        let version_of = |given: Option<VersionId>, id: &str| {
            let client = self.client.clone();
            let id = id.to_owned();
            async move {
                match given {
                    Some(version) => Ok(version.as_str().to_owned()),
                    None => edits::settled(&client, ds, &id)
                        .await
                        .map(|view| view.version_id),
                }
            }
        };
        let source_version = version_of(args.source_version_id, source_id).await?;
        let mut source =
            CopySourceImageSetInformation::builder().latest_version_id(&source_version);
        if let Some(copiable) = &args.copiable_attributes {
            source = source.dicom_copies(
                MetadataCopies::builder()
                    .copiable_attributes(with_schema(copiable).to_string())
                    .build()
                    .map_err(|e| invalid(&e.to_string()))?,
            );
        }
        let mut information = CopyImageSetInformation::builder()
            .source_image_set(source.build().map_err(|e| invalid(&e.to_string()))?);
        let mut destination_version = None;
        if let Some(destination) = &args.destination_image_set_id {
            audit::touch(destination.as_str());
            let version = version_of(args.destination_version_id, destination.as_str()).await?;
            destination_version = Some(version.clone());
            information = information.destination_image_set(
                CopyDestinationImageSet::builder()
                    .image_set_id(destination.as_str())
                    .latest_version_id(version)
                    .build()
                    .map_err(|e| invalid(&e.to_string()))?,
            );
        }
        let copied = self
            .client
            .copy_image_set()
            .datastore_id(ds)
            .source_image_set_id(source_id)
            .copy_image_set_information(information.build())
            .force(args.force)
            .promote_to_primary(args.promote_to_primary)
            .send()
            .await
            .map_err(|e| {
                ToolError::from_sdk(e).advise_on(
                    "ConflictException",
                    "The source or destination is LOCKED by another write, or its version changed: read both with get_image_set and retry with their current versions.",
                )
            })?;
        let (destination_id, written_version) = copied
            .destination_image_set_properties()
            .map(|p| {
                (
                    p.image_set_id().to_owned(),
                    p.latest_version_id().to_owned(),
                )
            })
            .unwrap_or_default();
        audit::touch(&destination_id);
        let source = WriteResult::of(
            "copy_source",
            Some(source_version),
            edits::settled(&self.client, ds, source_id).await?,
        );
        // The copy's own version of the destination, whatever came after it.
        let destination = WriteResult::of(
            "copy_image_set",
            destination_version,
            edits::settled_version(&self.client, ds, &destination_id, &written_version).await?,
        );
        let summary = if destination.succeeded() {
            format!(
                "Copied into image set {destination_id}, now at version {} ({}).",
                destination.version_id,
                destination
                    .image_set_workflow_status
                    .as_deref()
                    .unwrap_or("COPIED")
            )
        } else {
            format!(
                "The copy failed: image set {destination_id} version {} is {}. Reason: {}",
                destination.version_id,
                destination
                    .image_set_workflow_status
                    .as_deref()
                    .unwrap_or("COPY_FAILED"),
                destination.message.as_deref().unwrap_or("none given")
            )
        };
        Ok(Json(CopyImageSetOutput {
            summary,
            source,
            destination,
        }))
    }
}

fn invalid(message: &str) -> ToolError {
    ToolError::new(
        "InvalidArgument",
        message,
        "See the tool's argument descriptions for the expected shape.",
    )
}
