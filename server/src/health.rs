//! `healthimaging-mcp health`: the container health check, without curl.
//!
//! Healthy when any of the URLs answers HTTP with a status below 500 within
//! the timeout: the emulator's `/_emulator/health` answers 200, the MCP
//! endpoint answers a bare GET with a 4xx (no session, or no token), and
//! either means the process is up and serving. Plain `http://` only: a
//! health check talks to the container it runs in.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The URLs checked when none is given: the emulator's health endpoint and
/// the MCP endpoint of `serve --transport http`, on their default ports.
pub const DEFAULT_URLS: [&str; 2] = [
    "http://127.0.0.1:4566/_emulator/health",
    "http://127.0.0.1:8000/mcp",
];

/// The status `url` answers a GET with, or why it did not.
pub async fn status(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host to check"));
    }
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
            let read = stream
                .read(&mut buffer)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let line = String::from_utf8_lossy(&head);
        line.strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("{url}: not an HTTP answer"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {} s", timeout.as_secs()))?
}

/// Checks `urls` (the defaults when empty); `Ok` names the one that
/// answered, `Err` says why each failed.
pub async fn check(urls: &[String], timeout: Duration) -> Result<String, String> {
    let urls: Vec<String> = if urls.is_empty() {
        DEFAULT_URLS.iter().map(|u| (*u).to_owned()).collect()
    } else {
        urls.to_vec()
    };
    let mut failures = Vec::new();
    for url in &urls {
        match status(url, timeout).await {
            Ok(code) if code < 500 => return Ok(format!("{url} answered {code}")),
            Ok(code) => failures.push(format!("{url} answered {code}")),
            Err(why) => failures.push(why),
        }
    }
    Err(failures.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answering(status_line: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 512];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(format!("{status_line}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await;
        });
        format!("http://{addr}/_emulator/health")
    }

    #[tokio::test]
    async fn healthy_when_a_url_answers_below_500() {
        let ok = answering("HTTP/1.1 200 OK").await;
        let second = Duration::from_secs(3);
        assert_eq!(status(&ok, second).await, Ok(200));
        let unauthorized = answering("HTTP/1.1 401 Unauthorized").await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/mcp", listener.local_addr().unwrap())
        };
        let answer = check(&[closed.clone(), unauthorized.clone()], second)
            .await
            .unwrap();
        assert!(answer.contains("answered 401"), "{answer}");
        let failing = answering("HTTP/1.1 503 Service Unavailable").await;
        let why = check(&[closed.clone(), failing], second).await.unwrap_err();
        assert!(
            why.contains("answered 503") && why.contains(&closed),
            "{why}"
        );
    }

    #[tokio::test]
    async fn silence_and_other_schemes_are_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = format!("http://{}/", listener.local_addr().unwrap());
        let why = status(&silent, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(why.contains("no answer within"), "{why}");
        drop(listener);
        let why = status("https://127.0.0.1:1/", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(why.contains("only http://"), "{why}");
    }
}
