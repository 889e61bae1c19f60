//! The server's DICOMweb client: QIDO-RS searches and WADO-RS reads of the
//! HealthImaging DICOMweb API, and STOW-RS to other archives.
//!
//! DICOMweb is outside the SDK model: requests are built here and signed
//! with SigV4 (service `medical-imaging`) using the SDK client's own
//! credentials provider and region. They go to
//! `dicom-medical-imaging.{region}.amazonaws.com` on AWS, to the SDK's
//! endpoint for an emulator or `--endpoint-url`, or to `--dicomweb-url`;
//! for the embedded emulator, into its router in this process (no socket).
//! One connector is shared by every request (one connection pool), and
//! throttling, 5xx answers and connection failures are retried with
//! exponential back-off and jitter, as the SDK's standard retry mode does.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use axum::body::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::errors::ToolError;
use crate::sdk::Tuning;

/// The signing name of HealthImaging's DICOMweb API.
const SIGNING_NAME: &str = "medical-imaging";
/// QIDO-RS answers at most this many records per request.
pub const QIDO_PAGE: usize = 1000;
/// HealthImaging answers no QIDO-RS search past this many records.
pub const QIDO_CAP: usize = 10_000;

/// A DICOMweb client for one HealthImaging endpoint.
#[derive(Clone)]
pub struct DicomWeb {
    connector: SharedHttpConnector,
    base: Arc<str>,
    signer: Option<Signer>,
    tuning: Tuning,
}

impl std::fmt::Debug for DicomWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomWeb")
            .field("base", &self.base)
            .field("signed", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
}

/// One HTTP answer, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why a DICOMweb request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DicomWebError {
    /// The endpoint answered with an error status.
    #[error("HTTP {status} {code}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The AWS error type (`x-amzn-ErrorType`), or the status's name.
        code: String,
        /// The message of the body.
        message: String,
    },
    /// The request did not get an answer.
    #[error("{0}")]
    Transport(String),
    /// The request could not be signed.
    #[error("could not sign the request: {0}")]
    Signing(String),
}

impl DicomWebError {
    /// The HTTP status, when the endpoint answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DicomWebError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<DicomWebError> for ToolError {
    fn from(error: DicomWebError) -> Self {
        match error {
            DicomWebError::Status {
                status,
                code,
                message,
            } => {
                let advice = match status {
                    404 => {
                        "Check the UIDs and the datastore: search_dicomweb lists what DICOMweb can address (primary image sets only unless image_set_id is given)."
                    }
                    406 => {
                        "The stored form cannot be transcoded to that transfer syntax; ask for the stored one (transfer_syntax \"*\")."
                    }
                    403 | 401 => {
                        "The credentials lack the DICOMweb IAM permission (GetDICOMInstance, SearchDICOMStudies, …); ask an administrator to grant it."
                    }
                    429 => {
                        "The DICOMweb API is throttling even after retries; wait a little and try again."
                    }
                    500..=599 => "The DICOMweb API failed even after retries; try again later.",
                    _ => "Check the arguments and try again.",
                };
                ToolError::new(
                    code,
                    format!("DICOMweb answered HTTP {status}: {message}"),
                    advice,
                )
            }
            DicomWebError::Transport(message) => ToolError::new(
                "ConnectionFailure",
                format!("Could not reach the DICOMweb endpoint: {message}"),
                "Check that the endpoint is running and reachable (--dicomweb-url, --endpoint-url), and the network.",
            ),
            DicomWebError::Signing(message) => ToolError::new(
                "SigningFailure",
                message,
                "Check the AWS credentials the server was started with.",
            ),
        }
    }
}

/// The connector every network request of this process uses: hyper with
/// rustls on the Ring provider, as the SDK's.
pub fn network_connector() -> SharedHttpConnector {
    static CONNECTOR: OnceLock<SharedHttpConnector> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let settings = HttpConnectorSettings::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build();
            SharedHttpConnector::new(
                aws_smithy_http_client::Connector::builder()
                    .connector_settings(settings)
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build(),
            )
        })
        .clone()
}

impl DicomWeb {
    /// A client for the DICOMweb API at `url` (or, without one, the AWS
    /// DICOMweb host of `region`), signing with `credentials` in `region`,
    /// over the shared network connector.
    pub fn for_endpoint(
        url: Option<&str>,
        region: &str,
        credentials: SharedCredentialsProvider,
        tuning: Tuning,
    ) -> Self {
        let base = url.map_or_else(|| aws_host(region), |u| u.trim_end_matches('/').to_owned());
        Self {
            connector: network_connector(),
            base: base.into(),
            signer: Some(Signer {
                credentials,
                region: region.to_owned(),
            }),
            tuning,
        }
    }

