//! Lossless JPEG (ITU-T T.81 process 14, Annex H): the DICOM transfer
//! syntaxes 1.2.840.10008.1.2.4.57 (any selection value) and .4.70
//! ("JPEG Lossless, First-Order Prediction", selection value 1).
//!
//! [`decode`] reads one-component images of 2 to 16 bits with any selection
//! value (predictor) 1 to 7, any point transform, Huffman tables of the image's
//! choosing and restart intervals of whole lines: what DICOM archives hold.
//! It decodes and predicts in one pass over the entropy-coded data, several
//! times faster than the `jpeg-decoder` crate, which the tests use as an
//! independent reader (with dcmtk's `dcmcjpeg`, for the cases that crate gets
//! wrong: point transforms and restarts with predictors other than 1).
//!
//! [`encode`] exists so that fixtures can hold lossless JPEG input for the
//! import to transcode; [`encode_with`] also writes the other predictors and
//! restart markers, for tests. One component only. Samples are written as the
//! bit patterns of their `BitsAllocated` (8 or 16 bits), so a signed sample is
//! its two's complement; precision is 8 or 16 accordingly. One Huffman table
//! gives every difference category (0 to 16) a 5-bit code, which is simple and
//! valid, if not the smallest.

use crate::{CodecError, Decoded, Layout};

/// How [`encode_with`] codes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The selection value: predictor 1 to 7 of T.81 Table H.1.
    pub predictor: u8,
    /// Lines per restart interval; 0 for none.
    pub restart_lines: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            predictor: 1,
            restart_lines: 0,
        }
    }
}

/// Encodes `samples` (one component) as a lossless JPEG image with first-order
/// prediction (selection value 1), valid for both transfer syntaxes.
pub fn encode(samples: &[i32], layout: Layout) -> Result<Vec<u8>, CodecError> {
    encode_with(samples, layout, Options::default())
}

