//! Console pages about records: a user's access, the provisioning log, the audit
//! trail, rule versions and their diff (the tokens page is [`super::pages_tokens`],
//! insights [`super::pages_insights`]).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::layout::{badge, notice, page};
use super::pages::text;
use super::{html, Operator, UiError};
use crate::http::admin::user_report;
use crate::http::error::ApiError;
use crate::http::reqlog::RequestLog;
use crate::http::support::blocking;
use crate::http::AppState;
use crate::scim::list::ListQuery;
use crate::scim::ResourceKind;

#[derive(Debug, Deserialize)]
pub struct UserQuery {
    q: Option<String>,
}

/// The id of the user whose userName or email is `wanted`.
fn find_user(state: &AppState, wanted: &str) -> Result<Option<String>, ApiError> {
    let directory = &state.directory;
    if directory.record(ResourceKind::User, wanted)?.is_some() {
        return Ok(Some(wanted.to_string()));
    }
    if let Some(id) = directory.user_id_by_name(wanted)? {
        return Ok(Some(id));
    }
    if !wanted.contains('@') || wanted.contains('"') || wanted.contains('\\') {
        return Ok(None);
    }
    let query = ListQuery {
        filter: Some(format!("emails.value eq \"{wanted}\"")),
        count: 1,
        attributes: Some("id".into()),
        ..ListQuery::default()
    };
    let found = directory.list(ResourceKind::User, &query, "")?;
    Ok(found["Resources"][0]["id"].as_str().map(str::to_string))
}