    /// A client whose every request `connector` answers, unsigned: the
    /// embedded emulator's router in this process.
    pub fn with_connector(connector: SharedHttpConnector, base: &str, tuning: Tuning) -> Self {
        Self {
            connector,
            base: base.trim_end_matches('/').into(),
            signer: None,
            tuning,
        }
    }

    /// Where requests go.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (starting with `/`) in datastore `datastore_id`.
    pub fn datastore_url(&self, datastore_id: &str, path: &str) -> String {
        format!("{}/datastore/{datastore_id}{path}", self.base)
    }

    /// A GET of `url` accepting `accept`, signed, retried.
    pub async fn get(&self, url: &str, accept: &str) -> Result<Response, DicomWebError> {
        self.send("GET", url, &[("accept", accept)], Bytes::new(), true)
            .await
    }

    /// Every QIDO-RS record at `path` of the datastore matching `query`,
    /// page by page, up to `cap` records. Returns the records and whether
    /// more matched than `cap`.
    pub async fn qido(
        &self,
        datastore_id: &str,
        path: &str,
        query: &[(String, String)],
        cap: usize,
    ) -> Result<(Vec<Value>, bool), DicomWebError> {
        self.qido_paged(datastore_id, path, query, cap, QIDO_PAGE)
            .await
    }

    /// As [`DicomWeb::qido`], `page` records per request.
    pub async fn qido_paged(
        &self,
        datastore_id: &str,
        path: &str,
        query: &[(String, String)],
        cap: usize,
        page: usize,
    ) -> Result<(Vec<Value>, bool), DicomWebError> {
        let mut records = Vec::new();
        loop {
            let want = page.max(1).min(cap + 1 - records.len());
            let mut pairs: Vec<(String, String)> = query.to_vec();
            pairs.push(("limit".to_owned(), want.to_string()));
            pairs.push(("offset".to_owned(), records.len().to_string()));
            let url = format!(
                "{}?{}",
                self.datastore_url(datastore_id, path),
                query_string(&pairs)
            );
            let response = self.get(&url, "application/dicom+json").await?;
            let page: Vec<Value> = if response.status == 204 || response.body.is_empty() {
                Vec::new()
            } else {
                serde_json::from_slice(&response.body).map_err(|e| DicomWebError::Status {
                    status: response.status,
                    code: "MalformedResponse".to_owned(),
                    message: format!("the QIDO-RS answer is not a JSON array: {e}"),
                })?
            };
            let got = page.len();
            records.extend(page);
            if records.len() > cap {
                records.truncate(cap);
                return Ok((records, true));
            }
            if got < want || records.len() >= QIDO_CAP {
                return Ok((records, false));
            }
        }
    }

    /// An instance as DICOM Part 10 (GetDICOMInstance), in `transfer_syntax`
    /// (`None`: the stored one).
    pub async fn instance(
        &self,
        datastore_id: &str,
        uids: &InstanceUids,
        image_set_id: Option<&str>,
        transfer_syntax: Option<&str>,
    ) -> Result<Bytes, DicomWebError> {
        let mut url = self.datastore_url(
            datastore_id,
            &format!(
                "/studies/{}/series/{}/instances/{}",
                uids.study, uids.series, uids.sop
            ),
        );
        if let Some(id) = image_set_id {
            url = format!("{url}?imageSetId={id}");
        }
        let accept = format!(
            "application/dicom; transfer-syntax={}",
            transfer_syntax.unwrap_or("*")
        );
        Ok(self.get(&url, &accept).await?.body)
    }

