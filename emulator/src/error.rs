//! The wire errors of the HealthImaging API.
//!
//! Every error the emulator sends is one of the service's modelled error
//! shapes: status from the model, `x-amzn-ErrorType: <Code>` and a body of
//! `{"message": "..."}`. Both SDKs read the code from the header and match it
//! exactly against the modelled names, so the set is closed.

use axum::http::StatusCode;

/// An error code of the HealthImaging model, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: a request member broke a model constraint.
    Validation,
    /// 400: GetImageFrame only.
    BadRequest,
    /// 403: not authorized.
    AccessDenied,
    /// 404: the named resource does not exist.
    ResourceNotFound,
    /// 406: GetImageFrame only.
    NotAcceptable,
    /// 409: the resource is in a state that forbids the request.
    Conflict,
    /// 402 (sic, as in the model): a service quota would be exceeded.
    ServiceQuotaExceeded,
    /// 429: too many requests; the SDKs retry it.
    Throttling,
    /// 500: the service failed; the SDKs retry it.
    InternalServer,
}

impl ErrorCode {
    /// The code sent in `x-amzn-ErrorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "ValidationException",
            ErrorCode::BadRequest => "BadRequestException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::NotAcceptable => "NotAcceptableException",
            ErrorCode::Conflict => "ConflictException",
            ErrorCode::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorCode::Throttling => "ThrottlingException",
            ErrorCode::InternalServer => "InternalServerException",
        }
    }

    /// The HTTP status the model gives this error.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Validation | ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorCode::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::ServiceQuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::Throttling => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer to one request: a code and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    /// The modelled error code.
    pub code: ErrorCode,
    /// What went wrong, naming the field or resource concerned.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `ValidationException` about `field`.
    pub fn validation(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: {problem}"
            ),
        )
    }

    /// A `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    /// A `ConflictException`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
}

/// The result of handling one operation.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_model() {
        assert_eq!(ErrorCode::ServiceQuotaExceeded.status().as_u16(), 402);
        assert_eq!(ErrorCode::Throttling.status().as_u16(), 429);
        assert_eq!(ErrorCode::Conflict.status().as_u16(), 409);
        assert_eq!(ErrorCode::Validation.as_str(), "ValidationException");
    }

    #[test]
    fn validation_messages_name_the_field() {
        let error = ApiError::validation(
            "maxResults",
            "Member must have value less than or equal to 50",
        );
        assert!(error.message.contains("'maxResults'"));
        assert_eq!(error.code, ErrorCode::Validation);
    }
}
