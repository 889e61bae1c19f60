//! CreateDatastore: `POST /datastore`.
//!
//! Idempotent on `clientToken`: a retry with the same token and parameters
//! answers the datastore the first call created; the same token with other
//! parameters is a `ConflictException` (the service's exact answer to that
//! case is not documented).

use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::Service;
use crate::store::{Datastore, DatastoreStatus, LosslessStorageFormat, TokenKind};
use crate::validate;
use crate::wire::{self, JsonBody};

use super::Request;
use super::tags::validate_tags;

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let body = JsonBody::parse(&request.body)?;
    // Every member is checked before the first violation is answered.
    let mut v = validate::Violations::default();
    let name = v.check(body.string("datastoreName"))?.flatten();
    if let Some(name) = &name {
        v.check(validate::string(
            "datastoreName",
            name,
            1,
            256,
            &validate::DATASTORE_NAME,
        ))?;
    }
    let client_token = v
        .check(body.required_string("clientToken"))?
        .unwrap_or_default();
    v.check(validate::string(
        "clientToken",
        &client_token,
        1,
        64,
        &validate::CLIENT_TOKEN,
    ))?;
    let tags = v
        .check(body.string_map("tags"))?
        .flatten()
        .unwrap_or_default();
    v.check(validate_tags("tags", &tags))?;
    let kms_key_arn = v.check(body.string("kmsKeyArn"))?.flatten();
    if let Some(arn) = &kms_key_arn {
        v.check(validate::string(
            "kmsKeyArn",
            arn,
            1,
            512,
            &validate::KMS_KEY_ARN,
        ))?;
    }
    let lambda_authorizer_arn = v.check(body.string("lambdaAuthorizerArn"))?.flatten();
    if let Some(arn) = &lambda_authorizer_arn {
        v.check(validate::pattern(
            "lambdaAuthorizerArn",
            arn,
            &validate::LAMBDA_ARN,
        ))?;
    }
    let format = v
        .check(body.string("losslessStorageFormat").and_then(|f| {
            f.map(|f| {
                validate::enumeration("losslessStorageFormat", &f, &LosslessStorageFormat::ALL)
            })
            .transpose()
        }))?
        .flatten();
    v.finish()?;
    let fingerprint =
        format!("{name:?}|{kms_key_arn:?}|{lambda_authorizer_arn:?}|{format:?}|{tags:?}");

    let now = service.now();
    let delay = service.config.transition_delay;
    service.store().write(|w| -> ApiResult<_> {
        if let Some(used) = w.client_token(TokenKind::Datastore, &client_token)? {
            if used.fingerprint != fingerprint {
                return Err(ApiError::conflict(format!(
                    "clientToken {client_token} was already used to create a datastore with different parameters"
                )));
            }
            if let Some(datastore) = w.datastore(&used.resource_id)? {
                return Ok(wire::json(&json!({
                    "datastoreId": datastore.id,
                    "datastoreStatus": datastore.status(now, delay).as_str(),
                })));
            }
        }
        let live = w
            .datastores()?
            .iter()
            .filter(|ds| ds.status(now, delay) != DatastoreStatus::Deleted)
            .count();
        if live >= service.config.datastore_quota {
            return Err(ApiError::new(
                ErrorCode::ServiceQuotaExceeded,
                format!(
                    "The account already has {live} datastores, the quota of {}; delete one first",
                    service.config.datastore_quota
                ),
            ));
        }
        let id = loop {
            let id = service.resource_ids.resource_id();
            if w.datastore(&id)?.is_none() {
                break id;
            }
        };
        let datastore = Datastore {
            // The service's name for an unnamed datastore is undocumented; the
            // emulator derives one from the ID so that the required output
            // member is always present.
            name: name.unwrap_or_else(|| format!("datastore-{}", &id[..8])),
            id: id.clone(),
            seq: w.next_seq()?,
            kms_key_arn,
            lambda_authorizer_arn,
            lossless_storage_format: format.unwrap_or(LosslessStorageFormat::Htj2k),
            created_at: now,
            delete_requested_at: None,
            tags,
        };
        let status = datastore.status(now, delay);
        w.insert_datastore(&datastore)?;
        w.insert_client_token(TokenKind::Datastore, &client_token, &fingerprint, &id)?;
        Ok(wire::json(&json!({
            "datastoreId": id,
            "datastoreStatus": status.as_str(),
        })))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use crate::testing::{send, service};

    #[tokio::test]
    async fn every_violation_is_reported_at_once() {
        let (service, _) = service();
        let body = r#"{"clientToken":"has space","datastoreName":"","kmsKeyArn":"arn:nope","losslessStorageFormat":"GIF"}"#;
        let (status, code, answer) = send(&service, Method::POST, "/datastore", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code.as_deref(), Some("ValidationException"));
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with("4 validation errors detected: "),
            "{message}"
        );
        for member in [
            "datastoreName",
            "clientToken",
            "kmsKeyArn",
            "losslessStorageFormat",
        ] {
            assert!(
                message.contains(&format!("'{member}'")),
                "{member}: {message}"
            );
        }
        assert_eq!(message.matches("; ").count(), 3, "{message}");
        let (_, _, one) = send(
            &service,
            Method::POST,
            "/datastore",
            r#"{"clientToken":"has space"}"#,
        )
        .await;
        assert!(
            one["message"]
                .as_str()
                .unwrap()
                .starts_with("1 validation error detected: Value at 'clientToken'"),
            "{one}"
        );
    }

    #[tokio::test]
    async fn other_operations_list_their_violations_too() {
        let (service, _) = service();
        let ds = "0".repeat(32);
        for (method, uri, body, members) in [
            (
                Method::POST,
                format!(
                    "/datastore/{ds}/imageSet/{ds}/updateImageSetMetadata?latestVersion=x&force=maybe"
                ),
                "{}",
                vec!["latestVersionId", "force", "updateImageSetMetadataUpdates"],
            ),
            (
                Method::POST,
                format!(
                    "/datastore/{ds}/imageSet/{ds}/copyImageSet?force=maybe&promoteToPrimary=perhaps"
                ),
                "{}",
                vec!["force", "promoteToPrimary", "copyImageSetInformation"],
            ),
            (
                Method::POST,
                format!("/datastore/{ds}/searchImageSets?maxResults=0"),
                r#"{"sort": {"sortField": "name", "sortOrder": "ASC"}}"#,
                vec!["maxResults", "sortField"],
            ),
            (
                Method::GET,
                format!("/listDICOMImportJobs/datastore/{ds}?jobStatus=DONE&maxResults=99"),
                "",
                vec!["jobStatus", "maxResults"],
            ),
        ] {
            let (status, _, answer) = send(&service, method, &uri, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{} validation errors detected: ", members.len())),
                "{uri}: {message}"
            );
            for member in members {
                assert!(message.contains(member), "{uri}: {member} in {message}");
            }
        }
    }
}
