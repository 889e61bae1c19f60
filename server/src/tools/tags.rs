//! `list_tags_for_resource`, `tag_resource`, `untag_resource`.

use std::collections::BTreeMap;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::datastores::check_tags;
use crate::args::{ResourceArn, TagKey};
use crate::audit;
use crate::errors::ToolError;
use crate::server::HealthImagingServer;

/// Arguments naming one resource.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTagsArgs {
    /// A datastore or image set ARN.
    pub resource_arn: ResourceArn,
}

/// Arguments of `tag_resource`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagResourceArgs {
    /// A datastore or image set ARN.
    pub resource_arn: ResourceArn,
    /// Key → value, 1–50; keys not starting with aws:.
    pub tags: BTreeMap<TagKey, String>,
}

/// Arguments of `untag_resource`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UntagResourceArgs {
    /// A datastore or image set ARN.
    pub resource_arn: ResourceArn,
    /// 1–200 keys; keys not carried are ignored.
    pub tag_keys: Vec<TagKey>,
}

/// A resource's tags.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TagsOutput {
    /// One sentence on what happened.
    pub summary: String,
    /// The resource.
    pub resource_arn: String,
    /// Its tags now, key → value.
    pub tags: BTreeMap<String, String>,
}

#[tool_router(router = tag_tools, vis = "pub(crate)")]
impl HealthImagingServer {
    /// The tags of a datastore or an image set.
    #[tool(
        name = "list_tags_for_resource",
        annotations(
            title = "List tags",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_tags_for_resource(
        &self,
        Parameters(args): Parameters<ListTagsArgs>,
    ) -> Result<Json<TagsOutput>, ToolError> {
        audit::touch(args.resource_arn.as_str());
        self.report(&args.resource_arn, |n| {
            format!("The resource carries {n} tags.")
        })
        .await
    }

    /// Add or change tags of a datastore or an image set; returns all its tags.
    #[tool(
        name = "tag_resource",
        annotations(
            title = "Tag resource",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn tag_resource(
        &self,
        Parameters(args): Parameters<TagResourceArgs>,
    ) -> Result<Json<TagsOutput>, ToolError> {
        if args.tags.is_empty() {
            return Err(ToolError::new(
                "InvalidArgument",
                "no tags given",
                "Pass at least one tag as key → value.",
            ));
        }
        check_tags(&args.tags)?;
        audit::touch(args.resource_arn.as_str());
        let tags = args
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.client
            .tag_resource()
            .resource_arn(args.resource_arn.as_str())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let added = args.tags.len();
        self.report(&args.resource_arn, |n| {
            format!("Tagged the resource with {added} keys; it now carries {n} tags.")
        })
        .await
    }

    /// Remove tags by key from a datastore or an image set; returns the rest.
    #[tool(
        name = "untag_resource",
        annotations(
            title = "Untag resource",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn untag_resource(
        &self,
        Parameters(args): Parameters<UntagResourceArgs>,
    ) -> Result<Json<TagsOutput>, ToolError> {
        if args.tag_keys.is_empty() || args.tag_keys.len() > 200 {
            return Err(ToolError::new(
                "InvalidArgument",
                format!("{} tag keys given", args.tag_keys.len()),
                "Pass between 1 and 200 tag keys.",
            ));
        }
        audit::touch(args.resource_arn.as_str());
        self.client
            .untag_resource()
            .resource_arn(args.resource_arn.as_str())
            .set_tag_keys(Some(
                args.tag_keys.iter().map(ToString::to_string).collect(),
            ))
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let removed = args.tag_keys.len();
        self.report(&args.resource_arn, |n| {
            format!("Removed {removed} keys; the resource now carries {n} tags.")
        })
        .await
    }
}

impl HealthImagingServer {
    /// Reads the resource's tags and reports them, with a summary built from
    /// how many there are.
    async fn report(
        &self,
        arn: &ResourceArn,
        summary: impl FnOnce(usize) -> String,
    ) -> Result<Json<TagsOutput>, ToolError> {
        let output = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn.as_str())
            .send()
            .await
            .map_err(ToolError::from_sdk)?;
        let tags: BTreeMap<String, String> = output
            .tags()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Json(TagsOutput {
            summary: summary(tags.len()),
            resource_arn: arn.to_string(),
            tags,
        }))
    }
}
