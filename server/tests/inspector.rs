//! The binary through the MCP Inspector's CLI, an independent client: it
//! lists every tool and calls one with an optional integer typed on the
//! command line (`limit=2`), which it could not while optional arguments
//! were published as `["integer","null"]`.

#[path = "support/node.rs"]
mod node;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_healthimaging-mcp");

/// Runs the Inspector's CLI against `serve` on the data directory `data`.
fn inspect(inspector: &Path, data: &Path, method: &[&str]) -> (Value, String) {
    let home = data.parent().expect("a folder");
    let output = Command::new(inspector)
        .arg("--cli")
        .args(["-e", "AWS_EC2_METADATA_DISABLED=true"])
        .args(["-e", "HEALTHIMAGING_MCP_FIXTURES_WAIT_SECS=300"])
        .args(["-e", &format!("HOME={}", home.display())])
        .arg(BINARY)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(method)
        .env("HOME", home)
        .output()
        .expect("the inspector runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the inspector failed: {stdout}\n{stderr}"
    );
    let answer = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the inspector printed JSON ({e}): {stdout}"));
    (answer, stderr)
}

#[test]
fn the_inspector_lists_every_tool_and_passes_an_optional_integer() {
    let inspector = match node::inspector() {
        Ok(path) => path,
        Err(reason) => {
            eprintln!("skipped: the MCP Inspector is not available: {reason}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (listed, stderr) = inspect(inspector, &data, &["--method", "tools/list"]);
    let tools = listed["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 44, "{listed}");
    assert!(
        !stderr.contains("unknown format"),
        "no schema warnings: {stderr}"
    );

    let (datastores, _) = inspect(
        inspector,
        &data,
        &["--method", "tools/call", "--tool-name", "list_datastores"],
    );
    let ds = datastores["structuredContent"]["datastores"][0]["datastore_id"]
        .as_str()
        .expect("the demo datastore")
        .to_owned();
    let (found, _) = inspect(
        inspector,
        &data,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "search_image_sets",
            "--tool-arg",
            &format!("datastore_id={ds}"),
            "--tool-arg",
            "limit=2",
        ],
    );
    assert_ne!(found["isError"], true, "{found}");
    assert_eq!(found["structuredContent"]["count"], 2, "{found}");
    assert_eq!(found["structuredContent"]["truncated"], true);
}
