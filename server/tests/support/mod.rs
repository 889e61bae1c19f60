//! Helpers for tests that run the `healthimaging-mcp` binary.
// Each test crate uses some of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_healthimaging-mcp");

/// A command for the binary with a clean AWS environment: no credentials,
/// region, profile or endpoint leak in from the developer's shell, and no
/// instance metadata service is probed.
pub fn command(args: &[&str], home: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    // Empty AWS files, as on a machine without profiles (an overridden path
    // that does not exist draws the SDK's warning, which a fresh machine
    // does not).
    for file in ["aws-config", "aws-credentials"] {
        let path = home.join(file);
        if !path.exists() {
            std::fs::write(&path, "").expect("the test's home is writable");
        }
    }
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // A first start's demo import can take a minute in a debug build on
        // a loaded machine: calls wait for it rather than say it is loading.
        .env("HEALTHIMAGING_MCP_FIXTURES_WAIT_SECS", "300")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running standalone emulator and its URL.
pub struct StandaloneEmulator {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Starts `healthimaging-mcp emulator` on a free port and waits for its
/// `listening on` line.
pub async fn standalone_emulator(home: &Path, extra: &[&str]) -> StandaloneEmulator {
    standalone_emulator_with(home, extra, &[]).await
}

/// [`standalone_emulator`] with `env` set in the emulator's environment
/// (for instance the credentials `--verify-sigv4` checks against).
pub async fn standalone_emulator_with(
    home: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> StandaloneEmulator {
    let mut args = vec!["emulator", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut command = command(&args, home);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the emulator says it is listening within 30 s")
        .expect("stdout is readable")
        .expect("a first line");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    StandaloneEmulator { child, url }
}

/// `serve` (or any MCP server command of the binary) with an MCP client
/// session on its stdio.
pub struct Session<H: rmcp::ClientHandler = ()> {
    /// The client.
    pub client: rmcp::service::RunningService<rmcp::RoleClient, H>,
    /// The server process.
    pub child: Child,
    _home: Option<tempfile::TempDir>,
}

impl Session<()> {
    /// Starts the binary with `args` and `env` in a fresh home folder.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut session = Self::start_in(home.path(), args, env, ()).await;
        session._home = Some(home);
        session
    }
}

impl<H: rmcp::ClientHandler> Session<H> {
    /// Starts the binary with `args` and `env` in `home`, `handler` taking
    /// the server's notifications.
    pub async fn start_in(home: &Path, args: &[&str], env: &[(&str, &str)], handler: H) -> Self {
        use rmcp::ServiceExt;
        let mut cmd = command(args, home);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("the binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let client = handler
            .serve((stdout, stdin))
            .await
            .expect("the MCP session starts");
        Self {
            client,
            child,
            _home: None,
        }
    }

    /// Calls `tool` with `arguments` (a JSON object).
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Value,
    ) -> rmcp::model::CallToolResult {
        let arguments = arguments
            .as_object()
            .expect("arguments are an object")
            .clone();
        self.client
            .call_tool(
                rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
            )
            .await
            .unwrap_or_else(|e| panic!("{tool} answers: {e}"))
    }

    /// The ID of the first datastore `list_datastores` names.
    pub async fn first_datastore(&self) -> String {
        let listed = self.call("list_datastores", serde_json::json!({})).await;
        listed.structured_content.expect("structured")["datastores"][0]["datastore_id"]
            .as_str()
            .expect("a datastore")
            .to_owned()
    }

    /// The server's instructions.
    pub fn instructions(&self) -> String {
        self.client
            .peer_info()
            .and_then(|info| info.instructions.clone())
            .unwrap_or_default()
    }

    /// Ends the session and returns what the server wrote on stderr; the
    /// server must exit cleanly when the client leaves.
    pub async fn finish(mut self) -> String {
        self.client.cancel().await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits when the client leaves")
            .unwrap();
        assert!(status.success(), "the server exits cleanly: {status}");
        stderr_of(&mut self.child).await
    }
}

/// What a child (started with its stderr piped) wrote to stderr, read to
/// the end: call it once the child has exited or been killed.
pub async fn stderr_of(child: &mut Child) -> String {
    use tokio::io::AsyncReadExt;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped and read once")
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    stderr
}
