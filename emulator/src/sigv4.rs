//! Verification of AWS Signature Version 4 (`--verify-sigv4`).
//!
//! The listener can require every request to the HealthImaging API (SDK
//! operations and DICOMweb; not the control API) to be signed as the
//! service requires: `AWS4-HMAC-SHA256` with the configured access key, for
//! service `medical-imaging` in the emulator's region, at most 15 minutes
//! from the machine's clock, over the canonical request the SDKs build
//! (each path segment encoded again, the query sorted, the signed headers,
//! the payload's SHA-256 or the `x-amz-content-sha256` it declares). A
//! refusal is the service's: `MissingAuthenticationTokenException`,
//! `IncompleteSignatureException`, `UnrecognizedClientException` or
//! `InvalidSignatureException`, as `x-amzn-ErrorType` with a JSON message.
//! The chunk signatures of a streaming (`aws-chunked`) body are not checked;
//! its seed signature is.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use sha2::{Digest, Sha256};

/// The credentials requests must be signed with.
#[derive(Clone)]
pub struct SigV4Key {
    /// The access key ID.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The region signatures must be scoped to.
    pub region: String,
}

impl std::fmt::Debug for SigV4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Key")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// How far a request's `x-amz-date` may be from the machine's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

fn refusal(code: &'static str, message: impl Into<String>) -> Response {
    let status = if code == "IncompleteSignatureException" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    crate::surface::refusal(status, code, message)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_key: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_key)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(&outer_key)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SigV4 signing key of `secret` for `date` (`YYYYMMDD`), `region`
/// and `service`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region = hmac(&date, region.as_bytes());
    let service = hmac(&region, service.as_bytes());
    hmac(&service, b"aws4_request")
}

/// RFC 3986 encoding of everything but unreserved characters (and `/` in
/// paths).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%XX` decoding (no `+` for space: SigV4 queries are RFC 3986).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(key), false), encode(&decode(value), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    Some(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// Seconds since the epoch of an `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
fn epoch_seconds(amz_date: &str) -> Option<i64> {
    let b = amz_date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |range: std::ops::Range<usize>| amz_date.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hour, minute, second) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Checks the signature of one request; `Some` is the refusal.
