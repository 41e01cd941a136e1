//! The operator API under `/admin/v1` (admin scope): the rule table (`GET|PUT
//! /rules`, versions), plans and reconcile runs, status, a user's effective access,
//! the audit trail (`/audit`, `/audit/verify`), and the token registry (`GET
//! /tokens`, `DELETE /tokens/{jti}`).

use std::collections::BTreeSet;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::support::{blocking, read_body, request_id};
use super::AppState;
use crate::audit;
use crate::auth::extract::{AdminCaller, AuthContext};
use crate::auth::registry::Revocation;
use crate::outbox;
use crate::rules::{self, RuleFile, ValidRuleTable};
use crate::ruleset;
use crate::scim::ResourceKind;
use crate::store::{Store, StoreError};

/// Largest rule file accepted.
const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;
/// Most audit entries per page.
const MAX_AUDIT_PAGE: usize = 10_000;

/// Registers the operator routes under the current scope (`/admin/v1`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/rules", web::get().to(get_rules))
        .route("/rules", web::put().to(put_rules))
        .route("/rules/versions", web::get().to(rule_versions))
        .route("/plan", web::get().to(plan))
        .route("/reconcile", web::post().to(reconcile))
        .route("/status", web::get().to(status))
        .route("/held", web::get().to(held))
        .route("/held/approve", web::post().to(approve))
        .route(
            "/users/{id}/effective-access",
            web::get().to(effective_access),
        )
        .route("/tokens", web::get().to(tokens))
        .route("/tokens/{jti}", web::delete().to(revoke_token))
        .route("/audit", web::get().to(audit_list))
        .route("/audit/verify", web::get().to(audit_verify))
        .configure(super::insights::routes);
}

fn json(body: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<u64>,
}

async fn get_rules(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.directory.store().clone();
    let wanted = query.version;
    let version = blocking(move || match wanted {
        Some(v) => ruleset::get(store.as_ref(), v),
        None => ruleset::current(store.as_ref()),
    })
    .await?;
    let Some(v) = version else {
        return Err(ApiError::NotFound(match wanted {
            Some(n) => format!("no rule table version {n}"),
            None => "no rule table has been applied yet".into(),
        }));
    };
    let toml = v
        .table
        .to_toml()
        .map_err(|e| ApiError::Internal(format!("rendering the rule table: {e}")))?;
    Ok(json(&json!({
        "version": v.version,
        "at": v.at,
        "actor": v.actor,
        "summary": v.summary,
        "toml": toml,
        "table": v.table,
    })))
}

async fn rule_versions(
    state: web::Data<AppState>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let store = state.directory.store().clone();
    let versions = blocking(move || ruleset::list(store.as_ref())).await?;
    Ok(json(&json!({ "versions": versions })))
}

/// Parses a rule table from TOML (any content type but JSON) or a JSON `RuleFile`.
fn parse_table(req: &HttpRequest, body: &[u8]) -> Result<ValidRuleTable, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        let file: RuleFile = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("the rule file is not valid JSON: {e}")))?;
        rules::validate(file).map_err(ApiError::Rules)
    } else {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("the rule file is not UTF-8 text".into()))?;
        rules::load_rule_file(text).map_err(ApiError::Rules)
    }
}

#[derive(Debug, Deserialize)]
struct DryRunQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn put_rules(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: AdminCaller,
    query: web::Query<DryRunQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, MAX_RULE_FILE_BYTES).await?;
    let table = parse_table(&req, &body)?;
    let warnings = table.warnings().to_vec();
    let store = state.directory.store().clone();
    if query.dry_run {
        let candidate = table.clone();
        let diff = blocking(move || ruleset::preview(store.as_ref(), &candidate)).await?;
        let plan = match &state.operations {
            Some(ops) => Some(ops.plan(Some(table)).await?),
            None => None,
        };
        return Ok(json(&json!({
            "dry_run": true,
            "diff": diff,
            "summary": diff.to_string(),
            "warnings": warnings,
            "plan": plan,
        })));
    }
    let actor = caller.0.subject.clone();
    let rid = request_id(&req);
    let clock = state.clock.clone();
    let applied = blocking(move || {
        ruleset::apply(
            store.as_ref(),
            table,
            &actor,
            rid.as_deref(),
            clock.as_ref(),
        )
    })
    .await?;
    if applied.changed {
        state.notify_change();
    }
    Ok(json(&json!({
        "version": applied.version,
        "changed": applied.changed,
        "diff": applied.diff,
        "summary": applied.diff.to_string(),
        "warnings": warnings,
    })))
}

