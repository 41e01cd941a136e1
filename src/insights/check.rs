//! The pool check (design §6.1): for every downstream group whose rule has a
//! `pool`, the group's month-to-date cost (the cost report by `rbac_group_id`, every
//! product, from 00:00 UTC on the 1st by the daemon's clock) and each member's (the
//! user cost report filtered by the group), asked afresh, then [`pool::step`] with
//! the stored record.
//!
//! One check writes, in one transaction: the new records (`super::pools`), an audit
//! entry per event (`pool.warned`, `pool.spent`, `pool.capped`, `pool.cleared`,
//! actor `insights`), and, when caps changed, an outbox entry touching the members
//! concerned, so the event path sets or clears their overrides at once. It runs at
//! every full reconcile (before planning, through [`crate::reconcile::PoolCheck`])
//! and on `[insights] pool_check` ([`start_pool_schedule`]). A failed check (the
//! Analytics API down) is reported (status, metric, log, naming no person) and
//! changes nothing: the previous records and caps stand.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::pool::{self, Observation, PoolEvent, PoolRecord};
use super::report::{self, GroupInput};
use super::service::{groups_now, month_start, Insights};
use super::{pools, InsightsError};
use crate::audit::{self, AuditDraft};
use crate::cowork::analytics::types::parse_amount;
use crate::cowork::analytics::CostQuery;
use crate::metrics::Metrics;
use crate::outbox::{self, Touched};
use crate::status::Status;
use crate::store::{StoreError, TxFail};

/// The audit actor of the pool check.
pub const ACTOR: &str = "insights";

const LEVEL: (&str, &str) = (
    "cowork_sync_pool_level",
    "Where each pooled group stands: 0 ok, 1 warn, 2 capped.",
);
const SPENT: (&str, &str) = (
    "cowork_sync_pool_spent_ratio",
    "Each pooled group's month-to-date cost as a share of its pool.",
);
const CAPPED: (&str, &str) = (
    "cowork_sync_pool_capped_members",
    "Members each spent pool caps.",
);
const WARNINGS: (&str, &str) = (
    "cowork_sync_pool_warnings_total",
    "Pools that reached warn_at (once a month each).",
);
const CHECKS: (&str, &str) = (
    "cowork_sync_pool_checks_total",
    "Pool checks by outcome (ok, failed).",
);

/// What one check found and changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolCheckReport {
    /// The records after the check, by group key.
    pub pools: BTreeMap<String, PoolRecord>,
    /// What changed, by group key.
    pub events: Vec<(String, PoolEvent)>,
}

/// Runs pool checks and reports how they went.
pub struct PoolChecker {
    insights: Arc<Insights>,
    status: Arc<Status>,
    /// Wakes the outbox worker when a check queued cap changes.
    wake: Option<Arc<tokio::sync::Notify>>,
    /// One check at a time (the schedule and a reconcile may meet).
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PoolChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolChecker").finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, InsightsError> + Send + 'static,
) -> Result<T, InsightsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| InsightsError::BadRequest("a blocking task was cancelled".into()))?
}

/// Month-to-date cost per group id, and per (member id, group id).
type Costs = (BTreeMap<String, u64>, BTreeMap<(String, String), u64>);

