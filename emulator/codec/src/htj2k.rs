//! HTJ2K lossless codestreams with RPCL progression (transfer syntax
//! 1.2.840.10008.1.2.4.202, HealthImaging's default storage format),
//! through OpenJPH.
//!
//! The encoder is C++; `shim/htj2k.cpp` gives it a C interface that takes
//! interleaved samples and returns a `malloc`ed codestream, freed here with
//! the shim's own `free`. Decode with [`crate::jpeg2000::decode`] (OpenJPEG);
//! [`verify`] checks a codestream against its source samples with OpenJPH's
//! own decoder, the fast check an import makes of every frame.

use std::ffi::c_int;

use crate::{CodecError, Layout};

unsafe extern "C" {
    fn himcp_htj2k_encode(
        samples: *const i32,
        width: u32,
        height: u32,
        components: u32,
        bit_depth: u32,
        is_signed: c_int,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> c_int;
    fn himcp_htj2k_free(buffer: *mut u8);
    fn himcp_htj2k_verify(
        codestream: *const u8,
        length: usize,
        samples: *const i32,
        width: u32,
        height: u32,
        components: u32,
    ) -> c_int;
}

/// Encodes `samples` (row order, components interleaved) losslessly.
pub fn encode(samples: &[i32], layout: Layout) -> Result<Vec<u8>, CodecError> {
    layout.check(samples)?;
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: `samples` holds columns×rows×components values, as checked;
    // the shim writes `out`/`len` only on success, and the buffer it returns
    // is copied and then released by the matching free.
    let code = unsafe {
        himcp_htj2k_encode(
            samples.as_ptr(),
            layout.columns,
            layout.rows,
            layout.components,
            layout.precision,
            c_int::from(layout.signed),
            &mut out,
            &mut len,
        )
    };
    if code != 0 || out.is_null() {
        return Err(CodecError::OpenJph(code));
    }
    // SAFETY: on success `out` points at `len` initialised bytes.
    let codestream = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
    unsafe { himcp_htj2k_free(out) };
    Ok(codestream)
}

/// Whether `codestream` decodes (with OpenJPH) to exactly `samples`, the
/// image `layout` describes: the check an import makes of every frame it
/// stores, without building the decoded image.
pub fn verify(codestream: &[u8], samples: &[i32], layout: Layout) -> Result<bool, CodecError> {
    layout.check(samples)?;
    // SAFETY: both buffers live for the call with the lengths given; the
    // shim reads columns×rows×components samples, as checked.
    let code = unsafe {
        himcp_htj2k_verify(
            codestream.as_ptr(),
            codestream.len(),
            samples.as_ptr(),
            layout.columns,
            layout.rows,
            layout.components,
        )
    };
    match code {
        0 => Ok(true),
        4 => Ok(false),
        other => Err(CodecError::OpenJph(other)),
    }
}

/// Whether `codestream` uses HT block coding: its SIZ marker's Rsiz has bit 14
/// set (ISO/IEC 15444-15, Annex A), and a CAP marker follows.
pub fn is_htj2k(codestream: &[u8]) -> bool {
    // SOC (FF4F), then SIZ (FF51), its length, then Rsiz.
    codestream.len() > 6
        && codestream[..4] == [0xff, 0x4f, 0xff, 0x51]
        && u16::from_be_bytes([codestream[6], codestream[7]]) & 0x4000 != 0
        && codestream.windows(2).any(|w| w == [0xff, 0x50])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{image, round_trip};

    #[test]
    fn twelve_bit_is_lossless_and_ht() {
        let (samples, layout) = image(64, 64, 1, 12, false);
        let codestream = encode(&samples, layout).unwrap();
        assert!(is_htj2k(&codestream));
        round_trip(encode, (samples, layout));
    }

    #[test]
    fn signed_sixteen_bit_is_lossless() {
        round_trip(encode, image(128, 96, 1, 16, true));
    }

    #[test]
    fn eight_bit_rgb_is_lossless() {
        round_trip(encode, image(48, 32, 3, 8, false));
    }

    #[test]
    fn odd_sizes_and_tiny_images_are_lossless() {
        round_trip(encode, image(33, 17, 1, 12, false));
        round_trip(encode, image(3, 5, 1, 16, false));
    }

    #[test]
    fn verification_agrees_with_openjpeg_and_catches_a_changed_sample() {
        for (width, height, components, depth, signed) in [
            (64, 64, 1, 12, false),
            (128, 96, 1, 16, true),
            (48, 32, 3, 8, false),
            (33, 17, 1, 12, false),
            (3, 5, 1, 16, false),
        ] {
            let (mut samples, layout) = image(width, height, components, depth, signed);
            let codestream = encode(&samples, layout).unwrap();
            let decoded = crate::jpeg2000::decode(&codestream).unwrap();
            assert_eq!(decoded.samples, samples, "OpenJPEG reads it back");
            assert!(verify(&codestream, &samples, layout).unwrap());
            let last = samples.len() - 1;
            samples[last] ^= 1;
            assert!(
                !verify(&codestream, &samples, layout).unwrap(),
                "{width}x{height}"
            );
            let other = Layout {
                columns: layout.columns + 1,
                ..layout
            };
            let wider: Vec<i32> =
                vec![0; (width as usize + 1) * height as usize * components as usize];
            assert!(!verify(&codestream, &wider, other).unwrap());
        }
        assert!(
            verify(
                b"not a codestream",
                &[0; 4],
                Layout {
                    columns: 2,
                    rows: 2,
                    components: 1,
                    precision: 8,
                    signed: false,
                }
            )
            .is_err()
        );
    }

    #[test]
    fn bad_layouts_are_errors() {
        let layout = Layout {
            columns: 4,
            rows: 4,
            components: 2,
            precision: 8,
            signed: false,
        };
        assert_eq!(encode(&[0; 32], layout), Err(CodecError::OpenJph(3)));
        let layout = Layout {
            components: 1,
            ..layout
        };
        assert!(matches!(
            encode(&[0; 3], layout),
            Err(CodecError::SampleCount { .. })
        ));
    }

    #[test]
    fn plain_jpeg_2000_is_not_ht() {
        let (samples, layout) = image(16, 16, 1, 8, false);
        let codestream = crate::jpeg2000::encode(&samples, layout).unwrap();
        assert!(!is_htj2k(&codestream));
    }
}
