//! `get_series_montage`: evenly spaced slices of a series, or the instances
//! asked for, in one captioned picture.
//!
//! The slices of a series are its instances in InstanceNumber order, and the
//! frames of a multi-frame instance in order. The chosen ones are fetched
//! (a few at a time), decoded and windowed like `get_image_frame`, scaled
//! into square tiles of a grid at most 1,024 pixels on its long edge, and
//! captioned with their instance number (and frame, and slice position).

use std::sync::Arc;

use base64::Engine;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::font;
use super::frames::{InstanceDisplay, decode, invalid, number, requested_window, window_text};
use super::render::{self, Picture, Window};
use crate::args::{DatastoreId, DicomUid, ImageSetId, VersionId};
use crate::audit;
use crate::errors::ToolError;
use crate::metadata_cache::ParsedMetadata;
use crate::server::HealthImagingServer;

/// The most tiles in one montage.
const MAX_TILES: usize = 36;
/// The default number of slices.
const DEFAULT_COUNT: usize = 9;
/// The largest (and default) long edge of the picture.
const MAX_EDGE: u32 = 1024;
/// The smallest long edge a caller may ask for.
const MIN_EDGE: u32 = 128;
/// Frames fetched at once.
const CONCURRENT_FETCHES: usize = 6;
/// Caption colour.
const CAPTION: [u8; 3] = [255, 220, 0];

/// Arguments of `get_series_montage`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MontageArgs {
    pub datastore_id: DatastoreId,
    pub image_set_id: ImageSetId,
    /// Default: the image set's only series.
    pub series_instance_uid: Option<DicomUid>,
    /// Slices shown, evenly spaced, 1–36 (default 9).
    pub count: Option<usize>,
    /// Show these InstanceNumbers instead (at most 36).
    pub instance_numbers: Option<Vec<i64>>,
    pub version_id: Option<VersionId>,
    /// In rescaled units (HU for CT); with window_width.
    pub window_center: Option<f64>,
    /// With window_center.
    pub window_width: Option<f64>,
    /// Long edge in pixels, 128–1024 (default 1024).
    pub max_size: Option<u32>,
}

/// One tile of the montage.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Tile {
    /// The instance's InstanceNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_number: Option<String>,
    /// The instance.
    pub sop_instance_uid: String,
    /// The frame shown (for get_image_frame).
    pub image_frame_id: String,
    /// 1-based frame of the instance.
    pub frame_number: usize,
}

/// Result of `get_series_montage`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MontageOutput {
    /// What the picture shows.
    pub summary: String,
    /// The series shown.
    pub series_instance_uid: String,
    /// The tiles, left to right, top to bottom.
    pub tiles: Vec<Tile>,
    /// Columns and rows of the grid.
    pub grid: [u32; 2],
    /// Width and height of the picture.
    pub size: [u32; 2],
}

/// One slice: an instance's frame.
#[derive(Debug, Clone)]
struct Slice {
    tile: Tile,
    /// The instance's attributes, its series' merged in.
    instance: Value,
    /// SliceLocation, else the third ImagePositionPatient coordinate.
    position: Option<f64>,
    frames_in_instance: usize,
}

