//! The simulator's HTTP surface (actix-web): one dispatcher that authenticates,
//! injects faults, rate-limits, replays idempotent writes, routes to the model and
//! answers in Anthropic's shapes (`request-id` header, error envelope).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::faults::{FaultConfig, LimitClass};
use super::page::{CursorQuery, IdQuery};
use super::state::{ApiError, ApiResult, IdemRecord, NewMember, NewSimGroup, SimState};
use super::{Sim, SimMetrics};
use crate::cowork::beta::{self, Beta};
use crate::cowork::plugins::*;
use crate::cowork::types::*;

/// Largest accepted request body (bulk `POST /_sim/users`).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

const API_PREFIX: &str = "/v1/organizations";

/// An answer: status and JSON body.
type Reply = (u16, Vec<u8>);

fn reply<T: Serialize>(value: &T) -> ApiResult<Reply> {
    serde_json::to_vec(value)
        .map(|b| (200, b))
        .map_err(|_| ApiError::invalid(None, "answer could not be encoded"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            &format!(
                "request body is not valid for this endpoint ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(h), Some(l)) if hex(*h).is_some() && hex(*l).is_some() => {
                let v = hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler needs besides the model.
struct Cx<'a> {
    now: DateTime<Utc>,
    extended: bool,
    accept_invites: bool,
    short_pages: bool,
    path: &'a str,
    query: Vec<(String, String)>,
    if_match: Option<u64>,
    /// The beta features the request opted into (`anthropic-beta`).
    betas: Vec<Beta>,
    /// The largest `limit` (100 on the Plugins API, 1000 elsewhere).
    max_limit: usize,
}

impl Cx<'_> {
    /// The first value of `name` (or `name[]`).
    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Every value of `name` and `name[]` (bracket notation for lists).
    fn all(&self, name: &str) -> Vec<&str> {
        let bracketed = format!("{name}[]");
        self.query
            .iter()
            .filter(|(k, _)| k == name || *k == bracketed)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn limit(&self) -> ApiResult<usize> {
        match self.one("limit") {
            None => Ok(20),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=self.max_limit).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(
                    None,
                    &format!("limit must be between 1 and {}", self.max_limit),
                )),
            },
        }
    }

    fn has_beta(&self, b: Beta) -> bool {
        self.betas.contains(&b)
    }

    fn id_query(&self) -> ApiResult<IdQuery> {
        Ok(IdQuery {
            limit: self.limit()?,
            before_id: self.one("before_id").map(str::to_owned),
            after_id: self.one("after_id").map(str::to_owned),
        })
    }

    /// A cursor query bound to the path and every parameter except `limit` and `page`.
    fn cursor(&self) -> ApiResult<CursorQuery> {
        Ok(CursorQuery::bound(
            self.path,
            &self.query,
            self.limit()?,
            self.one("page"),
            self.short_pages,
        ))
    }

    fn require_extended(&self) -> ApiResult<()> {
        if self.extended {
            Ok(())
        } else {
            Err(ApiError::extension())
        }
    }
}

