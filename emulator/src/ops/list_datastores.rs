//! ListDatastores: `GET /datastore?datastoreStatus=&maxResults=&nextToken=`.
//!
//! Datastores are listed in creation order. The `nextToken` carries the
//! creation sequence number of the last datastore returned (hex-encoded, so
//! it stays opaque), and the next page starts strictly after it: a datastore
//! created between two page requests can never shift the pages and make one
//! appear twice or not at all.

use axum::response::Response;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::DatastoreStatus;
use crate::validate;
use crate::wire;

use super::Request;
use super::get_datastore::summary;

/// The page size when `maxResults` is absent (the model gives no default).
const DEFAULT_PAGE: usize = 50;
const TOKEN_PREFIX: &str = "ListDatastores:";

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let status = request
        .query
        .get("datastoreStatus")
        .map(|s| validate::enumeration("datastoreStatus", s, &DatastoreStatus::ALL))
        .transpose()?;
    let page_size = request
        .query
        .integer("maxResults", 1, 50)?
        .map_or(DEFAULT_PAGE, |n| n as usize);
    let after = request.query.next_token()?.map(decode_token).transpose()?;

    let now = service.now();
    let delay = service.config.transition_delay;
    let store = service.store();
    let mut matching = store
        .datastores_in_creation_order()
        .into_iter()
        .filter(|ds| after.is_none_or(|seq| ds.seq > seq))
        .filter(|ds| status.is_none_or(|s| ds.status(now, delay) == s));
    let page: Vec<_> = matching.by_ref().take(page_size).collect();
    let next_token = match (matching.next(), page.last()) {
        (Some(_), Some(last)) => Some(encode_token(last.seq)),
        _ => None,
    };
    let summaries: Vec<Value> = page.iter().map(|ds| summary(service, ds)).collect();
    let mut body = json!({ "datastoreSummaries": summaries });
    if let Some(token) = next_token {
        body["nextToken"] = json!(token);
    }
    Ok(wire::json(&body))
}

fn encode_token(seq: u64) -> String {
    format!("{TOKEN_PREFIX}{seq}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(token: &str) -> ApiResult<u64> {
    let invalid = || {
        ApiError::validation(
            "nextToken",
            "Member must be a token returned by ListDatastores",
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
        .and_then(|text| text.strip_prefix(TOKEN_PREFIX)?.parse().ok())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        assert_eq!(decode_token(&encode_token(17)).unwrap(), 17);
        for bad in ["", "abc", "zz", "00", &encode_token(3)[2..]] {
            assert!(decode_token(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
