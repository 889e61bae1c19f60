//! How fast `serve` is ready: the time from starting the binary to its
//! `tools/list` answer, and to the demo set being readable (a search of a
//! demo patient answered), on a first start (fixtures generated and
//! imported, then cached) and on the starts after it (restored from the
//! user's cache folder). Each round uses a fresh home folder for the first
//! start and the same one for the later starts.
//!
//! `cargo bench -p healthimaging-mcp --bench start` (the binary is the one
//! cargo built for the bench profile).

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BINARY: &str = env!("CARGO_BIN_EXE_healthimaging-mcp");

/// Starts `serve` in `home` and returns (tools/list, demo readable).
async fn start_once(home: &std::path::Path) -> (Duration, Duration) {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(BINARY)
        .args(["serve", "--seed", "9"])
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let send = |line: String| line + "\n";
    stdin
        .write_all(send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#.to_owned()).as_bytes())
        .await
        .unwrap();
    lines.next_line().await.unwrap();
    stdin
        .write_all(
            send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned()).as_bytes(),
        )
        .await
        .unwrap();
    stdin
        .write_all(send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#.to_owned()).as_bytes())
        .await
        .unwrap();
    lines.next_line().await.unwrap();
    let tools = started.elapsed();
    stdin
        .write_all(send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_datastores","arguments":{}}}"#.to_owned()).as_bytes())
        .await
        .unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let id = listed["result"]["structuredContent"]["datastores"][0]["datastore_id"].clone();
    let search = serde_json::json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "search_by_patient_id", "arguments": {"datastore_id": id, "patient_id": "SYN0001003"}}});
    stdin
        .write_all(send(search.to_string()).as_bytes())
        .await
        .unwrap();
    let found: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(
        found["result"]["structuredContent"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "the demo patient is found: {found}"
    );
    let ready = started.elapsed();
    drop(stdin);
    let _ = child.wait().await;
    (tools, ready)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let rounds = 3;
    let (mut first_tools, mut first_ready, mut later_tools, mut later_ready) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let home = tempfile::tempdir().unwrap();
        let (tools, ready) = start_once(home.path()).await;
        first_tools.push(tools);
        first_ready.push(ready);
        for _ in 0..3 {
            let (tools, ready) = start_once(home.path()).await;
            later_tools.push(tools);
            later_ready.push(ready);
        }
    }
    println!(
        "first start:  tools/list {:>7.0} ms, demo readable {:>7.0} ms (median of {rounds})",
        median(first_tools).as_secs_f64() * 1e3,
        median(first_ready).as_secs_f64() * 1e3
    );
    println!(
        "later starts: tools/list {:>7.0} ms, demo readable {:>7.0} ms (median of {})",
        median(later_tools).as_secs_f64() * 1e3,
        median(later_ready).as_secs_f64() * 1e3,
        rounds * 3
    );
}
