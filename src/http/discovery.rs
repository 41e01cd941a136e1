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
    // Each also answers with a trailing slash, as IdPs sometimes send it.
    cfg.service(read_only(
        ["/ServiceProviderConfig", "/ServiceProviderConfig/"],
        service_provider_config,
    ));
    for docs in [Docs::ResourceTypes, Docs::Schemas] {
        cfg.service(
            web::scope(docs.segment())
                .app_data(docs)
                .service(read_only(["", "/"], list_docs))
                .service(read_only(["/{id}", "/{id}/"], one_doc)),
        );
    }
}

/// The two collections of discovery documents.
#[derive(Debug, Clone, Copy)]
enum Docs {
    ResourceTypes,
    Schemas,
}

impl Docs {
    fn segment(self) -> &'static str {
        match self {
            Docs::ResourceTypes => "/ResourceTypes",
            Docs::Schemas => "/Schemas",
        }
    }

    fn of(req: &HttpRequest) -> Docs {
        req.app_data::<Docs>().copied().unwrap_or(Docs::Schemas)
    }

    /// The documents with `meta.location` filled in.
    fn documents(self, state: &AppState, base: &str) -> Vec<Value> {
        let docs = match self {
            Docs::ResourceTypes => state.registry.resource_type_documents(),
            Docs::Schemas => state.registry.schema_documents(),
        };
        let segment = self.segment();
        docs.iter()
            .map(|d| {
                let id = d.get("id").and_then(Value::as_str).unwrap_or_default();
                with_location(d, format!("{base}{segment}/{id}"))
            })
            .collect()
    }

    /// Resource type ids match exactly; schema URNs case-insensitively.
    fn is(self, doc: &Value, id: &str) -> bool {
        let Some(doc_id) = doc.get("id").and_then(Value::as_str) else {
            return false;
        };
        match self {
            Docs::ResourceTypes => doc_id == id,
            Docs::Schemas => doc_id.eq_ignore_ascii_case(id),
        }
    }
}

fn read_only<F, Args>(path: [&str; 2], handler: F) -> actix_web::Resource
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

async fn list_docs(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    if let Some(refused) = refuse_filter(&req)? {
        return Ok(refused);
    }
    let docs = Docs::of(&req).documents(&state, &scim_base(&req, &state));
    Ok(scim_json(
        StatusCode::OK,
        &list_response(docs.len(), 1, docs),
        None,
    ))
}

async fn one_doc(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let which = Docs::of(&req);
    let id = req.match_info().get("id").unwrap_or_default();
    which
        .documents(&state, &scim_base(&req, &state))
        .into_iter()
        .find(|d| which.is(d, id))
        .map(|d| scim_json(StatusCode::OK, &d, None))
        .ok_or_else(|| ApiError::NotFound(format!("no such discovery document '{id}'")))
}
