//! The MCP tools, one file per tool family, assembled under a grant.

mod datastores;
mod delete_datastore;
mod tags;
pub mod views;

pub(crate) use datastores::{get as datastores_get, list as datastores_list};

use rmcp::handler::server::router::tool::ToolRouter;

use crate::permissions::{Grant, Level};
use crate::server::HealthImagingServer;

/// Every tool, less those the grant does not allow.
pub fn router(grant: Grant) -> ToolRouter<HealthImagingServer> {
    let mut router = HealthImagingServer::datastore_tools()
        + HealthImagingServer::delete_datastore_tool()
        + HealthImagingServer::tag_tools();
    for tool in router.list_all() {
        if !grant.allows(Level::of(&tool)) {
            router.remove_route(&tool.name);
        }
    }
    router
}
