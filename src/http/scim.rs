//! SCIM resource endpoints (RFC 7644 §3): `/Users` and `/Groups` with GET, POST,
//! PUT, PATCH and DELETE, listing and filtering, `.search` per resource type and at
//! the root, and ETags (`ETag`, `If-Match` → 412, `If-None-Match` → 304).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::ApiError;
use super::support::{
    blocking, header_text, query_pairs, read_json, request_id, scim_base, scim_json,
};
use super::AppState;
use crate::auth::extract::ScimCaller;
use crate::directory::{
    Caller, Directory, DirectoryError, Pending, Precondition, Queued, RenderOptions, Rendered,
    UpdateKind, Written,
};
use crate::scim::list::ListQuery;
use crate::scim::resource::Projection;
use crate::scim::{ResourceKind, ScimError};

/// The resource type a scope serves (scope data, so handlers need no path parsing).
#[derive(Debug, Clone, Copy)]
struct Kind(ResourceKind);

/// Registers the resource routes under the current scope (`/scim/v2`). Each resource
/// type is a scope with a static prefix, so a request is matched by prefix and runs at
/// most one pattern match (`/{id}`) instead of trying every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.search", web::post().to(search_root));
    for (prefix, kind) in [
        ("/Users", ResourceKind::User),
        ("/Groups", ResourceKind::Group),
    ] {
        cfg.service(
            web::scope(prefix)
                .app_data(Kind(kind))
                // A trailing slash (`/Users/?filter=...`) names the same collection.
                .service(
                    web::resource(["", "/"])
                        .route(web::get().to(list))
                        .route(web::post().to(create)),
                )
                .route("/.search", web::post().to(search))
                // `/{id}` without a pattern match: the id is the rest of the path.
                .default_service(web::to(by_id)),
        );
    }
    for unsupported in ["/Bulk", "/Me"] {
        cfg.service(web::scope(unsupported).default_service(web::to(not_implemented)));
    }
}

async fn not_implemented() -> Result<HttpResponse, ApiError> {
    Err(ScimError::NotImplemented(
        "this service provider does not support /Bulk or /Me (see /ServiceProviderConfig)".into(),
    )
    .into())
}

fn kind_of(req: &HttpRequest) -> Result<ResourceKind, ApiError> {
    req.app_data::<Kind>()
        .map(|k| k.0)
        .ok_or_else(|| ApiError::NotFound("no such SCIM endpoint".into()))
}

/// The id in `/scim/v2/{Users|Groups}/{id}`: the single path segment after the
/// resource type.
fn id_of(req: &HttpRequest) -> String {
    let path = req.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    path.rsplit_once('/')
        .map(|(_, id)| id.to_string())
        .unwrap_or_default()
}

/// `/{id}` under a resource type: one segment, dispatched by method.
async fn by_id(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let rest = req
        .path()
        .split_once(match kind {
            ResourceKind::User => "/Users/",
            ResourceKind::Group => "/Groups/",
        })
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains('/') {
        return Err(ApiError::NotFound("no such SCIM endpoint".into()));
    }
    match *req.method() {
        actix_web::http::Method::GET => get(req, state, caller).await,
        actix_web::http::Method::PUT => write(req, state, caller, payload, Write::Replace).await,
        actix_web::http::Method::PATCH => write(req, state, caller, payload, Write::Patch).await,
        actix_web::http::Method::DELETE => delete(req, state, caller).await,
        _ => {
            let mut response = super::error::error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "use GET, PUT, PATCH or DELETE on a resource",
            );
            response.headers_mut().insert(
                header::ALLOW,
                header::HeaderValue::from_static("GET, PUT, PATCH, DELETE"),
            );
            Ok(response)
        }
    }
}