impl PoolChecker {
    /// A checker over the insights service; `wake` is the outbox worker's `Notify`.
    pub fn new(
        insights: Arc<Insights>,
        status: Arc<Status>,
        wake: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        Self {
            insights,
            status,
            wake,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// One check, reported: the status and metrics learn the outcome, a failure is
    /// logged without personal data. Never fails.
    pub async fn check_reported(&self) -> Option<PoolCheckReport> {
        let m = self.status.metrics();
        match self.check().await {
            Ok(report) if report.pools.is_empty() && report.events.is_empty() => {
                // No rule sets a pool and no record is left: nothing to report.
                self.status.pool_check_idle();
                m.inc(CHECKS.0, CHECKS.1, &[("outcome", "ok")], 1.0);
                Some(report)
            }
            Ok(report) => {
                self.status.pool_check_outcome(Ok(()));
                m.inc(CHECKS.0, CHECKS.1, &[("outcome", "ok")], 1.0);
                Some(report)
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, "pool check failed; the previous pool records and caps stand");
                self.status.pool_check_outcome(Err(message));
                m.inc(CHECKS.0, CHECKS.1, &[("outcome", "failed")], 1.0);
                None
            }
        }
    }

    /// One check of every pool.
    pub async fn check(&self) -> Result<PoolCheckReport, InsightsError> {
        let _one = self.running.lock().await;
        let ins = &self.insights;
        let store = ins.store.clone();
        let directory = ins.directory.clone();
        let (groups, currency, prev) = blocking(move || {
            let (groups, currency) = match groups_now(store.as_ref(), &directory) {
                Ok(g) => g,
                Err(InsightsError::NoRules) => (Vec::new(), String::new()),
                Err(e) => return Err(e),
            };
            Ok((groups, currency, pools::load_all(store.as_ref())?))
        })
        .await?;
        let groups: Vec<GroupInput> = groups
            .into_iter()
            .filter(|g| g.pool.is_some() || prev.contains_key(&g.key))
            .collect();
        let now = ins.clock.now();
        let ids: Vec<String> = groups
            .iter()
            .filter(|g| g.pool.is_some())
            .filter_map(|g| g.group_id.clone())
            .collect();
        let (group_cost, member_cost) = self.costs(&ids, now).await?;
        let month = now.format("%Y-%m").to_string();
        let mut steps: Vec<(String, Option<PoolRecord>, Vec<PoolEvent>)> = Vec::new();
        for g in &groups {
            let id = g.group_id.as_deref().unwrap_or_default();
            let mut obs = Observation {
                month: month.clone(),
                spent: group_cost.get(id).copied().unwrap_or(0),
                ..Observation::default()
            };
            for m in &g.members {
                obs.members.insert(m.scim_id.clone());
                if let Some(user) = &m.user_id {
                    let so_far = member_cost
                        .get(&(user.clone(), id.to_string()))
                        .copied()
                        .unwrap_or(0);
                    obs.member_spend.insert(m.scim_id.clone(), so_far);
                }
            }
            let (record, events) = pool::step(prev.get(&g.key), &g.key, g.pool, &obs);
            steps.push((g.key.clone(), record, events));
        }
        // Records of groups the rules no longer define: their pools are gone.
        let defined: BTreeSet<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        for (key, r) in prev.iter().filter(|(k, _)| !defined.contains(k.as_str())) {
            let (record, events) = pool::step(Some(r), key, None, &Observation::default());
            steps.push((key.clone(), record, events));
        }
        let rules: BTreeMap<String, Vec<String>> = groups
            .iter()
            .map(|g| (g.key.clone(), g.rules.clone()))
            .collect();
        let queued = self.record(&steps, &rules, &currency, now).await?;
        if queued {
            if let Some(w) = &self.wake {
                w.notify_one();
            }
        }
        let mut out = PoolCheckReport::default();
        for (key, record, events) in steps {
            metrics(self.status.metrics(), &key, record.as_ref(), &events);
            for e in events {
                if let PoolEvent::Warned { spent, monthly } = &e {
                    tracing::warn!(group = %key, spent, monthly, "a pooled budget reached warn_at");
                }
                if let PoolEvent::Spent { spent, monthly } = &e {
                    tracing::warn!(group = %key, spent, monthly, "a pooled budget is spent; its members are capped");
                }
                out.events.push((key.clone(), e));
            }
            if let Some(r) = record {
                out.pools.insert(key, r);
            }
        }
        Ok(out)
    }

    /// The month-to-date cost of the groups `ids`, and of each of their members.
    async fn costs(&self, ids: &[String], now: DateTime<Utc>) -> Result<Costs, InsightsError> {
        let start = month_start(now);
        if ids.is_empty() || now <= start {
            return Ok(Default::default());
        }
        let cache = self.insights.refreshing();
        let mut q = CostQuery::by_group(start, now);
        q.rbac_group_ids = ids.to_vec();
        let groups = report::cost_by_group(&cache.cost_report(&q, now).await?);
        let mut sums: BTreeMap<(String, String), f64> = BTreeMap::new();
        for row in cache.user_cost_report(&q, now).await? {
            if let (Some(g), Some(a)) = (&row.rbac_group_id, parse_amount(&row.amount)) {
                *sums.entry((row.user.id.clone(), g.clone())).or_insert(0.0) += a;
            }
        }
        let members = sums
            .into_iter()
            .map(|(k, a)| (k, a.ceil() as u64))
            .collect();
        Ok((groups, members))
    }

    /// Writes the steps' records, their audit entries and (when caps changed) one
    /// outbox entry, in one transaction. Whether an outbox entry was queued.
    async fn record(
        &self,
        steps: &[(String, Option<PoolRecord>, Vec<PoolEvent>)],
        rules: &BTreeMap<String, Vec<String>>,
        currency: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, InsightsError> {
        let mut drafts = Vec::new();
        let mut touched = BTreeSet::new();
        for (key, record, events) in steps {
            let rules = rules.get(key).cloned().unwrap_or_default();
            for e in events {
                drafts.push(draft(key, &rules, record.as_ref(), e, currency));
                if let PoolEvent::Capped { user, .. } | PoolEvent::Cleared { user, .. } = e {
                    touched.insert(user.clone());
                }
            }
        }
        let writes: Vec<(String, Option<PoolRecord>)> = steps
            .iter()
            .map(|(k, r, _)| (k.clone(), r.clone()))
            .collect();
        let store = self.insights.store.clone();
        let touched = Touched {
            users: touched.into_iter().collect(),
            ..Touched::default()
        };
        blocking(move || {
            crate::store::transaction::<_, StoreError>(store.as_ref(), |txn| {
                for (key, record) in &writes {
                    pools::tx_write(txn, key, record.as_ref())?;
                }
                for d in &drafts {
                    audit::append(txn, d.clone(), now)?;
                }
                let queued = outbox::append(txn, "pool.check", touched.clone(), now)?;
                Ok::<_, TxFail<StoreError>>(queued.is_some())
            })
            .map_err(InsightsError::Store)
        })
        .await
    }
}

/// The audit entry of one event.
fn draft(
    key: &str,
    rules: &[String],
    record: Option<&PoolRecord>,
    event: &PoolEvent,
    currency: &str,
) -> AuditDraft {
    let month = record.map(|r| r.month.clone());
    let group_target = format!("group:{key}");
    match event {
        PoolEvent::Warned { spent, monthly } | PoolEvent::Spent { spent, monthly } => {
            let action = if matches!(event, PoolEvent::Warned { .. }) {
                "pool.warned"
            } else {
                "pool.spent"
            };
            AuditDraft::new(ACTOR, action, Some(&group_target)).with(json!({
                "group": key,
                "rules": rules,
                "month": month,
                "spent_minor": spent,
                "monthly_minor": monthly,
                "warn_at": record.map(|r| r.spec.warn_at()),
                "currency": currency,
            }))
        }
        PoolEvent::Capped { user, at } => {
            AuditDraft::new(ACTOR, "pool.capped", Some(&format!("user:{user}"))).with(json!({
                "group": key,
                "month": month,
                "cap_minor": at,
                "currency": currency,
            }))
        }
        PoolEvent::Cleared { user, reason } => {
            AuditDraft::new(ACTOR, "pool.cleared", Some(&format!("user:{user}"))).with(json!({
                "group": key,
                "reason": reason,
                "why": reason.as_str(),
            }))
        }
    }
}

fn metrics(m: &Metrics, key: &str, record: Option<&PoolRecord>, events: &[PoolEvent]) {
    let labels = [("group", key)];
    let (level, ratio, capped) = match record {
        Some(r) => (
            match r.level {
                pool::PoolLevel::Ok => 0.0,
                pool::PoolLevel::Warn => 1.0,
                pool::PoolLevel::Capped => 2.0,
            },
            r.spent as f64 / r.spec.monthly.max(1) as f64,
            r.caps.len() as f64,
        ),
        None => (0.0, 0.0, 0.0),
    };
    m.set(LEVEL.0, LEVEL.1, &labels, level);
    m.set(SPENT.0, SPENT.1, &labels, ratio);
    m.set(CAPPED.0, CAPPED.1, &labels, capped);
    let warned = events
        .iter()
        .filter(|e| matches!(e, PoolEvent::Warned { .. }))
        .count();
    if warned > 0 {
        m.inc(WARNINGS.0, WARNINGS.1, &labels, warned as f64);
    }
}

impl crate::reconcile::PoolCheck for PoolChecker {
    fn check(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.check_reported().await;
        })
    }
}

/// Starts the `[insights] pool_check` schedule. Keep the scheduler and call
/// `shutdown()` on it at exit.
pub async fn start_pool_schedule(
    checker: Arc<PoolChecker>,
    schedule: &str,
) -> Result<JobScheduler, String> {
    let scheduler = JobScheduler::new().await.map_err(|e| e.to_string())?;
    let job = Job::new_async(schedule, move |_id, _lock| {
        let checker = checker.clone();
        Box::pin(async move {
            checker.check_reported().await;
        })
    })
    .map_err(|e| e.to_string())?;
    scheduler.add(job).await.map_err(|e| e.to_string())?;
    scheduler.start().await.map_err(|e| e.to_string())?;
    tracing::info!(schedule, "pool check scheduled");
    Ok(scheduler)
}
