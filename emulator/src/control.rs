//! The control API under `/_emulator/`, beside the HealthImaging routes.
//!
//! | request | does |
//! |---|---|
//! | `GET /_emulator/health` | `{"status":"ok", "seed", "datastores", "imageSets", "operations", "imports": {"instances", "failedFiles", "bytes", "encodeSeconds"}, "s3Root"}` |
//! | `POST /_emulator/reset` | forgets every resource and fault (with a data directory only when started with `allow_reset`) |
//! | `POST /_emulator/snapshot` | `{"name"}`: a consistent copy of the whole store into the snapshot folder |
//! | `POST /_emulator/restore` | `{"name"}`: the store replaced by that snapshot (with a data directory only when started with `allow_reset`; not while an import runs) |
//! | `GET /_emulator/faults` | the active fault rules |
//! | `POST /_emulator/faults` | adds a rule (an SDK operation or a DICOMweb action by name): `{"operation"?, "fault": "throttling" \| "internal_error" \| "latency", "latencyMs"?, "count"?, "probability"?}` |
//! | `DELETE /_emulator/faults` | removes every rule |
//! | `GET /_emulator/clock` | `{"now", "advancedSeconds"}`: the emulator's time (epoch seconds) |
//! | `POST /_emulator/clock` | `{"advanceSeconds"}`: moves the clock forward (never back), e.g. 30 days to see storage tiers change |
//!
//! Errors have the same shape as the API's (`x-amzn-ErrorType`, `message`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::faults::Fault;
use crate::router::Operation;
use crate::service::{Service, read_body};
use crate::wire::{self, JsonBody};

/// The control routes, to be nested under `/_emulator`.
pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
        .route("/snapshot", post(snapshot))
        .route("/restore", post(restore))
        .route("/clock", get(clock).post(advance_clock))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .method_not_allowed_fallback(crate::server::method_not_allowed)
}

async fn health(State(service): State<Arc<Service>>) -> Response {
    let (datastores, image_sets) = match service.store().read(|r| r.totals()) {
        Ok(totals) => totals,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let operations: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    let imports = service.imports.totals();
    wire::json(&json!({
        "status": "ok",
        "seed": service.seed,
        "datastores": datastores,
        "imageSets": image_sets,
        "operations": operations,
        "imports": {
            "instances": imports.imported,
            "failedFiles": imports.failed,
            "bytes": imports.bytes,
            "encodeSeconds": imports.encode_time.as_secs_f64(),
        },
        "s3Root": service.s3.path(),
    }))
}

async fn clock(State(service): State<Arc<Service>>) -> Response {
    wire::json(&json!({
        "now": service.now(),
        "advancedSeconds": service.clock_advanced().as_secs_f64(),
    }))
}

async fn advance_clock(State(service): State<Arc<Service>>, request: Request) -> Response {
    let body = match read_body(request, 4096).await {
        Ok((_, body)) => body,
        Err(refused) => return refused,
    };
    match advance_seconds(&body) {
        Ok(seconds) => {
            let now = service.advance_clock(std::time::Duration::from_secs_f64(seconds));
            tracing::info!(seconds, "clock moved forward");
            wire::json(&json!({
                "now": now,
                "advancedSeconds": service.clock_advanced().as_secs_f64(),
            }))
        }
        Err(error) => error.into_response(),
    }
}

fn advance_seconds(body: &[u8]) -> ApiResult<f64> {
    JsonBody::parse(body)?
        .number("advanceSeconds")?
        .filter(|s| s.is_finite() && (0.0..=3.2e9).contains(s))
        .ok_or_else(|| {
            ApiError::validation(
                "advanceSeconds",
                "Member must be a number of seconds from 0 to 3.2e9 (about a century)",
            )
        })
}

async fn reset(State(service): State<Arc<Service>>) -> Response {
    if service.config.data_dir.is_some() && !service.config.allow_reset {
        return ApiError::conflict(
            "Resetting this emulator would erase its data directory; start it with --allow-reset to allow that",
        )
        .into_response();
    }
    match service.reset() {
        Ok(()) => {
            tracing::info!("emulator state reset");
            wire::json(&json!({ "status": "reset" }))
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// The snapshot a request's `{"name"}` names, in the snapshot folder.
fn snapshot_path(service: &Service, body: &[u8]) -> ApiResult<std::path::PathBuf> {
    let name = JsonBody::parse(body)?.required_string("name")?;
    let valid = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(ApiError::validation(
            "name",
            "Member must be 1 to 64 letters, digits and . _ - (not starting with .)",
        ));
    }
    let dir = service.snapshot_dir().ok_or_else(|| {
        ApiError::conflict(
            "This emulator has no snapshot folder: start it with --snapshot-dir or --data-dir",
        )
    })?;
    Ok(dir.join(name))
}

fn snapshot_answer(info: &crate::store::SnapshotInfo) -> Response {
    wire::json(&json!({
        "path": info.path,
        "datastores": info.datastores,
        "imageSets": info.image_sets,
        "blobs": info.blobs,
    }))
}

async fn snapshot(State(service): State<Arc<Service>>, request: Request) -> Response {
    let body = match read_body(request, 4 * 1024).await {
        Ok((_, body)) => body,
        Err(refused) => return refused,
    };
    let path = match snapshot_path(&service, &body) {
        Ok(path) => path,
        Err(error) => return error.into_response(),
    };
    if path.exists() {
        return ApiError::conflict(format!(
            "A snapshot named {} exists already",
            path.display()
        ))
        .into_response();
    }
    let taken = tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(crate::store::StoreError::from)?;
        }
        service.store().snapshot(&path)
    })
    .await;
    match taken {
        Ok(Ok(info)) => {
            tracing::info!(blobs = info.blobs, "snapshot written");
            snapshot_answer(&info)
        }
        Ok(Err(error)) => ApiError::from(error).into_response(),
        Err(_) => ApiError::new(ErrorCode::InternalServer, "The snapshot failed").into_response(),
    }
}

