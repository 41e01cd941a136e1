//! The one place that maps errors to HTTP responses.
//!
//! Every error body is an RFC 7644 §3.12 error (`schemas`, string `status`,
//! `scimType` where defined, `detail`) with `Content-Type: application/scim+json`,
//! for the SCIM routes and the operator API alike. Client errors say what was wrong
//! with the request; server errors (5xx) carry a generic detail while the real cause
//! is logged here, once, without request bodies or personal data.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::auth::extract::Rejection;
use crate::auth::AuthError;
use crate::scim::error::error_body;
use crate::scim::ScimError;
use crate::store::StoreError;

/// The SCIM media type (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// An error leaving an HTTP handler.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A SCIM protocol error (4xx with its `scimType`).
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store failed (500, or 503 when the disk is unusable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Operator input was wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state, e.g. a reconcile already running (409).
    #[error("{0}")]
    Conflict(String),
    /// A dependency is unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// The client did not send its body in time (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// The request target is longer than we accept (414).
    #[error("{0}")]
    UriTooLong(String),
    /// The request's header section is larger than we accept (431).
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Anything else (500; the detail is logged, not returned).
    #[error("{0}")]
    Internal(String),
    /// A rule table failed validation (400, every error listed).
    #[error("the rule table is invalid: {}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Rules(Vec<crate::rules::RuleError>),
}

impl From<crate::directory::DirectoryError> for ApiError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        match e {
            crate::directory::DirectoryError::Scim(e) => ApiError::Scim(e),
            crate::directory::DirectoryError::Store(e) => ApiError::Store(e),
        }
    }
}

impl From<crate::reconcile::ReconcileError> for ApiError {
    fn from(e: crate::reconcile::ReconcileError) -> Self {
        use crate::reconcile::ReconcileError as R;
        match e {
            R::AlreadyRunning => ApiError::Conflict(
                "a reconcile is already running; wait for it to finish (see /admin/v1/status)"
                    .into(),
            ),
            R::Store(e) => ApiError::Store(e),
            R::Downstream(e) if e.is_retryable() => {
                ApiError::Unavailable(format!("the Cowork admin API is unavailable: {e}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::insights::InsightsError> for ApiError {
    fn from(e: crate::insights::InsightsError) -> Self {
        use crate::cowork::CoworkError as C;
        use crate::insights::InsightsError as I;
        match e {
            I::BadRequest(m) => ApiError::BadRequest(m),
            I::NoRules => ApiError::NotFound(e.to_string()),
            I::NoKey => ApiError::Unavailable(e.to_string()),
            I::Store(e) => ApiError::Store(e),
            I::Analytics(C::Config(m)) => ApiError::BadRequest(format!("analytics: {m}")),
            I::Analytics(e) if e.is_retryable() => {
                ApiError::Unavailable(e.message_for("the Analytics API"))
            }
            I::Analytics(e @ C::Unauthorized { .. }) => ApiError::Unavailable(format!(
                "{} (the key needs read:analytics)",
                e.message_for("the Analytics API")
            )),
            I::Analytics(e) => ApiError::Internal(e.message_for("the Analytics API")),
        }
    }
}

impl ApiError {
    fn status_code(&self) -> StatusCode {
        let code = match self {
            ApiError::Scim(e) => e.status(),
            ApiError::Store(StoreError::Io(_)) => 503,
            ApiError::Store(_) | ApiError::Internal(_) => 500,
            ApiError::BadRequest(_) | ApiError::Rules(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Unavailable(_) => 503,
            ApiError::RequestTimeout(_) => 408,
            ApiError::UriTooLong(_) => 414,
            ApiError::HeadersTooLarge(_) => 431,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// A response with an RFC 7644 error body.
pub fn error_response(status: StatusCode, scim_type: Option<&str>, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(SCIM_JSON)
        .json(error_body(status.as_u16(), scim_type, detail))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        ApiError::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        let status = ApiError::status_code(self);
        match self {
            ApiError::Scim(e) => error_response(status, e.scim_type(), e.detail()),
            ApiError::Rules(errors) => {
                let detail = format!(
                    "the rule table is invalid ({} error{}): {}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let mut body = error_body(status.as_u16(), None, &detail);
                if let Some(obj) = body.as_object_mut() {
                    obj.insert(
                        "errors".into(),
                        serde_json::to_value(errors).unwrap_or_default(),
                    );
                }
                HttpResponse::build(status)
                    .content_type(SCIM_JSON)
                    .json(body)
            }
            _ if status.is_server_error() => {
                // The cause goes to the log once, here; the client gets a generic detail.
                tracing::error!(error = %self, source = ?std::error::Error::source(self), status = status.as_u16(), "request failed");
                let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "the service is temporarily unavailable; retry later"
                } else {
                    "internal error; the cause is in the server log"
                };
                error_response(status, None, detail)
            }
            other => error_response(status, None, &other.to_string()),
        }
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::Auth(AuthError::InsufficientScope(_)) => StatusCode::FORBIDDEN,
            Rejection::Auth(_) => StatusCode::UNAUTHORIZED,
            Rejection::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::DuplicateAuthorization => StatusCode::BAD_REQUEST,
            Rejection::Unconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = ResponseError::status_code(self);
        let mut response = error_response(status, None, &self.to_string());
        // RFC 6750 §3: tell the client how to authenticate.
        let challenge = match self {
            Rejection::Auth(AuthError::Missing) => Some("Bearer realm=\"cowork-sync\""),
            Rejection::Auth(AuthError::InsufficientScope(_)) => {
                Some("Bearer realm=\"cowork-sync\", error=\"insufficient_scope\"")
            }
            Rejection::Auth(_) => Some("Bearer realm=\"cowork-sync\", error=\"invalid_token\""),
            Rejection::DuplicateAuthorization => {
                Some("Bearer realm=\"cowork-sync\", error=\"invalid_request\"")
            }
            _ => None,
        };
        if let Some(value) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        if let Rejection::RateLimited { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Rejection::Unconfigured = self {
            tracing::error!("auth context missing from the app");
        }
        response
    }
}
