//! The AWS SDK client: HTTP stack, retries, and the `runtime-` host prefix.
//!
//! Eight data-plane operations carry the endpoint host prefix `runtime-`, and
//! the SDK prepends it to an overridden endpoint as well:
//! `http://127.0.0.1:4566` becomes `http://runtime-127.0.0.1:4566`, which
//! never resolves. [`StripRuntimePrefix`] removes the prefix again before the
//! request is signed, for the configured custom endpoint only; real AWS
//! endpoints keep it, since there `runtime-medical-imaging…` is a real host.

use std::time::Duration;

use aws_sdk_medicalimaging::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_medicalimaging::config::retry::RetryConfig;
use aws_sdk_medicalimaging::config::timeout::TimeoutConfig;
use aws_sdk_medicalimaging::config::{ConfigBag, Intercept, RuntimeComponents, SharedHttpClient};
use aws_sdk_medicalimaging::error::BoxError;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Retry and timeout settings of the SDK client.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Attempts per call, the first included (the SDK retries throttling,
    /// 5xx and connection failures).
    pub max_attempts: u32,
    /// The first retry's back-off; later ones grow exponentially.
    pub initial_backoff: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl Tuning {
    /// The SDK's retry configuration.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
    }

    /// The SDK's timeout configuration.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_attempt_timeout(self.attempt_timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
    }
}

/// The HTTP client: hyper 1 with rustls on the Ring provider (the SDK's
/// default features would add a second, older HTTP stack and aws-lc).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Removes the `runtime-` host prefix the SDK adds to a custom endpoint.
#[derive(Debug, Clone)]
pub struct StripRuntimePrefix {
    prefixed: String,
    plain: String,
}

impl StripRuntimePrefix {
    /// For the endpoint `endpoint_url` (`scheme://host[:port][/…]`).
    pub fn for_endpoint(endpoint_url: &str) -> Self {
        let (scheme, rest) = endpoint_url
            .split_once("://")
            .unwrap_or(("http", endpoint_url));
        let authority = rest.split('/').next().unwrap_or(rest);
        Self {
            prefixed: format!("{scheme}://runtime-{authority}"),
            plain: format!("{scheme}://{authority}"),
        }
    }

    fn strip(&self, uri: &str) -> Option<String> {
        uri.strip_prefix(&self.prefixed)
            .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            .map(|rest| format!("{}{rest}", self.plain))
    }
}

impl Intercept for StripRuntimePrefix {
    fn name(&self) -> &'static str {
        "StripRuntimePrefix"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if let Some(uri) = self.strip(request.uri()) {
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_configured_endpoint() {
        let strip = StripRuntimePrefix::for_endpoint("http://127.0.0.1:4566");
        assert_eq!(
            strip
                .strip("http://runtime-127.0.0.1:4566/datastore/x/searchImageSets")
                .as_deref(),
            Some("http://127.0.0.1:4566/datastore/x/searchImageSets")
        );
        assert_eq!(strip.strip("http://127.0.0.1:4566/datastore"), None);
        assert_eq!(strip.strip("http://runtime-127.0.0.1:45667/x"), None);
        assert_eq!(
            strip.strip("https://runtime-medical-imaging.us-east-1.amazonaws.com/x"),
            None
        );
    }

    #[test]
    fn endpoint_paths_are_ignored() {
        let strip = StripRuntimePrefix::for_endpoint("https://imaging.example.test/prefix");
        assert_eq!(
            strip
                .strip("https://runtime-imaging.example.test/prefix/x")
                .as_deref(),
            Some("https://imaging.example.test/prefix/x")
        );
    }
}
