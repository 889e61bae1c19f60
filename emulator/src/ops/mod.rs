//! The operations of the HealthImaging API, one file each (tags as a family).
//!
//! Each operation reads its members from the request, validates them against
//! the model, applies itself to the store in one read or one write
//! transaction, and answers JSON.

mod copy_image_set;
mod create_datastore;
mod delete_datastore;
mod delete_image_set;
mod get_datastore;
mod image_set_writes;
mod image_sets;
mod import_jobs;
mod list_datastores;
mod paging;
mod search_image_sets;
mod tags;
mod update_image_set_metadata;
#[cfg(test)]
mod write_tests;

use axum::body::Bytes;
use axum::response::Response;

use crate::error::{ApiError, ApiResult};
use crate::router::Operation;
use crate::service::Service;
use crate::store::{Datastore, DatastoreStatus, Reader};
use crate::validate;
use crate::wire::Query;

pub(crate) use image_sets::frame_content_type;

/// A routed request: decoded path labels, query and raw body.
#[derive(Debug)]
pub struct Request {
    /// The path labels in URI-template order.
    pub labels: Vec<String>,
    /// The query string.
    pub query: Query,
    /// The raw body.
    pub body: Bytes,
}

impl Request {
    /// The path label at `index`; the router guarantees it exists.
    fn label(&self, index: usize) -> &str {
        self.labels
            .get(index)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Runs `operation` on `request`.
pub fn handle(service: &Service, operation: Operation, request: &Request) -> ApiResult<Response> {
    match operation {
        Operation::CreateDatastore => create_datastore::handle(service, request),
        Operation::GetDatastore => get_datastore::handle(service, request),
        Operation::ListDatastores => list_datastores::handle(service, request),
        Operation::DeleteDatastore => delete_datastore::handle(service, request),
        Operation::TagResource => tags::tag_resource(service, request),
        Operation::ListTagsForResource => tags::list_tags_for_resource(service, request),
        Operation::UntagResource => tags::untag_resource(service, request),
        Operation::StartDICOMImportJob => import_jobs::start(service, request),
        Operation::GetDICOMImportJob => import_jobs::get(service, request),
        Operation::ListDICOMImportJobs => import_jobs::list(service, request),
        Operation::SearchImageSets => search_image_sets::handle(service, request),
        Operation::GetImageSet => image_sets::get(service, request),
        Operation::GetImageSetMetadata => image_sets::get_metadata(service, request),
        Operation::GetImageFrame => image_sets::get_frame(service, request),
        Operation::ListImageSetVersions => image_sets::list_versions(service, request),
        Operation::UpdateImageSetMetadata => update_image_set_metadata::handle(service, request),
        Operation::CopyImageSet => copy_image_set::handle(service, request),
        Operation::DeleteImageSet => delete_image_set::handle(service, request),
    }
}

/// The datastore `id` (validated as the `datastoreId` member), including a
/// `DELETED` one.
fn find_datastore(reader: &Reader<'_>, id: &str) -> ApiResult<Datastore> {
    validate::resource_id("datastoreId", id)?;
    reader
        .datastore(id)?
        .ok_or_else(|| ApiError::not_found(format!("Datastore {id} does not exist")))
}

/// The datastore `id` unless it is `DELETED`.
pub(crate) fn find_live_datastore(
    service: &Service,
    reader: &Reader<'_>,
    id: &str,
) -> ApiResult<Datastore> {
    let datastore = find_datastore(reader, id)?;
    if datastore.status(service.now(), service.config.transition_delay) == DatastoreStatus::Deleted
    {
        return Err(ApiError::not_found(format!(
            "Datastore {id} has been deleted"
        )));
    }
    Ok(datastore)
}
