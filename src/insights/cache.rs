//! A cache of Analytics API answers in the store, so repeated questions within the
//! data's freshness window cost no calls (reference §1.4).
//!
//! Entries live in `Table::Meta` under the `insights/` prefix (no other meta key
//! starts with it), keyed by endpoint and a hash of the query's parameters; the
//! value is the answer and when it was fetched. An entry answers again while:
//!
//! - engagement (`/analytics/users`): no new day has landed since it was fetched
//!   (day D arrives at 10:00 UTC on D+1);
//! - cost: the range ended more than 30 days before it was fetched (final, cost is
//!   revised for 30 days), else for [`COST_TTL_SECS`] (cost lands within hours).
//!
//! `refresh` skips the read (the pool check wants the latest cost) and stores the
//! fresh answer. Meta writes need no audit entry: the cache governs nothing.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::InsightsError;
use crate::cowork::analytics::types::{
    latest_engagement_day, CostBucket, UserActivity, UserCost, COST_REVISION_DAYS,
};
use crate::cowork::analytics::{ActivityQuery, AnalyticsClient, CostQuery};
use crate::store::{codec, Store, Table, TxFail};

/// Key prefix in `Table::Meta`.
pub const PREFIX: &str = "insights/";

/// How long a cost answer that may still change is reused.
pub const COST_TTL_SECS: i64 = 600;

#[derive(Serialize, Deserialize)]
struct Entry<T> {
    fetched_at: DateTime<Utc>,
    answer: T,
}

fn key(endpoint: &str, parts: &str) -> Vec<u8> {
    let h = crate::cowork::hash_hex(&[parts.as_bytes()], 16);
    format!("{PREFIX}{endpoint}/{h}").into_bytes()
}

fn read<T: DeserializeOwned>(store: &dyn Store, k: &[u8]) -> Option<Entry<T>> {
    // A damaged entry is a miss, not an error: the answer is fetched again.
    let bytes = store.get(Table::Meta, k).ok()??;
    codec::from_bytes(&bytes, Table::Meta).ok()
}

fn write<T: Serialize>(store: &dyn Store, k: &[u8], entry: &Entry<T>) -> Result<(), InsightsError> {
    let bytes = codec::to_bytes(entry, Table::Meta)?;
    crate::store::transaction(store, |txn| {
        txn.insert(Table::Meta, k, &bytes).map_err(TxFail::Store)
    })
    .map_err(InsightsError::Store)
}

/// The Analytics client and the store, with the cache between them.
pub struct Cached<'a> {
    /// The client.
    pub client: &'a AnalyticsClient,
    /// Where answers are kept.
    pub store: &'a dyn Store,
    /// Skip cached answers (and store the fresh ones).
    pub refresh: bool,
}

impl Cached<'_> {
    /// `GET /analytics/users`, cached until the next day lands.
    pub async fn user_activity(
        &self,
        q: &ActivityQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserActivity>, InsightsError> {
        let k = key("users", &format!("{q:?}"));
        if !self.refresh {
            if let Some(e) = read::<Vec<UserActivity>>(self.store, &k) {
                if latest_engagement_day(e.fetched_at) == latest_engagement_day(now) {
                    return Ok(e.answer);
                }
            }
        }
        let answer = self.client.user_activity(q, now).await?;
        let entry = Entry {
            fetched_at: now,
            answer,
        };
        write(self.store, &k, &entry)?;
        Ok(entry.answer)
    }

    /// `GET /analytics/cost_report`, cached while it cannot have changed.
    pub async fn cost_report(
        &self,
        q: &CostQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<CostBucket>, InsightsError> {
        let k = key("cost_report", &format!("{q:?}"));
        if let Some(hit) = self.cost_hit(&k, q, now) {
            return Ok(hit);
        }
        let answer = self.client.cost_report(q, now).await?;
        self.keep(&k, now, answer)
    }

    /// `GET /analytics/user_cost_report`, cached while it cannot have changed.
    pub async fn user_cost_report(
        &self,
        q: &CostQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserCost>, InsightsError> {
        let k = key("user_cost_report", &format!("{q:?}"));
        if let Some(hit) = self.cost_hit(&k, q, now) {
            return Ok(hit);
        }
        let answer = self.client.user_cost_report(q, now).await?;
        self.keep(&k, now, answer)
    }

    fn cost_hit<T: DeserializeOwned>(
        &self,
        k: &[u8],
        q: &CostQuery,
        now: DateTime<Utc>,
    ) -> Option<T> {
        if self.refresh {
            return None;
        }
        let e = read::<T>(self.store, k)?;
        let end = q.ending_at.unwrap_or(e.fetched_at);
        let settled = end <= e.fetched_at - chrono::Duration::days(COST_REVISION_DAYS);
        let young =
            now - e.fetched_at < chrono::Duration::seconds(COST_TTL_SECS) && now >= e.fetched_at;
        (settled || young).then_some(e.answer)
    }

    fn keep<T: Serialize>(
        &self,
        k: &[u8],
        now: DateTime<Utc>,
        answer: T,
    ) -> Result<T, InsightsError> {
        let entry = Entry {
            fetched_at: now,
            answer,
        };
        write(self.store, k, &entry)?;
        Ok(entry.answer)
    }
}
