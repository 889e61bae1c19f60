//! UpdateImageSetMetadata:
//! `POST /datastore/{datastoreId}/imageSet/{imageSetId}/updateImageSetMetadata?latestVersion=&force=&includeStudyImageSets=`
//! with the union body `{"DICOMUpdates":{"updatableAttributes","removableAttributes"}}`
//! (base64 blobs of JSON) or `{"revertToVersionId"}`.
//!
//! The request shape is validated at once (ValidationException); the DICOM
//! constraints are applied as the service applies them, to the document: a
//! violation still consumes the next version, which settles as
//! `UPDATE_FAILED` with the reason as its `message` (see
//! [`crate::metadata::edit`]). With `includeStudyImageSets` the Patient and
//! Study level change is applied to every primary image set of the study in
//! one transaction: all of them get a new version, or none does.

use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::error::{ApiError, ApiResult};
use crate::metadata::edit::{self, Refusal, Rules};
use crate::service::Service;
use crate::store::{ImageSet, Reader, WorkflowStatus};
use crate::wire::{self, JsonBody};

use super::Request;
use super::image_set_writes::{
    Outcome, append_version, document_of, latest_document, properties, version_id, writable,
};
use super::image_sets::find;

/// The `updateImageSetMetadataUpdates` union, validated.
enum Updates {
    /// `DICOMUpdates`, parsed.
    Dicom {
        removable: Option<Json>,
        updatable: Option<Json>,
    },
    /// `revertToVersionId`.
    Revert(u32),
}

const UPDATE: (WorkflowStatus, WorkflowStatus, WorkflowStatus) = (
    WorkflowStatus::Updating,
    WorkflowStatus::Updated,
    WorkflowStatus::UpdateFailed,
);

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    // Each member is checked before the first violation is answered.
    let mut v = crate::validate::Violations::default();
    let latest = v
        .check(
            request
                .query
                .get("latestVersion")
                .ok_or_else(|| ApiError::validation("latestVersionId", "Member must not be null"))
                .and_then(|latest| version_id("latestVersionId", latest)),
        )?
        .unwrap_or_default();
    let force = v
        .check(request.query.boolean("force"))?
        .flatten()
        .unwrap_or(false);
    let study_wide = v
        .check(request.query.boolean("includeStudyImageSets"))?
        .flatten()
        .unwrap_or(false);
    let updates = v.check(JsonBody::parse(&request.body).and_then(|body| parse_updates(&body)))?;
    v.finish()?;
    let Some(updates) = updates else {
        return Err(ApiError::validation(
            "updateImageSetMetadataUpdates",
            "Member must not be null",
        ));
    };
    if let Updates::Dicom {
        updatable,
        removable,
    } = &updates
        && study_wide
        && ![updatable, removable]
            .into_iter()
            .flatten()
            .all(edit::study_level_only)
    {
        return Err(ApiError::validation(
            "includeStudyImageSets",
            "a study-wide update carries Patient and Study level attributes only",
        ));
    }
    if study_wide && matches!(updates, Updates::Revert(_)) {
        return Err(ApiError::validation(
            "includeStudyImageSets",
            "not allowed together with revertToVersionId",
        ));
    }

    let now = service.now();
    let datastore_id = request.labels[0].clone();
    let mut body = service.store().write(|w| -> ApiResult<_> {
        let mut set = find(service, w, request)?;
        writable(&set, now, latest)?;
        let rules = Rules {
            force,
            primary: set.is_primary,
            study_wide,
        };
        let outcome = match &updates {
            Updates::Revert(target) => {
                let version = w
                    .version(&set, *target)?
                    .filter(|v| v.version_id < latest)
                    .ok_or_else(|| {
                        ApiError::validation(
                            "revertToVersionId",
                            format!("image set {} has no earlier version {target}", set.id),
                        )
                    })?;
                Outcome::Written(document_of(service, &version)?)
            }
            Updates::Dicom {
                removable,
                updatable,
            } => {
                let mut others = Vec::new();
                if study_wide {
                    others = study_primaries(w, &set)?;
                    for other in &others {
                        writable(other, now, other.latest().version_id)?;
                    }
                }
                let applied = apply(service, &set, removable, updatable, rules).and_then(|doc| {
                    let mut docs = Vec::new();
                    for other in &others {
                        let rules = Rules {
                            primary: true,
                            ..rules
                        };
                        docs.push(apply(service, other, removable, updatable, rules)?);
                    }
                    Ok((doc, docs))
                });
                match applied {
                    Ok((document, other_docs)) => {
                        for (mut other, doc) in others.into_iter().zip(other_docs) {
                            let statuses = (
                                WorkflowStatus::UpdatingForStudyConsistency,
                                UPDATE.1,
                                UPDATE.2,
                            );
                            append_version(
                                service,
                                w,
                                &mut other,
                                Outcome::Written(doc),
                                statuses,
                                force,
                            )?;
                        }
                        Outcome::Written(document)
                    }
                    Err(Failure::Refused(Refusal(why))) => Outcome::Failed(why),
                    Err(Failure::Api(error)) => return Err(error),
                }
            }
        };
        let forced = force
            && matches!(outcome, Outcome::Written(_))
            && matches!(updates, Updates::Dicom { .. });
        append_version(service, w, &mut set, outcome, UPDATE, forced)?;
        Ok(properties(service, &set, now))
    })?;
    body["datastoreId"] = json!(datastore_id);
    if let Some(arn) = body.as_object_mut() {
        arn.remove("imageSetArn");
    }
    Ok(wire::json(&body))
}

