//! The simulated Analytics API and cost reports (reference §1.4, §1.10), computed from
//! the usage posted through `POST /_sim/usage` and the simulator's clock:
//!
//! - `GET /analytics/users`: one row per member with activity (per group with
//!   `group_by[]=rbac_group_id`), for one `date` or a `starting_date`..`ending_date`
//!   range (at most 366 days, within the last 90 days); `filter[]=rbac_group_id:{id}`
//!   and `filter[]=user_id:{id}` (at most 100). Engagement for day D is available from
//!   10:00 UTC on D+1: asking for a later day is a 400 naming the latest day.
//! - `GET /analytics/cost_report`: cost in time buckets (`bucket_width` `1d|1h|1m`)
//!   over `starting_at`..`ending_at` (at most 31 days, no earlier than 2026-01-01,
//!   within the last 365 days), `group_by[]` `rbac_group_id|product`,
//!   `rbac_group_ids[]`, `products[]`, `user_ids[]`; `limit` counts buckets (max 31).
//! - `GET /analytics/user_cost_report`: cost per member over the range, the same
//!   filters plus `exclude_deleted_users`; `limit` counts rows (max 1000).
//!
//! A record's cost lands `cost_lag_minutes` after it is posted (the documented bound
//! is 4 hours; 0 by default) and counts toward every group the member held when it
//! was posted, so grouped rows do not add up to the org total. Pagination is the cursor style (`page` ↔
//! `next_page`), bound to the query. The dispatcher applies the 60 rpm limit.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::Value;

use super::page::CursorQuery;
use super::state::{ApiError, ApiResult, SimState, UsageRecord};
use crate::cowork::analytics::types::*;
use crate::cowork::types::CursorPage;

/// The request's query, as the dispatcher parsed it.
pub struct Query<'a> {
    /// Name/value pairs in order.
    pub pairs: &'a [(String, String)],
    /// The path below `/v1/organizations` (for cursor binding).
    pub path: &'a str,
    /// The simulator's page quirk.
    pub short_pages: bool,
}

impl Query<'_> {
    fn all(&self, name: &str) -> Vec<&str> {
        let bracketed = format!("{name}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| k == name || *k == bracketed)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    fn cursor(&self, default: usize, max: usize) -> ApiResult<CursorQuery> {
        let limit = match self.one("limit") {
            None => default,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        None,
                        &format!("limit must be between 1 and {max}"),
                    ))
                }
            },
        };
        Ok(CursorQuery::bound(
            self.path,
            self.pairs,
            limit,
            self.one("page"),
            self.short_pages,
        ))
    }

    fn group_by(&self, allowed: &[&str]) -> ApiResult<(bool, bool)> {
        let mut by_group = false;
        let mut by_product = false;
        for g in self.all("group_by") {
            match g {
                "rbac_group_id" if allowed.contains(&g) => by_group = true,
                "product" if allowed.contains(&g) => by_product = true,
                other => {
                    return Err(ApiError::invalid(
                        None,
                        &format!(
                            "group_by[] does not accept {other:?}; accepted: {}",
                            allowed.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok((by_group, by_product))
    }

    fn list(&self, name: &str) -> ApiResult<Vec<String>> {
        let v: Vec<String> = self.all(name).into_iter().map(str::to_owned).collect();
        if v.len() > 100 {
            return Err(ApiError::invalid(
                None,
                &format!("{name}[] may carry at most 100 values"),
            ));
        }
        Ok(v)
    }

    fn products(&self) -> ApiResult<Vec<String>> {
        let v = self.list("products")?;
        if let Some(bad) = v.iter().find(|p| !PRODUCTS.contains(&p.as_str())) {
            return Err(ApiError::invalid(
                None,
                &format!(
                    "products[] does not accept {bad:?}; accepted: {}",
                    PRODUCTS.join(", ")
                ),
            ));
        }
        Ok(v)
    }
}

fn page_of<T>(q: &CursorQuery, rows: Vec<T>) -> ApiResult<CursorPage<T>> {
    let start = q.start()?;
    let skip = start.after.map_or(0, |a| a.saturating_add(1));
    let items = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i as u64, r))
        .skip(usize::try_from(skip).unwrap_or(usize::MAX));
    Ok(q.finish(start, items))
}

fn to_value<T: serde::Serialize>(v: &T) -> ApiResult<Value> {
    serde_json::to_value(v).map_err(|_| ApiError::invalid(None, "answer could not be encoded"))
}

fn day(s: &str, name: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(None, &format!("{name} must be a date (YYYY-MM-DD)")))
}

fn instant(s: &str, name: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid(None, &format!("{name} must be an RFC 3339 timestamp")))
}

fn amount(minor: u64) -> String {
    minor.to_string()
}

/// Routes `GET /analytics/...`.
pub fn route(
    state: &SimState,
    segs: &[&str],
    q: &Query<'_>,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    match segs {
        ["users"] => users(state, q, now),
        ["cost_report"] => cost_report(state, q, now),
        ["user_cost_report"] => user_cost_report(state, q, now),
        _ => Err(ApiError::not_found("no such endpoint")),
    }
}

