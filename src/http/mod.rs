//! The HTTP surface (actix-web): SCIM under `/scim/v2`, health and metrics, and the
//! operator API under `/admin/v1`. Handlers are thin: they parse, call the
//! directory/rules/reconcile layers off the async threads, and render.

pub mod error;
