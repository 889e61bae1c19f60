//! HTJ2K lossless codestreams with RPCL progression (transfer syntax
//! 1.2.840.10008.1.2.4.202, HealthImaging's default storage format),
//! through OpenJPH.
//!
//! The encoder is C++; `shim/htj2k.cpp` gives it a C interface that takes
//! interleaved samples and returns a `malloc`ed codestream, freed here with
//! the shim's own `free`. Decode with [`crate::jpeg2000::decode`].

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
