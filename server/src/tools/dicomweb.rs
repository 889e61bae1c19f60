//! DICOMweb reads: `get_patient_dicomweb_studies`, `search_dicomweb` and
//! `get_report_text`, through the server's DICOMweb client
//! ([`crate::dicomweb`]).

use std::collections::BTreeSet;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::args::{DatastoreId, DicomUid, ImageSetId, PatientId};
use crate::audit;
use crate::dicomweb::{DicomWeb, InstanceUids, QIDO_CAP};
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Encapsulated PDF Storage.
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";
/// Structured Report storage classes share this root.
const SR_ROOT: &str = "1.2.840.10008.5.1.4.1.1.88.";

/// Arguments of `get_patient_dicomweb_studies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientStudiesArgs {
    pub datastore_id: DatastoreId,
    /// Exact PatientID (case-sensitive).
    pub patient_id: PatientId,
    /// Most studies returned, 1–10000 (default 100).
    pub limit: Option<usize>,
}

/// A QIDO-RS study record, readable.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StudyRecord {
    pub study_instance_uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modalities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u64>,
}

/// Result of `get_patient_dicomweb_studies`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientStudiesOutput {
    pub summary: String,
    /// One readable line per study, newest first.
    pub studies: Vec<StudyRecord>,
    /// The QIDO-RS study records as the API returned them (PS3.18 DICOM JSON).
    pub records: Vec<Value>,
    pub truncated: bool,
}

/// The QIDO-RS level searched.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QidoLevel {
    Study,
    Series,
    Instance,
}

/// Arguments of `search_dicomweb`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchDicomwebArgs {
    pub datastore_id: DatastoreId,
    /// study, series (needs study_instance_uid) or instance.
    pub level: QidoLevel,
    /// Narrows series and instance searches to one study.
    pub study_instance_uid: Option<DicomUid>,
    /// Narrows an instance search to one series (with study_instance_uid).
    pub series_instance_uid: Option<DicomUid>,
    /// Matching keys by DICOM keyword or tag, e.g. {"PatientName":"DOE^J*","StudyDate":"20200101-20201231","ModalitiesInStudy":"CT"}.
    #[serde(default)]
    pub filters: Map<String, Value>,
    /// Extra attributes to return, by keyword or tag.
    #[serde(default)]
    pub include_fields: Vec<String>,
    /// Search non-primary image sets too: give the image set to search in.
    pub image_set_id: Option<ImageSetId>,
    /// Most records, 1–10000 (default 100).
    pub limit: Option<usize>,
}

/// Result of `search_dicomweb`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchDicomwebOutput {
    pub summary: String,
    /// The QIDO-RS records (PS3.18 DICOM JSON).
    pub records: Vec<Value>,
    pub truncated: bool,
}

/// Arguments of `get_report_text`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportTextArgs {
    pub datastore_id: DatastoreId,
    pub study_instance_uid: DicomUid,
    /// One report's series (with sop_instance_uid), else every report of the study.
    pub series_instance_uid: Option<DicomUid>,
    pub sop_instance_uid: Option<DicomUid>,
    /// Most characters of text returned in all, 100–200000 (default 20000).
    pub max_chars: Option<usize>,
}

/// One report's text.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportText {
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    /// pdf or sr.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub text: String,
    /// Characters of text the document holds.
    pub chars: usize,
    pub truncated: bool,
}

/// Result of `get_report_text`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportTextOutput {
    pub summary: String,
    pub reports: Vec<ReportText>,
}

