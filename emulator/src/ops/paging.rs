//! Pagination shared by the list and search operations.
//!
//! A `nextToken` is the operation's name and a position, hex-encoded so it
//! stays opaque and ASCII. The next page starts strictly after that position,
//! so items added between two page requests never shift the pages: nothing
//! is returned twice or skipped. A token from another operation, or one
//! altered, is a `ValidationException`.

use crate::error::{ApiError, ApiResult};
use crate::wire::Query;

/// The page size when `maxResults` is absent (the model gives no default).
pub const DEFAULT_PAGE: usize = 50;

/// `maxResults` (1–50), or the default.
pub fn page_size(query: &Query) -> ApiResult<usize> {
    Ok(query
        .integer("maxResults", 1, 50)?
        .map_or(DEFAULT_PAGE, |n| n as usize))
}

/// A token for `position` in `operation`.
pub fn encode(operation: &str, position: &str) -> String {
    format!("{operation}:{position}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The position a token of `operation` holds.
pub fn decode(operation: &str, token: &str) -> ApiResult<String> {
    let invalid = || {
        ApiError::validation(
            "nextToken",
            format!("Member must be a token returned by {operation}"),
        )
    };
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes)
        .ok()
        .and_then(|text| {
            text.strip_prefix(operation)?
                .strip_prefix(':')
                .map(str::to_owned)
        })
        .ok_or_else(invalid)
}

/// A token holding a sequence number.
pub fn seq_token(operation: &str, seq: u64) -> String {
    encode(operation, &seq.to_string())
}

/// The sequence number in the request's `nextToken`, if any.
pub fn after_seq(query: &Query, operation: &str) -> ApiResult<Option<u64>> {
    let Some(token) = query.next_token()? else {
        return Ok(None);
    };
    decode(operation, token)?.parse().map(Some).map_err(|_| {
        ApiError::validation(
            "nextToken",
            format!("Member must be a token returned by {operation}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        assert_eq!(decode("Op", &encode("Op", "17")).unwrap(), "17");
        assert_eq!(decode("Op", &seq_token("Op", 5)).unwrap(), "5");
        let token = encode("Op", "3");
        for bad in ["", "abc", "zz", "00", &token[2..], &encode("Other", "3")] {
            assert!(decode("Op", bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
