//! The binary's network surfaces: `serve` opens no port unless asked, an
//! exposed emulator needs the key printed at start, nothing ever probes the
//! EC2 instance metadata address for a local endpoint, and the standalone
//! emulator stops cleanly however early a SIGTERM comes.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use support::{command, standalone_emulator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The inodes of the TCP sockets in LISTEN state on this machine.
fn listening_inodes() -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st (4th column) 0A is LISTEN; the inode is the 10th.
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.insert((*inode).to_owned());
            }
        }
    }
    inodes
}

/// How many listening sockets process `pid` holds.
fn listening_sockets_of(pid: u32) -> usize {
    let listening = listening_inodes();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(
                        target
                            .strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_owned(),
                    )
                })
                .filter(|inode| listening.contains(inode))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn serve_on_the_embedded_emulator_opens_no_port() {
    if !std::path::Path::new("/proc/net/tcp").exists() {
        eprintln!("skipped: this system has no /proc/net/tcp to list listening sockets");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let mut child = command(&["serve", "--fixtures", "ci"], home.path())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let client = ().serve((stdout, stdin)).await.expect("a session");
    let listed = client
        .call_tool(CallToolRequestParams::new("list_datastores").with_arguments(Default::default()))
        .await
        .unwrap();
    assert_ne!(listed.is_error, Some(true), "{listed:?}");
    assert_eq!(
        listening_sockets_of(pid),
        0,
        "the embedded emulator is reached without a socket"
    );
    client.cancel().await.unwrap();
    let _ = child.wait().await;
}

#[tokio::test]
async fn an_exposed_embedded_emulator_needs_the_printed_key() {
    let home = tempfile::tempdir().unwrap();
    let mut child = command(
        &[
            "serve",
            "--fixtures",
            "none",
            "--expose-emulator",
            "127.0.0.1:0",
        ],
        home.path(),
    )
    .spawn()
    .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let client = ().serve((stdout, stdin)).await.expect("a session");
    let mut announcement = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
        .await
        .unwrap()
    {
        if line.contains("also served at") {
            announcement = line;
            break;
        }
    }
    let url = announcement
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("a URL")
        .trim_end_matches(';')
        .to_owned();
    let key = announcement
        .split("access key ID ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a key")
        .to_owned();
    let get = |authorization: Option<String>| {
        let url = url.clone();
        async move {
            let authority = url.trim_start_matches("http://").to_owned();
            let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
            let mut request =
                format!("GET /datastore HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
            if let Some(value) = authorization {
                request.push_str(&format!("Authorization: {value}\r\n"));
            }
            request.push_str("\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        }
    };
    assert!(get(None).await.starts_with("HTTP/1.1 403"));
    assert!(
        get(Some("Bearer WRONGKEYWRONGKEYWRONG".into()))
            .await
            .starts_with("HTTP/1.1 403")
    );
    assert!(
        get(Some(format!("Bearer {key}")))
            .await
            .starts_with("HTTP/1.1 200")
    );
    client.cancel().await.unwrap();
    let _ = child.wait().await;
}

/// A listener standing for the instance metadata service: it counts
/// connections and answers none.
async fn metadata_trap() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn no_local_backend_ever_asks_the_instance_metadata_service() {
    let home = tempfile::tempdir().unwrap();
    let (trap, hits) = metadata_trap().await;
    let mut emulator = standalone_emulator(home.path(), &[]).await;
    for args in [
        vec!["serve", "--endpoint-url", emulator.url.as_str()],
        vec!["serve", "--fixtures", "none"],
    ] {
        let mut cmd = command(&args, home.path());
        // The probe would go to the trap, were it made.
        cmd.env_remove("AWS_EC2_METADATA_DISABLED")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &trap);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let client = ().serve((stdout, stdin)).await.expect("a session");
        let listed = client
            .call_tool(
                CallToolRequestParams::new("list_datastores").with_arguments(Default::default()),
            )
            .await
            .unwrap();
        assert_ne!(listed.is_error, Some(true), "{args:?}: {listed:?}");
        client.cancel().await.unwrap();
        let _ = child.wait().await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{args:?} probed instance metadata"
        );
    }
    emulator.child.start_kill().unwrap();
}

#[tokio::test]
async fn a_sigterm_right_after_the_ready_line_always_stops_the_emulator_cleanly() {
    let home = tempfile::tempdir().unwrap();
    for run in 0..50 {
        let mut child = command(&["emulator"], home.path())
            // A host name, through the environment.
            .env("HEALTHIMAGING_EMULATOR_LISTEN", "localhost:0")
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("ready within 30 s")
            .unwrap()
            .unwrap();
        assert!(ready.starts_with("listening on http://"), "{ready}");
        let pid = child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("stops within 10 s")
            .unwrap();
        assert!(status.success(), "run {run}: {status}");
        let stderr = support::stderr_of(&mut child).await;
        let folder = stderr
            .split("S3 folder is ")
            .nth(1)
            .and_then(|rest| rest.split(" (").next())
            .expect("the S3 folder is named");
        assert!(
            !std::path::Path::new(folder).exists(),
            "run {run}: the temporary S3 folder {folder} is left behind"
        );
    }
}

#[tokio::test]
async fn the_server_signs_what_a_verifying_emulator_accepts() {
    let home = tempfile::tempdir().unwrap();
    let support::StandaloneEmulator {
        child: mut emulator,
        url,
    } = support::standalone_emulator_with(
        home.path(),
        &["--fixtures", "ci", "--verify-sigv4"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDSIGNED"),
            ("AWS_SECRET_ACCESS_KEY", "the-shared-secret"),
        ],
    )
    .await;
    for (secret, accepted) in [("the-shared-secret", true), ("another-secret", false)] {
        let mut child = command(&["serve", "--endpoint-url", &url], home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIDSIGNED")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let client = ().serve((stdout, stdin)).await.expect("a session");
        let listed = client
            .call_tool(
                CallToolRequestParams::new("list_datastores").with_arguments(Default::default()),
            )
            .await
            .unwrap();
        if accepted {
            assert_ne!(listed.is_error, Some(true), "{listed:?}");
            let text = serde_json::to_string(&listed.structured_content).unwrap();
            let id = text
                .split("\"datastore_id\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a datastore")
                .to_owned();
            // A data-plane operation: its runtime- host is signed as sent.
            let mut arguments = serde_json::Map::new();
            arguments.insert("datastore_id".into(), serde_json::json!(id));
            let searched = client
                .call_tool(
                    CallToolRequestParams::new("search_image_sets").with_arguments(arguments),
                )
                .await
                .unwrap();
            assert_ne!(searched.is_error, Some(true), "{searched:?}");
            // DICOMweb, signed by the server with the same credentials.
            let mut arguments = serde_json::Map::new();
            arguments.insert("datastore_id".into(), serde_json::json!(id));
            arguments.insert("level".into(), serde_json::json!("study"));
            let studies = client
                .call_tool(CallToolRequestParams::new("search_dicomweb").with_arguments(arguments))
                .await
                .unwrap();
            assert_ne!(studies.is_error, Some(true), "{studies:?}");
            let records = studies.structured_content.as_ref().unwrap()["records"]
                .as_array()
                .unwrap()
                .len();
            assert!(records > 0, "the ci set's studies are found");
        } else {
            assert_eq!(listed.is_error, Some(true), "{listed:?}");
            let text = format!("{listed:?}");
            assert!(
                text.contains("InvalidSignatureException") || text.contains("signature"),
                "{text}"
            );
            let mut arguments = serde_json::Map::new();
            arguments.insert("datastore_id".into(), serde_json::json!("0".repeat(32)));
            arguments.insert("level".into(), serde_json::json!("study"));
            let studies = client
                .call_tool(CallToolRequestParams::new("search_dicomweb").with_arguments(arguments))
                .await
                .unwrap();
            assert_eq!(studies.is_error, Some(true), "{studies:?}");
            let text = format!("{studies:?}");
            assert!(text.contains("HTTP 403"), "DICOMweb is refused too: {text}");
        }
        client.cancel().await.unwrap();
        let _ = child.wait().await;
    }
    emulator.start_kill().unwrap();
}

#[tokio::test]
async fn a_jwks_file_is_checked_at_start_and_announced() {
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, r#"{"keys": []}"#).unwrap();
    let refused = command(
        &["emulator", "--oidc-jwks", bad.to_str().unwrap()],
        home.path(),
    )
    .output()
    .await
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is not usable") && stderr.contains("no RSA or P-256 key"),
        "{stderr}"
    );

    let good = home.path().join("jwks.json");
    std::fs::write(
        &good,
        r#"{"keys": [{"kty": "RSA", "n": "1LaZPsFhd1sAjeDbbYssZuu6P7hbf33K4V0K31uhJZXPuiZnq8eKCMLHiJNzjVcB3RVmlc4BcSz9UVB0soUv2Onk_8zj8z6c6LgPdJB1bvO9awWyAbh2KPsz1Psj_pJOpII7kpRUkgxxuwqJxn4tVd3IbOnBt5uTGMP_CQV44e5EBN3eiRC6kXQIV1rVDCs3IHQBNPBcH5AapqZyvWaaxuP2koJzPHP2XYgT9AsGeoRkVBXTSpDCWtCKZHTn-MaawS-ScZIMRq5ss1CdacATpeTUOzdhT_kulSR-i16m9Kzsb5CS9XJ9ZLbxxSZn9QwQ49rwF1dyMQNgpNK_UC0vyw", "e": "AQAB"}]}"#,
    )
    .unwrap();
    let mut emulator =
        standalone_emulator(home.path(), &["--oidc-jwks", good.to_str().unwrap()]).await;
    emulator.child.start_kill().unwrap();
    let stderr = support::stderr_of(&mut emulator.child).await;
    assert!(
        stderr.contains("DICOMweb bearer tokens checked against"),
        "{stderr}"
    );
}