/// Routes one API request (path below `/v1/organizations`) to the model.
fn route(
    state: &mut SimState,
    cx: &Cx<'_>,
    method: &Method,
    segs: &[String],
    body: &[u8],
) -> ApiResult<Reply> {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let now = cx.now;
    let m = method.as_str();
    match (m, segs.as_slice()) {
        ("GET", ["me"]) => reply(&state.me(cx.extended)),

        ("GET", ["users"]) => {
            let roles: Vec<OrgRole> = cx.all("roles").into_iter().map(OrgRole::from).collect();
            reply(&state.list_users(&cx.id_query()?, cx.one("email"), &roles)?)
        }
        ("GET", ["users", id]) => reply(&state.get_user(id)?),
        ("POST", ["users", id]) => {
            let update: UserRoleUpdate = parse(body)?;
            reply(&state.set_user_role(id, &update.role, now)?)
        }
        ("DELETE", ["users", id]) => reply(&state.delete_user(id, now)?),
        ("GET", ["users", id, "effective_access"]) => {
            cx.require_extended()?;
            reply(&state.effective_access(id, now)?)
        }

        ("GET", ["invites"]) => reply(&state.list_invites(&cx.id_query()?, now)?),
        ("POST", ["invites"]) => {
            let req: InviteRequest = parse(body)?;
            reply(&state.create_invite(&req, cx.accept_invites, now)?)
        }
        ("GET", ["invites", id]) => reply(&state.get_invite(id, now)?),
        ("DELETE", ["invites", id]) => reply(&state.delete_invite(id, now)?),

        ("GET", ["rbac_groups"]) => {
            let page = state.list_groups(&cx.cursor()?)?;
            let ext = cx.one("external_id");
            let source = cx.one("source_type");
            let data = page
                .data
                .into_iter()
                .filter(|g| ext.is_none_or(|e| g.external_id.as_deref() == Some(e)))
                .filter(|g| source.is_none_or(|s| g.source_type.as_str() == s))
                .collect();
            reply(&CursorPage { data, ..page })
        }
        ("POST", ["rbac_groups"]) => {
            let mut new: NewGroup = parse(body)?;
            if !cx.extended {
                new = NewGroup {
                    name: new.name,
                    ..NewGroup::default()
                };
            }
            reply(&state.create_group(&new, now)?)
        }
        ("GET", ["rbac_groups", id]) => reply(&state.get_group(id)?),
        ("POST", ["rbac_groups", id]) => {
            let mut update: GroupUpdate = parse(body)?;
            if !cx.extended {
                update.description = None;
            }
            reply(&state.update_group(id, &update, cx.if_match, now)?)
        }
        ("DELETE", ["rbac_groups", id]) => reply(&state.delete_group(id, now)?),
        ("GET", ["rbac_groups", id, "members"]) => reply(&state.list_members(id, &cx.cursor()?)?),
        ("POST", ["rbac_groups", id, "members"]) => {
            let add: AddMember = parse(body)?;
            reply(&state.add_member(id, &add.user_id, now)?)
        }
        ("PUT", ["rbac_groups", id, "members"]) => {
            cx.require_extended()?;
            let set: SetMembers = parse(body)?;
            reply(&state.set_members(id, &set.user_ids, now)?)
        }
        ("DELETE", ["rbac_groups", id, "members", user]) => {
            reply(&state.remove_member(id, user, now)?)
        }
        ("PUT", ["rbac_groups", id, "roles"]) => {
            cx.require_extended()?;
            let set: SetRoles = parse(body)?;
            reply(&state.set_group_roles(id, &set.role_ids, now)?)
        }

        ("GET", ["rbac_roles"]) => reply(&state.list_roles(&cx.cursor()?)?),
        ("POST", ["rbac_roles"]) => {
            cx.require_extended()?;
            let spec: RoleSpec = parse(body)?;
            reply(&state.create_role(&spec, now)?)
        }
        ("GET", ["rbac_roles", id]) => reply(&state.get_role(id)?),
        ("POST", ["rbac_roles", id]) => {
            cx.require_extended()?;
            let spec: RoleSpec = parse(body)?;
            reply(&state.update_role(id, &spec, cx.if_match, now)?)
        }
        ("DELETE", ["rbac_roles", id]) => {
            cx.require_extended()?;
            reply(&state.delete_role(id, now)?)
        }
        ("GET", ["rbac_roles", id, "permissions"]) => {
            reply(&state.list_permissions(id, &cx.cursor()?)?)
        }

        ("GET", ["spend_limits", "effective"]) => {
            let periods: Vec<Period> = cx.all("period").into_iter().map(Period::from).collect();
            let users: Vec<String> = cx.all("user_ids").into_iter().map(str::to_owned).collect();
            reply(&state.list_effective_spend(&cx.cursor()?, &periods, &users)?)
        }
        ("GET", ["spend_limits"]) => {
            // The beta spend-limit reads; tier B offers the same list without it.
            if !cx.has_beta(Beta::SpendLimitReads) {
                cx.require_extended()?;
            }
            reply(&state.list_spend_limits(
                &cx.cursor()?,
                &cx.all("scope_type"),
                cx.one("rbac_group_id"),
            )?)
        }
        ("POST", ["spend_limits"]) => {
            let req: SpendLimitRequest = parse(body)?;
            reply(&state.upsert_spend_limit(&req, cx.extended, now)?)
        }
        ("GET", ["spend_limits", id]) => reply(&state.get_spend_limit(id)?),
        ("DELETE", ["spend_limits", id]) => reply(&state.delete_spend_limit(id, now)?),
        ("GET", ["spend_limit_increase_requests"]) => reply(&json!({
            "data": [], "has_more": false, "next_page": null
        })),

        ("GET", ["plugin_policies"]) => {
            cx.require_extended()?;
            reply(&state.list_plugin_policies(&cx.cursor()?)?)
        }
        ("PUT", ["plugin_policies", id]) => {
            cx.require_extended()?;
            let update: PluginPolicyUpdate = parse(body)?;
            reply(&state.put_plugin_policy(id, &update, now)?)
        }

        // The beta Plugins API (the dispatcher checked its header).
        ("GET", ["plugins"]) => reply(&state.list_plugins(
            &cx.cursor()?,
            cx.one("owner_type"),
            cx.one("marketplace_id"),
        )?),
        ("GET", ["plugins", id]) => reply(&state.get_plugin(id)?),
        ("GET", ["plugins", id, "installation_settings"]) => {
            reply(&state.list_plugin_settings(id, cx.one("target_type"), &cx.cursor()?)?)
        }
        ("POST", ["plugins", id, "installation_settings", target]) => {
            let update: PluginSettingUpdate = parse(body)?;
            let target = PluginTarget::from_segment(target);
            reply(&state.set_plugin_setting(id, &target, update.installation_preference, now)?)
        }
        ("DELETE", ["plugins", id, "installation_settings", target]) => {
            let target = PluginTarget::from_segment(target);
            reply(&state.delete_plugin_setting(id, &target, now)?)
        }
        ("GET", ["plugin_marketplaces"]) => reply(&state.list_marketplaces()?),

        ("GET", ["analytics", rest @ ..]) => {
            let q = super::analytics::Query {
                pairs: &cx.query,
                path: cx.path,
                short_pages: cx.short_pages,
            };
            reply(&super::analytics::route(state, rest, &q, now)?)
        }

        _ => Err(ApiError::not_found("no such endpoint")),
    }
}

