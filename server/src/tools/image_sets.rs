//! `get_image_set`, `list_image_set_versions`, `get_image_set_metadata`.

use std::io::Read;
use std::sync::Arc;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::ImageSetState;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::metadata_summary::summarize;
use super::views::ImageSetView;
use crate::args::{DatastoreId, DicomUid, ImageSetId, VersionId};
use crate::audit;
use crate::errors::ToolError;
use crate::metadata_cache::ParsedMetadata;
use crate::server::HealthImagingServer;

/// The default size cap of a metadata answer, in bytes of JSON.
const DEFAULT_MAX_BYTES: usize = 60_000;
/// The largest cap a caller may ask for.
const MAX_MAX_BYTES: usize = 1_000_000;

/// Arguments naming one image set (and optionally a version).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSetArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    pub version_id: Option<VersionId>,
}

/// Result of `get_image_set`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetImageSetOutput {
    /// One sentence on the image set.
    pub summary: String,
    /// Its properties.
    pub image_set: ImageSetView,
}

/// Arguments of `list_image_set_versions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListVersionsArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    /// Most versions, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// Result of `list_image_set_versions`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListVersionsOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The versions, newest first.
    pub versions: Vec<ImageSetView>,
    /// True when the limit cut the list short.
    pub truncated: bool,
}

/// Arguments of `get_image_set_metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    pub version_id: Option<VersionId>,
    /// Only this series.
    pub series_instance_uid: Option<DicomUid>,
    /// Only this instance.
    pub sop_instance_uid: Option<DicomUid>,
    /// Per series: its attributes and its instances in InstanceNumber order with frame IDs.
    #[serde(default)]
    pub summary_only: bool,
    /// To continue a cut summary: its next_instance_offset.
    pub instance_offset: Option<usize>,
    /// Most JSON bytes (default 60000, at most 1000000); more comes back as a summary.
    pub max_bytes: Option<usize>,
}

/// Result of `get_image_set_metadata`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MetadataOutput {
    /// One sentence on what is returned.
    pub summary: String,
    /// The metadata document (HealthImaging's JSON: Patient, Study, Series, Instances,
    /// keyed by DICOM keywords), narrowed as asked, or its summary.
    pub metadata: Value,
    /// True when `metadata` is a summary because the document was over max_bytes.
    pub summarized: bool,
    /// When the summary could not show every instance within max_bytes: the
    /// instance_offset that shows the next ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_instance_offset: Option<usize>,
    /// Series in the image set.
    pub series_count: usize,
    /// Instances in the image set.
    pub instance_count: usize,
}

