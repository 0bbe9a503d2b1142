//! Errors as clients see them: the one table of error codes ([`ErrorCode`]), shared by HTTP
//! answers and WebSocket `error` frames, and the one mapping from gRPC status codes to it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// Every error code a client may see: in the HTTP body `{"error": {"code", "message"}}` and
/// in WebSocket `{"op": "error", "d": {"code", "message"}}` frames. docs/api.md lists the
/// table; web/js/errors.js names the codes the client reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidArgument,
    InvalidJson,
    InvalidFrame,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    RateLimited,
    TooManyConnections,
    Internal,
    Unavailable,
}

/// Where a code is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Http,
    WebSocket,
    Both,
}

impl ErrorCode {
    /// The whole table, in the order docs/api.md lists it.
    pub const ALL: [Self; 16] = [
        Self::InvalidArgument,
        Self::InvalidJson,
        Self::InvalidFrame,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RangeNotSatisfiable,
        Self::RateLimited,
        Self::TooManyConnections,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The code as clients read it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::InvalidJson => "invalid_json",
            Self::InvalidFrame => "invalid_frame",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status it is answered with (a WebSocket-only code: the status it would have).
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument | Self::InvalidJson | Self::InvalidFrame => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::RateLimited | Self::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Where clients meet it.
    pub fn channel(self) -> Channel {
        match self {
            Self::InvalidJson
            | Self::MethodNotAllowed
            | Self::RequestTimeout
            | Self::PayloadTooLarge
            | Self::UnsupportedMediaType
            | Self::RangeNotSatisfiable => Channel::Http,
            Self::InvalidFrame | Self::TooManyConnections => Channel::WebSocket,
            Self::InvalidArgument
            | Self::Unauthenticated
            | Self::Forbidden
            | Self::NotFound
            | Self::Conflict
            | Self::RateLimited
            | Self::Internal
            | Self::Unavailable => Channel::Both,
        }
    }

    /// The code a gRPC status code becomes. A call that never got an answer (the replica
    /// unreachable, the connection broken, no answer within the deadline) is UNAVAILABLE or
    /// DEADLINE_EXCEEDED from the channel (`astral_common::grpc`): transient.
    pub fn of_grpc(code: tonic::Code) -> Self {
        use tonic::Code;
        match code {
            Code::InvalidArgument | Code::FailedPrecondition => Self::InvalidArgument,
            // Only ever "too large" (astral_common::Error::TooLarge).
            Code::OutOfRange => Self::PayloadTooLarge,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::Forbidden,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists | Code::Aborted => Self::Conflict,
            Code::ResourceExhausted => Self::RateLimited,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
                Self::Internal
            }
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered as `{"error": {"code", "message"}}` with its code's status, or sent as
/// a WebSocket `error` frame.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait, for a 429 or a 503.
    pub retry_after_s: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 429 with `Retry-After` (whole seconds, at least one).
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let retry_after_s = Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        Self {
            retry_after_s,
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// 503: a dependency is not ready or not answering; try again in a second.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after_s: Some(1),
            ..Self::new(ErrorCode::Unavailable, message)
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = ErrorCode::of_grpc(status.code());
        if code.status().is_server_error() {
            tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
        }
        let retry_after_s = status
            .metadata()
            .get(astral_common::error::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        Self {
            retry_after_s,
            ..Self::new(code, status.message())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            let seconds = self.retry_after_s.unwrap_or(1).max(1);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_written_as_serde_writes_it() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[test]
    fn the_api_docs_list_every_code_with_its_status() {
        let docs = include_str!("../../docs/api.md");
        for code in ErrorCode::ALL {
            let channel = match code.channel() {
                Channel::Http => "HTTP",
                Channel::WebSocket => "WebSocket",
                Channel::Both => "both",
            };
            let row = format!("| `{code}` | {} | {channel}", code.status().as_u16());
            assert!(docs.contains(&row), "docs/api.md lacks the row {row}");
        }
    }

    #[test]
    fn the_web_client_names_the_codes_it_uses_as_the_table_does() {
        let module = include_str!("../../web/js/errors.js");
        for line in module.lines().filter(|line| line.contains(": '")) {
            let code = line.split('\'').nth(1).unwrap_or_default();
            assert!(
                ErrorCode::ALL.iter().any(|known| known.as_str() == code),
                "web/js/errors.js names {code}, which the gateway never sends"
            );
        }
    }
}
