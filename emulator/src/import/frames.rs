//! Frames: from an instance's pixel data to what HealthImaging stores.
//!
//! Lossless input (native pixel data in any byte order, JPEG 2000 lossless,
//! HTJ2K lossless, RLE lossless, JPEG lossless, JPEG-LS; and JPEG-LS
//! near-lossless, its decoded pixels kept exactly) is stored in the datastore's lossless format: HTJ2K lossless RPCL
//! (`1.2.840.10008.1.2.4.202`) or JPEG 2000 lossless (`.4.90`). Every stored
//! codestream is decoded again and compared with the source samples before
//! it is accepted, so a frame is never stored lossy by accident. Lossy
//! JPEG 2000 and HTJ2K (`.4.91`, `.4.203`) and 8-bit JPEG baseline (`.4.50`)
//! are kept as imported, with the checksum of their decoded pixels.
//!
//! The checksum HealthImaging reports, `PixelDataChecksumFromBaseToFullResolution`,
//! is the CRC32 of the decoded pixel buffer: samples in row order, components
//! interleaved, one byte each up to 8 bits allocated, two (little endian)
//! otherwise.

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use healthimaging_codec::{Layout, htj2k, jpeg2000};

use super::decode;
use crate::store::LosslessStorageFormat;

/// HTJ2K lossless RPCL.
pub const HTJ2K_RPCL: &str = "1.2.840.10008.1.2.4.202";
/// JPEG 2000 lossless.
pub const JPEG2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
/// Explicit VR little endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// Native pixel data. dicom-object reads Explicit VR Big Endian (retired,
/// still met in archives) into values, so its bytes come out little endian.
const NATIVE: [&str; 4] = [
    "1.2.840.10008.1.2",
    EXPLICIT_LE,
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
];
const LOSSLESS_J2K: [&str; 3] = [JPEG2000_LOSSLESS, "1.2.840.10008.1.2.4.201", HTJ2K_RPCL];
const KEPT_J2K: [&str; 2] = ["1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"];
/// JPEG baseline (process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// RLE Lossless: decoded and stored in the lossless storage format.
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG Lossless (process 14, and its first-order prediction subset):
/// decoded and stored in the lossless storage format.
const JPEG_LOSSLESS: [&str; 2] = ["1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"];
/// JPEG-LS lossless and near-lossless: decoded (CharLS) and stored in the
/// lossless storage format, the near-lossless pixels exactly as decoded.
const JPEG_LS: [&str; 2] = ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"];

/// A frame ready to store.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The stored codestream.
    pub bytes: Vec<u8>,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// CRC32 of the decoded pixel buffer.
    pub checksum: u32,
    /// Smallest sample.
    pub min: i64,
    /// Largest sample.
    pub max: i64,
}

/// The frames of an instance and the syntax they are stored in.
#[derive(Debug, Clone)]
pub struct StoredFrames {
    /// `StoredTransferSyntaxUID`.
    pub transfer_syntax: String,
    /// The frames, in order.
    pub frames: Vec<EncodedFrame>,
    /// Time spent encoding and verifying.
    pub encode_time: std::time::Duration,
}

/// Why an instance's frames could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The pixel data is malformed or does not match its description.
    #[error("{0}")]
    Invalid(String),
    /// The emulator does not store this kind of pixel data.
    #[error("{0}")]
    Unsupported(String),
    /// Encoding or verification failed: the emulator's fault.
    #[error("{0}")]
    Codec(String),
}

/// The pixel description of an image.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pixels {
    pub(super) rows: u32,
    pub(super) columns: u32,
    pub(super) samples_per_pixel: u32,
    pub(super) bits_allocated: u32,
    pub(super) bits_stored: u32,
    pub(super) signed: bool,
    pub(super) planar: bool,
    pub(super) frames: usize,
}

impl Pixels {
    fn read(object: &InMemDicomObject) -> Result<Self, FrameError> {
        let int = |tag, name: &str| -> Result<u32, FrameError> {
            object
                .element(tag)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok())
                .ok_or_else(|| FrameError::Invalid(format!("The image has no valid {name}")))
        };
        let frames = object
            .element(tags::NUMBER_OF_FRAMES)
            .ok()
            .and_then(|e| e.to_str().ok().and_then(|s| s.trim().parse::<usize>().ok()))
            .unwrap_or(1);
        let bits_allocated = int(tags::BITS_ALLOCATED, "BitsAllocated")?;
        Ok(Self {
            rows: int(tags::ROWS, "Rows")?,
            columns: int(tags::COLUMNS, "Columns")?,
            samples_per_pixel: int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?,
            bits_allocated,
            bits_stored: int(tags::BITS_STORED, "BitsStored").unwrap_or(bits_allocated),
            signed: int(tags::PIXEL_REPRESENTATION, "PixelRepresentation").unwrap_or(0) == 1,
            planar: int(tags::PLANAR_CONFIGURATION, "PlanarConfiguration").unwrap_or(0) == 1,
            frames: frames.max(1),
        })
    }

    fn layout(&self) -> Layout {
        Layout {
            columns: self.columns,
            rows: self.rows,
            components: self.samples_per_pixel,
            precision: self.bits_stored,
            signed: self.signed,
        }
    }

    fn frame_samples(&self) -> usize {
        self.rows as usize * self.columns as usize * self.samples_per_pixel as usize
    }
}