#[tool_router(router = image_set_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// An image set's version, state, workflow status, primary or not, ARN and times.
    #[tool(
        name = "get_image_set",
        annotations(
            title = "Get image set",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_image_set(
        &self,
        Parameters(args): Parameters<ImageSetArgs>,
    ) -> Result<Json<GetImageSetOutput>, ToolError> {
        audit::touch(args.image_set_id.as_str());
        let output = self
            .client
            .get_image_set()
            .datastore_id(args.datastore_id.as_str())
            .image_set_id(args.image_set_id.as_str())
            .set_version_id(args.version_id.map(|v| v.as_str().to_owned()))
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let image_set = ImageSetView::from(&output);
        Ok(Json(GetImageSetOutput {
            summary: format!(
                "Image set {} is at version {}, {}{}.",
                image_set.image_set_id,
                image_set.version_id,
                image_set.image_set_state,
                match image_set.is_primary {
                    Some(true) => ", primary",
                    Some(false) => ", not primary",
                    None => "",
                }
            ),
            image_set,
        }))
    }

    /// An image set's versions, newest first, with each failed write's message.
    #[tool(
        name = "list_image_set_versions",
        annotations(
            title = "List image set versions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_image_set_versions(
        &self,
        Parameters(args): Parameters<ListVersionsArgs>,
    ) -> Result<Json<ListVersionsOutput>, ToolError> {
        audit::touch(args.image_set_id.as_str());
        let cap = super::search::limit(args.limit)?;
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_image_set_versions()
                .datastore_id(args.datastore_id.as_str())
                .image_set_id(args.image_set_id.as_str())
                .max_results((cap - versions.len()).min(50) as i32)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(ToolError::from_sdk)?;
            versions.extend(
                page.image_set_properties_list()
                    .iter()
                    .map(ImageSetView::from),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() || versions.len() >= cap {
                break;
            }
        }
        let truncated = token.is_some();
        Ok(Json(ListVersionsOutput {
            summary: format!(
                "Image set {} has {}{} versions.",
                args.image_set_id,
                if truncated { "more than " } else { "" },
                versions.len()
            ),
            versions,
            truncated,
        }))
    }

    /// An image set's DICOM metadata, parsed: Patient, Study, Series and instance attributes
    /// and frame IDs. Narrow to a series or instance, or summarize; a document over max_bytes
    /// comes back as a summary.
    #[tool(
        name = "get_image_set_metadata",
        annotations(
            title = "Get image set metadata",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_image_set_metadata(
        &self,
        Parameters(args): Parameters<MetadataArgs>,
    ) -> Result<Json<MetadataOutput>, ToolError> {
        audit::touch(args.image_set_id.as_str());
        let max_bytes = args.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if !(1_000..=MAX_MAX_BYTES).contains(&max_bytes) {
            return Err(ToolError::new(
                "InvalidArgument",
                format!("max_bytes must be between 1000 and {MAX_MAX_BYTES}, not {max_bytes}"),
                "Pass a max_bytes in range, or narrow with series_instance_uid or sop_instance_uid.",
            ));
        }
        let parsed = self
            .metadata(
                args.datastore_id.as_str(),
                args.image_set_id.as_str(),
                args.version_id.as_ref().map(VersionId::as_str),
            )
            .await?;
        let (series_count, instance_count) = (parsed.series_count(), parsed.instance_count());
        let narrowed = narrow(
            &parsed,
            args.series_instance_uid.as_deref(),
            args.sop_instance_uid.as_deref(),
        )?;
        let what = match (&args.sop_instance_uid, &args.series_instance_uid) {
            (Some(sop), _) => format!("instance {sop}"),
            (None, Some(series)) => format!("series {series}"),
            (None, None) => "the whole image set".to_owned(),
        };
        let size = serde_json::to_vec(&narrowed).map_or(0, |v| v.len());
        let offset = args.instance_offset.unwrap_or(0);
        if !args.summary_only && size <= max_bytes && offset == 0 {
            return Ok(Json(MetadataOutput {
                summary: format!(
                    "Metadata of {what} ({series_count} series, {instance_count} instances in the image set)."
                ),
                metadata: narrowed,
                summarized: false,
                next_instance_offset: None,
                series_count,
                instance_count,
            }));
        }
        let summary = summarize(&narrowed, max_bytes, offset);
        let lead = if args.summary_only || offset > 0 {
            format!("Summary of {what}: {series_count} series, {instance_count} instances.")
        } else {
            format!(
                "The metadata of {what} is {size} bytes, over max_bytes ({max_bytes}); here is its summary. Narrow with series_instance_uid or sop_instance_uid (from this summary), or raise max_bytes."
            )
        };
        let more = match summary.next_offset {
            Some(next) => format!(
                " Not every instance fits within max_bytes: call again with instance_offset {next} for the next ones."
            ),
            None => String::new(),
        };
        Ok(Json(MetadataOutput {
            summary: format!("{lead}{more}"),
            metadata: summary.value,
            summarized: true,
            next_instance_offset: summary.next_offset,
            series_count,
            instance_count,
        }))
    }
}

impl HealthImagingServer {
    /// An image set version's metadata (default: the current version),
    /// parsed and indexed; from the cache when this version was read before.
    /// GetImageSet first names the current version and refuses an image set
    /// that no longer exists, so a deleted one is never served from memory.
    pub(crate) async fn metadata(
        &self,
        datastore_id: &str,
        image_set_id: &str,
        version_id: Option<&str>,
    ) -> Result<Arc<ParsedMetadata>, ToolError> {
        let current = self
            .client
            .get_image_set()
            .datastore_id(datastore_id)
            .image_set_id(image_set_id)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let version = current.version_id();
        if current.image_set_state() == &ImageSetState::Deleted {
            self.metadata.forget(image_set_id);
            return Err(ToolError::new(
                "ResourceNotFoundException",
                format!(
                    "Image set {image_set_id} was deleted: its metadata and frames are gone; only its properties remain (state DELETED)"
                ),
                "Search again for the image sets that remain (search_image_sets or a search_by_ tool).",
            ));
        }
        if let Some(held) = self.metadata.get(datastore_id, image_set_id, version) {
            return Ok(held);
        }
        let (document, bytes) =
            fetch_document(&self.client, datastore_id, image_set_id, Some(version)).await?;
        let parsed = Arc::new(ParsedMetadata::new(document, bytes));
        self.metadata
            .insert(datastore_id, image_set_id, version, parsed.clone());
        Ok(parsed)
    }
}

/// GetImageSetMetadata, gunzipped and parsed, with the size of its JSON text.
async fn fetch_document(
    client: &Client,
    datastore_id: &str,
    image_set_id: &str,
    version_id: Option<&str>,
) -> Result<(Value, usize), ToolError> {
    let output = client
        .get_image_set_metadata()
        .datastore_id(datastore_id)
        .image_set_id(image_set_id)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(ToolError::from_sdk)?;
    let gzipped = output
        .content_encoding()
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let bytes = output
        .image_set_metadata_blob
        .collect()
        .await
        .map_err(|e| {
            ToolError::new(
                "MalformedResponse",
                format!("Could not read the metadata body: {e}"),
                "Try again.",
            )
        })?
        .into_bytes();
    // The service gzips the document; accept a plain one too, recognised by its magic bytes.
    let json = if gzipped || bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                ToolError::new(
                    "MalformedResponse",
                    format!("The metadata is not valid gzip: {e}"),
                    "Check the endpoint.",
                )
            })?;
        out
    } else {
        bytes.to_vec()
    };
    let document = serde_json::from_slice(&json).map_err(|e| {
        ToolError::new(
            "MalformedResponse",
            format!("The metadata is not JSON: {e}"),
            "Check the endpoint.",
        )
    })?;
    Ok((document, json.len()))
}

