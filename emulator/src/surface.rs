//! What the emulator's HTTP listener accepts, and from whom.
//!
//! The emulator answers on loopback by default, and a web page in the
//! user's browser can reach loopback: a `text/plain` POST needs no CORS
//! preflight, and a DNS name can be rebound to 127.0.0.1. So every request
//! is checked before it reaches an operation ([`check`]):
//! - `Host` must name this listener (a loopback name or the bound address
//!   with its port) or one of [`Surface::allowed_hosts`]: a rebound name
//!   is refused;
//! - a request carrying a browser's `Origin` (or `Sec-Fetch-Site` other than
//!   `none`) is refused unless the origin is in [`Surface::allowed_origins`]:
//!   SDKs and command-line tools never send one;
//! - a request with a body must say it is JSON, or DICOM where DICOM is
//!   served: the content types a page may send without a preflight
//!   (`text/plain`, forms) are refused;
//! - with an access key configured ([`Surface::access_key`], required off
//!   loopback), the request must carry it: as the access key ID of its
//!   SigV4 `Authorization` header (any SDK configured with that key ID
//!   sends it), or as `Authorization: Bearer <key>`.
//!
//! Every refusal is an AWS-shaped error (`x-amzn-ErrorType`, JSON message).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

/// Where the control API (`/_emulator/`) is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// Beside the HealthImaging routes, on the same listener.
    #[default]
    SamePort,
    /// On a listener of its own.
    Listen(SocketAddr),
    /// Nowhere.
    Off,
}

/// The settings of the HTTP listener.
#[derive(Debug, Clone)]
pub struct Surface {
    /// Host names (with or without a port) accepted besides loopback names
    /// and the bound address, e.g. a compose service name.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the emulator (`http://localhost:3000`).
    pub allowed_origins: Vec<String>,
    /// The key every request must carry, if any.
    pub access_key: Option<String>,
    /// The credentials every API request must be signed with, if SigV4
    /// signatures are verified (`--verify-sigv4`).
    pub sigv4: Option<crate::sigv4::SigV4Key>,
    /// Serve off loopback without a key (the operator said so explicitly).
    pub insecure_no_auth: bool,
    /// Where the control API is served.
    pub control: Control,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// How long a connection may stay without traffic.
    pub idle_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_deadline: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl Default for Surface {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            access_key: None,
            sigv4: None,
            insecure_no_auth: false,
            control: Control::SamePort,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            shutdown_deadline: Duration::from_secs(5),
            max_connections: 512,
        }
    }
}

/// What a request is allowed to carry as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// JSON (the API and the control API).
    Json,
    /// DICOM: STOW-RS bodies (`application/dicom`, `multipart/related`),
    /// neither of which a page may send without a CORS preflight.
    Dicom,
}

/// A refusal of the HTTP layer.
pub fn refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "message": message.into() });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", header::HeaderValue::from_static(code));
    response
}

fn denied(message: String) -> Response {
    ApiError::new(ErrorCode::AccessDenied, message).into_response()
}

/// Whether `addr` is a loopback address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Checks one request against the surface's rules; `Some` is the refusal.
pub fn check(
    surface: &Surface,
    bound: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    body: BodyKind,
) -> Option<Response> {
    if let Some(refused) = check_host(surface, bound, headers) {
        return Some(refused);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !surface.allowed_origins.iter().any(|o| o == origin) {
            return Some(denied(format!(
                "Requests from the browser origin '{origin}' are refused; allow it with --allowed-origin"
            )));
        }
    } else if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"none"
        && site.as_bytes() != b"same-origin"
    {
        return Some(denied(
            "Cross-site requests from a browser are refused".to_owned(),
        ));
    }
    if let Some(key) = &surface.access_key
        && !carries_key(headers, key)
    {
        return Some(denied(
            "The request does not carry this emulator's access key: sign with it as the access key ID, or send Authorization: Bearer <key>".to_owned(),
        ));
    }
    if *method != Method::GET
        && *method != Method::HEAD
        && let Some(kind) = headers.get(header::CONTENT_TYPE)
    {
        let kind = kind.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = kind.split(';').next().unwrap_or("").trim();
        let accepted = match body {
            BodyKind::Json => {
                essence == "application/json"
                    || essence.starts_with("application/x-amz-json")
                    || essence.is_empty()
            }
            BodyKind::Dicom => essence == "application/dicom" || essence == "multipart/related",
        };
        if !accepted {
            return Some(
                ApiError::new(
                    ErrorCode::Validation,
                    match body {
                        BodyKind::Json => format!(
                            "Content-Type '{essence}' is not accepted here; send application/json"
                        ),
                        BodyKind::Dicom => format!(
                            "Content-Type '{essence}' is not accepted here; send application/dicom or multipart/related; type=\"application/dicom\""
                        ),
                    },
                )
                .into_response(),
            );
        }
    }
    None
}

