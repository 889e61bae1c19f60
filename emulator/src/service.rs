//! One emulator instance: its state and the handling of every request.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};

use crate::clock::Timestamp;
use crate::config::EmulatorConfig;
use crate::error::{ApiError, ErrorCode};
use crate::faults::Faults;
use crate::ids::{IdSource, Stream, random_seed};
use crate::ops::{self, Request};
use crate::router::{self, Operation};
use crate::store::Store;
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
    store: Mutex<Store>,
}

impl Service {
    /// A fresh, empty emulator.
    pub fn new(config: EmulatorConfig) -> Self {
        crate::validate::compile_all();
        let seed = config.seed.unwrap_or_else(random_seed);
        Self {
            config,
            seed,
            resource_ids: IdSource::new(seed, Stream::Resource),
            request_ids: IdSource::new(seed, Stream::Request),
            faults: Faults::new(IdSource::new(seed, Stream::Fault)),
            store: Mutex::new(Store::default()),
        }
    }

    /// The current time on the configured clock.
    pub fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Exclusive access to the state.
    ///
    /// A std mutex rather than a tokio one: no handler awaits while holding
    /// it, and a poisoned lock still holds consistent data because every
    /// operation validates before it changes anything.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every resource and fault, and starts the identifier streams
    /// over, as if the emulator had just started.
    pub fn reset(&self) {
        *self.store() = Store::default();
        self.faults.clear();
        self.resource_ids.reseed(self.seed);
        self.request_ids.reseed(self.seed);
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
                format!("The emulator failed while handling {}", operation.name()),
            )
            .into_response()
        }
    }
}

/// Answers one HealthImaging API request.
pub async fn dispatch(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let request_id = service.request_ids.uuid();
    let (operation, mut response) = match router::route(&method, uri.path()) {
        Err(no_route) => (
            None,
            wire::unknown_operation(no_route.status(), method.as_str(), uri.path()),
        ),
        Ok(route) => {
            let injection = service.faults.inject(route.operation);
            if !injection.delay.is_zero() {
                tokio::time::sleep(injection.delay).await;
            }
            let response = match injection.error {
                Some(error) => error.into_response(),
                None => {
                    let request = Request {
                        labels: route.labels,
                        query: Query::parse(uri.query()),
                        body,
                    };
                    handle_guarded(&service, route.operation, &request)
                }
            };
            (Some(route.operation), response)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    // Operation names, statuses and request IDs only: never bodies or labels,
    // which can carry patient data once image sets exist.
    tracing::debug!(
        operation = operation.map(|op| op.name()).unwrap_or("unknown"),
        status = response.status().as_u16(),
        request_id,
        "request"
    );
    response
}
