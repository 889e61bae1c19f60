//! One audit record per tool call.
//!
//! A record names the tool, the outcome, the resources affected (datastore
//! and image set IDs only) and the duration, as one JSON line on stderr or in
//! the `--audit-log` file. It never holds arguments or results, so it never
//! holds patient data.
//!
//! Tools report what they touched through a task-local scope that the server
//! opens around each call ([`AuditLog::record_call`]); a tool calls
//! [`touch`], [`outcome`] and [`error_code`] without threading a recorder
//! through every function.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// A destructive tool showed a preview and changed nothing.
    Preview,
    /// A confirmation was refused (expired, reused, or the data changed).
    Refused,
    /// It failed.
    Error,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Always `"tool_call"`, to tell audit lines from log lines on stderr.
    pub audit: &'static str,
    /// When the call ended, RFC 3339.
    pub time: String,
    /// The tool's name.
    pub tool: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The AWS error code, when the service refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Datastore and image set IDs affected or read.
    pub resources: Vec<String>,
    /// How long the call took.
    pub duration_ms: u64,
}

#[derive(Debug, Default)]
struct Scope {
    resources: Vec<String>,
    outcome: Option<Outcome>,
    error_code: Option<String>,
}

tokio::task_local! {
    static SCOPE: Arc<Mutex<Scope>>;
}

fn with_scope(f: impl FnOnce(&mut Scope)) {
    // Outside a tool call (in unit tests of a tool's helpers) there is no
    // scope and nothing to record.
    let _ = SCOPE.try_with(|scope| f(&mut scope.lock().unwrap_or_else(|e| e.into_inner())));
}

/// Records that the current tool call affected or read `resource_id`.
pub fn touch(resource_id: &str) {
    with_scope(|scope| {
        if !scope.resources.iter().any(|r| r == resource_id) {
            scope.resources.push(resource_id.to_owned());
        }
    });
}

/// Sets the outcome of the current tool call (otherwise derived from its result).
pub fn outcome(outcome: Outcome) {
    with_scope(|scope| scope.outcome = Some(outcome));
}

/// Records the AWS error code the current tool call failed with.
pub fn error_code(code: &str) {
    with_scope(|scope| scope.error_code = Some(code.to_owned()));
}

/// Where audit records go.
pub struct AuditLog {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Records to standard error.
    pub fn stderr() -> Self {
        Self::to_writer(std::io::stderr())
    }

    /// Records appended to the file at `path`.
    pub fn file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self::to_writer(file))
    }

    /// Records to any writer.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        Self {
            sink: Mutex::new(Box::new(writer)),
        }
    }

    /// Runs one tool call in an audit scope and writes its record.
    ///
    /// `failed` tells, from the call's result, whether it failed.
    pub async fn record_call<T>(
        &self,
        tool: &str,
        call: impl Future<Output = T>,
        failed: impl FnOnce(&T) -> bool,
    ) -> T {
        let started = Instant::now();
        let scope = Arc::new(Mutex::new(Scope::default()));
        let result = SCOPE.scope(scope.clone(), call).await;
        let scope = std::mem::take(&mut *scope.lock().unwrap_or_else(|e| e.into_inner()));
        let outcome = match scope.outcome {
            Some(outcome) => outcome,
            None if failed(&result) => Outcome::Error,
            None => Outcome::Success,
        };
        self.write(&AuditRecord {
            audit: "tool_call",
            time: now_rfc3339(),
            tool: tool.to_owned(),
            outcome,
            error_code: scope.error_code,
            resources: scope.resources,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        result
    }

    fn write(&self, record: &AuditRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::error!(%error, "could not write the audit record");
        }
    }
}

fn now_rfc3339() -> String {
    crate::timefmt::rfc3339_millis(&aws_smithy_types::DateTime::from(SystemTime::now()))
}

/// A writer whose bytes can be read back, for tests of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Every record written so far, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_produces_one_record_with_what_it_touched() {
        let buffer = SharedBuffer::default();
        let log = AuditLog::to_writer(buffer.clone());
        let value = log
            .record_call(
                "delete_datastore",
                async {
                    touch("abc");
                    touch("abc");
                    outcome(Outcome::Preview);
                    7
                },
                |_| false,
            )
            .await;
        assert_eq!(value, 7);
        log.record_call(
            "get_datastore",
            async { error_code("ResourceNotFoundException") },
            |_| true,
        )
        .await;
        let records = buffer.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["tool"], "delete_datastore");
        assert_eq!(records[0]["outcome"], "preview");
        assert_eq!(records[0]["resources"], serde_json::json!(["abc"]));
        assert_eq!(records[1]["outcome"], "error");
        assert_eq!(records[1]["error_code"], "ResourceNotFoundException");
    }

    #[test]
    fn touching_outside_a_call_is_harmless() {
        touch("x");
        outcome(Outcome::Success);
    }
}
