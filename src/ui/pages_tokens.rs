//! The console's tokens page: every token the daemon has minted or seen (jti, scope,
//! subject, issued, expires, last used, revoked; never a token), each with a revoke
//! form that calls the same revocation as `DELETE /admin/v1/tokens/{jti}`
//! ([`crate::http::admin::revoke`]); console sessions with end; and the SCIM clients
//! seen since start.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::layout::{badge, csrf, notice, page};
use super::pages::audit as audit_entry;
use super::session::Sessions;
use super::{check_form, field, html, Fields, Operator, UiError};
use crate::auth::extract::AuthContext;
use crate::auth::registry::TokenRecord;
use crate::http::error::ApiError;
use crate::http::reqlog::RequestLog;
use crate::http::AppState;

/// What the page says after a revocation (from the redirect's query).
#[derive(Debug, Deserialize)]
pub struct TokensQuery {
    revoked: Option<String>,
    already: Option<u8>,
    sessions: Option<usize>,
}

/// A time as the page shows it (to the minute, UTC); `-` for none.
fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// The notice after a revocation: only for a jti the registry holds (nothing from
/// the query is echoed otherwise).
fn revoked_notice(query: &TokensQuery, tokens: &[TokenRecord]) -> Option<maud::Markup> {
    let wanted = query.revoked.as_deref()?;
    let record = tokens
        .iter()
        .find(|t| t.jti == wanted && t.revoked.is_some())?;
    let text = if query.already == Some(1) {
        format!(
            "Token {} ({}) was already revoked at {}; nothing changed.",
            record.jti,
            record.subject,
            when(record.revoked)
        )
    } else {
        let n = query.sessions.unwrap_or(0);
        format!(
            "Revoked token {} ({}) at {}: it is refused from now on ({n} console session{} ended).",
            record.jti,
            record.subject,
            when(record.revoked),
            if n == 1 { "" } else { "s" }
        )
    };
    Some(notice(&text, true))
}

/// `GET /ui/tokens`: the token registry with revoke, console sessions (with end),
/// and the token subjects seen on SCIM since the daemon started.
pub async fn tokens(
    op: Operator,
    state: web::Data<AppState>,
    auth: web::Data<AuthContext>,
    sessions: web::Data<Sessions>,
    log: web::Data<RequestLog>,
    query: web::Query<TokensQuery>,
) -> Result<HttpResponse, UiError> {
    let records = crate::http::admin::list_tokens(&state, &auth).await?;
    let live = sessions.live(state.clock.now());
    let clients = log.clients();
    let body = html! {
        @if let Some(n) = revoked_notice(&query, &records) { (n) }
        p { "Mint tokens with " code { "cowork-sync token mint --scope scim|admin --subject NAME" }
            ". A token is shown once, when minted; the console never shows one. "
            "Revoking a token refuses it at once on SCIM, the admin API and the console, "
            "and ends the console sessions opened with it." }
        h2 { "Tokens" }
        @if records.is_empty() {
            p { "No token has been issued or seen yet." }
        } @else {
            table {
                thead { tr {
                    th { "jti" } th { "scope" } th { "subject" } th { "issued" } th { "expires" }
                    th { "last used" } th { "revoked" } th {}
                } }
                tbody {
                    @for t in &records {
                        tr id={ "token-" (t.jti) } {
                            td { code { (t.jti) } @if t.jti == op.0.token_id { " (this session's)" } }
                            td { (t.scope) }
                            td { (t.subject) }
                            td { (when(Some(t.issued))) }
                            td { (when(Some(t.expires))) }
                            td { (when(t.last_used)) }
                            td {
                                @if let Some(at) = t.revoked {
                                    (badge("revoked")) " " (when(Some(at)))
                                    @if let Some(by) = &t.revoked_by { " by " (by) }
                                } @else { "-" }
                            }
                            td {
                                @if t.revoked.is_none() {
                                    form method="post" action="/ui/tokens/revoke" class="inline" {
                                        (csrf(&op.0))
                                        input type="hidden" name="jti" value=(t.jti);
                                        button type="submit" aria-label={ "revoke token " (t.jti) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Console sessions" }
        table {
            thead { tr { th { "session" } th { "operator" } th { "token id" } th { "signed in" } th { "last seen" } th { "ends" } th {} } }
            tbody {
                @for s in &live {
                    tr {
                        td { code { (s.handle) } @if s.handle == op.0.handle { " (this one)" } }
                        td { (s.subject) }
                        td { code { (s.token_id) } }
                        td { (s.created.to_rfc3339()) }
                        td { (s.last_seen.to_rfc3339()) }
                        td { (s.expires().to_rfc3339()) }
                        td {
                            form method="post" action="/ui/tokens/end-session" class="inline" {
                                (csrf(&op.0))
                                input type="hidden" name="handle" value=(s.handle);
                                button type="submit" aria-label={ "end session " (s.handle) } { "End" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "SCIM clients seen since start" }
        table {
            thead { tr { th { "token subject" } th class="num" { "requests" } th { "last request" } } }
            tbody {
                @for (c, n, at) in &clients {
                    tr { td { a href={ "/ui/log?client=" (c) } { (c) } } td class="num" { (n) } td { (at.to_rfc3339()) } }
                }
            }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Tokens", Some(&op.0), "/ui/tokens", body),
    ))
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /ui/tokens/revoke`: revokes one token (as `DELETE /admin/v1/tokens/{jti}`,
/// with the operator's subject as the actor), then back to the page with a notice.
pub async fn revoke(
    req: HttpRequest,
    op: Operator,
    state: web::Data<AppState>,
    auth: web::Data<AuthContext>,
    sessions: web::Data<Sessions>,
    form: web::Form<Fields>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &op, &form)?;
    let jti = field(&form, "jti").unwrap_or("").trim().to_string();
    if jti.is_empty() {
        return Err(ApiError::BadRequest("name the token to revoke".into()).into());
    }
    let answer =
        crate::http::admin::revoke(&state, &auth, &sessions, jti, op.0.subject.clone()).await?;
    let jti = answer["token"]["jti"].as_str().unwrap_or_default();
    let location = format!(
        "/ui/tokens?revoked={}&already={}&sessions={}",
        encode(jti),
        u8::from(answer["already_revoked"].as_bool().unwrap_or(false)),
        answer["sessions_closed"].as_u64().unwrap_or(0)
    );
    Ok(super::secure(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish(),
    ))
}

/// `POST /ui/tokens/end-session`: ends one console session (audited).
pub async fn end_session(
    req: HttpRequest,
    op: Operator,
    state: web::Data<AppState>,
    sessions: web::Data<Sessions>,
    form: web::Form<Fields>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &op, &form)?;
    let handle = field(&form, "handle").unwrap_or("");
    if let Some(ended) = sessions.close_handle(handle) {
        audit_entry(
            &state,
            &op.0.subject,
            "ui.session_ended",
            json!({ "session": ended.handle, "operator": ended.subject }),
        )
        .await?;
    }
    Ok(super::secure(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/ui/tokens"))
            .finish(),
    ))
}