#[tool_router(router = dicomweb_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// The studies of a patient as DICOMweb (QIDO-RS) study records: standard DICOM JSON, every
    /// page, plus a readable line per study. Primary image sets only, as DICOMweb addresses them.
    #[tool(
        name = "get_patient_dicomweb_studies",
        annotations(
            title = "Patient's studies (DICOMweb)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_patient_dicomweb_studies(
        &self,
        Parameters(args): Parameters<PatientStudiesArgs>,
    ) -> Result<Json<PatientStudiesOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let cap = record_limit(args.limit)?;
        let dicomweb = self.dicomweb()?;
        let query = vec![
            ("PatientID".to_owned(), args.patient_id.as_str().to_owned()),
            (
                "includefield".to_owned(),
                "00081030,00080061,00201206,00201208".to_owned(),
            ),
        ];
        let (records, truncated) = dicomweb.qido(ds, "/studies", &query, cap).await?;
        let studies: Vec<StudyRecord> = records.iter().map(study_record).collect();
        let summary = format!(
            "{} stud{} of the patient{}.",
            studies.len(),
            if studies.len() == 1 { "y" } else { "ies" },
            if truncated {
                "; more match: raise limit"
            } else {
                ""
            }
        );
        Ok(Json(PatientStudiesOutput {
            summary,
            studies,
            records,
            truncated,
        }))
    }

    /// DICOMweb QIDO-RS search at study, series or instance level with the documented matching
    /// keys (exact, wildcard * ?, date ranges, UID lists). Returns standard DICOM JSON records.
    #[tool(
        name = "search_dicomweb",
        annotations(
            title = "DICOMweb search",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search_dicomweb(
        &self,
        Parameters(args): Parameters<SearchDicomwebArgs>,
    ) -> Result<Json<SearchDicomwebOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let cap = record_limit(args.limit)?;
        let study = args.study_instance_uid.as_ref().map(|u| u.as_str());
        let series = args.series_instance_uid.as_ref().map(|u| u.as_str());
        let path = match (args.level, study, series) {
            (QidoLevel::Study, None, None) => "/studies".to_owned(),
            (QidoLevel::Series, Some(study), None) => format!("/studies/{study}/series"),
            (QidoLevel::Instance, None, None) => "/instances".to_owned(),
            (QidoLevel::Instance, Some(study), None) => format!("/studies/{study}/instances"),
            (QidoLevel::Instance, Some(study), Some(series)) => {
                format!("/studies/{study}/series/{series}/instances")
            }
            (QidoLevel::Series, None, _) => {
                return Err(invalid(
                    "a series search needs study_instance_uid (HealthImaging searches series within a study)",
                ));
            }
            _ => {
                return Err(invalid(
                    "study searches take neither UID; series searches take study_instance_uid; instance searches take study_instance_uid and optionally series_instance_uid",
                ));
            }
        };
        let mut query = Vec::new();
        for (key, value) in &args.filters {
            let tag = tag_of(key)?;
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(invalid(&format!(
                        "the filter {key} must be a string (or a number), not {value}"
                    )));
                }
            };
            if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
                return Err(invalid(&format!(
                    "the filter {key} must be 1 to 1024 characters without control characters"
                )));
            }
            query.push((tag, value));
        }
        if !args.include_fields.is_empty() {
            let fields: Result<Vec<String>, ToolError> =
                args.include_fields.iter().map(|f| tag_of(f)).collect();
            query.push(("includefield".to_owned(), fields?.join(",")));
        }
        if let Some(id) = &args.image_set_id {
            query.push(("imageSetId".to_owned(), id.as_str().to_owned()));
        }
        let dicomweb = self.dicomweb()?;
        let (records, truncated) = dicomweb.qido(ds, &path, &query, cap).await?;
        let summary = format!(
            "{} {} record{}{}.",
            records.len(),
            match args.level {
                QidoLevel::Study => "study",
                QidoLevel::Series => "series",
                QidoLevel::Instance => "instance",
            },
            if records.len() == 1 { "" } else { "s" },
            if truncated {
                "; more match: raise limit or narrow the filters"
            } else {
                ""
            }
        );
        Ok(Json(SearchDicomwebOutput {
            summary,
            records,
            truncated,
        }))
    }

    /// The text of a study's reports: Encapsulated PDF documents (text extracted from the PDF)
    /// and Structured Reports (their text content), with each document's title and date. Capped
    /// by max_chars.
    #[tool(
        name = "get_report_text",
        annotations(
            title = "Report text",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_report_text(
        &self,
        Parameters(args): Parameters<ReportTextArgs>,
    ) -> Result<Json<ReportTextOutput>, ToolError> {
        let ds = args.datastore_id.as_str();
        audit::touch(ds);
        let max_chars = args.max_chars.unwrap_or(20_000);
        if !(100..=200_000).contains(&max_chars) {
            return Err(invalid(&format!(
                "max_chars must be between 100 and 200000, not {max_chars}"
            )));
        }
        let study = args.study_instance_uid.as_str();
        let dicomweb = self.dicomweb()?;
        let targets: Vec<(String, String)> = match (
            &args.series_instance_uid,
            &args.sop_instance_uid,
        ) {
            (Some(series), Some(sop)) => {
                vec![(series.as_str().to_owned(), sop.as_str().to_owned())]
            }
            (None, None) => report_instances(&dicomweb, ds, study).await?,
            _ => {
                return Err(invalid(
                    "give series_instance_uid and sop_instance_uid together, or neither for every report of the study",
                ));
            }
        };
        let mut reports = Vec::new();
        let mut budget = max_chars;
        for (series, sop) in targets {
            let uids = InstanceUids {
                study: study.to_owned(),
                series: series.clone(),
                sop: sop.clone(),
            };
            let bytes = dicomweb.instance(ds, &uids, None, None).await?;
            let document = read_report(&bytes).map_err(|reason| {
                ToolError::new(
                    "NotAReport",
                    format!("Instance {sop} has no readable report text: {reason}"),
                    "Give the UIDs of an Encapsulated PDF or Structured Report instance, or omit them to read every report of the study.",
                )
            })?;
            let chars = document.text.chars().count();
            let text: String = document.text.chars().take(budget).collect();
            budget -= text.chars().count();
            reports.push(ReportText {
                series_instance_uid: series,
                sop_instance_uid: sop,
                kind: document.kind.to_owned(),
                title: document.title,
                date: document.date,
                truncated: text.chars().count() < chars,
                chars,
                text,
            });
        }
        let cut = reports.iter().any(|r| r.truncated);
        let summary = match reports.len() {
            0 => "The study holds no Encapsulated PDF or Structured Report instance.".to_owned(),
            n => format!(
                "{n} report{} of the study{}.",
                if n == 1 { "" } else { "s" },
                if cut {
                    "; text cut at max_chars: raise it for the rest"
                } else {
                    ""
                }
            ),
        };
        Ok(Json(ReportTextOutput { summary, reports }))
    }
}

