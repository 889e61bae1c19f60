//! MCP over streamable HTTP: the binary's `serve --transport http`, driven
//! by rmcp's client and the official Python SDK's; DNS-rebinding and
//! browser requests refused; the bearer token missing, wrong and right; a
//! non-loopback listener without a token refused at start; 32 concurrent
//! clients with zero errors.

#[path = "support/python.rs"]
mod python;
mod support;

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use support::command;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const TOKEN: &str = "a-test-token-of-32-characters-00";

struct HttpServer {
    child: tokio::process::Child,
    url: String,
    _home: tempfile::TempDir,
}

async fn start(extra: &[&str]) -> HttpServer {
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut args = vec![
        "serve",
        "--transport",
        "http",
        "--listen",
        "127.0.0.1:0",
        "--fixtures",
        "ci",
        "--auth-token-file",
        token.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = command(&args, home.path()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("MCP on http://") {
                return line[at + 7..].split(';').next().unwrap().to_owned();
            }
        }
        panic!("the server stopped before listening");
    })
    .await
    .expect("the server listens within 120 s");
    // Keep draining stderr so the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    HttpServer {
        child,
        url,
        _home: home,
    }
}

/// The `host:port` of a server's `/mcp` URL.
fn address(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

/// Sends one raw HTTP/1.1 request (`Connection: close`; `Host` added unless
/// `headers` has one) and returns the open connection to read the answer from.
async fn send(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> tokio::net::TcpStream {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// The headers an MCP POST carries, then `extra`.
fn mcp_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// One raw HTTP/1.1 request; returns the status and the Mcp-Session-Id.
async fn raw(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>) {
    let mut stream = send(&address(url), method, "/mcp", &mcp_headers(headers), body).await;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().unwrap();
    let session = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("mcp-session-id: ")
            .map(|v| v.trim().to_owned())
    });
    (status, session)
}

/// One raw HTTP/1.1 POST of an `initialize`; returns the status.
async fn post_initialize(url: &str, headers: &[(&str, &str)]) -> u16 {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let mut stream = send(&address(url), "POST", "/mcp", &mcp_headers(headers), body).await;
    let mut response = vec![0u8; 12];
    stream.read_exact(&mut response).await.unwrap();
    String::from_utf8_lossy(&response[9..12]).parse().unwrap()
}

async fn client(url: &str, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    ().serve(transport).await.expect("an MCP session over HTTP")
}

#[tokio::test]
async fn rmcp_and_the_python_sdk_work_over_http_and_the_guards_hold() {
    let mut server = start(&["--allowed-origin", "https://allowed.example"]).await;
    let url = server.url.clone();

    // rmcp's own client over HTTP, with the token.
    let session = client(&url, TOKEN).await;
    let tools = session.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 44);
    let listed = session
        .call_tool(CallToolRequestParams::new("list_datastores").with_arguments(Default::default()))
        .await
        .unwrap();
    assert_eq!(listed.structured_content.unwrap()["count"], 1);
    session.cancel().await.unwrap();

    // The official Python SDK.
    let output = std::process::Command::new(python::bin().join("python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/python/mcp_http.py"
        ))
        .env("MCP_URL", &url)
        .env("MCP_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let bearer = format!("Bearer {TOKEN}");
    let auth = ("Authorization", bearer.as_str());
    // The token: right, missing, wrong.
    assert_eq!(post_initialize(&url, &[auth]).await, 200);
    assert_eq!(post_initialize(&url, &[]).await, 401);
    assert_eq!(
        post_initialize(
            &url,
            &[("Authorization", "Bearer a-wrong-token-of-32-characters-0")]
        )
        .await,
        401
    );
    // DNS rebinding: a foreign Host; a foreign Origin; a browser without one.
    assert_eq!(
        post_initialize(&url, &[auth, ("Host", "evil.example")]).await,
        403
    );
    assert_eq!(
        post_initialize(&url, &[auth, ("Origin", "https://evil.example")]).await,
        403
    );
    assert_eq!(
        post_initialize(&url, &[auth, ("Sec-Fetch-Site", "cross-site")]).await,
        403
    );
    // GET and DELETE as the 2025-11-25 revision asks: no stream without a
    // session; DELETE ends a session, which then answers 404.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let (status, session) = raw(&url, "POST", &[auth], init).await;
    assert_eq!(status, 200);
    let session = session.expect("a session ID");
    assert_eq!(raw(&url, "GET", &[auth], "").await.0, 400);
    let with_session = [auth, ("Mcp-Session-Id", session.as_str())];
    assert_eq!(raw(&url, "DELETE", &with_session, "").await.0, 202);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    assert_eq!(raw(&url, "POST", &with_session, list).await.0, 404);
    // The origin the operator allowed passes.
    assert_eq!(
        post_initialize(&url, &[auth, ("Origin", "https://allowed.example")]).await,
        200
    );
    server.child.start_kill().unwrap();
}

#[tokio::test]
async fn thirty_two_clients_at_once_see_no_error() {
    let mut server = start(&[]).await;
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let session = client(&url, TOKEN).await;
            let mut calls = 0u32;
            while Instant::now() < deadline {
                let answer = session
                    .call_tool(
                        CallToolRequestParams::new("list_datastores")
                            .with_arguments(Default::default()),
                    )
                    .await
                    .expect("the call is answered");
                assert_ne!(answer.is_error, Some(true), "{answer:?}");
                calls += 1;
            }
            session.cancel().await.unwrap();
            calls
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("no client failed");
    }
    assert!(total >= 32, "{total} calls");
    eprintln!("32 clients made {total} calls in 4 s");
    server.child.start_kill().unwrap();
}

