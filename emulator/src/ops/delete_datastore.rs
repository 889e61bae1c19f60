//! DeleteDatastore: `DELETE /datastore/{datastoreId}`.
//!
//! Refused with `ConflictException` while the datastore still holds image
//! sets or is still `CREATING`. The model marks the operation idempotent, so
//! deleting a datastore that is already `DELETING` or `DELETED` answers its
//! current status instead of an error.

use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::store::DatastoreStatus;
use crate::wire;

use super::{Request, find_datastore};

pub(super) fn handle(service: &Service, request: &Request) -> ApiResult<Response> {
    let id = request.label(0);
    let now = service.now();
    let delay = service.config.transition_delay;
    service.store().write(|w| -> ApiResult<_> {
        let status = find_datastore(w, id)?.status(now, delay);
        match status {
            DatastoreStatus::Creating => {
                return Err(ApiError::conflict(format!(
                    "Datastore {id} is CREATING; it can be deleted once it is ACTIVE"
                )));
            }
            DatastoreStatus::Active | DatastoreStatus::CreateFailed => {
                let image_sets = w.image_set_count(id)?;
                if image_sets > 0 {
                    return Err(ApiError::conflict(format!(
                        "Datastore {id} still holds {image_sets} image sets; delete all image sets before deleting the datastore"
                    )));
                }
                w.request_datastore_deletion(id, now)?;
            }
            DatastoreStatus::Deleting | DatastoreStatus::Deleted => {}
        }
        let status = find_datastore(w, id)?.status(now, delay);
        Ok(wire::json(&json!({
            "datastoreId": id,
            "datastoreStatus": status.as_str(),
        })))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use crate::testing::{active_datastore, plant_image_set, send, service};

    #[tokio::test]
    async fn refused_while_image_sets_remain_then_deletes_through_deleting() {
        let (service, clock) = service();
        let id = active_datastore(&service, &clock).await;
        plant_image_set(&service, &id, &"a".repeat(32));
        let uri = format!("/datastore/{id}");
        let (status, code, body) = send(&service, Method::DELETE, &uri, "").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(code.as_deref(), Some("ConflictException"));
        assert!(body["message"].as_str().unwrap().contains("1 image sets"));

        crate::testing::erase_image_set(&service, &id, &"a".repeat(32));
        let (status, _, body) = send(&service, Method::DELETE, &uri, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["datastoreStatus"], "DELETING");
        let (_, _, again) = send(&service, Method::DELETE, &uri, "").await;
        assert_eq!(
            again["datastoreStatus"], "DELETING",
            "retries are idempotent"
        );
        clock.advance(std::time::Duration::from_millis(100));
        let (_, _, got) = send(&service, Method::GET, &uri, "").await;
        assert_eq!(got["datastoreProperties"]["datastoreStatus"], "DELETED");
    }

    #[tokio::test]
    async fn a_creating_datastore_cannot_be_deleted_yet() {
        let (service, _clock) = service();
        let (_, _, body) = send(
            &service,
            Method::POST,
            "/datastore",
            r#"{"clientToken":"x"}"#,
        )
        .await;
        let uri = format!("/datastore/{}", body["datastoreId"].as_str().unwrap());
        let (status, code, _) = send(&service, Method::DELETE, &uri, "").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(code.as_deref(), Some("ConflictException"));
    }
}
