//! Tests of frame storage: every input format to what is stored.

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, VR};

use super::*;

fn image(
    rows: u16,
    columns: u16,
    frames: u32,
    pixel_data: Value<InMemDicomObject>,
) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    let put = |object: &mut InMemDicomObject, tag, vr, value: PrimitiveValue| {
        object.put(DataElement::new(tag, vr, value));
    };
    put(&mut object, tags::ROWS, VR::US, PrimitiveValue::from(rows));
    put(
        &mut object,
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(columns),
    );
    put(
        &mut object,
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    );
    put(
        &mut object,
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(8u16),
    );
    put(
        &mut object,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(8u16),
    );
    put(
        &mut object,
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    put(
        &mut object,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from(frames.to_string()),
    );
    object.put(DataElement::new(tags::PIXEL_DATA, VR::OB, pixel_data));
    object
}

fn jpeg(rows: u16, columns: u16, seed: u8) -> Vec<u8> {
    let pixels: Vec<u8> = (0..usize::from(rows) * usize::from(columns))
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&pixels, columns, rows, jpeg_encoder::ColorType::Luma)
        .unwrap();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

#[test]
fn jpeg_baseline_frames_are_kept_with_the_checksum_of_their_decoded_pixels() {
    let codestreams = vec![jpeg(16, 24, 1), jpeg(16, 24, 9)];
    // No Basic Offset Table: frames are found by their SOI markers.
    let value = Value::PixelSequence(PixelFragmentSequence::new(vec![], codestreams.clone()));
    let stored = store(
        &image(16, 24, 2, value),
        JPEG_BASELINE,
        LosslessStorageFormat::Htj2k,
    )
    .unwrap();
    assert_eq!(
        stored.transfer_syntax, JPEG_BASELINE,
        "lossy input is kept as imported"
    );
    assert_eq!(stored.frames.len(), 2);
    for (frame, original) in stored.frames.iter().zip(&codestreams) {
        assert_eq!(&frame.bytes, original);
        let decoded = jpeg_decoder::Decoder::new(&original[..]).decode().unwrap();
        assert_eq!(frame.checksum, crc32fast::hash(&decoded));
        assert_eq!((frame.width, frame.height), (24, 16));
    }
}

#[test]
fn native_frames_are_stored_as_verified_htj2k() {
    let pixels: Vec<u8> = (0..64u8).collect();
    let value = Value::Primitive(PrimitiveValue::from(pixels.clone()));
    let stored = store(
        &image(8, 8, 1, value),
        EXPLICIT_LE,
        LosslessStorageFormat::Htj2k,
    )
    .unwrap();
    assert_eq!(stored.transfer_syntax, HTJ2K_RPCL);
    let frame = &stored.frames[0];
    assert_eq!(frame.checksum, crc32fast::hash(&pixels));
    assert_eq!((frame.min, frame.max), (0, 63));
    let decoded = jpeg2000::decode(&frame.bytes).unwrap();
    assert_eq!(
        decoded.samples,
        pixels.iter().map(|&p| i32::from(p)).collect::<Vec<_>>()
    );
}

#[test]
fn rle_and_lossless_jpeg_frames_are_transcoded_and_verified() {
    use healthimaging_codec::{jpeg_lossless, rle};
    let layout = Layout {
        columns: 12,
        rows: 10,
        components: 1,
        precision: 8,
        signed: false,
    };
    let frames: Vec<Vec<i32>> = (0..2)
        .map(|f| (0..120).map(|i| (i * 13 + f * 40) % 256).collect())
        .collect();
    for (syntax, encode) in [
        (RLE_LOSSLESS, rle::encode as fn(&[i32], Layout) -> _),
        ("1.2.840.10008.1.2.4.70", jpeg_lossless::encode),
        ("1.2.840.10008.1.2.4.57", jpeg_lossless::encode),
    ] {
        let fragments: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let mut bytes = encode(f, layout).unwrap();
                if bytes.len() % 2 == 1 {
                    bytes.push(0);
                }
                bytes
            })
            .collect();
        let value = Value::PixelSequence(PixelFragmentSequence::new(vec![], fragments));
        let stored = store(
            &image(10, 12, 2, value),
            syntax,
            LosslessStorageFormat::Htj2k,
        )
        .unwrap_or_else(|e| panic!("{syntax}: {e}"));
        assert_eq!(stored.transfer_syntax, HTJ2K_RPCL, "{syntax} is transcoded");
        for (frame, samples) in stored.frames.iter().zip(&frames) {
            assert_eq!(jpeg2000::decode(&frame.bytes).unwrap().samples, *samples);
            let buffer: Vec<u8> = samples.iter().map(|&s| s as u8).collect();
            assert_eq!(frame.checksum, crc32fast::hash(&buffer), "{syntax}");
        }
    }
}

#[test]
fn short_pixel_data_and_unknown_syntaxes_are_refused() {
    let value = Value::Primitive(PrimitiveValue::from(vec![0u8; 10]));
    let error = store(
        &image(8, 8, 1, value.clone()),
        EXPLICIT_LE,
        LosslessStorageFormat::Htj2k,
    )
    .unwrap_err();
    assert!(matches!(error, FrameError::Invalid(_)), "{error}");
    let error = store(
        &image(8, 8, 1, value),
        "1.2.840.10008.1.2.4.51",
        LosslessStorageFormat::Htj2k,
    )
    .unwrap_err();
    assert!(matches!(error, FrameError::Unsupported(_)), "{error}");
}

#[test]
fn the_checksum_is_the_crc32_of_the_pixel_buffer_across_blocks() {
    // More than two blocks, negative samples, and both sample sizes.
    let samples: Vec<i32> = (0..10_001).map(|i| (i * 7919) % 70_000 - 35_000).collect();
    let eight: Vec<u8> = samples.iter().map(|&s| s as u8).collect();
    let sixteen: Vec<u8> = samples
        .iter()
        .flat_map(|&s| (s as u16).to_le_bytes())
        .collect();
    assert_eq!(checksum(&samples, 8), crc32fast::hash(&eight));
    assert_eq!(checksum(&samples, 16), crc32fast::hash(&sixteen));
    assert_eq!(checksum(&[], 16), crc32fast::hash(&[]));
}