    /// Sends one request with retries; `signed` asks for SigV4.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        signed: bool,
    ) -> Result<Response, DicomWebError> {
        let attempts = self.tuning.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let outcome = tokio::time::timeout(
                self.tuning.attempt_timeout,
                self.attempt(method, url, headers, body.clone(), signed),
            )
            .await
            .unwrap_or_else(|_| {
                Err(DicomWebError::Transport(format!(
                    "no answer within {} s",
                    self.tuning.attempt_timeout.as_secs()
                )))
            });
            let retry = match &outcome {
                Ok(response) => retryable(response.status),
                Err(DicomWebError::Transport(_)) => true,
                Err(_) => false,
            };
            if !retry || attempt >= attempts {
                return match outcome {
                    Ok(response) if response.status >= 400 => Err(status_error(&response)),
                    other => other,
                };
            }
            tokio::time::sleep(backoff(self.tuning.initial_backoff, attempt)).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        signed: bool,
    ) -> Result<Response, DicomWebError> {
        let mut builder = axum::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(body.clone())
            .map_err(|e| DicomWebError::Transport(format!("a malformed request to {url}: {e}")))?;
        if signed && let Some(signer) = &self.signer {
            signer.sign(&mut request).await?;
        }
        let (parts, body) = request.into_parts();
        let request = axum::http::Request::from_parts(parts, SdkBody::from(body));
        let request = HttpRequest::try_from(request)
            .map_err(|e| DicomWebError::Transport(format!("a malformed request to {url}: {e}")))?;
        let response = self
            .connector
            .call(request)
            .await
            .map_err(|e| DicomWebError::Transport(error_chain(&e)))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(ToOwned::to_owned);
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(ToOwned::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DicomWebError::Transport(format!("the answer broke off: {e}")))?
            .to_bytes();
        let mut response = Response {
            status,
            content_type,
            body,
        };
        if status >= 400
            && let Some(error_type) = error_type
        {
            // Kept for status_error: the AWS error type names the failure.
            response.content_type = Some(format!(
                "{}; x-amzn-errortype={error_type}",
                response.content_type.unwrap_or_default()
            ));
        }
        Ok(response)
    }
}

/// The three UIDs addressing one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUids {
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// SOP Instance UID.
    pub sop: String,
}

impl Signer {
    async fn sign(&self, request: &mut axum::http::Request<Bytes>) -> Result<(), DicomWebError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| DicomWebError::Signing(e.to_string()))?;
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| DicomWebError::Signing(e.to_string()))?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| DicomWebError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| DicomWebError::Signing(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// HealthImaging's DICOMweb host in `region`.
pub fn aws_host(region: &str) -> String {
    format!("https://dicom-medical-imaging.{region}.amazonaws.com")
}

/// `pairs` as a query string, every value percent-encoded as SigV4
/// canonicalizes it (RFC 3986 unreserved characters kept).
pub fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Exponential back-off with jitter: `initial × 2^(attempt−1)`, scaled by a
/// random factor in [0.5, 1), at most 20 s.
fn backoff(initial: Duration, attempt: u32) -> Duration {
    let exponential = initial.saturating_mul(1 << (attempt - 1).min(10));
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let factor = 0.5 + f64::from(byte[0]) / 512.0;
    exponential.mul_f64(factor).min(Duration::from_secs(20))
}

fn status_error(response: &Response) -> DicomWebError {
    let content_type = response.content_type.as_deref().unwrap_or("");
    let code = content_type
        .split_once("x-amzn-errortype=")
        .map(|(_, t)| t.split(':').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| status_name(response.status).to_owned());
    let message = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(ToOwned::to_owned)
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned()
        });
    DicomWebError::Status {
        status: response.status,
        code,
        message,
    }
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        406 => "NotAcceptable",
        409 => "ConflictException",
        413 => "PayloadTooLarge",
        429 => "ThrottlingException",
        500..=599 => "InternalServerException",
        _ => "HttpError",
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_as_sigv4_canonicalizes_them() {
        let pairs = vec![
            ("PatientName".to_owned(), "DOE^JANE*".to_owned()),
            ("StudyDate".to_owned(), "20200101-20201231".to_owned()),
            ("includefield".to_owned(), "00081030,0020000D".to_owned()),
        ];
        assert_eq!(
            query_string(&pairs),
            "PatientName=DOE%5EJANE%2A&StudyDate=20200101-20201231&includefield=00081030%2C0020000D"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(Duration::from_millis(100), 1);
        assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(100));
        let third = backoff(Duration::from_millis(100), 3);
        assert!(third >= Duration::from_millis(200) && third < Duration::from_millis(400));
        assert_eq!(backoff(Duration::from_secs(10), 8), Duration::from_secs(20));
    }

    #[test]
    fn errors_keep_the_aws_error_type() {
        let response = Response {
            status: 404,
            content_type: Some(
                "application/json; x-amzn-errortype=ResourceNotFoundException:http://x".to_owned(),
            ),
            body: Bytes::from_static(br#"{"message":"No such study"}"#),
        };
        let DicomWebError::Status { code, message, .. } = status_error(&response) else {
            panic!("a status error");
        };
        assert_eq!(code, "ResourceNotFoundException");
        assert_eq!(message, "No such study");
        let plain = Response {
            status: 503,
            content_type: None,
            body: Bytes::from_static(b"busy"),
        };
        assert_eq!(
            status_error(&plain).to_string(),
            "HTTP 503 InternalServerException: busy"
        );
    }
}
