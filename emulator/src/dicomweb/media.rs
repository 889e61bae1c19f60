//! Media types: what a request's `Accept` asks for, the transfer syntax a
//! response is sent in, and `multipart/related` bodies both ways.
//!
//! Transfer syntaxes follow the service's rules: Explicit VR Little Endian
//! unless asked otherwise, `transfer-syntax=*` for the stored syntax, the
//! stored syntax by its UID, anything else 406 (the caller should retry
//! with `*`).

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::part10::EXPLICIT_LE;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// Parameters, names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn any(&self) -> bool {
        self.essence == "*/*"
    }
}

/// Splits `text` on `separator` outside double quotes.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Parses one media type with its parameters.
pub fn parse(text: &str) -> MediaRange {
    let mut pieces = split_unquoted(text, ';').into_iter();
    let essence = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = pieces
        .filter_map(|piece| {
            let (name, value) = piece.split_once('=')?;
            Some((
                name.trim().to_ascii_lowercase(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    MediaRange { essence, params }
}

/// The media ranges of an `Accept` header, in the order given; an absent
/// header is `*/*`.
pub fn accept(header: Option<&str>) -> Vec<MediaRange> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return vec![parse("*/*")];
    };
    split_unquoted(header, ',')
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .map(parse)
        .collect()
}

/// The transfer syntax a range's `transfer-syntax` parameter allows for
/// data stored in `stored`: Explicit VR Little Endian by default (always
/// possible: the emulator decodes every syntax it stores), `*` for the
/// stored syntax, or the stored syntax by UID.
fn syntax_for(range: &MediaRange, stored: &str) -> Option<String> {
    match range.param("transfer-syntax") {
        None => Some(EXPLICIT_LE.to_owned()),
        Some("*") => Some(stored.to_owned()),
        Some(uid) if uid == EXPLICIT_LE || uid == stored => Some(uid.to_owned()),
        Some(_) => None,
    }
}

fn not_acceptable(what: &str, stored: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotAcceptable,
        format!(
            "The {what} cannot be sent in the media type or transfer syntax asked for; it is stored as {stored}: ask for transfer-syntax={EXPLICIT_LE}, {stored} or *"
        ),
    )
}

/// How a DICOM instance is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceForm {
    /// In a `multipart/related` body (else `application/dicom` alone).
    pub multipart: bool,
    /// The transfer syntax of the file.
    pub syntax: String,
}

/// The form of GetDICOMInstance's answer for an instance stored in `stored`.
pub fn instance_form(ranges: &[MediaRange], stored: &str) -> ApiResult<InstanceForm> {
    for range in ranges {
        let multipart = match range.essence.as_str() {
            "application/dicom" | "application/*" => false,
            "multipart/related" => {
                if !range
                    .param("type")
                    .is_none_or(|t| t.eq_ignore_ascii_case("application/dicom") || t == "*/*")
                {
                    continue;
                }
                true
            }
            _ if range.any() => false,
            _ => continue,
        };
        if let Some(syntax) = syntax_for(range, stored) {
            return Ok(InstanceForm { multipart, syntax });
        }
    }
    Err(not_acceptable("instance", stored))
}

/// How frames are sent: the media type of each part and their syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameForm {
    /// The media type of each part.
    pub part_type: String,
    /// The transfer syntax of the frames.
    pub syntax: String,
}

/// The media type of frames stored in `syntax` (GetImageFrame's table).
pub fn frame_media_type(syntax: &str) -> &'static str {
    crate::ops::frame_content_type(syntax)
}

/// The form of GetDICOMInstanceFrames' answer for frames stored in `stored`.
pub fn frame_form(ranges: &[MediaRange], stored: &str) -> ApiResult<FrameForm> {
    for range in ranges {
        let part_type = match range.essence.as_str() {
            // Any type: native frames unless a syntax is named.
            "multipart/related" => match range.param("type") {
                None | Some("*/*") => "application/octet-stream".to_owned(),
                Some(kind) => kind.to_ascii_lowercase(),
            },
            _ if range.any() => "application/octet-stream".to_owned(),
            _ => continue,
        };
        if part_type == "application/octet-stream" {
            if let Some(syntax) = syntax_for(range, stored) {
                return Ok(FrameForm { part_type, syntax });
            }
        } else if part_type == frame_media_type(stored)
            && range
                .param("transfer-syntax")
                .is_none_or(|uid| uid == "*" || uid == stored)
        {
            return Ok(FrameForm {
                part_type,
                syntax: stored.to_owned(),
            });
        }
    }
    Err(not_acceptable("frames", stored))
}

/// Whether `ranges` accept DICOM JSON (QIDO-RS and metadata answers).
pub fn accepts_json(ranges: &[MediaRange]) -> ApiResult<()> {
    if ranges.iter().any(|range| {
        matches!(
            range.essence.as_str(),
            "application/dicom+json" | "application/json" | "application/*" | "*/*"
        )
    }) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::NotAcceptable,
        "This resource is sent as application/dicom+json only",
    ))
}

/// A DICOM JSON answer.
pub fn dicom_json(value: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    response
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its `Content-Location`, if any.
    pub location: Option<String>,
    /// Its bytes.
    pub body: Bytes,
}

/// A boundary no body contains.
fn boundary(parts: &[Part]) -> String {
    loop {
        let mut bytes = [0u8; 16];
        // Entropy is only wanted for uniqueness; a fixed fallback is checked too.
        let _ = getrandom::fill(&mut bytes);
        let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let needle = format!("--{candidate}");
        if !parts
            .iter()
            .any(|p| p.body.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            return candidate;
        }
    }
}

