//! DICOM Part 10 files rebuilt from what an image set stores: the
//! instance's attributes from the metadata document (every level merged)
//! and its frames, encapsulated as stored or decoded to native pixels.

use dicom_core::header::Header;
use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use serde_json::{Map, Value as Json};

use healthimaging_codec::jpeg2000;

use super::dataset;

/// Explicit VR Little Endian: the default of GetDICOMInstance and frames.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// The implementation class UID of files the emulator writes.
const IMPLEMENTATION_CLASS_UID: &str = "2.25.302716383715219391520337102786498712713";
const IMPLEMENTATION_VERSION: &str = "HIMCP_EMU_1";

/// The attributes of instance `sop_uid` of series `series_uid`: Patient,
/// Study, Series and Instance levels of the document merged, without the
/// file meta information.
pub fn attributes(document: &Json, series_uid: &str, sop_uid: &str) -> Option<InMemDicomObject> {
    let series = document["Study"]["Series"].get(series_uid)?;
    let instance = series["Instances"].get(sop_uid)?;
    let empty = Map::new();
    let level = |node: &Json| node["DICOM"].as_object().cloned().unwrap_or_default();
    let mut object = dataset::object(&level(&document["Patient"]), None);
    for (node, recorded) in [
        (&document["Study"], None),
        (series, None),
        (
            instance,
            Some(instance["DICOMVRs"].as_object().unwrap_or(&empty)),
        ),
    ] {
        for element in dataset::object(&level(node), recorded) {
            object.put(element);
        }
    }
    let meta: Vec<Tag> = object
        .iter()
        .map(|e| e.tag())
        .filter(|t| t.group() == 0x0002)
        .collect();
    for tag in meta {
        object.remove_element(tag);
    }
    Some(object)
}

/// How an instance's frames go into its file.
#[derive(Debug)]
pub enum Pixels {
    /// No pixel data.
    None,
    /// Frames as stored, in an encapsulated syntax.
    Encapsulated(Vec<Vec<u8>>),
    /// Frames decoded, concatenated, little endian.
    Native(Vec<u8>),
}

/// The pixel description of an instance, from its attributes.
#[derive(Debug, Clone, Copy)]
pub struct Description {
    /// BitsAllocated.
    pub bits_allocated: u32,
    /// SamplesPerPixel.
    pub samples_per_pixel: u32,
}

impl Description {
    /// Read from `attributes`.
    pub fn of(attributes: &InMemDicomObject) -> Self {
        let int = |tag, default| {
            attributes
                .element(tag)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok())
                .unwrap_or(default)
        };
        Self {
            bits_allocated: int(tags::BITS_ALLOCATED, 16),
            samples_per_pixel: int(tags::SAMPLES_PER_PIXEL, 1),
        }
    }
}

/// The native little-endian bytes of a stored frame.
pub fn decode_frame(
    bytes: &[u8],
    stored_syntax: &str,
    description: Description,
) -> Result<Vec<u8>, String> {
    let samples: Vec<i32> = match stored_syntax {
        "1.2.840.10008.1.2.4.50" => crate::import::decode::jpeg_baseline(bytes)
            .map_err(|e| format!("The stored JPEG frame could not be decoded: {e}"))?,
        s if s.starts_with("1.2.840.10008.1.2.4.") => {
            jpeg2000::decode(bytes)
                .map_err(|e| format!("The stored frame could not be decoded: {e}"))?
                .samples
        }
        // Stored natively already.
        _ => return Ok(bytes.to_vec()),
    };
    Ok(pack(&samples, description))
}

/// Samples as native little-endian bytes of `BitsAllocated` each.
pub fn pack(samples: &[i32], description: Description) -> Vec<u8> {
    if description.bits_allocated <= 8 {
        samples.iter().map(|&s| s as u8).collect()
    } else {
        samples
            .iter()
            .flat_map(|&s| (s as u16).to_le_bytes())
            .collect()
    }
}

/// A Part 10 file of `attributes` with `pixels`, in `syntax`.
pub fn file(
    mut attributes: InMemDicomObject,
    syntax: &str,
    pixels: Pixels,
) -> Result<Vec<u8>, String> {
    let text = |attributes: &InMemDicomObject, tag| {
        attributes
            .element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    let sop_class = text(&attributes, tags::SOP_CLASS_UID);
    let sop_instance = text(&attributes, tags::SOP_INSTANCE_UID);
    let description = Description::of(&attributes);
    match pixels {
        Pixels::None => {}
        Pixels::Encapsulated(frames) => {
            attributes.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), frames)),
            ));
        }
        Pixels::Native(bytes) => {
            if description.samples_per_pixel == 3 {
                // Decoded colour is interleaved RGB, whatever it was coded as.
                attributes.put(DataElement::new(
                    tags::PLANAR_CONFIGURATION,
                    VR::US,
                    PrimitiveValue::from(0u16),
                ));
                if text(&attributes, tags::PHOTOMETRIC_INTERPRETATION).starts_with("YBR") {
                    attributes.put(DataElement::new(
                        tags::PHOTOMETRIC_INTERPRETATION,
                        VR::CS,
                        PrimitiveValue::from("RGB"),
                    ));
                }
            }
            let vr = if description.bits_allocated <= 8 {
                VR::OB
            } else {
                VR::OW
            };
            attributes.put(DataElement::new(
                tags::PIXEL_DATA,
                vr,
                PrimitiveValue::U8(bytes.into()),
            ));
        }
    }
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION);
    let file = attributes
        .with_meta(meta)
        .map_err(|e| format!("The file meta information could not be built: {e}"))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| format!("The instance could not be written: {e}"))?;
    Ok(out)
}
