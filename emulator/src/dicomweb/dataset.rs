//! From the metadata document's keyword form to DICOM data sets, and from
//! data sets to the DICOM JSON model of PS3.18 Annex F.
//!
//! The document keeps every attribute by keyword with a JSON value
//! ([`crate::metadata::values`]); a data set needs the tag and the VR. The
//! tag comes from the standard dictionary (or the 8 hexadecimal digits of a
//! private attribute); the VR from `DICOMVRs` where the import recorded it,
//! otherwise from the dictionary, with the usual choice for the VRs it
//! leaves open (US for US/SS, OW for OB/OW).

use base64::Engine;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value as Json, json};
use sha2::Digest;

/// The tag a document key names: a keyword of the standard dictionary or 8
/// hexadecimal digits.
pub fn tag_of(key: &str) -> Option<Tag> {
    if key.len() == 8
        && key.bytes().all(|b| b.is_ascii_hexdigit())
        && let (Ok(group), Ok(element)) = (
            u16::from_str_radix(&key[..4], 16),
            u16::from_str_radix(&key[4..], 16),
        )
    {
        return Some(Tag(group, element));
    }
    StandardDataDictionary
        .by_name(key)
        .map(|entry| entry.tag_range().inner())
}

/// The VR of `tag`: the recorded one, else the dictionary's.
pub fn vr_of(tag: Tag, recorded: Option<&str>) -> VR {
    if let Some(vr) = recorded.and_then(|text| text.parse::<VR>().ok()) {
        return vr;
    }
    match StandardDataDictionary.by_tag(tag).map(|entry| entry.vr()) {
        Some(VirtualVr::Exact(vr)) => vr,
        Some(VirtualVr::Xs | VirtualVr::Lt) => VR::US,
        Some(VirtualVr::Ox | VirtualVr::Px) => VR::OW,
        Some(_) => VR::UN,
        // Private attributes without a recorded VR: their bytes as they came.
        None if tag.element() == 0x0010 || (tag.element() >> 8) == 0 => VR::LO,
        None => VR::UN,
    }
}

/// The data set of a keyword-keyed object, with the VRs `recorded` for
/// attributes the dictionary leaves open. Keys that name no attribute
/// (never written by an import) are skipped.
pub fn object(map: &Map<String, Json>, recorded: Option<&Map<String, Json>>) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    for (key, value) in map {
        let Some(tag) = tag_of(key) else {
            continue;
        };
        let mut vr = vr_of(
            tag,
            recorded.and_then(|r| r.get(key)).and_then(Json::as_str),
        );
        if matches!(vr, VR::US | VR::SS) && value.is_string() {
            // Lookup table data the dictionary leaves US or OW: a binary.
            vr = VR::OW;
        }
        object.put(element(tag, vr, value));
    }
    object
}

fn element(tag: Tag, vr: VR, value: &Json) -> DataElement<InMemDicomObject> {
    if vr == VR::SQ {
        let items: Vec<InMemDicomObject> = value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Json::as_object)
                    .map(|item| object(item, None))
                    .collect()
            })
            .unwrap_or_default();
        return DataElement::new(
            tag,
            VR::SQ,
            Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
        );
    }
    DataElement::new(tag, vr, primitive(vr, value))
}

