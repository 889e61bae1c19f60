//! JPEG-LS decoding (DICOM `1.2.840.10008.1.2.4.80` lossless and `.4.81`
//! near-lossless) through CharLS's C API (Debian package `libcharls-dev`).

use std::ffi::c_void;

use crate::{CodecError, Decoded, Layout};

#[repr(C)]
struct FrameInfo {
    width: u32,
    height: u32,
    bits_per_sample: i32,
    component_count: i32,
}

#[repr(C)]
struct Decoder {
    _private: [u8; 0],
}

#[link(name = "charls")]
unsafe extern "C" {
    fn charls_jpegls_decoder_create() -> *mut Decoder;
    fn charls_jpegls_decoder_destroy(decoder: *const Decoder);
    fn charls_jpegls_decoder_set_source_buffer(
        decoder: *mut Decoder,
        source: *const c_void,
        size: usize,
    ) -> i32;
    fn charls_jpegls_decoder_read_header(decoder: *mut Decoder) -> i32;
    fn charls_jpegls_decoder_get_frame_info(decoder: *const Decoder, info: *mut FrameInfo) -> i32;
    fn charls_jpegls_decoder_get_interleave_mode(decoder: *const Decoder, mode: *mut i32) -> i32;
    fn charls_jpegls_decoder_get_destination_size(
        decoder: *const Decoder,
        stride: u32,
        size: *mut usize,
    ) -> i32;
    fn charls_jpegls_decoder_decode_to_buffer(
        decoder: *mut Decoder,
        destination: *mut c_void,
        size: usize,
        stride: u32,
    ) -> i32;
}

/// A decoder destroyed when dropped.
struct Handle(*mut Decoder);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from charls_jpegls_decoder_create and is
        // destroyed once.
        unsafe { charls_jpegls_decoder_destroy(self.0) }
    }
}

fn check(code: i32, step: &'static str) -> Result<(), CodecError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CodecError::CharLs(step, code))
    }
}

/// Decodes a JPEG-LS codestream to samples, components interleaved. A
/// signed image's samples come back as the unsigned bit patterns of
/// `precision` bits; [`decode_signed`] sign-extends them.
pub fn decode(codestream: &[u8]) -> Result<Decoded, CodecError> {
    // SAFETY: every call gets a live decoder, and buffers of the sizes the
    // library itself reported; the source outlives the decoder's use of it.
    unsafe {
        let raw = charls_jpegls_decoder_create();
        if raw.is_null() {
            return Err(CodecError::CharLs("create a decoder", -1));
        }
        let handle = Handle(raw);
        check(
            charls_jpegls_decoder_set_source_buffer(
                handle.0,
                codestream.as_ptr().cast(),
                codestream.len(),
            ),
            "read the codestream",
        )?;
        check(
            charls_jpegls_decoder_read_header(handle.0),
            "read the header",
        )?;
        let mut info = FrameInfo {
            width: 0,
            height: 0,
            bits_per_sample: 0,
            component_count: 0,
        };
        check(
            charls_jpegls_decoder_get_frame_info(handle.0, &mut info),
            "read the frame information",
        )?;
        let mut mode = 0;
        check(
            charls_jpegls_decoder_get_interleave_mode(handle.0, &mut mode),
            "read the interleave mode",
        )?;
        let mut size = 0usize;
        check(
            charls_jpegls_decoder_get_destination_size(handle.0, 0, &mut size),
            "size the image",
        )?;
        let mut buffer = vec![0u8; size];
        check(
            charls_jpegls_decoder_decode_to_buffer(
                handle.0,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            ),
            "decode",
        )?;
        let wide = info.bits_per_sample > 8;
        let values: Vec<i32> = if wide {
            buffer
                .chunks_exact(2)
                .map(|b| i32::from(u16::from_ne_bytes([b[0], b[1]])))
                .collect()
        } else {
            buffer.iter().map(|&b| i32::from(b)).collect()
        };
        let components = u32::try_from(info.component_count).unwrap_or(1);
        let samples = if components > 1 && mode == 0 {
            // Interleave mode none: one plane per component.
            let plane = values.len() / components as usize;
            (0..plane)
                .flat_map(|i| (0..components as usize).map(move |c| (c, i)))
                .map(|(c, i)| values[c * plane + i])
                .collect()
        } else {
            values
        };
        Ok(Decoded {
            layout: Layout {
                columns: info.width,
                rows: info.height,
                components,
                precision: u32::try_from(info.bits_per_sample).unwrap_or(0),
                signed: false,
            },
            samples,
        })
    }
}

/// [`decode`], with the samples of a signed image sign-extended from
/// `precision` bits.
pub fn decode_signed(codestream: &[u8], signed: bool) -> Result<Decoded, CodecError> {
    let mut decoded = decode(codestream)?;
    if signed {
        let bits = decoded.layout.precision;
        if (1..32).contains(&bits) {
            let shift = 32 - bits;
            for sample in &mut decoded.samples {
                *sample = (*sample << shift) >> shift;
            }
        }
        decoded.layout.signed = true;
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        assert!(decode(b"not a JPEG-LS codestream").is_err());
        assert!(decode(&[]).is_err());
    }
}
