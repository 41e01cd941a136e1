//! Wire types of the Claude Enterprise Analytics API and its cost reports
//! (reference §1.4, §1.10): `GET /v1/organizations/analytics/users`, `cost_report`
//! and `user_cost_report`, as the client reads them and the simulator writes them.
//!
//! Amounts are decimal strings in minor units of the billing currency and may be
//! fractional (`"12050.5"`); [`parse_amount`] reads them. Unknown fields are ignored
//! and missing optional ones default, so a richer answer from the real API still
//! parses. Imports nothing of ours.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Every product the cost reports know (`products[]`), as documented.
pub const PRODUCTS: [&str; 7] = [
    "chat",
    "claude-tag",
    "claude_code",
    "claude_design",
    "claude_in_chrome",
    "cowork",
    "office_agent",
];

/// Cost data is not available before this day.
pub const EARLIEST_DAY: &str = "2026-01-01";

/// The most days one cost-report request may cover.
pub const MAX_COST_DAYS: i64 = 31;

/// The most days one engagement range (`starting_date`..`ending_date`) may cover.
pub const MAX_ENGAGEMENT_RANGE_DAYS: i64 = 366;

/// How far back engagement data reaches.
pub const ENGAGEMENT_RETENTION_DAYS: i64 = 90;

/// Cost data may be revised for this many days.
pub const COST_REVISION_DAYS: i64 = 30;

/// The longest a day's cost takes to land in the cost reports (4 hours).
pub const MAX_COST_LAG_MINUTES: u32 = 240;

/// Engagement for day D is aggregated at this hour (UTC) of day D+1.
pub const ENGAGEMENT_READY_HOUR: u32 = 10;

/// The first day analytics data exists for.
pub fn earliest_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The latest day whose engagement data is available at `now`: yesterday from
/// 10:00 UTC on, the day before yesterday until then.
pub fn latest_engagement_day(now: DateTime<Utc>) -> NaiveDate {
    use chrono::Timelike;
    let back = if now.hour() >= ENGAGEMENT_READY_HOUR {
        1
    } else {
        2
    };
    now.date_naive() - chrono::Duration::days(back)
}

/// Reads a decimal minor-units amount (`"50000"`, `"12050.5"`); `None` when it is
/// not a non-negative number.
pub fn parse_amount(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A user as the analytics answers name them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsUser {
    /// The member's id (`user_01…`).
    pub id: String,
    /// Their email address.
    #[serde(default)]
    pub email_address: Option<String>,
}

/// One product's engagement counters in an activity row (`cowork_metrics`,
/// `chat_metrics`, …). The Cowork block carries more counters; the ones the daemon
/// does not use are kept in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductMetrics {
    /// Distinct sessions.
    #[serde(default)]
    pub distinct_session_count: u64,
    /// Messages.
    #[serde(default)]
    pub message_count: u64,
    /// Every other counter, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A row of `GET /analytics/users`: one user's activity on one day (`date`) or over
/// a range (`starting_date`..`ending_date`), per group with `group_by[]=rbac_group_id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    /// Who.
    pub user: AnalyticsUser,
    /// The day (single-day mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// First day of the range (range mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_date: Option<NaiveDate>,
    /// Last day of the range, included (range mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_date: Option<NaiveDate>,
    /// The group of this row (with `group_by[]=rbac_group_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_group_id: Option<String>,
    /// That group's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_group_name: Option<String>,
    /// The user's last day with any activity, up to the end of the range.
    #[serde(default)]
    pub last_activity_date: Option<NaiveDate>,
    /// Cowork counters.
    #[serde(default)]
    pub cowork_metrics: Option<ProductMetrics>,
    /// Chat counters.
    #[serde(default)]
    pub chat_metrics: Option<ProductMetrics>,
    /// Claude Code counters.
    #[serde(default)]
    pub claude_code_metrics: Option<ProductMetrics>,
    /// Claude Design counters.
    #[serde(default)]
    pub design_metrics: Option<ProductMetrics>,
    /// Office agent counters.
    #[serde(default)]
    pub office_metrics: Option<ProductMetrics>,
}

