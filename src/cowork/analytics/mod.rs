//! [`AnalyticsClient`]: the Claude Enterprise Analytics API and its cost reports
//! (reference §1.4, §1.10), with the Analytics key (`read:analytics`, separate from
//! the Admin key), its own pacing under the 60 requests a minute per organization
//! (90 % of it by default), 429 retries honouring `retry-after`, transient retries
//! with backoff (patient by default, brief in the [`AnalyticsClient::interactive`]
//! copy that answers people), and cursor pagination (`page` ↔ `next_page`).
//!
//! Queries are checked against the documented bounds before anything is sent
//! ([`CostQuery::check`], [`ActivityQuery::check`]), so a question the API would refuse
//! costs no call. The cache of answers lives above this layer (`insights::cache`).
//! Imports only `cowork::{error, ratelimit}`; the key is never logged.

pub mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::de::DeserializeOwned;

use super::error::CoworkError;
use super::ratelimit::{Backoff, Jitter, TokenBucket};
use super::types::CursorPage;
use super::CoworkResult;
use types::*;

/// Settings of an [`AnalyticsClient`].
#[derive(Clone)]
pub struct AnalyticsConfig {
    /// Scheme and host (`https://api.anthropic.com`, or the simulator's URL).
    pub base_url: String,
    /// The Analytics API key, sent as `x-api-key`.
    pub api_key: String,
    /// Client-side pacing (default 54 = 90 % of 60; 0 = none).
    pub requests_per_minute: u32,
    /// Attempts per call, the first included (default 6).
    pub max_attempts: u32,
    /// Backoff when the server gives no `retry-after`.
    pub backoff: Backoff,
    /// Whole-request timeout (default 30 s; `None` = none).
    pub request_timeout: Option<Duration>,
    /// Page size (default 1000; cost buckets are capped at 31 a page).
    pub page_size: u32,
}

impl AnalyticsConfig {
    /// Defaults for `base_url` and `api_key`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            requests_per_minute: 54,
            max_attempts: 6,
            backoff: Backoff::default(),
            request_timeout: Some(Duration::from_secs(30)),
            page_size: 1000,
        }
    }
}

impl std::fmt::Debug for AnalyticsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("requests_per_minute", &self.requests_per_minute)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// The days an engagement question covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Days {
    /// One day (`date`).
    One(NaiveDate),
    /// `starting_date`..=`ending_date`.
    Range(NaiveDate, NaiveDate),
}

/// `GET /analytics/users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Which days.
    pub days: Days,
    /// One row per member and group (`group_by[]=rbac_group_id`).
    pub by_group: bool,
    /// `filter[]=rbac_group_id:{id}`.
    pub rbac_group_ids: Vec<String>,
    /// `filter[]=user_id:{id}`.
    pub user_ids: Vec<String>,
}

impl ActivityQuery {
    /// Per member and group over `from..=to`.
    pub fn by_group(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            days: Days::Range(from, to),
            by_group: true,
            rbac_group_ids: Vec::new(),
            user_ids: Vec::new(),
        }
    }

    /// Refuses what the API would (400) at `now`: days not available yet, before
    /// 2026-01-01 or older than 90 days, ranges over 366 days, over 100 filters.
    pub fn check(&self, now: DateTime<Utc>) -> CoworkResult<()> {
        let (from, to) = match self.days {
            Days::One(d) => (d, d),
            Days::Range(a, b) => (a, b),
        };
        let latest = latest_engagement_day(now);
        let oldest =
            (latest - chrono::Duration::days(ENGAGEMENT_RETENTION_DAYS - 1)).max(earliest_day());
        let problem = if from > to {
            Some("the range starts after it ends".to_owned())
        } else if to > latest {
            Some(format!(
                "engagement for {to} is not available yet (the latest day is {latest})"
            ))
        } else if from < oldest {
            Some(format!("engagement data reaches back to {oldest} only"))
        } else if (to - from).num_days() + 1 > MAX_ENGAGEMENT_RANGE_DAYS {
            Some("a range covers at most 366 days".to_owned())
        } else if self.rbac_group_ids.len() + self.user_ids.len() > 100 {
            Some("at most 100 filters a request".to_owned())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(CoworkError::Config(p)))
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        match self.days {
            Days::One(d) => q.push(("date", d.to_string())),
            Days::Range(a, b) => {
                q.push(("starting_date", a.to_string()));
                q.push(("ending_date", b.to_string()));
            }
        }
        if self.by_group {
            q.push(("group_by[]", "rbac_group_id".to_owned()));
        }
        for g in &self.rbac_group_ids {
            q.push(("filter[]", format!("rbac_group_id:{g}")));
        }
        for u in &self.user_ids {
            q.push(("filter[]", format!("user_id:{u}")));
        }
        q
    }
}

