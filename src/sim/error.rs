//! The simulator's errors: [`ApiError`], an answer in the Admin API's error envelope
//! (what the model returns to a caller), and [`SimError`], why the simulator itself
//! could not start or stop (key file, data directory, listener, snapshot).
//!
//! Imports the wire types of `crate::cowork` (the envelope) and nothing else of ours.

use std::path::PathBuf;

use serde_json::Value;

use crate::cowork::error::CoworkError;
use crate::cowork::types::{ErrorDetail, ErrorEnvelope};

/// An API error as the simulator answers it (status, `error.type`, message, `code`,
/// `details`).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type`.
    pub kind: &'static str,
    /// `error.message` (names fields, never values).
    pub message: String,
    /// `error.code`.
    pub code: Option<&'static str>,
    /// `error.details`.
    pub details: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        message: &str,
    ) -> Self {
        Self {
            status,
            kind,
            message: message.to_owned(),
            code,
            details: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(code: Option<&'static str>, message: &str) -> Self {
        Self::new(400, "invalid_request_error", code, message)
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: &str) -> Self {
        Self::new(404, "not_found_error", None, message)
    }

    /// 409 `conflict_error`.
    pub fn conflict(code: &'static str, message: &str) -> Self {
        Self::new(409, "conflict_error", Some(code), message)
    }

    /// 401 `authentication_error`.
    pub fn unauthenticated(message: &str) -> Self {
        Self::new(401, "authentication_error", None, message)
    }

    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn plan() -> Self {
        Self::invalid(
            Some("plan_not_supported"),
            "groups, custom roles, group spend limits and plugin overrides need the Enterprise plan",
        )
    }

    pub(crate) fn scim() -> Self {
        Self::invalid(
            Some("scim_managed_resource"),
            "this group is managed by SCIM and cannot be changed through the API",
        )
    }

    pub(crate) fn admin_role() -> Self {
        Self::invalid(
            Some("admin_role_not_assignable"),
            "admin roles cannot be assigned, changed or removed through the API",
        )
    }

    /// 404 for an extension endpoint when the extension tier is off.
    pub fn extension() -> Self {
        Self::not_found("this endpoint is not part of the Admin API")
    }

    /// The error envelope body.
    pub fn envelope(&self, request_id: &str) -> ErrorEnvelope {
        ErrorEnvelope {
            kind: "error".into(),
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message.clone(),
                code: self.code.map(str::to_owned),
                details: self.details.clone(),
            },
            request_id: Some(request_id.to_owned()),
        }
    }
}

impl From<ApiError> for CoworkError {
    fn from(e: ApiError) -> Self {
        let body = serde_json::to_vec(&e.envelope("req_in_memory")).unwrap_or_default();
        CoworkError::from_response(e.status, &body, None, None)
    }
}

/// Result of a model operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// Why the simulator could not start, persist or stop.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The API key file could not be read.
    #[error("reading the API key file {path}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The API key (given or read) is empty.
    #[error("the simulator's API key is empty")]
    EmptyKey,
    /// The data directory could not be created or opened.
    #[error("creating the data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Another simulator holds the data directory's lock.
    #[error("another simulator is using the data directory {path} (its lock file {lock} is held); stop it or choose another --data-dir")]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The snapshot could not be read.
    #[error("reading the simulator snapshot {path}")]
    SnapshotRead {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot is not one.
    #[error("{path} is not a simulator snapshot")]
    SnapshotFormat {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The snapshot could not be encoded.
    #[error("encoding the simulator snapshot")]
    SnapshotEncode(#[source] serde_json::Error),
    /// The snapshot could not be written.
    #[error("writing the simulator snapshot")]
    SnapshotWrite(#[source] std::io::Error),
    /// The listener could not be bound.
    #[error("binding the simulator to {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed or its task ended abnormally.
    #[error("simulator server: {0}")]
    Server(String),
}
