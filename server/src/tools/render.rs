//! Turning decoded frame samples into a PNG an assistant can look at:
//! rescale, window, invert for MONOCHROME1, downscale, encode.

/// Decoded samples of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub components: u32,
    /// Samples in row order, components interleaved.
    pub values: Vec<i32>,
}

/// A display window in rescaled units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// WindowCenter.
    pub center: f64,
    /// WindowWidth (at least 1).
    pub width: f64,
}

/// How to display grey samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Display {
    /// RescaleSlope.
    pub slope: f64,
    /// RescaleIntercept.
    pub intercept: f64,
    /// The window; `None` spans the frame's own range.
    pub window: Option<Window>,
    /// MONOCHROME1: low values are white.
    pub invert: bool,
}

/// A rendered image.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// PNG bytes.
    pub png: Vec<u8>,
    /// Width of the PNG.
    pub width: u32,
    /// Height of the PNG.
    pub height: u32,
    /// The window applied to grey samples.
    pub window: Option<Window>,
}

/// Displayable pixels: 8-bit grey or RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub components: u32,
    /// Bytes in row order, components interleaved.
    pub pixels: Vec<u8>,
    /// The window applied to grey samples.
    pub window: Option<Window>,
}

/// Renders `samples` as a PNG no larger than `max_size` on either side.
pub fn render(samples: &Samples, display: Display, max_size: u32) -> Result<Rendered, String> {
    let picture = draw(samples, display, max_size)?;
    Ok(Rendered {
        png: encode_png(&picture)?,
        width: picture.width,
        height: picture.height,
        window: picture.window,
    })
}

/// `picture` as PNG bytes.
pub fn encode_png(picture: &Picture) -> Result<Vec<u8>, String> {
    let color = if picture.components == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    };
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, picture.width, picture.height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&picture.pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

/// Windows `samples` into 8-bit pixels no larger than `max_size` on either side.
pub fn draw(samples: &Samples, display: Display, max_size: u32) -> Result<Picture, String> {
    let expected = samples.width as usize * samples.height as usize * samples.components as usize;
    if samples.values.len() != expected || expected == 0 {
        return Err(format!(
            "{} samples do not fill a {}x{} image of {} components",
            samples.values.len(),
            samples.width,
            samples.height,
            samples.components
        ));
    }
    let scale =
        (f64::from(samples.width.max(samples.height)) / f64::from(max_size.max(1))).max(1.0);
    let width = ((f64::from(samples.width) / scale).round() as u32).max(1);
    let height = ((f64::from(samples.height) / scale).round() as u32).max(1);
    let (pixels, components, window): (Vec<u8>, _, _) = if samples.components == 3 {
        let max = samples.values.iter().copied().max().unwrap_or(255);
        let shift = if max > 255 { 8 } else { 0 };
        let bytes = resample(samples, width, height)
            .into_iter()
            .map(|v| (v >> shift).clamp(0, 255) as u8)
            .collect();
        (bytes, 3, None)
    } else {
        let rescaled: Vec<f64> = samples
            .values
            .iter()
            .map(|&v| f64::from(v) * display.slope + display.intercept)
            .collect();
        let window = display.window.unwrap_or_else(|| {
            let min = rescaled.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rescaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Window {
                center: (min + max) / 2.0,
                width: (max - min).max(1.0),
            }
        });
        let low = window.center - window.width / 2.0;
        let grey = Samples {
            values: rescaled
                .iter()
                .map(|&v| {
                    let level = ((v - low) / window.width * 255.0).round().clamp(0.0, 255.0) as i32;
                    if display.invert { 255 - level } else { level }
                })
                .collect(),
            ..samples.clone()
        };
        let bytes = resample(&grey, width, height)
            .into_iter()
            .map(|v| v as u8)
            .collect();
        (bytes, 1, Some(window))
    };
    Ok(Picture {
        width,
        height,
        components,
        pixels,
        window,
    })
}

/// Area-averaged downscale to `width`×`height` (no change when equal).
fn resample(samples: &Samples, width: u32, height: u32) -> Vec<i32> {
    let c = samples.components as usize;
    let (sw, sh) = (samples.width as usize, samples.height as usize);
    let (w, h) = (width as usize, height as usize);
    if (w, h) == (sw, sh) {
        return samples.values.clone();
    }
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        let (y0, y1) = (y * sh / h, ((y + 1) * sh / h).max(y * sh / h + 1));
        for x in 0..w {
            let (x0, x1) = (x * sw / w, ((x + 1) * sw / w).max(x * sw / w + 1));
            for k in 0..c {
                let mut sum = 0i64;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        sum += i64::from(samples.values[(yy * sw + xx) * c + k]);
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as i64;
                out.push((sum / n) as i32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        buffer.truncate(info.buffer_size());
        (info, buffer)
    }

    const PLAIN: Display = Display {
        slope: 1.0,
        intercept: 0.0,
        window: None,
        invert: false,
    };

    #[test]
    fn grey_frames_span_their_range_and_windows_clip() {
        let samples = Samples {
            width: 2,
            height: 1,
            components: 1,
            values: vec![1000, 3000],
        };
        let rendered = render(&samples, PLAIN, 512).unwrap();
        let (info, pixels) = decode(&rendered.png);
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(pixels, vec![0, 255]);
        let ct = Display {
            slope: 1.0,
            intercept: -1024.0,
            window: Some(Window {
                center: 40.0,
                width: 400.0,
            }),
            invert: true,
        };
        let raw = Samples {
            values: vec![0, 3000],
            ..samples
        };
        let (_, pixels) = decode(&render(&raw, ct, 512).unwrap().png);
        assert_eq!(
            pixels,
            vec![255, 0],
            "below the window is black, inverted to white"
        );
    }

    #[test]
    fn large_frames_shrink_to_the_cap_and_rgb_stays_colour() {
        let samples = Samples {
            width: 8,
            height: 4,
            components: 3,
            values: vec![200; 96],
        };
        let rendered = render(&samples, PLAIN, 4).unwrap();
        assert_eq!((rendered.width, rendered.height), (4, 2));
        let (info, pixels) = decode(&rendered.png);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert!(pixels.iter().all(|&p| p == 200));
        assert!(
            render(
                &Samples {
                    width: 2,
                    height: 2,
                    components: 1,
                    values: vec![1]
                },
                PLAIN,
                4
            )
            .is_err()
        );
    }
}