/// `GET /ui/user?q=`: search by userName or email; effective access with its
/// reasons, and what Cowork holds now.
pub async fn user(
    op: Operator,
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse, UiError> {
    let wanted = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(256).collect::<String>());
    let report = match &wanted {
        Some(w) => {
            let st = state.clone();
            let w2 = w.clone();
            match blocking(move || find_user(&st, &w2)).await? {
                Some(id) => Some(Ok(user_report(&state, id).await?)),
                None => Some(Err(format!("No user with the userName or email '{w}'."))),
            }
        }
        None => None,
    };
    let body = html! {
        form method="get" action="/ui/user" class="row" role="search" {
            label for="q" { "userName or email" }
            input type="text" id="q" name="q" value=(wanted.clone().unwrap_or_default());
            button type="submit" { "Show" }
        }
        @match &report {
            None => p class="muted" { "Search for a user to see what the rules give them and what Cowork holds." },
            Some(Err(m)) => (notice(m, false)),
            Some(Ok(r)) => {
                h2 { "Effective access" }
                p { "Rules version " (text(&r["rules_version"])) ". "
                    @if r["access"]["governed"].as_bool() == Some(true) { "Governed by cowork-sync." }
                    @else { "Not governed by any rule." } }
                table {
                    thead { tr { th { "rule" } th { "downstream group" } th { "why it matched" } } }
                    tbody {
                        @for m in r["matches"].as_array().into_iter().flatten() {
                            tr { td { (text(&m["rule"])) } td { (text(&m["group"])) } td { (text(&m["via"])) } }
                        }
                    }
                }
                h2 { "In full" }
                pre { (r["text"].as_str().unwrap_or("")) }
                @if let Some(d) = r.get("downstream") {
                    h2 { "What Cowork holds now" }
                    pre { (serde_json::to_string_pretty(d).unwrap_or_default()) }
                }
            },
        }
    };
    Ok(html(
        StatusCode::OK,
        page("User", Some(&op.0), "/ui/user", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    client: Option<String>,
}

/// `GET /ui/log`: recent SCIM requests by IdP client (ids only).
pub async fn log(
    op: Operator,
    log: web::Data<RequestLog>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, UiError> {
    let client = query.client.as_deref().filter(|c| !c.is_empty());
    let recent = log.recent(client, 500);
    let clients = log.clients();
    let body = html! {
        p { "The most recent SCIM requests (up to " (crate::http::reqlog::CAPACITY)
            " kept in memory; the audit trail is the durable record)." }
        form method="get" action="/ui/log" class="row" {
            label for="client" { "IdP client" }
            select id="client" name="client" {
                option value="" { "all" }
                @for (c, n, _) in &clients {
                    option value=(c) selected[client == Some(c.as_str())] { (c) " (" (n) ")" }
                }
            }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "time" } th { "client" } th { "method" } th { "resource" } th { "id" }
                th class="num" { "status" } th class="num" { "ms" } th { "request id" } } }
            tbody {
                @for e in &recent {
                    tr {
                        td { (e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) }
                        td { (e.client.as_deref().unwrap_or("(unauthenticated)")) }
                        td { (e.method) }
                        td { (e.resource) }
                        td { code { (e.id.as_deref().unwrap_or("")) } }
                        td class="num" { (badge(if e.status < 400 { "ok" } else if e.status < 500 { "refused" } else { "failed" })) " " (e.status) }
                        td class="num" { (format!("{:.1}", e.micros as f64 / 1000.0)) }
                        td { code { (e.request_id) } }
                    }
                }
            }
        }
        @if recent.is_empty() { p class="muted" { "No SCIM request since the daemon started." } }
    };
    Ok(html(
        StatusCode::OK,
        page("Provisioning log", Some(&op.0), "/ui/log", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    since: Option<String>,
    action: Option<String>,
    after: Option<u64>,
    verify: Option<String>,
}

/// A plain date (midnight UTC) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    crate::audit::parse_since(s)
}

/// `GET /ui/audit`: browse by time and action; verify the chain.
pub async fn audit(
    op: Operator,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, UiError> {
    let since_text = query.since.clone().filter(|s| !s.trim().is_empty());
    let since = match &since_text {
        Some(s) => Some(parse_since(s.trim()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "'{s}' is neither a date (YYYY-MM-DD) nor an RFC 3339 time"
            ))
        })?),
        None => None,
    };
    let action = query
        .action
        .clone()
        .filter(|a| !a.trim().is_empty())
        .map(|a| a.trim().chars().take(80).collect::<String>());
    let after = query.after.unwrap_or(0);
    let store = state.directory.store().clone();
    let wanted = action.clone();
    let verify = query.verify.is_some();
    let (entries, verification) = blocking(move || -> Result<_, crate::store::StoreError> {
        // Up to 200 matching entries, reading at most 20 pages of 1,000.
        let mut out = Vec::new();
        let mut cursor = after;
        for _ in 0..20 {
            let page = crate::audit::list(store.as_ref(), since, cursor, 1000)?;
            let full = page.len() == 1000;
            for e in page {
                cursor = e.seq;
                if wanted.as_deref().is_none_or(|a| e.action.starts_with(a)) && out.len() < 200 {
                    out.push(e);
                }
            }
            if !full || out.len() >= 200 {
                break;
            }
        }
        let v = if verify {
            Some(crate::audit::verify_store(store.as_ref())?)
        } else {
            None
        };
        Ok((out, v))
    })
    .await?;
    let next = entries
        .last()
        .map(|e| e.seq)
        .filter(|_| entries.len() == 200);
    let body = html! {
        form method="get" action="/ui/audit" class="row" {
            label for="since" { "Since" }
            input type="text" id="since" name="since" placeholder="YYYY-MM-DD" value=(since_text.clone().unwrap_or_default());
            label for="action" { "Action starts with" }
            input type="text" id="action" name="action" placeholder="ui. or reconcile." value=(action.clone().unwrap_or_default());
            button type="submit" { "Show" }
        }
        form method="get" action="/ui/audit" class="row" {
            input type="hidden" name="verify" value="1";
            button type="submit" { "Verify the hash chain" }
        }
        @if let Some(v) = &verification {
            @if v.ok { (notice(&format!("The audit trail is intact: {} entries verified.", v.checked), true)) }
            @else { (notice(&format!("The audit trail is broken at sequence {}: {}.", v.first_bad_seq.unwrap_or(0), v.reason.clone().unwrap_or_default()), false)) }
        }
        table {
            thead { tr { th class="num" { "seq" } th { "time" } th { "actor" } th { "action" } th { "target" } th { "details" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td class="num" { (e.seq) }
                        td { (e.at) }
                        td { (e.actor) }
                        td { code { (e.action) } }
                        td { code { (e.target.as_deref().unwrap_or("")) } }
                        td { code { (if e.details.is_null() { String::new() } else { e.details.to_string() }) } }
                    }
                }
            }
        }
        @if let Some(n) = next {
            p { a href={ "/ui/audit?after=" (n) "&since=" (since_text.clone().unwrap_or_default()) "&action=" (action.clone().unwrap_or_default()) } { "Older entries after " (n) " →" } }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Audit", Some(&op.0), "/ui/audit", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RulesQuery {
    from: Option<u64>,
    to: Option<u64>,
}

/// `GET /ui/rules`: versions, and the diff between two.
pub async fn rules(
    op: Operator,
    state: web::Data<AppState>,
    query: web::Query<RulesQuery>,
) -> Result<HttpResponse, UiError> {
    let store = state.directory.store().clone();
    let (from, to) = (query.from, query.to);
    let (versions, diff) = blocking(move || -> Result<_, ApiError> {
        let versions = crate::ruleset::list(store.as_ref())?;
        let diff = match (from, to) {
            (Some(a), Some(b)) => {
                let get = |v: u64| {
                    crate::ruleset::get(store.as_ref(), v)?
                        .ok_or_else(|| ApiError::NotFound(format!("no rule table version {v}")))
                };
                let (old, new) = (get(a)?, get(b)?);
                let summary = crate::rules::diff(&old.table, &new.table).to_string();
                let toml = new.table.to_toml().unwrap_or_default();
                Some((a, b, summary, toml))
            }
            _ => None,
        };
        Ok((versions, diff))
    })
    .await?;
    let newest = versions.iter().map(|v| v.version).max();
    let body = html! {
        @if versions.is_empty() { p { "No rule table has been applied yet: " code { "cowork-sync rules apply FILE" } } }
        @else {
            form method="get" action="/ui/rules" class="row" {
                label for="from" { "Compare version" }
                select id="from" name="from" { @for v in &versions { option value=(v.version) selected[from == Some(v.version)] { (v.version) } } }
                label for="to" { "with" }
                select id="to" name="to" { @for v in &versions { option value=(v.version) selected[to.or(newest) == Some(v.version)] { (v.version) } } }
                button type="submit" { "Diff" }
            }
        }
        @if let Some((a, b, summary, toml)) = &diff {
            h2 { "From version " (a) " to " (b) }
            p { (summary) }
            details { summary { "Version " (b) " as TOML" } pre { (toml) } }
        }
        h2 { "Versions" }
        table {
            thead { tr { th class="num" { "version" } th { "applied at" } th { "by" } th class="num" { "rules" } th class="num" { "roles" } th { "summary" } } }
            tbody {
                @for v in versions.iter().rev() {
                    tr { td class="num" { (v.version) } td { (v.at) } td { (v.actor) } td class="num" { (v.rules) } td class="num" { (v.roles) } td { (v.summary) } }
                }
            }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Rules", Some(&op.0), "/ui/rules", body),
    ))
}
