//! The HTTP surface (actix-web): SCIM under `/scim/v2`, health and metrics, and the
//! operator API under `/admin/v1`. Handlers are thin: they parse, call the
//! directory/rules/reconcile layers off the async threads, and render. Errors become
//! responses in [`error`] only.

pub mod discovery;
pub mod error;
pub mod health;
pub mod middleware;
pub mod scim;
pub mod support;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web;

use crate::directory::Directory;
use crate::scim::SchemaRegistry;
use crate::status::Status;

/// What handlers share.
pub struct AppState {
    /// The SCIM directory.
    pub directory: Arc<Directory>,
    /// The schemas.
    pub registry: Arc<SchemaRegistry>,
    /// Operational status (readiness, metrics).
    pub status: Arc<Status>,
    /// Base URL for `meta.location`, when configured.
    pub public_url: Option<String>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Wakes the outbox worker after a change.
    pub changes: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// Tells the outbox worker there is new work.
    pub fn notify_change(&self) {
        self.changes.notify_one();
    }
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .service(
            web::scope("/scim/v2")
                .configure(discovery::routes)
                .configure(scim::routes),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> actix_web::HttpResponse {
    error::error_response(StatusCode::NOT_FOUND, None, "no such endpoint")
}

/// 405 for read-only endpoints.
pub async fn method_not_allowed_get() -> actix_web::HttpResponse {
    let mut response = error::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this endpoint is read-only; use GET",
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("GET"),
    );
    response
}
