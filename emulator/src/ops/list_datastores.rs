//! ListDatastores: `GET /datastore?datastoreStatus=&maxResults=&nextToken=`.
//!
//! Datastores are listed in creation order. The `nextToken` carries the
//! creation sequence number of the last datastore returned (hex-encoded, so
//! it stays opaque), and the next page starts strictly after it: a datastore
//! created between two page requests can never shift the pages and make one
//! appear twice or not at all.

use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::service::Service;
use crate::store::DatastoreStatus;
use crate::validate;
use crate::wire;

use super::get_datastore::summary;
use super::{Request, paging};

const OPERATION: &str = "ListDatastores";

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let mut v = validate::Violations::default();
    let status = v
        .check(
            request
                .query
                .get("datastoreStatus")
                .map(|s| validate::enumeration("datastoreStatus", s, &DatastoreStatus::ALL))
                .transpose(),
        )?
        .flatten();
    let page_size = v.check(paging::page_size(&request.query))?.unwrap_or(1);
    let after = v
        .check(paging::after_seq(&request.query, OPERATION))?
        .flatten();
    v.finish()?;

    let now = service.now();
    let delay = service.config.transition_delay;
    let datastores = service.store().read(|r| r.datastores())?;
    let mut matching = datastores
        .iter()
        .filter(|ds| after.is_none_or(|seq| ds.seq > seq))
        .filter(|ds| status.is_none_or(|s| ds.status(now, delay) == s));
    let page: Vec<_> = matching.by_ref().take(page_size).collect();
    let next_token = match (matching.next(), page.last()) {
        (Some(_), Some(last)) => Some(paging::seq_token(OPERATION, last.seq)),
        _ => None,
    };
    let summaries: Vec<Value> = page.iter().map(|ds| summary(service, ds)).collect();
    let mut body = json!({ "datastoreSummaries": summaries });
    if let Some(token) = next_token {
        body["nextToken"] = json!(token);
    }
    Ok(wire::json(&body))
}
