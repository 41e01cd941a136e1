//! `GET /ui/insights`: adoption and spend per downstream group as server-rendered
//! SVG charts, each beside a table of the same figures; the spend advisor's inputs
//! and windows; inactive seats by userName. `?days=N` sets the inactivity window.
//!
//! The reports are the ones `GET /admin/v1/insights/*` answers
//! ([`Insights`](crate::insights::service::Insights)). When the analytics side
//! cannot answer (no key, the Analytics API down or refusing the key, no rules yet)
//! the page says so in words and still renders; only bad input is a 400.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::chart::{self, Alt, Bar, Category, Meter, Series, FILLS};
use super::layout::{notice, page};
use super::{html, Operator, UiError};
use crate::cowork::CoworkError;
use crate::http::AppState;
use crate::insights::report::{AdoptionReport, GroupSpend, SpendReport};
use crate::insights::service::MAX_DAYS;
use crate::insights::InsightsError;
use crate::money::format_minor;

/// The inactivity window when the form does not set one.
const DEFAULT_DAYS: u32 = 30;

#[derive(Debug, Deserialize)]
pub struct InsightsQuery {
    days: Option<String>,
}

/// `days` as the form sent it: empty or absent is the default; otherwise a whole
/// number from 1 to [`MAX_DAYS`].
pub fn parse_days(raw: Option<&str>) -> Result<u32, String> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(DEFAULT_DAYS);
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_DAYS).contains(&n) => Ok(n),
        _ => Err(format!(
            "The inactivity window must be a whole number of days from 1 to {MAX_DAYS} \
             (engagement data reaches back {MAX_DAYS} days)."
        )),
    }
}

/// What an operator reads when the analytics side cannot answer. The cause goes to
/// the log (ids and status codes only: these errors carry no personal data).
fn explain(e: &InsightsError) -> String {
    match e {
        InsightsError::NoKey => "Insights need an Analytics API key: set [insights] \
             analytics_api_key_file to a key with the read:analytics scope."
            .into(),
        InsightsError::NoRules => "No rule table has been applied yet, so there are no \
             groups to report on: apply one with cowork-sync rules apply FILE."
            .into(),
        InsightsError::BadRequest(m) => m.clone(),
        InsightsError::Analytics(CoworkError::Unauthorized { .. }) => {
            "The Analytics API refused the key: it needs the read:analytics scope.".into()
        }
        InsightsError::Analytics(c) if c.is_retryable() => {
            let why = match c {
                CoworkError::Transient { reason, .. } => reason.as_str(),
                _ => "rate limited",
            };
            format!(
                "The Analytics API is unavailable ({why}); the figures appear here when it answers again."
            )
        }
        InsightsError::Analytics(c) => format!(
            "The Analytics API could not answer: {}.",
            c.message_for("the Analytics API")
        ),
        InsightsError::Store(_) => {
            "The daemon could not read its store; the cause is in its log.".into()
        }
    }
}