impl HealthImagingServer {
    pub(crate) fn dicomweb(&self) -> Result<std::sync::Arc<DicomWeb>, ToolError> {
        self.dicomweb.clone().ok_or_else(|| {
            ToolError::new(
                "NotConfigured",
                "This server was started without a DICOMweb client",
                "Start the server with `healthimaging-mcp serve`, which configures DICOMweb for its backend.",
            )
        })
    }
}

fn invalid(message: &str) -> ToolError {
    ToolError::new(
        "ValidationException",
        message,
        "Correct the argument the message names and call again.",
    )
}

fn record_limit(limit: Option<usize>) -> Result<usize, ToolError> {
    let limit = limit.unwrap_or(100);
    if !(1..=QIDO_CAP).contains(&limit) {
        return Err(invalid(&format!(
            "limit must be between 1 and {QIDO_CAP}, not {limit}"
        )));
    }
    Ok(limit)
}

/// A keyword or an 8-digit hex tag, as the QIDO-RS tag it names.
fn tag_of(key: &str) -> Result<String, ToolError> {
    if key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(key.to_ascii_uppercase());
    }
    StandardDataDictionary
        .by_name(key)
        .map(|entry| {
            let tag = entry.tag_range().inner();
            format!("{:04X}{:04X}", tag.group(), tag.element())
        })
        .ok_or_else(|| {
            invalid(&format!(
                "{key} is not a DICOM keyword or an 8-digit tag (e.g. PatientName or 00100010)"
            ))
        })
}

