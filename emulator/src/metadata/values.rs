//! One DICOM attribute as a value of the metadata document (PS3.18-like, but
//! keyed by keyword and without VR wrappers).
//!
//! - text VRs: strings; DS and IS keep their space padding (`"1 "`), every
//!   other text VR loses it, and UIDs lose their NUL padding;
//! - binary numbers (US, SS, UL, SL, UV, SV, FL, FD): JSON numbers;
//! - attributes whose VM allows several values: arrays, even of one value;
//! - empty values: `null`;
//! - sequences: arrays of objects built by the same rules;
//! - bulk binary (OB, OW, UN and the like): base64 strings;
//! - AT: the tag as 8 hexadecimal digits.

use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use serde_json::{Map, Value as Json, json};

use super::multi_valued::MULTI_VALUED;

/// Whether the standard allows `tag` more than one value.
pub fn multi_valued(tag: Tag) -> bool {
    let key = (u32::from(tag.group()) << 16) | u32::from(tag.element());
    MULTI_VALUED.binary_search(&key).is_ok()
}

/// The document value of `element`.
pub fn value(element: &InMemElement) -> Json {
    match element.value() {
        Value::Primitive(primitive) => primitive_value(element.tag(), element.vr(), primitive),
        Value::Sequence(sequence) => Json::Array(sequence.items().iter().map(object).collect()),
        // Encapsulated pixel data never enters the document.
        Value::PixelSequence(_) => Json::Null,
    }
}

/// The keyword-keyed object of a data set (a sequence item).
pub fn object(dataset: &InMemDicomObject) -> Json {
    let mut map = Map::new();
    for element in dataset {
        map.insert(super::keyword(element.tag()), value(element));
    }
    Json::Object(map)
}

fn primitive_value(tag: Tag, vr: VR, primitive: &PrimitiveValue) -> Json {
    if primitive.multiplicity() == 0 {
        return Json::Null;
    }
    let many = multi_valued(tag);
    let list = |values: Vec<Json>| -> Json {
        if many || values.len() > 1 {
            Json::Array(values)
        } else {
            values.into_iter().next().unwrap_or(Json::Null)
        }
    };
    match vr {
        VR::OB | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV | VR::UN => {
            json!(base64(&primitive.to_bytes()))
        }
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV => {
            let numbers: Vec<Json> = match primitive {
                PrimitiveValue::U16(v) => v.iter().map(|n| json!(n)).collect(),
                PrimitiveValue::I16(v) => v.iter().map(|n| json!(n)).collect(),
                PrimitiveValue::U32(v) => v.iter().map(|n| json!(n)).collect(),
                PrimitiveValue::I32(v) => v.iter().map(|n| json!(n)).collect(),
                PrimitiveValue::U64(v) => v.iter().map(|n| json!(n)).collect(),
                PrimitiveValue::I64(v) => v.iter().map(|n| json!(n)).collect(),
                other => other
                    .to_multi_int::<i64>()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| json!(n))
                    .collect(),
            };
            list(numbers)
        }
        VR::FL | VR::FD => {
            let numbers = primitive
                .to_multi_float64()
                .unwrap_or_default()
                .into_iter()
                .map(|n| json!(n))
                .collect();
            list(numbers)
        }
        VR::AT => {
            let tags: Vec<Json> = match primitive {
                PrimitiveValue::Tags(v) => v
                    .iter()
                    .map(|t| json!(format!("{:04X}{:04X}", t.group(), t.element())))
                    .collect(),
                _ => Vec::new(),
            };
            list(tags)
        }
        _ => {
            // Read the strings as stored: `to_multi_str` would trim the
            // space padding the service keeps.
            let raw: Vec<String> = match primitive {
                PrimitiveValue::Str(s) => vec![s.clone()],
                PrimitiveValue::Strs(v) => v.to_vec(),
                other => other.to_multi_str().to_vec(),
            };
            // The service keeps the padding of numbers in text (DS, IS) and
            // trims it from every other text VR (observed: "SeriesNumber": "1 ",
            // "PatientName": "NAME^NONE" for a padded "NAME^NONE ").
            let keep_padding = matches!(vr, VR::DS | VR::IS);
            let strings: Vec<Json> = raw
                .iter()
                .map(|s| {
                    let s = s.trim_end_matches('\0');
                    json!(if keep_padding {
                        s
                    } else {
                        s.trim_end_matches(' ')
                    })
                })
                .collect();
            list(strings)
        }
    }
}

