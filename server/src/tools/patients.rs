//! The search helpers and the patient and study views:
//! `search_by_patient_id`, `search_by_study_uid`, `search_by_series_uid`,
//! `get_patient_studies`, `get_patient_series`, `get_study_primary_image_sets`,
//! `get_series_primary_image_set`.
//!
//! Each pages through every result up to its cap. "Primary" is the API's
//! `isPrimary` (searched with the `isPrimary` filter), never a version number.

use std::collections::BTreeMap;

use aws_sdk_medicalimaging::types::SearchByAttributeValue;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::search::{SearchOutput, equal_criteria, limit, search};
use super::views::ImageSetSummaryView;
use crate::args::{DatastoreId, DicomUid, PatientId};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments of the tools that take a patient.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientArgs {
    pub datastore_id: DatastoreId,
    /// Exact PatientID (case-sensitive).
    pub patient_id: PatientId,
    /// Most image sets read, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// Arguments of the tools that take a study.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StudyArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    /// Most image sets read, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// Arguments of the tools that take a series.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesArgs {
    pub datastore_id: DatastoreId,
    pub series_instance_uid: DicomUid,
    /// Most image sets read, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// An image set within a study or series view.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageSetRef {
    /// The image set ID.
    pub image_set_id: String,
    /// Its series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_instance_uid: Option<String>,
    /// Whether it is the primary image set of its series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    /// Its latest version.
    pub version: i32,
}

/// One study of a patient.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StudyView {
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// StudyDate (YYYYMMDD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    /// StudyTime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_time: Option<String>,
    /// StudyDescription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_description: Option<String>,
    /// AccessionNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    /// The modalities of its series.
    pub modalities: Vec<String>,
    /// How many distinct series its image sets hold.
    pub series_count: usize,
    /// Its image sets, primary and non-primary.
    pub image_sets: Vec<ImageSetRef>,
}

/// Result of `get_patient_studies`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientStudiesOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The patient's studies, newest first.
    pub studies: Vec<StudyView>,
    /// True when the limit cut the image sets read short.
    pub truncated: bool,
}

/// One series of a patient.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SeriesView {
    /// SeriesInstanceUID.
    pub series_instance_uid: String,
    /// Its study.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    /// Modality (from DICOMSeriesModality).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// BodyPartExamined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    /// SeriesNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_number: Option<i32>,
    /// StudyDate of its study.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    /// The image sets holding it, primary and non-primary.
    pub image_sets: Vec<ImageSetRef>,
}

/// Result of `get_patient_series`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientSeriesOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The patient's series, by study date (newest first), then series number.
    pub series: Vec<SeriesView>,
    /// True when the limit cut the image sets read short.
    pub truncated: bool,
}

/// Result of `get_series_primary_image_set`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SeriesPrimaryOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The primary image set of the series, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_set: Option<ImageSetSummaryView>,
}

/// What a grouped view says when its cap cut the search short.
fn cut_short(truncated: bool) -> &'static str {
    if truncated {
        " (the limit cut the search short: raise limit to see all)"
    } else {
        ""
    }
}

fn reference(set: &ImageSetSummaryView) -> ImageSetRef {
    ImageSetRef {
        image_set_id: set.image_set_id.clone(),
        series_instance_uid: set.series_instance_uid.clone(),
        is_primary: set.is_primary,
        version: set.version,
    }
}