#[tokio::test]
async fn off_loopback_without_a_token_the_server_refuses_to_start() {
    let home = tempfile::tempdir().unwrap();
    let output = command(
        &[
            "serve",
            "--transport",
            "http",
            "--listen",
            "0.0.0.0:0",
            "--fixtures",
            "none",
        ],
        home.path(),
    )
    .env_remove("HEALTHIMAGING_MCP_TOKEN")
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a bearer token"), "{stderr}");
    // HTTP flags without the HTTP transport are a usage error.
    let output = command(&["serve", "--listen", "127.0.0.1:0"], home.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("apply to --transport http"));
}

/// An ES256 key, its JWKS, and a signer of access tokens.
struct Issuer {
    key: ring::signature::EcdsaKeyPair,
    jwks: String,
}

impl Issuer {
    fn new() -> Self {
        use base64::Engine;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwks =
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])}]})
            .to_string();
        Self { key, jwks }
    }

    fn token(&self, claims: serde_json::Value) -> String {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = b64(br#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#);
        let payload = b64(claims.to_string().as_bytes());
        let signed = format!("{header}.{payload}");
        let signature = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", b64(signature.as_ref()))
    }
}

#[tokio::test]
async fn oauth_access_tokens_of_the_configured_issuer_are_accepted() {
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, &issuer.jwks).unwrap();
    let mut server = start(&[
        "--oauth-issuer",
        "https://login.example",
        "--oauth-jwks",
        jwks.to_str().unwrap(),
        "--oauth-audience",
        "https://mcp.example/mcp",
    ])
    .await;
    let url = server.url.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |iss: &str, aud: &str, exp: i64| {
        issuer.token(
            json!({"iss": iss, "aud": aud, "sub": "clinician-1", "iat": now - 10, "exp": exp}),
        )
    };
    let status = |token: String| {
        let url = url.clone();
        async move {
            let bearer = format!("Bearer {token}");
            post_initialize(&url, &[("Authorization", bearer.as_str())]).await
        }
    };
    assert_eq!(
        status(token(
            "https://login.example",
            "https://mcp.example/mcp",
            now + 600
        ))
        .await,
        200
    );
    assert_eq!(
        status(token(
            "https://other.example",
            "https://mcp.example/mcp",
            now + 600
        ))
        .await,
        401
    );
    assert_eq!(
        status(token(
            "https://login.example",
            "https://elsewhere/mcp",
            now + 600
        ))
        .await,
        401
    );
    assert_eq!(
        status(token(
            "https://login.example",
            "https://mcp.example/mcp",
            now - 5
        ))
        .await,
        401
    );
    // The static token still works beside OAuth.
    assert_eq!(status(TOKEN.to_owned()).await, 200);
    // Refusals point at the metadata, which is served without a token.
    let address = address(&url);
    let mut refused = String::new();
    send(&address, "POST", "/mcp", &[], "{}")
        .await
        .read_to_string(&mut refused)
        .await
        .unwrap();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains(&format!(
            "resource_metadata=\"http://{address}/.well-known/oauth-protected-resource\""
        )),
        "{refused}"
    );
    let mut answer = String::new();
    send(
        &address,
        "GET",
        "/.well-known/oauth-protected-resource",
        &[],
        "",
    )
    .await
    .read_to_string(&mut answer)
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["resource"], "https://mcp.example/mcp");
    assert_eq!(body["authorization_servers"][0], "https://login.example");
    server.child.start_kill().unwrap();
}