/// Whether a path below `/v1/organizations` belongs to the beta Plugins API.
fn is_plugins_api(segs: &[String]) -> bool {
    matches!(
        segs.first().map(String::as_str),
        Some("plugins") | Some("plugin_marketplaces")
    )
}

/// The rate-limit class of a request below `/v1/organizations`.
fn limit_class(method: &Method, segs: &[String]) -> LimitClass {
    if is_plugins_api(segs) {
        return if method == Method::GET {
            LimitClass::PluginRead
        } else {
            LimitClass::PluginWrite
        };
    }
    match segs.first().map(String::as_str) {
        Some("spend_limits") | Some("spend_limit_increase_requests") => LimitClass::Spend,
        Some("invites") if method == Method::POST => LimitClass::Invite,
        Some("analytics") => LimitClass::Analytics,
        _ => LimitClass::Admin,
    }
}

/// A body that fails at once: actix closes the connection mid-answer, which the
/// client sees as a dropped connection.
struct Severed;

impl MessageBody for Severed {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "answer dropped by fault injection",
        ))))
    }
}

fn respond(status: u16, body: Vec<u8>, request_id: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header(("request-id", request_id))
        .content_type("application/json")
        .body(body)
}

fn error_reply(e: &ApiError, request_id: &str) -> Reply {
    let body = serde_json::to_vec(&e.envelope(request_id)).unwrap_or_default();
    (e.status, body)
}