async fn restore(State(service): State<Arc<Service>>, request: Request) -> Response {
    let body = match read_body(request, 4 * 1024).await {
        Ok((_, body)) => body,
        Err(refused) => return refused,
    };
    let path = match snapshot_path(&service, &body) {
        Ok(path) => path,
        Err(error) => return error.into_response(),
    };
    if service.config.data_dir.is_some() && !service.config.allow_reset {
        return ApiError::conflict(
            "Restoring would replace this emulator's data directory; start it with --allow-reset to allow that",
        )
        .into_response();
    }
    let running = service.store().read(|r| r.unfinished_jobs());
    match running {
        Ok(jobs) if !jobs.is_empty() => {
            return ApiError::conflict("An import job is running; restore once it has ended")
                .into_response();
        }
        Err(error) => return ApiError::from(error).into_response(),
        Ok(_) => {}
    }
    if !path.join("snapshot.json").exists() {
        return ApiError::not_found(format!("There is no snapshot {}", path.display()))
            .into_response();
    }
    match tokio::task::spawn_blocking(move || service.restore(&path)).await {
        Ok(Ok(info)) => {
            tracing::info!(blobs = info.blobs, "snapshot restored");
            snapshot_answer(&info)
        }
        Ok(Err(error)) => ApiError::from(error).into_response(),
        Err(_) => ApiError::new(ErrorCode::InternalServer, "The restore failed").into_response(),
    }
}

async fn list_faults(State(service): State<Arc<Service>>) -> Response {
    wire::json(&json!({ "faults": service.faults.list() }))
}

async fn clear_faults(State(service): State<Arc<Service>>) -> Response {
    let removed = service.faults.list().len();
    service.faults.clear();
    wire::json(&json!({ "removed": removed }))
}

async fn add_fault(State(service): State<Arc<Service>>, request: Request) -> Response {
    let body = match read_body(request, 16 * 1024).await {
        Ok((_, body)) => body,
        Err(refused) => return refused,
    };
    match parse_fault(&body) {
        Ok((operation, fault, count, probability)) => {
            let rule = service.faults.add(operation, fault, count, probability);
            tracing::info!(rule = rule.id, "fault rule added");
            wire::json(&rule)
        }
        Err(error) => error.into_response(),
    }
}

type FaultRequest = (Option<&'static str>, Fault, Option<u64>, Option<f64>);

fn parse_fault(body: &[u8]) -> ApiResult<FaultRequest> {
    let body = JsonBody::parse(body)?;
    let operation = body
        .string("operation")?
        .map(|name| {
            let known = Operation::ALL
                .iter()
                .map(|op| op.name())
                .chain(crate::dicomweb::Action::ALL.iter().map(|a| a.name()));
            known.clone().find(|known| *known == name).ok_or_else(|| {
                let names: Vec<&str> = known.collect();
                ApiError::validation(
                    "operation",
                    format!("Member must be one of: {}", names.join(", ")),
                )
            })
        })
        .transpose()?;
    let fault = match body.required_string("fault")?.as_str() {
        "throttling" => Fault::Throttling,
        "internal_error" => Fault::InternalError,
        "latency" => Fault::Latency {
            latency_ms: body.unsigned("latencyMs")?.ok_or_else(|| {
                ApiError::validation("latencyMs", "Member must not be null for a latency fault")
            })?,
        },
        _ => {
            return Err(ApiError::validation(
                "fault",
                "Member must be one of: throttling, internal_error, latency",
            ));
        }
    };
    let count = body.unsigned("count")?;
    if count == Some(0) {
        return Err(ApiError::validation("count", "Member must be at least 1"));
    }
    let probability = body.number("probability")?;
    if probability.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err(ApiError::validation(
            "probability",
            "Member must be a number greater than 0 and at most 1",
        ));
    }
    Ok((operation, fault, count, probability))
}
