//! The error answer: an HTTP status and `{"error":{"kind","code","message"}}`. Messages name
//! the rule or the field at fault, never a key.

pub use sscard::keys::remote::protocol::ErrorKind;
use sscard::keys::remote::protocol::{ErrorBody, ErrorDetail};
use sscard_core::classify::Classified;
use sscard_core::profile::codes;

/// The name the audit log gives a kind (its wire name).
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::Unauthorised => "unauthorised",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Key => "key",
        ErrorKind::Internal => "internal",
    }
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The unified return code.
    pub code: i32,
    pub message: String,
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
            code: codes::KEY_SERVICE_FAILED,
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
        serde_json::to_string(&ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                code: self.code,
                message: self.message.clone(),
            },
        })
        .unwrap_or_default()
    }
    /// How the audit log records the outcome: `forbidden -23`.
    pub fn outcome(&self) -> String {
        format!("{} {}", kind_name(self.kind), self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_protocol_envelope() {
        let e = ApiError {
            kind: ErrorKind::RateLimited,
            code: codes::KEY_SERVICE_RATE_LIMITED,
            message: "slow down".into(),
        };
        assert_eq!(
            e.body(),
            r#"{"error":{"kind":"rate_limited","code":-2305,"message":"slow down"}}"#
        );
        assert_eq!(e.kind.status(), 429);
        assert_eq!(e.outcome(), "rate_limited -2305");
    }
}
