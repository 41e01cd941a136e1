//! Usage behind the simulated analytics: `POST /_sim/usage` records a member's
//! sessions and cost in one product on one day. A record counts toward the groups
//! the member holds when it is posted, as if it happened while they held them
//! (design §5); the reports in `sim::analytics` are computed from these records and
//! the simulator's clock. Records add up: posting the same member, day and product
//! again adds to it (a revision). As the real reports document, a record's cost lands
//! up to 4 hours after it is posted (`cost_lag_minutes`) and a day's cost can be
//! revised for 30 days only: cost for an older day is refused.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{email_key, ApiError, ApiResult, SimState};
use crate::cowork::analytics::types::{
    earliest_day, UsageUpload, COST_REVISION_DAYS, MAX_COST_LAG_MINUTES, PRODUCTS,
};

/// The most records one `POST /_sim/usage` may carry.
pub const MAX_RECORDS: usize = 100_000;

/// A group a usage record counts toward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGroup {
    /// `rbac_group_…`.
    pub id: String,
    /// Its name when the record was posted.
    pub name: String,
}

/// One stored usage record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The member.
    pub user_id: String,
    /// Their email when the record was posted.
    pub email: String,
    /// The UTC day.
    pub date: NaiveDate,
    /// The product.
    pub product: String,
    /// Distinct sessions.
    pub sessions: u64,
    /// Cost, minor units of the billing currency.
    pub cost_minor: u64,
    /// The groups the member held when it was posted, by id.
    pub groups: Vec<UsageGroup>,
    /// When it was posted (the simulator's clock).
    pub posted_at: DateTime<Utc>,
    /// When its cost shows in the cost reports (absent in older snapshots: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_lands_at: Option<DateTime<Utc>>,
}

impl UsageRecord {
    /// Whether its cost has landed by `now`.
    pub fn cost_landed(&self, now: DateTime<Utc>) -> bool {
        self.cost_lands_at.is_none_or(|t| t <= now)
    }
}

impl SimState {
    /// `POST /_sim/usage`: validates every record first and stores all or none.
    pub fn post_usage(&mut self, upload: &UsageUpload, now: DateTime<Utc>) -> ApiResult<Value> {
        if upload.records.is_empty() {
            return Err(ApiError::invalid(None, "records must not be empty"));
        }
        if upload.records.len() > MAX_RECORDS {
            return Err(ApiError::invalid(
                None,
                &format!("at most {MAX_RECORDS} records a request"),
            ));
        }
        let today = now.date_naive();
        let mut out = Vec::with_capacity(upload.records.len());
        for (i, r) in upload.records.iter().enumerate() {
            let bad = |what: &str| ApiError::invalid(None, &format!("records[{i}]: {what}"));
            let Some(user_id) = self.emails.get(&email_key(&r.email)).cloned() else {
                return Err(bad("no member has this email"));
            };
            if !PRODUCTS.contains(&r.product.as_str()) {
                return Err(bad(&format!(
                    "product must be one of {}",
                    PRODUCTS.join(", ")
                )));
            }
            if r.date < earliest_day() {
                return Err(bad("analytics data starts on 2026-01-01"));
            }
            if r.date > today {
                return Err(bad("date is in the future"));
            }
            if r.cost_minor > 0 && r.date < today - chrono::Duration::days(COST_REVISION_DAYS) {
                return Err(bad(&format!(
                    "the cost of a day more than {COST_REVISION_DAYS} days ago is final and cannot be revised"
                )));
            }
            if r.cost_lag_minutes > MAX_COST_LAG_MINUTES {
                return Err(bad(&format!(
                    "cost_lag_minutes must be at most {MAX_COST_LAG_MINUTES}: cost lands within 4 hours"
                )));
            }
            let email = self
                .users
                .get(&user_id)
                .map(|u| u.email.clone())
                .unwrap_or_default();
            let groups = self
                .user_groups
                .get(&user_id)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| {
                            self.groups.get(id).map(|g| UsageGroup {
                                id: g.id.clone(),
                                name: g.name.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(UsageRecord {
                user_id,
                email,
                date: r.date,
                product: r.product.clone(),
                sessions: r.sessions,
                cost_minor: r.cost_minor,
                groups,
                posted_at: now,
                cost_lands_at: Some(now + chrono::Duration::minutes(i64::from(r.cost_lag_minutes))),
            });
        }
        let n = out.len();
        self.usage.extend(out);
        Ok(json!({"type": "usage_recorded", "records": n}))
    }

    /// Every usage record, in posting order.
    pub fn usage(&self) -> &[UsageRecord] {
        &self.usage
    }

    /// The organization's billing currency.
    pub fn billing_currency(&self) -> &str {
        &self.org.settings.billing_currency
    }
}