/// The first value of `tag` in a DICOM JSON record, as text.
pub(crate) fn field(record: &Value, tag: &str) -> Option<String> {
    let value = record.get(tag)?.get("Value")?.get(0)?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(pn) => pn
            .get("Alphabetic")
            .and_then(Value::as_str)
            .map(ToOwned::to_owned),
        _ => None,
    }
}

fn study_record(record: &Value) -> StudyRecord {
    let modalities = record
        .get("00080061")
        .and_then(|m| m.get("Value"))
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(ToOwned::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let count = |tag| field(record, tag).and_then(|v| v.parse().ok());
    StudyRecord {
        study_instance_uid: field(record, "0020000D").unwrap_or_default(),
        study_date: field(record, "00080020"),
        study_description: field(record, "00081030"),
        accession_number: field(record, "00080050"),
        modalities,
        series_count: count("00201206"),
        instance_count: count("00201208"),
    }
}

/// The (series, SOP instance) of every report instance of a study.
async fn report_instances(
    dicomweb: &DicomWeb,
    datastore_id: &str,
    study: &str,
) -> Result<Vec<(String, String)>, ToolError> {
    let query = vec![("includefield".to_owned(), "00080016".to_owned())];
    let (records, _) = dicomweb
        .qido(
            datastore_id,
            &format!("/studies/{study}/instances"),
            &query,
            QIDO_CAP,
        )
        .await?;
    let mut found = BTreeSet::new();
    for record in &records {
        let class = field(record, "00080016").unwrap_or_default();
        if (class == ENCAPSULATED_PDF || class.starts_with(SR_ROOT))
            && let (Some(series), Some(sop)) =
                (field(record, "0020000E"), field(record, "00080018"))
        {
            found.insert((series, sop));
        }
    }
    Ok(found.into_iter().collect())
}

/// A report's text and facts.
pub(crate) struct ReportDocument {
    pub kind: &'static str,
    pub title: Option<String>,
    pub date: Option<String>,
    pub text: String,
}

/// Reads a report instance: an Encapsulated PDF's text, or an SR's text content.
pub(crate) fn read_report(bytes: &[u8]) -> Result<ReportDocument, String> {
    let file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .from_reader(bytes)
        .map_err(|e| format!("not a readable DICOM file ({e})"))?;
    let text = |tag| {
        file.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
    };
    let class = text(tags::SOP_CLASS_UID).unwrap_or_default();
    let date = text(tags::CONTENT_DATE).or_else(|| text(tags::STUDY_DATE));
    if class == ENCAPSULATED_PDF {
        let pdf = file
            .get(tags::ENCAPSULATED_DOCUMENT)
            .and_then(|e| e.to_bytes().ok())
            .ok_or("the Encapsulated PDF has no EncapsulatedDocument")?;
        let title = text(tags::DOCUMENT_TITLE);
        return Ok(ReportDocument {
            kind: "pdf",
            title,
            date,
            text: pdf_text(&pdf)?,
        });
    }
    if class.starts_with(SR_ROOT) {
        let mut lines = Vec::new();
        sr_text(&file, &mut lines, 0);
        let title = file
            .get(tags::CONCEPT_NAME_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|items| items.first())
            .and_then(|item| item.get(tags::CODE_MEANING))
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_owned());
        return Ok(ReportDocument {
            kind: "sr",
            title,
            date,
            text: lines.join("\n"),
        });
    }
    Err(format!(
        "SOP class {class} is neither Encapsulated PDF nor a Structured Report"
    ))
}

/// The text of a PDF, page by page.
fn pdf_text(pdf: &[u8]) -> Result<String, String> {
    let end = pdf.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    let document = lopdf::Document::load_mem(&pdf[..end])
        .map_err(|e| format!("the PDF is unreadable ({e})"))?;
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    // Text is extracted in chunks, one per font change; a font change is
    // taken as a line break (lopdf runs chunks together otherwise).
    let mut text = String::new();
    for chunk in document.extract_text_chunks(&pages) {
        let chunk = chunk.map_err(|e| format!("the PDF's text could not be extracted ({e})"))?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&chunk);
    }
    Ok(text.trim_end().to_owned())
}

