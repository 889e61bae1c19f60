//! A local emulator of the AWS HealthImaging REST API.
//!
//! The emulator speaks the service's wire protocol (restJson1, API version
//! `2023-07-19`) closely enough that the official SDKs and the AWS CLI talk
//! to it unmodified, given an endpoint override. It enforces every constraint
//! of the service model, answers errors with the model's codes and statuses,
//! and is deterministic under a seed and an injectable clock.
//!
//! Beside the API it serves a control plane under `/_emulator/` (health,
//! reset, fault injection); see [`control`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use healthimaging_emulator::{Emulator, EmulatorConfig};
//!
//! let emulator = Emulator::start(EmulatorConfig::default().with_seed(7)).await?;
//! println!("HealthImaging endpoint: {}", emulator.url());
//! emulator.shutdown().await
//! # }
//! ```
#![warn(missing_docs)]

mod arn;
pub mod clock;
mod config;
pub mod confined;
pub mod control;
pub mod dicomweb;
pub mod error;
mod faults;
mod http;
mod ids;
pub mod import;
pub mod metadata;
pub mod oidc;
mod ops;
mod router;
pub mod s3;
mod server;
mod service;
pub mod sigv4;
pub mod store;
pub mod surface;
#[cfg(test)]
mod testing;
mod validate;
mod wire;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{DEFAULT_MAX_OBJECT_BYTES, EmulatorConfig};
pub use error::{ApiError, ErrorCode};
pub use router::Operation;
pub use server::{Emulator, router};
pub use service::Service;
pub use sigv4::SigV4Key;
pub use surface::{Control, Surface};