// ------------------------------------------------------------------ engagement

fn users(state: &SimState, q: &Query<'_>, now: DateTime<Utc>) -> ApiResult<Value> {
    let (from, to, single) = match (q.one("date"), q.one("starting_date"), q.one("ending_date")) {
        (Some(d), None, None) => {
            let d = day(d, "date")?;
            (d, d, true)
        }
        (None, Some(a), Some(b)) => (day(a, "starting_date")?, day(b, "ending_date")?, false),
        _ => {
            return Err(ApiError::invalid(
                None,
                "give either date or both starting_date and ending_date",
            ))
        }
    };
    let latest = latest_engagement_day(now);
    if to > latest {
        return Err(ApiError::invalid(
            None,
            &format!("data for {to} is not available yet; the latest available day is {latest}"),
        ));
    }
    if from > to {
        return Err(ApiError::invalid(
            None,
            "starting_date is after ending_date",
        ));
    }
    if (to - from).num_days() + 1 > MAX_ENGAGEMENT_RANGE_DAYS {
        return Err(ApiError::invalid(None, "a range covers at most 366 days"));
    }
    let oldest = latest - Duration::days(ENGAGEMENT_RETENTION_DAYS - 1);
    if from < oldest.max(earliest_day()) {
        return Err(ApiError::invalid(
            None,
            &format!(
                "engagement data covers the last {ENGAGEMENT_RETENTION_DAYS} days: the earliest day is {}",
                oldest.max(earliest_day())
            ),
        ));
    }
    let (by_group, _) = q.group_by(&["rbac_group_id"])?;
    let filters = q.list("filter")?;
    let mut group_filter = Vec::new();
    let mut user_filter = Vec::new();
    for f in &filters {
        match f.split_once(':') {
            Some(("rbac_group_id", v)) => group_filter.push(v.to_owned()),
            Some(("user_id", v)) => user_filter.push(v.to_owned()),
            Some(("project_id", _)) => {}
            _ => {
                return Err(ApiError::invalid(
                    None,
                    "filter[] takes rbac_group_id:{id}, user_id:{id} or project_id:{id}",
                ))
            }
        }
    }
    let cursor = q.cursor(20, 1000)?;

    // (user order, group id) → (row, last activity)
    let order = creation_order(state);
    let mut rows: BTreeMap<(u64, String, Option<String>), UserActivity> = BTreeMap::new();
    for r in state.usage() {
        if r.date > to {
            continue;
        }
        if !user_filter.is_empty() && !user_filter.contains(&r.user_id) {
            continue;
        }
        let held: Vec<&super::state::UsageGroup> = r
            .groups
            .iter()
            .filter(|g| group_filter.is_empty() || group_filter.contains(&g.id))
            .collect();
        if !group_filter.is_empty() && held.is_empty() {
            continue;
        }
        let keys: Vec<Option<(&str, &str)>> = if by_group {
            if held.is_empty() {
                vec![None]
            } else {
                held.iter()
                    .map(|g| Some((g.id.as_str(), g.name.as_str())))
                    .collect()
            }
        } else {
            vec![None]
        };
        let seq = order.get(r.user_id.as_str()).copied().unwrap_or(u64::MAX);
        for k in keys {
            let key = (seq, r.user_id.clone(), k.map(|(id, _)| id.to_owned()));
            let row = rows.entry(key).or_insert_with(|| UserActivity {
                user: AnalyticsUser {
                    id: r.user_id.clone(),
                    email_address: Some(r.email.clone()),
                },
                date: single.then_some(from),
                starting_date: (!single).then_some(from),
                ending_date: (!single).then_some(to),
                rbac_group_id: k.map(|(id, _)| id.to_owned()),
                rbac_group_name: k.map(|(_, name)| name.to_owned()),
                ..UserActivity::default()
            });
            if r.sessions > 0 {
                row.last_activity_date = row.last_activity_date.max(Some(r.date));
            }
            if r.date < from {
                continue;
            }
            add_engagement(row, r);
        }
    }
    // Rows with activity in the range only.
    let data: Vec<UserActivity> = rows
        .into_values()
        .filter(|row| {
            [
                &row.cowork_metrics,
                &row.chat_metrics,
                &row.claude_code_metrics,
                &row.design_metrics,
                &row.office_metrics,
            ]
            .iter()
            .any(|m| m.as_ref().is_some_and(|m| m.distinct_session_count > 0))
        })
        .collect();
    to_value(&page_of(&cursor, data)?)
}

