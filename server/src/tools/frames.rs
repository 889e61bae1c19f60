//! `get_image_frame`: one frame, decoded and shown as a PNG.
//!
//! The frame comes from GetImageFrame in its stored encoding (HTJ2K, JPEG
//! 2000, JPEG baseline, or uncompressed); the instance's attributes come from
//! the image set's metadata (found by the frame's ID). The decoded pixels are
//! checked against the metadata's checksum (CRC32 of the decoded pixel
//! buffer), windowed (the caller's window, else the instance's
//! WindowCenter/WindowWidth, else the frame's own range), downscaled to the
//! size cap and returned as an image the assistant can see.

use aws_sdk_medicalimaging::types::ImageFrameInformation;
use base64::Engine;
use healthimaging_emulator::import::frames::checksum;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::render::{self, Display, Samples, Window};
use crate::args::{DatastoreId, ImageFrameId, ImageSetId, VersionId};
use crate::audit;
use crate::errors::ToolError;
use crate::metadata_cache::ParsedMetadata;
use crate::server::HealthImagingServer;

/// The default longest side of the PNG.
const DEFAULT_SIZE: u32 = 512;
/// The largest raw frame returned on request.
const MAX_RAW_BYTES: usize = 5 * 1024 * 1024;

/// Arguments of `get_image_frame`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageFrameArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    /// An ImageFrames[].ID from get_image_set_metadata.
    pub image_frame_id: ImageFrameId,
    pub version_id: Option<VersionId>,
    /// Longest side in pixels, 16–2048 (default 512).
    pub max_size: Option<u32>,
    /// In rescaled units (HU for CT); with window_width.
    pub window_center: Option<f64>,
    /// With window_center.
    pub window_width: Option<f64>,
    /// Also return the stored bytes (up to 5 MB).
    #[serde(default)]
    pub include_raw: bool,
}

/// What the frame is, returned beside the picture.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FrameFacts {
    /// One sentence on the frame.
    pub summary: String,
    /// The instance holding the frame.
    pub sop_instance_uid: String,
    /// Its series.
    pub series_instance_uid: String,
    /// 1-based position of the frame in its instance.
    pub frame_number: usize,
    /// The Content-Type of the stored frame.
    pub content_type: String,
    /// The instance's StoredTransferSyntaxUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_transfer_syntax_uid: Option<String>,
    /// Size of the stored frame.
    pub encoded_bytes: usize,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Samples per pixel.
    pub components: u32,
    /// Width and height of the PNG.
    pub rendered_size: [u32; 2],
    /// The window applied (grey images), in rescaled units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<[f64; 2]>,
    /// Where the window came from: arguments, metadata, or pixel range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_source: Option<String>,
    /// The metadata's checksum of the frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_expected: Option<u32>,
    /// CRC32 of the decoded pixels.
    pub checksum_actual: u32,
    /// Whether the two agree: the frame decoded to exactly what was imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_matches: Option<bool>,
}

