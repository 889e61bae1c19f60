//! MCP resources: datastores as JSON documents an assistant can attach.
//!
//! | URI | content |
//! |---|---|
//! | `healthimaging://datastores` | every datastore (up to 1000) |
//! | `healthimaging://datastore/{datastore_id}` | one datastore's properties |
//! | `healthimaging://datastore/{datastore_id}/imageset/{image_set_id}/metadata` | an image set's metadata document, decompressed |

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use crate::args::{DatastoreId, ImageSetId};
use crate::errors::ToolError;
use crate::server::HealthImagingServer;
use crate::tools::{datastores_get, datastores_list};

const DATASTORES: &str = "healthimaging://datastores";
const DATASTORE_PREFIX: &str = "healthimaging://datastore/";
const MAX_LISTED: u32 = 1000;

/// The fixed resources.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(DATASTORES, "datastores")
            .with_title("HealthImaging datastores")
            .with_description("Every datastore of the account in this region, as JSON.")
            .with_mime_type("application/json"),
    ]
}

/// The resource templates.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{DATASTORE_PREFIX}{{datastore_id}}"), "datastore")
            .with_title("One HealthImaging datastore")
            .with_description(
                "A datastore's properties, as JSON. datastore_id comes from list_datastores.",
            )
            .with_mime_type("application/json"),
        ResourceTemplate::new(
            format!("{DATASTORE_PREFIX}{{datastore_id}}/imageset/{{image_set_id}}/metadata"),
            "image set metadata",
        )
        .with_title("An image set's DICOM metadata")
        .with_description(
            "The latest version's metadata document (Patient, Study, Series, Instances by DICOM keyword), decompressed JSON. image_set_id comes from search_image_sets.",
        )
        .with_mime_type("application/json"),
    ]
}

/// Reads the resource at `uri`.
pub async fn read(
    server: &HealthImagingServer,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let client = &server.client;
    let document = if uri == DATASTORES {
        let (datastores, more) = datastores_list(client, None, MAX_LISTED, None)
            .await
            .map_err(internal)?;
        json!({ "datastores": datastores, "truncated": more.is_some() })
    } else if let Some((ds, set)) = uri
        .strip_prefix(DATASTORE_PREFIX)
        .and_then(|rest| rest.strip_suffix("/metadata"))
        .and_then(|rest| rest.split_once("/imageset/"))
    {
        let not_found = |reason: String| ErrorData::resource_not_found(reason, None);
        let ds = DatastoreId::parse(ds).map_err(not_found)?;
        let set = ImageSetId::parse(set).map_err(not_found)?;
        match server.metadata(ds.as_str(), set.as_str(), None).await {
            Ok(parsed) => parsed.document.clone(),
            Err(error) if error.code == "ResourceNotFoundException" => {
                return Err(ErrorData::resource_not_found(error.to_string(), None));
            }
            Err(error) => return Err(internal(error)),
        }
    } else if let Some(id) = uri.strip_prefix(DATASTORE_PREFIX) {
        let id =
            DatastoreId::parse(id).map_err(|reason| ErrorData::resource_not_found(reason, None))?;
        match datastores_get(client, id.as_str()).await {
            Ok(datastore) => json!(datastore),
            Err(error) if error.code == "ResourceNotFoundException" => {
                return Err(ErrorData::resource_not_found(error.to_string(), None));
            }
            Err(error) => return Err(internal(error)),
        }
    } else {
        return Err(ErrorData::resource_not_found(
            format!("no resource {uri}; see resources/list and resources/templates/list"),
            None,
        ));
    };
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ]))
}

fn internal(error: ToolError) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}