fn primitive(vr: VR, value: &Json) -> PrimitiveValue {
    let items: Vec<&Json> = match value {
        Json::Null => Vec::new(),
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if items.is_empty() {
        return PrimitiveValue::Empty;
    }
    let int = |v: &&Json| v.as_i64().unwrap_or_default();
    let float = |v: &&Json| v.as_f64().unwrap_or_default();
    match vr {
        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN => {
            let bytes = items[0]
                .as_str()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .unwrap_or_default();
            PrimitiveValue::U8(bytes.into())
        }
        VR::US => PrimitiveValue::U16(items.iter().map(|v| int(v) as u16).collect()),
        VR::SS => PrimitiveValue::I16(items.iter().map(|v| int(v) as i16).collect()),
        VR::UL => PrimitiveValue::U32(items.iter().map(|v| int(v) as u32).collect()),
        VR::SL => PrimitiveValue::I32(items.iter().map(|v| int(v) as i32).collect()),
        VR::UV => PrimitiveValue::U64(items.iter().map(|v| v.as_u64().unwrap_or(0)).collect()),
        VR::SV => PrimitiveValue::I64(items.iter().map(int).collect()),
        VR::FL => PrimitiveValue::F32(items.iter().map(|v| float(v) as f32).collect()),
        VR::FD => PrimitiveValue::F64(items.iter().map(float).collect()),
        VR::AT => PrimitiveValue::Tags(
            items
                .iter()
                .filter_map(|v| v.as_str().and_then(tag_of))
                .collect(),
        ),
        _ => PrimitiveValue::Strs(
            items
                .iter()
                .map(|v| match v {
                    Json::String(text) => text.clone(),
                    Json::Null => String::new(),
                    other => other.to_string(),
                })
                .collect(),
        ),
    }
}

/// The data set of a DICOM JSON object (PS3.18 F.2): tag keys, `vr`,
/// `Value` (person names as component groups), `InlineBinary`. Bulk data
/// URIs are refused: the values must be in the document.
pub fn from_json(value: &Json) -> Result<InMemDicomObject, String> {
    let map = match value {
        Json::Object(map) => map,
        Json::Array(items) if items.len() == 1 && items[0].is_object() => {
            items[0].as_object().expect("checked")
        }
        _ => return Err("DICOM JSON is one object of attributes (or an array of one)".into()),
    };
    let mut object = InMemDicomObject::new_empty();
    for (key, attribute) in map {
        let tag = (key.len() == 8)
            .then(|| tag_of(key))
            .flatten()
            .ok_or_else(|| format!("'{key}' is not a tag of 8 hexadecimal digits"))?;
        let vr: VR = attribute["vr"]
            .as_str()
            .and_then(|vr| vr.parse().ok())
            .ok_or_else(|| format!("{key} has no valid vr"))?;
        if attribute.get("BulkDataURI").is_some() {
            return Err(format!("{key} is a BulkDataURI; put its value in the file"));
        }
        let element = if vr == VR::SQ {
            let items = attribute["Value"]
                .as_array()
                .map(|items| items.iter().map(from_json).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default();
            DataElement::new(
                tag,
                vr,
                Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
            )
        } else if let Some(binary) = attribute.get("InlineBinary") {
            DataElement::new(tag, vr, primitive(vr, binary))
        } else {
            let values: Vec<Json> = attribute["Value"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(|value| match value {
                            Json::Object(groups) if vr == VR::PN => {
                                let group = |name: &str| {
                                    groups.get(name).and_then(Json::as_str).unwrap_or("")
                                };
                                let joined = format!(
                                    "{}={}={}",
                                    group("Alphabetic"),
                                    group("Ideographic"),
                                    group("Phonetic")
                                );
                                json!(joined.trim_end_matches('='))
                            }
                            Json::Number(n) if matches!(vr, VR::IS | VR::DS) => {
                                json!(n.to_string())
                            }
                            other => other.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            DataElement::new(tag, vr, primitive(vr, &Json::Array(values)))
        };
        object.put(element);
    }
    Ok(object)
}

/// Binary values larger than this are sent as a `BulkDataURI` (the
/// service's documented threshold: 1 MB).
pub const BULK_DATA_THRESHOLD: usize = 1_000_000;

/// The name of the binary attribute at `path` (tags from the top level
/// down, with item numbers between), as its bulk data URI ends.
pub fn bulk_data_hash(path: &str) -> String {
    let digest = sha2::Sha256::digest(path.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The DICOM JSON object of `object` (PS3.18 F.2). A binary value larger
/// than [`BULK_DATA_THRESHOLD`] becomes `{"vr":"UN","BulkDataURI":…}` with
/// URI `{bulk_base}/bulkdata/{hash}{suffix}`.
pub fn to_json(object: &InMemDicomObject, bulk_base: &str, suffix: &str) -> Json {
    to_json_at(
        object,
        &|hash| format!("{bulk_base}/bulkdata/{hash}{suffix}"),
        "",
    )
}

fn to_json_at(object: &InMemDicomObject, uri: &dyn Fn(&str) -> String, prefix: &str) -> Json {
    let mut map = Map::new();
    for element in object {
        let tag = element.tag();
        let key = format!("{:04X}{:04X}", tag.group(), tag.element());
        let path = format!("{prefix}{key}");
        let vr = element.vr();
        let mut attribute = Map::new();
        attribute.insert("vr".into(), json!(vr.to_string()));
        match element.value() {
            Value::Sequence(sequence) => {
                let items: Vec<Json> = sequence
                    .items()
                    .iter()
                    .enumerate()
                    .map(|(n, item)| to_json_at(item, uri, &format!("{path}/{n}/")))
                    .collect();
                if !items.is_empty() {
                    attribute.insert("Value".into(), Json::Array(items));
                }
            }
            Value::PixelSequence(_) => continue,
            Value::Primitive(primitive) => {
                if primitive.multiplicity() > 0 {
                    match vr {
                        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN => {
                            let bytes = primitive.to_bytes();
                            if bytes.len() > BULK_DATA_THRESHOLD {
                                attribute.insert("vr".into(), json!("UN"));
                                attribute.insert(
                                    "BulkDataURI".into(),
                                    json!(uri(&bulk_data_hash(&path))),
                                );
                            } else {
                                attribute.insert(
                                    "InlineBinary".into(),
                                    json!(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                                );
                            }
                        }
                        _ => {
                            attribute.insert("Value".into(), Json::Array(values(vr, primitive)));
                        }
                    }
                }
            }
        }
        map.insert(key, Json::Object(attribute));
    }
    Json::Object(map)
}

fn values(vr: VR, primitive: &PrimitiveValue) -> Vec<Json> {
    match vr {
        VR::US | VR::SS | VR::UL | VR::SL | VR::SV => primitive
            .to_multi_int::<i64>()
            .unwrap_or_default()
            .into_iter()
            .map(Json::from)
            .collect(),
        VR::UV => primitive
            .to_multi_int::<u64>()
            .unwrap_or_default()
            .into_iter()
            .map(Json::from)
            .collect(),
        VR::FL | VR::FD => primitive
            .to_multi_float64()
            .unwrap_or_default()
            .into_iter()
            .map(number)
            .collect(),
        VR::AT => match primitive {
            PrimitiveValue::Tags(tags) => tags
                .iter()
                .map(|t| json!(format!("{:04X}{:04X}", t.group(), t.element())))
                .collect(),
            _ => Vec::new(),
        },
        _ => primitive
            .to_multi_str()
            .iter()
            .map(|text| text_value(vr, text.trim_end_matches(['\0', ' ']).trim_start()))
            .collect(),
    }
}

fn number(n: f64) -> Json {
    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// One value of a text VR: DS and IS as numbers (PS3.18 F.2.3), PN as its
/// component groups, empty as `null`.
fn text_value(vr: VR, text: &str) -> Json {
    if text.is_empty() {
        return Json::Null;
    }
    match vr {
        VR::IS => text.parse::<i64>().map_or_else(|_| json!(text), Json::from),
        VR::DS => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map_or_else(|| json!(text), number),
        VR::PN => {
            let mut groups = Map::new();
            for (name, group) in ["Alphabetic", "Ideographic", "Phonetic"]
                .iter()
                .zip(text.split('='))
            {
                // Trailing empty components carry nothing (PS3.5 6.2).
                let group = group.trim_end_matches('^');
                if !group.is_empty() {
                    groups.insert((*name).into(), json!(group));
                }
            }
            Json::Object(groups)
        }
        _ => json!(text),
    }
}

/// The bytes of the binary attribute whose bulk data hash is `hash`.
pub fn bulk_data(object: &InMemDicomObject, hash: &str) -> Option<Vec<u8>> {
    find_bulk(object, hash, "")
}

fn find_bulk(object: &InMemDicomObject, hash: &str, prefix: &str) -> Option<Vec<u8>> {
    for element in object {
        let tag = element.tag();
        let path = format!("{prefix}{:04X}{:04X}", tag.group(), tag.element());
        match element.value() {
            Value::Sequence(sequence) => {
                for (n, item) in sequence.items().iter().enumerate() {
                    if let Some(found) = find_bulk(item, hash, &format!("{path}/{n}/")) {
                        return Some(found);
                    }
                }
            }
            Value::Primitive(primitive) if bulk_data_hash(&path) == hash => {
                return Some(primitive.to_bytes().into_owned());
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn keywords_and_private_tags_resolve_with_their_vrs() {
        assert_eq!(tag_of("PatientName"), Some(tags::PATIENT_NAME));
        assert_eq!(tag_of("00091001"), Some(Tag(0x0009, 0x1001)));
        assert_eq!(tag_of("NotAKeyword"), None);
        assert_eq!(vr_of(tags::PATIENT_NAME, None), VR::PN);
        assert_eq!(vr_of(tags::SMALLEST_IMAGE_PIXEL_VALUE, Some("SS")), VR::SS);
        assert_eq!(vr_of(tags::SMALLEST_IMAGE_PIXEL_VALUE, None), VR::US);
    }

    #[test]
    fn a_document_object_becomes_dicom_json() {
        let document = json!({
            "PatientName": "DOE^JANE=^=",
            "PatientID": "P1",
            "SeriesNumber": "3 ",
            "SliceThickness": "2.50",
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "Rows": 512,
            "SmallestImagePixelValue": -12,
            "PixelSpacing": ["0.5", "0.5"],
            "AccessionNumber": null,
            "ReferencedSeriesSequence": [{ "SeriesInstanceUID": "1.2.3" }],
            "FrameIncrementPointer": "00181063",
            "00091001": "private",
            "RedPaletteColorLookupTableData": "AAEC",
        });
        let vrs = json!({ "SmallestImagePixelValue": "SS", "00091001": "LO" });
        let object = object(
            document.as_object().unwrap(),
            Some(vrs.as_object().unwrap()),
        );
        let out = to_json(&object, "http://h/x", "");
        assert_eq!(
            out["00100010"],
            json!({"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]})
        );
        assert_eq!(out["00200011"], json!({"vr": "IS", "Value": [3]}));
        assert_eq!(out["00180050"], json!({"vr": "DS", "Value": [2.5]}));
        assert_eq!(
            out["00080008"],
            json!({"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]})
        );
        assert_eq!(out["00280010"], json!({"vr": "US", "Value": [512]}));
        assert_eq!(out["00280106"], json!({"vr": "SS", "Value": [-12]}));
        assert_eq!(out["00080050"], json!({"vr": "SH"}));
        assert_eq!(
            out["00081115"]["Value"][0]["0020000E"],
            json!({"vr": "UI", "Value": ["1.2.3"]})
        );
        assert_eq!(out["00280009"], json!({"vr": "AT", "Value": ["00181063"]}));
        assert_eq!(out["00091001"], json!({"vr": "LO", "Value": ["private"]}));
        assert_eq!(out["00281201"], json!({"vr": "OW", "InlineBinary": "AAEC"}));
    }

    #[test]
    fn dicom_json_reads_back_into_the_same_data_set() {
        let document = json!({
            "PatientName": "DOE^JANE",
            "SeriesNumber": "3",
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "Rows": 512,
            "ReferencedSeriesSequence": [{ "SeriesInstanceUID": "1.2.3" }],
            "RedPaletteColorLookupTableData": "AAEC",
        });
        let object = object(document.as_object().unwrap(), None);
        let json = to_json(&object, "http://h", "");
        let back = from_json(&json).unwrap();
        assert_eq!(to_json(&back, "http://h", ""), json);
        assert!(from_json(&json!({"PatientName": {"vr": "PN"}})).is_err());
        assert!(from_json(&json!({"00100010": {"vr": "ZZ"}})).is_err());
        assert!(from_json(&json!({"00100010": {"vr": "PN", "BulkDataURI": "x"}})).is_err());
        assert!(from_json(&json!([1, 2])).is_err());
    }

    #[test]
    fn large_binaries_are_bulk_data_and_can_be_found_again() {
        let mut object = InMemDicomObject::new_empty();
        let big = vec![7u8; BULK_DATA_THRESHOLD + 2];
        object.put(DataElement::new(
            Tag(0x0009, 0x1010),
            VR::OB,
            PrimitiveValue::U8(big.clone().into()),
        ));
        let out = to_json(&object, "http://h/base", "?imageSetId=x");
        let uri = out["00091010"]["BulkDataURI"].as_str().unwrap();
        assert_eq!(out["00091010"]["vr"], "UN");
        let hash = uri
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches("?imageSetId=x");
        assert!(uri.ends_with("?imageSetId=x"));
        assert!(uri.starts_with("http://h/base/bulkdata/"));
        assert_eq!(bulk_data(&object, hash), Some(big));
        assert_eq!(bulk_data(&object, "00"), None);
    }
}
