//! The adoption and spend reports per downstream group, computed from the groups the
//! rules define (with their members, as the daemon recorded them) and the Analytics
//! API's answers. Pure: the caller fetches; this module only counts and renders.
//!
//! A member counts toward every group they hold (the API attributes a member's
//! activity and cost to each group they held that day), so group figures do not add
//! up to the org total.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::advisor::{advise, AdvisorInput, Window};
use crate::cowork::analytics::types::{parse_amount, CostBucket, UserActivity};
use crate::money::format_minor;
use crate::rules::{PoolSpec, SpendLimit};

/// A member of a downstream group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    /// Directory (SCIM) id.
    pub scim_id: String,
    /// `userName`.
    pub user_name: String,
    /// Downstream member id, once linked.
    pub user_id: Option<String>,
}

/// A downstream group as the rules define it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInput {
    /// Rule key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Downstream id, once created.
    pub group_id: Option<String>,
    /// The rules that fill it.
    pub rules: Vec<String>,
    /// Its per-member monthly limit.
    pub monthly_limit: Option<SpendLimit>,
    /// Its pooled budget.
    pub pool: Option<PoolSpec>,
    /// Its members.
    pub members: Vec<GroupMember>,
}

/// Adoption of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupAdoption {
    /// Rule key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// The rules that fill it.
    pub rules: Vec<String>,
    /// Members now.
    pub members: usize,
    /// Members with any activity on the latest day.
    pub active_1d: usize,
    /// ... in the last 7 days.
    pub active_7d: usize,
    /// ... in the last 30 days.
    pub active_30d: usize,
    /// Members with at least one Cowork session in the last 30 days.
    pub cowork_users_30d: usize,
    /// `cowork_users_30d / members` (0 without members).
    pub cowork_share: f64,
    /// Cowork sessions in the last 30 days.
    pub cowork_sessions_30d: u64,
    /// Sessions per Cowork user in the last 30 days.
    pub sessions_per_active_user: f64,
    /// Members with no activity in the last `inactive_days` days, by userName.
    pub inactive: Vec<String>,
}

/// `insights adoption`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdoptionReport {
    /// The latest day with engagement data.
    pub latest_day: NaiveDate,
    /// The 30-day window the counts cover.
    pub window: Window,
    /// The inactivity threshold in days (`--days`).
    pub inactive_days: u32,
    /// Per group, by key.
    pub groups: Vec<GroupAdoption>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        0.0
    } else {
        (a / b * 100.0).round() / 100.0
    }
}

/// The last day each downstream user was active, overall and per group, and their
/// Cowork sessions per group within `window`.
struct Activity {
    last_any: BTreeMap<String, NaiveDate>,
    last_in_group: BTreeMap<(String, String), NaiveDate>,
    cowork: BTreeMap<(String, String), u64>,
}

fn activity(rows: &[UserActivity], window: Window) -> Activity {
    let mut a = Activity {
        last_any: BTreeMap::new(),
        last_in_group: BTreeMap::new(),
        cowork: BTreeMap::new(),
    };
    for r in rows {
        let Some(last) = r.last_activity_date else {
            continue;
        };
        let e = a.last_any.entry(r.user.id.clone()).or_insert(last);
        *e = (*e).max(last);
        if let Some(g) = &r.rbac_group_id {
            let k = (g.clone(), r.user.id.clone());
            let e = a.last_in_group.entry(k.clone()).or_insert(last);
            *e = (*e).max(last);
            if window.contains(last) || r.starting_date.is_some_and(|s| s <= window.to) {
                *a.cowork.entry(k).or_insert(0) += r.cowork_sessions();
            }
        }
    }
    a
}

