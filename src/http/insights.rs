//! `GET /admin/v1/insights/adoption?days=N` and `GET /admin/v1/insights/spend`:
//! adoption and spend per downstream group (design §4, §6.1). Each answer is the
//! report as JSON (money in minor units beside `display`) plus `text`, the table the
//! CLI prints. 503 when no Analytics client is configured.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::AppState;
use crate::auth::extract::AdminCaller;
use crate::insights::{report, InsightsError};

/// Registers the routes under the current scope (`/admin/v1`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/insights/adoption", web::get().to(adoption))
        .route("/insights/spend", web::get().to(spend));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdoptionQuery {
    days: Option<u32>,
}

fn with_text<T: serde::Serialize>(value: &T, text: String) -> Result<HttpResponse, ApiError> {
    let mut body = serde_json::to_value(value)
        .map_err(|e| ApiError::Internal(format!("rendering an insights report: {e}")))?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("text".into(), Value::String(text));
    }
    Ok(HttpResponse::Ok().json(body))
}

fn service(state: &AppState) -> Result<&crate::insights::service::Insights, ApiError> {
    state
        .insights
        .as_deref()
        .ok_or_else(|| ApiError::from(InsightsError::NoKey))
}

async fn adoption(
    state: web::Data<AppState>,
    query: Result<web::Query<AdoptionQuery>, actix_web::Error>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let q = query.map_err(|_| {
        ApiError::BadRequest("the only query parameter is days, a whole number from 1 to 90".into())
    })?;
    let r = service(&state)?.adoption(q.days.unwrap_or(30)).await?;
    let text = report::render_adoption(&r);
    with_text(&r, text)
}

async fn spend(state: web::Data<AppState>, _caller: AdminCaller) -> Result<HttpResponse, ApiError> {
    let r = service(&state)?.spend().await?;
    let text = report::render_spend(&r);
    with_text(&r, text)
}
