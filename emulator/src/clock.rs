//! Time as the emulator sees it.
//!
//! Every timestamp the emulator reports, and every asynchronous transition it
//! makes (a datastore going from `CREATING` to `ACTIVE`), is read from a
//! [`Clock`]. Production uses [`SystemClock`]; tests use [`ManualClock`] and
//! move time forward explicitly, so no test ever sleeps to see a transition.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch.
///
/// On the wire it is a JSON number of epoch **seconds** with a fractional part
/// (`1680027126.436`), which is what the real service sends and the only form
/// the Rust SDK accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Seconds since the Unix epoch, with millisecond precision.
    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// This timestamp moved forward by `delay`.
    pub fn after(self, delay: Duration) -> Self {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_epoch_seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// Reads the wire form back. Rounding to the millisecond is exact: the
    /// serialized form is the shortest decimal that round-trips.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        if !(seconds >= 0.0 && seconds.is_finite()) {
            return Err(serde::de::Error::custom(
                "a timestamp is a non-negative number",
            ));
        }
        Ok(Self((seconds * 1000.0).round() as u64))
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; shared by cloning.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(start.as_millis())),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialize_as_fractional_epoch_seconds() {
        let json = serde_json::to_string(&Timestamp::from_millis(1_680_027_126_436)).unwrap();
        assert_eq!(json, "1680027126.436");
    }

    #[test]
    fn timestamps_read_back_to_the_millisecond() {
        for millis in [
            0,
            1,
            1_680_027_126_436,
            1_700_000_000_999,
            4_102_444_800_001,
        ] {
            let t = Timestamp::from_millis(millis);
            let back: Timestamp =
                serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        assert!(serde_json::from_str::<Timestamp>("-1").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_advanced_and_is_shared_by_clones() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_millis(1_000));
        other.advance(Duration::from_millis(250));
        assert_eq!(clock.now(), Timestamp::from_millis(1_250));
    }
}