/// The slices of `series` in order: instances by InstanceNumber, frames in order.
fn slices(series: &Value) -> Vec<Slice> {
    let mut instances: Vec<(&String, &Value)> = series["Instances"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    let order = |instance: &Value| number(&instance["DICOM"]["InstanceNumber"]);
    instances.sort_by(|(a_uid, a), (b_uid, b)| {
        let (a_n, b_n) = (order(a), order(b));
        match (a_n, b_n) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a_uid.cmp(b_uid))
    });
    let mut all = Vec::new();
    for (sop, listed) in instances {
        let mut instance = listed.clone();
        if let (Some(into), Some(from)) = (
            instance["DICOM"].as_object_mut(),
            series["DICOM"].as_object(),
        ) {
            for (k, v) in from {
                into.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let dicom = &instance["DICOM"];
        let position = number(&dicom["SliceLocation"]).or_else(|| {
            dicom["ImagePositionPatient"]
                .as_array()
                .and_then(|xyz| xyz.get(2))
                .and_then(number)
        });
        let instance_number = match &dicom["InstanceNumber"] {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Array(values) => values
                .first()
                .map(|v| v.to_string().trim_matches('"').to_owned()),
            other => Some(other.to_string()),
        };
        let frames: Vec<String> = listed["ImageFrames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|frame| frame["ID"].as_str().map(str::to_owned))
            .collect();
        let count = frames.len();
        for (n, frame) in frames.into_iter().enumerate() {
            all.push(Slice {
                tile: Tile {
                    instance_number: instance_number.clone(),
                    sop_instance_uid: sop.clone(),
                    image_frame_id: frame,
                    frame_number: n + 1,
                },
                instance: instance.clone(),
                position,
                frames_in_instance: count,
            });
        }
    }
    all
}

/// `count` indices spread evenly over `len`, first and last included.
fn evenly_spaced(len: usize, count: usize) -> Vec<usize> {
    if len <= count {
        return (0..len).collect();
    }
    if count == 1 {
        return vec![len / 2];
    }
    (0..count)
        .map(|i| (i * (len - 1) + (count - 1) / 2) / (count - 1))
        .collect()
}

/// Columns and rows of a near-square grid of `tiles`.
fn grid(tiles: usize) -> (usize, usize) {
    let columns = (1..=tiles).find(|c| c * c >= tiles).unwrap_or(1);
    (columns, tiles.div_ceil(columns))
}

/// A slice's caption: instance number, frame of a multi-frame instance, position.
fn caption(slice: &Slice) -> String {
    let mut text = match &slice.tile.instance_number {
        Some(n) => format!("#{n}"),
        None => "#?".to_owned(),
    };
    if slice.frames_in_instance > 1 {
        text.push_str(&format!(" F{}", slice.tile.frame_number));
    }
    if let Some(z) = slice.position {
        text.push_str(&format!(" Z{z:.1}"));
    }
    text
}

/// Places the tiles' pictures into one captioned RGB picture.
fn compose(pictures: &[(Picture, String)], columns: usize, rows: usize, tile: usize) -> Picture {
    let (width, height) = (columns * tile, rows * tile);
    let mut canvas = vec![0u8; width * height * 3];
    let scale = if tile >= 200 { 2 } else { 1 };
    for (k, (picture, caption)) in pictures.iter().enumerate() {
        let (left, top) = ((k % columns) * tile, (k / columns) * tile);
        let (w, h) = (picture.width as usize, picture.height as usize);
        let (x0, y0) = (
            left + (tile - w.min(tile)) / 2,
            top + (tile - h.min(tile)) / 2,
        );
        let c = picture.components as usize;
        for y in 0..h.min(tile) {
            for x in 0..w.min(tile) {
                let from = (y * w + x) * c;
                let rgb = if c == 3 {
                    [
                        picture.pixels[from],
                        picture.pixels[from + 1],
                        picture.pixels[from + 2],
                    ]
                } else {
                    [picture.pixels[from]; 3]
                };
                let at = ((y0 + y) * width + x0 + x) * 3;
                canvas[at..at + 3].copy_from_slice(&rgb);
            }
        }
        // The caption on a dark band at the tile's foot, clipped to the tile.
        let band = font::GLYPH.1 * scale + 2 * scale;
        let text_width = font::text_width(caption, scale).min(tile);
        let band_top = top + tile - band.min(tile);
        for y in band_top..top + tile {
            for x in left..left + (text_width + 2 * scale).min(tile) {
                let at = (y * width + x) * 3;
                canvas[at..at + 3].copy_from_slice(&[0, 0, 0]);
            }
        }
        let mut clipped = String::new();
        for ch in caption.chars() {
            let next = format!("{clipped}{ch}");
            if font::text_width(&next, scale) + 2 * scale > tile {
                break;
            }
            clipped = next;
        }
        font::draw_text(
            &mut canvas,
            width,
            (left + scale, band_top + scale),
            &clipped,
            scale,
            CAPTION,
        );
    }
    Picture {
        width: width as u32,
        height: height as u32,
        components: 3,
        pixels: canvas,
        window: None,
    }
}

#[tool_router(router = montage_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// See a series at a glance: evenly spaced slices (or the InstanceNumbers given) in
    /// one captioned PNG grid, at most 1024 px, windowed like get_image_frame.
    #[tool(
        name = "get_series_montage",
        annotations(
            title = "Get series montage",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        ),
        output_schema = rmcp::handler::server::common::schema_for_output::<MontageOutput>()
    )]
    pub async fn get_series_montage(
        &self,
        Parameters(args): Parameters<MontageArgs>,
    ) -> Result<CallToolResult, ToolError> {
        let (ds, id) = (args.datastore_id.as_str(), args.image_set_id.as_str());
        audit::touch(id);
        let edge = args.max_size.unwrap_or(MAX_EDGE);
        if !(MIN_EDGE..=MAX_EDGE).contains(&edge) {
            return Err(invalid(format!(
                "max_size must be between {MIN_EDGE} and {MAX_EDGE}, not {edge}"
            )));
        }
        let requested_window = requested_window(args.window_center, args.window_width)?;
        let parsed = self
            .metadata(ds, id, args.version_id.as_ref().map(VersionId::as_str))
            .await?;
        let (series_uid, series) = pick_series(&parsed, args.series_instance_uid.as_deref())?;
        let all = slices(series);
        if all.is_empty() {
            return Err(ToolError::new(
                "NotFound",
                format!("Series {series_uid} of image set {id} lists no frames"),
                "Choose another series (get_image_set_metadata with summary_only lists them).",
            ));
        }
        let chosen: Vec<Slice> = match &args.instance_numbers {
            Some(numbers) => by_instance_number(&all, numbers)?,
            None => {
                let count = args.count.unwrap_or(DEFAULT_COUNT);
                if !(1..=MAX_TILES).contains(&count) {
                    return Err(invalid(format!(
                        "count must be between 1 and {MAX_TILES}, not {count}"
                    )));
                }
                evenly_spaced(all.len(), count)
                    .into_iter()
                    .map(|i| all[i].clone())
                    .collect()
            }
        };
        let (columns, rows) = grid(chosen.len());
        let tile = (edge as usize / columns).max(16);
        let pictures = self
            .tiles(ds, id, &chosen, requested_window, tile as u32)
            .await?;
        let sources: Vec<&'static str> = pictures.iter().map(|(_, _, source)| *source).collect();
        let windows: Vec<Option<Window>> = pictures.iter().map(|(p, _, _)| p.window).collect();
        let captioned: Vec<(Picture, String)> = pictures
            .into_iter()
            .map(|(picture, caption, _)| (picture, caption))
            .collect();
        let picture = tokio::task::spawn_blocking(move || compose(&captioned, columns, rows, tile))
            .await
            .map_err(|e| invalid(format!("the montage could not be drawn: {e}")))?;
        let png = render::encode_png(&picture).map_err(|e| {
            ToolError::new("DecodeFailed", e, "Try fewer slices or a smaller max_size.")
        })?;
        let window = match (requested_window, windows.first().copied().flatten()) {
            (Some(w), _) => window_text(Some(w), "arguments"),
            (None, first)
                if sources.iter().all(|s| *s == "metadata")
                    && windows.iter().all(|w| *w == first) =>
            {
                window_text(first, "metadata")
            }
            (None, _) if sources.iter().all(|s| *s == "metadata") => {
                "each instance's own WindowCenter/WindowWidth".to_owned()
            }
            (None, _) if windows.iter().all(Option::is_none) => {
                "in their own colours (no window)".to_owned()
            }
            (None, _) => {
                "each with its WindowCenter/WindowWidth where it has one, else its pixel range"
                    .to_owned()
            }
        };
        let numbers: Vec<String> = chosen.iter().map(caption).collect();
        let summary = format!(
            "Series {series_uid} ({}): {} of its {} slices{}, in a {columns}x{rows} grid of {tile}-pixel tiles ({}x{}), {window}. Tiles: {}.",
            series_words(series),
            chosen.len(),
            all.len(),
            if args.instance_numbers.is_some() {
                " by instance number"
            } else {
                ", evenly spaced"
            },
            picture.width,
            picture.height,
            numbers.join(", "),
        );
        let output = MontageOutput {
            summary: summary.clone(),
            series_instance_uid: series_uid.to_owned(),
            tiles: chosen.into_iter().map(|slice| slice.tile).collect(),
            grid: [columns as u32, rows as u32],
            size: [picture.width, picture.height],
        };
        let mut result = CallToolResult::success(vec![
            ContentBlock::image(
                base64::engine::general_purpose::STANDARD.encode(&png),
                "image/png",
            ),
            ContentBlock::text(summary),
        ]);
        result.structured_content = Some(serde_json::to_value(&output).unwrap_or(Value::Null));
        Ok(result)
    }
}

