//! Test images: smooth anatomy-like gradients with noise, and the round trip.

use crate::{CodecError, Layout, jpeg2000};

/// A `columns`×`rows` image whose samples use the whole `precision` range.
pub(crate) fn image(
    columns: u32,
    rows: u32,
    components: u32,
    precision: u32,
    signed: bool,
) -> (Vec<i32>, Layout) {
    let layout = Layout {
        columns,
        rows,
        components,
        precision,
        signed,
    };
    let (low, high) = if signed {
        (-(1i64 << (precision - 1)), (1i64 << (precision - 1)) - 1)
    } else {
        (0, (1i64 << precision) - 1)
    };
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut samples = Vec::new();
    for y in 0..rows {
        for x in 0..columns {
            for c in 0..components {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let dx = f64::from(x) / f64::from(columns) - 0.5;
                let dy = f64::from(y) / f64::from(rows) - 0.5;
                let smooth = 1.05 - (dx * dx + dy * dy).sqrt() * 1.8 + f64::from(c) * 0.1;
                let noise = (state % 64) as f64 / 64.0 * 0.05;
                let value = low as f64 + (smooth + noise).clamp(0.0, 1.0) * (high - low) as f64;
                samples.push(value.round() as i32);
            }
        }
    }
    // The extremes of the range occur in every image: codecs must carry them exactly.
    samples[0] = low as i32;
    let last = samples.len() - 1;
    samples[last] = high as i32;
    (samples, layout)
}

/// Encodes with `encode`, decodes with OpenJPEG, and checks nothing was lost.
pub(crate) fn round_trip(
    encode: fn(&[i32], Layout) -> Result<Vec<u8>, CodecError>,
    (samples, layout): (Vec<i32>, Layout),
) {
    let codestream = encode(&samples, layout).unwrap();
    assert_eq!(
        &codestream[..2],
        &[0xff, 0x4f],
        "a codestream starts with SOC"
    );
    let raw_bytes = samples.len() * layout.precision.div_ceil(8) as usize;
    // Headers outweigh the pixels of a tiny image; anything real must shrink.
    if samples.len() >= 1024 {
        assert!(
            codestream.len() < raw_bytes,
            "it compresses: {} of {raw_bytes}",
            codestream.len()
        );
    }
    let decoded = jpeg2000::decode(&codestream).unwrap();
    assert_eq!(decoded.layout, layout);
    assert_eq!(decoded.samples, samples, "lossless");
}
