//! How an emulator instance behaves: identity, timing, determinism, quotas.

use std::sync::Arc;
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
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            seed: None,
            transition_delay: Duration::from_millis(100),
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            datastore_quota: 10,
            clock: Arc::new(SystemClock),
        }
    }
}

impl EmulatorConfig {
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
}