async fn plan(state: web::Data<AppState>, _caller: AdminCaller) -> Result<HttpResponse, ApiError> {
    let ops = state.operations()?;
    Ok(json(&ops.plan(None).await?))
}

#[derive(Debug, Deserialize)]
struct ReconcileQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    force: bool,
}

async fn reconcile(
    state: web::Data<AppState>,
    caller: AdminCaller,
    query: web::Query<ReconcileQuery>,
) -> Result<HttpResponse, ApiError> {
    let ops = state.operations()?;
    let report = ops
        .reconcile(query.dry_run, query.force, caller.0.subject.clone())
        .await?;
    Ok(json(&report))
}

async fn status(
    state: web::Data<AppState>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(json(&status_report(&state).await?))
}

/// The `GET /status` object: what `cowork-sync status` and the console's overview
/// show.
pub async fn status_report(state: &AppState) -> Result<Value, ApiError> {
    let directory = state.directory.clone();
    let status = state.status.clone();
    let (counts, backlog, rules_version, readiness, lifecycle, pools) =
        blocking(move || -> Result<_, StoreError> {
            let counts = directory.counts()?;
            let backlog = outbox::backlog(directory.store().as_ref())?;
            let rules_version = ruleset::current(directory.store().as_ref())?
                .map(|v| ruleset::RuleVersionInfo::from(&v));
            Ok((
                counts,
                backlog,
                rules_version,
                status.check(),
                status.lifecycle()?,
                crate::insights::pools::status(directory.store().as_ref())?,
            ))
        })
        .await?;
    let runs = match &state.operations {
        Some(ops) => ops.runs(10)?,
        None => Value::Array(Vec::new()),
    };
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": readiness.ready,
        "readiness": readiness.status,
        "checks": readiness.checks,
        "held_removals": lifecycle.held_removals,
        "offboarding": lifecycle.offboarding,
        "identity_collisions": lifecycle.identity_collisions,
        "directory": {"users": counts.0, "groups": counts.1, "memberships": counts.2},
        "outbox": {"pending": backlog.0, "oldest": backlog.1},
        "rules": rules_version,
        "reconcile": state.status.reconcile(),
        "downstream": state.status.downstream(),
        "telemetry": state.status.telemetry(),
        "pools": pools,
        "pool_check": state.status.pool_check(),
        "recent_runs": runs,
    }))
}

/// `GET /held`: the removals the valve holds, each with the userName it concerns
/// (looked up now: the records themselves keep ids only) and its age.
async fn held(state: web::Data<AppState>, _caller: AdminCaller) -> Result<HttpResponse, ApiError> {
    Ok(json(&held_report(&state).await?))
}

/// The `GET /held` object (`{"held": [...]}`, each with `user_name` (also as
/// `userName`) and `age_secs`).
pub async fn held_report(state: &AppState) -> Result<Value, ApiError> {
    let ops = state.operations()?;
    let mut body = ops.held().await?;
    let directory = state.directory.clone();
    let now = state.clock.now();
    let body = blocking(move || -> Result<Value, ApiError> {
        if let Some(items) = body.get_mut("held").and_then(Value::as_array_mut) {
            for item in items {
                let user_name = match item.get("scim_id").and_then(Value::as_str) {
                    Some(id) => directory
                        .record(ResourceKind::User, id)?
                        .and_then(|r| r.doc.get("userName").cloned()),
                    None => None,
                };
                let age = item
                    .get("held_at")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0));
                if let Some(obj) = item.as_object_mut() {
                    // `user_name` as in the plan's JSON; `userName` kept for callers
                    // that read the first name.
                    let user_name = user_name.unwrap_or(Value::Null);
                    obj.insert("user_name".into(), user_name.clone());
                    obj.insert("userName".into(), user_name);
                    obj.insert("age_secs".into(), age.map_or(Value::Null, Value::from));
                }
            }
        }
        Ok(body)
    })
    .await?;
    Ok(body)
}

/// The body of `POST /held/approve`: `{"ids": [...]}` or `{"all": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    ids: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
}

/// Most ids one approval names.
const MAX_APPROVE_IDS: usize = 10_000;

