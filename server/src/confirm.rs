//! Two-phase confirmation of destructive tools.
//!
//! A destructive tool called without a `confirmation_token` changes nothing:
//! it reads the current state, shows what would happen, and gets a token
//! here. The token is bound to the tool, to its other arguments, and to a
//! fingerprint of the state the preview showed (for example each image set
//! with its version). Called again with the token, the tool re-reads the
//! state; it executes only if the token is valid for this call and the
//! fingerprint still matches. Tokens are single use (a refused redemption
//! spends the token too) and expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// A token handed out with a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The token the second call must pass.
    pub token: String,
    /// How long it stays valid.
    pub expires_in: Duration,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Never issued, or already used.
    #[error("this confirmation token is unknown or was already used; tokens work once")]
    Unknown,
    /// Issued, but its time ran out.
    #[error("this confirmation token has expired")]
    Expired,
    /// Issued for another tool or other arguments.
    #[error("this confirmation token was issued for a different tool or different arguments")]
    Mismatch,
}

#[derive(Debug)]
struct Pending {
    tool: String,
    arguments: Value,
    state: Value,
    expires: Instant,
}

/// The outstanding tokens of one server.
#[derive(Debug)]
pub struct Confirmations {
    ttl: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

/// The longest a token lives, whatever is configured.
const MAX_TTL: Duration = Duration::from_secs(86_400);

impl Confirmations {
    /// Tokens valid for `ttl`, at most a day.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Issues a token for `tool` called with `arguments` (without the token)
    /// after a preview of `state`.
    pub fn issue(&self, tool: &str, arguments: Value, state: Value) -> Issued {
        let token = new_token();
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, p| p.expires > now);
        pending.insert(
            token.clone(),
            Pending {
                tool: tool.to_owned(),
                arguments,
                state,
                expires: now.checked_add(self.ttl).unwrap_or(now),
            },
        );
        Issued {
            token,
            expires_in: self.ttl,
        }
    }

    /// Spends `token` for `tool` called with `arguments`, and returns the
    /// state fingerprint its preview showed.
    pub fn redeem(&self, token: &str, tool: &str, arguments: &Value) -> Result<Value, Refusal> {
        let pending = self.lock().remove(token).ok_or(Refusal::Unknown)?;
        if Instant::now() >= pending.expires {
            return Err(Refusal::Expired);
        }
        if pending.tool != tool || &pending.arguments != arguments {
            return Err(Refusal::Mismatch);
        }
        Ok(pending.state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 128 random bits from the operating system: an assistant cannot guess a
/// token, so it cannot skip the preview.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("confirm-{hex}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn tokens_are_single_use_and_bound_to_tool_and_arguments() {
        let confirmations = Confirmations::new(Duration::from_secs(60));
        let args = json!({"datastore_id": "a"});
        let issued = confirmations.issue("delete_datastore", args.clone(), json!({"v": 1}));
        assert_eq!(
            confirmations.redeem(&issued.token, "delete_datastore", &args),
            Ok(json!({"v": 1}))
        );
        assert_eq!(
            confirmations.redeem(&issued.token, "delete_datastore", &args),
            Err(Refusal::Unknown)
        );

        let issued = confirmations.issue("delete_datastore", args.clone(), json!(null));
        let other = json!({"datastore_id": "b"});
        assert_eq!(
            confirmations.redeem(&issued.token, "delete_datastore", &other),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            confirmations.redeem(&issued.token, "delete_datastore", &args),
            Err(Refusal::Unknown),
            "a refused redemption spends the token"
        );

        let issued = confirmations.issue("delete_datastore", args.clone(), json!(null));
        assert_eq!(
            confirmations.redeem(&issued.token, "delete_image_set", &args),
            Err(Refusal::Mismatch)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_ttl_is_capped_at_a_day_without_overflowing() {
        let confirmations = Confirmations::new(Duration::from_secs(u64::MAX));
        let issued = confirmations.issue("t", serde_json::json!({}), serde_json::json!(1));
        assert_eq!(issued.expires_in, Duration::from_secs(86_400));
        tokio::time::advance(Duration::from_secs(86_401)).await;
        assert!(matches!(
            confirmations.redeem(&issued.token, "t", &serde_json::json!({})),
            Err(Refusal::Expired)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire() {
        let confirmations = Confirmations::new(Duration::from_secs(300));
        let args = json!({});
        let issued = confirmations.issue("t", args.clone(), json!(null));
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            confirmations.redeem(&issued.token, "t", &args),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn tokens_are_unpredictable() {
        let confirmations = Confirmations::new(Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let a = confirmations.issue("t", json!({}), json!(null)).token;
        let b = confirmations.issue("t", json!({}), json!(null)).token;
        assert_ne!(a, b);
        assert_eq!(a.len(), "confirm-".len() + 32);
    }
}
