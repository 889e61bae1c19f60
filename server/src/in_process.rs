//! The SDK's HTTP client for the embedded emulator: requests go straight
//! into the emulator's router, in this process, without a socket.
//!
//! So `serve` on the embedded emulator opens no port at all: nothing on the
//! machine (a web page in the user's browser included) can reach the
//! emulator behind the MCP server. The SDK signs and serializes exactly as
//! it does for AWS; only the transport differs.

use aws_sdk_medicalimaging::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The URL the SDK is configured with: never resolved, never connected to.
pub const ENDPOINT: &str = "http://embedded-emulator.localhost";

/// An HTTP client whose every request is answered by `router`.
#[derive(Debug, Clone)]
pub struct InProcess {
    router: Router,
}

impl InProcess {
    /// A client for `router`, in the form the SDK takes.
    pub fn client(router: Router) -> SharedHttpClient {
        SharedHttpClient::new(Self { router })
    }

    /// A connector for `router`, for requests built outside the SDK
    /// (DICOMweb, [`crate::dicomweb`]).
    pub fn connector(router: Router) -> SharedHttpConnector {
        SharedHttpConnector::new(Self { router })
    }
}

impl HttpClient for InProcess {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let router = self.router.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = request.into_parts();
            // Every HealthImaging request body is in memory (JSON or empty).
            let bytes = body
                .bytes()
                .map(bytes_from)
                .ok_or_else(|| ConnectorError::other("a streaming request body".into(), None))?;
            let request = axum::http::Request::from_parts(parts, axum::body::Body::from(bytes));
            let response = router
                .oneshot(request)
                .await
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                .to_bytes();
            let response = axum::http::Response::from_parts(parts, SdkBody::from(bytes));
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

fn bytes_from(slice: &[u8]) -> axum::body::Bytes {
    axum::body::Bytes::copy_from_slice(slice)
}
