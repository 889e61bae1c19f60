//! What may be logged: our own events at the level the operator asks for,
//! and nothing that can carry patient data from the libraries beneath.
//!
//! rmcp logs whole messages (a tool's arguments, a failed read's error text
//! with the patient in it) at several levels, and the AWS SDK and HTTP
//! stacks log requests and responses at debug and trace: those crates are
//! held at `warn`, and rmcp is off, whatever `HEALTHIMAGING_MCP_LOG` or
//! `RUST_LOG` says. The server logs its own session events instead.

use tracing_subscriber::EnvFilter;

/// Crates whose logs may carry message or request content, and the most
/// they may log.
const CLAMPED: [(&str, &str); 16] = [
    ("rmcp", "off"),
    ("aws_config", "warn"),
    // Off EC2 every instance metadata probe fails; a missing credential is
    // reported once, with what to set, by the start-up error instead.
    ("aws_config::imds", "error"),
    ("aws_smithy_runtime", "warn"),
    ("aws_smithy_runtime_api", "warn"),
    ("aws_smithy_http_client", "warn"),
    // Says ERROR for every 5xx answered without a socket (the embedded
    // emulator's router, the in-process transport): noise, not a fault.
    (
        "aws_smithy_runtime::client::http::connection_poisoning",
        "off",
    ),
    ("aws_sdk_medicalimaging", "warn"),
    ("aws_sdk_s3", "warn"),
    ("lopdf", "warn"),
    ("aws_sigv4", "warn"),
    ("hyper", "warn"),
    ("hyper_util", "warn"),
    ("h2", "warn"),
    ("tower", "warn"),
    ("axum", "warn"),
];

/// The filter for `requested` (an `EnvFilter` directive string, `info` when
/// absent or unparsable), with the clamps applied last so they win.
pub fn filter(requested: Option<&str>) -> EnvFilter {
    let mut filter = requested
        .and_then(|text| EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for (target, level) in CLAMPED {
        if let Ok(directive) = format!("{target}={level}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_win_over_what_is_asked() {
        let text = filter(Some("trace,rmcp=trace,aws_smithy_runtime=trace")).to_string();
        assert!(text.contains("rmcp=off"), "{text}");
        assert!(text.contains("aws_smithy_runtime=warn"), "{text}");
        assert!(!text.contains("rmcp=trace"), "{text}");
        assert!(filter(Some("not a [filter")).to_string().contains("info"));
    }
}