fn error_response(e: &ApiError, request_id: &str) -> HttpResponse {
    let (status, body) = error_reply(e, request_id);
    respond(status, body, request_id)
}

fn too_many(request_id: &str, retry_after: u64) -> HttpResponse {
    let e = ApiError {
        status: 429,
        kind: "rate_limit_error",
        message: "rate limit exceeded; retry after the given number of seconds".into(),
        code: None,
        details: None,
    };
    let mut resp = error_response(&e, request_id);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    resp
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn authenticate(sim: &Sim, req: &HttpRequest) -> Result<(), ApiError> {
    let presented = header(req, "x-api-key").map(str::to_owned).or_else(|| {
        header(req, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
    });
    let Some(key) = presented.filter(|k| !k.trim().is_empty()) else {
        return Err(ApiError::unauthenticated("x-api-key header is required"));
    };
    match &sim.api_key {
        None => Ok(()),
        Some(expected) => {
            let a = expected.as_bytes();
            let b = key.trim().as_bytes();
            let same =
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
            if same {
                Ok(())
            } else {
                Err(ApiError::unauthenticated("invalid x-api-key"))
            }
        }
    }
}

fn fingerprint(method: &Method, path: &str, query: &str, body: &[u8]) -> String {
    let parts: [&[u8]; 4] = [
        method.as_str().as_bytes(),
        path.as_bytes(),
        query.as_bytes(),
        body,
    ];
    crate::cowork::hash_hex(&parts, 32)
}

/// A write in progress on one plugin; released when dropped.
struct PluginSlot<'a> {
    sim: &'a Sim,
    plugin: String,
}

impl<'a> PluginSlot<'a> {
    fn take(sim: &'a Sim, plugin: &str) -> Option<Self> {
        sim.plugin_writes
            .lock()
            .insert(plugin.to_owned())
            .then(|| Self {
                sim,
                plugin: plugin.to_owned(),
            })
    }
}

impl Drop for PluginSlot<'_> {
    fn drop(&mut self) {
        self.sim.plugin_writes.lock().remove(&self.plugin);
    }
}