fn add_engagement(row: &mut UserActivity, r: &UsageRecord) {
    let slot = match r.product.as_str() {
        "cowork" => &mut row.cowork_metrics,
        "chat" => &mut row.chat_metrics,
        "claude_code" => &mut row.claude_code_metrics,
        "claude_design" => &mut row.design_metrics,
        "office_agent" => &mut row.office_metrics,
        _ => return,
    };
    let m = slot.get_or_insert_with(ProductMetrics::default);
    m.distinct_session_count = m.distinct_session_count.saturating_add(r.sessions);
}

// ------------------------------------------------------------------------ cost

struct CostRange {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by_group: bool,
    by_product: bool,
    groups: Vec<String>,
    products: Vec<String>,
    users: Vec<String>,
}

fn cost_range(q: &Query<'_>, now: DateTime<Utc>) -> ApiResult<CostRange> {
    let Some(start) = q.one("starting_at") else {
        return Err(ApiError::invalid(None, "starting_at is required"));
    };
    let from = instant(start, "starting_at")?;
    let earliest = earliest_day().and_time(NaiveTime::MIN).and_utc();
    if from < earliest {
        return Err(ApiError::invalid(
            None,
            "starting_at must be no earlier than 2026-01-01T00:00:00Z",
        ));
    }
    if from < now - Duration::days(365) {
        return Err(ApiError::invalid(
            None,
            "starting_at must be within the last 365 days",
        ));
    }
    if from > now {
        return Err(ApiError::invalid(None, "starting_at is in the future"));
    }
    let to = match q.one("ending_at") {
        Some(e) => instant(e, "ending_at")?,
        None => now.min(from + Duration::days(MAX_COST_DAYS)),
    };
    if to <= from {
        return Err(ApiError::invalid(
            None,
            "ending_at must be after starting_at",
        ));
    }
    if to - from > Duration::days(MAX_COST_DAYS) {
        return Err(ApiError::invalid(
            None,
            "a cost report covers at most 31 days a request",
        ));
    }
    let (by_group, by_product) = q.group_by(&["rbac_group_id", "product"])?;
    Ok(CostRange {
        from,
        to,
        by_group,
        by_product,
        groups: q.list("rbac_group_ids")?,
        products: q.products()?,
        users: q.list("user_ids")?,
    })
}

type CostKey = (Option<String>, Option<String>);

/// The (group, product) lines a record adds its cost to under `range`.
fn cost_keys(r: &UsageRecord, range: &CostRange) -> Vec<CostKey> {
    if !range.products.is_empty() && !range.products.contains(&r.product) {
        return Vec::new();
    }
    if !range.users.is_empty() && !range.users.contains(&r.user_id) {
        return Vec::new();
    }
    let held: Vec<&str> = r
        .groups
        .iter()
        .map(|g| g.id.as_str())
        .filter(|g| range.groups.is_empty() || range.groups.iter().any(|x| x == g))
        .collect();
    if !range.groups.is_empty() && held.is_empty() {
        return Vec::new();
    }
    let product = range.by_product.then(|| r.product.clone());
    if range.by_group {
        if held.is_empty() {
            vec![(None, product)]
        } else {
            held.into_iter()
                .map(|g| (Some(g.to_owned()), product.clone()))
                .collect()
        }
    } else {
        vec![(None, product)]
    }
}