/// Bucket width of a cost report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketWidth {
    /// `1d`.
    Day,
    /// `1h`.
    Hour,
    /// `1m`.
    Minute,
}

impl BucketWidth {
    fn as_str(self) -> &'static str {
        match self {
            BucketWidth::Day => "1d",
            BucketWidth::Hour => "1h",
            BucketWidth::Minute => "1m",
        }
    }
}

/// `GET /analytics/cost_report` and `user_cost_report`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostQuery {
    /// Start, inclusive.
    pub starting_at: DateTime<Utc>,
    /// End, exclusive (the API's default: now, at most 31 days after the start).
    pub ending_at: Option<DateTime<Utc>>,
    /// Bucket width (`cost_report` only).
    pub bucket_width: BucketWidth,
    /// `group_by[]=rbac_group_id`.
    pub by_group: bool,
    /// `group_by[]=product`.
    pub by_product: bool,
    /// `rbac_group_ids[]`.
    pub rbac_group_ids: Vec<String>,
    /// `products[]` (empty = every product).
    pub products: Vec<String>,
    /// `user_ids[]`.
    pub user_ids: Vec<String>,
    /// `exclude_deleted_users` (`user_cost_report` only).
    pub exclude_deleted_users: bool,
}

impl CostQuery {
    /// Daily, by group, every product, from `starting_at` to `ending_at`.
    pub fn by_group(starting_at: DateTime<Utc>, ending_at: DateTime<Utc>) -> Self {
        Self {
            starting_at,
            ending_at: Some(ending_at),
            bucket_width: BucketWidth::Day,
            by_group: true,
            by_product: false,
            rbac_group_ids: Vec::new(),
            products: Vec::new(),
            user_ids: Vec::new(),
            exclude_deleted_users: false,
        }
    }

    /// Refuses what the API would (400) at `now`: a start before 2026-01-01, older
    /// than 365 days or in the future, more than 31 days, an unknown product, more
    /// than 100 values in a list.
    pub fn check(&self, now: DateTime<Utc>) -> CoworkResult<()> {
        let earliest = earliest_day().and_time(chrono::NaiveTime::MIN).and_utc();
        let end = self
            .ending_at
            .unwrap_or_else(|| now.min(self.starting_at + chrono::Duration::days(MAX_COST_DAYS)));
        let problem = if self.starting_at < earliest {
            Some("cost data starts on 2026-01-01".to_owned())
        } else if self.starting_at < now - chrono::Duration::days(365) {
            Some("cost data reaches back 365 days".to_owned())
        } else if self.starting_at > now {
            Some("the range starts in the future".to_owned())
        } else if end <= self.starting_at {
            Some("the range ends before it starts".to_owned())
        } else if end - self.starting_at > chrono::Duration::days(MAX_COST_DAYS) {
            Some("a cost report covers at most 31 days a request".to_owned())
        } else if let Some(p) = self
            .products
            .iter()
            .find(|p| !PRODUCTS.contains(&p.as_str()))
        {
            Some(format!("unknown product {p:?}"))
        } else if [&self.rbac_group_ids, &self.products, &self.user_ids]
            .iter()
            .any(|l| l.len() > 100)
        {
            Some("at most 100 values in a list".to_owned())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(CoworkError::Config(p)))
    }

