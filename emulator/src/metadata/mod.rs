//! The image set metadata document: what GetImageSetMetadata returns (gzipped).
//!
//! ```text
//! { "SchemaVersion": "1.1", "DatastoreID", "ImageSetID",
//!   "Patient": { "DICOM": {…} },
//!   "Study": { "DICOM": {…},
//!     "Series": { "<SeriesInstanceUID>": { "DICOM": {…},
//!       "Instances": { "<SOPInstanceUID>": { "DICOM": {…}, "DICOMVRs": {…},
//!         "StoredTransferSyntaxUID", "ChecksumType": "DECOMPRESSED",
//!         "ImageFrames": [ { "ID", "PixelDataChecksumFromBaseToFullResolution":
//!             [ { "Width", "Height", "Checksum" } ],
//!           "MinPixelValue", "MaxPixelValue", "FrameSizeInBytes" } ] } } } } } }
//! ```
//!
//! Keys are DICOM keywords ([`keyword`]); values follow [`values`]; each
//! attribute sits at the level of its module ([`levels`]). Pixel data and
//! group lengths never appear, except the file meta information group
//! length, which the service reports. When instances disagree on a
//! Patient-, Study- or Series-level attribute, the first instance's value is
//! the document's (an import groups conflicting instances apart).

pub mod combine;
pub mod edit;
#[cfg(test)]
mod edit_tests;
mod levels;
mod multi_valued;
pub mod stored;
pub mod values;
pub mod vr;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTable;
use serde_json::{Map, Value as Json, json};

pub use levels::{Level, level};

/// One frame as the document describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    /// `ImageFrames[].ID`: 32 lowercase hex characters.
    pub id: String,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// CRC32 of the decoded pixel bytes.
    pub checksum: u32,
    /// The smallest stored sample.
    pub min: i64,
    /// The largest stored sample.
    pub max: i64,
    /// Size of the stored (encoded) frame.
    pub size_in_bytes: u64,
}

/// One instance to describe: its file meta information, data set, how its
/// frames are stored, and the frames.
#[derive(Debug, Clone, Copy)]
pub struct InstanceRecord<'a> {
    /// File meta information, reported at instance level.
    pub meta: &'a FileMetaTable,
    /// The data set.
    pub dataset: &'a InMemDicomObject,
    /// `StoredTransferSyntaxUID`.
    pub stored_transfer_syntax: &'a str,
    /// The frames, in frame order.
    pub frames: &'a [FrameRecord],
}

/// The keyword of `tag`, or its 8 hexadecimal digits for private attributes
/// and tags the standard dictionary does not know.
pub fn keyword(tag: Tag) -> String {
    // Private attributes (odd groups) keep their tag: the dictionary's
    // `PrivateCreator` names every creator slot alike, and keys must be unique.
    if tag.group() % 2 == 1 {
        return format!("{:04X}{:04X}", tag.group(), tag.element());
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|entry| entry.alias().to_owned())
        .unwrap_or_else(|| format!("{:04X}{:04X}", tag.group(), tag.element()))
}

/// Whether the dictionary leaves `tag`'s VR open (US or SS, OB or OW, …) or
/// does not know the tag: those VRs are recorded in `DICOMVRs`.
fn vr_needs_recording(tag: Tag) -> bool {
    match StandardDataDictionary.by_tag(tag) {
        Some(entry) => !matches!(entry.vr(), VirtualVr::Exact(_)),
        None => true,
    }
}