/// A `multipart/related` answer of `parts`, whose `type` is `root_type`.
pub fn multipart(parts: Vec<Part>, root_type: &str) -> Response {
    let boundary = boundary(&parts);
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.body.len() + 200).sum());
    for part in &parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {}\r\n", part.content_type).as_bytes(),
        );
        if let Some(location) = &part.location {
            body.extend_from_slice(format!("Content-Location: {location}\r\n").as_bytes());
        }
        body.extend_from_slice(format!("Content-Length: {}\r\n\r\n", part.body.len()).as_bytes());
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut response = Response::new(Body::from(body));
    let content_type = format!("multipart/related; type=\"{root_type}\"; boundary={boundary}");
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A single-part answer.
pub fn single(content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A part read from a multipart body: its headers (names lower case) and
/// bytes.
pub type ReadPart = (Vec<(String, String)>, Bytes);

/// The parts of a `multipart/related` body with `boundary`: each part's
/// headers (names lower case) and bytes. For STOW-RS bodies and for
/// clients of WADO-RS answers.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<ReadPart>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let find = |from: usize| -> Option<usize> {
        body.get(from..)?
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map(|p| p + from)
    };
    let mut at = find(0).ok_or("The multipart body has no boundary line")?;
    let mut parts = Vec::new();
    loop {
        let after = at + delimiter.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(parts);
        }
        // Skip the rest of the boundary line.
        let line_end = body[after..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("A multipart boundary line does not end")?
            + after
            + 2;
        let headers_end = body[line_end..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + line_end);
        // A part without headers starts with the blank line at once.
        let (headers, content_start) = if body.get(line_end..line_end + 2) == Some(b"\r\n") {
            (Vec::new(), line_end + 2)
        } else {
            let end = headers_end.ok_or("A multipart part's headers do not end")?;
            let text = std::str::from_utf8(&body[line_end..end])
                .map_err(|_| "A multipart part's headers are not text")?;
            let headers = text
                .split("\r\n")
                .filter_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
                })
                .collect();
            (headers, end + 4)
        };
        let next = find(content_start).ok_or("The multipart body does not close")?;
        // The CRLF before a delimiter belongs to the delimiter.
        let content_end = if next >= 2 && &body[next - 2..next] == b"\r\n" {
            next - 2
        } else {
            next
        };
        parts.push((
            headers,
            Bytes::copy_from_slice(&body[content_start..content_end.max(content_start)]),
        ));
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTJ2K: &str = "1.2.840.10008.1.2.4.202";

    #[test]
    fn accept_headers_choose_the_transfer_syntax_or_refuse() {
        let form = |header: Option<&str>| instance_form(&accept(header), HTJ2K);
        assert_eq!(
            form(None).unwrap(),
            InstanceForm {
                multipart: false,
                syntax: EXPLICIT_LE.into()
            }
        );
        assert_eq!(
            form(Some("application/dicom; transfer-syntax=*"))
                .unwrap()
                .syntax,
            HTJ2K
        );
        assert_eq!(
            form(Some(&format!("application/dicom; transfer-syntax={HTJ2K}")))
                .unwrap()
                .syntax,
            HTJ2K
        );
        assert!(
            form(Some("multipart/related; type=\"application/dicom\""))
                .unwrap()
                .multipart
        );
        let refused = form(Some(
            "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50",
        ))
        .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotAcceptable);
        assert!(refused.message.contains("transfer-syntax"));
        assert_eq!(
            form(Some(
                "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50, application/dicom; transfer-syntax=*"
            ))
            .unwrap()
            .syntax,
            HTJ2K,
            "the next range is tried"
        );
        assert!(form(Some("image/png")).is_err());
    }

    #[test]
    fn frames_go_as_octet_streams_or_in_their_own_media_type() {
        let form = |header: &str| frame_form(&accept(Some(header)), HTJ2K);
        assert_eq!(
            form("multipart/related; type=\"application/octet-stream\"")
                .unwrap()
                .syntax,
            EXPLICIT_LE
        );
        assert_eq!(
            form("multipart/related; type=application/octet-stream; transfer-syntax=*")
                .unwrap()
                .syntax,
            HTJ2K
        );
        let jph = form("multipart/related; type=image/jph").unwrap();
        assert_eq!(
            (jph.part_type.as_str(), jph.syntax.as_str()),
            ("image/jph", HTJ2K)
        );
        assert!(form("multipart/related; type=image/jpeg").is_err());
        assert_eq!(
            form("multipart/related; type=\"*/*\"").unwrap().syntax,
            EXPLICIT_LE,
            "dicomweb-client's default"
        );
        assert!(form("application/dicom").is_err());
    }

    #[test]
    fn multipart_bodies_round_trip() {
        let parts = vec![
            Part {
                content_type: "application/dicom".into(),
                location: None,
                body: Bytes::from_static(b"first\r\n--not-a-boundary"),
            },
            Part {
                content_type: "application/dicom".into(),
                location: Some("/x".into()),
                body: Bytes::from_static(b""),
            },
        ];
        let response = multipart(parts, "application/dicom");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let boundary = parse(&content_type).param("boundary").unwrap().to_owned();
        let body = futures_body(response);
        let parsed = parse_multipart(&body, &boundary).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(&parsed[0].1[..], b"first\r\n--not-a-boundary");
        assert_eq!(parsed[1].1.len(), 0);
        assert!(
            parsed[1]
                .0
                .contains(&("content-location".into(), "/x".into()))
        );
        assert!(parse_multipart(b"no boundary here", &boundary).is_err());
        assert!(
            parse_multipart(
                format!("--{boundary}\r\nContent-Type: a\r\n\r\nunclosed").as_bytes(),
                &boundary
            )
            .is_err()
        );
    }

    fn futures_body(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec()
        })
    }
}
