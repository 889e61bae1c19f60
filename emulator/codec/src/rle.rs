//! DICOM RLE Lossless (transfer syntax 1.2.840.10008.1.2.5, PS3.5 Annex G).
//!
//! A frame is a 64-byte header (the number of segments, then up to 15
//! segment offsets, all little-endian `u32`) followed by the segments. Each
//! segment holds one byte plane: for every component in turn, the most
//! significant byte of each sample first; samples of 9 to 16 bits take two
//! planes. Each plane is PackBits-encoded row by row, a run never crossing a
//! row. Samples are the bit patterns of `BitsAllocated` (8 or 16) bits, so a
//! signed sample is its two's complement.

use crate::{CodecError, Layout};

/// Bytes per sample for `layout`.
fn sample_bytes(layout: Layout) -> usize {
    if layout.precision <= 8 { 1 } else { 2 }
}

/// Encodes `samples` (interleaved) as one RLE frame.
pub fn encode(samples: &[i32], layout: Layout) -> Result<Vec<u8>, CodecError> {
    layout.check(samples)?;
    let bytes = sample_bytes(layout);
    let components = layout.components as usize;
    let columns = layout.columns as usize;
    let segments = components * bytes;
    if segments > 15 {
        return Err(CodecError::Rle("more than 15 segments"));
    }
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(&(segments as u32).to_le_bytes());
    for component in 0..components {
        for byte in (0..bytes).rev() {
            let offset = out.len() as u32;
            let index = 1 + component * bytes + (bytes - 1 - byte);
            out[index * 4..index * 4 + 4].copy_from_slice(&offset.to_le_bytes());
            let plane: Vec<u8> = samples
                .iter()
                .skip(component)
                .step_by(components)
                .map(|&s| ((s as u32) >> (8 * byte)) as u8)
                .collect();
            for row in plane.chunks(columns) {
                pack_bits(row, &mut out);
            }
            if out.len() % 2 == 1 {
                out.push(0x80);
            }
        }
    }
    Ok(out)
}

/// PackBits: literal runs of up to 128 bytes (`n-1`, then the bytes) and
/// repeats of 2 to 128 bytes (`1-n`, then the byte).
fn pack_bits(row: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < row.len() {
        let mut run = 1;
        while i + run < row.len() && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((1i32 - run as i32) as i8 as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < row.len() && i - start < 128 {
            if i + 1 < row.len() && row[i + 1] == row[i] {
                break;
            }
            i += 1;
        }
        if i == start {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

/// Decodes one RLE frame of `layout` to samples (interleaved).
pub fn decode(frame: &[u8], layout: Layout) -> Result<Vec<i32>, CodecError> {
    let bytes = sample_bytes(layout);
    let components = layout.components as usize;
    let pixels = layout.columns as usize * layout.rows as usize;
    let invalid = |what: &'static str| CodecError::Rle(what);
    let word = |at: usize| -> Result<usize, CodecError> {
        let raw = frame.get(at..at + 4).ok_or(invalid("a truncated header"))?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    };
    let segments = word(0)?;
    if segments != components * bytes {
        return Err(invalid("a segment count that does not fit the image"));
    }
    let mut raw = vec![0u32; pixels * components];
    for segment in 0..segments {
        let start = word(4 + 4 * segment)?;
        let end = if segment + 1 < segments {
            word(8 + 4 * segment)?
        } else {
            frame.len()
        };
        let data = frame
            .get(start..end)
            .ok_or(invalid("a segment outside the frame"))?;
        let plane = unpack_bits(data, pixels)?;
        let component = segment / bytes;
        let shift = 8 * (bytes - 1 - segment % bytes);
        for (pixel, value) in plane.iter().enumerate() {
            raw[pixel * components + component] |= u32::from(*value) << shift;
        }
    }
    Ok(raw
        .into_iter()
        .map(|bits| match (bytes, layout.signed) {
            (1, false) => bits as i32,
            (1, true) => i32::from(bits as u8 as i8),
            (_, false) => bits as i32,
            (_, true) => i32::from(bits as u16 as i16),
        })
        .collect())
}

/// Undoes PackBits until `length` bytes are out.
fn unpack_bits(data: &[u8], length: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(length);
    let mut i = 0;
    while out.len() < length {
        let header = *data
            .get(i)
            .ok_or(CodecError::Rle("a segment shorter than its plane"))? as i8;
        i += 1;
        match header {
            0..=127 => {
                let n = header as usize + 1;
                let literal = data
                    .get(i..i + n)
                    .ok_or(CodecError::Rle("a truncated literal run"))?;
                out.extend_from_slice(literal);
                i += n;
            }
            -127..=-1 => {
                let value = *data
                    .get(i)
                    .ok_or(CodecError::Rle("a truncated repeat run"))?;
                out.extend(std::iter::repeat_n(value, (1 - i32::from(header)) as usize));
                i += 1;
            }
            -128 => {}
        }
    }
    if out.len() != length {
        return Err(CodecError::Rle("a run that crosses the end of its plane"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(columns: u32, rows: u32, components: u32, precision: u32, signed: bool) -> Layout {
        Layout {
            columns,
            rows,
            components,
            precision,
            signed,
        }
    }

    #[test]
    fn round_trips_grey_signed_and_colour_samples() {
        let cases = [
            (
                layout(7, 3, 1, 8, false),
                (0..21).map(|i| i * 37 % 256).collect::<Vec<_>>(),
            ),
            (
                layout(5, 4, 1, 16, true),
                (0..20)
                    .map(|i| if i % 3 == 0 { -1024 } else { i * 900 - 3000 })
                    .collect(),
            ),
            (
                layout(300, 2, 1, 12, false),
                (0..600)
                    .map(|i| if i < 290 { 7 } else { i % 4096 })
                    .collect(),
            ),
            (layout(4, 2, 3, 8, false), (0..24).map(|i| i * 11).collect()),
        ];
        for (layout, samples) in cases {
            let frame = encode(&samples, layout).unwrap();
            assert_eq!(frame.len() % 2, 0, "segments are padded to even lengths");
            assert_eq!(decode(&frame, layout).unwrap(), samples, "{layout:?}");
        }
    }

    #[test]
    fn runs_compress_and_never_cross_a_row() {
        let layout = layout(200, 2, 1, 8, false);
        let frame = encode(&[9; 400], layout).unwrap();
        // Two rows, each a repeat of 128 and a repeat of 72: four runs of two bytes.
        assert_eq!(frame.len(), 64 + 8);
        assert_eq!(&frame[64..], &[0x81, 9, 0xb9, 9, 0x81, 9, 0xb9, 9]);
    }

    #[test]
    fn damaged_frames_are_errors() {
        let layout = layout(4, 4, 1, 8, false);
        let frame = encode(&[1; 16], layout).unwrap();
        assert!(decode(&frame[..10], layout).is_err());
        assert!(decode(&frame[..frame.len() - 1], layout).is_err());
        let colour = Layout {
            components: 3,
            ..layout
        };
        assert!(
            decode(&frame, colour).is_err(),
            "one segment cannot be three components"
        );
    }
}
