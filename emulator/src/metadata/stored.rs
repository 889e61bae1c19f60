//! Metadata documents as stored and served: gzipped JSON.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value as Json;

/// `document` as gzipped JSON, the body of GetImageSetMetadata.
pub fn gzip(document: &Json) -> Vec<u8> {
    // Serialized first and compressed in one write: the serializer's many
    // small writes cost the compressor several times more.
    let json = serde_json::to_vec(document).unwrap_or_default();
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    encoder.write_all(&json).ok();
    encoder.finish().unwrap_or_default()
}

/// The document in gzipped JSON `bytes`.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Json> {
    let mut json = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut json)?;
    serde_json::from_slice(&json).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_round_trip_through_gzip() {
        let doc = json!({"SchemaVersion": "1.1", "Patient": {"DICOM": {"PatientName": "Ünïcode"}}});
        let bytes = gzip(&doc);
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        assert_eq!(gunzip(&bytes).unwrap(), doc);
        assert!(gunzip(b"not gzip").is_err());
    }
}