fn record_at(r: &UsageRecord) -> DateTime<Utc> {
    r.date.and_time(NaiveTime::MIN).and_utc()
}

/// Whether a record's cost counts in a report over `range` asked at `now`: a day in
/// the range, a cost, and landed.
fn costs_in(r: &UsageRecord, range: &CostRange, now: DateTime<Utc>) -> bool {
    let at = record_at(r);
    at >= range.from && at < range.to && r.cost_minor > 0 && r.cost_landed(now)
}

fn cost_report(state: &SimState, q: &Query<'_>, now: DateTime<Utc>) -> ApiResult<Value> {
    let range = cost_range(q, now)?;
    let width = match q.one("bucket_width").unwrap_or("1d") {
        "1d" => Duration::days(1),
        "1h" => Duration::hours(1),
        "1m" => Duration::minutes(1),
        _ => return Err(ApiError::invalid(None, "bucket_width must be 1d, 1h or 1m")),
    };
    let cursor = q.cursor(7, 31)?;
    // Buckets snap to the start of the day/hour/minute (UTC).
    let secs = width.num_seconds().max(1);
    let snap = |t: DateTime<Utc>| {
        DateTime::from_timestamp(t.timestamp().div_euclid(secs) * secs, 0).unwrap_or(t)
    };
    let mut buckets: Vec<(DateTime<Utc>, BTreeMap<CostKey, u64>)> = Vec::new();
    let mut t = snap(range.from);
    while t < range.to && buckets.len() < 50_000 {
        buckets.push((t, BTreeMap::new()));
        t += width;
    }
    for r in state.usage() {
        if !costs_in(r, &range, now) {
            continue;
        }
        let at = record_at(r);
        let Ok(idx) = buckets.binary_search_by(|(b, _)| {
            if *b + width <= at {
                std::cmp::Ordering::Less
            } else if *b > at {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) else {
            continue;
        };
        for key in cost_keys(r, &range) {
            let line = buckets[idx].1.entry(key).or_insert(0);
            *line = line.saturating_add(r.cost_minor);
        }
    }
    let currency = state.billing_currency().to_owned();
    let data: Vec<CostBucket> = buckets
        .into_iter()
        .map(|(start, lines)| CostBucket {
            starting_at: start,
            ending_at: start + width,
            results: lines
                .into_iter()
                .map(|((group, product), minor)| CostResult {
                    amount: amount(minor),
                    currency: Some(currency.clone()),
                    rbac_group_id: group,
                    product,
                })
                .collect(),
        })
        .collect();
    to_value(&page_of(&cursor, data)?)
}

fn user_cost_report(state: &SimState, q: &Query<'_>, now: DateTime<Utc>) -> ApiResult<Value> {
    let range = cost_range(q, now)?;
    let exclude_deleted = match q.one("exclude_deleted_users") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                None,
                "exclude_deleted_users must be true or false",
            ))
        }
    };
    let cursor = q.cursor(20, 1000)?;
    let order = creation_order(state);
    let mut rows: BTreeMap<(u64, String, CostKey), (String, u64)> = BTreeMap::new();
    for r in state.usage() {
        if !costs_in(r, &range, now) {
            continue;
        }
        let seq = order.get(r.user_id.as_str()).copied();
        if exclude_deleted && seq.is_none() {
            continue;
        }
        for key in cost_keys(r, &range) {
            let row = rows
                .entry((seq.unwrap_or(u64::MAX), r.user_id.clone(), key))
                .or_insert_with(|| (r.email.clone(), 0));
            row.1 = row.1.saturating_add(r.cost_minor);
        }
    }
    let currency = state.billing_currency().to_owned();
    let data: Vec<UserCost> = rows
        .into_iter()
        .map(
            |((_, user_id, (group, product)), (email, minor))| UserCost {
                user: AnalyticsUser {
                    id: user_id,
                    email_address: Some(email),
                },
                amount: amount(minor),
                currency: Some(currency.clone()),
                rbac_group_id: group,
                product,
            },
        )
        .collect();
    to_value(&page_of(&cursor, data)?)
}

/// Each user's place in creation order, which orders the per-user reports.
fn creation_order(state: &SimState) -> BTreeMap<&str, u64> {
    state
        .users()
        .by_seq()
        .iter()
        .map(|(seq, u)| (u.id.as_str(), *seq))
        .collect()
}
