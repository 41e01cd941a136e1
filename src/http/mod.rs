//! The HTTP surface (actix-web): SCIM under `/scim/v2`, health and metrics, and the
//! operator API under `/admin/v1`; the console under `/ui` lives in [`crate::ui`]. Handlers are thin: they parse, call the
//! directory/rules/reconcile layers off the async threads, and render. Errors become
//! responses in [`error`] only.

pub mod admin;
pub mod discovery;
pub mod error;
pub mod health;
pub mod insights;
pub mod limits;
pub mod middleware;
pub mod refusal_log;
pub mod reqlog;
pub mod scim;
pub mod support;
pub mod unknown_log;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::Value;

use crate::clock::SharedClock;
use crate::directory::Directory;
use crate::rules::ValidRuleTable;
use crate::scim::SchemaRegistry;
use crate::status::Status;

/// A boxed future of an operator call.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<Value, error::ApiError>> + Send + 'static>>;

/// What the operator API needs from reconciliation. The app implements it over the
/// reconciler; without a downstream (some tests) the routes answer 503.
pub trait Operations: Send + Sync + 'static {
    /// What a full reconcile would change now, or with `candidate` as the rule table.
    fn plan(&self, candidate: Option<ValidRuleTable>) -> OpFuture;
    /// Runs one full reconcile now.
    fn reconcile(&self, dry_run: bool, force: bool, actor: String) -> OpFuture;
    /// The most recent runs, newest first.
    fn runs(&self, limit: usize) -> Result<Value, error::ApiError>;
    /// The removals the safety valve holds, oldest first (`{"held": [...]}`).
    fn held(&self) -> OpFuture;
    /// Approves held removals (`None`: all of them) as `actor` and applies them now.
    fn approve(&self, ids: Option<Vec<String>>, actor: String) -> OpFuture;
    /// What Cowork holds for a user beside what the rules want, and why they differ.
    fn downstream_access(
        &self,
        scim_id: String,
        wanted: crate::reconcile::access::Wanted,
    ) -> OpFuture;
}

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
    /// How long a request may take to send its body (`server.body_timeout_secs`).
    pub body_timeout: std::time::Duration,
    /// The budget of log lines for refused requests (`log.refusals_per_minute`).
    pub refusal_log: Arc<refusal_log::RefusalLog>,
    /// Attribute names no schema declares, noted once each (`[scim] unknown_attributes`).
    pub unknown_attributes: Arc<unknown_log::UnknownAttributeLog>,
    /// Wakes the outbox worker after a change.
    pub changes: Arc<tokio::sync::Notify>,
    /// The clock.
    pub clock: SharedClock,
    /// Plans and reconcile runs, when a downstream is configured.
    pub operations: Option<Arc<dyn Operations>>,
    /// Adoption and spend per group, when an Analytics client is configured.
    pub insights: Option<Arc<crate::insights::service::Insights>>,
}

impl AppState {
    /// Tells the outbox worker there is new work.
    pub fn notify_change(&self) {
        self.changes.notify_one();
    }

    /// The reconciliation operations, or 503 when none are configured.
    pub fn operations(&self) -> Result<&Arc<dyn Operations>, error::ApiError> {
        self.operations
            .as_ref()
            .ok_or_else(|| error::ApiError::Unavailable("reconciliation is not running".into()))
    }
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Query strings that do not fit a handler's parameters answer the JSON error body
    // like every other error (actix would answer text/plain).
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _req| {
        error::ApiError::BadRequest(format!("the query string is not valid: {err}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _req| {
        error::ApiError::BadRequest(format!("the path is not valid: {err}")).into()
    }))
    .app_data(web::JsonConfig::default().error_handler(|err, _req| {
        error::ApiError::BadRequest(format!("the body is not valid JSON: {err}")).into()
    }));
    cfg.configure(health::routes)
        .service(
            web::scope("/scim/v2")
                .configure(discovery::routes)
                .configure(scim::routes),
        )
        .service(web::scope("/admin/v1").configure(admin::routes))
        .service(web::scope("/ui").configure(crate::ui::routes))
        .route("/", web::get().to(crate::ui::to_console))
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
