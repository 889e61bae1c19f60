//! MCP over stdio, with an answer for every line.
//!
//! rmcp ignores a line that is not JSON, so a client that sent one waits for
//! an answer forever. JSON-RPC 2.0 answers it with a parse error (-32700,
//! `id: null`): this transport reads stdin itself, hands every line that is
//! JSON to rmcp, and answers the others. Both rmcp's messages and those
//! answers reach stdout whole lines at a time, in order, through one writer
//! task. At most [`PARSE_ERRORS_PER_SECOND`] parse errors are answered each
//! second, so a peer that echoes garbage back cannot start an error storm.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Parse errors answered per second at most.
pub const PARSE_ERRORS_PER_SECOND: u32 = 10;

/// The longest line read; a longer one is answered as an invalid request
/// and discarded, so a runaway client cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The two ends rmcp is given, and the task that writes stdout (await it
/// after the session so every answer is written).
pub struct Stdio {
    /// What rmcp reads: the lines of stdin that are JSON.
    pub reader: DuplexStream,
    /// What rmcp writes: forwarded to stdout line by line.
    pub writer: LineWriter,
    /// Writes stdout until both writers are gone.
    pub output: JoinHandle<()>,
}

/// Stdio with parse-error answers, for `input` and `output` (stdin and
/// stdout in the binary, pipes in tests).
pub fn stdio(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> Stdio {
    let (lines, mut pending) = mpsc::unbounded_channel::<Vec<u8>>();
    let output = tokio::spawn(async move {
        let mut output = output;
        while let Some(line) = pending.recv().await {
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let (mut to_rmcp, reader) = tokio::io::duplex(1 << 20);
    let answers = lines.clone();
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut limiter = Limiter::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_line(&mut input, &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let content = trimmed(&line);
            if content.is_empty() {
                continue;
            }
            let answer = if line.len() > MAX_LINE_BYTES {
                Some((
                    -32600,
                    "Invalid Request: the message is longer than this server reads",
                ))
            } else if serde_json::from_slice::<serde::de::IgnoredAny>(content).is_err() {
                Some((-32700, "Parse error: the line is not JSON"))
            } else {
                None
            };
            match answer {
                None => {
                    if to_rmcp.write_all(content).await.is_err()
                        || to_rmcp.write_all(b"\n").await.is_err()
                    {
                        break;
                    }
                }
                Some((code, message)) if limiter.allow() => {
                    let error = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": null,
                        "error": { "code": code, "message": message },
                    });
                    let _ = answers.send(format!("{error}\n").into_bytes());
                }
                Some(_) => {}
            }
        }
        // End of input: rmcp sees it and ends the session.
        let _ = to_rmcp.shutdown().await;
    });
    Stdio {
        reader,
        writer: LineWriter {
            lines,
            partial: Vec::new(),
        },
        output,
    }
}

/// Reads one line of at most [`MAX_LINE_BYTES`] (plus one byte, to tell an
/// oversized line); the rest of an oversized line is skipped.
async fn read_line(
    input: &mut (impl AsyncBufReadExt + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let used = chunk.len();
        if line.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(chunk);
        }
        total += used;
        input.consume(used);
        if done {
            return Ok(total);
        }
    }
}

/// A line without its line ending or a byte-order mark.
fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

#[derive(Default)]
struct Limiter {
    window: Option<Instant>,
    answered: u32,
}

impl Limiter {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.answered = 0;
            }
        }
        self.answered += 1;
        self.answered <= PARSE_ERRORS_PER_SECOND
    }
}

/// rmcp's writer: complete lines go to the stdout task as they form.
pub struct LineWriter {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    partial: Vec<u8>,
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if self.lines.send(line).is_err() {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            let _ = self.lines.send(rest);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[tokio::test]
    async fn json_lines_pass_and_others_get_a_parse_error() {
        let (mut client, server_input) = tokio::io::duplex(1 << 16);
        let (server_output, client_output) = tokio::io::duplex(1 << 16);
        let mut io = stdio(server_input, server_output);
        client
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\nnot json\n\n")
            .await
            .unwrap();
        let mut passed = BufReader::new(&mut io.reader);
        let mut line = String::new();
        passed.read_line(&mut line).await.unwrap();
        assert_eq!(line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
        let mut answers = BufReader::new(client_output).lines();
        let answer: serde_json::Value =
            serde_json::from_str(&answers.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(answer["error"]["code"], -32700);
        assert_eq!(answer["id"], serde_json::Value::Null);
        io.writer.write_all(b"{\"a\":").await.unwrap();
        io.writer.write_all(b"1}\n").await.unwrap();
        assert_eq!(answers.next_line().await.unwrap().unwrap(), "{\"a\":1}");
    }

    #[tokio::test]
    async fn parse_errors_are_answered_at_a_bounded_rate() {
        let (mut client, server_input) = tokio::io::duplex(1 << 16);
        let (server_output, client_output) = tokio::io::duplex(1 << 16);
        let io = stdio(server_input, server_output);
        for _ in 0..50 {
            client.write_all(b"garbage\n").await.unwrap();
        }
        client.shutdown().await.unwrap();
        drop(client);
        drop(io.writer);
        drop(io.reader);
        io.output.await.unwrap();
        let mut answers = BufReader::new(client_output).lines();
        let mut count = 0;
        while let Ok(Some(_)) = answers.next_line().await {
            count += 1;
        }
        assert!(
            (1..=PARSE_ERRORS_PER_SECOND as usize * 2).contains(&count),
            "{count} answers"
        );
    }
}
