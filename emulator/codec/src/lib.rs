//! The lossless image codecs of HealthImaging storage.
//!
//! HealthImaging stores lossless frames as HTJ2K (High-Throughput JPEG 2000,
//! ISO/IEC 15444-15; DICOM transfer syntax 1.2.840.10008.1.2.4.202, the
//! default) or as JPEG 2000 lossless (1.2.840.10008.1.2.4.90). This crate
//! encodes both from samples in memory and decodes both back:
//!
//! - [`htj2k::encode`]: OpenJPH, through a small C++ shim (Debian package
//!   `libopenjph-dev`);
//! - [`jpeg2000::encode`] and [`jpeg2000::decode`]: OpenJPEG, built from the
//!   sources bundled in `openjpeg-sys`; its decoder reads HTJ2K as well.
//!
//! [`jpeg_ls::decode`] reads JPEG-LS input through CharLS (Debian package
//! `libcharls-dev`). Two lossless input formats of DICOM, which the service
//! transcodes, are here as well: [`rle`] (encode and decode, PS3.5 Annex G) and
//! [`jpeg_lossless`] (process 14: a decoder for every predictor, and an
//! encoder for fixtures and tests).
//!
//! ```
//! use healthimaging_codec::{Layout, htj2k, jpeg2000};
//!
//! let layout = Layout { columns: 4, rows: 2, components: 1, precision: 12, signed: false };
//! let samples = vec![0, 1, 2, 3, 4095, 2048, 7, 9];
//! let codestream = htj2k::encode(&samples, layout)?;
//! assert_eq!(jpeg2000::decode(&codestream)?.samples, samples);
//! # Ok::<(), healthimaging_codec::CodecError>(())
//! ```
#![warn(missing_docs)]

pub mod htj2k;
pub mod jpeg2000;
pub mod jpeg_lossless;
pub mod jpeg_ls;
pub mod rle;
#[cfg(test)]
mod testing;

/// Why a codestream could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The samples do not fill the image described.
    #[error("{samples} samples do not fill a {columns}×{rows} image of {components} components")]
    SampleCount {
        /// Samples given.
        samples: usize,
        /// Columns.
        columns: u32,
        /// Rows.
        rows: u32,
        /// Components per pixel.
        components: u32,
    },
    /// OpenJPEG refused or failed a step.
    #[error("OpenJPEG failed to {0}")]
    OpenJpeg(&'static str),
    /// An RLE frame could not be made or read.
    #[error("RLE frame with {0}")]
    Rle(&'static str),
    /// A lossless JPEG image could not be made.
    #[error("Lossless JPEG encoding does not take {0}")]
    JpegLossless(&'static str),
    /// A lossless JPEG image could not be read: it is malformed.
    #[error("{0}")]
    JpegLosslessInvalid(String),
    /// A lossless JPEG image of a kind the decoder does not read.
    #[error("Lossless JPEG images with {0} are not read")]
    JpegLosslessUnsupported(&'static str),
    /// CharLS failed a step of JPEG-LS decoding (with its error code).
    #[error("CharLS failed to {0} (code {1})")]
    CharLs(&'static str, i32),
    /// OpenJPH refused or failed (its code: 1 an error while encoding,
    /// 2 out of memory, 3 a layout it does not take).
    #[error("OpenJPH failed to encode (code {0})")]
    OpenJph(i32),
}

/// The layout of an image's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Columns.
    pub columns: u32,
    /// Rows.
    pub rows: u32,
    /// 1 (monochrome) or 3 (RGB, interleaved).
    pub components: u32,
    /// Bits per sample that carry data (`BitsStored`).
    pub precision: u32,
    /// Two's complement samples.
    pub signed: bool,
}

impl Layout {
    /// Checks that `samples` fill this layout.
    pub fn check(&self, samples: &[i32]) -> Result<(), CodecError> {
        let expected = self.columns as usize * self.rows as usize * self.components as usize;
        if samples.len() == expected {
            Ok(())
        } else {
            Err(CodecError::SampleCount {
                samples: samples.len(),
                columns: self.columns,
                rows: self.rows,
                components: self.components,
            })
        }
    }
}

/// A decoded image: its layout and its samples, interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The layout read from the codestream.
    pub layout: Layout,
    /// Samples in row order, components interleaved.
    pub samples: Vec<i32>,
}