/// Standard base64 with padding (RFC 4648), as the service encodes binaries.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use dicom_core::DataElement;
    use dicom_dictionary_std::tags;

    use super::*;

    fn element(tag: Tag, vr: VR, value: PrimitiveValue) -> Json {
        value_of(DataElement::new(tag, vr, value))
    }

    fn value_of(element: InMemElement) -> Json {
        value(&element)
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(&[0, 1]), "AAE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn text_keeps_padding_and_multiplicity_decides_arrays() {
        assert_eq!(
            element(tags::SERIES_NUMBER, VR::IS, PrimitiveValue::from("1 ")),
            json!("1 ")
        );
        assert_eq!(
            element(tags::WINDOW_CENTER, VR::DS, PrimitiveValue::from("40")),
            json!(["40"])
        );
        let spacing = PrimitiveValue::Strs(
            ["0.25".to_owned(), "0.25 ".to_owned()]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            element(tags::PIXEL_SPACING, VR::DS, spacing),
            json!(["0.25", "0.25 "])
        );
        assert_eq!(
            element(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3\0")
            ),
            json!("1.2.3")
        );
        assert_eq!(
            element(tags::PATIENT_SEX, VR::CS, PrimitiveValue::Empty),
            Json::Null
        );
        assert_eq!(
            element(tags::PATIENT_SEX, VR::CS, PrimitiveValue::from("F ")),
            json!("F")
        );
        assert_eq!(
            element(
                tags::PATIENT_NAME,
                VR::PN,
                PrimitiveValue::from("NAME^NONE ")
            ),
            json!("NAME^NONE")
        );
        let orientation =
            PrimitiveValue::Strs(["L".to_owned(), "P ".to_owned()].into_iter().collect());
        assert_eq!(
            element(tags::PATIENT_ORIENTATION, VR::CS, orientation),
            json!(["L", "P"])
        );
    }

    #[test]
    fn binary_numbers_are_numbers_and_bulk_is_base64() {
        assert_eq!(
            element(tags::ROWS, VR::US, PrimitiveValue::from(640u16)),
            json!(640)
        );
        assert_eq!(
            element(
                tags::FILE_META_INFORMATION_GROUP_LENGTH,
                VR::UL,
                PrimitiveValue::from(218u32)
            ),
            json!(218)
        );
        assert_eq!(
            element(
                tags::FILE_META_INFORMATION_VERSION,
                VR::OB,
                PrimitiveValue::U8([0u8, 1].into_iter().collect())
            ),
            json!("AAE=")
        );
        assert_eq!(
            element(
                tags::FRAME_INCREMENT_POINTER,
                VR::AT,
                PrimitiveValue::Tags([tags::FRAME_TIME].into_iter().collect())
            ),
            json!(["00181063"]),
            "FrameIncrementPointer is VM 1-n"
        );
    }

    #[test]
    fn the_table_knows_common_multi_valued_attributes() {
        for tag in [
            tags::IMAGE_TYPE,
            tags::PIXEL_SPACING,
            tags::IMAGE_POSITION_PATIENT,
            tags::SOFTWARE_VERSIONS,
            tags::WINDOW_WIDTH,
        ] {
            assert!(multi_valued(tag), "{tag}");
        }
        for tag in [
            tags::PATIENT_NAME,
            tags::ROWS,
            tags::SLICE_THICKNESS,
            tags::INSTANCE_NUMBER,
        ] {
            assert!(!multi_valued(tag), "{tag}");
        }
    }
}
