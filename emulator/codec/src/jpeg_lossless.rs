//! A lossless JPEG encoder (ITU-T T.81 process 14, selection value 1): the
//! DICOM transfer syntax 1.2.840.10008.1.2.4.70 ("JPEG Lossless, First-Order
//! Prediction"), also valid for .4.57.
//!
//! It exists so that fixtures can hold lossless JPEG input for the import to
//! transcode; decoding is the `jpeg-decoder` crate's. One component only.
//! Samples are written as the bit patterns of their `BitsAllocated` (8 or
//! 16 bits), so a signed sample is its two's complement; precision is 8 or
//! 16 accordingly. One Huffman table gives every difference category (0 to
//! 16) a 5-bit code, which is simple and valid, if not the smallest.

use crate::{CodecError, Layout};

/// Encodes `samples` (one component) as a lossless JPEG image.
pub fn encode(samples: &[i32], layout: Layout) -> Result<Vec<u8>, CodecError> {
    layout.check(samples)?;
    if layout.components != 1 {
        return Err(CodecError::JpegLossless("more than one component"));
    }
    if layout.columns > 65_535 || layout.rows > 65_535 || layout.columns == 0 || layout.rows == 0 {
        return Err(CodecError::JpegLossless("this image size"));
    }
    let precision: u32 = if layout.precision <= 8 { 8 } else { 16 };
    let mask = (1u32 << precision) - 1;
    let (columns, rows) = (layout.columns as usize, layout.rows as usize);
    let mut out = vec![0xff, 0xd8];
    // SOF3: precision, rows, columns, one component (id 1, 1x1 sampling).
    out.extend_from_slice(&[0xff, 0xc3, 0, 11, precision as u8]);
    out.extend_from_slice(&(rows as u16).to_be_bytes());
    out.extend_from_slice(&(columns as u16).to_be_bytes());
    out.extend_from_slice(&[1, 1, 0x11, 0]);
    // DHT: DC table 0, seventeen codes of length 5 for categories 0..=16.
    out.extend_from_slice(&[0xff, 0xc4, 0, 36, 0x00]);
    let mut counts = [0u8; 16];
    counts[4] = 17;
    out.extend_from_slice(&counts);
    out.extend(0u8..=16);
    // SOS: one component, table 0, predictor 1, point transform 0.
    out.extend_from_slice(&[0xff, 0xda, 0, 8, 1, 1, 0x00, 1, 0, 0]);
    let raw = |i: usize| (samples[i] as u32) & mask;
    let mut bits = BitWriter {
        out,
        acc: 0,
        filled: 0,
    };
    for y in 0..rows {
        for x in 0..columns {
            let i = y * columns + x;
            let prediction = match (x, y) {
                (0, 0) => 1u32 << (precision - 1),
                (_, 0) => raw(i - 1),
                (0, _) => raw(i - columns),
                _ => raw(i - 1),
            };
            let mut difference = (raw(i) as i32 - prediction as i32) & 0xffff;
            if difference > 32_768 {
                difference -= 65_536;
            }
            let category = 32 - difference.unsigned_abs().leading_zeros();
            bits.put(category, 5);
            if (1..16).contains(&category) {
                let extra = if difference > 0 {
                    difference
                } else {
                    difference - 1
                };
                bits.put(extra as u32 & ((1 << category) - 1), category);
            }
        }
    }
    let mut out = bits.finish();
    out.extend_from_slice(&[0xff, 0xd9]);
    Ok(out)
}

/// Entropy-coded bits, most significant first, with 0xFF stuffed by 0x00.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    filled: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for shift in (0..count).rev() {
            self.acc = (self.acc << 1) | ((value >> shift) & 1);
            self.filled += 1;
            if self.filled == 8 {
                self.byte();
            }
        }
    }

    fn byte(&mut self) {
        let byte = self.acc as u8;
        self.out.push(byte);
        if byte == 0xff {
            self.out.push(0);
        }
        self.acc = 0;
        self.filled = 0;
    }

    /// Pads the last byte with 1 bits, as T.81 asks.
    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            let pad = 8 - self.filled;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(columns: u32, rows: u32, precision: u32, signed: bool) -> Layout {
        Layout {
            columns,
            rows,
            components: 1,
            precision,
            signed,
        }
    }

    #[test]
    fn writes_the_markers_of_process_14() {
        let image = encode(&[0, 1, 2, 3], layout(2, 2, 8, false)).unwrap();
        assert_eq!(&image[..4], &[0xff, 0xd8, 0xff, 0xc3]);
        assert_eq!(&image[image.len() - 2..], &[0xff, 0xd9]);
        assert!(image.windows(2).any(|w| w == [0xff, 0xda]));
    }

    /// What `jpeg-decoder` reads back, as samples.
    fn decoded(image: &[u8], signed: bool) -> Vec<i32> {
        let mut decoder = jpeg_decoder::Decoder::new(image);
        let pixels = decoder.decode().expect("jpeg-decoder reads it");
        match decoder.info().unwrap().pixel_format {
            jpeg_decoder::PixelFormat::L8 => pixels.iter().map(|&b| i32::from(b)).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .map(|v| {
                    if signed {
                        i32::from(v as i16)
                    } else {
                        i32::from(v)
                    }
                })
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn round_trips_through_jpeg_decoder() {
        let ramp: Vec<i32> = (0..35).map(|i| (i * 53) % 256).collect();
        let image = encode(&ramp, layout(7, 5, 8, false)).unwrap();
        assert_eq!(decoded(&image, false), ramp);

        let ct: Vec<i32> = (0..64 * 9)
            .map(|i| match i % 7 {
                0 => -1024,
                1 => 3071,
                2 => -32768,
                3 => 32767,
                _ => (i * 97) % 4000 - 2000,
            })
            .collect();
        let image = encode(&ct, layout(64, 9, 16, true)).unwrap();
        assert_eq!(
            decoded(&image, true),
            ct,
            "signed 16-bit, extreme differences included"
        );

        // The first sample is predicted as 32768: a difference of exactly 32768 (category 16).
        let edge = [0, -32768, 0, 5];
        let image = encode(&edge, layout(2, 2, 16, true)).unwrap();
        assert_eq!(decoded(&image, true), edge);

        let twelve: Vec<i32> = (0..40 * 3).map(|i| (i * 311) % 4096).collect();
        let image = encode(&twelve, layout(40, 3, 12, false)).unwrap();
        assert_eq!(decoded(&image, false), twelve);
    }

    #[test]
    fn refuses_colour() {
        let colour = Layout {
            components: 3,
            ..layout(1, 1, 8, false)
        };
        assert!(encode(&[1, 2, 3], colour).is_err());
    }
}