    fn params(&self, buckets: bool) -> Vec<(&'static str, String)> {
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut q = vec![("starting_at", ts(self.starting_at))];
        if let Some(e) = self.ending_at {
            q.push(("ending_at", ts(e)));
        }
        if buckets {
            q.push(("bucket_width", self.bucket_width.as_str().to_owned()));
        } else if self.exclude_deleted_users {
            q.push(("exclude_deleted_users", "true".to_owned()));
        }
        if self.by_group {
            q.push(("group_by[]", "rbac_group_id".to_owned()));
        }
        if self.by_product {
            q.push(("group_by[]", "product".to_owned()));
        }
        for g in &self.rbac_group_ids {
            q.push(("rbac_group_ids[]", g.clone()));
        }
        for p in &self.products {
            q.push(("products[]", p.clone()));
        }
        for u in &self.user_ids {
            q.push(("user_ids[]", u.clone()));
        }
        q
    }
}

/// How hard one call tries before it gives up.
#[derive(Clone, Copy, Debug)]
struct Patience {
    /// Attempts, the first included.
    max_attempts: u32,
    /// The wait before a retry when the server names none.
    backoff: Backoff,
    /// A retry that would wait longer than this (a `retry-after`) is not made.
    longest_wait: Duration,
    /// Each attempt's timeout.
    timeout: Option<Duration>,
}

impl Patience {
    /// For a person waiting on a page or a command: one retry, a quarter to half a
    /// second later, and no retry at all when the server asks for more than two
    /// seconds; ten seconds an attempt. The worst case is about twenty seconds
    /// against a silent server and under a second against one that answers 5xx.
    const INTERACTIVE: Patience = Patience {
        max_attempts: 2,
        backoff: Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_millis(500),
        },
        longest_wait: Duration::from_secs(2),
        timeout: Some(Duration::from_secs(10)),
    };
}

/// The Analytics API client.
#[derive(Clone, Debug)]
pub struct AnalyticsClient {
    http: reqwest::Client,
    base: String,
    /// Shared by [`AnalyticsClient::interactive`] copies: one budget per organization.
    bucket: Arc<TokenBucket>,
    patience: Patience,
    jitter: Arc<Jitter>,
    page_size: u32,
    calls: Arc<AtomicU64>,
}