/// Adoption per group from `rows` (`/analytics/users` by group over the last
/// `max(30, inactive_days)` days ending `latest`).
pub fn adoption(
    groups: &[GroupInput],
    rows: &[UserActivity],
    latest: NaiveDate,
    inactive_days: u32,
) -> AdoptionReport {
    let window = Window::ending(latest, 30);
    let act = activity(rows, window);
    let since = |days: u32| Window::ending(latest, days).from;
    let out = groups
        .iter()
        .map(|g| {
            let gid = g.group_id.clone().unwrap_or_default();
            let in_group = |m: &GroupMember| {
                m.user_id
                    .as_ref()
                    .and_then(|u| act.last_in_group.get(&(gid.clone(), u.clone())).copied())
            };
            let active = |days: u32| {
                g.members
                    .iter()
                    .filter(|m| in_group(m).is_some_and(|d| d >= since(days)))
                    .count()
            };
            let sessions: Vec<u64> = g
                .members
                .iter()
                .filter_map(|m| m.user_id.as_ref())
                .filter_map(|u| act.cowork.get(&(gid.clone(), u.clone())).copied())
                .filter(|s| *s > 0)
                .collect();
            let cowork_users = sessions.len();
            let total: u64 = sessions.iter().sum();
            let inactive_since = since(inactive_days);
            let mut inactive: Vec<String> = g
                .members
                .iter()
                .filter(|m| {
                    m.user_id
                        .as_ref()
                        .and_then(|u| act.last_any.get(u))
                        .is_none_or(|d| *d < inactive_since)
                })
                .map(|m| m.user_name.clone())
                .collect();
            inactive.sort();
            GroupAdoption {
                key: g.key.clone(),
                name: g.name.clone(),
                rules: g.rules.clone(),
                members: g.members.len(),
                active_1d: active(1),
                active_7d: active(7),
                active_30d: active(30),
                cowork_users_30d: cowork_users,
                cowork_share: ratio(cowork_users as f64, g.members.len() as f64),
                cowork_sessions_30d: total,
                sessions_per_active_user: ratio(total as f64, cowork_users as f64),
                inactive,
            }
        })
        .collect();
    AdoptionReport {
        latest_day: latest,
        window,
        inactive_days,
        groups: out,
    }
}

/// An amount both ways: `$500.00` and minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    /// Minor units of the billing currency.
    pub minor: u64,
    /// As people read it.
    pub display: String,
}

impl Money {
    /// `minor` in `currency`.
    pub fn of(minor: u64, currency: &str) -> Self {
        Self {
            minor,
            display: format_minor(minor, currency),
        }
    }
}

/// The pool of a group as the spend report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    /// The budget.
    pub monthly: Money,
    /// Warn threshold share.
    pub warn_at: f64,
    /// Share of the pool spent this month.
    pub spent_share: f64,
    /// `ok`, `warn` or `capped`.
    pub level: &'static str,
}

/// Spend of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSpend {
    /// Rule key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// The rules that fill it.
    pub rules: Vec<String>,
    /// Members now.
    pub members: usize,
    /// Month-to-date cost (every product).
    pub month_to_date: Money,
    /// The group's per-member monthly limit now (`None`: it sets none).
    pub current_limit: Option<String>,
    /// The same in minor units (`None` when unset or unlimited).
    pub current_limit_minor: Option<u64>,
    /// The suggestion, when there is one.
    pub suggested: Option<Money>,
    /// The advisor's inputs and result, or why there is none (`no_advice`).
    #[serde(serialize_with = "advice_json")]
    pub advisor: Result<super::advisor::Advice, super::advisor::NoAdvice>,
    /// The pool, when the rules set one.
    pub pool: Option<PoolView>,
}

/// The advice as JSON: the [`Advice`](super::advisor::Advice) object, or
/// `{"no_advice": "no_active_users", "reason": "..."}`.
fn advice_json<S: serde::Serializer>(
    a: &Result<super::advisor::Advice, super::advisor::NoAdvice>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match a {
        Ok(advice) => advice.serialize(s),
        Err(why) => serde_json::json!({"no_advice": why, "reason": why.to_string()}).serialize(s),
    }
}

/// `insights spend`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendReport {
    /// Billing currency.
    pub currency: String,
    /// The month-to-date window (`YYYY-MM-01` to today, UTC).
    pub month: Window,
    /// The advisor's engagement window.
    pub engagement: Window,
    /// The advisor's cost window.
    pub cost: Window,
    /// Per group.
    pub groups: Vec<GroupSpend>,
}

