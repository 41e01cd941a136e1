//! The console's page shell: document head, navigation, the sign-out form, error
//! pages, and the one stylesheet (served from the binary; no third-party assets).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

use super::session::Session;

/// The pages in the navigation: path and label.
pub const NAV: &[(&str, &str)] = &[
    ("/ui/", "Overview"),
    ("/ui/held", "Held removals"),
    ("/ui/runs", "Runs and drift"),
    ("/ui/plan", "Plan preview"),
    ("/ui/user", "User"),
    ("/ui/log", "Provisioning log"),
    ("/ui/audit", "Audit"),
    ("/ui/rules", "Rules"),
    ("/ui/tokens", "Tokens"),
    ("/ui/insights", "Insights"),
];

const CSS: &str = include_str!("console.css");

/// `GET /ui/console.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(CSS)
}

/// A hidden CSRF field for a form of this session.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A full page: `current` is the navigation entry to mark.
pub fn page(title: &str, session: Option<&Session>, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cowork-sync" }
                link rel="stylesheet" href="/ui/console.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    span class="brand" { "cowork-sync" }
                    @if let Some(s) = session {
                        nav aria-label="Console" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        @if *path == current {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form class="signout" method="post" action="/ui/sign-out" {
                            (csrf(s))
                            span { "Signed in as " strong { (s.subject) } }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An error page (no navigation: it may be shown without a session).
pub fn error_page(status: StatusCode, detail: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        "",
        html! {
            p role="alert" class="bad" { (detail) }
            p { a href="/ui/" { "Back to the console" } }
        },
    )
}

/// A badge for a verdict word (`ok`, `degraded`, `fail`, outcomes...).
pub fn badge(word: &str) -> Markup {
    let class = match word {
        "ok" | "applied" | "none" => "ok",
        "degraded" | "held" | "refused" | "dry_run" | "skipped" | "pending" | "warn" => "warn",
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (word) } }
}

/// A notice after an action.
pub fn notice(text: &str, good: bool) -> Markup {
    html! { p role="status" class=(if good { "notice ok" } else { "notice bad" }) { (text) } }
}
