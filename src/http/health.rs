//! Operator endpoints without authentication: `/healthz` (liveness, no
//! dependencies), `/readyz` (200 while SCIM writes can be accepted and stored, with
//! `status: degraded` when something else needs an operator; 503 otherwise; each
//! check named), `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// Registers `/healthz`, `/readyz`, `/metrics`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probe = state.status.clone();
    let report = web::block(move || probe.check()).await;
    match report {
        Ok(report) if report.ready => HttpResponse::Ok().json(report),
        Ok(report) => HttpResponse::ServiceUnavailable().json(report),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"ready": false, "status": "unavailable", "checks": {"store": {"status": "fail", "ok": false, "detail": "probe cancelled"}}})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let probe = state.status.clone();
    let text = web::block(move || {
        probe.refresh_gauges();
        probe.metrics().render()
    })
    .await
    .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