/// The document narrowed to a series or an instance: only what is kept is
/// copied, so narrowing costs the size of the answer, not of the document.
fn narrow(
    parsed: &ParsedMetadata,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Value, ToolError> {
    let document = &parsed.document;
    let not_found = |what: String| {
        ToolError::new(
            "NotFound",
            format!("The image set has no {what}"),
            "Call get_image_set_metadata with summary_only to see its series and instance UIDs.",
        )
    };
    let all = parsed.series();
    let mut kept = Map::new();
    match (series, sop) {
        (None, None) => return Ok(document.clone()),
        (Some(uid), None) => {
            let found = all
                .and_then(|all| all.get(uid))
                .ok_or_else(|| not_found(format!("series {uid}")))?;
            kept.insert(uid.to_owned(), found.clone());
        }
        (series, Some(sop)) => {
            let uid = parsed
                .series_of(sop)
                .filter(|uid| series.is_none_or(|s| s == *uid))
                .ok_or_else(|| not_found(format!("instance {sop}")))?;
            let series_value = &document["Study"]["Series"][uid];
            kept.insert(
                uid.to_owned(),
                json!({ "DICOM": series_value["DICOM"], "Instances": { sop: series_value["Instances"][sop] } }),
            );
        }
    }
    let mut narrowed = Map::new();
    for (key, value) in document.as_object().into_iter().flatten() {
        if key != "Study" {
            narrowed.insert(key.clone(), value.clone());
        }
    }
    let mut study = Map::new();
    for (key, value) in document["Study"].as_object().into_iter().flatten() {
        if key != "Series" {
            study.insert(key.clone(), value.clone());
        }
    }
    study.insert("Series".into(), Value::Object(kept));
    narrowed.insert("Study".into(), Value::Object(study));
    Ok(Value::Object(narrowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        json!({"Patient": {"DICOM": {"PatientID": "P"}}, "Study": {"DICOM": {}, "Series": {
            "1.1": {"DICOM": {"Modality": "CT"}, "Instances": {
                "1.1.1": {"DICOM": {"InstanceNumber": 1}, "ImageFrames": [{"ID": "a"}]},
                "1.1.2": {"DICOM": {"InstanceNumber": 2}, "ImageFrames": []}}},
            "1.2": {"DICOM": {"Modality": "MR"}, "Instances": {"1.2.1": {"DICOM": {}}}}}}})
    }

    fn counts(document: &Value) -> (usize, usize) {
        let parsed = ParsedMetadata::new(document.clone(), 0);
        (parsed.series_count(), parsed.instance_count())
    }

    #[test]
    fn narrowing_keeps_one_series_or_instance() {
        let doc = ParsedMetadata::new(document(), 0);
        assert_eq!(counts(&doc.document), (2, 3));
        let series = narrow(&doc, Some("1.2"), None).unwrap();
        assert_eq!(counts(&series), (1, 1));
        assert_eq!(series["Patient"], doc.document["Patient"]);
        let instance = narrow(&doc, None, Some("1.1.2")).unwrap();
        assert_eq!(counts(&instance), (1, 1));
        assert_eq!(
            instance["Study"]["Series"]["1.1"]["DICOM"]["Modality"],
            "CT"
        );
        assert!(narrow(&doc, Some("9.9"), None).is_err());
        assert!(
            narrow(&doc, Some("1.2"), Some("1.1.1")).is_err(),
            "the instance is not in that series"
        );
    }
}
