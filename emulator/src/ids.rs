//! Identifiers the emulator mints: datastore IDs, request IDs, random draws.
//!
//! All of them come from [`IdSource`], a SplitMix64 generator. Under a fixed
//! `--seed` the same sequence of requests gets the same IDs, byte for byte,
//! which is what makes emulator runs reproducible. Each kind of identifier has
//! its own stream, so that, for example, the number of requests made (each one
//! draws a request ID) never shifts the datastore IDs.

use std::sync::Mutex;

/// The independent streams drawn from one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Datastore, image set and job identifiers.
    Resource,
    /// `x-amzn-RequestId` values.
    Request,
    /// Random draws for fault injection probabilities.
    Fault,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Stream::Resource => 0x5245_534f_5552_4345,
            Stream::Request => 0x5245_5155_4553_5453,
            Stream::Fault => 0x4641_554c_5453_2121,
        }
    }
}

/// A deterministic source of identifiers for one stream.
#[derive(Debug)]
pub struct IdSource {
    stream: Stream,
    state: Mutex<u64>,
}

impl IdSource {
    /// A source for `stream` derived from `seed`.
    pub fn new(seed: u64, stream: Stream) -> Self {
        Self {
            stream,
            state: Mutex::new(seed ^ stream.salt()),
        }
    }

    /// Starts the stream over from `seed`.
    pub fn reseed(&self, seed: u64) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = seed ^ self.stream.salt();
    }

    /// The next 64 random bits.
    pub fn next_u64(&self) -> u64 {
        // The critical section is a handful of integer operations: a std mutex
        // is cheaper than an atomic retry loop here and never held across await.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)`.
    pub fn next_unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// 32 lowercase hexadecimal characters: the form of every HealthImaging
    /// resource ID (`[0-9a-z]{32}` in the model, lowercase hex in practice).
    pub fn resource_id(&self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    /// A version 4 UUID string, the form of `x-amzn-RequestId`.
    pub fn uuid(&self) -> String {
        let high = (self.next_u64() & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
        let low = (self.next_u64() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

/// A seed from the operating system, for runs without `--seed`.
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    // Falling back to the time keeps the emulator usable on a system whose
    // entropy source is unavailable; such runs are simply not reproducible.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x1234_5678);
        return nanos;
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_ids_and_streams_are_independent() {
        let a = IdSource::new(7, Stream::Resource);
        let b = IdSource::new(7, Stream::Resource);
        let requests = IdSource::new(7, Stream::Request);
        let first = a.resource_id();
        assert_eq!(first, b.resource_id());
        assert_ne!(first, requests.resource_id());
        assert_ne!(first, a.resource_id(), "consecutive IDs must differ");
        a.reseed(7);
        assert_eq!(a.resource_id(), first, "reseeding starts the stream over");
    }

    #[test]
    fn resource_ids_match_the_model_pattern() {
        let ids = IdSource::new(1, Stream::Resource);
        for _ in 0..100 {
            let id = ids.resource_id();
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            );
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let ids = IdSource::new(3, Stream::Request);
        let uuid = ids.uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn unit_draws_stay_in_range() {
        let ids = IdSource::new(11, Stream::Fault);
        assert!(
            (0..1000)
                .map(|_| ids.next_unit())
                .all(|x| (0.0..1.0).contains(&x))
        );
    }
}