/// Stores the frames of `object`, read in `source_syntax`.
pub fn store(
    object: &InMemDicomObject,
    source_syntax: &str,
    format: LosslessStorageFormat,
) -> Result<StoredFrames, FrameError> {
    let Ok(element) = object.element(tags::PIXEL_DATA) else {
        return Ok(StoredFrames {
            transfer_syntax: EXPLICIT_LE.to_owned(),
            frames: Vec::new(),
            encode_time: std::time::Duration::ZERO,
        });
    };
    let pixels = Pixels::read(object)?;
    if !matches!(pixels.bits_allocated, 8 | 16) || !matches!(pixels.samples_per_pixel, 1 | 3) {
        return Err(FrameError::Unsupported(format!(
            "Only 8- and 16-bit images of 1 or 3 samples per pixel are stored; this one has {} bits allocated and {} samples",
            pixels.bits_allocated, pixels.samples_per_pixel
        )));
    }
    let started = std::time::Instant::now();
    let target = match format {
        LosslessStorageFormat::Htj2k => HTJ2K_RPCL,
        LosslessStorageFormat::Jpeg2000Lossless => JPEG2000_LOSSLESS,
    };
    let mut frames = Vec::with_capacity(pixels.frames);
    let transfer_syntax;
    if NATIVE.contains(&source_syntax) {
        let bytes = element
            .to_bytes()
            .map_err(|e| FrameError::Invalid(format!("Could not read the pixel data: {e}")))?;
        let frame_bytes = pixels.frame_samples() * (pixels.bits_allocated as usize / 8);
        if bytes.len() < frame_bytes * pixels.frames {
            return Err(FrameError::Invalid(format!(
                "The pixel data holds {} bytes; {} frames of {}x{} need {}",
                bytes.len(),
                pixels.frames,
                pixels.columns,
                pixels.rows,
                frame_bytes * pixels.frames
            )));
        }
        for n in 0..pixels.frames {
            let samples = decode::native(&bytes[n * frame_bytes..(n + 1) * frame_bytes], &pixels);
            frames.push(encode_verified(&samples, &pixels, target)?);
        }
        transfer_syntax = target;
    } else if LOSSLESS_J2K.contains(&source_syntax) || KEPT_J2K.contains(&source_syntax) {
        let keep = KEPT_J2K.contains(&source_syntax) || source_syntax == target;
        for codestream in codestreams(element.value(), pixels.frames)? {
            let decoded = jpeg2000::decode(&codestream)
                .map_err(|e| FrameError::Invalid(format!("Could not decode a frame: {e}")))?;
            if decoded.samples.len() != pixels.frame_samples() {
                return Err(FrameError::Invalid(format!(
                    "A frame decodes to {} samples; the image describes {}",
                    decoded.samples.len(),
                    pixels.frame_samples()
                )));
            }
            if keep {
                frames.push(describe(codestream, &decoded.samples, &pixels));
            } else {
                frames.push(encode_verified(&decoded.samples, &pixels, target)?);
            }
        }
        transfer_syntax = if keep { source_syntax } else { target };
    } else if source_syntax == JPEG_BASELINE {
        for codestream in codestreams(element.value(), pixels.frames)? {
            let samples = decode::jpeg_baseline(&codestream)?;
            if samples.len() != pixels.frame_samples() {
                return Err(FrameError::Invalid(format!(
                    "A frame decodes to {} samples; the image describes {}",
                    samples.len(),
                    pixels.frame_samples()
                )));
            }
            frames.push(describe(codestream, &samples, &pixels));
        }
        transfer_syntax = JPEG_BASELINE;
    } else if JPEG_LS.contains(&source_syntax) {
        for codestream in codestreams(element.value(), pixels.frames)? {
            let decoded = healthimaging_codec::jpeg_ls::decode_signed(&codestream, pixels.signed)
                .map_err(|e| {
                FrameError::Invalid(format!("Could not decode a JPEG-LS frame: {e}"))
            })?;
            if decoded.samples.len() != pixels.frame_samples() {
                return Err(FrameError::Invalid(format!(
                    "A frame decodes to {} samples; the image describes {}",
                    decoded.samples.len(),
                    pixels.frame_samples()
                )));
            }
            frames.push(encode_verified(&decoded.samples, &pixels, target)?);
        }
        transfer_syntax = target;
    } else if source_syntax == RLE_LOSSLESS || JPEG_LOSSLESS.contains(&source_syntax) {
        let encoded = if source_syntax == RLE_LOSSLESS {
            rle_frames(element.value(), pixels.frames)?
        } else {
            codestreams(element.value(), pixels.frames)?
        };
        for frame in encoded {
            let samples = if source_syntax == RLE_LOSSLESS {
                decode::rle(&frame, &pixels)?
            } else {
                decode::jpeg_lossless(&frame, &pixels)?
            };
            if samples.len() != pixels.frame_samples() {
                return Err(FrameError::Invalid(format!(
                    "A frame decodes to {} samples; the image describes {}",
                    samples.len(),
                    pixels.frame_samples()
                )));
            }
            frames.push(encode_verified(&samples, &pixels, target)?);
        }
        transfer_syntax = target;
    } else {
        return Err(FrameError::Unsupported(format!(
            "Pixel data in transfer syntax {source_syntax} is not imported"
        )));
    }
    Ok(StoredFrames {
        transfer_syntax: transfer_syntax.to_owned(),
        frames,
        encode_time: started.elapsed(),
    })
}

