//! The MCP Inspector CLI, installed once from npm.
//!
//! The version comes from `tests/node/package.json`. The install lives in
//! the target directory and is redone only when that file changes, so the
//! first run needs npm's registry and later runs need nothing. Without node
//! and npm the tests that need it say so and skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ sits in the workspace")
        .to_owned()
}

/// The `mcp-inspector` executable, or why it is not available.
pub fn inspector() -> Result<&'static Path, &'static str> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(provision) {
        Ok(path) => Ok(path),
        Err(reason) => Err(reason),
    }
}

fn provision() -> Result<PathBuf, String> {
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "{tool} is not installed (Debian: apt-get install nodejs npm)"
            ));
        }
    }
    // The Inspector asks for a recent node; 20 is the oldest it is tested on here.
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("node {version} is older than 20"));
    }
    let manifest = workspace().join("tests/node/package.json");
    let wanted = std::fs::read_to_string(&manifest).expect("package.json is readable");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let folder = target.join("node-clients");
    let stamp = folder.join("package.installed");
    let bin = folder.join("node_modules/.bin/mcp-inspector");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) && bin.exists() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("the target directory is writable");
    std::fs::write(folder.join("package.json"), &wanted).expect("writable");
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(&folder)
        .output()
        .map_err(|e| format!("npm could not run: {e}"))?;
    assert!(
        output.status.success(),
        "npm install of tests/node/package.json failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&stamp, wanted).expect("the stamp is writable");
    Ok(bin)
}