/// Encodes `samples` (one component) as a lossless JPEG image with the
/// predictor and restart interval of `options`.
pub fn encode_with(
    samples: &[i32],
    layout: Layout,
    options: Options,
) -> Result<Vec<u8>, CodecError> {
    layout.check(samples)?;
    if layout.components != 1 {
        return Err(CodecError::JpegLossless("more than one component"));
    }
    if layout.columns > 65_535 || layout.rows > 65_535 || layout.columns == 0 || layout.rows == 0 {
        return Err(CodecError::JpegLossless("this image size"));
    }
    if !(1..=7).contains(&options.predictor) {
        return Err(CodecError::JpegLossless("a selection value outside 1 to 7"));
    }
    let restart = usize::from(options.restart_lines) * layout.columns as usize;
    if restart > 65_535 {
        return Err(CodecError::JpegLossless(
            "a restart interval over 65,535 samples",
        ));
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
    if restart > 0 {
        out.extend_from_slice(&[0xff, 0xdd, 0, 4]);
        out.extend_from_slice(&(restart as u16).to_be_bytes());
    }
    // SOS: one component, table 0, the predictor, point transform 0.
    out.extend_from_slice(&[0xff, 0xda, 0, 8, 1, 1, 0x00, options.predictor, 0, 0]);
    let raw = |i: usize| (samples[i] as u32 & mask) as i32;
    let mut bits = BitWriter {
        out,
        acc: 0,
        filled: 0,
    };
    let lines = usize::from(options.restart_lines);
    for y in 0..rows {
        // A restart interval's first line is coded like the image's first.
        let first = if lines == 0 { y == 0 } else { y % lines == 0 };
        if first && y > 0 {
            bits.restart(((y / lines - 1) % 8) as u8);
        }
        for x in 0..columns {
            let i = y * columns + x;
            let prediction = match (x, first) {
                (0, true) => 1 << (precision - 1),
                (_, true) => raw(i - 1),
                (0, false) => raw(i - columns),
                _ => {
                    let (a, b, c) = (raw(i - 1), raw(i - columns), raw(i - columns - 1));
                    match options.predictor {
                        1 => a,
                        2 => b,
                        3 => c,
                        4 => a + b - c,
                        5 => a + ((b - c) >> 1),
                        6 => b + ((a - c) >> 1),
                        _ => (a + b) >> 1,
                    }
                }
            };
            let mut difference = (raw(i) - prediction) & 0xffff;
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
    fn pad(&mut self) {
        if self.filled > 0 {
            let pad = 8 - self.filled;
            self.put((1 << pad) - 1, pad);
        }
    }

    /// Ends a restart interval with marker RSTn.
    fn restart(&mut self, n: u8) {
        self.pad();
        self.out.extend_from_slice(&[0xff, 0xd0 + n]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad();
        self.out
    }
}

/// Why [`decode`] refused an image: malformed, or a kind it does not read.
fn invalid(reason: impl Into<String>) -> CodecError {
    CodecError::JpegLosslessInvalid(reason.into())
}

/// Decodes a lossless JPEG image of one component. The samples are the
/// image's unsigned values (a signed image's two's complement bit patterns of
/// `precision` bits), shifted back by the point transform.
pub fn decode(data: &[u8]) -> Result<Decoded, CodecError> {
    if !data.starts_with(&[0xff, 0xd8]) {
        return Err(invalid("it does not start with SOI"));
    }
    let mut position = 2;
    let mut frame: Option<Frame> = None;
    let mut tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut restart_interval = 0usize;
    loop {
        let marker = next_marker(data, &mut position)?;
        let segment = match marker {
            // Markers without a segment.
            0x01 | 0xd0..=0xd8 => continue,
            0xd9 => return Err(invalid("the image ends before its scan")),
            _ => {
                let length = data
                    .get(position..position + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or_else(|| invalid("a marker segment is cut short"))?;
                let segment = data
                    .get(position + 2..position + length.max(2))
                    .filter(|_| length >= 2)
                    .ok_or_else(|| invalid("a marker segment is cut short"))?;
                position += length;
                segment
            }
        };
        match marker {
            0xc3 => frame = Some(Frame::read(segment)?),
            0xc0..=0xc2 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                return Err(CodecError::JpegLosslessUnsupported(
                    "a JPEG process other than lossless (SOF3)",
                ));
            }
            0xc4 => read_tables(segment, &mut tables)?,
            0xdd => {
                let value = segment
                    .get(..2)
                    .ok_or_else(|| invalid("DRI is cut short"))?;
                restart_interval = usize::from(u16::from_be_bytes([value[0], value[1]]));
            }
            0xda => {
                let frame = frame.ok_or_else(|| invalid("a scan comes before SOF3"))?;
                let scan = Scan::read(segment, &frame, &tables)?;
                return decode_scan(data, position, &frame, &scan, restart_interval);
            }
            // APPn, COM, DQT, DNL and the rest: nothing this decoder needs.
            _ => {}
        }
    }
}

/// The marker at `position` (after any fill bytes), with `position` moved past it.
fn next_marker(data: &[u8], position: &mut usize) -> Result<u8, CodecError> {
    if data.get(*position) != Some(&0xff) {
        return Err(invalid(format!("no marker at byte {position}")));
    }
    while data.get(*position) == Some(&0xff) {
        *position += 1;
    }
    let marker = *data
        .get(*position)
        .ok_or_else(|| invalid("the image ends without EOI"))?;
    *position += 1;
    Ok(marker)
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    precision: u32,
    rows: usize,
    columns: usize,
    component: u8,
}

impl Frame {
    fn read(segment: &[u8]) -> Result<Self, CodecError> {
        if segment.len() < 6 {
            return Err(invalid("SOF3 is cut short"));
        }
        let precision = u32::from(segment[0]);
        let rows = usize::from(u16::from_be_bytes([segment[1], segment[2]]));
        let columns = usize::from(u16::from_be_bytes([segment[3], segment[4]]));
        if !(2..=16).contains(&precision) {
            return Err(invalid(format!("a precision of {precision} bits")));
        }
        if segment[5] != 1 {
            return Err(CodecError::JpegLosslessUnsupported(
                "more than one component",
            ));
        }
        if rows == 0 {
            return Err(CodecError::JpegLosslessUnsupported(
                "its number of lines given after the scan (DNL)",
            ));
        }
        if columns == 0 || segment.len() < 9 {
            return Err(invalid("SOF3 describes no columns or no component"));
        }
        Ok(Self {
            precision,
            rows,
            columns,
            component: segment[6],
        })
    }
}

struct Scan {
    table: Huffman,
    predictor: u8,
    point_transform: u32,
}

impl Scan {
    fn read(
        segment: &[u8],
        frame: &Frame,
        tables: &[Option<Huffman>; 4],
    ) -> Result<Self, CodecError> {
        if segment.len() < 6 || segment[0] != 1 {
            return Err(invalid("the scan does not have exactly one component"));
        }
        if segment[1] != frame.component {
            return Err(invalid("the scan's component is not the frame's"));
        }
        let table = tables[usize::from(segment[2] >> 4) & 3]
            .clone()
            .ok_or_else(|| invalid("the scan uses a Huffman table that is not defined"))?;
        let predictor = segment[3];
        if !(1..=7).contains(&predictor) {
            return Err(invalid(format!("selection value {predictor}")));
        }
        let point_transform = u32::from(segment[5] & 0x0f);
        if point_transform >= frame.precision {
            return Err(invalid("a point transform as large as the precision"));
        }
        Ok(Self {
            table,
            predictor,
            point_transform,
        })
    }
}

/// Bits looked up at once; longer codes are decoded a bit at a time.
const LOOKUP_BITS: u32 = 11;

/// A Huffman table of difference categories (T.81 Annex C and F.2.2.3).
#[derive(Clone)]
struct Huffman {
    /// Indexed by the next `LOOKUP_BITS` bits: the code's length << 8 | its
    /// value, 0 where the code is longer.
    lookup: Vec<u16>,
    /// Indexed the same way: the bits a whole difference takes (its code
    /// and extra bits, when they fit in `LOOKUP_BITS`) and its value; 0
    /// bits where the difference is longer.
    whole: Vec<(u8, i32)>,
    /// The largest code of each length (-1 for none).
    max_code: [i32; 17],
    /// Where the values of each length start, less that length's first code.
    offset: [i32; 17],
    values: Vec<u8>,
}

fn read_tables(mut segment: &[u8], tables: &mut [Option<Huffman>; 4]) -> Result<(), CodecError> {
    while !segment.is_empty() {
        if segment.len() < 17 {
            return Err(invalid("DHT is cut short"));
        }
        let (class, id) = (segment[0] >> 4, usize::from(segment[0] & 0x0f));
        if class > 1 || id > 3 {
            return Err(invalid(
                "DHT names a table class or number that does not exist",
            ));
        }
        let counts: [u8; 16] = segment[1..17].try_into().expect("16 bytes");
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = segment
            .get(17..17 + total)
            .ok_or_else(|| invalid("DHT is cut short"))?;
        let table = Huffman::new(&counts, values)?;
        // Lossless scans use DC tables only; an AC table is kept out of their way.
        if class == 0 {
            tables[id] = Some(table);
        }
        segment = &segment[17 + total..];
    }
    Ok(())
}

impl Huffman {
    fn new(counts: &[u8; 16], values: &[u8]) -> Result<Self, CodecError> {
        let mut lookup = vec![0u16; 1 << LOOKUP_BITS];
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut code = 0i32;
        let mut index = 0i32;
        for length in 1..=16u32 {
            let count = i32::from(counts[length as usize - 1]);
            offset[length as usize] = index - code;
            for _ in 0..count {
                if code >= 1 << length {
                    return Err(invalid(
                        "a Huffman table has more codes than fit their lengths",
                    ));
                }
                if length <= LOOKUP_BITS {
                    let spare = LOOKUP_BITS - length;
                    let first = (code as usize) << spare;
                    let entry = (length as u16) << 8 | u16::from(values[index as usize]);
                    lookup[first..first + (1 << spare)].fill(entry);
                }
                code += 1;
                index += 1;
            }
            max_code[length as usize] = if count > 0 { code - 1 } else { -1 };
            code <<= 1;
        }
        let whole = lookup
            .iter()
            .enumerate()
            .map(|(prefix, &entry)| whole_difference(prefix as u32, entry))
            .collect();
        Ok(Self {
            lookup,
            whole,
            max_code,
            offset,
            values: values.to_vec(),
        })
    }
}

/// The value of a difference category's extra bits (T.81 F.2.2.1).
fn extend(value: i32, category: u32) -> i32 {
    if value < 1 << (category - 1) {
        value - (1 << category) + 1
    } else {
        value
    }
}

/// The whole difference the `LOOKUP_BITS` bits `prefix` start with, given
/// the lookup `entry` of their code: (bits taken, value), or 0 bits when the
/// difference does not fit (or its category is not one).
fn whole_difference(prefix: u32, entry: u16) -> (u8, i32) {
    if entry == 0 {
        return (0, 0);
    }
    let (length, category) = (u32::from(entry >> 8), u32::from(entry & 0xff));
    let extra = match category {
        0 | 16 => 0,
        1..=15 => category,
        _ => return (0, 0),
    };
    if length + extra > LOOKUP_BITS {
        return (0, 0);
    }
    let bits = (prefix >> (LOOKUP_BITS - length - extra)) & ((1 << extra) - 1);
    let value = match category {
        0 => 0,
        16 => 32_768,
        _ => extend(bits as i32, category),
    };
    ((length + extra) as u8, value)
}

/// Entropy-coded bits, most significant first, 0xFF00 read as 0xFF. At a
/// marker it supplies zeros, counted so that reading into them is an error.
struct Bits<'a> {
    data: &'a [u8],
    position: usize,
    /// The next bits, left-aligned.
    acc: u64,
    count: u32,
    /// Zero bits supplied past the data (always the last ones in `acc`).
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], position: usize) -> Self {
        Self {
            data,
            position,
            acc: 0,
            count: 0,
            padding: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        while self.count <= 56 {
            let byte = self.next_byte();
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    /// The next byte of data, or a zero of padding at a marker or the end.
    fn next_byte(&mut self) -> u8 {
        if self.padding == 0 {
            match self.data.get(self.position) {
                Some(&0xff) if self.data.get(self.position + 1) == Some(&0) => {
                    self.position += 2;
                    return 0xff;
                }
                Some(&0xff) | None => {}
                Some(&byte) => {
                    self.position += 1;
                    return byte;
                }
            }
        }
        self.padding += 8;
        0
    }

    #[inline]
    fn take(&mut self, count: u32) -> u32 {
        let value = (self.acc >> (64 - count)) as u32;
        self.acc <<= count;
        self.count -= count;
        value
    }

    /// Whether any supplied zero has been read as data.
    fn overran(&self) -> bool {
        self.padding > self.count
    }

    #[inline]
    fn category(&mut self, table: &Huffman) -> Result<u32, CodecError> {
        let entry = table.lookup[(self.acc >> (64 - LOOKUP_BITS)) as usize];
        if entry != 0 {
            self.take(u32::from(entry >> 8));
            return Ok(u32::from(entry & 0xff));
        }
        let mut length = LOOKUP_BITS + 1;
        let mut code = (self.acc >> (64 - length)) as i32;
        while code > table.max_code[length as usize] {
            length += 1;
            if length > 16 {
                return Err(invalid("a Huffman code that is not in its table"));
            }
            code = (self.acc >> (64 - length)) as i32;
        }
        self.take(length);
        let index = table.offset[length as usize] + code;
        Ok(u32::from(table.values[index as usize]))
    }

    /// The next difference (T.81 F.2.2.1 and H.1.2.2).
    #[inline]
    fn difference(&mut self, table: &Huffman) -> Result<i32, CodecError> {
        if self.count < 32 {
            self.refill();
        }
        let (bits, value) = table.whole[(self.acc >> (64 - LOOKUP_BITS)) as usize];
        if bits != 0 {
            self.take(u32::from(bits));
            return Ok(value);
        }
        let category = self.category(table)?;
        match category {
            0 => Ok(0),
            1..=15 => Ok(extend(self.take(category) as i32, category)),
            16 => Ok(32_768),
            _ => Err(invalid(format!("difference category {category}"))),
        }
    }

    /// Ends a restart interval: the rest of the byte is padding, then RSTn.
    fn restart(&mut self, expected: u8) -> Result<(), CodecError> {
        if self.overran() {
            return Err(invalid("a restart interval is cut short"));
        }
        // Reading stopped at the marker: what is left of `acc` is padding.
        let mut position = self.position;
        while self.data.get(position) == Some(&0xff) && self.data.get(position + 1) == Some(&0xff) {
            position += 1;
        }
        match self.data.get(position..position + 2) {
            Some([0xff, marker]) if *marker == 0xd0 + expected => {}
            Some([0xff, marker]) => {
                return Err(invalid(format!(
                    "marker {marker:02X} where RST{expected} was expected"
                )));
            }
            _ => return Err(invalid(format!("RST{expected} is missing"))),
        }
        *self = Self::new(self.data, position + 2);
        Ok(())
    }
}

fn decode_scan(
    data: &[u8],
    start: usize,
    frame: &Frame,
    scan: &Scan,
    restart_interval: usize,
) -> Result<Decoded, CodecError> {
    let (rows, columns) = (frame.rows, frame.columns);
    let samples = rows * columns;
    // Every sample takes at least one bit: a larger image is a lie (and not
    // worth allocating for).
    if samples.div_ceil(8) > data.len() - start {
        return Err(invalid(format!(
            "{columns}x{rows} samples in {} bytes",
            data.len() - start
        )));
    }
    let restart_lines = if restart_interval == 0 {
        rows
    } else if restart_interval.is_multiple_of(columns) {
        restart_interval / columns
    } else {
        return Err(CodecError::JpegLosslessUnsupported(
            "a restart interval that is not a whole number of lines",
        ));
    };
    let initial = 1i32 << (frame.precision - scan.point_transform - 1);
    let table = &scan.table;
    let mut bits = Bits::new(data, start);
    let mut values = vec![0u16; samples];
    let mut marker = 0u8;
    for y in 0..rows {
        let first = y % restart_lines == 0;
        if first && y > 0 {
            bits.restart(marker)?;
            marker = (marker + 1) % 8;
        }
        let (done, line) = values.split_at_mut(y * columns);
        let line = &mut line[..columns];
        if first {
            let mut previous = initial;
            for value in line.iter_mut() {
                previous = (previous + bits.difference(table)?) & 0xffff;
                *value = previous as u16;
            }
            continue;
        }
        let above = &done[(y - 1) * columns..];
        let left = (i32::from(above[0]) + bits.difference(table)?) & 0xffff;
        line[0] = left as u16;
        match scan.predictor {
            1 => predict_line(line, above, table, &mut bits, |a, _, _| a)?,
            2 => predict_line(line, above, table, &mut bits, |_, b, _| b)?,
            3 => predict_line(line, above, table, &mut bits, |_, _, c| c)?,
            4 => predict_line(line, above, table, &mut bits, |a, b, c| a + b - c)?,
            5 => predict_line(line, above, table, &mut bits, |a, b, c| a + ((b - c) >> 1))?,
            6 => predict_line(line, above, table, &mut bits, |a, b, c| b + ((a - c) >> 1))?,
            _ => predict_line(line, above, table, &mut bits, |a, b, _| (a + b) >> 1)?,
        }
    }
    if bits.overran() {
        return Err(invalid(
            "the entropy-coded data ends before the last sample",
        ));
    }
    let shift = scan.point_transform;
    Ok(Decoded {
        layout: Layout {
            columns: columns as u32,
            rows: rows as u32,
            components: 1,
            precision: frame.precision,
            signed: false,
        },
        samples: values.iter().map(|&v| i32::from(v) << shift).collect(),
    })
}

/// Samples 1.. of a line below the first, each `predict(a, b, c)` of its
/// left, upper and upper-left neighbours plus its difference, modulo 2^16.
#[inline(always)]
fn predict_line(
    line: &mut [u16],
    above: &[u16],
    table: &Huffman,
    bits: &mut Bits<'_>,
    predict: impl Fn(i32, i32, i32) -> i32,
) -> Result<(), CodecError> {
    let mut a = i32::from(line[0]);
    for x in 1..line.len() {
        let prediction = predict(a, i32::from(above[x]), i32::from(above[x - 1]));
        a = (prediction + bits.difference(table)?) & 0xffff;
        line[x] = a as u16;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::image;
    use proptest::prelude::*;

    fn layout(columns: u32, rows: u32, precision: u32, signed: bool) -> Layout {
        Layout {
            columns,
            rows,
            components: 1,
            precision,
            signed,
        }
    }

    /// What `jpeg-decoder` reads back, as unsigned bit patterns.
    fn jpeg_decoder(image: &[u8]) -> Vec<i32> {
        let mut decoder = jpeg_decoder::Decoder::new(image);
        let pixels = decoder.decode().expect("jpeg-decoder reads it");
        match decoder.info().unwrap().pixel_format {
            jpeg_decoder::PixelFormat::L8 => pixels.iter().map(|&b| i32::from(b)).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .map(|b| i32::from(u16::from_ne_bytes([b[0], b[1]])))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// `samples` as the encoder writes them: bit patterns of 8 or 16 bits.
    fn patterns(samples: &[i32], precision: u32) -> Vec<i32> {
        let mask = if precision <= 8 { 0xff } else { 0xffff };
        samples.iter().map(|&s| s & mask).collect()
    }

    #[test]
    fn writes_the_markers_of_process_14() {
        let image = encode(&[0, 1, 2, 3], layout(2, 2, 8, false)).unwrap();
        assert_eq!(&image[..4], &[0xff, 0xd8, 0xff, 0xc3]);
        assert_eq!(&image[image.len() - 2..], &[0xff, 0xd9]);
        assert!(image.windows(2).any(|w| w == [0xff, 0xda]));
        let restarts = encode_with(
            &[0; 8],
            layout(2, 4, 8, false),
            Options {
                predictor: 1,
                restart_lines: 1,
            },
        )
        .unwrap();
        for n in 0..3 {
            assert!(restarts.windows(2).any(|w| w == [0xff, 0xd0 + n]), "RST{n}");
        }
    }

    #[test]
    fn both_decoders_read_what_is_written() {
        let ramp: Vec<i32> = (0..35).map(|i| (i * 53) % 256).collect();
        let image = encode(&ramp, layout(7, 5, 8, false)).unwrap();
        assert_eq!(jpeg_decoder(&image), ramp);
        assert_eq!(decode(&image).unwrap().samples, ramp);

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
        let expected = patterns(&ct, 16);
        assert_eq!(
            jpeg_decoder(&image),
            expected,
            "signed 16-bit, extreme differences included"
        );
        let decoded = decode(&image).unwrap();
        assert_eq!(decoded.samples, expected);
        assert_eq!(decoded.layout, layout(64, 9, 16, false));

        // The first sample is predicted as 32768: a difference of exactly 32768 (category 16).
        let edge = [0, -32768, 0, 5];
        let image = encode(&edge, layout(2, 2, 16, true)).unwrap();
        assert_eq!(jpeg_decoder(&image), patterns(&edge, 16));
        assert_eq!(decode(&image).unwrap().samples, patterns(&edge, 16));
    }

    #[test]
    fn every_predictor_agrees_with_jpeg_decoder() {
        for (precision, signed) in [(8, false), (12, false), (16, true), (16, false)] {
            let (samples, layout) = image(37, 23, 1, precision, signed);
            let expected = patterns(&samples, precision);
            for predictor in 1..=7 {
                let options = Options {
                    predictor,
                    restart_lines: 0,
                };
                let image = encode_with(&samples, layout, options).unwrap();
                let sos = image.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
                assert_eq!(image[sos + 7], predictor, "Ss");
                assert_eq!(
                    jpeg_decoder(&image),
                    expected,
                    "jpeg-decoder, predictor {predictor}, {precision} bits"
                );
                assert_eq!(
                    decode(&image).unwrap().samples,
                    expected,
                    "predictor {predictor}, {precision} bits"
                );
            }
        }
    }

    #[test]
    fn restart_intervals_of_whole_lines_are_read() {
        let (samples, layout) = image(19, 11, 1, 12, false);
        for predictor in 1..=7 {
            for restart_lines in [1, 2, 5, 11] {
                let options = Options {
                    predictor,
                    restart_lines,
                };
                let image = encode_with(&samples, layout, options).unwrap();
                assert_eq!(
                    decode(&image).unwrap().samples,
                    samples,
                    "predictor {predictor}, restart every {restart_lines} lines"
                );
            }
        }
        // A missing or misnumbered RST marker is an error, not a silent misread.
        let options = Options {
            predictor: 4,
            restart_lines: 2,
        };
        let image = encode_with(&samples, layout, options).unwrap();
        let rst1 = image.windows(2).position(|w| w == [0xff, 0xd1]).unwrap();
        let mut renumbered = image.clone();
        renumbered[rst1 + 1] = 0xd5;
        assert!(matches!(
            decode(&renumbered),
            Err(CodecError::JpegLosslessInvalid(reason)) if reason.contains("RST1")
        ));
        // An interval that is not whole lines: refused as unsupported.
        let dri = image.windows(2).position(|w| w == [0xff, 0xdd]).unwrap();
        let mut partial = image.clone();
        partial[dri + 5] = 7;
        assert!(matches!(
            decode(&partial),
            Err(CodecError::JpegLosslessUnsupported(_))
        ));
    }

    /// A stream coded with a table of codes 1 to 16 bits long (longer than the
    /// decoder's lookup), written by hand: predictor 1, one line.
    #[test]
    fn long_huffman_codes_are_read() {
        // Category k has a code of length k + 1 (k < 15); categories 15 and 16
        // share length 16: the canonical codes are 0, 10, 110, ...
        let mut counts = [0u8; 16];
        for length in 1..=15 {
            counts[length - 1] = 1;
        }
        counts[15] = 2;
        let code = |category: u32| -> (u32, u32) {
            match category {
                0..=14 => ((1 << (category + 1)) - 2, category + 1),
                15 => (0xfffe, 16),
                _ => (0xffff, 16),
            }
        };
        // Differences of every category, from the initial prediction 2^15.
        let mut expected = Vec::new();
        let mut bits: Vec<bool> = Vec::new();
        let mut put = |value: u32, count: u32| {
            for shift in (0..count).rev() {
                bits.push((value >> shift) & 1 == 1);
            }
        };
        let mut previous: i32 = 1 << 15;
        for category in 0..=16u32 {
            let difference: i32 = match category {
                0 => 0,
                16 => 32_768,
                k if k % 2 == 0 => 1 << (k - 1),
                k => -((1 << k) - 1),
            };
            let (value, length) = code(category);
            put(value, length);
            if (1..16).contains(&category) {
                let extra = if difference > 0 {
                    difference
                } else {
                    difference - 1
                };
                put(extra as u32 & ((1 << category) - 1), category);
            }
            previous = (previous + difference) & 0xffff;
            expected.push(previous);
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(true);
        }
        let mut data = vec![
            0xff, 0xd8, 0xff, 0xc3, 0, 11, 16, 0, 1, 0, 17, 1, 1, 0x11, 0,
        ];
        data.extend_from_slice(&[0xff, 0xc4, 0, 3 + 16 + 17, 0x00]);
        data.extend_from_slice(&counts);
        data.extend(0u8..=16);
        data.extend_from_slice(&[0xff, 0xda, 0, 8, 1, 1, 0x00, 1, 0, 0]);
        for byte in bits.chunks(8) {
            let byte = byte.iter().fold(0u8, |acc, &bit| acc << 1 | u8::from(bit));
            data.push(byte);
            if byte == 0xff {
                data.push(0);
            }
        }
        data.extend_from_slice(&[0xff, 0xd9]);
        assert_eq!(
            jpeg_decoder(&data),
            expected,
            "the hand-made stream is valid"
        );
        assert_eq!(decode(&data).unwrap().samples, expected);
    }

    #[test]
    fn the_point_transform_shifts_the_samples_back() {
        // With Pt = 2 the coded values are samples >> 2 and the first
        // prediction is 2^13 instead of 2^15: values written 2^15 - 2^13
        // higher with Pt = 0 decode, once Pt is set to 2, to the values << 2.
        let coded: Vec<i32> = (0..24).map(|i| (i * 37) % 1024).collect();
        let offset = (1 << 15) - (1 << 13);
        let written: Vec<i32> = coded.iter().map(|v| v + offset).collect();
        let mut image = encode(&written, layout(6, 4, 16, false)).unwrap();
        let sos = image.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
        assert_eq!(image[sos + 9], 0, "Ah and Al (the point transform)");
        image[sos + 9] = 2;
        let expected: Vec<i32> = coded.iter().map(|v| v << 2).collect();
        assert_eq!(decode(&image).unwrap().samples, expected);
    }

    #[test]
    fn malformed_images_are_errors() {
        let (samples, layout) = image(16, 8, 1, 16, true);
        let good = encode(&samples, layout).unwrap();
        for cut in 0..good.len() - 2 {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"not a jpeg").is_err());
        // Baseline (SOF0) is not lossless.
        let mut baseline = good.clone();
        baseline[3] = 0xc0;
        assert!(matches!(
            decode(&baseline),
            Err(CodecError::JpegLosslessUnsupported(_))
        ));
        // A header claiming 65535x65535 samples over a few bytes is refused
        // before any allocation.
        let mut huge = good.clone();
        huge[7..11].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&huge),
            Err(CodecError::JpegLosslessInvalid(_))
        ));
    }

    #[test]
    fn refuses_colour() {
        let colour = Layout {
            components: 3,
            ..layout(1, 1, 8, false)
        };
        assert!(encode(&[1, 2, 3], colour).is_err());
        let mut three = encode(&[1, 2, 3, 4], layout(2, 2, 8, false)).unwrap();
        three[11] = 3;
        assert!(matches!(
            decode(&three),
            Err(CodecError::JpegLosslessUnsupported(
                "more than one component"
            ))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_image_round_trips(
            columns in 1u32..40,
            rows in 1u32..20,
            sixteen in any::<bool>(),
            predictor in 1u8..=7,
            restart_lines in 0u16..4,
            seed in any::<u64>(),
        ) {
            let precision = if sixteen { 16 } else { 8 };
            let mut state = seed | 1;
            let samples: Vec<i32> = (0..columns * rows)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % (1 << precision)) as i32
                })
                .collect();
            let layout = layout(columns, rows, precision, false);
            let options = Options { predictor, restart_lines };
            let image = encode_with(&samples, layout, options).unwrap();
            prop_assert_eq!(&decode(&image).unwrap().samples, &samples);
            if restart_lines == 0 {
                prop_assert_eq!(&jpeg_decoder(&image), &samples);
            }
        }

        #[test]
        fn damaged_images_do_not_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let (samples, layout) = image(12, 9, 1, 16, false);
            let mut image = encode_with(&samples, layout, Options { predictor: 5, restart_lines: 3 }).unwrap();
            for (at, value) in flips {
                let at = at % image.len();
                image[at] = value;
            }
            let _ = decode(&image);
        }
    }
}
