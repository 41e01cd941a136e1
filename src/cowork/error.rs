//! [`CoworkError`]: what a downstream call can come back with, classified so the
//! caller knows whether to retry, converge or report. Imports nothing of ours.
//!
//! Server messages are kept for operators, but they are never logged by this module:
//! the log carries the status, the error type, the code and the request id.

use std::time::Duration;

use super::types::ErrorEnvelope;

/// A failed call to the Cowork admin API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoworkError {
    /// 401 or 403: the key is missing, wrong, or lacks a scope.
    #[error("cowork admin API refused the key ({status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's message (for 403 it lists the scopes).
        message: String,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// 404: no such object.
    #[error("cowork admin API: not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// 409: a unique value is taken, a version moved, or an idempotency key was reused.
    #[error("cowork admin API: conflict{}: {message}", code_suffix(.code))]
    Conflict {
        /// The server's message.
        message: String,
        /// `error.code`, e.g. `idempotency_key_reused`, `version_mismatch`.
        code: Option<String>,
        /// `error.details.existing_id`: the object that already holds the unique value.
        existing_id: Option<String>,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// 400: the request breaks a rule (R1–R19) or is malformed.
    #[error("cowork admin API: invalid request{}: {message}", code_suffix(.code))]
    InvalidRequest {
        /// The server's message.
        message: String,
        /// `error.code`, e.g. `scim_managed_resource`, `plan_not_supported`.
        code: Option<String>,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// 429: over the rate limit (still so after the client's retries).
    #[error("cowork admin API: rate limited")]
    RateLimited {
        /// The server's `retry-after`, when sent.
        retry_after: Option<Duration>,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// 5xx, 529, a timeout or a connection failure (still so after the retries).
    #[error("cowork admin API unavailable: {reason}")]
    Transient {
        /// What happened (status and error type, or the transport failure).
        reason: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("cowork admin API answer could not be read: {reason}")]
    Decode {
        /// What did not parse (field names, not values).
        reason: String,
    },
    /// Any other status (402 billing, 413 too large, ...); not retried.
    #[error("cowork admin API error {status} {error_type}: {message}")]
    Other {
        /// The HTTP status.
        status: u16,
        /// `error.type`.
        error_type: String,
        /// The server's message.
        message: String,
        /// The server's request id.
        request_id: Option<String>,
    },
    /// The client is in `real` mode and the operation exists only in the extension
    /// tier. The planner reports such differences as drift instead.
    #[error("{operation} is not available in Anthropic's Admin API (mode = \"real\")")]
    NotInRealApi {
        /// The operation, e.g. `create_role`.
        operation: &'static str,
    },
    /// A beta feature answered 404 with its `anthropic-beta` header: it is not
    /// available to this organization. Reported once; the client stops calling it.
    #[error("{feature} is not available to this organization")]
    BetaUnavailable {
        /// What operators call the feature, e.g. "the Plugins API".
        feature: &'static str,
    },
    /// The client could not be built (bad base URL, TLS setup).
    #[error("cowork client configuration: {0}")]
    Config(String),
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

/// How [`CoworkError`]'s messages name the API they are about.
const API_NAME: &str = "cowork admin API";

impl CoworkError {
    /// The message naming `api` instead of the admin API: the Analytics client shares
    /// this error type, and its failures should say which API failed.
    pub fn message_for(&self, api: &str) -> String {
        self.to_string().replacen(API_NAME, api, 1)
    }

    /// Whether the client retries this error (transient failures and rate limits only).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CoworkError::Transient { .. } | CoworkError::RateLimited { .. }
        )
    }

    /// The machine-readable `error.code`, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CoworkError::Conflict { code, .. } | CoworkError::InvalidRequest { code, .. } => {
                code.as_deref()
            }
            _ => None,
        }
    }

    /// The server's request id, when there was an answer.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CoworkError::Unauthorized { request_id, .. }
            | CoworkError::NotFound { request_id, .. }
            | CoworkError::Conflict { request_id, .. }
            | CoworkError::InvalidRequest { request_id, .. }
            | CoworkError::RateLimited { request_id, .. }
            | CoworkError::Transient { request_id, .. }
            | CoworkError::Other { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CoworkError::NotFound { .. })
    }

    /// Whether this is the 400 "already a member" answer to adding a member.
    pub fn is_already_member(&self) -> bool {
        match self {
            CoworkError::InvalidRequest { code, message, .. } => {
                code.as_deref() == Some("already_member")
                    || (code.is_none() && message.to_ascii_lowercase().contains("already"))
            }
            _ => false,
        }
    }

    /// Classifies a non-2xx answer. `body` is the raw body (the error envelope, or
    /// anything else: unknown shapes and unknown error types are tolerated).
    pub fn from_response(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        header_request_id: Option<String>,
    ) -> CoworkError {
        let envelope = serde_json::from_slice::<ErrorEnvelope>(body).ok();
        let (error_type, message, code, existing_id, body_request_id) = match envelope {
            Some(env) => {
                let existing = env
                    .error
                    .details
                    .as_ref()
                    .and_then(|d| d.get("existing_id"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                (
                    env.error.kind,
                    env.error.message,
                    env.error.code,
                    existing,
                    env.request_id,
                )
            }
            None => (String::from("unknown"), String::new(), None, None, None),
        };
        let request_id = header_request_id.or(body_request_id);
        match status {
            401 | 403 => CoworkError::Unauthorized {
                status,
                message,
                request_id,
            },
            404 => CoworkError::NotFound {
                message,
                request_id,
            },
            409 => CoworkError::Conflict {
                message,
                code,
                existing_id,
                request_id,
            },
            400 | 422 => CoworkError::InvalidRequest {
                message,
                code,
                request_id,
            },
            429 => CoworkError::RateLimited {
                retry_after,
                request_id,
            },
            408 | 500..=599 => CoworkError::Transient {
                reason: format!("HTTP {status} {error_type}"),
                status: Some(status),
                request_id,
            },
            _ => CoworkError::Other {
                status,
                error_type,
                message,
                request_id,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analytics_failure_names_the_analytics_api() {
        let e = CoworkError::Transient {
            reason: "503 overloaded".into(),
            status: Some(503),
            request_id: None,
        };
        assert_eq!(
            e.to_string(),
            "cowork admin API unavailable: 503 overloaded"
        );
        assert_eq!(
            e.message_for("Analytics API"),
            "Analytics API unavailable: 503 overloaded"
        );
        let e = CoworkError::Config("bad url".into());
        assert_eq!(e.message_for("Analytics API"), e.to_string());
    }

    #[test]
    fn conflict_carries_the_existing_id() {
        let body = br#"{"type":"error","error":{"type":"conflict_error","message":"external_id in use","code":"conflict_error","details":{"existing_id":"rbac_group_01x"}},"request_id":"req_1"}"#;
        let e = CoworkError::from_response(409, body, None, None);
        match e {
            CoworkError::Conflict {
                existing_id,
                request_id,
                ..
            } => {
                assert_eq!(existing_id.as_deref(), Some("rbac_group_01x"));
                assert_eq!(request_id.as_deref(), Some("req_1"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_error_types_and_bodies_are_tolerated() {
        let e = CoworkError::from_response(
            503,
            br#"{"type":"error","error":{"type":"shiny_new_error","message":"m"}}"#,
            None,
            Some("req_h".into()),
        );
        assert!(e.is_retryable());
        assert_eq!(e.request_id(), Some("req_h"));
        let e = CoworkError::from_response(400, b"<html>bad gateway</html>", None, None);
        assert!(matches!(e, CoworkError::InvalidRequest { .. }));
        assert!(!e.is_retryable());
        let e = CoworkError::from_response(529, b"", None, None);
        assert!(e.is_retryable());
    }

    #[test]
    fn already_member_is_recognised_by_code_or_message() {
        let by_code = CoworkError::from_response(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"x","code":"already_member"}}"#,
            None,
            None,
        );
        assert!(by_code.is_already_member());
        let by_message = CoworkError::from_response(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"User is already a member of this group"}}"#,
            None,
            None,
        );
        assert!(by_message.is_already_member());
        let other = CoworkError::from_response(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"already managed by SCIM","code":"scim_managed_resource"}}"#,
            None,
            None,
        );
        assert!(!other.is_already_member());
    }
}
