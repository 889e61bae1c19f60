//! TagResource, ListTagsForResource and UntagResource on `/tags/{resourceArn}`.
//!
//! Datastores and image sets both carry tags. The ARN arrives as a single
//! percent-encoded path segment and must name a resource of this emulator's
//! region and account that exists (a `DELETED` datastore does not).

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::json;

use crate::arn::ResourceArn;
use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::{Reader, Writer};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::{Request, find_live_datastore};

/// How many tags one resource can carry.
const MAX_TAGS_PER_RESOURCE: usize = 50;
/// How many keys one UntagResource call can name (`TagKeyList`).
const MAX_UNTAG_KEYS: usize = 200;

pub(super) fn tag_resource(service: &Service, request: &Request) -> ApiResult<Response> {
    let arn = request.label(0);
    let body = JsonBody::parse(&request.body)?;
    let mut v = validate::Violations::default();
    let resource = v.check(ResourceArn::parse(arn))?;
    let tags = v
        .check(body.string_map("tags").and_then(|tags| {
            tags.ok_or_else(|| ApiError::validation("tags", "Member must not be null"))
        }))?
        .unwrap_or_default();
    v.check(validate_tags("tags", &tags))?;
    v.finish()?;
    let Some(resource) = resource else {
        return Err(ApiError::validation(
            "resourceArn",
            "Member must not be null",
        ));
    };
    service.store().write(|w| -> ApiResult<_> {
        let mut current = resource_tags(service, w, &resource, arn)?;
        let total = current
            .keys()
            .chain(tags.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if total > MAX_TAGS_PER_RESOURCE {
            return Err(ApiError::validation(
                "tags",
                format!(
                    "A resource can carry at most {MAX_TAGS_PER_RESOURCE} tags; this request would leave it with {total}"
                ),
            ));
        }
        current.extend(tags);
        set_tags(w, &resource, current)
    })?;
    Ok(wire::json(&json!({})))
}

pub(super) fn list_tags_for_resource(service: &Service, request: &Request) -> ApiResult<Response> {
    let arn = request.label(0);
    let resource = ResourceArn::parse(arn)?;
    let tags = service
        .store()
        .read(|r| resource_tags(service, r, &resource, arn))?;
    Ok(wire::json(&json!({ "tags": tags })))
}

pub(super) fn untag_resource(service: &Service, request: &Request) -> ApiResult<Response> {
    let arn = request.label(0);
    let mut v = validate::Violations::default();
    let resource = v.check(ResourceArn::parse(arn))?;
    let keys = v
        .check(
            request
                .query
                .all("tagKeys")
                .ok_or_else(|| ApiError::validation("tagKeys", "Member must not be null")),
        )?
        .unwrap_or_default();
    if keys.len() > MAX_UNTAG_KEYS {
        v.check(Err::<(), _>(ApiError::validation(
            "tagKeys",
            format!("Member must have length less than or equal to {MAX_UNTAG_KEYS}"),
        )))?;
    }
    if let Some(key) = keys
        .iter()
        .find(|key| validate::tag_key("tagKeys", key).is_err())
    {
        v.check(validate::tag_key("tagKeys", key))?;
    }
    v.finish()?;
    let Some(resource) = resource else {
        return Err(ApiError::validation(
            "resourceArn",
            "Member must not be null",
        ));
    };
    service.store().write(|w| -> ApiResult<_> {
        let mut tags = resource_tags(service, w, &resource, arn)?;
        for key in keys {
            tags.remove(key);
        }
        set_tags(w, &resource, tags)
    })?;
    Ok(wire::json(&json!({})))
}

/// Checks every key and value of a `TagMap` and the per-resource limit.
pub(super) fn validate_tags(field: &str, tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ApiError::validation(
            field,
            format!("A resource can carry at most {MAX_TAGS_PER_RESOURCE} tags"),
        ));
    }
    for (key, value) in tags {
        validate::tag_key(field, key)?;
        validate::tag_value(&format!("{field}.{key}"), value)?;
    }
    Ok(())
}

