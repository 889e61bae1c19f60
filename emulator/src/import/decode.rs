//! Decoding the pixel data of imported instances to samples: native frames,
//! JPEG baseline (kept as imported; decoded for its checksum, by the
//! `jpeg-decoder` crate), and the lossless inputs the service transcodes, RLE
//! and JPEG lossless (the codec crate's decoders).
//!
//! Samples are integers, interleaved by pixel; a signed image's samples are
//! negative where its pixels are.

use healthimaging_codec::{
    CodecError, Layout, jpeg_lossless as jpeg_lossless_codec, rle as rle_codec,
};

use super::frames::{FrameError, Pixels};

/// The samples of a baseline JPEG image, interleaved.
pub(crate) fn jpeg_baseline(codestream: &[u8]) -> Result<Vec<i32>, FrameError> {
    let mut decoder = jpeg_decoder::Decoder::new(codestream);
    let pixels = decoder
        .decode()
        .map_err(|e| FrameError::Invalid(format!("Could not decode a JPEG frame: {e}")))?;
    match decoder.info().map(|info| info.pixel_format) {
        Some(jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::RGB24) => {
            Ok(pixels.iter().map(|&b| i32::from(b)).collect())
        }
        _ => Err(FrameError::Unsupported(
            "Only 8-bit grey or RGB JPEG baseline frames are imported".into(),
        )),
    }
}

/// Samples of a native frame, interleaved.
pub(super) fn native(bytes: &[u8], pixels: &Pixels) -> Vec<i32> {
    let samples: Vec<i32> = match (pixels.bits_allocated, pixels.signed) {
        (8, false) => bytes.iter().map(|&b| i32::from(b)).collect(),
        (8, true) => bytes.iter().map(|&b| i32::from(b as i8)).collect(),
        (_, true) => bytes
            .chunks_exact(2)
            .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        (_, false) => bytes
            .chunks_exact(2)
            .map(|b| i32::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
    };
    if pixels.planar && pixels.samples_per_pixel == 3 {
        let plane = samples.len() / 3;
        (0..plane)
            .flat_map(|i| [samples[i], samples[plane + i], samples[2 * plane + i]])
            .collect()
    } else {
        samples
    }
}

/// The samples of an RLE frame. RLE segments hold the bit patterns of
/// `BitsAllocated`-bit samples.
pub(super) fn rle(frame: &[u8], pixels: &Pixels) -> Result<Vec<i32>, FrameError> {
    let layout = Layout {
        columns: pixels.columns,
        rows: pixels.rows,
        components: pixels.samples_per_pixel,
        precision: pixels.bits_allocated,
        signed: pixels.signed,
    };
    rle_codec::decode(frame, layout)
        .map_err(|e| FrameError::Invalid(format!("Could not decode an RLE frame: {e}")))
}

/// The samples of a lossless JPEG image (one component). Its precision may
/// be `BitsStored` or `BitsAllocated`: a signed sample is sign-extended from
/// `BitsStored` either way.
pub(super) fn jpeg_lossless(codestream: &[u8], pixels: &Pixels) -> Result<Vec<i32>, FrameError> {
    let mut samples = match jpeg_lossless_codec::decode(codestream) {
        Ok(decoded) => decoded.samples,
        Err(CodecError::JpegLosslessUnsupported(what)) => {
            return Err(FrameError::Unsupported(format!(
                "Lossless JPEG frames with {what} are not imported"
            )));
        }
        Err(e) => {
            return Err(FrameError::Invalid(format!(
                "Could not decode a lossless JPEG frame: {e}"
            )));
        }
    };
    if pixels.signed {
        let stored = pixels.bits_stored.clamp(1, 16);
        let unused = 32 - stored;
        for sample in &mut samples {
            // The low `stored` bits, sign-extended.
            *sample = (*sample << unused) >> unused;
        }
    }
    Ok(samples)
}
