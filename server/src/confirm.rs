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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
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

/// The outstanding tokens of one server.
///
/// Tokens are sealed, not remembered: each carries the tool, a digest of
/// its arguments and of the previewed state, an expiry and a nonce, under an
/// HMAC-SHA-256 with the server's key. Any replica holding the same key
/// (`--confirmation-key-file`) can redeem a token another issued, so
/// previews and confirmations may land on different replicas behind a load
/// balancer. Single use is kept by a replay set of spent nonces, pruned as
/// they expire; each replica keeps its own.
pub struct Confirmations {
    ttl: Duration,
    key: hmac::Key,
    spent: Mutex<HashMap<String, u64>>,
    wall_at_start: u64,
    started: Instant,
}

impl std::fmt::Debug for Confirmations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmations")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The longest a token lives, whatever is configured.
const MAX_TTL: Duration = Duration::from_secs(86_400);
const PREFIX: &str = "confirm-";

impl Confirmations {
    /// Tokens valid for `ttl` (at most a day), sealed with a key made now.
    pub fn new(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides randomness");
        Self::with_key(ttl, &key)
    }

    /// Tokens valid for `ttl`, sealed with `key` (shared by replicas).
    pub fn with_key(ttl: Duration, key: &[u8]) -> Self {
        let wall_at_start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            ttl: ttl.min(MAX_TTL),
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            spent: Mutex::new(HashMap::new()),
            wall_at_start,
            started: Instant::now(),
        }
    }

    /// Seconds since the epoch: the wall clock at start plus the monotonic
    /// time since (which tests can move).
    fn now(&self) -> u64 {
        self.wall_at_start + Instant::now().duration_since(self.started).as_secs()
    }

    /// Issues a token for `tool` called with `arguments` (without the token)
    /// after a preview of `state`.
    pub fn issue(&self, tool: &str, arguments: Value, state: Value) -> Issued {
        let mut payload = Vec::with_capacity(PAYLOAD + TAG);
        payload.push(VERSION);
        payload.extend_from_slice(&(self.now() + self.ttl.as_secs()).to_be_bytes());
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&sha256(tool.as_bytes())[..8]);
        payload.extend_from_slice(&value_digest(&arguments));
        payload.extend_from_slice(&value_digest(&state));
        let tag = hmac::sign(&self.key, &payload);
        payload.extend_from_slice(&tag.as_ref()[..TAG]);
        Issued {
            token: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&payload)),
            expires_in: self.ttl,
        }
    }

    /// Spends `token` for `tool` called with `arguments`, and returns the
    /// digest of the state its preview showed (compare it with [`digest`] of
    /// the state now).
    pub fn redeem(&self, token: &str, tool: &str, arguments: &Value) -> Result<Value, Refusal> {
        let bytes = token
            .strip_prefix(PREFIX)
            .and_then(|rest| URL_SAFE_NO_PAD.decode(rest).ok())
            .filter(|b| b.len() == PAYLOAD + TAG && b[0] == VERSION)
            .ok_or(Refusal::Unknown)?;
        let (payload, tag) = bytes.split_at(PAYLOAD);
        let expected = hmac::sign(&self.key, payload);
        if !constant_time_eq(&expected.as_ref()[..TAG], tag) {
            return Err(Refusal::Unknown);
        }
        let expiry = u64::from_be_bytes(payload[1..9].try_into().map_err(|_| Refusal::Unknown)?);
        let nonce = &payload[9..25];
        let now = self.now();
        if now >= expiry {
            return Err(Refusal::Expired);
        }
        {
            let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
            spent.retain(|_, until| *until > now);
            // A refused redemption spends the token too.
            let key: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
            if spent.insert(key, expiry).is_some() {
                return Err(Refusal::Unknown);
            }
        }
        if payload[25..33] != sha256(tool.as_bytes())[..8]
            || payload[33..49] != value_digest(arguments)
        {
            return Err(Refusal::Mismatch);
        }
        Ok(hex(&payload[49..65]))
    }
}

/// The layout of a token: version (1), expiry (8), nonce (16), tool (8),
/// arguments (16) and state (16) digests, then 16 bytes of HMAC-SHA-256:
/// 108 base64url characters after `confirm-`.
const VERSION: u8 = 1;
const PAYLOAD: usize = 65;
const TAG: usize = 16;

/// What [`Confirmations::redeem`] returns for a preview of `state`.
pub fn digest(state: &Value) -> Value {
    hex(&value_digest(state))
}

fn value_digest(value: &Value) -> [u8; 16] {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = [0u8; 16];
    out.copy_from_slice(&sha256(text.as_bytes())[..16]);
    out
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

fn hex(bytes: &[u8]) -> Value {
    Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
            Ok(digest(&json!({"v": 1})))
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
        assert!(a.starts_with("confirm-"));
    }

    #[tokio::test]
    async fn a_forged_or_foreign_token_is_unknown_and_replicas_share_a_key() {
        let one = Confirmations::with_key(Duration::from_secs(60), b"shared key");
        let two = Confirmations::with_key(Duration::from_secs(60), b"shared key");
        let other = Confirmations::with_key(Duration::from_secs(60), b"another key");
        let args = json!({"datastore_id": "a"});
        let issued = one.issue("t", args.clone(), json!(1));
        assert_eq!(
            other.redeem(&issued.token, "t", &args),
            Err(Refusal::Unknown)
        );
        assert_eq!(two.redeem(&issued.token, "t", &args), Ok(digest(&json!(1))));
        // A payload changed under the seal is not accepted.
        let mut bytes = URL_SAFE_NO_PAD
            .decode(issued.token.strip_prefix(PREFIX).unwrap())
            .unwrap();
        bytes[3] ^= 1;
        let forged = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(one.redeem(&forged, "t", &args), Err(Refusal::Unknown));
        assert!(issued.token.len() <= 128, "fits ConfirmationToken");
        assert_eq!(
            one.redeem("confirm-nonsense", "t", &args),
            Err(Refusal::Unknown)
        );
    }
}
