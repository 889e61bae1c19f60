//! One emulator instance: its state and the handling of every request.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::clock::Timestamp;
use crate::config::EmulatorConfig;
use crate::error::{ApiError, ErrorCode};
use crate::faults::Faults;
use crate::ids::{IdSource, Stream, random_seed};
use crate::ops::{self, Request};
use crate::router::{self, Operation};
use crate::s3::S3Root;
use crate::store::{Location, Store, StoreError};
use crate::wire::{self, Query};

/// The state of one emulator and the services it offers its handlers.
#[derive(Debug)]
pub struct Service {
    /// The settings it was started with.
    pub config: EmulatorConfig,
    /// The seed every identifier stream derives from.
    pub seed: u64,
    /// Resource identifiers.
    pub resource_ids: IdSource,
    request_ids: IdSource,
    /// Injected faults.
    pub faults: Faults,
    /// The folder standing for S3.
    pub s3: S3Root,
    /// Totals over the imports run.
    pub imports: crate::import::Counters,
    /// Parsed metadata documents for the DICOMweb reads.
    pub documents: crate::dicomweb::Documents,
    temporary_s3: bool,
    /// How far the control API has moved the clock forward.
    clock_advance: std::sync::atomic::AtomicU64,
    store: Store,
    import_queue: Mutex<Option<Sender<String>>>,
}

