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
    if !addr.ip().is_loopback() && guard.token.is_none() && !insecure_no_auth {
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
    let guard = Arc::new(guard);
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
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

/// The checks rmcp does not make: a browser without an Origin, and the token.
async fn check(guard: &Guard, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.contains_key("sec-fetch-site") && !headers.contains_key(header::ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a browser request without an Origin header is refused",
        );
    }
    if let Some(token) = &guard.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer <token>)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"healthimaging-mcp\""),
            );
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