#[tool_router(router = frame_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// See one frame as a PNG: decoded, windowed (the arguments, else the instance's
    /// WindowCenter/Width, else the pixel range) and scaled to max_size, with its facts and
    /// whether its checksum matches. Frame IDs come from get_image_set_metadata.
    #[tool(
        name = "get_image_frame",
        output_schema = rmcp::handler::server::common::schema_for_output::<FrameFacts>(),
        annotations(
            title = "Get image frame",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_image_frame(
        &self,
        Parameters(args): Parameters<ImageFrameArgs>,
    ) -> Result<CallToolResult, ToolError> {
        audit::touch(args.image_set_id.as_str());
        let max_size = args.max_size.unwrap_or(DEFAULT_SIZE);
        if !(16..=2048).contains(&max_size) {
            return Err(invalid(format!(
                "max_size must be between 16 and 2048, not {max_size}"
            )));
        }
        let requested_window = requested_window(args.window_center, args.window_width)?;
        let parsed = self
            .metadata(
                args.datastore_id.as_str(),
                args.image_set_id.as_str(),
                args.version_id.as_ref().map(VersionId::as_str),
            )
            .await?;
        let located = locate(&parsed, args.image_frame_id.as_str()).ok_or_else(|| {
            ToolError::new(
                "NotFound",
                format!("No instance of image set {} lists frame {}", args.image_set_id, args.image_frame_id),
                "Take a frame ID from get_image_set_metadata (ImageFrames[].ID) of the same image set.",
            )
        })?;
        let (content_type, bytes) = self
            .fetch_frame(
                args.datastore_id.as_str(),
                args.image_set_id.as_str(),
                args.image_frame_id.as_str(),
            )
            .await?;
        let instance = &located.instance;
        let shown = InstanceDisplay::of(instance);
        let bits_allocated = shown.bits_allocated;
        let samples = decode(&content_type, &bytes, instance, bits_allocated)?;
        let checksum_actual = checksum(&samples.values, bits_allocated);
        let checksum_expected = located.frame["PixelDataChecksumFromBaseToFullResolution"]
            .as_array()
            .and_then(|levels| levels.last())
            .and_then(|level| level["Checksum"].as_u64())
            .map(|c| c as u32);
        let (display, window_source) = shown.display(requested_window);
        let rendered = render::render(&samples, display, max_size).map_err(|e| {
            ToolError::new(
                "DecodeFailed",
                e,
                "The frame's metadata does not describe its pixels.",
            )
        })?;
        let checksum_matches = checksum_expected.map(|c| c == checksum_actual);
        let facts = FrameFacts {
            summary: format!(
                "Frame {} of instance {} ({}x{}, {}), shown at {}x{}, {}; checksum {}.",
                located.frame_number,
                located.sop_instance_uid,
                samples.width,
                samples.height,
                content_type,
                rendered.width,
                rendered.height,
                window_text(rendered.window, window_source),
                match checksum_matches {
                    Some(true) => "matches the metadata",
                    Some(false) => "DOES NOT match the metadata",
                    None => "not in the metadata",
                }
            ),
            sop_instance_uid: located.sop_instance_uid.clone(),
            series_instance_uid: located.series_instance_uid.clone(),
            frame_number: located.frame_number,
            content_type,
            stored_transfer_syntax_uid: instance["StoredTransferSyntaxUID"]
                .as_str()
                .map(str::to_owned),
            encoded_bytes: bytes.len(),
            width: samples.width,
            height: samples.height,
            components: samples.components,
            rendered_size: [rendered.width, rendered.height],
            window: rendered.window.map(|w| [w.center, w.width]),
            window_source: rendered.window.map(|_| window_source.to_owned()),
            checksum_expected,
            checksum_actual,
            checksum_matches,
        };
        let structured = serde_json::to_value(&facts).unwrap_or(Value::Null);
        let engine = base64::engine::general_purpose::STANDARD;
        let mut content = vec![
            ContentBlock::image(engine.encode(&rendered.png), "image/png"),
            ContentBlock::text(facts.summary.clone()),
        ];
        if args.include_raw {
            if bytes.len() > MAX_RAW_BYTES {
                content.push(ContentBlock::text(format!(
                    "The raw frame is {} bytes, over the 5 MB cap; it was not included.",
                    bytes.len()
                )));
            } else {
                let uri = format!(
                    "healthimaging://datastore/{}/imageset/{}/frame/{}",
                    args.datastore_id, args.image_set_id, args.image_frame_id
                );
                content.push(ContentBlock::resource(
                    ResourceContents::blob(engine.encode(&bytes), uri)
                        .with_mime_type(facts.content_type.clone()),
                ));
            }
        }
        let mut result = CallToolResult::success(content);
        result.structured_content = Some(structured);
        Ok(result)
    }
}

impl HealthImagingServer {
    /// GetImageFrame: the stored frame and its content type.
    pub(super) async fn fetch_frame(
        &self,
        datastore_id: &str,
        image_set_id: &str,
        frame_id: &str,
    ) -> Result<(String, Vec<u8>), ToolError> {
        let output = self
            .client
            .get_image_frame()
            .datastore_id(datastore_id)
            .image_set_id(image_set_id)
            .image_frame_information(
                ImageFrameInformation::builder()
                    .image_frame_id(frame_id)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            )
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let content_type = output
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = output
            .image_frame_blob
            .collect()
            .await
            .map_err(|e| {
                ToolError::new(
                    "MalformedResponse",
                    format!("Could not read the frame: {e}"),
                    "Try again.",
                )
            })?
            .into_bytes();
        Ok((content_type, bytes.to_vec()))
    }
}

/// How an instance's attributes say to show its pixels.
#[derive(Debug, Clone, Copy)]
pub(super) struct InstanceDisplay {
    /// BitsAllocated (default 16).
    pub bits_allocated: u32,
    slope: f64,
    intercept: f64,
    window: Option<Window>,
    invert: bool,
}