/// Why a change could not be applied.
enum Failure {
    /// The DICOM constraints refused it: the write fails.
    Refused(Refusal),
    /// The emulator could not read a document.
    Api(ApiError),
}

/// `set`'s latest document with the removals, then the updates, applied.
fn apply(
    service: &Service,
    set: &ImageSet,
    removable: &Option<Json>,
    updatable: &Option<Json>,
    rules: Rules,
) -> Result<Json, Failure> {
    let mut document = latest_document(service, set).map_err(Failure::Api)?;
    if let Some(removals) = removable {
        edit::remove(&mut document, removals, rules).map_err(Failure::Refused)?;
    }
    if let Some(updates) = updatable {
        edit::update(&mut document, updates, rules).map_err(Failure::Refused)?;
    }
    Ok(document)
}

/// The other primary image sets of `set`'s study.
fn study_primaries(reader: &Reader<'_>, set: &ImageSet) -> ApiResult<Vec<ImageSet>> {
    let Some(study) = set.latest().tags.study_instance_uid.clone() else {
        return Ok(Vec::new());
    };
    Ok(reader
        .study_primaries(&set.datastore_id, &study)?
        .into_iter()
        .filter(|other| other.id != set.id)
        .collect())
}

/// Reads the body's union member.
fn parse_updates(body: &JsonBody) -> ApiResult<Updates> {
    const FIELD: &str = "updateImageSetMetadataUpdates";
    let revert = body.string("revertToVersionId")?;
    let dicom = body.value("DICOMUpdates");
    match (dicom, revert) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            FIELD,
            "provide either DICOMUpdates or revertToVersionId, not both",
        )),
        (None, None) => Err(ApiError::validation(
            FIELD,
            "provide DICOMUpdates or revertToVersionId",
        )),
        (None, Some(revert)) => Ok(Updates::Revert(version_id("revertToVersionId", &revert)?)),
        (Some(dicom), None) => {
            let members = dicom
                .as_object()
                .ok_or_else(|| ApiError::validation("DICOMUpdates", "Member must be an object"))?;
            let blob = |name: &str| -> ApiResult<Option<Json>> {
                let field = format!("DICOMUpdates.{name}");
                let Some(value) = members.get(name).filter(|v| !v.is_null()) else {
                    return Ok(None);
                };
                let encoded = value
                    .as_str()
                    .ok_or_else(|| ApiError::validation(&field, "Member must be a blob"))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| ApiError::validation(&field, "Member must be base64"))?;
                if bytes.is_empty() || bytes.len() > 30_000 {
                    return Err(ApiError::validation(
                        &field,
                        "Member must have length between 1 and 30000",
                    ));
                }
                edit::parse(name, &bytes)
                    .map(Some)
                    .map_err(|why| ApiError::validation(&field, why))
            };
            let removable = blob("removableAttributes")?;
            let updatable = blob("updatableAttributes")?;
            if removable.is_none() && updatable.is_none() {
                return Err(ApiError::validation(
                    "DICOMUpdates",
                    "provide updatableAttributes or removableAttributes",
                ));
            }
            Ok(Updates::Dicom {
                removable,
                updatable,
            })
        }
    }
}
