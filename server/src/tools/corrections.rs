//! Demographic and study corrections across image sets:
//! `update_patient_study_metadata` (one study) and
//! `bulk_update_patient_metadata` (every study of a patient).
//!
//! HealthImaging keeps the primary image sets of a study consistent: their
//! Patient and Study attributes change together, through one update with
//! `includeStudyImageSets` on any of them. Non-primary image sets are
//! updated one by one. Image sets that already carry the requested values
//! are skipped, so calling again after a capped call continues the work.

use std::collections::BTreeSet;

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::RequestMetaObject;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use healthimaging_emulator::metadata::Level;

use super::attributes;
use super::edits::{self, MetadataChange, UpdateOptions, WriteResult};
use super::plan::Progress;
use super::search::{equal_criteria, search};
use super::views::ImageSetSummaryView;
use crate::args::{DatastoreId, DicomUid, PatientId};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments of `update_patient_study_metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyCorrectionArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    /// By DICOM keyword, e.g. {"PatientName":"DOE^JANE"}.
    #[serde(default)]
    pub patient_attributes: Map<String, Value>,
    /// By DICOM keyword, e.g. {"StudyDescription":"CT CHEST"}.
    #[serde(default)]
    pub study_attributes: Map<String, Value>,
    /// Most image sets changed per call (default 25).
    pub max_image_sets: Option<usize>,
}

/// Arguments of `bulk_update_patient_metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientCorrectionArgs {
    pub datastore_id: DatastoreId,
    /// Exact PatientID (case-sensitive).
    pub patient_id: PatientId,
    /// By DICOM keyword, e.g. {"PatientName":"DOE^JANE"}.
    pub patient_attributes: Map<String, Value>,
    /// Most image sets changed per call (default 25).
    pub max_image_sets: Option<usize>,
}

/// Result of the correction tools.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CorrectionOutput {
    /// What happened.
    pub summary: String,
    /// What happened to each image set changed, with its new version and state.
    pub results: Vec<WriteResult>,
    /// Image sets that already carried the requested values.
    pub already_up_to_date: Vec<String>,
    /// True when more image sets match than this call may change: call again to continue.
    pub more_remain: bool,
}

#[tool_router(router = correction_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Correct Patient and Study level attributes in every image set of a study (primary ones
    /// together, the others one by one). Reports progress and each image set's outcome.
    #[tool(
        name = "update_patient_study_metadata",
        annotations(
            title = "Correct a study's patient and study attributes",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn update_patient_study_metadata(
        &self,
        Parameters(args): Parameters<StudyCorrectionArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<CorrectionOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        if args.patient_attributes.is_empty() && args.study_attributes.is_empty() {
            return Err(invalid(
                "give patient_attributes or study_attributes to change",
            ));
        }
        attributes::check_level(&args.patient_attributes, Level::Patient, false)?;
        attributes::check_level(&args.study_attributes, Level::Study, false)?;
        let cap = self.cap(args.max_image_sets)?;
        let study = args.study_instance_uid.as_str();
        let found = SearchByAttributeValue::DicomStudyInstanceUid(study.to_owned());
        let wanted = Wanted {
            patient: args.patient_attributes,
            study: args.study_attributes,
        };
        self.correct(
            ds,
            found,
            cap,
            &wanted,
            format!("study {study}"),
            Progress::new(&meta, peer),
        )
        .await
    }

    /// Correct Patient level attributes (name, birth date, sex, …) in every image set of a
    /// patient: every study, primary and non-primary. Capped per call; sets already corrected
    /// are skipped, so call again while more_remain. Reports progress.
    #[tool(
        name = "bulk_update_patient_metadata",
        annotations(
            title = "Correct a patient's attributes everywhere",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn bulk_update_patient_metadata(
        &self,
        Parameters(args): Parameters<PatientCorrectionArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<CorrectionOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        if args.patient_attributes.is_empty() {
            return Err(invalid("give the patient_attributes to change"));
        }
        attributes::check_level(&args.patient_attributes, Level::Patient, false)?;
        let cap = self.cap(args.max_image_sets)?;
        let found = SearchByAttributeValue::DicomPatientId(args.patient_id.to_string());
        let wanted = Wanted {
            patient: args.patient_attributes,
            study: Map::new(),
        };
        let subject = format!("patient {}", args.patient_id);
        self.correct(ds, found, cap, &wanted, subject, Progress::new(&meta, peer))
            .await
    }
}

/// The requested values.
struct Wanted {
    patient: Map<String, Value>,
    study: Map<String, Value>,
}

impl Wanted {
    fn updatable(&self) -> Value {
        let mut document = json!({});
        if !self.patient.is_empty() {
            document["Patient"] = json!({ "DICOM": self.patient });
        }
        if !self.study.is_empty() {
            document["Study"] = json!({ "DICOM": self.study });
        }
        document
    }

    /// Whether `document` already carries every requested value.
    fn met_by(&self, document: &Value) -> bool {
        let level_has = |level: &str, wanted: &Map<String, Value>| {
            wanted
                .iter()
                .all(|(key, value)| same(&document[level]["DICOM"][key], value))
        };
        level_has("Patient", &self.patient) && level_has("Study", &self.study)
    }
}

fn same(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::String(a), Value::String(b)) => a.trim() == b.trim(),
        _ => stored == wanted,
    }
}