async fn approve(
    state: web::Data<AppState>,
    caller: AdminCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, 1024 * 1024).await?;
    let request: ApproveBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"ids\": [...]}} or {{\"all\": true}}: {e}"
        ))
    })?;
    let ids = match (request.all, request.ids) {
        (true, None) => None,
        (false, Some(ids)) if !ids.is_empty() && ids.len() <= MAX_APPROVE_IDS => Some(ids),
        (false, Some(ids)) if ids.is_empty() => {
            return Err(ApiError::BadRequest(
                "ids is empty: name the held removals to approve, or send {\"all\": true}".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(format!(
                "at most {MAX_APPROVE_IDS} ids per approval"
            )))
        }
        (true, Some(_)) => {
            return Err(ApiError::BadRequest(
                "send either ids or all, not both".into(),
            ))
        }
        (false, None) => {
            return Err(ApiError::BadRequest(
                "expected {\"ids\": [...]} or {\"all\": true}".into(),
            ))
        }
    };
    let ops = state.operations()?;
    let report = ops.approve(ids, caller.0.subject.clone()).await?;
    Ok(json(&report))
}

/// `GET /users/{id}/effective-access`: `id` may also be a userName.
async fn effective_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let wanted = req.match_info().get("id").unwrap_or_default().to_string();
    Ok(json(&user_report(&state, wanted).await?))
}

/// A user's effective access (by id or userName) with its reasons, and what Cowork
/// holds now: the `GET /users/{id}/effective-access` object.
pub async fn user_report(state: &AppState, wanted: String) -> Result<Value, ApiError> {
    let directory = state.directory.clone();
    let explanation = blocking(move || -> Result<_, ApiError> {
        let store = directory.store().clone();
        let id = match directory.record(ResourceKind::User, &wanted)? {
            Some(_) => wanted.clone(),
            None => directory.user_id_by_name(&wanted)?.ok_or_else(|| {
                ApiError::NotFound(format!("no user with id or userName '{wanted}'"))
            })?,
        };
        let Some(current) = ruleset::current(store.as_ref())? else {
            return Err(ApiError::NotFound(
                "no rule table has been applied yet, so nobody has access through cowork-sync"
                    .into(),
            ));
        };
        let table = current.table;
        let needs_groups = table.filter_attributes().iter().any(|a| a == "groups");
        let project = |u: &Value| table.project_user(u);
        let only: BTreeSet<String> = [id.clone()].into();
        let snapshot = directory.snapshot_for(&only, &project, needs_groups)?;
        let explanation = rules::explain(&table, &snapshot, &id)
            .ok_or_else(|| ApiError::NotFound(format!("no user with id '{id}'")))?;
        let mut text = explanation.to_string();
        let cap = pool_cap(store.as_ref(), &id, &table.org().billing_currency)?;
        if let Some(c) = &cap {
            if let Some(line) = c["text"].as_str() {
                text.push_str(line);
            }
        }
        let wanted = crate::reconcile::access::Wanted {
            active: explanation.access.active,
            governed: explanation.access.governed,
            groups: explanation.access.groups.clone(),
        };
        let mut body = serde_json::to_value(&explanation)
            .map_err(|e| ApiError::Internal(format!("rendering the explanation: {e}")))?;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("text".into(), Value::String(text));
            obj.insert("rules_version".into(), Value::from(current.version));
            obj.insert("pool_cap".into(), cap.unwrap_or(Value::Null));
        }
        Ok((id, wanted, body))
    })
    .await?;
    let (id, wanted, mut explanation) = explanation;
    // Beside what the rules want: what Cowork holds now, and why the two differ.
    if let Some(ops) = &state.operations {
        let mut downstream = ops.downstream_access(id, wanted).await?;
        let extra = downstream
            .as_object_mut()
            .and_then(|o| o.remove("text"))
            .and_then(|t| t.as_str().map(str::to_string))
            .unwrap_or_default();
        if let Some(obj) = explanation.as_object_mut() {
            if let Some(Value::String(text)) = obj.get_mut("text") {
                text.push_str(&extra);
            }
            obj.insert("downstream".into(), downstream);
        }
    }
    Ok(explanation)
}