/// The document of the image set `image_set_id` holding `instances`.
pub fn document(datastore_id: &str, image_set_id: &str, instances: &[InstanceRecord<'_>]) -> Json {
    let mut patient = Map::new();
    let mut study = Map::new();
    let mut series: Map<String, Json> = Map::new();
    for instance in instances {
        let series_uid = text(instance.dataset, tags::SERIES_INSTANCE_UID);
        let sop_uid = text(instance.dataset, tags::SOP_INSTANCE_UID);
        let mut series_dicom = Map::new();
        let mut dicom = Map::new();
        let mut vrs = Map::new();
        for element in instance.meta.to_element_iter() {
            let value = meta_value(element.vr(), element.value().primitive());
            dicom.insert(keyword(element.tag()), value);
        }
        for element in instance.dataset {
            let tag = element.tag();
            if tag == tags::PIXEL_DATA || tag.element() == 0x0000 {
                continue;
            }
            let value = values::value(element);
            let target = match level(tag) {
                Level::Patient => &mut patient,
                Level::Study => &mut study,
                Level::Series => &mut series_dicom,
                Level::Instance => {
                    if vr_needs_recording(tag) {
                        vrs.insert(keyword(tag), json!(element.vr().to_string()));
                    }
                    &mut dicom
                }
            };
            target.entry(keyword(tag)).or_insert(value);
        }
        let entry = series
            .entry(series_uid)
            .or_insert_with(|| json!({ "DICOM": {}, "Instances": {} }));
        if let Some(existing) = entry["DICOM"].as_object_mut() {
            for (key, value) in series_dicom {
                existing.entry(key).or_insert(value);
            }
        }
        let frames: Vec<Json> = instance.frames.iter().map(frame).collect();
        entry["Instances"][sop_uid] = object([
            ("DICOM", Json::Object(dicom)),
            ("DICOMVRs", Json::Object(vrs)),
            (
                "StoredTransferSyntaxUID",
                json!(instance.stored_transfer_syntax),
            ),
            ("ChecksumType", json!("DECOMPRESSED")),
            ("ImageFrames", Json::Array(frames)),
        ]);
    }
    let document = object([
        ("Patient", object([("DICOM", Json::Object(patient))])),
        (
            "Study",
            object([
                ("DICOM", Json::Object(study)),
                ("Series", Json::Object(series)),
            ]),
        ),
    ]);
    with_identity(document, datastore_id, image_set_id)
}

/// The document in the service's key order: identity first.
pub fn with_identity(mut document: Json, datastore_id: &str, image_set_id: &str) -> Json {
    object([
        ("SchemaVersion", json!("1.1")),
        ("DatastoreID", json!(datastore_id)),
        ("ImageSetID", json!(image_set_id)),
        ("Patient", document["Patient"].take()),
        ("Study", document["Study"].take()),
    ])
}

/// A JSON object of `entries`, in their order, the values moved in (the
/// `json!` macro copies a `Map` or `Json` value it is given).
fn object<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// One entry of an instance's `ImageFrames`.
pub fn frame(frame: &FrameRecord) -> Json {
    json!({
        "ID": frame.id,
        "PixelDataChecksumFromBaseToFullResolution": [
            { "Width": frame.width, "Height": frame.height, "Checksum": frame.checksum }
        ],
        "MinPixelValue": frame.min,
        "MaxPixelValue": frame.max,
        "FrameSizeInBytes": frame.size_in_bytes,
    })
}

/// A file meta element's value: the same rules as the data set's.
fn meta_value(vr: VR, primitive: Option<&dicom_core::value::PrimitiveValue>) -> Json {
    match (vr, primitive) {
        (_, None) => Json::Null,
        (VR::OB, Some(value)) => json!(values::base64(&value.to_bytes())),
        (VR::UL, Some(value)) => json!(value.to_int::<u32>().unwrap_or_default()),
        (_, Some(value)) => json!(value.to_str().trim_end_matches(['\0', ' ']).to_owned()),
    }
}

fn text(dataset: &InMemDicomObject, tag: Tag) -> String {
    dataset
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use dicom_core::DataElement;
    use dicom_core::value::PrimitiveValue;
    use dicom_object::meta::FileMetaTableBuilder;

    use super::*;

    #[test]
    fn ambiguous_and_private_attributes_record_their_vr() {
        let mut dataset = InMemDicomObject::new_empty();
        for (tag, vr, value) in [
            (
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3"),
            ),
            (
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.4"),
            ),
            (
                tags::SMALLEST_IMAGE_PIXEL_VALUE,
                VR::SS,
                PrimitiveValue::from(-5i16),
            ),
            (Tag(0x0009, 0x1001), VR::LO, PrimitiveValue::from("private")),
            (tags::ROWS, VR::US, PrimitiveValue::from(4u16)),
        ] {
            dataset.put(DataElement::new(tag, vr, value));
        }
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
            .media_storage_sop_instance_uid("1.2.3")
            .transfer_syntax("1.2.840.10008.1.2.1")
            .implementation_class_uid("1.2.5")
            .build()
            .unwrap();
        let record = InstanceRecord {
            meta: &meta,
            dataset: &dataset,
            stored_transfer_syntax: "1.2.840.10008.1.2.1",
            frames: &[],
        };
        let doc = document("d", "i", &[record]);
        let instance = &doc["Study"]["Series"]["1.2.4"]["Instances"]["1.2.3"];
        assert_eq!(
            instance["DICOMVRs"],
            json!({ "SmallestImagePixelValue": "SS", "00091001": "LO" })
        );
        assert_eq!(instance["DICOM"]["SmallestImagePixelValue"], json!(-5));
        assert_eq!(instance["DICOM"]["00091001"], json!("private"));
        assert_eq!(instance["DICOM"]["Rows"], json!(4));
    }
}