#[tool_router(router = patient_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Every image set of a PatientID.
    #[tool(
        name = "search_by_patient_id",
        annotations(
            title = "Search by patient ID",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search_by_patient_id(
        &self,
        Parameters(args): Parameters<PatientArgs>,
    ) -> Result<Json<SearchOutput>, ToolError> {
        let found = self
            .by(
                &args.datastore_id,
                vec![SearchByAttributeValue::DicomPatientId(
                    args.patient_id.into(),
                )],
                args.limit,
            )
            .await?;
        Ok(Json(SearchOutput::new("the patient ID", found.0, found.1)))
    }

    /// Every image set of a StudyInstanceUID.
    #[tool(
        name = "search_by_study_uid",
        annotations(
            title = "Search by study UID",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search_by_study_uid(
        &self,
        Parameters(args): Parameters<StudyArgs>,
    ) -> Result<Json<SearchOutput>, ToolError> {
        let found = self
            .by(
                &args.datastore_id,
                vec![SearchByAttributeValue::DicomStudyInstanceUid(
                    args.study_instance_uid.into(),
                )],
                args.limit,
            )
            .await?;
        Ok(Json(SearchOutput::new("the study", found.0, found.1)))
    }

    /// Every image set holding a SeriesInstanceUID.
    #[tool(
        name = "search_by_series_uid",
        annotations(
            title = "Search by series UID",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search_by_series_uid(
        &self,
        Parameters(args): Parameters<SeriesArgs>,
    ) -> Result<Json<SearchOutput>, ToolError> {
        let found = self
            .by(
                &args.datastore_id,
                vec![SearchByAttributeValue::DicomSeriesInstanceUid(
                    args.series_instance_uid.into(),
                )],
                args.limit,
            )
            .await?;
        Ok(Json(SearchOutput::new("the series", found.0, found.1)))
    }

    /// A patient's studies from their image sets: date, description, accession number,
    /// modalities, series and image sets.
    #[tool(
        name = "get_patient_studies",
        annotations(
            title = "Get patient studies",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_patient_studies(
        &self,
        Parameters(args): Parameters<PatientArgs>,
    ) -> Result<Json<PatientStudiesOutput>, ToolError> {
        let (sets, next) = self
            .by(
                &args.datastore_id,
                vec![SearchByAttributeValue::DicomPatientId(
                    args.patient_id.into(),
                )],
                args.limit,
            )
            .await?;
        let mut studies: BTreeMap<String, StudyView> = BTreeMap::new();
        for set in &sets {
            let uid = set.study_instance_uid.clone().unwrap_or_default();
            let study = studies.entry(uid.clone()).or_insert_with(|| StudyView {
                study_instance_uid: uid,
                study_date: set.study_date.clone(),
                study_time: set.study_time.clone(),
                study_description: set.study_description.clone(),
                accession_number: set.accession_number.clone(),
                modalities: Vec::new(),
                series_count: 0,
                image_sets: Vec::new(),
            });
            if let Some(modality) = &set.series_modality
                && !study.modalities.contains(modality)
            {
                study.modalities.push(modality.clone());
            }
            study.image_sets.push(reference(set));
        }
        let mut studies: Vec<StudyView> = studies
            .into_values()
            .map(|mut study| {
                let mut series: Vec<_> = study
                    .image_sets
                    .iter()
                    .map(|s| s.series_instance_uid.clone())
                    .collect();
                series.sort();
                series.dedup();
                study.series_count = series.len();
                study.modalities.sort();
                study
            })
            .collect();
        studies.sort_by(|a, b| (&b.study_date, &b.study_time).cmp(&(&a.study_date, &a.study_time)));
        let truncated = next.is_some();
        let summary = format!(
            "The patient has {} studies in {} image sets{}.",
            studies.len(),
            sets.len(),
            cut_short(truncated)
        );
        Ok(Json(PatientStudiesOutput {
            summary,
            studies,
            truncated,
        }))
    }

    /// A patient's series from their image sets: modality, body part, number, study and image
    /// sets.
    #[tool(
        name = "get_patient_series",
        annotations(
            title = "Get patient series",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_patient_series(
        &self,
        Parameters(args): Parameters<PatientArgs>,
    ) -> Result<Json<PatientSeriesOutput>, ToolError> {
        let (sets, next) = self
            .by(
                &args.datastore_id,
                vec![SearchByAttributeValue::DicomPatientId(
                    args.patient_id.into(),
                )],
                args.limit,
            )
            .await?;
        let mut series: BTreeMap<String, SeriesView> = BTreeMap::new();
        for set in &sets {
            let uid = set.series_instance_uid.clone().unwrap_or_default();
            series
                .entry(uid.clone())
                .or_insert_with(|| SeriesView {
                    series_instance_uid: uid,
                    study_instance_uid: set.study_instance_uid.clone(),
                    modality: set.series_modality.clone(),
                    body_part: set.series_body_part.clone(),
                    series_number: set.series_number,
                    study_date: set.study_date.clone(),
                    image_sets: Vec::new(),
                })
                .image_sets
                .push(reference(set));
        }
        let mut series: Vec<SeriesView> = series.into_values().collect();
        series.sort_by(|a, b| {
            b.study_date
                .cmp(&a.study_date)
                .then(a.study_instance_uid.cmp(&b.study_instance_uid))
                .then(a.series_number.cmp(&b.series_number))
        });
        let truncated = next.is_some();
        let summary = format!(
            "The patient has {} series in {} image sets{}.",
            series.len(),
            sets.len(),
            cut_short(truncated)
        );
        Ok(Json(PatientSeriesOutput {
            summary,
            series,
            truncated,
        }))
    }

    /// The primary image sets of a study, one per series: what a viewer shows.
    #[tool(
        name = "get_study_primary_image_sets",
        annotations(
            title = "Get study primary image sets",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_study_primary_image_sets(
        &self,
        Parameters(args): Parameters<StudyArgs>,
    ) -> Result<Json<SearchOutput>, ToolError> {
        let found = self
            .by(
                &args.datastore_id,
                vec![
                    SearchByAttributeValue::DicomStudyInstanceUid(args.study_instance_uid.into()),
                    SearchByAttributeValue::IsPrimary(true),
                ],
                args.limit,
            )
            .await?;
        Ok(Json(SearchOutput::new(
            "the study with isPrimary true",
            found.0,
            found.1,
        )))
    }

    /// The primary image set of a series, if it has one.
    #[tool(
        name = "get_series_primary_image_set",
        annotations(
            title = "Get series primary image set",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_series_primary_image_set(
        &self,
        Parameters(args): Parameters<SeriesArgs>,
    ) -> Result<Json<SeriesPrimaryOutput>, ToolError> {
        let uid = args.series_instance_uid.clone();
        let (sets, _) = self
            .by(
                &args.datastore_id,
                vec![
                    SearchByAttributeValue::DicomSeriesInstanceUid(args.series_instance_uid.into()),
                    SearchByAttributeValue::IsPrimary(true),
                ],
                Some(1),
            )
            .await?;
        let image_set = sets.into_iter().next();
        let summary = match &image_set {
            Some(set) => format!(
                "The primary image set of series {uid} is {}.",
                set.image_set_id
            ),
            None => format!("Series {uid} has no primary image set in this datastore."),
        };
        Ok(Json(SeriesPrimaryOutput { summary, image_set }))
    }
}

impl HealthImagingServer {
    /// Image sets matching every EQUAL value, up to the caller's limit.
    async fn by(
        &self,
        datastore_id: &DatastoreId,
        values: Vec<SearchByAttributeValue>,
        cap: Option<usize>,
    ) -> Result<(Vec<ImageSetSummaryView>, Option<String>), ToolError> {
        audit::touch(datastore_id.as_str());
        let cap = limit(cap)?;
        search(
            &self.client,
            datastore_id.as_str(),
            Some(equal_criteria(values)),
            cap,
            None,
        )
        .await
    }
}
