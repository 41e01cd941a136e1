//! [`Insights`]: answers `insights adoption` and `insights spend` from the groups the
//! rules define, the members the daemon put in them (its ownership records) and the
//! Analytics API (through the store cache). Store and directory reads run off the
//! async threads.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};

use super::advisor::Window;
use super::cache::Cached;
use super::report::{self, AdoptionReport, GroupInput, GroupMember, SpendInputs, SpendReport};
use super::InsightsError;
use crate::clock::SharedClock;
use crate::cowork::analytics::types::{
    earliest_day, latest_engagement_day, ENGAGEMENT_RETENTION_DAYS,
};
use crate::cowork::analytics::{ActivityQuery, AnalyticsClient, AnalyticsConfig, CostQuery};
use crate::directory::Directory;
use crate::scim::ResourceKind;
use crate::store::Store;

/// The longest `--days` (engagement data reaches back 90 days).
pub const MAX_DAYS: u32 = 90;

/// Days of usage the spend advisor measures.
pub const ADVISOR_DAYS: u32 = 28;

/// The insights service.
pub struct Insights {
    /// Patient: for the pool check, which nobody waits on.
    client: AnalyticsClient,
    /// Brief ([`AnalyticsClient::interactive`]): for the reports people wait on.
    interactive: AnalyticsClient,
    pub(super) store: Arc<dyn Store>,
    pub(super) directory: Arc<Directory>,
    pub(super) clock: SharedClock,
}

impl std::fmt::Debug for Insights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Insights").finish_non_exhaustive()
    }
}

/// The Analytics client the configuration asks for: the configured Analytics key
/// against the configured API; against the simulator (`sim_url`) any key works, so
/// it falls back to a placeholder. `None` without a key for a real API.
pub fn client_for(
    config: &crate::config::Config,
    sim_url: Option<&str>,
) -> Option<AnalyticsClient> {
    let key = config
        .insights
        .analytics_api_key
        .as_ref()
        .map(|k| k.expose().to_string());
    let (url, key) = match (sim_url, &config.cowork.base_url) {
        (Some(url), _) => (
            url.to_owned(),
            key.unwrap_or_else(|| "local-simulator".into()),
        ),
        (None, Some(url)) => (url.clone(), key?),
        (None, None) => return None,
    };
    AnalyticsClient::new(AnalyticsConfig::new(url, key)).ok()
}

pub(super) fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .unwrap_or(now.date_naive())
        .and_time(NaiveTime::MIN)
        .and_utc()
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl Insights {
    /// The service over its parts.
    pub fn new(
        client: AnalyticsClient,
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        clock: SharedClock,
    ) -> Self {
        Self {
            interactive: client.interactive(),
            client,
            store,
            directory,
            clock,
        }
    }

    /// The cache over the brief client, for a report someone is waiting for.
    pub(super) fn for_a_reader(&self) -> Cached<'_> {
        Cached {
            client: &self.interactive,
            store: self.store.as_ref(),
            refresh: false,
        }
    }

    /// The patient client, skipping cached answers (the pool check wants the latest
    /// cost and can wait out a slow or rate-limited API).
    pub(super) fn refreshing(&self) -> Cached<'_> {
        Cached {
            client: &self.client,
            store: self.store.as_ref(),
            refresh: true,
        }
    }

    /// The groups the current rules define, with the members the daemon recorded in
    /// each, and the billing currency.
    pub async fn groups(&self) -> Result<(Vec<GroupInput>, String), InsightsError> {
        let store = self.store.clone();
        let directory = self.directory.clone();
        tokio::task::spawn_blocking(move || groups_now(store.as_ref(), &directory))
            .await
            .map_err(|_| InsightsError::BadRequest("a blocking task was cancelled".into()))?
    }

    /// `insights adoption --days N`.
    pub async fn adoption(&self, days: u32) -> Result<AdoptionReport, InsightsError> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(InsightsError::BadRequest(format!(
                "days must be between 1 and {MAX_DAYS} (engagement data reaches back 90 days)"
            )));
        }
        let (groups, _) = self.groups().await?;
        let now = self.clock.now();
        let latest = latest_engagement_day(now);
        let oldest =
            (latest - chrono::Duration::days(ENGAGEMENT_RETENTION_DAYS - 1)).max(earliest_day());
        let window = Window::ending(latest, days.max(30));
        let rows = if latest < earliest_day() {
            Vec::new()
        } else {
            let q = ActivityQuery::by_group(window.from.max(oldest), latest);
            self.for_a_reader().user_activity(&q, now).await?
        };
        Ok(report::adoption(&groups, &rows, latest, days))
    }

    /// `insights spend`.
    pub async fn spend(&self) -> Result<SpendReport, InsightsError> {
        let (groups, currency) = self.groups().await?;
        let now = self.clock.now();
        let cache = self.for_a_reader();
        let start = month_start(now);
        let month = Window {
            from: start.date_naive(),
            to: now.date_naive(),
        };
        let month_cost = if now > start && start >= midnight(earliest_day()) {
            let q = CostQuery::by_group(start, now);
            report::cost_by_group(&cache.cost_report(&q, now).await?)
        } else {
            Default::default()
        };
        let latest = latest_engagement_day(now);
        let engagement = Window::ending(latest, ADVISOR_DAYS);
        let engagement = Window {
            from: engagement.from.max(earliest_day()),
            to: engagement.to,
        };
        let (rows, cowork_cost) = if latest < earliest_day() {
            (Vec::new(), Default::default())
        } else {
            let rows = cache
                .user_activity(&ActivityQuery::by_group(engagement.from, latest), now)
                .await?;
            let mut q = CostQuery::by_group(
                midnight(engagement.from),
                midnight(engagement.to + chrono::Duration::days(1)).min(now),
            );
            q.products = vec!["cowork".into()];
            (
                rows,
                report::cost_by_group(&cache.cost_report(&q, now).await?),
            )
        };
        Ok(report::spend(
            &groups,
            &SpendInputs {
                currency: &currency,
                month,
                month_cost,
                rows: &rows,
                engagement,
                cowork_cost,
                cost: engagement,
            },
        ))
    }
}

pub(super) fn groups_now(
    store: &dyn Store,
    directory: &Directory,
) -> Result<(Vec<GroupInput>, String), InsightsError> {
    let Some(current) = crate::ruleset::current(store)? else {
        return Err(InsightsError::NoRules);
    };
    let table = current.table;
    let owned = crate::reconcile::ownership::load_all(store)?;
    let mut out = Vec::new();
    for (key, g) in table.groups() {
        let mut members = Vec::new();
        for m in owned.memberships.values().filter(|m| &m.group_key == key) {
            let user_name = directory
                .record(ResourceKind::User, &m.scim_id)?
                .as_ref()
                .and_then(|r| r.str_attr("userName").map(str::to_owned))
                .unwrap_or_else(|| m.scim_id.clone());
            members.push(GroupMember {
                scim_id: m.scim_id.clone(),
                user_name,
                user_id: Some(m.user_id.clone()),
            });
        }
        out.push(GroupInput {
            key: key.clone(),
            name: g.name.clone(),
            group_id: owned.groups.get(key).map(|o| o.id.clone()),
            rules: g.rules.iter().cloned().collect(),
            monthly_limit: g.monthly_spend,
            pool: g.pool,
            members,
        });
    }
    Ok((out, table.org().billing_currency.clone()))
}