/// One RLE frame per fragment (PS3.5 A.4.2: an RLE frame is never split);
/// a Basic Offset Table, if any, is not needed to find them.
fn rle_frames(value: &Value<InMemDicomObject>, frames: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let fragments = value
        .fragments()
        .ok_or_else(|| FrameError::Invalid("Encapsulated pixel data has no fragments".into()))?;
    if fragments.len() != frames {
        return Err(FrameError::Invalid(format!(
            "The RLE pixel data holds {} fragments; NumberOfFrames says {frames}",
            fragments.len()
        )));
    }
    Ok(fragments.to_vec())
}

/// One codestream per frame from encapsulated pixel data. Fragments are
/// grouped by the Basic Offset Table when it lists every frame, and otherwise
/// a new frame starts at each fragment opening with a J2K codestream marker.
fn codestreams(value: &Value<InMemDicomObject>, frames: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let fragments = value
        .fragments()
        .ok_or_else(|| FrameError::Invalid("Encapsulated pixel data has no fragments".into()))?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let offsets = value.offset_table().unwrap_or(&[]);
    let mut position = 0u32;
    for fragment in fragments {
        let starts = if offsets.len() == frames {
            offsets.contains(&position)
        } else {
            // A J2K codestream (SOC, SIZ) or a JPEG image (SOI) opens a frame.
            fragment.starts_with(&[0xff, 0x4f, 0xff, 0x51]) || fragment.starts_with(&[0xff, 0xd8])
        };
        match out.last_mut() {
            Some(current) if !starts => current.extend_from_slice(fragment),
            _ => out.push(fragment.clone()),
        }
        position += 8 + fragment.len() as u32;
    }
    if out.len() != frames {
        return Err(FrameError::Invalid(format!(
            "The pixel data holds {} frames; NumberOfFrames says {frames}",
            out.len()
        )));
    }
    Ok(out)
}

/// The CRC32 of the decoded pixel buffer of `samples` (see the module's
/// documentation), computed a block at a time without building the buffer.
pub fn checksum(samples: &[i32], bits_allocated: u32) -> u32 {
    const BLOCK: usize = 4096;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = [0u8; 2 * BLOCK];
    for block in samples.chunks(BLOCK) {
        let bytes = if bits_allocated <= 8 {
            for (byte, &sample) in buffer.iter_mut().zip(block) {
                *byte = sample as u8;
            }
            &buffer[..block.len()]
        } else {
            for (pair, &sample) in buffer.chunks_exact_mut(2).zip(block) {
                pair.copy_from_slice(&(sample as u16).to_le_bytes());
            }
            &buffer[..2 * block.len()]
        };
        hasher.update(bytes);
    }
    hasher.finalize()
}

fn describe(bytes: Vec<u8>, samples: &[i32], pixels: &Pixels) -> EncodedFrame {
    let (min, max) = samples.iter().fold((i32::MAX, i32::MIN), |(min, max), &s| {
        (min.min(s), max.max(s))
    });
    let (min, max) = if samples.is_empty() {
        (0, 0)
    } else {
        (i64::from(min), i64::from(max))
    };
    EncodedFrame {
        bytes,
        width: pixels.columns,
        height: pixels.rows,
        checksum: checksum(samples, pixels.bits_allocated),
        min,
        max,
    }
}

fn encode_verified(
    samples: &[i32],
    pixels: &Pixels,
    target: &str,
) -> Result<EncodedFrame, FrameError> {
    let layout = pixels.layout();
    let encode_failed = |e| FrameError::Codec(format!("Could not encode a frame: {e}"));
    let decode_failed =
        |e| FrameError::Codec(format!("Could not decode a stored frame again: {e}"));
    let (encoded, same) = if target == HTJ2K_RPCL {
        // OpenJPH's own decoder checks an HTJ2K frame: several times faster
        // than OpenJPEG's, and the tests read every stored frame of the
        // fixture sets back with OpenJPEG as well.
        let encoded = htj2k::encode(samples, layout).map_err(encode_failed)?;
        let same = htj2k::verify(&encoded, samples, layout).map_err(decode_failed)?;
        (encoded, same)
    } else {
        let encoded = jpeg2000::encode(samples, layout).map_err(encode_failed)?;
        let decoded = jpeg2000::decode(&encoded).map_err(decode_failed)?;
        let same = decoded.samples == samples;
        (encoded, same)
    };
    if !same {
        return Err(FrameError::Codec(
            "A stored frame does not decode to its source pixels; it was not stored".into(),
        ));
    }
    Ok(describe(encoded, samples, pixels))
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
