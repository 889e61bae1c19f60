//! An MCP server for AWS HealthImaging.
//!
//! The server exposes HealthImaging to AI assistants as MCP tools and
//! resources, with guard rails: tools the operator did not grant are not
//! offered at all, destructive tools work in two phases (preview, then a
//! single-use confirmation token), and every tool call leaves an audit record
//! without patient data.
//!
//! It talks to HealthImaging only through the official AWS SDK: to real AWS,
//! to any compatible endpoint, or to the emulator of
//! [`healthimaging_emulator`] started in-process. See [`backend`].
#![warn(missing_docs)]

pub mod args;
pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod deid;
pub mod dicomweb;
pub mod errors;
pub mod export;
pub mod health;
pub mod http;
pub mod in_process;
pub mod loading;
pub mod logging;
pub mod metadata_cache;
pub mod permissions;
mod resources;
pub mod run;
pub mod scenario;
pub mod sdk;
pub mod seed;
pub mod server;
pub mod timefmt;
pub mod tools;
pub mod transport;

pub use server::{HealthImagingServer, ServerOptions};
