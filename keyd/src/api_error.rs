//! The error answer: an HTTP status and `{"error":{"kind","code","message"}}`. Messages name
//! the rule or the field at fault, never a key.

use serde::Serialize;
use sscard_core::classify::Classified;
use sscard_core::profile::codes;

/// The kinds of error the protocol knows, each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request does not parse.
    BadRequest,
    /// 401: no client identity (or none the policy knows).
    Unauthorised,
    /// 403: the policy refuses.
    Forbidden,
    /// 429: over the client's rate limit.
    RateLimited,
    /// 422: the key source refused (the code is its return code).
    Key,
    /// 500: the server failed (the audit log could not record, the key thread stopped).
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorised => 401,
            Self::Forbidden => 403,
            Self::RateLimited => 429,
            Self::Key => 422,
            Self::Internal => 500,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorised => "unauthorised",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Key => "key",
            Self::Internal => "internal",
        }
    }
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The unified return code.
    pub code: i32,
    pub message: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ApiError,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            code: codes::INVALID_DATA,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            code: codes::UNKNOWN,
            message: message.into(),
        }
    }
    /// A key-source error with its return code.
    pub fn key(e: &(impl Classified + std::fmt::Display)) -> Self {
        Self {
            kind: ErrorKind::Key,
            code: e.return_code(),
            message: e.to_string(),
        }
    }
    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::to_string(&Envelope { error: self }).unwrap_or_default()
    }
    /// How the audit log records the outcome: `forbidden -23`.
    pub fn outcome(&self) -> String {
        format!("{} {}", self.kind.name(), self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_protocol_envelope() {
        let e = ApiError {
            kind: ErrorKind::RateLimited,
            code: -999,
            message: "slow down".into(),
        };
        assert_eq!(
            e.body(),
            r#"{"error":{"kind":"rate_limited","code":-999,"message":"slow down"}}"#
        );
        assert_eq!(e.kind.status(), 429);
        assert_eq!(e.outcome(), "rate_limited -999");
    }
}