fn check_host(surface: &Surface, bound: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let Some(host) = headers.get(header::HOST) else {
        // HTTP/1.1 requires Host; a request without one names nothing to check.
        return Some(denied("The request has no Host header".to_owned()));
    };
    let host = host.to_str().unwrap_or("").to_ascii_lowercase();
    // SDKs prepend `runtime-` to data-plane hosts; some send it on.
    let host = host.strip_prefix("runtime-").unwrap_or(&host);
    let (name, port) = split_host(host);
    let port_matches = port.is_none_or(|p| p == bound.port());
    let wildcard = bound.ip().is_unspecified();
    let local_name = matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "::1")
        || name.parse::<std::net::IpAddr>() == Ok(bound.ip());
    // The service's own host names, as a client redirected to the emulator
    // (a proxy, a hosts file) sends them: a web page cannot make a browser
    // send them to loopback without owning amazonaws.com.
    let service_name = name.ends_with(".amazonaws.com")
        && (name.starts_with("medical-imaging.") || name.starts_with("dicom-medical-imaging."));
    let allowed = surface.allowed_hosts.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        allowed == host || allowed == name
    });
    // On a wildcard address with a key, any name of the machine may be used:
    // the key, not the name, is what protects it.
    if allowed
        || service_name
        || (local_name && port_matches)
        || (wildcard && surface.access_key.is_some())
    {
        return None;
    }
    Some(denied(format!(
        "Host '{host}' is not this emulator; allow it with --allowed-host"
    )))
}

fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        if let Some((address, port)) = rest.split_once("]:") {
            return (&host[..address.len() + 2], port.parse().ok());
        }
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((name, port)) => (name, port.parse().ok()),
        None => (host, None),
    }
}

