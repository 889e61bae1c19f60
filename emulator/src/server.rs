//! Serving the emulator: in-process (a router, no socket) or over TCP.
//!
//! Over TCP every request passes the listener's guard first
//! ([`crate::surface`]): Host, browser origins, content types and, when one
//! is set, the access key. A listener off loopback needs an access key.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::EmulatorConfig;
use crate::control;
use crate::service::{BodyTimeout, Service, dispatch};
use crate::surface::{self, BodyKind, Control, Surface};
use crate::wire;

/// The HealthImaging routes and the control API under `/_emulator/`,
/// without any guard: for callers inside the process (an SDK client whose
/// HTTP client is this router, tests).
pub fn router(service: Arc<Service>) -> Router {
    api(service.clone()).nest("/_emulator", control::routes().with_state(service))
}

/// Every request dispatched as a HealthImaging operation (or answered
/// `UnknownOperationException`).
fn api(service: Arc<Service>) -> Router {
    Router::new()
        .fallback(dispatch)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    wire::unknown_operation(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        method.as_str(),
        uri.path(),
    )
}

/// What the guard of one listener knows.
#[derive(Debug)]
struct Guard {
    surface: Arc<Surface>,
    bound: SocketAddr,
}

async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let body = match crate::dicomweb::route(request.method(), request.uri().path()) {
        Some(Ok(route)) if route.action.stores() => BodyKind::Dicom,
        _ => BodyKind::Json,
    };
    if let Some(refused) = surface::check(
        &guard.surface,
        guard.bound,
        request.method(),
        request.headers(),
        body,
    ) {
        return refused;
    }
    request
        .extensions_mut()
        .insert(BodyTimeout(guard.surface.body_timeout));
    let Some(key) = &guard.surface.sigv4 else {
        return next.run(request).await;
    };
    // The control API is the emulator's own, protected by the access key;
    // a bearer token on DICOMweb is checked as OIDC by the route itself.
    let dicomweb = matches!(
        crate::dicomweb::route(request.method(), request.uri().path()),
        Some(Ok(_))
    );
    if request.uri().path().starts_with("/_emulator/")
        || (dicomweb && crate::dicomweb::bearer_token(request.headers()).is_some())
    {
        return next.run(request).await;
    }
    // The signature covers the body: read it (within the largest limit any
    // route takes; each handler applies its own again), then pass it on.
    let limit = match body {
        BodyKind::Dicom => crate::dicomweb::MAX_STORE_BODY,
        BodyKind::Json => crate::router::MAX_BODY_LIMIT,
    };
    let (parts, bytes) = match crate::service::read_body(request, limit).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(refused) =
        crate::sigv4::verify(key, &parts.method, &parts.uri, &parts.headers, &bytes, now)
    {
        return refused;
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn guarded(app: Router, surface: &Arc<Surface>, bound: SocketAddr) -> Router {
    let state = Arc::new(Guard {
        surface: surface.clone(),
        bound,
    });
    app.layer(middleware::from_fn_with_state(state, guard))
}

/// A running emulator: its addresses and the means to stop it.
#[derive(Debug)]
pub struct Emulator {
    service: Arc<Service>,
    addr: SocketAddr,
    url: String,
    control_url: Option<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Emulator {
    /// Starts an emulator on an ephemeral port of `127.0.0.1`.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts an emulator on `addr`; it serves until [`Emulator::shutdown`].
    pub async fn bind(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Self> {
        Self::bind_with(addr, config, Surface::default()).await
    }

    /// Starts an emulator on `addr` with the listener settings `surface`.
    pub async fn bind_with(
        addr: SocketAddr,
        config: EmulatorConfig,
        surface: Surface,
    ) -> std::io::Result<Self> {
        refuse_open_listener(addr, &surface)?;
        let listener = TcpListener::bind(addr).await?;
        let service = Service::start(config)?;
        Self::serve(service, listener, surface).await
    }

    /// Serves an emulator that already runs (for instance the one a `serve`
    /// process holds) on `addr`.
    pub async fn expose(
        service: Arc<Service>,
        addr: SocketAddr,
        surface: Surface,
    ) -> std::io::Result<Self> {
        refuse_open_listener(addr, &surface)?;
        let listener = TcpListener::bind(addr).await?;
        Self::serve(service, listener, surface).await
    }

    async fn serve(
        service: Arc<Service>,
        listener: TcpListener,
        surface: Surface,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let surface = Arc::new(surface);
        let (stop, stopped) = watch::channel(false);
        let control = control::routes().with_state(service.clone());
        let mut app = api(service.clone());
        let mut tasks = Vec::new();
        let mut control_url = None;
        match surface.control {
            Control::SamePort => {
                app = app.nest("/_emulator", control);
                control_url = Some(format!("http://{addr}/_emulator"));
            }
            Control::Off => {}
            Control::Listen(control_addr) => {
                refuse_open_listener(control_addr, &surface)?;
                let control_listener = TcpListener::bind(control_addr).await?;
                let bound = control_listener.local_addr()?;
                control_url = Some(format!("http://{bound}/_emulator"));
                let control_app =
                    guarded(Router::new().nest("/_emulator", control), &surface, bound);
                tasks.push(spawn(control_listener, control_app, &surface, &stopped));
            }
        }
        tasks.push(spawn(
            listener,
            guarded(app, &surface, addr),
            &surface,
            &stopped,
        ));
        tracing::info!(%addr, seed = service.seed, "emulator listening");
        Ok(Self {
            service,
            addr,
            url: format!("http://{addr}"),
            control_url,
            stop,
            tasks,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the control API is served (`…/_emulator`), unless it is off.
    pub fn control_url(&self) -> Option<&str> {
        self.control_url.as_deref()
    }

    /// The folder standing for S3: `s3://bucket/key` is `<s3_root>/bucket/key`.
    pub fn s3_root(&self) -> &std::path::Path {
        self.service.s3.path()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator being served.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Stops accepting requests, lets those in flight finish within the
    /// shutdown deadline, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.map_err(std::io::Error::other)??;
        }
        Ok(())
    }
}

fn spawn(
    listener: TcpListener,
    app: Router,
    surface: &Arc<Surface>,
    stopped: &watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let surface = surface.clone();
    let mut stopped = stopped.clone();
    tokio::spawn(async move {
        crate::http::serve(listener, app, surface, async move {
            // A dropped handle stops the server as well.
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await
    })
}

/// A listener off loopback must carry an access key.
fn refuse_open_listener(addr: SocketAddr, surface: &Surface) -> std::io::Result<()> {
    if surface::is_loopback(&addr) || surface.access_key.is_some() || surface.insecure_no_auth {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{addr} is reachable from other machines: give the emulator an access key (--access-key-file), or pass --insecure-no-auth to serve it open"
        ),
    ))
}
