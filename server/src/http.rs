//! MCP over streamable HTTP (`serve --transport http`), guarded.
//!
//! rmcp's streamable HTTP service answers at `/mcp`. In front of it:
//! - Host validation (rmcp's, on by default: loopback names, the bound
//!   address, and `--allowed-host`), so a DNS-rebound name is refused;
//! - Origin validation, which rmcp leaves off: enforced here. A request
//!   carrying an `Origin` must name an `--allowed-origin` (none by default,
//!   so every browser origin is refused), and a request from a browser
//!   (it sends `Sec-Fetch-Site`) without an `Origin` is refused too;
//! - a bearer token, compared in constant time, required whenever the
//!   listener is not on loopback (unless `--insecure-no-auth`); the
//!   client's token is never passed on to AWS;
//! - a request body cap.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::HealthImagingServer;

/// The largest JSON-RPC request body accepted.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How the HTTP transport is guarded.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Hosts requests may name besides loopback and the bound address.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call.
    pub allowed_origins: Vec<String>,
    /// The bearer token every request must carry, when set.
    pub token: Option<String>,
    /// OAuth access tokens accepted as bearer tokens, when configured.
    pub oauth: Option<OAuth>,
}

/// An OAuth authorization server whose access tokens (JWTs) are accepted.
#[derive(Debug, Clone)]
pub struct OAuth {
    /// The issuer (`iss`) and the authorization server named in the
    /// protected-resource metadata.
    pub issuer: String,
    /// The audience (`aud`) tokens must name: this resource.
    pub audience: String,
    /// The issuer's signing keys.
    pub jwks: healthimaging_emulator::oidc::Jwks,
}

impl OAuth {
    /// Checks an access token: signature, `exp`/`nbf`/`iat`, `iss`, `aud`.
    pub fn check(&self, token: &str) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.jwks.check(token, now)?;
        let claims: serde_json::Value = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("the token's payload is not JSON")?;
        if claims["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err("the token's issuer (iss) is not the configured one".into());
        }
        let audience = &claims["aud"];
        let ours = audience.as_str() == Some(self.audience.as_str())
            || audience
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(self.audience.as_str())));
        if !ours {
            return Err("the token's audience (aud) is not this server".into());
        }
        Ok(())
    }

    /// The RFC 9728 protected-resource metadata.
    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "healthimaging-mcp"
        })
    }
}

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Off loopback without a token.
    #[error(
        "Listening on {0}, which is not a loopback address, needs a bearer token: give --auth-token-file FILE or HEALTHIMAGING_MCP_TOKEN, or pass --insecure-no-auth to serve without one"
    )]
    NeedsToken(SocketAddr),
    /// The address could not be bound.
    #[error("Could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("The HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Checks a token's shape: 16 or more printable ASCII characters.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a bearer token is at least 16 printable ASCII characters".to_owned());
    }
    Ok(())
}

/// A bound listener and the router that will serve it.
pub struct Bound {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    /// The address actually bound.
    pub addr: SocketAddr,
}

/// Binds `addr` and prepares MCP at `/mcp` for `server`.
pub async fn bind(
    server: HealthImagingServer,
    addr: SocketAddr,
    guard: Guard,
    insecure_no_auth: bool,
    cancel: CancellationToken,
) -> Result<Bound, HttpError> {
    if !addr.ip().is_loopback()
        && guard.token.is_none()
        && guard.oauth.is_none()
        && !insecure_no_auth
    {
        return Err(HttpError::NeedsToken(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let mut hosts: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "[::1]".into(),
        addr.ip().to_string(),
        addr.to_string(),
    ];
    hosts.extend(guard.allowed_hosts.iter().cloned());
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(cancel.child_token());
    config = if guard.allowed_origins.is_empty() {
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(guard.allowed_origins.clone())
    };
    let service: StreamableHttpService<HealthImagingServer, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
    let metadata = guard.oauth.as_ref().map(OAuth::metadata);
    let guard = Arc::new(guard);
    let mut router = axum::Router::new().nest_service("/mcp", service);
    if let Some(metadata) = metadata {
        let answer = move || {
            let metadata = metadata.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    metadata.to_string(),
                )
            }
        };
        router = router
            .route(METADATA_PATH, axum::routing::get(answer.clone()))
            .route(&format!("{METADATA_PATH}/mcp"), axum::routing::get(answer));
    }
    let router = router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let guard = guard.clone();
        async move { check(&guard, request, next).await }
    }));
    Ok(Bound {
        listener,
        router,
        addr,
    })
}

impl Bound {
    /// Serves until `cancel` fires.
    pub async fn serve(self, cancel: CancellationToken) -> Result<(), HttpError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { cancel.cancelled_owned().await })
            .await
            .map_err(HttpError::Serve)
    }
}

/// Where the protected-resource metadata is served (RFC 9728).
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The checks rmcp does not make: a browser without an Origin, and the token.
async fn check(guard: &Guard, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(METADATA_PATH) && guard.oauth.is_some() {
        return next.run(request).await;
    }
    let headers = request.headers();
    if headers.contains_key("sec-fetch-site") && !headers.contains_key(header::ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a browser request without an Origin header is refused",
        );
    }
    if guard.token.is_some() || guard.oauth.is_some() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let by_token = guard
            .token
            .as_ref()
            .is_some_and(|token| constant_time_eq(given.as_bytes(), token.as_bytes()));
        let by_oauth = !by_token
            && !given.is_empty()
            && guard
                .oauth
                .as_ref()
                .is_some_and(|oauth| oauth.check(given).is_ok());
        if !by_token && !by_oauth {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer <token>)",
            );
            let challenge = match (
                &guard.oauth,
                headers.get(header::HOST).and_then(|h| h.to_str().ok()),
            ) {
                (Some(_), Some(host)) => format!(
                    "Bearer realm=\"healthimaging-mcp\", resource_metadata=\"http://{host}{METADATA_PATH}\""
                ),
                _ => "Bearer realm=\"healthimaging-mcp\"".to_owned(),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32001, "message": message}
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body.to_string()),
    )
        .into_response()
}

/// Equality whose time depends on the length only, not on where the bytes
/// differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(constant_time_eq(b"same-token", b"same-token"));
        assert!(!constant_time_eq(b"same-token", b"same-tokeN"));
        assert!(!constant_time_eq(b"short", b"longer"));
        assert!(check_token("0123456789abcdef").is_ok());
        assert!(check_token("short").is_err());
        assert!(check_token("0123456789 abcdef").is_err());
    }
}
