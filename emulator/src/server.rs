//! Serving the emulator over HTTP, in-process or standalone.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::EmulatorConfig;
use crate::control;
use crate::service::{Service, dispatch};
use crate::wire;

/// The whole HTTP surface of one emulator: the control API under
/// `/_emulator/`, and every other request dispatched as a HealthImaging
/// operation (or answered `UnknownOperationException`).
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .nest("/_emulator", control::routes())
        .fallback(dispatch)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    wire::unknown_operation(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        method.as_str(),
        uri.path(),
    )
}

/// A running emulator: its address and the means to stop it.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    url: String,
    s3_root: std::path::PathBuf,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Emulator {
    /// Starts an emulator on an ephemeral port of `127.0.0.1`.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts an emulator on `addr`; it serves until [`Emulator::shutdown`].
    pub async fn bind(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let service = Service::start(config)?;
        tracing::info!(%addr, seed = service.seed, "emulator listening");
        let s3_root = service.s3.path().to_owned();
        let app = router(service);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped handle stops the server as well.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            url: format!("http://{addr}"),
            s3_root,
            shutdown,
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder standing for S3: `s3://bucket/key` is `<s3_root>/bucket/key`.
    pub fn s3_root(&self) -> &std::path::Path {
        &self.s3_root
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, finishes those in flight, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}
