//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`, served from the embedded `schemas/*.json` with `meta.location` filled
//! in for this server. They advertise exactly what the resource endpoints do.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::{error_response, ApiError};
use super::support::{query_pairs, scim_base, scim_json};
use super::AppState;
use crate::auth::extract::ScimCaller;
use crate::scim::list::list_response;

/// Registers the discovery routes under the current scope (`/scim/v2`). They are
/// read-only: any other method gets 405 with an `Allow` header.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(read_only("/ServiceProviderConfig", service_provider_config))
        .service(
            web::scope("/ResourceTypes")
                .service(read_only("", resource_types))
                .service(read_only("/{id}", resource_type)),
        )
        .service(
            web::scope("/Schemas")
                .service(read_only("", schemas))
                .service(read_only("/{id}", schema)),
        );
}

fn read_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(super::method_not_allowed_get))
}

fn with_location(doc: &Value, location: String) -> Value {
    let mut doc = doc.clone();
    if let Some(meta) = doc.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("location".into(), Value::String(location));
    }
    doc
}

/// RFC 7644 §4: a filter on discovery endpoints gets 403, so clients never assume
/// it was applied.
fn refuse_filter(req: &HttpRequest) -> Result<Option<HttpResponse>, ApiError> {
    let filtered = query_pairs(req)?
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("filter"));
    Ok(filtered.then(|| {
        error_response(
            StatusCode::FORBIDDEN,
            None,
            "filtering is not supported on discovery endpoints",
        )
    }))
}

async fn service_provider_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let base = scim_base(&req, &state);
    let doc = with_location(
        state.registry.service_provider_config(),
        format!("{base}/ServiceProviderConfig"),
    );
    Ok(scim_json(StatusCode::OK, &doc, None))
}

/// Discovery documents with `meta.location` filled in under `{base}/{segment}/{id}`.
fn located(docs: &[Value], base: &str, segment: &str) -> Vec<Value> {
    docs.iter()
        .map(|d| {
            let id = d.get("id").and_then(Value::as_str).unwrap_or_default();
            with_location(d, format!("{base}/{segment}/{id}"))
        })
        .collect()
}

fn resource_type_docs(state: &AppState, base: &str) -> Vec<Value> {
    located(
        state.registry.resource_type_documents(),
        base,
        "ResourceTypes",
    )
}

fn schema_docs(state: &AppState, base: &str) -> Vec<Value> {
    located(state.registry.schema_documents(), base, "Schemas")
}

async fn resource_types(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_filter(&req)? {
        return Ok(refused);
    }
    let docs = resource_type_docs(&state, &scim_base(&req, &state));
    Ok(scim_json(
        StatusCode::OK,
        &list_response(docs.len(), 1, docs),
        None,
    ))
}

async fn resource_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default();
    resource_type_docs(&state, &scim_base(&req, &state))
        .into_iter()
        .find(|d| d.get("id").and_then(Value::as_str) == Some(id))
        .map(|d| scim_json(StatusCode::OK, &d, None))
        .ok_or_else(|| ApiError::NotFound(format!("no resource type '{id}'")))
}

async fn schemas(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_filter(&req)? {
        return Ok(refused);
    }
    let docs = schema_docs(&state, &scim_base(&req, &state));
    Ok(scim_json(
        StatusCode::OK,
        &list_response(docs.len(), 1, docs),
        None,
    ))
}

async fn schema(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default();
    schema_docs(&state, &scim_base(&req, &state))
        .into_iter()
        .find(|d| {
            d.get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case(id))
        })
        .map(|d| scim_json(StatusCode::OK, &d, None))
        .ok_or_else(|| ApiError::NotFound(format!("no schema '{id}'")))
}