/// The cap a spent pool puts on this user now (the lowest where several do), as
/// `{cap_minor, display, group, month, currency, text}`; `None` when no pool caps them.
fn pool_cap(store: &dyn Store, id: &str, currency: &str) -> Result<Option<Value>, StoreError> {
    let records = crate::insights::pools::load_all(store)?;
    let Some(cap) = crate::insights::pools::caps_of(&records).remove(id) else {
        return Ok(None);
    };
    let month = records.get(&cap.group).map(|r| r.month.clone());
    let display = crate::money::format_minor(cap.at, currency);
    let text = format!(
        "\nSpend capped at {display} for {} by the pooled budget of group {}, which is spent: \
         what they had spent when it ran out. The cap clears when the month turns, the pool \
         grows, or they leave the group.\n",
        month.as_deref().unwrap_or("this month"),
        cap.group
    );
    Ok(Some(json!({
        "cap_minor": cap.at,
        "display": display,
        "group": cap.group,
        "month": month,
        "currency": currency,
        "text": text,
    })))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    since: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn audit_list(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let since = match query.since.as_deref() {
        Some(s) => Some(audit::parse_since(s).ok_or_else(|| {
            ApiError::BadRequest(format!("since: '{s}' is not {}", audit::SINCE_FORMS))
        })?),
        None => None,
    };
    let limit = query.limit.unwrap_or(1000).clamp(1, MAX_AUDIT_PAGE);
    let after = query.after.unwrap_or(0);
    let store = state.directory.store().clone();
    let entries = blocking(move || audit::list(store.as_ref(), since, after, limit)).await?;
    let next = if entries.len() == limit {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(json(&json!({ "entries": entries, "next_after": next })))
}

async fn audit_verify(
    state: web::Data<AppState>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let store = state.directory.store().clone();
    let verification = blocking(move || audit::verify_store(store.as_ref())).await?;
    Ok(json(
        &serde_json::to_value(verification).unwrap_or(Value::Null),
    ))
}

/// `GET /tokens`: every token minted or seen (never the token itself).
async fn tokens(
    state: web::Data<AppState>,
    auth: web::Data<AuthContext>,
    _caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        &json!({ "tokens": list_tokens(&state, &auth).await? }),
    ))
}

/// Every token record, after importing those `token mint` has handed over since.
pub async fn list_tokens(
    state: &AppState,
    auth: &AuthContext,
) -> Result<Vec<crate::auth::registry::TokenRecord>, ApiError> {
    let registry = auth.registry.clone();
    let now = state.clock.now();
    blocking(move || {
        registry.import_minted(now);
        Ok::<_, crate::store::StoreError>(registry.list())
    })
    .await
}

/// `DELETE /tokens/{jti}`: revokes a token (see [`revoke`]).
async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: web::Data<AuthContext>,
    sessions: web::Data<crate::ui::Sessions>,
    caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let jti = req.match_info().get("jti").unwrap_or_default().to_string();
    Ok(json(
        &revoke(&state, &auth, &sessions, jti, caller.0.subject.clone()).await?,
    ))
}

/// Revokes `jti` for `actor`, durably and audited, and ends the console sessions
/// opened with it. Revoking a revoked jti answers the same way (200, with
/// `"already_revoked": true`) and changes nothing; an unknown jti is a 404.
pub async fn revoke(
    state: &AppState,
    auth: &AuthContext,
    sessions: &crate::ui::Sessions,
    jti: String,
    actor: String,
) -> Result<Value, ApiError> {
    let registry = auth.registry.clone();
    let now = state.clock.now();
    let wanted = jti.clone();
    let outcome = blocking(move || registry.revoke(&wanted, &actor, now)).await?;
    let (record, already) = match outcome {
        Revocation::Revoked(r) => (r, false),
        Revocation::AlreadyRevoked(r) => (r, true),
        Revocation::Unknown => {
            // The jti is echoed only when it could be one of ours: never an
            // unbounded or odd string from the path.
            let named = if crate::auth::minted::safe_jti(&jti) && jti.len() <= 64 {
                format!(" '{jti}'")
            } else {
                String::new()
            };
            return Err(ApiError::NotFound(format!(
                "no token with jti{named} has been issued or seen by this daemon"
            )));
        }
    };
    let closed = sessions.close_token(&record.jti).len();
    if !already {
        tracing::info!(jti = %record.jti, sessions_closed = closed, "token revoked");
    }
    Ok(json!({
        "revoked": true,
        "already_revoked": already,
        "sessions_closed": closed,
        "token": record,
    }))
}