/// Sums `buckets` per `rbac_group_id` (minor units, rounded up at the end).
pub fn cost_by_group(buckets: &[CostBucket]) -> BTreeMap<String, u64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for r in buckets.iter().flat_map(|b| &b.results) {
        if let (Some(g), Some(a)) = (&r.rbac_group_id, parse_amount(&r.amount)) {
            *sums.entry(g.clone()).or_insert(0.0) += a;
        }
    }
    sums.into_iter()
        .map(|(g, a)| (g, a.ceil() as u64))
        .collect()
}

/// What `spend` needs besides the groups.
#[derive(Debug, Clone)]
pub struct SpendInputs<'a> {
    /// Billing currency.
    pub currency: &'a str,
    /// The month so far.
    pub month: Window,
    /// Month-to-date cost per group id (every product).
    pub month_cost: BTreeMap<String, u64>,
    /// Engagement rows by group over `engagement`.
    pub rows: &'a [UserActivity],
    /// The engagement window.
    pub engagement: Window,
    /// Cowork cost per group id over `cost`.
    pub cowork_cost: BTreeMap<String, u64>,
    /// The cost window.
    pub cost: Window,
}

/// Spend and the advisor per group.
pub fn spend(groups: &[GroupInput], inp: &SpendInputs<'_>) -> SpendReport {
    let members_of = |g: &GroupInput| -> BTreeSet<String> {
        g.members.iter().filter_map(|m| m.user_id.clone()).collect()
    };
    let out = groups
        .iter()
        .map(|g| {
            let gid = g.group_id.clone().unwrap_or_default();
            let members = members_of(g);
            let rows: Vec<&UserActivity> = inp
                .rows
                .iter()
                .filter(|r| r.rbac_group_id.as_deref() == Some(gid.as_str()))
                .filter(|r| members.contains(&r.user.id))
                .collect();
            let sessions: u64 = rows.iter().map(|r| r.cowork_sessions()).sum();
            let active = rows.iter().filter(|r| r.cowork_sessions() > 0).count() as u64;
            let cowork_cost = inp.cowork_cost.get(&gid).copied().unwrap_or(0);
            let advisor = advise(AdvisorInput {
                sessions,
                active_users: active,
                engagement: inp.engagement,
                cost_minor: cowork_cost,
                cost_sessions: sessions,
                cost: inp.cost,
            });
            let spent = inp.month_cost.get(&gid).copied().unwrap_or(0);
            let pool = g.pool.map(|p| PoolView {
                monthly: Money::of(p.monthly, inp.currency),
                warn_at: p.warn_at(),
                spent_share: ratio(spent as f64, p.monthly as f64),
                level: if spent >= p.monthly {
                    "capped"
                } else if spent >= p.warn_threshold() {
                    "warn"
                } else {
                    "ok"
                },
            });
            GroupSpend {
                key: g.key.clone(),
                name: g.name.clone(),
                rules: g.rules.clone(),
                members: g.members.len(),
                month_to_date: Money::of(spent, inp.currency),
                current_limit: g.monthly_limit.map(|l| l.money(inp.currency)),
                current_limit_minor: match g.monthly_limit {
                    Some(SpendLimit::Amount(n)) => Some(n),
                    _ => None,
                },
                suggested: advisor
                    .as_ref()
                    .ok()
                    .map(|a| Money::of(a.suggested_monthly_minor, inp.currency)),
                advisor,
                pool,
            }
        })
        .collect();
    SpendReport {
        currency: inp.currency.to_owned(),
        month: inp.month,
        engagement: inp.engagement,
        cost: inp.cost,
        groups: out,
    }
}

