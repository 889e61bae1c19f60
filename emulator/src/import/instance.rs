//! One input file: read it as DICOM Part 10, store its frames, describe it.

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use serde_json::Value as Json;

use super::frames::{self, EncodedFrame, FrameError};
use crate::store::LosslessStorageFormat;

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
    fn customer(exception_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            exception_type,
            message: message.into(),
            server_error: false,
        }
    }
}

/// Reads the file `key` holding `bytes`.
pub fn read(
    key: &str,
    bytes: &[u8],
    format: LosslessStorageFormat,
) -> Result<ReadInstance, Failure> {
    let file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .from_reader(bytes)
        .map_err(|e| {
            Failure::customer(
                "InvalidDicomFileException",
                format!("The file is not a readable DICOM Part 10 file: {e}"),
            )
        })?;
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
    let study_uid = uid(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?;
    let series_uid = uid(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?;
    let sop_uid = uid(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?;
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
        study_uid,
        series_uid,
        sop_uid,
        document,
        frames: stored.frames,
        stored_transfer_syntax: stored.transfer_syntax,
        encode_time: stored.encode_time,
    })
}
