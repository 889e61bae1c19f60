//! One input file: read it as DICOM Part 10, store its frames, describe it.
//!
//! An import reads each file twice: its header first ([`read_header`]),
//! to group the files into image sets without holding their pixels, then
//! whole ([`read`]), one image set at a time.

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;

use super::overrides::Overrides;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};
use serde_json::Value as Json;

use super::frames::{self, EncodedFrame, FrameError};
use crate::metadata::combine::{GroupingKey, grouping_key_of};
use crate::store::LosslessStorageFormat;

/// What grouping needs of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// The attributes that decide which image set the instance joins.
    pub key: GroupingKey,
}

/// An instance read and ready to group: its one-instance metadata document
/// (the frames still without IDs) and its encoded frames.
#[derive(Debug, Clone)]
pub struct ReadInstance {
    /// The input key.
    pub key: String,
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// SOPInstanceUID.
    pub sop_uid: String,
    /// The metadata document of an image set holding only this instance.
    pub document: Json,
    /// The frames, in order.
    pub frames: Vec<EncodedFrame>,
    /// `StoredTransferSyntaxUID`.
    pub stored_transfer_syntax: String,
    /// Time spent encoding and verifying frames.
    pub encode_time: std::time::Duration,
}

/// Why a file was not imported: a line of `failure.ndjson`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `exception.exceptionType`.
    pub exception_type: &'static str,
    /// `exception.message`.
    pub message: String,
    /// Whether the fault is the service's (`numberOfFilesWithServerError`)
    /// rather than the file's.
    pub server_error: bool,
}

impl Failure {
    pub(super) fn customer(exception_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            exception_type,
            message: message.into(),
            server_error: false,
        }
    }
}

/// The UIDs every instance must carry.
struct Uids {
    study: String,
    series: String,
    sop: String,
}

fn uids(file: &FileDicomObject<InMemDicomObject>) -> Result<Uids, Failure> {
    let uid = |tag, name: &str| -> Result<String, Failure> {
        file.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Failure::customer(
                    "MissingRequiredAttributeException",
                    format!("The data set has no {name}"),
                )
            })
    };
    Ok(Uids {
        study: uid(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
        series: uid(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
        sop: uid(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
    })
}

fn not_dicom(error: impl std::fmt::Display) -> Failure {
    Failure::customer(
        "InvalidDicomFileException",
        format!("The file is not a readable DICOM Part 10 file: {error}"),
    )
}

/// Reads the header of a file (everything before its pixel data) from
/// `reader`, for grouping.
pub fn read_header(reader: impl std::io::Read, overrides: &Overrides) -> Result<Header, Failure> {
    let mut file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .read_until(tags::PIXEL_DATA)
        .from_reader(std::io::BufReader::new(reader))
        .map_err(not_dicom)?;
    overrides.apply(&mut file);
    let uids = uids(&file)?;
    Ok(Header {
        key: grouping_key_of(&file),
        series_uid: uids.series,
    })
}

/// Reads the file `key` holding `bytes`.
pub fn read(
    key: &str,
    bytes: &[u8],
    format: LosslessStorageFormat,
    overrides: &Overrides,
) -> Result<ReadInstance, Failure> {
    let mut file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .from_reader(bytes)
        .map_err(not_dicom)?;
    overrides.apply(&mut file);
    let uids = uids(&file)?;
    let source_syntax = file
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let stored = frames::store(&file, &source_syntax, format).map_err(|error| match error {
        FrameError::Invalid(message) => Failure::customer("InvalidPixelDataException", message),
        FrameError::Unsupported(message) => {
            Failure::customer("UnsupportedTransferSyntaxException", message)
        }
        FrameError::Codec(message) => Failure {
            exception_type: "InternalServerException",
            message,
            server_error: true,
        },
    })?;
    let record = crate::metadata::InstanceRecord {
        meta: file.meta(),
        dataset: &file,
        stored_transfer_syntax: &stored.transfer_syntax,
        frames: &[],
    };
    let document = crate::metadata::document("", "", &[record]);
    Ok(ReadInstance {
        key: key.to_owned(),
        study_uid: uids.study,
        series_uid: uids.series,
        sop_uid: uids.sop,
        document,
        frames: stored.frames,
        stored_transfer_syntax: stored.transfer_syntax,
        encode_time: stored.encode_time,
    })
}

#[cfg(test)]
mod tests {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;

    use super::*;

    #[test]
    fn explicit_big_endian_pixels_are_read_in_their_byte_order_and_transcoded() {
        let mut object = InMemDicomObject::new_empty();
        for (tag, vr, value) in [
            (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
            (tags::SOP_INSTANCE_UID, VR::UI, "2.25.7.1.1"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "2.25.7"),
            (tags::SERIES_INSTANCE_UID, VR::UI, "2.25.7.1"),
            (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        ] {
            object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        for (tag, value) in [
            (tags::ROWS, 2u16),
            (tags::COLUMNS, 2),
            (tags::SAMPLES_PER_PIXEL, 1),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 16),
            (tags::HIGH_BIT, 15),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        }
        let pixels = [1u16, 256, 513, 65535];
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.to_vec().into()),
        ));
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("2.25.7.1.1")
            .transfer_syntax("1.2.840.10008.1.2.2")
            .build()
            .unwrap();
        let mut bytes = Vec::new();
        object.with_exact_meta(meta).write_all(&mut bytes).unwrap();
        assert_eq!(
            &bytes[bytes.len() - 8..],
            &[0, 1, 1, 0, 2, 1, 255, 255],
            "written big endian"
        );

        let read = read(
            "be.dcm",
            &bytes,
            LosslessStorageFormat::Htj2k,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(read.stored_transfer_syntax, frames::HTJ2K_RPCL);
        let frame = &read.frames[0];
        let little: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
        assert_eq!(
            frame.checksum,
            crc32fast::hash(&little),
            "the checksum of the pixel values"
        );
        assert_eq!((frame.min, frame.max), (1, 65535));
        let decoded = healthimaging_codec::jpeg2000::decode(&frame.bytes).unwrap();
        assert_eq!(decoded.samples, pixels.map(i32::from).to_vec());
    }
}
