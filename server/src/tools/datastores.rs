//! `create_datastore`, `get_datastore`, `list_datastores`.

use std::collections::BTreeMap;

use aws_sdk_medicalimaging::Client;
use aws_sdk_medicalimaging::types::{DatastoreStatus, LosslessStorageFormat};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::views::DatastoreView;
use crate::args::{
    ClientToken, DatastoreId, DatastoreName, NextToken, ServiceArn, TagKey, tag_value_ok,
};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// The most datastores one `list_datastores` call returns.
const MAX_LIST_LIMIT: u32 = 500;
/// ListDatastores' largest page.
const API_PAGE: u32 = 50;

/// How lossless frames are stored.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LosslessFormat {
    /// HTJ2K lossless (transfer syntax 1.2.840.10008.1.2.4.202), the service default.
    Htj2k,
    /// JPEG 2000 lossless (1.2.840.10008.1.2.4.90).
    #[serde(rename = "JPEG_2000_LOSSLESS")]
    Jpeg2000Lossless,
}

/// Arguments of `create_datastore`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatastoreArgs {
    /// Need not be unique.
    pub datastore_name: Option<DatastoreName>,
    /// Key → value, at most 50.
    pub tags: Option<BTreeMap<TagKey, String>>,
    /// A customer-managed KMS key (default: AWS-owned).
    pub kms_key_arn: Option<ServiceArn>,
    /// A Lambda authorizer for OIDC access to DICOMweb; set only at creation.
    pub lambda_authorizer_arn: Option<ServiceArn>,
    /// Default HTJ2K.
    pub lossless_storage_format: Option<LosslessFormat>,
    /// Idempotency token: a repeated call returns the same datastore.
    pub client_token: Option<ClientToken>,
}

/// Result of `create_datastore`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreateDatastoreOutput {
    /// One sentence on what happened.
    pub summary: String,
    /// The new datastore.
    pub datastore: DatastoreView,
}

/// Arguments of `get_datastore`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDatastoreArgs {
    pub datastore_id: DatastoreId,
}

/// Result of `get_datastore`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetDatastoreOutput {
    /// One sentence on the datastore.
    pub summary: String,
    /// The datastore's properties.
    pub datastore: DatastoreView,
}

/// A datastore status to filter by.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusFilter {
    /// Being created.
    Creating,
    /// Creation failed.
    CreateFailed,
    /// Ready for use.
    Active,
    /// Being deleted.
    Deleting,
    /// Deleted.
    Deleted,
}

impl StatusFilter {
    fn to_sdk(self) -> DatastoreStatus {
        match self {
            StatusFilter::Creating => DatastoreStatus::Creating,
            StatusFilter::CreateFailed => DatastoreStatus::CreateFailed,
            StatusFilter::Active => DatastoreStatus::Active,
            StatusFilter::Deleting => DatastoreStatus::Deleting,
            StatusFilter::Deleted => DatastoreStatus::Deleted,
        }
    }
}

/// Arguments of `list_datastores`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDatastoresArgs {
    pub datastore_status: Option<StatusFilter>,
    /// Most datastores, 1–500 (default 100).
    pub limit: Option<u32>,
    /// From a result that limit cut short.
    pub next_token: Option<NextToken>,
}