impl UserActivity {
    /// Cowork sessions in this row.
    pub fn cowork_sessions(&self) -> u64 {
        self.cowork_metrics
            .as_ref()
            .map_or(0, |m| m.distinct_session_count)
    }
}

/// One line of a cost report bucket (or of a user cost report).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    /// Minor units, decimal string.
    pub amount: String,
    /// ISO 4217.
    #[serde(default)]
    pub currency: Option<String>,
    /// With `group_by[]=rbac_group_id` (`null` for usage outside any group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_group_id: Option<String>,
    /// With `group_by[]=product`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// One time bucket of `GET /analytics/cost_report`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostBucket {
    /// Start of the bucket (RFC 3339).
    pub starting_at: DateTime<Utc>,
    /// End of the bucket, exclusive.
    pub ending_at: DateTime<Utc>,
    /// Its lines (one per group-by combination with cost).
    #[serde(default)]
    pub results: Vec<CostResult>,
}

/// A row of `GET /analytics/user_cost_report`: one user's cost over the range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserCost {
    /// Who.
    pub user: AnalyticsUser,
    /// Minor units, decimal string.
    pub amount: String,
    /// ISO 4217.
    #[serde(default)]
    pub currency: Option<String>,
    /// With `group_by[]=rbac_group_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac_group_id: Option<String>,
    /// With `group_by[]=product`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// `POST /_sim/usage` (simulator only): usage to compute analytics from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageUpload {
    /// The records.
    pub records: Vec<UsageRecordIn>,
}

/// One injected usage record: a user's sessions and cost in one product on one day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordIn {
    /// The member's email.
    pub email: String,
    /// The UTC day.
    pub date: NaiveDate,
    /// One of [`PRODUCTS`] (default `cowork`).
    #[serde(default = "default_product")]
    pub product: String,
    /// Distinct sessions that day.
    #[serde(default)]
    pub sessions: u64,
    /// Cost in minor units of the billing currency.
    #[serde(default)]
    pub cost_minor: u64,
    /// Minutes after posting before the cost shows in the cost reports (0 to
    /// [`MAX_COST_LAG_MINUTES`]: cost data lands within 4 hours).
    #[serde(default)]
    pub cost_lag_minutes: u32,
}

fn default_product() -> String {
    "cowork".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engagement_for_a_day_arrives_at_ten_the_next_day() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            latest_engagement_day(at("2026-12-03T09:59:59Z")),
            d("2026-12-01")
        );
        assert_eq!(
            latest_engagement_day(at("2026-12-03T10:00:00Z")),
            d("2026-12-02")
        );
    }

    #[test]
    fn amounts_may_be_fractional_but_not_negative() {
        assert_eq!(parse_amount("12050.5"), Some(12050.5));
        assert_eq!(parse_amount("0"), Some(0.0));
        assert_eq!(parse_amount("-1"), None);
        assert_eq!(parse_amount("ten"), None);
    }

    #[test]
    fn activity_rows_read_the_documented_fields_and_ignore_others() {
        let row: UserActivity = serde_json::from_value(serde_json::json!({
            "user": {"id": "user_01", "email_address": "a@example.com"},
            "starting_date": "2026-11-01", "ending_date": "2026-11-30",
            "rbac_group_id": "rbac_group_01", "rbac_group_name": "Pilot",
            "last_activity_date": "2026-11-29",
            "cowork_metrics": {"distinct_session_count": 4, "action_count": 9},
            "chat_cowork_unified_metrics": {"x": 1}
        }))
        .unwrap();
        assert_eq!(row.cowork_sessions(), 4);
        assert_eq!(row.rbac_group_id.as_deref(), Some("rbac_group_01"));
    }
}