impl InstanceDisplay {
    /// From an instance's DICOM attributes (its series' merged in).
    pub(super) fn of(instance: &Value) -> Self {
        let attribute = |key: &str| number(&instance["DICOM"][key]);
        let window = match (attribute("WindowCenter"), attribute("WindowWidth")) {
            (Some(center), Some(width)) if width >= 1.0 => Some(Window { center, width }),
            _ => None,
        };
        let photometric = instance["DICOM"]["PhotometricInterpretation"]
            .as_str()
            .unwrap_or("MONOCHROME2");
        Self {
            bits_allocated: attribute("BitsAllocated").unwrap_or(16.0) as u32,
            slope: attribute("RescaleSlope").unwrap_or(1.0),
            intercept: attribute("RescaleIntercept").unwrap_or(0.0),
            window,
            invert: photometric.trim() == "MONOCHROME1",
        }
    }

    /// The display for a requested window (else the instance's, else the
    /// pixel range), and where its window comes from.
    pub(super) fn display(self, requested: Option<Window>) -> (Display, &'static str) {
        let (window, source) = match (requested, self.window) {
            (Some(w), _) => (Some(w), "arguments"),
            (None, Some(w)) => (Some(w), "metadata"),
            (None, None) => (None, "pixel range"),
        };
        let display = Display {
            slope: self.slope,
            intercept: self.intercept,
            window,
            invert: self.invert,
        };
        (display, source)
    }
}

/// The window applied, and where it came from, in words.
pub(super) fn window_text(window: Option<Window>, source: &str) -> String {
    let Some(window) = window else {
        return "in its own colours (no window)".to_owned();
    };
    let from = match source {
        "arguments" => "from the arguments",
        "metadata" => "from the instance's WindowCenter/WindowWidth",
        _ => "spanning the pixel range (the instance has no WindowCenter/WindowWidth)",
    };
    format!(
        "window center {} width {} {from}",
        window.center, window.width
    )
}

pub(super) fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::new(
        "InvalidArgument",
        message,
        "Correct the argument and call again.",
    )
}

/// A JSON number, or a DICOM DS/IS string (first value of a multi-valued one).
pub(super) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Array(values) => values.first().and_then(number),
        _ => None,
    }
}

pub(super) struct Located {
    series_instance_uid: String,
    sop_instance_uid: String,
    instance: Value,
    frame: Value,
    frame_number: usize,
}