/// Gives `resource` the tag set `tags`.
fn set_tags(
    w: &mut Writer<'_>,
    resource: &ResourceArn,
    tags: BTreeMap<String, String>,
) -> ApiResult<()> {
    match resource {
        ResourceArn::Datastore { datastore_id, .. } => w.set_datastore_tags(datastore_id, &tags)?,
        ResourceArn::ImageSet {
            datastore_id,
            image_set_id,
            ..
        } => {
            if let Some(mut set) = w.image_set(datastore_id, image_set_id)? {
                w.set_image_set_tags(&mut set, tags)?;
            }
        }
    }
    Ok(())
}

/// The tags of the resource `resource` names.
fn resource_tags(
    service: &Service,
    reader: &Reader<'_>,
    resource: &ResourceArn,
    arn: &str,
) -> ApiResult<BTreeMap<String, String>> {
    resource.ensure_local(&service.config.region, &service.config.account_id, arn)?;
    let not_found = || ApiError::not_found(format!("Resource {arn} does not exist"));
    match resource {
        ResourceArn::Datastore { datastore_id, .. } => {
            let datastore =
                find_live_datastore(service, reader, datastore_id).map_err(|_| not_found())?;
            Ok(datastore.tags)
        }
        ResourceArn::ImageSet {
            datastore_id,
            image_set_id,
            ..
        } => {
            find_live_datastore(service, reader, datastore_id).map_err(|_| not_found())?;
            reader
                .image_set(datastore_id, image_set_id)?
                .filter(|set| !set.is_deleted())
                .map(|set| set.tags)
                .ok_or_else(not_found)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use crate::testing::{active_datastore, plant_image_set, send, service};

    fn tags_uri(arn: &str) -> String {
        let encoded: String = form_urlencoded::byte_serialize(arn.as_bytes()).collect();
        format!("/tags/{encoded}")
    }

    #[tokio::test]
    async fn image_sets_carry_their_own_tags() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let set = "b".repeat(32);
        plant_image_set(&service, &ds, &set);
        let arn =
            format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{ds}/imageset/{set}");
        let (status, _, _) = send(
            &service,
            Method::POST,
            &tags_uri(&arn),
            r#"{"tags":{"study":"demo"}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, body) = send(&service, Method::GET, &tags_uri(&arn), "").await;
        assert_eq!(body["tags"]["study"], "demo");
        let ds_arn = format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{ds}");
        let (_, _, body) = send(&service, Method::GET, &tags_uri(&ds_arn), "").await;
        assert_eq!(
            body["tags"],
            serde_json::json!({}),
            "the datastore's tags are separate"
        );
    }

    #[tokio::test]
    async fn an_image_set_arn_under_the_wrong_datastore_is_not_found() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let (_, _, other) = send(
            &service,
            Method::POST,
            "/datastore",
            r#"{"clientToken":"another"}"#,
        )
        .await;
        let set = "c".repeat(32);
        plant_image_set(&service, other["datastoreId"].as_str().unwrap(), &set);
        let arn =
            format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{ds}/imageset/{set}");
        let (status, code, _) = send(&service, Method::GET, &tags_uri(&arn), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
    }

    #[tokio::test]
    async fn at_most_fifty_tags_per_resource() {
        let (service, clock) = service();
        let ds = active_datastore(&service, &clock).await;
        let arn = format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{ds}");
        let tags = |range: std::ops::Range<usize>| {
            let map: serde_json::Map<String, serde_json::Value> =
                range.map(|i| (format!("k{i}"), "v".into())).collect();
            serde_json::json!({ "tags": map }).to_string()
        };
        let (status, _, _) = send(&service, Method::POST, &tags_uri(&arn), &tags(0..40)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, code, body) =
            send(&service, Method::POST, &tags_uri(&arn), &tags(30..41)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "overlapping keys do not count twice: {body}"
        );
        assert!(code.is_none());
        let (status, code, _) = send(&service, Method::POST, &tags_uri(&arn), &tags(41..51)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code.as_deref(), Some("ValidationException"));
    }
}