/// The one entry point: every request of the simulator lands here.
pub async fn dispatch(req: HttpRequest, body: Bytes, sim: web::Data<Sim>) -> HttpResponse {
    let request_id = sim.next_request_id();
    if let Err(e) = authenticate(&sim, &req) {
        return error_response(&e, &request_id);
    }
    let path = req.path().to_owned();
    if let Some(hook) = path.strip_prefix("/_sim/") {
        let (status, body) = match sim_hook(&sim, req.method(), hook, &body) {
            Ok(r) => r,
            Err(e) => error_reply(&e, &request_id),
        };
        return respond(status, body, &request_id);
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return error_response(&ApiError::not_found("no such endpoint"), &request_id);
    };
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(pct_decode)
        .collect();
    let method = req.method().clone();
    let is_write = method != Method::GET && method != Method::HEAD;
    if is_write {
        SimMetrics::bump(&sim.metrics.writes);
    } else {
        SimMetrics::bump(&sim.metrics.reads);
    }

    // E2–E4 require the version header.
    let versioned = matches!(
        segs.first().map(String::as_str),
        Some("users") | Some("invites")
    );
    if versioned && header(&req, "anthropic-version").is_none() {
        let e = ApiError::invalid(None, "anthropic-version header is required");
        return error_response(&e, &request_id);
    }

    let betas = header(&req, beta::HEADER)
        .map(Beta::from_header_value)
        .unwrap_or_default();
    // Without its beta header the Plugins API does not exist.
    let plugins_api = is_plugins_api(&segs);
    if plugins_api && !betas.contains(&Beta::Plugins) {
        return error_response(&ApiError::not_found("no such endpoint"), &request_id);
    }
    // Writes to one plugin are not serialized by the real API: a concurrent one may
    // answer 503 with `x-should-retry: true`. The slot is taken before any latency,
    // so overlapping requests collide as they would there.
    let _plugin_slot = match (plugins_api && is_write, segs.get(1)) {
        (true, Some(plugin)) => match PluginSlot::take(&sim, plugin) {
            Some(slot) => Some(slot),
            None => {
                let e = ApiError {
                    status: 503,
                    kind: "api_error",
                    message: "another write to this plugin is in progress; retry".into(),
                    code: None,
                    details: None,
                };
                let mut resp = error_response(&e, &request_id);
                resp.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("x-should-retry"),
                    actix_web::http::header::HeaderValue::from_static("true"),
                );
                return resp;
            }
        },
        _ => None,
    };

    let decision = sim.faults.lock().decide();
    if decision.latency_ms > 0 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(decision.latency_ms)).await;
    }
    match decision.before {
        Some(super::faults::Fault::Error(status)) => {
            SimMetrics::bump(&sim.metrics.injected_errors);
            let kind = if status == 529 {
                "overloaded_error"
            } else {
                "api_error"
            };
            let e = ApiError {
                status,
                kind,
                message: "injected failure".into(),
                code: None,
                details: None,
            };
            return error_response(&e, &request_id);
        }
        Some(super::faults::Fault::RateLimited) => {
            SimMetrics::bump(&sim.metrics.injected_rate_limits);
            return too_many(&request_id, 1);
        }
        None => {}
    }

    let now = sim.clock.now();
    let class = limit_class(&method, &segs);
    if let Err(secs) = sim.throttle.lock().try_take(class, sim.clock.now_millis()) {
        SimMetrics::bump(&sim.metrics.rate_limited);
        return too_many(&request_id, secs);
    }

    let cx = Cx {
        now,
        extended: sim.extended,
        accept_invites: sim.accept_invites,
        short_pages: sim.short_pages,
        path: rest,
        query: web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default(),
        if_match: header(&req, "if-match").and_then(|v| v.trim_matches('"').parse().ok()),
        betas,
        max_limit: if plugins_api { 100 } else { 1000 },
    };
    // Idempotency keys are an extension: the real API documents none, so in real mode
    // a repeated request is applied again, as it would be there.
    let idem_key = if is_write && sim.extended {
        header(&req, "idempotency-key").map(str::to_owned)
    } else {
        None
    };

    let fp = idem_key
        .as_ref()
        .map(|_| fingerprint(&method, &path, req.query_string(), &body));
    let (status, out, replayed) = {
        let mut state = sim.state.lock();
        let stored = match (&idem_key, &fp) {
            (Some(key), Some(fp)) => state
                .idempotent_answer(key, now)
                .map(|r| (r.fingerprint == *fp, r.status, r.body.clone())),
            _ => None,
        };
        match stored {
            Some((true, status, body)) => (status, body, true),
            Some((false, _, _)) => {
                let e = ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                );
                let (s, b) = error_reply(&e, &request_id);
                (s, b, false)
            }
            None => {
                let (status, body) = match route(&mut state, &cx, &method, &segs, &body) {
                    Ok(r) => r,
                    Err(e) => error_reply(&e, &request_id),
                };
                if let (Some(key), Some(fp)) = (idem_key, fp) {
                    if status < 500 && status != 429 {
                        let record = IdemRecord {
                            fingerprint: fp,
                            status,
                            body: body.clone(),
                            expires_at: now + Duration::hours(24),
                        };
                        state.remember_answer(key, record, now);
                    }
                }
                (status, body, false)
            }
        }
    };

    if is_write {
        match (replayed, status) {
            (true, _) => SimMetrics::bump(&sim.metrics.replays),
            (false, 200..=299) => {
                SimMetrics::bump(&sim.metrics.writes_applied);
                sim.changed();
            }
            (false, _) => SimMetrics::bump(&sim.metrics.writes_rejected),
        }
    }
    if decision.drop_after {
        SimMetrics::bump(&sim.metrics.dropped);
        return HttpResponse::Ok()
            .insert_header(("request-id", request_id.as_str()))
            .body(Severed);
    }
    let mut resp = respond(status, out, &request_id);
    if replayed {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    resp
}