/// Whether `headers` carry `key` as the SigV4 access key ID or a bearer token.
fn carries_key(headers: &HeaderMap, key: &str) -> bool {
    let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let presented = if let Some(token) = authorization.strip_prefix("Bearer ") {
        token.trim()
    } else if let Some(rest) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") {
        rest.split(',')
            .find_map(|part| part.trim().strip_prefix("Credential="))
            .and_then(|credential| credential.split('/').next())
            .unwrap_or("")
    } else {
        ""
    };
    constant_time_eq(presented.as_bytes(), key.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A key for a listener that must not be left open: 20 upper-case letters
/// and digits, the form of an AWS access key ID, from the system's entropy.
pub fn generate_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's entropy source is available");
    let mut key = String::from("HIME");
    for byte in bytes {
        key.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn refused(surface: &Surface, method: Method, pairs: &[(&str, &str)]) -> Option<u16> {
        let bound: SocketAddr = "127.0.0.1:4566".parse().unwrap();
        check(surface, bound, &method, &headers(pairs), BodyKind::Json).map(|r| r.status().as_u16())
    }

    #[test]
    fn hosts_must_name_this_listener() {
        let surface = Surface::default();
        for host in [
            "127.0.0.1:4566",
            "localhost:4566",
            "runtime-127.0.0.1:4566",
            "[::1]:4566",
            "localhost",
            "runtime-medical-imaging.us-east-1.amazonaws.com",
        ] {
            assert_eq!(
                refused(&surface, Method::GET, &[("host", host)]),
                None,
                "{host}"
            );
        }
        for host in [
            "evil.example:4566",
            "127.0.0.1:80",
            "attacker.test",
            "medical-imaging.evil.example",
        ] {
            assert_eq!(
                refused(&surface, Method::GET, &[("host", host)]),
                Some(403),
                "{host}"
            );
        }
        assert_eq!(refused(&surface, Method::GET, &[]), Some(403));
        let compose = Surface {
            allowed_hosts: vec!["emulator".into()],
            ..Surface::default()
        };
        assert_eq!(
            refused(&compose, Method::GET, &[("host", "emulator:4566")]),
            None
        );
    }

    #[test]
    fn browser_requests_and_simple_content_types_are_refused() {
        let surface = Surface::default();
        let host = ("host", "127.0.0.1:4566");
        assert_eq!(
            refused(
                &surface,
                Method::POST,
                &[host, ("origin", "https://evil.example")]
            ),
            Some(403)
        );
        assert_eq!(
            refused(
                &surface,
                Method::POST,
                &[host, ("sec-fetch-site", "cross-site")]
            ),
            Some(403)
        );
        assert_eq!(
            refused(
                &surface,
                Method::POST,
                &[host, ("content-type", "text/plain")]
            ),
            Some(400)
        );
        assert_eq!(
            refused(
                &surface,
                Method::POST,
                &[host, ("content-type", "application/x-www-form-urlencoded")]
            ),
            Some(400)
        );
        assert_eq!(
            refused(
                &surface,
                Method::POST,
                &[host, ("content-type", "application/json")]
            ),
            None
        );
        assert_eq!(
            refused(&surface, Method::POST, &[host]),
            None,
            "no body type"
        );
        let allowed = Surface {
            allowed_origins: vec!["http://localhost:3000".into()],
            ..Surface::default()
        };
        assert_eq!(
            refused(
                &allowed,
                Method::GET,
                &[host, ("origin", "http://localhost:3000")]
            ),
            None
        );
    }

    #[test]
    fn dicom_bodies_are_accepted_only_where_dicom_is_stored() {
        let bound: SocketAddr = "127.0.0.1:4566".parse().unwrap();
        let surface = Surface::default();
        let post = |kind, content_type: &str| {
            check(
                &surface,
                bound,
                &Method::POST,
                &headers(&[("host", "127.0.0.1:4566"), ("content-type", content_type)]),
                kind,
            )
            .map(|r| r.status().as_u16())
        };
        assert_eq!(post(BodyKind::Dicom, "application/dicom"), None);
        assert_eq!(
            post(
                BodyKind::Dicom,
                "multipart/related; type=\"application/dicom\"; boundary=x"
            ),
            None
        );
        assert_eq!(post(BodyKind::Dicom, "text/plain"), Some(400));
        assert_eq!(
            post(BodyKind::Dicom, "multipart/form-data; boundary=x"),
            Some(400)
        );
        assert_eq!(post(BodyKind::Json, "application/dicom"), Some(400));
    }

    #[test]
    fn a_configured_key_is_required_in_either_form() {
        let surface = Surface {
            access_key: Some("HIMEKEY".into()),
            ..Surface::default()
        };
        let host = ("host", "127.0.0.1:4566");
        let sigv4 = "AWS4-HMAC-SHA256 Credential=HIMEKEY/20260101/us-east-1/medical-imaging/aws4_request, SignedHeaders=host, Signature=00";
        let wrong = "AWS4-HMAC-SHA256 Credential=OTHER/20260101/us-east-1/medical-imaging/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(refused(&surface, Method::GET, &[host]), Some(403));
        assert_eq!(
            refused(&surface, Method::GET, &[host, ("authorization", wrong)]),
            Some(403)
        );
        assert_eq!(
            refused(&surface, Method::GET, &[host, ("authorization", sigv4)]),
            None
        );
        assert_eq!(
            refused(
                &surface,
                Method::GET,
                &[host, ("authorization", "Bearer HIMEKEY")]
            ),
            None
        );
        let key = generate_access_key();
        assert_eq!(key.len(), 20);
        assert_ne!(key, generate_access_key());
    }
}
