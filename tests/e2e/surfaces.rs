//! The emulator's HTTP listener as an attacker and a careless operator meet
//! it: a web page on another origin, a rebound DNS name, an open address, a
//! client that never finishes its request, oversized bodies, and a control
//! API that must not empty a data directory by accident.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use healthimaging_e2e::{Fixture, raw_http};
use healthimaging_emulator::{Control, Emulator, EmulatorConfig, Surface};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn a_web_page_cannot_delete_or_reset_through_the_browser() {
    let f = Fixture::start(10).await;
    let ds = f.active_datastore("kept").await;
    let url = f.emulator.url();
    // What a page's fetch('http://127.0.0.1:PORT/datastore/…', {method: 'DELETE'}) sends.
    for (method, path, extra) in [
        (
            "DELETE",
            format!("/datastore/{ds}"),
            vec![("Origin", "https://evil.example")],
        ),
        (
            "POST",
            "/_emulator/reset".to_owned(),
            vec![
                ("Origin", "https://evil.example"),
                ("Content-Type", "text/plain"),
            ],
        ),
        (
            "POST",
            "/_emulator/reset".to_owned(),
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
        (
            "POST",
            "/_emulator/reset".to_owned(),
            vec![("Content-Type", "text/plain")],
        ),
        (
            "DELETE",
            format!("/datastore/{ds}"),
            vec![("Host", "attacker.example:80")],
        ),
        // A page reading patient data through DICOMweb, directly or by a rebound name.
        (
            "GET",
            format!("/datastore/{ds}/studies"),
            vec![("Origin", "https://evil.example")],
        ),
        (
            "GET",
            format!("/datastore/{ds}/instances"),
            vec![("Host", "attacker.example:80")],
        ),
    ] {
        let (status, headers, body) = raw_http(url, method, &path, &extra, "").await;
        assert!(
            status == 403 || status == 400,
            "{method} {path} {extra:?}: {status} {body}"
        );
        assert!(
            header(&headers, "x-amzn-errortype").is_some(),
            "an AWS-shaped refusal"
        );
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        assert!(body["message"].is_string());
    }
    let still = f
        .sdk
        .get_datastore()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still
            .datastore_properties()
            .unwrap()
            .datastore_status()
            .as_str(),
        "ACTIVE",
        "nothing was deleted or reset"
    );
}

#[tokio::test]
async fn an_access_key_is_required_off_loopback_and_when_set() {
    let open = Surface::default();
    let error = Emulator::bind_with(
        SocketAddr::from(([0, 0, 0, 0], 0)),
        EmulatorConfig::default(),
        open,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("access key"), "{error}");

    let keyed = Surface {
        access_key: Some("HIMETESTKEY1234567890".into()),
        ..Surface::default()
    };
    let emulator = Emulator::bind_with(loopback(), EmulatorConfig::default(), keyed)
        .await
        .unwrap();
    let (status, _, _) = raw_http(emulator.url(), "GET", "/datastore", &[], "").await;
    assert_eq!(status, 403);
    let (status, _, _) = raw_http(
        emulator.url(),
        "GET",
        "/datastore",
        &[("Authorization", "Bearer HIMETESTKEY1234567890")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let sdk = healthimaging_mcp::backend::emulator_client(
        emulator.url(),
        healthimaging_e2e::fast_tuning(),
    );
    assert!(
        sdk.list_datastores().send().await.is_err(),
        "the placeholder access key is not the emulator's"
    );
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_operation_limit_get_an_aws_shaped_413() {
    let f = Fixture::start(10).await;
    let ds = f.active_datastore("limits").await;
    let big = format!("{{\"filters\":\"{}\"}}", "x".repeat(100 * 1024));
    let (status, headers, body) = raw_http(
        f.emulator.url(),
        "POST",
        &format!("/datastore/{ds}/searchImageSets"),
        &[("Content-Type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("RequestEntityTooLargeException")
    );
    assert!(body.contains("65536 bytes"), "{body}");
}

#[tokio::test]
async fn the_control_api_moves_or_goes_and_reset_spares_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let surface = Surface {
        control: Control::Listen(loopback()),
        ..Surface::default()
    };
    let config = EmulatorConfig::default().with_data_dir(dir.path().join("data"));
    let emulator = Emulator::bind_with(loopback(), config, surface)
        .await
        .unwrap();
    let control = emulator.control_url().unwrap().to_owned();
    assert!(!control.starts_with(emulator.url()), "{control}");
    let (status, _, _) = raw_http(emulator.url(), "GET", "/_emulator/health", &[], "").await;
    assert_eq!(status, 404, "not beside the API any more");
    let base = control.trim_end_matches("/_emulator");
    let (status, _, _) = raw_http(base, "GET", "/_emulator/health", &[], "").await;
    assert_eq!(status, 200);
    let (status, headers, body) = raw_http(base, "POST", "/_emulator/reset", &[], "").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("ConflictException")
    );
    assert!(body.contains("--allow-reset"), "{body}");
    emulator.shutdown().await.unwrap();

    let off = Surface {
        control: Control::Off,
        ..Surface::default()
    };
    let emulator = Emulator::bind_with(loopback(), EmulatorConfig::default(), off)
        .await
        .unwrap();
    assert_eq!(emulator.control_url(), None);
    let (status, _, _) = raw_http(emulator.url(), "POST", "/_emulator/reset", &[], "").await;
    assert_eq!(status, 404);
    emulator.shutdown().await.unwrap();
}

fn quick_surface() -> Surface {
    Surface {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(500),
        shutdown_deadline: Duration::from_millis(500),
        ..Surface::default()
    }
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut sink))
        .await
        .expect("the server closed the connection");
    started.elapsed()
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_and_do_not_hold_shutdown() {
    let emulator = Emulator::bind_with(loopback(), EmulatorConfig::default(), quick_surface())
        .await
        .unwrap();
    // Slowloris: headers that never end.
    let mut slow = TcpStream::connect(emulator.addr()).await.unwrap();
    slow.write_all(b"GET /datastore HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
        .await
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await < Duration::from_secs(3));
    // A body that never arrives.
    let mut stalled = TcpStream::connect(emulator.addr()).await.unwrap();
    let head = format!(
        "POST /datastore HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        emulator.addr()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeoutException"), "{answer}");
    // An idle keep-alive connection.
    let mut idle = TcpStream::connect(emulator.addr()).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await < Duration::from_secs(3));
    // Shutdown with a half-sent request in flight: bounded by the deadline.
    let mut half = TcpStream::connect(emulator.addr()).await.unwrap();
    half.write_all(b"POST /datastore HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    emulator.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn many_idle_connections_neither_exhaust_nor_block_the_listener() {
    let surface = Surface {
        max_connections: 64,
        ..quick_surface()
    };
    let emulator = Emulator::bind_with(loopback(), EmulatorConfig::default(), surface)
        .await
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(emulator.addr()).await.unwrap());
    }
    // The idle ones time out and free their slots: a real request gets through.
    let (status, _, _) = tokio::time::timeout(
        Duration::from_secs(10),
        raw_http(emulator.url(), "GET", "/datastore", &[], ""),
    )
    .await
    .expect("served once idle connections time out");
    assert_eq!(status, 200);
    drop(idle);
    emulator.shutdown().await.unwrap();
}