/// `attributes` / `excludedAttributes` from the query, for single-resource
/// responses, and whether `attributes` was given (RFC 7644 §3.5.2: then a PATCH must
/// answer 200 with the resource).
fn response_options(
    req: &HttpRequest,
    state: &AppState,
    kind: ResourceKind,
) -> Result<(RenderOptions, bool), ApiError> {
    let query = ListQuery::from_pairs(
        query_pairs(req)?
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let projection = Projection::parse(
        &state.registry,
        kind,
        query.attributes.as_deref(),
        query.excluded_attributes.as_deref(),
    )?;
    Ok((
        RenderOptions {
            base: scim_base(req, state),
            projection,
        },
        query.attributes.is_some(),
    ))
}

fn precondition(req: &HttpRequest) -> Precondition {
    Precondition {
        if_match: header_text(req, header::IF_MATCH),
    }
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let query = ListQuery::from_pairs(
        query_pairs(&req)?
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    run_list(&req, &state, kind, query).await
}

async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let body = read_json(payload, state.max_body_bytes).await?;
    let query = ListQuery::from_search_body(&body)?;
    run_list(&req, &state, kind, query).await
}

async fn run_list(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    kind: ResourceKind,
    query: ListQuery,
) -> Result<HttpResponse, ApiError> {
    let base = scim_base(req, state);
    let directory = state.directory.clone();
    let body = if is_point_lookup(&state.registry, kind, &query) {
        directory.list(kind, &query, &base)?
    } else {
        blocking(move || directory.list(kind, &query, &base)).await?
    };
    Ok(scim_json(StatusCode::OK, &body, None))
}

/// Whether a list is answered from an index with bounded work (a user found by
/// `id`, `userName` or `externalId`): such reads run on the request thread, where
/// the hop to the blocking pool would cost as much as the read (about 40 % of a
/// lookup's CPU, measured). Scans, sorting, and groups (whose members may be many)
/// go to the blocking pool.
fn is_point_lookup(
    registry: &crate::scim::SchemaRegistry,
    kind: ResourceKind,
    query: &ListQuery,
) -> bool {
    if kind != ResourceKind::User || query.sort_by.is_some() {
        return false;
    }
    let Some(text) = query.filter.as_deref() else {
        return false;
    };
    crate::scim::filter::Filter::parse(text)
        .and_then(|f| f.validate(registry, kind))
        .is_ok_and(|f| f.index_hint().is_some())
}

/// `POST /.search`: both resource types, users first, paged as one list.
async fn search_root(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(payload, state.max_body_bytes).await?;
    let query = ListQuery::from_search_body(&body)?;
    let base = scim_base(&req, &state);
    let directory = state.directory.clone();
    let body = blocking(move || directory.list_all_types(&query, &base)).await?;
    Ok(scim_json(StatusCode::OK, &body, None))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let id = id_of(&req);
    let (options, _) = response_options(&req, &state, kind)?;
    let if_none_match = header_text(&req, header::IF_NONE_MATCH);
    let directory = state.directory.clone();
    // One record and its few group links are bounded work: read them on the request
    // thread (see `is_point_lookup`). A group's members may be many: blocking pool.
    let rendered = if kind == ResourceKind::User || !options.projection.includes("members") {
        directory.get(kind, &id, &options)?
    } else {
        blocking(move || directory.get(kind, &id, &options)).await?
    };
    if let Some(tags) = if_none_match {
        let bare = |t: &str| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        };
        let current = bare(&rendered.etag);
        if tags
            .split(',')
            .any(|t| t.trim() == "*" || bare(t) == current)
        {
            let mut response = HttpResponse::NotModified().finish();
            if let Ok(v) = header::HeaderValue::from_str(&rendered.etag) {
                response.headers_mut().insert(header::ETAG, v);
            }
            return Ok(response);
        }
    }
    Ok(scim_json(
        StatusCode::OK,
        &rendered.body,
        Some(&rendered.etag),
    ))
}

fn caller<'a>(who: &'a ScimCaller, rid: &'a Option<String>) -> Caller<'a> {
    Caller {
        subject: &who.0.subject,
        request_id: rid.as_deref(),
    }
}

/// The span of one directory write (the transaction, its audit entry and the outbox
/// entry that carries this span's trace context to the drain).
fn write_span(kind: ResourceKind, op: &'static str) -> tracing::Span {
    if !crate::telemetry::propagation::enabled() {
        return tracing::Span::none();
    }
    let resource = match kind {
        ResourceKind::User => "User",
        ResourceKind::Group => "Group",
    };
    tracing::info_span!(
        "directory.write",
        otel.name = %format!("directory {op} {resource}"),
        scim.resource = resource,
        scim.operation = op,
    )
}

/// Which directory write a request makes.
#[derive(Clone, Copy)]
enum Write {
    Create,
    Replace,
    Patch,
}

