//! Fault injection: throttling, internal errors and latency on demand.
//!
//! A rule names an operation (or every operation), a fault, and when it fires:
//! on each of the next `count` matching calls, with a `probability` on each
//! call, or both (each call fires with the probability until `count` calls
//! have fired). Probabilities draw from the seeded fault stream, so a seeded
//! run injects the same faults every time.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::error::{ApiError, ErrorCode};
use crate::ids::IdSource;

/// What a rule does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `ThrottlingException` (429).
    Throttling,
    /// Answer `InternalServerException` (500).
    InternalError,
    /// Delay the answer.
    Latency {
        /// The delay in milliseconds.
        #[serde(rename = "latencyMs")]
        latency_ms: u64,
    },
}

/// One injection rule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// A number naming the rule in listings.
    pub id: u64,
    /// The operation or DICOMweb action it applies to, by name; `None`
    /// for every one.
    pub operation: Option<&'static str>,
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// How many more calls it fires on; `None` for no limit.
    pub remaining: Option<u64>,
    /// The chance it fires on a matching call; `None` for always.
    pub probability: Option<f64>,
}

/// What the injected faults make of one call.
#[derive(Debug, Default, PartialEq)]
pub struct Injection {
    /// Added latency.
    pub delay: Duration,
    /// The error to answer instead of running the operation.
    pub error: Option<ApiError>,
}

/// The active rules of one emulator.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    next_id: Mutex<u64>,
    draws: IdSource,
}

impl Faults {
    /// No rules; probabilities drawn from `draws`.
    pub fn new(draws: IdSource) -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            next_id: Mutex::new(1),
            draws,
        }
    }

    /// Adds a rule and returns it with its ID.
    pub fn add(
        &self,
        operation: Option<&'static str>,
        fault: Fault,
        count: Option<u64>,
        probability: Option<f64>,
    ) -> FaultRule {
        let mut next_id = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        let rule = FaultRule {
            id: *next_id,
            operation,
            fault,
            remaining: count,
            probability,
        };
        *next_id += 1;
        self.lock().push(rule.clone());
        rule
    }

    /// The active rules.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Applies the rules to one call of the operation or DICOMweb action
    /// named `operation`, using up counts.
    pub fn inject(&self, operation: &str) -> Injection {
        let mut injection = Injection::default();
        let mut rules = self.lock();
        for rule in rules.iter_mut() {
            if rule.operation.is_some_and(|op| op != operation) || rule.remaining == Some(0) {
                continue;
            }
            if rule
                .probability
                .is_some_and(|p| self.draws.next_unit() >= p)
            {
                continue;
            }
            if let Some(remaining) = rule.remaining.as_mut() {
                *remaining -= 1;
            }
            match rule.fault {
                Fault::Latency { latency_ms } => {
                    injection.delay += Duration::from_millis(latency_ms);
                }
                Fault::Throttling if injection.error.is_none() => {
                    injection.error = Some(ApiError::new(
                        ErrorCode::Throttling,
                        "Rate exceeded (injected by the emulator)",
                    ));
                }
                Fault::InternalError if injection.error.is_none() => {
                    injection.error = Some(ApiError::new(
                        ErrorCode::InternalServer,
                        "Internal service error (injected by the emulator)",
                    ));
                }
                Fault::Throttling | Fault::InternalError => {}
            }
        }
        rules.retain(|rule| rule.remaining != Some(0));
        injection
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Stream;
    use crate::router::Operation;

    fn faults() -> Faults {
        Faults::new(IdSource::new(42, Stream::Fault))
    }

    #[test]
    fn counted_rules_fire_exactly_count_times_then_vanish() {
        let faults = faults();
        faults.add(
            Some(Operation::ListDatastores.name()),
            Fault::Throttling,
            Some(2),
            None,
        );
        assert!(
            faults
                .inject(Operation::GetDatastore.name())
                .error
                .is_none()
        );
        for _ in 0..2 {
            let error = faults
                .inject(Operation::ListDatastores.name())
                .error
                .unwrap();
            assert_eq!(error.code, ErrorCode::Throttling);
        }
        assert!(
            faults
                .inject(Operation::ListDatastores.name())
                .error
                .is_none()
        );
        assert!(faults.list().is_empty());
    }

    #[test]
    fn latency_adds_up_and_combines_with_an_error() {
        let faults = faults();
        faults.add(None, Fault::Latency { latency_ms: 30 }, None, None);
        faults.add(None, Fault::Latency { latency_ms: 20 }, None, None);
        faults.add(None, Fault::InternalError, Some(1), None);
        let injection = faults.inject(Operation::CreateDatastore.name());
        assert_eq!(injection.delay, Duration::from_millis(50));
        assert_eq!(injection.error.unwrap().code, ErrorCode::InternalServer);
        assert!(
            faults
                .inject(Operation::CreateDatastore.name())
                .error
                .is_none()
        );
    }

    #[test]
    fn probabilities_fire_about_as_often_as_asked() {
        let faults = faults();
        faults.add(None, Fault::Throttling, None, Some(0.25));
        let fired = (0..4000)
            .filter(|_| {
                faults
                    .inject(Operation::GetDatastore.name())
                    .error
                    .is_some()
            })
            .count();
        assert!((800..1200).contains(&fired), "fired {fired} of 4000");
    }
}
