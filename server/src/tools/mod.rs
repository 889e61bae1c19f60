//! The MCP tools, one file per tool family, assembled under a grant.

mod aliases;
mod attributes;
mod contract;
mod corrections;
mod datastores;
mod delete_datastore;
mod dicomweb;
mod edits;
mod erasure;
mod export;
mod font;
mod frames;
mod hierarchy;
mod image_set_writes;
mod image_sets;
mod import_jobs;
mod metadata_summary;
mod montage;
mod patients;
pub(crate) mod plan;
mod removals;
mod render;
mod search;
mod tags;
pub mod views;

pub(crate) use aliases::translate as translate_aliases;
pub(crate) use datastores::{get as datastores_get, list as datastores_list};

use rmcp::handler::server::router::tool::ToolRouter;

use crate::permissions::{Grant, Level};
use crate::server::HealthImagingServer;

/// Every tool, less those the grant does not allow.
pub fn router(grant: Grant) -> ToolRouter<HealthImagingServer> {
    let mut router = HealthImagingServer::datastore_tools()
        + HealthImagingServer::delete_datastore_tool()
        + HealthImagingServer::tag_tools()
        + HealthImagingServer::import_job_tools()
        + HealthImagingServer::search_tools()
        + HealthImagingServer::patient_tools()
        + HealthImagingServer::image_set_tools()
        + HealthImagingServer::frame_tools()
        + HealthImagingServer::montage_tools()
        + HealthImagingServer::erasure_tools()
        + HealthImagingServer::hierarchy_tools()
        + HealthImagingServer::removal_tools()
        + HealthImagingServer::image_set_write_tools()
        + HealthImagingServer::correction_tools()
        + HealthImagingServer::dicomweb_tools()
        + HealthImagingServer::export_tools();
    for tool in router.list_all() {
        if !grant.allows(Level::of(&tool)) {
            router.remove_route(&tool.name);
        }
    }
    contract::publish(&mut router);
    router
}