/// The adoption report as a table.
pub fn render_adoption(r: &AdoptionReport) -> String {
    let mut s = format!(
        "Adoption per group, {} to {} (engagement data up to {}):\n",
        r.window.from, r.window.to, r.latest_day
    );
    s.push_str(&format!(
        "{:<24} {:>7} {:>5} {:>5} {:>6} {:>7} {:>12}  {}\n",
        "GROUP", "MEMBERS", "1D", "7D", "30D", "COWORK%", "SESS/USER", "RULES"
    ));
    for g in &r.groups {
        s.push_str(&format!(
            "{:<24} {:>7} {:>5} {:>5} {:>6} {:>6.0}% {:>12.2}  {}\n",
            g.name,
            g.members,
            g.active_1d,
            g.active_7d,
            g.active_30d,
            g.cowork_share * 100.0,
            g.sessions_per_active_user,
            g.rules.join(", ")
        ));
    }
    for g in &r.groups {
        if !g.inactive.is_empty() {
            s.push_str(&format!(
                "Inactive seats in {} (no activity in {} days): {}\n",
                g.name,
                r.inactive_days,
                g.inactive.join(", ")
            ));
        }
    }
    s
}

/// The spend report as a table, with the advisor's inputs.
pub fn render_spend(r: &SpendReport) -> String {
    let mut s = format!(
        "Spend per group, month to date ({} to {}):\n",
        r.month.from, r.month.to
    );
    s.push_str(&format!(
        "{:<24} {:>7} {:>14} {:>14} {:>14}  {:<22} {}\n",
        "GROUP", "MEMBERS", "MONTH TO DATE", "LIMIT NOW", "SUGGESTED", "POOL", "RULES"
    ));
    for g in &r.groups {
        let pool = g.pool.as_ref().map_or("-".to_owned(), |p| {
            format!(
                "{} {:.0}% {}",
                p.monthly.display,
                p.spent_share * 100.0,
                p.level
            )
        });
        s.push_str(&format!(
            "{:<24} {:>7} {:>14} {:>14} {:>14}  {:<22} {}\n",
            g.name,
            g.members,
            g.month_to_date.display,
            g.current_limit.as_deref().unwrap_or("none"),
            g.suggested.as_ref().map_or("-", |m| m.display.as_str()),
            pool,
            g.rules.join(", ")
        ));
    }
    s.push_str(&format!(
        "Advisor: sessions per user per week × cost per session × 4.3 × 1.25; sessions \
         measured {} to {}, Cowork cost {} to {}.\n",
        r.engagement.from, r.engagement.to, r.cost.from, r.cost.to
    ));
    for g in &r.groups {
        match &g.advisor {
            Ok(a) => s.push_str(&format!(
                "  {}: {} sessions by {} active users = {:.2}/user/week; {} over {} sessions = {}/session; × 4.3 × 1.25 = {}\n",
                g.name,
                a.input.sessions,
                a.input.active_users,
                a.sessions_per_user_per_week,
                format_minor(a.input.cost_minor, &r.currency),
                a.input.cost_sessions,
                format_minor(a.cost_per_session_minor.round() as u64, &r.currency),
                format_minor(a.suggested_monthly_minor, &r.currency),
            )),
            Err(why) => s.push_str(&format!("  {}: no suggestion: {why}\n", g.name)),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cowork::analytics::types::{AnalyticsUser, CostResult, ProductMetrics};

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn member(n: &str) -> GroupMember {
        GroupMember {
            scim_id: format!("scim-{n}"),
            user_name: format!("{n}@example.com"),
            user_id: Some(format!("user_{n}")),
        }
    }

    fn group() -> GroupInput {
        GroupInput {
            key: "pilot".into(),
            name: "Pilot".into(),
            group_id: Some("rbac_group_p".into()),
            rules: vec!["pilot".into()],
            monthly_limit: Some(SpendLimit::Amount(50_000)),
            pool: Some(PoolSpec {
                monthly: 10_000,
                warn_at_bp: 8_000,
            }),
            members: vec![member("a"), member("b"), member("c")],
        }
    }

    fn row(user: &str, last: &str, sessions: u64) -> UserActivity {
        UserActivity {
            user: AnalyticsUser {
                id: format!("user_{user}"),
                email_address: None,
            },
            starting_date: Some(day("2026-11-03")),
            ending_date: Some(day("2026-12-02")),
            rbac_group_id: Some("rbac_group_p".into()),
            last_activity_date: Some(day(last)),
            cowork_metrics: Some(ProductMetrics {
                distinct_session_count: sessions,
                ..ProductMetrics::default()
            }),
            ..UserActivity::default()
        }
    }

    #[test]
    fn adoption_counts_active_members_and_lists_inactive_seats_by_user_name() {
        let rows = vec![row("a", "2026-12-02", 6), row("b", "2026-11-20", 2)];
        let r = adoption(&[group()], &rows, day("2026-12-02"), 7);
        let g = &r.groups[0];
        assert_eq!(
            (g.members, g.active_1d, g.active_7d, g.active_30d),
            (3, 1, 1, 2)
        );
        assert_eq!(g.cowork_users_30d, 2);
        assert_eq!(g.cowork_share, 0.67);
        assert_eq!(g.sessions_per_active_user, 4.0);
        assert_eq!(g.inactive, vec!["b@example.com", "c@example.com"]);
        let text = render_adoption(&r);
        assert!(
            text.contains(
                "Inactive seats in Pilot (no activity in 7 days): b@example.com, c@example.com"
            ),
            "{text}"
        );
    }

    #[test]
    fn spend_shows_month_to_date_the_advice_with_its_inputs_and_the_pool() {
        let rows = vec![row("a", "2026-12-02", 30), row("b", "2026-11-20", 10)];
        let w = Window::ending(day("2026-12-02"), 28);
        let inp = SpendInputs {
            currency: "USD",
            month: Window {
                from: day("2026-12-01"),
                to: day("2026-12-03"),
            },
            month_cost: BTreeMap::from([("rbac_group_p".into(), 8_500)]),
            rows: &rows,
            engagement: w,
            cowork_cost: BTreeMap::from([("rbac_group_p".into(), 12_000)]),
            cost: w,
        };
        let r = spend(&[group()], &inp);
        let g = &r.groups[0];
        assert_eq!(g.month_to_date.display, "$85.00");
        assert_eq!(g.month_to_date.minor, 8_500);
        assert_eq!(g.current_limit.as_deref(), Some("$500.00"));
        // 40 sessions by 2 users over 4 weeks = 5/user/week; $120 / 40 = 300/session.
        // 5 × 300 × 4.3 × 1.25 = 8062.5 → 8063.
        let a = g.advisor.as_ref().unwrap();
        assert_eq!(a.sessions_per_user_per_week, 5.0);
        assert_eq!(a.suggested_monthly_minor, 8_063);
        assert_eq!(g.suggested.as_ref().unwrap().display, "$80.63");
        assert_eq!(g.pool.as_ref().unwrap().level, "warn");
        let text = render_spend(&r);
        assert!(text.contains("40 sessions by 2 active users"), "{text}");
        assert!(text.contains("2026-11-05 to 2026-12-02"), "{text}");
    }

    #[test]
    fn a_group_without_activity_gets_no_suggestion_and_says_why() {
        let w = Window::ending(day("2026-12-02"), 28);
        let inp = SpendInputs {
            currency: "USD",
            month: w,
            month_cost: BTreeMap::new(),
            rows: &[],
            engagement: w,
            cowork_cost: BTreeMap::new(),
            cost: w,
        };
        let r = spend(&[group()], &inp);
        assert!(r.groups[0].advisor.is_err());
        let json = serde_json::to_value(&r.groups[0]).unwrap();
        assert_eq!(json["advisor"]["no_advice"], "no_active_users");
        assert!(render_spend(&r).contains("no suggestion"));
    }

    #[test]
    fn cost_is_summed_per_group_from_fractional_amounts() {
        let b = CostBucket {
            results: vec![
                CostResult {
                    amount: "10.5".into(),
                    rbac_group_id: Some("g".into()),
                    ..CostResult::default()
                },
                CostResult {
                    amount: "0.6".into(),
                    rbac_group_id: Some("g".into()),
                    ..CostResult::default()
                },
            ],
            ..CostBucket::default()
        };
        assert_eq!(cost_by_group(&[b]), BTreeMap::from([("g".into(), 12)]));
    }
}