/// The instance and frame entry listing `frame_id`, found by the index.
pub(super) fn locate(parsed: &ParsedMetadata, frame_id: &str) -> Option<Located> {
    let at = parsed.frame(frame_id)?;
    let series = &parsed.document["Study"]["Series"][&at.series_instance_uid];
    let listed = &series["Instances"][&at.sop_instance_uid];
    let mut instance = listed.clone();
    // Series-level attributes describe the pixels too (Modality aside, rarely).
    if let (Some(into), Some(from)) = (
        instance["DICOM"].as_object_mut(),
        series["DICOM"].as_object(),
    ) {
        for (k, v) in from {
            into.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Some(Located {
        series_instance_uid: at.series_instance_uid.clone(),
        sop_instance_uid: at.sop_instance_uid.clone(),
        frame: listed["ImageFrames"][at.index].clone(),
        instance,
        frame_number: at.index + 1,
    })
}

/// Decodes a frame by its content type.
pub(super) fn decode(
    content_type: &str,
    bytes: &[u8],
    instance: &Value,
    bits_allocated: u32,
) -> Result<Samples, ToolError> {
    let failed = |e: String| {
        ToolError::new(
            "DecodeFailed",
            format!("Could not decode the {content_type} frame: {e}"),
            "Request the frame with include_raw to inspect its bytes.",
        )
    };
    match content_type {
        "image/jph" | "image/jphc" | "image/j2c" | "image/jp2" => {
            let decoded =
                healthimaging_codec::jpeg2000::decode(bytes).map_err(|e| failed(e.to_string()))?;
            Ok(Samples {
                width: decoded.layout.columns,
                height: decoded.layout.rows,
                components: decoded.layout.components,
                values: decoded.samples,
            })
        }
        "image/jpeg" => {
            let mut decoder = jpeg_decoder::Decoder::new(bytes);
            let pixels = decoder.decode().map_err(|e| failed(e.to_string()))?;
            let info = decoder
                .info()
                .ok_or_else(|| failed("no image header".into()))?;
            let (components, values) = match info.pixel_format {
                jpeg_decoder::PixelFormat::L8 => {
                    (1, pixels.iter().map(|&b| i32::from(b)).collect())
                }
                jpeg_decoder::PixelFormat::L16 => (
                    1,
                    pixels
                        .chunks_exact(2)
                        .map(|b| i32::from(u16::from_be_bytes([b[0], b[1]])))
                        .collect(),
                ),
                jpeg_decoder::PixelFormat::RGB24 => {
                    (3, pixels.iter().map(|&b| i32::from(b)).collect())
                }
                jpeg_decoder::PixelFormat::CMYK32 => {
                    return Err(failed("CMYK JPEG is not a DICOM image".into()));
                }
            };
            Ok(Samples {
                width: u32::from(info.width),
                height: u32::from(info.height),
                components,
                values,
            })
        }
        "application/octet-stream" => {
            let dim = |key: &str| number(&instance["DICOM"][key]).map(|v| v as u32);
            let (Some(width), Some(height)) = (dim("Columns"), dim("Rows")) else {
                return Err(failed("the metadata gives no Rows and Columns".into()));
            };
            let components = dim("SamplesPerPixel").unwrap_or(1);
            let signed = dim("PixelRepresentation") == Some(1);
            let values: Vec<i32> = match (bits_allocated, signed) {
                (8, _) => bytes.iter().map(|&b| i32::from(b)).collect(),
                (16, true) => bytes
                    .chunks_exact(2)
                    .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
                    .collect(),
                (16, false) => bytes
                    .chunks_exact(2)
                    .map(|b| i32::from(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
                (bits, _) => {
                    return Err(failed(format!(
                        "{bits}-bit uncompressed frames are not shown"
                    )));
                }
            };
            Ok(Samples {
                width,
                height,
                components,
                values,
            })
        }
        other => Err(failed(format!(
            "{other} frames (video and JPEG XL) cannot be shown as a picture"
        ))),
    }
}

/// The window a caller asked for: both of centre and width (at least 1),
/// or neither.
pub(super) fn requested_window(
    center: Option<f64>,
    width: Option<f64>,
) -> Result<Option<Window>, ToolError> {
    match (center, width) {
        (Some(center), Some(width)) if width >= 1.0 => Ok(Some(Window { center, width })),
        (None, None) => Ok(None),
        _ => Err(invalid(
            "window_center and window_width go together, and the width is at least 1",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn jpeg_and_uncompressed_frames_decode() {
        let pixels: Vec<u8> = (0..48u8).map(|p| p * 5).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 100)
            .encode(&pixels, 8, 6, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let instance = json!({"DICOM": {"Rows": 6, "Columns": 8, "SamplesPerPixel": 1, "PixelRepresentation": 1}});
        let samples = decode("image/jpeg", &jpeg, &instance, 8).unwrap();
        assert_eq!(
            (samples.width, samples.height, samples.components),
            (8, 6, 1)
        );
        assert_eq!(samples.values.len(), 48);

        let native: Vec<u8> = [-5i16, 7, 300, -1000, 0, 1, 2, 3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let instance = json!({"DICOM": {"Rows": "2", "Columns": 4, "PixelRepresentation": 1}});
        let samples = decode("application/octet-stream", &native, &instance, 16).unwrap();
        assert_eq!(samples.values, vec![-5, 7, 300, -1000, 0, 1, 2, 3]);
        assert_eq!(
            checksum(&samples.values, 16),
            crc32fast::hash(&native),
            "the checksum covers the stored little-endian bytes"
        );
        assert!(decode("video/mp4", &native, &instance, 16).is_err());
        assert!(
            decode(
                "application/octet-stream",
                &native,
                &json!({"DICOM": {}}),
                16
            )
            .is_err()
        );
    }

    #[test]
    fn the_window_is_named_with_where_it_came_from() {
        let window = Some(Window {
            center: 40.0,
            width: 400.0,
        });
        assert_eq!(
            window_text(window, "arguments"),
            "window center 40 width 400 from the arguments"
        );
        assert!(window_text(window, "metadata").ends_with("WindowCenter/WindowWidth"));
        assert!(window_text(window, "pixel range").contains("spanning the pixel range"));
        assert_eq!(
            window_text(None, "pixel range"),
            "in its own colours (no window)"
        );
    }

    #[test]
    fn frames_are_located_by_id_with_their_series_attributes() {
        let document = json!({"Study": {"Series": {"1.2": {"DICOM": {"Modality": "CT"}, "Instances": {
            "1.2.3": {"DICOM": {"Rows": 2}, "ImageFrames": [{"ID": "a"}, {"ID": "b"}]}}}}}});
        let document = ParsedMetadata::new(document, 0);
        let located = locate(&document, "b").unwrap();
        assert_eq!(located.frame_number, 2);
        assert_eq!(located.sop_instance_uid, "1.2.3");
        assert_eq!(located.instance["DICOM"]["Modality"], "CT");
        assert!(locate(&document, "c").is_none());
        assert_eq!(number(&json!(["40", "400"])), Some(40.0));
        assert_eq!(number(&json!("-1024 ")), Some(-1024.0));
    }
}