impl AnalyticsClient {
    /// Builds a client. Fails on an unusable base URL or key.
    pub fn new(config: AnalyticsConfig) -> CoworkResult<Self> {
        let (http, base_url) = super::client::http_client(
            &config.base_url,
            &config.api_key,
            "Analytics API key",
            None,
            config.request_timeout,
        )?;
        Ok(Self {
            http,
            base: format!("{base_url}/v1/organizations/analytics"),
            bucket: Arc::new(TokenBucket::per_minute(config.requests_per_minute)),
            patience: Patience {
                max_attempts: config.max_attempts.max(1),
                backoff: config.backoff,
                longest_wait: Duration::from_secs(600),
                timeout: config.request_timeout,
            },
            jitter: Arc::new(Jitter::from_entropy()),
            page_size: config.page_size.clamp(1, 1000),
            calls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A copy for answers a person is waiting for (the console, the operator API's
    /// reports): at most one retry, soon, and none when the server asks for a long
    /// wait, so an Analytics outage shows as a sentence within a second instead of
    /// a page that hangs through six attempts with backoff. It shares this client's
    /// connections, pacing and call count; the attempt timeout is the shorter of
    /// this client's and ten seconds.
    pub fn interactive(&self) -> Self {
        let timeout = match (self.patience.timeout, Patience::INTERACTIVE.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            patience: Patience {
                timeout,
                ..Patience::INTERACTIVE
            },
            ..self.clone()
        }
    }

    /// HTTP requests sent so far (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One `GET /analytics/users?limit=1`, to learn whether the key is accepted
    /// (`doctor`). The answer's rows are not read. With `max_attempts = 1` it is
    /// exactly one request.
    pub async fn probe(&self) -> CoworkResult<()> {
        self.get::<serde::de::IgnoredAny>("users", &[("limit", "1".to_string())])
            .await
            .map(|_| ())
    }

    /// Every row of `GET /analytics/users` for `q` (checked first, at `now`).
    pub async fn user_activity(
        &self,
        q: &ActivityQuery,
        now: DateTime<Utc>,
    ) -> CoworkResult<Vec<UserActivity>> {
        q.check(now)?;
        self.pages("users", &q.params(), self.page_size).await
    }

    /// Every bucket of `GET /analytics/cost_report` for `q` (checked first).
    pub async fn cost_report(
        &self,
        q: &CostQuery,
        now: DateTime<Utc>,
    ) -> CoworkResult<Vec<CostBucket>> {
        q.check(now)?;
        self.pages("cost_report", &q.params(true), self.page_size.min(31))
            .await
    }

    /// Every row of `GET /analytics/user_cost_report` for `q` (checked first).
    pub async fn user_cost_report(
        &self,
        q: &CostQuery,
        now: DateTime<Utc>,
    ) -> CoworkResult<Vec<UserCost>> {
        q.check(now)?;
        self.pages("user_cost_report", &q.params(false), self.page_size)
            .await
    }

    async fn pages<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        params: &[(&'static str, String)],
        limit: u32,
    ) -> CoworkResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = params.to_vec();
            query.push(("limit", limit.to_string()));
            if let Some(c) = &cursor {
                query.push(("page", c.clone()));
            }
            let page: CursorPage<T> = self.get(endpoint, &query).await?;
            out.extend(page.data);
            match (page.has_more, page.next_page) {
                (Some(false), _) | (None, None) => return Ok(out),
                (_, Some(next)) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => {
                    return Err(CoworkError::Decode {
                        reason: format!("{endpoint}: has_more without a new next_page"),
                    })
                }
            }
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &[(&'static str, String)],
    ) -> CoworkResult<T> {
        let mut attempt = 1;
        loop {
            self.bucket.acquire().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let err = match self.attempt(endpoint, query).await {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|e| CoworkError::Decode {
                        reason: format!(
                            "analytics {endpoint}: {:?} error at line {} column {}",
                            e.classify(),
                            e.line(),
                            e.column()
                        ),
                    })
                }
                Err(e) => e,
            };
            let wait = match &err {
                CoworkError::RateLimited {
                    retry_after: Some(d),
                    ..
                } => *d,
                _ => self.patience.backoff.delay(attempt, &self.jitter),
            };
            if !err.is_retryable()
                || attempt >= self.patience.max_attempts
                || wait > self.patience.longest_wait
            {
                tracing::debug!(
                    endpoint,
                    attempt,
                    request_id = err.request_id().unwrap_or(""),
                    "analytics call failed"
                );
                return Err(err);
            }
            tracing::debug!(
                endpoint,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "analytics call will be retried"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        endpoint: &'static str,
        query: &[(&'static str, String)],
    ) -> CoworkResult<Vec<u8>> {
        let transient = |reason: String| CoworkError::Transient {
            reason,
            status: None,
            request_id: None,
        };
        let mut request = self
            .http
            .get(format!("{}/{endpoint}", self.base))
            .query(query);
        if let Some(t) = self.patience.timeout {
            request = request.timeout(t);
        }
        let resp = request.send().await.map_err(|e| {
            transient(if e.is_timeout() {
                "timeout".into()
            } else if e.is_connect() {
                "connection failed".into()
            } else {
                "transport failure".into()
            })
        })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("request-id");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let body = resp
            .bytes()
            .await
            .map_err(|_| transient("connection closed while reading the answer".into()))?;
        if (200..300).contains(&status) {
            Ok(body.to_vec())
        } else {
            Err(CoworkError::from_response(
                status,
                &body,
                retry_after,
                request_id,
            ))
        }
    }
}