pub fn verify(
    key: &SigV4Key,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_epoch_seconds: i64,
) -> Option<Response> {
    let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Some(refusal(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: this emulator verifies SigV4 signatures (--verify-sigv4)",
        ));
    };
    let Some(auth) = parse_authorization(authorization) else {
        return Some(refusal(
            "IncompleteSignatureException",
            "The Authorization header is not a complete AWS4-HMAC-SHA256 signature (Credential, SignedHeaders and Signature)",
        ));
    };
    if auth.access_key_id != key.access_key_id {
        return Some(refusal(
            "UnrecognizedClientException",
            "The security token included in the request is invalid",
        ));
    }
    if auth.service != "medical-imaging" || auth.region != key.region {
        return Some(refusal(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to service 'medical-imaging' in region '{}', not '{}' in '{}'",
                key.region, auth.service, auth.region
            ),
        ));
    }
    let text = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(",")
    };
    let amz_date = text("x-amz-date");
    let Some(signed_at) = epoch_seconds(&amz_date) else {
        return Some(refusal(
            "IncompleteSignatureException",
            "The request has no valid X-Amz-Date (YYYYMMDDTHHMMSSZ)",
        ));
    };
    if !amz_date.starts_with(auth.date) {
        return Some(refusal(
            "InvalidSignatureException",
            "The credential scope's date is not the date of X-Amz-Date",
        ));
    }
    if (now_epoch_seconds - signed_at).abs() > MAX_SKEW_SECONDS {
        return Some(refusal(
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is more than 15 minutes from the emulator's time"
            ),
        ));
    }
    if !auth.signed_headers.contains(&"host") {
        return Some(refusal(
            "IncompleteSignatureException",
            "The signed headers must include host",
        ));
    }
    let declared = text("x-amz-content-sha256");
    let actual = hex(&Sha256::digest(body));
    let payload_hash = if declared.is_empty() {
        actual
    } else if declared == "UNSIGNED-PAYLOAD"
        || declared.starts_with("STREAMING-")
        || declared == actual
    {
        declared
    } else {
        return Some(refusal(
            "InvalidSignatureException",
            "The provided x-amz-content-sha256 does not match the SHA-256 of the body",
        ));
    };
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        canonical_headers.push_str(&format!("{name}:{}\n", text(name)));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        encode(uri.path(), true),
        canonical_query(uri.query()),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(&key.secret_access_key, auth.date, auth.region, auth.service);
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    let matches = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if matches {
        None
    } else {
        Some(refusal(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn key() -> SigV4Key {
        SigV4Key {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            region: "us-east-1".into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    /// 2026-12-03T12:00:00Z.
    const NOW: i64 = 1_796_299_200;

    #[test]
    fn signing_keys_match_the_aws_documentation() {
        assert_eq!(
            hex(&signing_key(SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(epoch_seconds("20261203T120000Z"), Some(NOW));
    }

    /// Requests signed by botocore 1.43.11's SigV4Auth (an independent
    /// signer) at 2026-12-03T12:00:00Z.
    #[test]
    fn botocore_signatures_verify_and_altered_requests_do_not() {
        let path = "/tags/arn%3Aaws%3Amedical-imaging%3Aus-east-1%3A123456789012%3Adatastore%2F0123456789abcdef0123456789abcdef?tagKeys=b%20c&tagKeys=a";
        let get = headers(&[
            ("host", "127.0.0.1:4566"),
            ("x-amz-date", "20261203T120000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/medical-imaging/aws4_request, SignedHeaders=host;x-amz-date, Signature=a3e495fe435b2ab635f27bd5318ead242d13285bc64ff20ca3a9581362beb0f8",
            ),
        ]);
        let uri: Uri = path.parse().unwrap();
        assert!(verify(&key(), &Method::GET, &uri, &get, b"", NOW).is_none());
        let post = headers(&[
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/json"),
            ("x-amz-date", "20261203T120000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/medical-imaging/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ece2c91d846d88352ec72b30675b191d317360ca1b4ea69f90406d4ba143acfd",
            ),
        ]);
        let datastore: Uri = "/datastore".parse().unwrap();
        let body = br#"{"clientToken":"x"}"#;
        assert!(verify(&key(), &Method::POST, &datastore, &post, body, NOW).is_none());

        let code = |response: Option<Response>| {
            response.map(|r| r.headers()["x-amzn-ErrorType"].to_str().unwrap().to_owned())
        };
        assert_eq!(
            code(verify(
                &key(),
                &Method::POST,
                &datastore,
                &post,
                br#"{"clientToken":"y"}"#,
                NOW
            )),
            Some("InvalidSignatureException".into()),
            "another body"
        );
        let other: Uri = path.replace("tagKeys=a", "tagKeys=z").parse().unwrap();
        assert_eq!(
            code(verify(&key(), &Method::GET, &other, &get, b"", NOW)),
            Some("InvalidSignatureException".into()),
            "another query"
        );
        assert_eq!(
            code(verify(&key(), &Method::GET, &uri, &get, b"", NOW + 16 * 60)),
            Some("InvalidSignatureException".into()),
            "expired"
        );
        let wrong_secret = SigV4Key {
            secret_access_key: "another".into(),
            ..key()
        };
        assert_eq!(
            code(verify(&wrong_secret, &Method::GET, &uri, &get, b"", NOW)),
            Some("InvalidSignatureException".into())
        );
        let other_key = SigV4Key {
            access_key_id: "AKIDOTHER".into(),
            ..key()
        };
        assert_eq!(
            code(verify(&other_key, &Method::GET, &uri, &get, b"", NOW)),
            Some("UnrecognizedClientException".into())
        );
        let other_region = SigV4Key {
            region: "eu-west-1".into(),
            ..key()
        };
        assert_eq!(
            code(verify(&other_region, &Method::GET, &uri, &get, b"", NOW)),
            Some("InvalidSignatureException".into())
        );
        assert_eq!(
            code(verify(
                &key(),
                &Method::GET,
                &uri,
                &headers(&[("host", "h")]),
                b"",
                NOW
            )),
            Some("MissingAuthenticationTokenException".into())
        );
        assert_eq!(
            code(verify(
                &key(),
                &Method::GET,
                &uri,
                &headers(&[
                    ("host", "h"),
                    ("authorization", "AWS4-HMAC-SHA256 Credential=x")
                ]),
                b"",
                NOW
            )),
            Some("IncompleteSignatureException".into())
        );
    }
}
