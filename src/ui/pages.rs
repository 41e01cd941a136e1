//! Console pages about the pipeline: sign-in and sign-out, the overview (the
//! `status` figures), held removals with approve, runs and drift, and the plan
//! preview.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::{badge, csrf, notice, page};
use super::session::{self, Sessions, COOKIE, SIGN_IN_COOKIE};
use super::{
    check_form, field, html, read_cookie, same_origin, set_cookie, Fields, Operator, UiError,
};
use crate::audit::AuditDraft;
use crate::auth::extract::{authorize, Rejection};
use crate::auth::{AuthError, Scope};
use crate::cli::status::{last_drift, verdict};
use crate::http::admin::{held_report, status_report};
use crate::http::error::ApiError;
use crate::http::support::blocking;
use crate::http::AppState;
use crate::store::{transaction, StoreError, TxFail};

/// Appends one console audit entry (sign-in, sign-out, ending a session).
pub(super) async fn audit(
    state: &AppState,
    actor: &str,
    action: &'static str,
    details: Value,
) -> Result<(), ApiError> {
    let store = state.directory.store().clone();
    let now = state.clock.now();
    let actor = actor.to_string();
    blocking(move || {
        transaction::<_, StoreError>(store.as_ref(), |txn| {
            crate::audit::append(
                txn,
                AuditDraft::new(&actor, action, None).with(details.clone()),
                now,
            )
            .map_err(TxFail::Store)?;
            Ok(())
        })
    })
    .await
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sign_in_page(req: &HttpRequest, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let token = match session::random_token() {
        Ok(t) => t,
        Err(e) => return UiError::Api(ApiError::Internal(e.to_string())).into_response(),
    };
    let body = html! {
        @if let Some(m) = message { p role="alert" class="notice bad" { (m) } }
        p { "Sign in with an admin token (" code { "cowork-sync token mint --scope admin" } "). "
            "The token is exchanged for a session and not kept." }
        form method="post" action="/ui/sign-in" {
            input type="hidden" name="csrf" value=(token);
            p {
                label for="token" { "Admin token" }
                br;
                input type="password" id="token" name="token" autocomplete="off" required;
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = html(status, page("Sign in", None, "", body));
    set_cookie(&mut response, req, SIGN_IN_COOKIE, &token, 600);
    response
}

trait IntoResponse {
    fn into_response(self) -> HttpResponse;
}

impl IntoResponse for UiError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// `GET /ui/sign-in`.
pub async fn sign_in_form(req: HttpRequest, op: Option<Operator>) -> HttpResponse {
    if op.is_some() {
        return super::to_console().await;
    }
    sign_in_page(&req, StatusCode::OK, None)
}

/// `POST /ui/sign-in`: an admin token for a session cookie.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    sessions: web::Data<Sessions>,
    form: web::Form<Fields>,
) -> Result<HttpResponse, UiError> {
    same_origin(&req)?;
    let expected = read_cookie(&req, SIGN_IN_COOKIE);
    match (field(&form, "csrf"), expected) {
        (Some(got), Some(want)) if session::same_secret(got, want.as_str()) => {}
        _ => {
            return Ok(sign_in_page(
                &req,
                StatusCode::FORBIDDEN,
                Some("The sign-in form expired; sign in again."),
            ))
        }
    }
    let token = field(&form, "token")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let principal = match authorize(&req, token, Scope::Admin) {
        Ok(p) => p,
        Err(Rejection::Auth(AuthError::InsufficientScope(_))) => {
            return Ok(sign_in_page(
                &req,
                StatusCode::FORBIDDEN,
                Some("This token does not carry the admin scope: a SCIM token cannot sign in."),
            ))
        }
        Err(Rejection::RateLimited { .. }) => {
            return Ok(sign_in_page(
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many attempts; wait a moment and try again."),
            ))
        }
        Err(e) => {
            return Ok(sign_in_page(
                &req,
                StatusCode::UNAUTHORIZED,
                Some(&format!("Not signed in: {e}.")),
            ))
        }
    };
    let now = state.clock.now();
    let (value, session) = sessions
        .open(&principal.subject, &principal.token_id, now)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(
        &state,
        &principal.subject,
        "ui.sign_in",
        json!({ "session": session.handle, "token_id": principal.token_id, "tls": super::over_tls(&req) }),
    )
    .await?;
    tracing::info!(session = %session.handle, "console sign-in");
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/"))
        .finish();
    let lifetime = session::LIFETIME.num_seconds();
    set_cookie(&mut response, &req, COOKIE, &value, lifetime);
    set_cookie(&mut response, &req, SIGN_IN_COOKIE, "", 0);
    Ok(super::secure(response))
}

/// `POST /ui/sign-out`.
pub async fn sign_out(
    req: HttpRequest,
    op: Operator,
    state: web::Data<AppState>,
    sessions: web::Data<Sessions>,
    form: web::Form<Fields>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &op, &form)?;
    if let Some(c) = read_cookie(&req, COOKIE) {
        sessions.close(&c);
    }
    audit(
        &state,
        &op.0.subject,
        "ui.sign_out",
        json!({ "session": op.0.handle }),
    )
    .await?;
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/sign-in"))
        .finish();
    set_cookie(&mut response, &req, COOKIE, "", 0);
    Ok(super::secure(response))
}

fn card(title: &str, figure: Markup, detail: Markup) -> Markup {
    html! {
        section class="card" {
            h2 { (title) }
            div class="figure" { (figure) }
            div class="muted" { (detail) }
        }
    }
}

/// The telemetry card: the check's verdict and the audit export's lag (entries the
/// collector has not acknowledged yet), then the check's detail.
fn telemetry_card(s: &Value) -> Markup {
    let Some(check) = s["checks"].get("telemetry") else {
        return card("Telemetry", html! { "not configured" }, html! {});
    };
    card(
        "Telemetry",
        html! {
            (badge(verdict(check)))
            @if let Some(lag) = s["telemetry"]["audit_lag"].as_u64() {
                " lag " (lag)
            }
        },
        html! { (text(&check["detail"])) },
    )
}

/// The pooled budgets of `status` (`pools: [{group, rule, level, spent_minor,
/// monthly_minor, currency, capped_members}]`) as meters with their level; nothing
/// when no rule sets a pool.
fn pools_section(s: &Value) -> Markup {
    let pools: Vec<&Value> = s["pools"].as_array().into_iter().flatten().collect();
    if pools.is_empty() {
        return html! {};
    }
    let meters: Vec<super::chart::Meter> = pools
        .iter()
        .map(|p| {
            let currency = p["currency"].as_str().unwrap_or("");
            let spent = p["spent_minor"].as_u64().unwrap_or(0);
            let monthly = p["monthly_minor"].as_u64().unwrap_or(0);
            let share = if monthly > 0 {
                format!(" ({:.0} %)", spent as f64 / monthly as f64 * 100.0)
            } else {
                String::new()
            };
            let capped = p["capped_members"].as_u64().unwrap_or(0);
            super::chart::Meter {
                label: text(&p["group"]),
                spent: spent as f64,
                total: monthly as f64,
                warn_at: None,
                text: format!(
                    "{} of {}{share}, {}{}",
                    crate::money::format_minor(spent, currency),
                    crate::money::format_minor(monthly, currency),
                    text(&p["level"]),
                    if capped > 0 {
                        format!(", {capped} member(s) capped")
                    } else {
                        String::new()
                    }
                ),
            }
        })
        .collect();
    html! {
        h2 { "Pooled budgets" }
        (super::chart::meters(super::chart::Alt {
            id: "overview-pools",
            title: "Pooled budgets, month to date",
            desc: "Per group with a pooled budget: the cost so far this month against the pool, and its level. The insights page gives the details.",
        }, &meters))
        table id="pools-table" {
            thead { tr { th scope="col" { "group" } th scope="col" { "rule" } th scope="col" { "level" }
                th scope="col" class="num" { "spent" } th scope="col" class="num" { "pool" } th scope="col" class="num" { "members capped" } } }
            tbody {
                @for (p, m) in pools.iter().zip(&meters) {
                    @let currency = p["currency"].as_str().unwrap_or("");
                    tr {
                        th scope="row" { (m.label) }
                        td { (text(&p["rule"])) }
                        td { (badge(p["level"].as_str().unwrap_or("?"))) }
                        td class="num" { (crate::money::format_minor(p["spent_minor"].as_u64().unwrap_or(0), currency)) }
                        td class="num" { (crate::money::format_minor(p["monthly_minor"].as_u64().unwrap_or(0), currency)) }
                        td class="num" { (text(&p["capped_members"])) }
                    }
                }
            }
        }
        @if let Some(e) = s["pool_check"]["last_error"].as_str() {
            p class="warn" {
                "The last " (text(&s["pool_check"]["consecutive_failures"])) " pool check(s) failed: " (e)
                ". The levels and caps above stand as last checked until a check succeeds."
            }
        }
        p { a href="/ui/insights" { "Spend per group and the advisor →" } }
    }
}

/// `GET /ui/`: the overview, the figures of `cowork-sync status`.
pub async fn overview(op: Operator, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    let s = status_report(&state).await?;
    let d = &s["directory"];
    let held = s["held_removals"].as_u64().unwrap_or(0);
    let runs: Vec<&Value> = s["recent_runs"].as_array().into_iter().flatten().collect();
    let chart_rows: Vec<(String, f64)> = runs
        .iter()
        .rev()
        .map(|r| {
            (
                format!("run {} ({})", text(&r["run"]), text(&r["outcome"])),
                r["duration_ms"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let body = html! {
        div class="cards" {
            (card("Directory", html! { (text(&d["users"])) " users" },
                html! { (text(&d["groups"])) " groups, " (text(&d["memberships"])) " memberships" }))
            (card("Readiness", badge(s["readiness"].as_str().unwrap_or(if s["ready"].as_bool() == Some(true) { "ok" } else { "fail" })),
                html! { "cowork-sync " (text(&s["version"])) }))
            (card("Rules", match s["rules"].as_object() {
                    Some(r) => html! { "version " (text(&r["version"])) },
                    None => html! { "none" },
                },
                match s["rules"].as_object() {
                    Some(r) => html! { (text(&r["rules"])) " rules, applied " (text(&r["at"])) " by " (text(&r["actor"])) },
                    None => html! { "apply a rule file: " code { "cowork-sync rules apply FILE" } },
                }))
            (card("Outbox", html! { (text(&s["outbox"]["pending"])) " pending" },
                html! { "oldest " (text(&s["outbox"]["oldest"])) }))
            (card("Held removals", html! { a href="/ui/held" { (held) } },
                html! { @if held > 0 { span class="warn" { "waiting for approval" } } @else { "none" } }))
            (card("Drift", match last_drift(&s) {
                    Some((_, n)) => html! { a href="/ui/runs" { (n) } },
                    None => html! { "-" },
                },
                match last_drift(&s) {
                    Some((run, _)) => html! { "reported by run " (run) ", not written" },
                    None => html! { "no run yet" },
                }))
            (card("Last run", html! { (text(&s["reconcile"]["last_run_at"])) },
                html! {
                    @if s["reconcile"]["running"].as_bool() == Some(true) { span class="warn" { "a run is in progress" } }
                    @else { "last success " (text(&s["reconcile"]["last_success_at"])) }
                }))
            (card("Downstream", match s["downstream"]["last_error"].as_str() {
                    Some(_) => badge("fail"),
                    None if s["downstream"]["last_ok_at"].is_string() => badge("ok"),
                    None => html! { "no call yet" },
                },
                html! { (s["downstream"]["last_error"].as_str().unwrap_or("")) }))
            (telemetry_card(&s))
        }
        h2 { "Checks" }
        table {
            thead { tr { th { "check" } th { "verdict" } th { "detail" } } }
            tbody {
                @for (name, c) in s["checks"].as_object().into_iter().flatten() {
                    tr { td { (name) } td { (badge(verdict(c))) } td { (text(&c["detail"])) } }
                }
            }
        }
        (pools_section(&s))
        h2 { "Recent runs" }
        (super::chart::bars("Duration of the recent runs", &chart_rows, "ms"))
        (runs_table(&runs))
    };
    Ok(html(
        StatusCode::OK,
        page("Overview", Some(&op.0), "/ui/", body),
    ))
}

fn runs_table(runs: &[&Value]) -> Markup {
    html! {
        table {
            thead { tr {
                th class="num" { "run" } th { "trigger" } th { "ended" } th { "outcome" }
                th class="num" { "applied" } th class="num" { "failed" } th class="num" { "held" }
                th class="num" { "drift" } th class="num" { "writes" } th class="num" { "ms" }
            } }
            tbody {
                @for r in runs {
                    tr {
                        td class="num" { (text(&r["run"])) }
                        td { (text(&r["trigger"])) @if let Some(by) = r["requested_by"].as_str() { " by " (by) } }
                        td { (text(&r["ended_at"])) }
                        td { (badge(r["outcome"].as_str().unwrap_or("?"))) }
                        td class="num" { (text(&r["applied"])) }
                        td class="num" { (text(&r["failed"])) }
                        td class="num" { (text(&r["held"])) }
                        td class="num" { (text(&r["drift_reported"])) }
                        td class="num" { (text(&r["calls"]["writes"])) }
                        td class="num" { (text(&r["duration_ms"])) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApprovedQuery {
    approved: Option<usize>,
    applied: Option<usize>,
    failed: Option<usize>,
    still: Option<usize>,
}

/// `GET /ui/held`: the removals the valve holds, with approve.
pub async fn held(
    op: Operator,
    state: web::Data<AppState>,
    query: web::Query<ApprovedQuery>,
) -> Result<HttpResponse, UiError> {
    let report = held_report(&state).await?;
    let items: Vec<&Value> = report["held"].as_array().into_iter().flatten().collect();
    let body = html! {
        @if let Some(n) = query.approved {
            (notice(&format!(
                "Approved {n} removal(s): {} applied, {} failed, {} still held.",
                query.applied.unwrap_or(0), query.failed.unwrap_or(0), query.still.unwrap_or(0)
            ), query.failed.unwrap_or(0) == 0))
        }
        p { "The safety valve holds removals beyond the configured share of managed memberships. "
            "Approving applies them now, audited with your name." }
        @if items.is_empty() {
            p class="ok" { "No removal is held." }
        } @else {
            form method="post" action="/ui/held/approve" {
                (csrf(&op.0))
                table {
                    thead { tr { th { "approve" } th { "id" } th { "user" } th { "removal" } th { "reason" } th { "held since" } } }
                    tbody {
                        @for h in &items {
                            @let id = h["id"].as_str().unwrap_or("");
                            tr {
                                td { input type="checkbox" name="id" value=(id) id={ "h-" (id) } aria-label={ "approve " (id) }; }
                                td { label for={ "h-" (id) } { code { (id) } } }
                                td { (text(&h["userName"])) }
                                td { (text(&h["description"])) }
                                td { (text(&h["reason"])) }
                                td { (text(&h["held_at"])) }
                            }
                        }
                    }
                }
                div class="row" {
                    button type="submit" name="which" value="selected" { "Approve selected" }
                    button type="submit" name="which" value="all" { "Approve all " (items.len()) }
                }
            }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Held removals", Some(&op.0), "/ui/held", body),
    ))
}

/// `POST /ui/held/approve`: the same approval as `POST /admin/v1/held/approve`.
pub async fn approve(
    req: HttpRequest,
    op: Operator,
    state: web::Data<AppState>,
    form: web::Form<Fields>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &op, &form)?;
    let ids: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .take(10_000)
        .collect();
    let which = match field(&form, "which") {
        Some("all") => None,
        _ if ids.is_empty() => {
            return Err(ApiError::BadRequest(
                "select at least one held removal, or approve all".into(),
            )
            .into())
        }
        _ => Some(ids),
    };
    let report = state
        .operations()?
        .approve(which, op.0.subject.clone())
        .await?;
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let location = format!(
        "/ui/held?approved={}&applied={}&failed={}&still={}",
        report["approved"].as_array().map_or(0, Vec::len),
        n("applied"),
        n("failed"),
        n("still_held")
    );
    Ok(super::secure(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish(),
    ))
}

/// `GET /ui/runs`: run history, and the drift of a plan made now with the console
/// step that fixes each difference the API cannot write.
pub async fn runs(op: Operator, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    let ops = state.operations()?;
    let history = ops.runs(50)?;
    let runs: Vec<&Value> = history.as_array().into_iter().flatten().collect();
    let plan = ops.plan(None).await?;
    let drift: Vec<&Value> = plan["drift"].as_array().into_iter().flatten().collect();
    let body = html! {
        h2 { "Drift now" }
        @if drift.is_empty() {
            p class="ok" { "No drift: Cowork holds what the rules want, or the plan writes it." }
        } @else {
            p { (drift.len()) " difference(s) the daemon reports and does not write." }
            table {
                thead { tr { th { "kind" } th { "target" } th { "what differs" } th { "fix it in the Claude console" } } }
                tbody {
                    @for d in &drift {
                        tr {
                            td { (badge(d["kind"].as_str().unwrap_or("?"))) }
                            td { code { (text(&d["target"])) } }
                            td { (text(&d["detail"])) }
                            td { (d["console_step"].as_str().unwrap_or("-")) }
                        }
                    }
                }
            }
        }
        h2 { "Runs" }
        (runs_table(&runs))
    };
    Ok(html(
        StatusCode::OK,
        page("Runs and drift", Some(&op.0), "/ui/runs", body),
    ))
}

/// `GET /ui/plan`: what a full reconcile would change now; nothing is applied.
pub async fn plan(op: Operator, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    let plan = state.operations()?.plan(None).await?;
    let targets: Vec<&Value> = plan["by_target"].as_array().into_iter().flatten().collect();
    let body = html! {
        p { "Made at " (text(&plan["generated_at"])) " against rules version " (text(&plan["rule_version"]))
            ". Nothing is applied: run " code { "cowork-sync reconcile" } " to apply it." }
        h2 { "Actions by kind" }
        table {
            thead { tr { th { "kind" } th class="num" { "count" } } }
            tbody {
                @for (kind, n) in plan["counts"].as_object().into_iter().flatten() {
                    tr { td { (kind) } td class="num" { (text(n)) } }
                }
            }
        }
        h2 { "Actions by target" }
        @if targets.is_empty() { p class="ok" { "Nothing to change." } }
        @for t in &targets {
            h3 { code { (text(&t["target"])) } }
            ul { @for a in t["actions"].as_array().into_iter().flatten() { li { (text(a)) } } }
        }
        h2 { "The plan as text" }
        pre { (plan["text"].as_str().unwrap_or("")) }
    };
    Ok(html(
        StatusCode::OK,
        page("Plan preview", Some(&op.0), "/ui/plan", body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_telemetry_card_shows_the_audit_export_lag() {
        let s = json!({
            "checks": {"telemetry": {"status": "degraded", "ok": false,
                "detail": "exporting to http://c:4318 fails; audit export lag 3 (exported up to #7 of #10)"}},
            "telemetry": {"audit_lag": 3, "audit_cursor": 7, "audit_head": 10},
        });
        let html = telemetry_card(&s).into_string();
        assert!(html.contains("lag 3"), "{html}");
        assert!(html.contains("exported up to #7 of #10"), "{html}");
        let off = telemetry_card(&json!({"checks": {}})).into_string();
        assert!(off.contains("not configured"), "{off}");
    }

    #[test]
    fn the_overview_shows_each_pool_as_a_meter_with_its_level_and_nothing_without_pools() {
        let s = json!({"pools": [
            {"group": "cowork-pilot", "rule": "pilot", "level": "capped", "spent_minor": 210_000,
             "monthly_minor": 200_000, "currency": "USD", "capped_members": 3},
            {"group": "finance", "rule": "finance", "level": "ok", "spent_minor": 5_000,
             "monthly_minor": 20_000, "currency": "USD", "capped_members": 0},
        ]});
        let html = pools_section(&s).into_string();
        assert!(
            html.contains("$2,100.00 of $2,000.00 (105 %), capped, 3 member(s) capped"),
            "{html}"
        );
        assert!(html.contains("$50.00 of $200.00 (25 %), ok<"), "{html}");
        // A quarter of the 340 px track; the spent pool fills it and no more.
        assert!(html.contains("width=\"85.0\""), "{html}");
        assert!(!html.contains("width=\"357"), "{html}");
        assert!(
            html.contains("<span class=\"badge bad\">capped</span>"),
            "{html}"
        );
        assert!(!html.contains("pool check"), "{html}");
        let mut failing = s.clone();
        failing["pool_check"] = json!({"last_ok_at": null, "consecutive_failures": 2,
            "last_error": "the Analytics API unavailable: 503"});
        let html = pools_section(&failing).into_string();
        assert!(
            html.contains("The last 2 pool check(s) failed: the Analytics API unavailable: 503."),
            "{html}"
        );
        assert!(!html.contains("style="), "{html}");
        assert_eq!(pools_section(&json!({})).into_string(), "");
        assert_eq!(pools_section(&json!({"pools": []})).into_string(), "");
    }
}