fn shown<T>(what: &str, r: Result<T, InsightsError>) -> Result<T, String> {
    r.map_err(|e| {
        if matches!(e, InsightsError::Store(_)) {
            tracing::error!(error = %e, report = what, "console insights: the store failed");
        } else {
            tracing::warn!(error = %e, report = what, "console insights: report unavailable");
        }
        explain(&e)
    })
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// `GET /ui/insights?days=N`.
pub async fn insights(
    op: Operator,
    state: web::Data<AppState>,
    query: web::Query<InsightsQuery>,
) -> Result<HttpResponse, UiError> {
    let raw = query.days.clone().unwrap_or_default();
    let days = match parse_days(Some(&raw)) {
        Ok(d) => d,
        Err(message) => {
            let body = html! {
                (form(&raw))
                p role="alert" class="notice bad" { (message) }
            };
            return Ok(html(
                StatusCode::BAD_REQUEST,
                page("Insights", Some(&op.0), "/ui/insights", body),
            ));
        }
    };
    let (adoption, spend) = match state.insights.as_deref() {
        Some(svc) => {
            let (a, s) = tokio::join!(svc.adoption(days), svc.spend());
            (shown("adoption", a), shown("spend", s))
        }
        None => {
            let why = explain(&InsightsError::NoKey);
            (Err(why.clone()), Err(why))
        }
    };
    let body = html! {
        p { "Adoption and spend per downstream group, from the Analytics API and the cost report. "
            "Engagement for a day arrives the next day; cost arrives within hours and is revised for 30 days. "
            "A member counts toward every group they hold, so the groups do not add up to the org." }
        (form(&days.to_string()))
        h2 { "Adoption" }
        @match &adoption {
            Ok(r) => (adoption_section(r)),
            Err(m) => (notice(m, false)),
        }
        h2 { "Spend" }
        @match &spend {
            Ok(r) => (spend_section(r)),
            Err(m) => (notice(m, false)),
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Insights", Some(&op.0), "/ui/insights", body),
    ))
}

fn form(days: &str) -> Markup {
    html! {
        form method="get" action="/ui/insights" class="row" {
            label for="days" { "Inactive seats: no activity in" }
            input type="number" id="days" name="days" min="1" max=(MAX_DAYS) value=(days);
            span { "days" }
            button type="submit" { "Show" }
        }
    }
}

const ADOPTION_SERIES: [Series; 5] = [
    Series {
        name: "members",
        fill: FILLS[0],
    },
    Series {
        name: "active, 30 days",
        fill: FILLS[1],
    },
    Series {
        name: "active, 7 days",
        fill: FILLS[2],
    },
    Series {
        name: "active, latest day",
        fill: FILLS[3],
    },
    Series {
        name: "Cowork users, 30 days",
        fill: FILLS[4],
    },
];

fn adoption_section(r: &AdoptionReport) -> Markup {
    let count = |n: usize| Some(Bar::new(n as f64, n.to_string()));
    let categories: Vec<Category> = r
        .groups
        .iter()
        .map(|g| Category {
            label: g.name.clone(),
            bars: vec![
                count(g.members),
                count(g.active_30d),
                count(g.active_7d),
                count(g.active_1d),
                Some(Bar::new(
                    g.cowork_users_30d as f64,
                    format!("{} ({})", g.cowork_users_30d, percent(g.cowork_share)),
                )),
            ],
        })
        .collect();
    let desc = format!(
        "Per downstream group: members, members active in the last 30 days, 7 days and on \
         the latest day, and members with a Cowork session in the last 30 days (with their \
         share of the members), {} to {}. The table below gives the same figures.",
        r.window.from, r.window.to
    );
    html! {
        p { "Engagement " (r.window.from) " to " (r.window.to) " (the latest day with data: " (r.latest_day) ")." }
        (chart::grouped_bars(Alt { id: "adoption-chart", title: "Adoption per group", desc: &desc }, &ADOPTION_SERIES, &categories))
        table id="adoption-table" {
            caption { "Adoption per group, " (r.window.from) " to " (r.window.to) }
            thead { tr {
                th scope="col" { "group" } th scope="col" { "rules" }
                th scope="col" class="num" { "members" } th scope="col" class="num" { "active, latest day" }
                th scope="col" class="num" { "active, 7 days" } th scope="col" class="num" { "active, 30 days" }
                th scope="col" class="num" { "Cowork users, 30 days" } th scope="col" class="num" { "share with a Cowork session" }
                th scope="col" class="num" { "sessions per Cowork user" }
            } }
            tbody {
                @for g in &r.groups {
                    tr {
                        th scope="row" { (g.name) }
                        td { (g.rules.join(", ")) }
                        td class="num" { (g.members) }
                        td class="num" { (g.active_1d) }
                        td class="num" { (g.active_7d) }
                        td class="num" { (g.active_30d) }
                        td class="num" { (g.cowork_users_30d) }
                        td class="num" { (percent(g.cowork_share)) }
                        td class="num" { (format!("{:.2}", g.sessions_per_active_user)) }
                    }
                }
            }
        }
        h3 { "Inactive seats (no activity in " (r.inactive_days) " days)" }
        @if r.groups.iter().all(|g| g.inactive.is_empty()) {
            p class="ok" { "Every member was active in the last " (r.inactive_days) " days." }
        } @else {
            table id="inactive-table" {
                thead { tr { th scope="col" { "group" } th scope="col" class="num" { "seats" } th scope="col" { "userName" } } }
                tbody {
                    @for g in r.groups.iter().filter(|g| !g.inactive.is_empty()) {
                        tr {
                            th scope="row" { (g.name) }
                            td class="num" { (g.inactive.len()) }
                            td { (g.inactive.join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

const SPEND_SERIES: [Series; 3] = [
    Series {
        name: "month to date",
        fill: FILLS[0],
    },
    Series {
        name: "suggested × members",
        fill: FILLS[1],
    },
    Series {
        name: "limit now × members",
        fill: FILLS[2],
    },
];

/// `per_member × members` as a bar (`None` when there is no figure).
fn times_members(per_member: Option<u64>, members: usize, currency: &str) -> Option<Bar> {
    let total = per_member?.saturating_mul(members as u64);
    Some(Bar::new(total as f64, format_minor(total, currency)))
}

fn spend_categories(r: &SpendReport) -> Vec<Category> {
    r.groups
        .iter()
        .map(|g| Category {
            label: g.name.clone(),
            bars: vec![
                Some(Bar::new(
                    g.month_to_date.minor as f64,
                    g.month_to_date.display.clone(),
                )),
                times_members(
                    g.suggested.as_ref().map(|m| m.minor),
                    g.members,
                    &r.currency,
                ),
                times_members(g.current_limit_minor, g.members, &r.currency),
            ],
        })
        .collect()
}

fn total_text(per_member: Option<u64>, members: usize, currency: &str) -> String {
    times_members(per_member, members, currency).map_or_else(|| "-".into(), |b| b.label)
}

fn spend_section(r: &SpendReport) -> Markup {
    let desc = format!(
        "Per downstream group: the cost so far this month ({} to {}), the spend advisor's \
         suggested per-member monthly limit times the members, and the group's current \
         per-member limit times the members, in {}. The table below gives the same figures.",
        r.month.from, r.month.to, r.currency
    );
    html! {
        p { "Month to date: " (r.month.from) " to " (r.month.to) ", every product, in " (r.currency) "." }
        (chart::grouped_bars(Alt { id: "spend-chart", title: "Spend per group", desc: &desc }, &SPEND_SERIES, &spend_categories(r)))
        table id="spend-table" {
            caption { "Spend per group, month to date" }
            thead { tr {
                th scope="col" { "group" } th scope="col" class="num" { "members" }
                th scope="col" class="num" { "month to date" }
                th scope="col" class="num" { "limit now, per member" } th scope="col" class="num" { "limit now × members" }
                th scope="col" class="num" { "suggested, per member" } th scope="col" class="num" { "suggested × members" }
                th scope="col" { "pool" }
            } }
            tbody {
                @for g in &r.groups {
                    tr {
                        th scope="row" { (g.name) }
                        td class="num" { (g.members) }
                        td class="num" { (g.month_to_date.display) }
                        td class="num" { (g.current_limit.as_deref().unwrap_or("none")) }
                        td class="num" { (total_text(g.current_limit_minor, g.members, &r.currency)) }
                        td class="num" { (g.suggested.as_ref().map_or("-", |m| m.display.as_str())) }
                        td class="num" { (total_text(g.suggested.as_ref().map(|m| m.minor), g.members, &r.currency)) }
                        td { (pool_text(g)) }
                    }
                }
            }
        }
        (pool_section(r))
        (advisor_section(r))
    }
}

/// The pooled budgets: per group with a pool, its month-to-date cost against the
/// pool as a meter (with the warning threshold), and the level.
fn pool_section(r: &SpendReport) -> Markup {
    let meters: Vec<Meter> = r
        .groups
        .iter()
        .filter_map(|g| {
            let p = g.pool.as_ref()?;
            Some(Meter {
                label: g.name.clone(),
                spent: g.month_to_date.minor as f64,
                total: p.monthly.minor as f64,
                warn_at: Some(p.warn_at),
                text: pool_text(g),
            })
        })
        .collect();
    if meters.is_empty() {
        return html! {};
    }
    let desc = "Per group with a pooled budget: the cost so far this month against the \
                pool, a tick at the warning threshold, and the level (ok, warn, or capped \
                when the pool is spent and its members are capped). The spend table gives \
                the same figures.";
    html! {
        h3 { "Pooled budgets" }
        p { "A pool is a monthly budget for the whole group: at its warning threshold the daemon warns; "
            "when it is spent, each member is capped at what they have spent so far until the month turns or the pool grows." }
        (chart::meters(Alt { id: "pool-chart", title: "Pooled budgets, month to date", desc }, &meters))
    }
}

fn pool_text(g: &GroupSpend) -> String {
    g.pool.as_ref().map_or_else(
        || "-".into(),
        |p| {
            format!(
                "{} of {} ({}), {}; warns at {}",
                g.month_to_date.display,
                p.monthly.display,
                percent(p.spent_share),
                p.level,
                percent(p.warn_at)
            )
        },
    )
}

fn advisor_section(r: &SpendReport) -> Markup {
    html! {
        h3 { "The spend advisor" }
        p { "Suggested per-member monthly limit = sessions per user per week × cost per session × 4.3 weeks × 1.25 headroom. "
            "Sessions and active users measured " (r.engagement.from) " to " (r.engagement.to)
            "; Cowork cost " (r.cost.from) " to " (r.cost.to) "." }
        table id="advisor-table" {
            caption { "The advisor's inputs per group" }
            thead { tr {
                th scope="col" { "group" } th scope="col" class="num" { "Cowork sessions" }
                th scope="col" class="num" { "active users" } th scope="col" class="num" { "sessions per user per week" }
                th scope="col" class="num" { "Cowork cost" } th scope="col" class="num" { "cost per session" }
                th scope="col" class="num" { "suggested, per member" }
            } }
            tbody {
                @for g in &r.groups {
                    tr {
                        th scope="row" { (g.name) }
                        @match &g.advisor {
                            Ok(a) => {
                                td class="num" { (a.input.sessions) }
                                td class="num" { (a.input.active_users) }
                                td class="num" { (format!("{:.2}", a.sessions_per_user_per_week)) }
                                td class="num" { (format_minor(a.input.cost_minor, &r.currency)) }
                                td class="num" { (format_minor(a.cost_per_session_minor.round() as u64, &r.currency)) }
                                td class="num" { (format_minor(a.suggested_monthly_minor, &r.currency)) }
                            },
                            Err(why) => td colspan="6" class="muted" { "no suggestion: " (why) },
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_30_and_must_be_a_whole_number_from_1_to_90() {
        assert_eq!(parse_days(None), Ok(30));
        assert_eq!(parse_days(Some(" ")), Ok(30));
        assert_eq!(parse_days(Some("7")), Ok(7));
        assert_eq!(parse_days(Some("90")), Ok(90));
        for bad in ["0", "91", "-1", "7.5", "seven", "99999999999"] {
            let e = parse_days(Some(bad)).unwrap_err();
            assert!(e.contains("from 1 to 90"), "{bad}: {e}");
        }
    }

    #[test]
    fn analytics_failures_read_as_sentences_naming_the_fix() {
        assert!(explain(&InsightsError::NoKey).contains("analytics_api_key_file"));
        assert!(explain(&InsightsError::NoRules).contains("cowork-sync rules apply"));
        let down = explain(&InsightsError::Analytics(CoworkError::Transient {
            reason: "connection refused".into(),
            status: None,
            request_id: None,
        }));
        assert_eq!(
            down,
            "The Analytics API is unavailable (connection refused); the figures appear here when it answers again."
        );
        let other = explain(&InsightsError::Analytics(CoworkError::Other {
            status: 402,
            error_type: "billing_error".into(),
            message: "usage credits are off".into(),
            request_id: None,
        }));
        assert!(!other.contains("cowork admin API"), "{other}");
        assert!(other.contains("the Analytics API error 402"), "{other}");
    }

    #[test]
    fn per_member_figures_are_multiplied_by_the_members_as_money() {
        let b = times_members(Some(50_000), 3, "USD").unwrap();
        assert_eq!((b.value, b.label.as_str()), (150_000.0, "$1,500.00"));
        assert!(times_members(None, 3, "USD").is_none());
        assert_eq!(total_text(None, 3, "USD"), "-");
    }
}