/// Result of `list_datastores`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListDatastoresOutput {
    /// One sentence on what was found.
    pub summary: String,
    /// The datastores, oldest first.
    pub datastores: Vec<DatastoreView>,
    /// How many were returned.
    pub count: usize,
    /// True when `limit` cut the list short; pass next_token to continue.
    pub truncated: bool,
    /// Where to continue, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[tool_router(router = datastore_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// Create a datastore. It is CREATING, then ACTIVE (see get_datastore); imports need it
    /// ACTIVE.
    #[tool(
        name = "create_datastore",
        annotations(
            title = "Create datastore",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn create_datastore(
        &self,
        Parameters(args): Parameters<CreateDatastoreArgs>,
    ) -> Result<Json<CreateDatastoreOutput>, ToolError> {
        let tags = args.tags.unwrap_or_default();
        check_tags(&tags)?;
        let mut request = self.client.create_datastore();
        if let Some(name) = &args.datastore_name {
            request = request.datastore_name(name.as_str());
        }
        for (key, value) in &tags {
            request = request.tags(key.as_str(), value);
        }
        if let Some(arn) = args.kms_key_arn {
            request = request.kms_key_arn(arn);
        }
        if let Some(arn) = args.lambda_authorizer_arn {
            request = request.lambda_authorizer_arn(arn);
        }
        if let Some(format) = args.lossless_storage_format {
            request = request.lossless_storage_format(match format {
                LosslessFormat::Htj2k => LosslessStorageFormat::Htj2K,
                LosslessFormat::Jpeg2000Lossless => LosslessStorageFormat::Jpeg2000Lossless,
            });
        }
        if let Some(token) = &args.client_token {
            request = request.client_token(token.as_str());
        }
        let created = request.send().await.map_err(ToolError::from_sdk)?;
        audit::touch(created.datastore_id());
        let datastore = get(&self.client, created.datastore_id()).await?;
        Ok(Json(CreateDatastoreOutput {
            summary: format!(
                "Created datastore {} ({}), status {}. It can take imports once get_datastore reports ACTIVE.",
                datastore.datastore_name, datastore.datastore_id, datastore.datastore_status
            ),
            datastore,
        }))
    }

    /// A datastore's name, status, ARN, times, storage format and encryption key.
    #[tool(
        name = "get_datastore",
        annotations(
            title = "Get datastore",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_datastore(
        &self,
        Parameters(args): Parameters<GetDatastoreArgs>,
    ) -> Result<Json<GetDatastoreOutput>, ToolError> {
        audit::touch(args.datastore_id.as_str());
        let datastore = get(&self.client, args.datastore_id.as_str()).await?;
        Ok(Json(GetDatastoreOutput {
            summary: format!(
                "Datastore {} ({}) is {}.",
                datastore.datastore_name, datastore.datastore_id, datastore.datastore_status
            ),
            datastore,
        }))
    }

    /// The account's datastores in this region, optionally in one status.
    #[tool(
        name = "list_datastores",
        annotations(
            title = "List datastores",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_datastores(
        &self,
        Parameters(args): Parameters<ListDatastoresArgs>,
    ) -> Result<Json<ListDatastoresOutput>, ToolError> {
        let limit = args.limit.unwrap_or(100);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(ToolError::new(
                "InvalidArgument",
                format!("limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}"),
                "Pass a smaller limit and continue with next_token.",
            ));
        }
        let (datastores, next_token) = list(
            &self.client,
            args.datastore_status.map(StatusFilter::to_sdk),
            limit,
            args.next_token.map(String::from),
        )
        .await?;
        let count = datastores.len();
        let truncated = next_token.is_some();
        let summary = match (count, truncated) {
            (0, _) => "No datastores found.".to_owned(),
            (n, false) => format!("Found {n} datastores."),
            (n, true) => format!(
                "Showing the first {n} datastores; more exist. Call again with next_token to continue."
            ),
        };
        Ok(Json(ListDatastoresOutput {
            summary,
            datastores,
            count,
            truncated,
            next_token,
        }))
    }
}

/// Checks tag values (keys are checked as they are deserialized) and count.
pub(super) fn check_tags(tags: &BTreeMap<TagKey, String>) -> Result<(), ToolError> {
    if tags.len() > 50 {
        return Err(ToolError::new(
            "InvalidArgument",
            format!("{} tags given; a resource can carry at most 50", tags.len()),
            "Pass at most 50 tags.",
        ));
    }
    if let Some((key, _)) = tags.iter().find(|(_, value)| !tag_value_ok(value)) {
        return Err(ToolError::new(
            "InvalidArgument",
            format!("the value of tag {key} is longer than 256 characters"),
            "Shorten the tag value.",
        ));
    }
    Ok(())
}

/// GetDatastore, as a view.
pub(crate) async fn get(client: &Client, datastore_id: &str) -> Result<DatastoreView, ToolError> {
    let output = client
        .get_datastore()
        .datastore_id(datastore_id)
        .send()
        .await
        .map_err(ToolError::from_sdk)?;
    output
        .datastore_properties()
        .map(DatastoreView::from)
        .ok_or_else(|| {
            ToolError::new(
                "MalformedResponse",
                "GetDatastore returned no datastoreProperties",
                "Check the endpoint; a HealthImaging service always returns them.",
            )
        })
}

/// Every datastore up to `limit`, following nextToken from `start`; returns
/// where to continue if more remain.
pub(crate) async fn list(
    client: &Client,
    status: Option<DatastoreStatus>,
    limit: u32,
    start: Option<String>,
) -> Result<(Vec<DatastoreView>, Option<String>), ToolError> {
    let mut datastores = Vec::new();
    let mut token = start;
    loop {
        let remaining = limit - datastores.len() as u32;
        let page = client
            .list_datastores()
            .set_datastore_status(status.clone())
            .set_next_token(token.take())
            .max_results(remaining.min(API_PAGE) as i32)
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        datastores.extend(page.datastore_summaries().iter().map(DatastoreView::from));
        token = page.next_token().map(str::to_owned);
        if token.is_none() || datastores.len() as u32 >= limit {
            return Ok((datastores, token));
        }
    }
}