/// The TEXT items of an SR content tree, with their concept names.
fn sr_text(item: &dicom_object::InMemDicomObject, lines: &mut Vec<String>, depth: usize) {
    let Some(content) = item.get(tags::CONTENT_SEQUENCE).and_then(|e| e.items()) else {
        return;
    };
    for child in content {
        let get = |tag| {
            child
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim().to_owned())
        };
        let name = child
            .get(tags::CONCEPT_NAME_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|items| items.first())
            .and_then(|code| code.get(tags::CODE_MEANING))
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_owned());
        match get(tags::VALUE_TYPE).as_deref() {
            Some("TEXT") => {
                let value = get(tags::TEXT_VALUE).unwrap_or_default();
                lines.push(match name {
                    Some(name) => format!("{name}: {value}"),
                    None => value,
                });
            }
            Some("CONTAINER") => {
                if let Some(name) = name {
                    lines.push(name);
                }
            }
            _ => {}
        }
        if depth < 32 {
            sr_text(child, lines, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use dicom_core::value::{DataSetSequence, PrimitiveValue, Value as DicomValue};
    use dicom_core::{DataElement, Length, VR};
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;

    use super::*;

    fn code(meaning: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            VR::SQ,
            DicomValue::from(DataSetSequence::new(
                vec![InMemDicomObject::from_element_iter([
                    DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from("121071")),
                    DataElement::new(
                        tags::CODING_SCHEME_DESIGNATOR,
                        VR::SH,
                        PrimitiveValue::from("DCM"),
                    ),
                    DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
                ])],
                Length::UNDEFINED,
            )),
        )
    }

    fn item(
        value_type: &str,
        meaning: &str,
        text: Option<&str>,
        children: Vec<InMemDicomObject>,
    ) -> InMemDicomObject {
        let mut item = InMemDicomObject::from_element_iter([
            DataElement::new(tags::VALUE_TYPE, VR::CS, PrimitiveValue::from(value_type)),
            code(meaning),
        ]);
        if let Some(text) = text {
            item.put(DataElement::new(
                tags::TEXT_VALUE,
                VR::UT,
                PrimitiveValue::from(text),
            ));
        }
        if !children.is_empty() {
            item.put(DataElement::new(
                tags::CONTENT_SEQUENCE,
                VR::SQ,
                DicomValue::from(DataSetSequence::new(children, Length::UNDEFINED)),
            ));
        }
        item
    }

    #[test]
    fn a_structured_reports_text_items_are_read_with_their_concept_names() {
        let sr_class = "1.2.840.10008.5.1.4.1.1.88.11";
        let mut root = item(
            "CONTAINER",
            "Imaging Report",
            None,
            vec![item(
                "CONTAINER",
                "Findings",
                None,
                vec![
                    item("TEXT", "Finding", Some("Lungs clear."), vec![]),
                    item("TEXT", "Impression", Some("No acute findings."), vec![]),
                ],
            )],
        );
        for (tag, vr, value) in [
            (tags::SOP_CLASS_UID, VR::UI, sr_class),
            (tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"),
            (tags::CONTENT_DATE, VR::DA, "20260101"),
        ] {
            root.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        let file = root
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid(sr_class)
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax("1.2.840.10008.1.2.1"),
            )
            .unwrap();
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).unwrap();
        let report = read_report(&bytes).unwrap();
        assert_eq!(report.kind, "sr");
        assert_eq!(report.title.as_deref(), Some("Imaging Report"));
        assert_eq!(report.date.as_deref(), Some("20260101"));
        assert_eq!(
            report.text,
            "Findings\nFinding: Lungs clear.\nImpression: No acute findings."
        );
        // Neither a PDF nor an SR: refused with the reason.
        let mut other = InMemDicomObject::new_empty();
        other.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ));
        let file = other
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                    .media_storage_sop_instance_uid("1.2.3.5")
                    .transfer_syntax("1.2.840.10008.1.2.1"),
            )
            .unwrap();
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).unwrap();
        assert!(read_report(&bytes).err().unwrap().contains("neither"));
    }
}