/// The shared path of POST, PUT and PATCH: read the body, queue the write (a PUT or
/// PATCH is parsed and applied to the stored record on the blocking pool first), await
/// its batch, wake the outbox worker if something changed, and answer.
async fn write(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
    payload: web::Payload,
    op: Write,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let id = id_of(&req);
    let (options, attributes_asked) = response_options(&req, &state, kind)?;
    let body = read_json(payload, state.max_body_bytes).await?;
    let rid = request_id(&req);
    let pre = precondition(&req);
    // Groups answer 204 to PATCH (a group may have 100,000 members) unless the
    // request names `attributes` (RFC 7644 §3.5.2: then 200 with the resource).
    let needs_body = !matches!(op, Write::Patch) || kind == ResourceKind::User || attributes_asked;
    let directory = state.directory.clone();
    let span = write_span(
        kind,
        match op {
            Write::Create => "create",
            Write::Replace => "replace",
            Write::Patch => "patch",
        },
    );
    let update = match op {
        Write::Create => None,
        Write::Replace => Some(UpdateKind::Replace),
        Write::Patch => Some(UpdateKind::Patch),
    };
    let pending = match update {
        None => {
            let queued =
                span.in_scope(|| directory.queue_create(caller(&who, &rid), kind, body))?;
            start(&span, queued)
        }
        Some(how) => {
            // Parsing a PUT or PATCH and computing its effect read the store.
            let directory = directory.clone();
            blocking(move || {
                let _entered = span.clone().entered();
                let queued =
                    directory.queue_update(caller(&who, &rid), how, kind, &id, body, &pre)?;
                Ok::<_, DirectoryError>(start(&span, queued))
            })
            .await?
        }
    };
    let written = pending.await?;
    let rendered = if needs_body {
        Some(render_written(&directory, kind, &written, &options).await?)
    } else {
        None
    };
    if written.changed {
        state.notify_change();
    }
    state
        .unknown_attributes
        .record(state.status.metrics(), kind, &written.unknown_attributes);
    if written.unknown_members > 0 {
        state.status.metrics().inc(
            "cowork_sync_scim_unknown_members_total",
            "Member ids in group writes that name no resource (skipped and audited).",
            &[],
            written.unknown_members as f64,
        );
    }
    let Some(rendered) = rendered else {
        let mut response = HttpResponse::NoContent().finish();
        if let Ok(v) = header::HeaderValue::from_str(&written.record.etag()) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return Ok(response);
    };
    let status = match op {
        Write::Create => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut response = scim_json(status, &rendered.body, Some(&rendered.etag));
    if status == StatusCode::CREATED {
        if let Some(location) = rendered
            .body
            .pointer("/meta/location")
            .and_then(Value::as_str)
        {
            if let Ok(v) = header::HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
        }
    }
    Ok(response)
}

/// Starts the batch leader on the blocking pool if this write must (nobody leads
/// batches now), and returns the write's outcome to await: it holds no thread while
/// its batch commits and flushes (see `Directory::queue_create`).
fn start(span: &tracing::Span, queued: Queued) -> Pending<Result<Written, DirectoryError>> {
    if let Some(lead) = queued.lead {
        let span = span.clone();
        drop(actix_web::rt::task::spawn_blocking(move || {
            span.in_scope(|| lead.run())
        }));
    }
    queued.pending
}

/// The answer to a write: a user's is rendered on this thread, a group's (its
/// members may be many) on the blocking pool.
async fn render_written(
    directory: &Arc<Directory>,
    kind: ResourceKind,
    written: &Written,
    options: &RenderOptions,
) -> Result<Rendered, ApiError> {
    if kind == ResourceKind::User {
        return Ok(directory.render(kind, &written.id, &written.record, options)?);
    }
    let directory = directory.clone();
    let options = options.clone();
    let (id, record) = (written.id.clone(), written.record.clone());
    blocking(move || directory.render(kind, &id, &record, &options)).await
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    write(req, state, who, payload, Write::Create).await
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: ScimCaller,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&req)?;
    let id = id_of(&req);
    let rid = request_id(&req);
    let pre = precondition(&req);
    let directory = state.directory.clone();
    let span = write_span(kind, "delete");
    let queued = span.in_scope(|| directory.queue_delete(caller(&who, &rid), kind, &id, &pre));
    start(&span, queued).await?;
    state.notify_change();
    Ok(HttpResponse::NoContent().finish())
}
