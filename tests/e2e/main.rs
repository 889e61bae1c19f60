//! Workspace-level end-to-end tests, in one binary to link the AWS SDK once.

mod control_plane;
mod data_plane;
mod durability;
mod erasure_bytes;
mod faults;
mod full_disk;
mod import;
mod import_attacks;
mod mcp_aliases;
mod mcp_corrections_vr;
mod mcp_delete;
mod mcp_dicomweb;
mod mcp_endpoint;
mod mcp_erasure;
mod mcp_export;
mod mcp_montage;
mod mcp_progress;
mod mcp_read_tools;
mod mcp_tools;
mod mcp_writes;
mod pagination;
mod snapshots;
mod surfaces;
mod tags;
mod wire;
mod writes;