impl HealthImagingServer {
    /// Each slice fetched, decoded and drawn into a `tile`-pixel square, in
    /// order, a few at a time; with its caption and its window's source.
    async fn tiles(
        &self,
        ds: &str,
        id: &str,
        chosen: &[Slice],
        requested: Option<Window>,
        tile: u32,
    ) -> Result<Vec<(Picture, String, &'static str)>, ToolError> {
        let permits = Arc::new(Semaphore::new(CONCURRENT_FETCHES));
        let mut tasks = tokio::task::JoinSet::new();
        for (k, slice) in chosen.iter().cloned().enumerate() {
            let (server, ds, id, permits) =
                (self.clone(), ds.to_owned(), id.to_owned(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let (content_type, bytes) = server
                    .fetch_frame(&ds, &id, &slice.tile.image_frame_id)
                    .await?;
                let drawn = tokio::task::spawn_blocking(move || {
                    let shown = InstanceDisplay::of(&slice.instance);
                    let samples =
                        decode(&content_type, &bytes, &slice.instance, shown.bits_allocated)?;
                    let (display, source) = shown.display(requested);
                    let picture = render::draw(&samples, display, tile).map_err(|e| {
                        ToolError::new(
                            "DecodeFailed",
                            e,
                            "The frame's metadata does not describe its pixels.",
                        )
                    })?;
                    Ok::<_, ToolError>((picture, caption(&slice), source))
                })
                .await
                .map_err(|e| invalid(format!("a tile could not be drawn: {e}")))??;
                Ok::<_, ToolError>((k, drawn))
            });
        }
        let mut drawn: Vec<Option<(Picture, String, &'static str)>> = vec![None; chosen.len()];
        while let Some(joined) = tasks.join_next().await {
            let (k, tile) =
                joined.map_err(|e| invalid(format!("a tile could not be drawn: {e}")))??;
            drawn[k] = Some(tile);
        }
        Ok(drawn.into_iter().flatten().collect())
    }
}

/// The series asked for, or the image set's only one.
fn pick_series<'a>(
    parsed: &'a ParsedMetadata,
    asked: Option<&str>,
) -> Result<(&'a str, &'a Value), ToolError> {
    let all = parsed
        .series()
        .filter(|all| !all.is_empty())
        .ok_or_else(|| {
            ToolError::new(
                "NotFound",
                "The image set holds no series",
                "Choose another image set.",
            )
        })?;
    match asked {
        Some(uid) => all
            .get_key_value(uid)
            .map(|(uid, series)| (uid.as_str(), series))
            .ok_or_else(|| {
                ToolError::new(
                    "NotFound",
                    format!("The image set has no series {uid}"),
                    "Call get_image_set_metadata with summary_only to see its series.",
                )
            }),
        None if all.len() == 1 => Ok(all
            .iter()
            .next()
            .map(|(uid, series)| (uid.as_str(), series))
            .expect("one series")),
        None => Err(invalid(format!(
            "The image set holds {} series; pass series_instance_uid, one of: {}",
            all.len(),
            all.keys().take(10).cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The first frame of each instance with one of `numbers`, in the order given.
fn by_instance_number(all: &[Slice], numbers: &[i64]) -> Result<Vec<Slice>, ToolError> {
    if numbers.is_empty() || numbers.len() > MAX_TILES {
        return Err(invalid(format!(
            "instance_numbers lists 1 to {MAX_TILES} numbers, not {}",
            numbers.len()
        )));
    }
    let mut chosen = Vec::with_capacity(numbers.len());
    let mut missing = Vec::new();
    for &wanted in numbers {
        let found = all.iter().find(|slice| {
            slice.tile.frame_number == 1
                && slice
                    .tile
                    .instance_number
                    .as_deref()
                    .and_then(|n| n.parse::<f64>().ok())
                    == Some(wanted as f64)
        });
        match found {
            Some(slice) => chosen.push(slice.clone()),
            None => missing.push(wanted.to_string()),
        }
    }
    if !missing.is_empty() {
        let numbered: Vec<i64> = all
            .iter()
            .filter_map(|s| s.tile.instance_number.as_deref()?.parse().ok())
            .collect();
        let range = match (numbered.iter().min(), numbered.iter().max()) {
            (Some(low), Some(high)) => format!("its InstanceNumbers run from {low} to {high}"),
            _ => "its instances carry no InstanceNumber".to_owned(),
        };
        return Err(ToolError::new(
            "NotFound",
            format!(
                "The series has no instance numbered {}; {range}",
                missing.join(", ")
            ),
            "Pass instance numbers the series holds, or count for evenly spaced slices.",
        ));
    }
    Ok(chosen)
}

/// The series in a few words: modality, number, description.
fn series_words(series: &Value) -> String {
    let text = |key: &str| match &series["DICOM"][key] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut words = match text("Modality") {
        Some(modality) => format!("{modality} series"),
        None => "series".to_owned(),
    };
    if let Some(n) = text("SeriesNumber") {
        words.push_str(&format!(" {n}"));
    }
    if let Some(d) = text("SeriesDescription") {
        words.push_str(&format!(" \"{d}\""));
    }
    words
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn slices_are_spread_evenly_with_both_ends() {
        assert_eq!(evenly_spaced(100, 3), vec![0, 50, 99]);
        assert_eq!(evenly_spaced(5, 9), vec![0, 1, 2, 3, 4]);
        assert_eq!(evenly_spaced(10, 1), vec![5]);
        let nine = evenly_spaced(120, 9);
        assert_eq!((nine[0], nine[8]), (0, 119));
        assert!(nine.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn grids_are_near_square() {
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(9), (3, 3));
        assert_eq!(grid(10), (4, 3));
        assert_eq!(grid(36), (6, 6));
    }

    #[test]
    fn instances_go_in_instance_number_order_with_their_frames() {
        let series = json!({"DICOM": {"Modality": "CT"}, "Instances": {
            "1.3": {"DICOM": {"InstanceNumber": "10", "SliceLocation": "-5"}, "ImageFrames": [{"ID": "c"}]},
            "1.1": {"DICOM": {"InstanceNumber": "2"}, "ImageFrames": [{"ID": "a"}, {"ID": "b"}]}}});
        let all = slices(&series);
        let frames: Vec<&str> = all.iter().map(|s| s.tile.image_frame_id.as_str()).collect();
        assert_eq!(frames, ["a", "b", "c"], "2 before 10: numbers, not text");
        assert_eq!(caption(&all[1]), "#2 F2");
        assert_eq!(caption(&all[2]), "#10 Z-5.0");
        assert_eq!(all[2].instance["DICOM"]["Modality"], "CT");
        let picked = by_instance_number(&all, &[10, 2]).unwrap();
        assert_eq!(picked[0].tile.image_frame_id, "c");
        assert_eq!(picked[1].tile.image_frame_id, "a");
        let missing = by_instance_number(&all, &[3]).unwrap_err().to_string();
        assert!(missing.contains("no instance numbered 3"), "{missing}");
        assert!(missing.contains("from 2 to 10"), "{missing}");
    }

    #[test]
    fn tiles_are_placed_and_captioned() {
        let grey = |value: u8| Picture {
            width: 40,
            height: 20,
            components: 1,
            pixels: vec![value; 800],
            window: None,
        };
        let picture = compose(
            &[(grey(100), "#1".into()), (grey(200), "#2".into())],
            2,
            1,
            40,
        );
        assert_eq!((picture.width, picture.height), (80, 40));
        let at = |x: usize, y: usize| {
            let i = (y * 80 + x) * 3;
            [
                picture.pixels[i],
                picture.pixels[i + 1],
                picture.pixels[i + 2],
            ]
        };
        // A wide frame is centred in its square tile, with black above it.
        assert_eq!(at(20, 2), [0, 0, 0]);
        assert_eq!(at(20, 15), [100; 3]);
        assert_eq!(at(60, 15), [200; 3]);
        // Each caption is drawn in the caption colour in its own tile.
        let lit = |x0: usize| (x0..x0 + 40).any(|x| (30..40).any(|y| at(x, y) == CAPTION));
        assert!(lit(0) && lit(40));
    }
}