/// The `/_sim/` test hooks.
fn sim_hook(sim: &Sim, method: &Method, hook: &str, body: &[u8]) -> ApiResult<Reply> {
    let now = sim.clock.now();
    let hook = hook.trim_end_matches('/');
    match (method.as_str(), hook) {
        ("GET", "state") => {
            let snapshot = sim.state.lock().snapshot();
            reply(&json!({
                "snapshot": snapshot,
                "metrics": sim.metrics(),
                "faults": sim.faults(),
            }))
        }
        ("GET", "metrics") => reply(&sim.metrics()),
        ("GET", "faults") => reply(&sim.faults()),
        ("PUT", "faults") => {
            let config: FaultConfig = parse(body)?;
            config.validate().map_err(|m| ApiError::invalid(None, &m))?;
            sim.set_faults(config);
            reply(&sim.faults())
        }
        ("POST", "users") => {
            let value: Value = parse(body)?;
            let many = value.is_array();
            let news: Vec<NewMember> = if many {
                serde_json::from_value(value)
            } else {
                serde_json::from_value(value).map(|one| vec![one])
            }
            .map_err(|_| ApiError::invalid(None, "body must be a member or a list of members"))?;
            let created = sim.state.lock().sim_add_members(&news, now)?;
            sim.changed();
            if many {
                reply(&created)
            } else {
                reply(&created.first())
            }
        }
        ("POST", "groups") => {
            let new: NewSimGroup = parse(body)?;
            let group = sim.state.lock().sim_add_group(&new, now)?;
            sim.changed();
            reply(&group)
        }
        ("PUT", "org") => {
            let patch: Value = parse(body)?;
            let org = sim.state.lock().patch_org(&patch, now)?;
            sim.changed();
            reply(&org)
        }
        ("POST", "usage") => {
            let upload: crate::cowork::analytics::types::UsageUpload = parse(body)?;
            let answer = sim.state.lock().post_usage(&upload, now)?;
            sim.changed();
            reply(&answer)
        }
        ("POST", "reset") => {
            sim.reset();
            reply(&json!({"type": "sim_reset"}))
        }
        _ => Err(ApiError::not_found("no such simulator hook")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_plain_text() {
        assert_eq!(pct_decode("user_01abc"), "user_01abc");
        assert_eq!(pct_decode("a%2Fb"), "a/b");
        assert_eq!(pct_decode("bad%zz"), "bad%zz");
    }

    #[test]
    fn spend_and_invite_endpoints_have_their_own_limits() {
        let segs = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            limit_class(&Method::GET, &segs(&["spend_limits", "effective"])),
            LimitClass::Spend
        );
        assert_eq!(
            limit_class(&Method::POST, &segs(&["invites"])),
            LimitClass::Invite
        );
        assert_eq!(
            limit_class(&Method::GET, &segs(&["invites"])),
            LimitClass::Admin
        );
        assert_eq!(
            limit_class(&Method::GET, &segs(&["rbac_groups"])),
            LimitClass::Admin
        );
        assert_eq!(
            limit_class(&Method::GET, &segs(&["analytics", "cost_report"])),
            LimitClass::Analytics
        );
        assert_eq!(
            limit_class(
                &Method::GET,
                &segs(&["plugins", "p", "installation_settings"])
            ),
            LimitClass::PluginRead
        );
        assert_eq!(
            limit_class(
                &Method::DELETE,
                &segs(&["plugins", "p", "installation_settings", "organization"])
            ),
            LimitClass::PluginWrite
        );
    }
}