impl Service {
    /// Starts an emulator: opens (or creates) its store, then starts the
    /// import worker, which resumes any job a previous run left unfinished.
    /// Without a data directory everything is kept in memory.
    pub fn start(config: EmulatorConfig) -> std::io::Result<Arc<Self>> {
        crate::validate::compile_all();
        let started = std::time::SystemTime::now();
        let seed = config.seed.unwrap_or_else(random_seed);
        let location = match &config.data_dir {
            Some(dir) => Location::Dir(dir.clone()),
            None => Location::Memory,
        };
        let store = Store::open(&location).map_err(std::io::Error::other)?;
        if let Some(snapshot) = &config.restore_snapshot {
            store.restore(snapshot).map_err(std::io::Error::other)?;
        }
        let (s3_root, temporary_s3) = config.resolved_s3_root();
        let s3 = S3Root::new(s3_root, config.max_object_bytes);
        std::fs::create_dir_all(s3.path())?;
        let resource_ids = IdSource::new(seed, Stream::Resource);
        let (writes, unfinished) = store
            .read(|r| {
                let writes: u64 = r.meta("writes")?.and_then(|n| n.parse().ok()).unwrap_or(0);
                Ok::<_, StoreError>((writes, r.unfinished_jobs()?))
            })
            .map_err(std::io::Error::other)?;
        if writes > 0 {
            // A restarted emulator must not mint the IDs of the first run
            // again; its stream depends on the history it restarted with.
            resource_ids.reseed(seed ^ writes.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let service = Arc::new(Self {
            config,
            seed,
            resource_ids,
            request_ids: IdSource::new(seed, Stream::Request),
            faults: Faults::new(IdSource::new(seed, Stream::Fault)),
            s3,
            imports: Default::default(),
            documents: Default::default(),
            temporary_s3,
            clock_advance: Default::default(),
            store,
            import_queue: Mutex::new(None),
        });
        if service.config.data_dir.is_some() {
            // Files a crash left between a blob's write and its commit.
            let sweeper = Arc::downgrade(&service);
            std::thread::Builder::new()
                .name("blob-sweep".into())
                .spawn(move || {
                    if let Some(service) = sweeper.upgrade() {
                        match service.store.sweep(started) {
                            Ok(0) => {}
                            Ok(removed) => {
                                tracing::info!(removed, "removed blob files a crash left behind")
                            }
                            Err(error) => tracing::warn!(%error, "could not sweep the blob files"),
                        }
                    }
                })?;
        }
        let (sender, jobs) = channel::<String>();
        let worker = Arc::downgrade(&service);
        std::thread::Builder::new()
            .name("import-worker".into())
            .spawn(move || {
                // Holds the service only while a job runs: dropping the last
                // handle closes the channel and ends the thread.
                for job_id in jobs {
                    let Some(service) = worker.upgrade() else {
                        break;
                    };
                    crate::import::run(&service, &job_id);
                }
            })?;
        for job_id in unfinished {
            let _ = sender.send(job_id);
        }
        *service
            .import_queue
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(sender);
        Ok(service)
    }

    /// Queues the import job `job_id` for the worker.
    pub fn queue_import(&self, job_id: &str) {
        if let Some(sender) = &*self.import_queue.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = sender.send(job_id.to_owned());
        }
    }

    /// The current time on the configured clock, plus however far the
    /// control API moved it forward.
    pub fn now(&self) -> Timestamp {
        let advance = self
            .clock_advance
            .load(std::sync::atomic::Ordering::Relaxed);
        Timestamp::from_millis(self.config.clock.now().as_millis().saturating_add(advance))
    }

    /// Moves the clock forward by `by` (never back); answers the new time.
    pub fn advance_clock(&self, by: std::time::Duration) -> Timestamp {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.clock_advance
            .fetch_add(millis, std::sync::atomic::Ordering::Relaxed);
        self.now()
    }

    /// How far the clock has been moved forward.
    pub fn clock_advanced(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.clock_advance
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Records a read of `set`'s data (a touch of its storage tier). Reads
    /// stay reads: the store is written at most once a minute per image set.
    pub fn touch(&self, set: &crate::store::ImageSet) {
        const GRANULARITY_MILLIS: u64 = 60_000;
        let now = self.now();
        if now
            .as_millis()
            .saturating_sub(set.last_accessed_at.as_millis())
            < GRANULARITY_MILLIS
        {
            return;
        }
        let mut touched = set.clone();
        if let Err(error) = self.store.write(|w| w.touch(&mut touched, now)) {
            tracing::warn!(%error, "could not record an image set access");
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Forgets every resource and fault, and starts the identifier streams
    /// over, as if the emulator had just started. The S3 folder is the
    /// caller's data and stays.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.store.clear()?;
        self.faults.clear();
        self.resource_ids.reseed(self.seed);
        self.request_ids.reseed(self.seed);
        self.clock_advance
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Where snapshots are kept: the configured folder, else
    /// `<data-dir>/snapshots`.
    pub fn snapshot_dir(&self) -> Option<std::path::PathBuf> {
        self.config.snapshot_dir.clone().or_else(|| {
            self.config
                .data_dir
                .as_ref()
                .map(|dir| dir.join("snapshots"))
        })
    }

    /// Replaces the whole state with the snapshot in `dir`, then carries on
    /// as an emulator started from it would: identifier streams follow the
    /// restored history, and imports it left unfinished resume.
    pub fn restore(&self, dir: &std::path::Path) -> Result<crate::store::SnapshotInfo, StoreError> {
        let info = self.store.restore(dir)?;
        let (writes, unfinished) = self.store.read(|r| {
            let writes: u64 = r.meta("writes")?.and_then(|n| n.parse().ok()).unwrap_or(0);
            Ok::<_, StoreError>((writes, r.unfinished_jobs()?))
        })?;
        self.resource_ids
            .reseed(self.seed ^ writes.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for job in unfinished {
            self.queue_import(&job);
        }
        Ok(info)
    }
}

impl Drop for Service {
    /// A temporary S3 folder (no `--s3-root`, no `--data-dir`) goes with the
    /// emulator: the embedded demo set would otherwise leave tens of
    /// megabytes behind at every start.
    fn drop(&mut self) {
        if self.temporary_s3 {
            let _ = std::fs::remove_dir_all(self.s3.path());
        }
    }
}

/// Runs an operation; a panic becomes an `InternalServerException` instead
/// of a connection closed without an answer. Handlers are synchronous, so
/// catching the unwind here covers every one of them.
fn handle_guarded(service: &Service, operation: Operation, request: &Request) -> Response {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ops::handle(service, operation, request)
    }));
    match outcome {
        Ok(result) => result.unwrap_or_else(IntoResponse::into_response),
        Err(_) => {
            tracing::error!(operation = operation.name(), "operation handler panicked");
            ApiError::new(
                ErrorCode::InternalServer,
                format!("The service failed while handling {}", operation.name()),
            )
            .into_response()
        }
    }
}

/// How long a request's body may take to arrive, set by the listener that
/// received it (requests from inside the process have no limit).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// Reads a request body of at most `limit` bytes; a refusal is AWS-shaped.
pub async fn read_body(
    request: axum::extract::Request,
    limit: usize,
) -> Result<(axum::http::request::Parts, Bytes), Response> {
    let (parts, body) = request.into_parts();
    let too_large = || {
        crate::surface::refusal(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("The request body is larger than the {limit} bytes this operation takes"),
        )
    };
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let collect = axum::body::to_bytes(body, limit);
    let collected = match parts.extensions.get::<BodyTimeout>() {
        Some(BodyTimeout(timeout)) => match tokio::time::timeout(*timeout, collect).await {
            Ok(collected) => collected,
            Err(_) => {
                return Err(crate::surface::refusal(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeoutException",
                    "The request body did not arrive in time",
                ));
            }
        },
        None => collect.await,
    };
    match collected {
        Ok(bytes) => Ok((parts, bytes)),
        Err(error) => {
            let over = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if over {
                Err(too_large())
            } else {
                Err(ApiError::new(
                    ErrorCode::Validation,
                    "The request body could not be read (malformed or interrupted)",
                )
                .into_response())
            }
        }
    }
}

/// Answers one HealthImaging API request.
pub async fn dispatch(
    State(service): State<Arc<Service>>,
    request: axum::extract::Request,
) -> Response {
    let request_id = service.request_ids.uuid();
    let method = request.method().clone();
    let uri = request.uri().clone();
    if let Some(matched) = crate::dicomweb::route(&method, uri.path()) {
        let (action, response) = match matched {
            Err(no_route) => (
                None,
                wire::unknown_operation(no_route.status(), method.as_str(), uri.path()),
            ),
            Ok(route) => {
                let action = route.action;
                let response = crate::dicomweb::dispatch(&service, route, request).await;
                (Some(action), response)
            }
        };
        // Action names only: DICOMweb paths carry UIDs.
        return answered(response, &request_id, action.map(|a| a.name()));
    }
    let (operation, response) = match router::route(&method, uri.path()) {
        Err(no_route) => (
            None,
            wire::unknown_operation(no_route.status(), method.as_str(), uri.path()),
        ),
        Ok(route) => {
            let operation = route.operation;
            let response = match read_body(request, operation.body_limit()).await {
                Err(refused) => refused,
                Ok((_, body)) => run(&service, route, uri.query(), body).await,
            };
            (Some(operation), response)
        }
    };
    answered(response, &request_id, operation.map(|op| op.name()))
}

/// A response with its request ID, logged by operation name, status and
/// request ID only: never bodies, paths or labels, which can carry patient
/// data once image sets exist.
fn answered(mut response: Response, request_id: &str, name: Option<&str>) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    tracing::debug!(
        operation = name.unwrap_or("unknown"),
        status = response.status().as_u16(),
        request_id,
        "request"
    );
    response
}

/// Runs a routed request, after any fault injected into its operation.
async fn run(
    service: &Arc<Service>,
    route: router::Route,
    query: Option<&str>,
    body: Bytes,
) -> Response {
    let injection = service.faults.inject(route.operation.name());
    if !injection.delay.is_zero() {
        tokio::time::sleep(injection.delay).await;
    }
    if let Some(error) = injection.error {
        return error.into_response();
    }
    let request = Request {
        labels: route.labels,
        query: Query::parse(query),
        body,
    };
    // Handlers read files and wait on the database: never on the runtime's
    // own threads.
    let worker = service.clone();
    let operation = route.operation;
    tokio::task::spawn_blocking(move || handle_guarded(&worker, operation, &request))
        .await
        .unwrap_or_else(|_| {
            ApiError::new(
                ErrorCode::InternalServer,
                format!("The service failed while handling {}", operation.name()),
            )
            .into_response()
        })
}