impl HealthImagingServer {
    /// Applies `wanted` to every image set `found` matches that does not
    /// carry it yet, up to `cap` image sets.
    async fn correct(
        &self,
        ds: &str,
        found: SearchByAttributeValue,
        cap: usize,
        wanted: &Wanted,
        subject: String,
        progress: Progress,
    ) -> Result<Json<CorrectionOutput>, ToolError> {
        let criteria = equal_criteria(vec![found]);
        let (sets, _) = search(
            &self.client,
            ds,
            Some(criteria),
            super::search::MAX_LIMIT,
            None,
        )
        .await?;
        let mut pending: Vec<ImageSetSummaryView> = Vec::new();
        let mut already = Vec::new();
        let mut more_remain = false;
        for set in sets {
            let parsed = self.metadata(ds, &set.image_set_id, None).await?;
            if wanted.met_by(&parsed.document) {
                already.push(set.image_set_id);
            } else if pending.len() == cap {
                more_remain = true;
                break;
            } else {
                pending.push(set);
            }
        }
        let change = MetadataChange::Dicom {
            updatable: Some(wanted.updatable()),
            removable: None,
        };
        let total = pending.len();
        let mut results: Vec<WriteResult> = Vec::new();
        let mut studies_done: BTreeSet<String> = BTreeSet::new();
        for set in &pending {
            audit::touch(&set.image_set_id);
            let study = set.study_instance_uid.clone().unwrap_or_default();
            let primary = set.is_primary == Some(true);
            let covered = primary
                && studies_done.contains(&study)
                && self
                    .metadata(ds, &set.image_set_id, None)
                    .await
                    .is_ok_and(|parsed| wanted.met_by(&parsed.document));
            let result = if covered {
                // The study-wide update of an earlier primary image set covered this one.
                edits::settled(&self.client, ds, &set.image_set_id)
                    .await
                    .map(|view| WriteResult::of("updated_with_its_study", None, view))
            } else {
                let options = UpdateOptions {
                    include_study_image_sets: primary,
                    ..UpdateOptions::default()
                };
                let outcome = edits::update(
                    &self.client,
                    ds,
                    &set.image_set_id,
                    &change,
                    &options,
                    "update_image_set_metadata",
                )
                .await;
                if primary && outcome.as_ref().is_ok_and(WriteResult::succeeded) {
                    studies_done.insert(study);
                }
                outcome
            };
            let result = result.unwrap_or_else(|error| {
                WriteResult::failed(
                    &set.image_set_id,
                    "update_image_set_metadata",
                    set.version.to_string(),
                    &error,
                )
            });
            progress
                .report(
                    results.len() + 1,
                    total,
                    format!("{}: {}", set.image_set_id, result.outcome),
                )
                .await;
            results.push(result);
        }
        let failed = results.iter().filter(|r| !r.succeeded()).count();
        let more = if more_remain {
            " More image sets need the change than one call may make: call again to continue."
        } else {
            ""
        };
        Ok(Json(CorrectionOutput {
            summary: format!(
                "Corrected {} image sets of {subject} ({failed} failed, {} already up to date).{more}",
                results.len() - failed,
                already.len()
            ),
            results,
            already_up_to_date: already,
            more_remain,
        }))
    }
}

fn invalid(message: &str) -> ToolError {
    ToolError::new(
        "InvalidArgument",
        message,
        "Name the attributes by DICOM keyword, e.g. {\"PatientName\":\"DOE^JANE\"}.",
    )
}
