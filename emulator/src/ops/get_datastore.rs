//! GetDatastore: `GET /datastore/{datastoreId}`.

use axum::response::Response;
use serde_json::{Value, json};

use crate::arn;
use crate::error::ApiResult;
use crate::service::Service;
use crate::store::Datastore;
use crate::wire;

use super::{Request, find_datastore};

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let datastore = service
        .store()
        .read(|r| find_datastore(r, request.label(0)))?;
    Ok(wire::json(
        &json!({ "datastoreProperties": properties(service, &datastore) }),
    ))
}

/// `DatastoreProperties` as of now.
fn properties(service: &Service, datastore: &Datastore) -> Value {
    let mut value = summary(service, datastore);
    value["losslessStorageFormat"] = json!(datastore.lossless_storage_format.as_str());
    if let Some(arn) = &datastore.kms_key_arn {
        value["kmsKeyArn"] = json!(arn);
    }
    if let Some(arn) = &datastore.lambda_authorizer_arn {
        value["lambdaAuthorizerArn"] = json!(arn);
    }
    value
}

/// `DatastoreSummary` as of now: the members ListDatastores reports.
pub(super) fn summary(service: &Service, datastore: &Datastore) -> Value {
    let now = service.now();
    let delay = service.config.transition_delay;
    json!({
        "datastoreId": datastore.id,
        "datastoreName": datastore.name,
        "datastoreStatus": datastore.status(now, delay).as_str(),
        "datastoreArn": arn::datastore(&service.config.region, &service.config.account_id, &datastore.id),
        "createdAt": datastore.created_at,
        "updatedAt": datastore.updated_at(now, delay),
    })
}
