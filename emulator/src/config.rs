//! How an emulator instance behaves: identity, timing, determinism, quotas.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};

/// The settings of one emulator instance.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Seed for every identifier the emulator mints; `None` draws one at start.
    pub seed: Option<u64>,
    /// How long asynchronous transitions take (`CREATING` → `ACTIVE`,
    /// `DELETING` → `DELETED`), measured on [`EmulatorConfig::clock`].
    pub transition_delay: Duration,
    /// The region written into ARNs.
    pub region: String,
    /// The 12-digit account written into ARNs.
    pub account_id: String,
    /// How many datastores may exist at once (those not yet `DELETED`).
    pub datastore_quota: usize,
    /// The source of time for timestamps and transitions.
    pub clock: Arc<dyn Clock>,
    /// Where state, frames and metadata are kept; in memory when `None`.
    pub data_dir: Option<PathBuf>,
    /// The folder standing for S3 (`s3://bucket/key` is `<s3_root>/bucket/key`);
    /// `<data_dir>/s3` by default, or, without a data directory, a folder
    /// under the system's temporary directory that is removed when the
    /// emulator stops.
    pub s3_root: Option<PathBuf>,
    /// The largest S3 object an import reads; larger files fail one by one.
    pub max_object_bytes: u64,
    /// Whether `POST /_emulator/reset` and `/restore` may replace a data
    /// directory's contents (they always may for an emulator in memory).
    pub allow_reset: bool,
    /// Where `POST /_emulator/snapshot` writes snapshots; by default
    /// `<data_dir>/snapshots`, and none without a data directory.
    pub snapshot_dir: Option<PathBuf>,
    /// A snapshot to start from: restored before the emulator serves.
    pub restore_snapshot: Option<PathBuf>,
    /// The keys OIDC bearer tokens on DICOMweb must be signed with
    /// (`--oidc-jwks`); without them, bearer tokens are refused.
    pub oidc_jwks: Option<crate::oidc::Jwks>,
}

/// The default of [`EmulatorConfig::max_object_bytes`]: 1 GiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1 << 30;

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            seed: None,
            transition_delay: Duration::from_millis(100),
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            datastore_quota: 10,
            clock: Arc::new(SystemClock),
            data_dir: None,
            s3_root: None,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            allow_reset: false,
            snapshot_dir: None,
            restore_snapshot: None,
            oidc_jwks: None,
        }
    }
}

impl EmulatorConfig {
    /// Accepts OIDC bearer tokens signed by a key of `jwks`.
    pub fn with_oidc_jwks(mut self, jwks: crate::oidc::Jwks) -> Self {
        self.oidc_jwks = Some(jwks);
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the delay of asynchronous transitions.
    pub fn with_transition_delay(mut self, delay: Duration) -> Self {
        self.transition_delay = delay;
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the datastore quota.
    pub fn with_datastore_quota(mut self, quota: usize) -> Self {
        self.datastore_quota = quota;
        self
    }

    /// Keeps state, frames and metadata under `dir`, across restarts.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets the folder standing for S3.
    pub fn with_s3_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.s3_root = Some(dir.into());
        self
    }

    /// Sets the largest S3 object an import reads.
    pub fn with_max_object_bytes(mut self, bytes: u64) -> Self {
        self.max_object_bytes = bytes;
        self
    }

    /// The S3 folder this configuration resolves to, and whether it is a
    /// temporary one the emulator made (and removes when it stops).
    pub fn resolved_s3_root(&self) -> (PathBuf, bool) {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        match (&self.s3_root, &self.data_dir) {
            (Some(root), _) => (root.clone(), false),
            (None, Some(data)) => (data.join("s3"), false),
            (None, None) => {
                // One folder per emulator instance, even several in one process.
                let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
                let name = format!(
                    "healthimaging-emulator-s3-{}-{instance}",
                    std::process::id()
                );
                (std::env::temp_dir().join(name), true)
            }
        }
    }
}
