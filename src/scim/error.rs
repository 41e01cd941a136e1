//! Protocol errors of RFC 7644 §3.12: each variant is one `scimType` (or plain HTTP
//! status) a client can act on. The HTTP layer renders them; nothing here knows HTTP.

use serde_json::{json, Value};

/// The URN of the SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM protocol error. The `String` is the `detail` shown to the client: it names
/// attributes and positions, never attribute values that could be personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// 400 `invalidFilter`: the filter syntax is invalid or names an unknown attribute.
    #[error("{0}")]
    InvalidFilter(String),
    /// 400 `tooMany`: the query would return more results than the server allows.
    #[error("{0}")]
    TooMany(String),
    /// 409 `uniqueness`: a unique attribute value is already taken.
    #[error("{0}")]
    Uniqueness(String),
    /// 400 `mutability`: the request tried to change a read-only or immutable attribute.
    #[error("{0}")]
    Mutability(String),
    /// 400 `invalidSyntax`: the body is not valid JSON or not the expected shape.
    #[error("{0}")]
    InvalidSyntax(String),
    /// 400 `invalidPath`: a PATCH path is malformed or names an unknown attribute.
    #[error("{0}")]
    InvalidPath(String),
    /// 400 `noTarget`: a PATCH path filter matched nothing where a target is required.
    #[error("{0}")]
    NoTarget(String),
    /// 400 `invalidValue`: a value has the wrong type, is missing, or is not allowed.
    #[error("{0}")]
    InvalidValue(String),
    /// 400 `invalidVers`: the `If-Match` value is not a version this server issues.
    #[error("{0}")]
    InvalidVersion(String),
    /// 404: no resource with that id.
    #[error("{0}")]
    NotFound(String),
    /// 412: `If-Match` does not match the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body is larger than the server accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 501: the operation is not supported (and not advertised).
    #[error("{0}")]
    NotImplemented(String),
}

impl ScimError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ScimError::Uniqueness(_) => 409,
            ScimError::NotFound(_) => 404,
            ScimError::PreconditionFailed(_) => 412,
            ScimError::PayloadTooLarge(_) => 413,
            ScimError::NotImplemented(_) => 501,
            _ => 400,
        }
    }

    /// The RFC 7644 `scimType`, where one is defined.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            ScimError::InvalidFilter(_) => Some("invalidFilter"),
            ScimError::TooMany(_) => Some("tooMany"),
            ScimError::Uniqueness(_) => Some("uniqueness"),
            ScimError::Mutability(_) => Some("mutability"),
            ScimError::InvalidSyntax(_) => Some("invalidSyntax"),
            ScimError::InvalidPath(_) => Some("invalidPath"),
            ScimError::NoTarget(_) => Some("noTarget"),
            ScimError::InvalidValue(_) => Some("invalidValue"),
            ScimError::InvalidVersion(_) => Some("invalidVers"),
            ScimError::NotFound(_)
            | ScimError::PreconditionFailed(_)
            | ScimError::PayloadTooLarge(_)
            | ScimError::NotImplemented(_) => None,
        }
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        match self {
            ScimError::InvalidFilter(d)
            | ScimError::TooMany(d)
            | ScimError::Uniqueness(d)
            | ScimError::Mutability(d)
            | ScimError::InvalidSyntax(d)
            | ScimError::InvalidPath(d)
            | ScimError::NoTarget(d)
            | ScimError::InvalidValue(d)
            | ScimError::InvalidVersion(d)
            | ScimError::NotFound(d)
            | ScimError::PreconditionFailed(d)
            | ScimError::PayloadTooLarge(d)
            | ScimError::NotImplemented(d) => d,
        }
    }

    /// The RFC 7644 §3.12 error body (`status` is a string).
    pub fn to_body(&self) -> Value {
        error_body(self.status(), self.scim_type(), self.detail())
    }
}

/// An RFC 7644 §3.12 error body for any status.
pub fn error_body(status: u16, scim_type: Option<&str>, detail: &str) -> Value {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(obj)) = (scim_type, body.as_object_mut()) {
        obj.insert("scimType".into(), Value::String(t.into()));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_string_status_and_scim_type() {
        let body = ScimError::Uniqueness("userName is already taken".into()).to_body();
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        let body = ScimError::NotFound("no such user".into()).to_body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }
}
