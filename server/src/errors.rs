//! Tool errors: what failed, the AWS error code, and what to do next.
//!
//! A tool error is a result the assistant reads (`isError: true`), distinct
//! from a protocol error (a malformed call). Its text always starts with the
//! AWS error code or the kind of failure, then the service's message, then
//! advice, so that the assistant can act on it.

use std::fmt;

use aws_sdk_medicalimaging::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

use crate::audit;

/// A failed tool call, as the assistant will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// The AWS error code or failure kind, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// What happened.
    pub message: String,
    /// What the assistant or user can do about it.
    pub advice: String,
}

impl ToolError {
    /// An error with every part given.
    pub fn new(
        code: impl Into<String>,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        let error = Self {
            code: code.into(),
            message: message.into(),
            advice: advice.into(),
        };
        audit::error_code(&error.code);
        error
    }

    /// Replaces the advice when the error has `code`: a tool knows better
    /// than the generic advice what to do about some errors.
    pub fn advise_on(mut self, code: &str, advice: impl Into<String>) -> Self {
        if self.code == code {
            self.advice = advice.into();
        }
        self
    }

    /// Turns the failure of an SDK call into a tool error.
    pub fn from_sdk<E>(error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = aws_sdk_medicalimaging::error::DisplayErrorContext(&error).to_string();
        match &error {
            SdkError::ServiceError(service) => match service.err().code() {
                Some(code) => {
                    let message = service.err().message().unwrap_or("no message");
                    Self::new(code, message, advice_for(code))
                }
                // No error code: the body was not a HealthImaging answer at
                // all (an HTML page from a proxy, or a success body that is
                // not the operation's JSON).
                None => Self::new(
                    "MalformedResponse",
                    format!(
                        "The endpoint answered HTTP {} with a body that is not a HealthImaging response: {detail}",
                        service.raw().status().as_u16()
                    ),
                    MALFORMED_ADVICE,
                ),
            },
            SdkError::TimeoutError(_) => Self::new(
                "Timeout",
                "The HealthImaging endpoint did not answer in time",
                "Try again; if it keeps happening, check the endpoint and network.",
            ),
            SdkError::DispatchFailure(_) => Self::new(
                "ConnectionFailure",
                format!("Could not reach the HealthImaging endpoint: {detail}"),
                "Check that the endpoint is running and reachable, and the network and credentials.",
            ),
            SdkError::ResponseError(_) => Self::new(
                "MalformedResponse",
                format!(
                    "The endpoint answered with something that is not a HealthImaging response: {detail}"
                ),
                "The endpoint may not be HealthImaging, or a proxy in between returned its own page. Check --endpoint-url.",
            ),
            _ => Self::new(
                "RequestFailed",
                detail,
                "Check the arguments and the server's configuration.",
            ),
        }
    }
}

const MALFORMED_ADVICE: &str = "The endpoint may not be HealthImaging, or a proxy in between returned its own page. Check --endpoint-url and the network path.";

/// Generic advice per AWS error code.
fn advice_for(code: &str) -> &'static str {
    match code {
        "ResourceNotFoundException" => {
            "Check the ID: list_datastores lists datastores; search_image_sets finds image sets."
        }
        "ValidationException" => "Correct the argument the message names and call again.",
        "ConflictException" => {
            "The resource is in a state that does not allow this now (for example still CREATING, or LOCKED by another write). Check its status and retry when it has settled."
        }
        "AccessDeniedException" => {
            "The credentials lack the IAM permission for this action; ask an administrator to grant it."
        }
        "ServiceQuotaExceededException" => {
            "A service quota is reached; delete unused resources or request a quota increase."
        }
        "ThrottlingException" => {
            "The service is throttling requests even after retries; wait a little and try again."
        }
        "InternalServerException" => {
            "The service failed even after retries; try again later. Nothing was changed by a failed call."
        }
        _ => "Check the arguments and try again.",
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.trim_end().trim_end_matches('.');
        write!(f, "{}: {}. What to do: {}", self.code, message, self.advice)
    }
}

impl rmcp::handler::server::tool::IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(self.to_string())]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_code_message_and_advice() {
        let error = ToolError::new("ConflictException", "Datastore x holds 3 image sets.", "x")
            .advise_on("ConflictException", "Delete the image sets first.");
        assert_eq!(
            error.to_string(),
            "ConflictException: Datastore x holds 3 image sets. What to do: Delete the image sets first."
        );
        let other =
            ToolError::new("ValidationException", "m", "a").advise_on("ConflictException", "b");
        assert_eq!(other.advice, "a");
    }
}
