//! [`HttpCoworkClient`]: the reqwest implementation of [`CoworkApi`].
//!
//! One pooled `reqwest::Client`; `x-api-key`, `anthropic-version: 2023-06-01` on every
//! request, `content-type: application/json` with every body, `Idempotency-Key` on
//! every write. Client-side token buckets keep it under the documented limits; 429
//! (honouring `retry-after`) and transient failures are retried with exponential
//! backoff and jitter, a bounded number of times. The `request-id` of each answer is
//! logged at debug; the key never is.
//!
//! Beta endpoints (the Plugins API, spend-limit reads) live in `beta_calls`: their
//! `anthropic-beta` headers come from [`super::beta`], the one place that names them,
//! and a 404 with the header marks the feature unavailable to the organization, once.
//!
//! Time: waits use `tokio::time`. Tests that pause tokio time should also turn the
//! reqwest timeouts off (`connect_timeout`/`request_timeout = None`): with paused time
//! the runtime jumps to the next timer while it waits for the network, and a request
//! timeout would then fire at once.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;

mod beta_calls;
mod wire;

use wire::{decode, encode, parse_retry_after, seg, transport_error};

use super::beta::{self, Beta, BetaFeatures};
use super::error::CoworkError;
use super::plugins::*;
use super::ratelimit::{Backoff, Jitter, TokenBucket};
use super::types::*;
use super::{
    CallCounter, CallCounts, CoworkApi, CoworkResult, Created, IdempotencyKey, Mode, Outcome,
};

/// The `anthropic-version` this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Settings of an [`HttpCoworkClient`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Scheme and host, e.g. `https://api.anthropic.com` or the simulator's
    /// `http://127.0.0.1:PORT`; `/v1/organizations` is appended.
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: String,
    /// Which tier may be written.
    pub mode: Mode,
    /// TCP connect timeout (default 5 s; `None` = none).
    pub connect_timeout: Option<Duration>,
    /// Whole-request timeout (default 30 s; `None` = none).
    pub request_timeout: Option<Duration>,
    /// Client-side limit for the shared admin bucket (default 90 = 90 % of 100; 0 =
    /// unlimited).
    pub requests_per_minute: u32,
    /// Client-side limit for the spend-limit endpoints (default 54 = 90 % of 60).
    pub spend_requests_per_minute: u32,
    /// Client-side limit for invite creation (default 1,080 = 90 % of 1,200 an hour).
    pub invites_per_hour: u32,
    /// Client-side limit for Plugins API reads (default 270 = 90 % of 300).
    pub plugin_reads_per_minute: u32,
    /// Client-side limit for Plugins API writes (default 54 = 90 % of 60).
    pub plugin_writes_per_minute: u32,
    /// Attempts per call, the first included (default 6).
    pub max_attempts: u32,
    /// Backoff between attempts when the server gives no `retry-after`.
    pub backoff: Backoff,
    /// Page size of bulk reads (default 1000, the maximum).
    pub page_size: u32,
}

impl ClientConfig {
    /// Defaults for `base_url` and `api_key`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            mode: Mode::Extended,
            connect_timeout: Some(Duration::from_secs(5)),
            request_timeout: Some(Duration::from_secs(30)),
            requests_per_minute: 90,
            spend_requests_per_minute: 54,
            invites_per_hour: 1080,
            plugin_reads_per_minute: 270,
            plugin_writes_per_minute: 54,
            max_attempts: 6,
            backoff: Backoff::default(),
            page_size: 1000,
        }
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Turns off client-side rate limiting and reqwest timeouts (for tests with
    /// paused tokio time and for an in-process simulator without limits).
    pub fn without_limits(mut self) -> Self {
        self.requests_per_minute = 0;
        self.spend_requests_per_minute = 0;
        self.invites_per_hour = 0;
        self.plugin_reads_per_minute = 0;
        self.plugin_writes_per_minute = 0;
        self.connect_timeout = None;
        self.request_timeout = None;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("mode", &self.mode)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("spend_requests_per_minute", &self.spend_requests_per_minute)
            .field("invites_per_hour", &self.invites_per_hour)
            .field("plugin_reads_per_minute", &self.plugin_reads_per_minute)
            .field("plugin_writes_per_minute", &self.plugin_writes_per_minute)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Which rate limit a call counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// The shared 100/min admin limit.
    Admin,
    /// The 60/min spend-limits limit.
    Spend,
    /// Invite creation: its own hourly limit and the admin limit.
    Invite,
    /// Plugins API reads: their own 300/min limit.
    PluginRead,
    /// Plugins API writes: their own 60/min limit.
    PluginWrite,
}

/// One logical request.
struct Call<'a> {
    op: &'static str,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    key: Option<&'a IdempotencyKey>,
    limit: Limit,
    /// The server may apply the request twice if it is sent twice (no idempotency key
    /// is honoured): retry only failures that certainly changed nothing.
    not_idempotent: bool,
    /// The beta feature the request opts into (`anthropic-beta`).
    beta: Option<Beta>,
}

impl<'a> Call<'a> {
    fn get(op: &'static str, path: String, limit: Limit) -> Self {
        Self {
            op,
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            key: None,
            limit,
            not_idempotent: false,
            beta: None,
        }
    }

    fn write(
        op: &'static str,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        key: &'a IdempotencyKey,
        limit: Limit,
    ) -> Self {
        Self {
            op,
            method,
            path,
            query: Vec::new(),
            body,
            key: Some(key),
            limit,
            not_idempotent: false,
            beta: None,
        }
    }

    /// Opts the request into a beta feature.
    fn with_beta(mut self, beta: Beta) -> Self {
        self.beta = Some(beta);
        self
    }

    /// Marks a write the server may apply twice if it is sent twice.
    fn not_idempotent(mut self) -> Self {
        self.not_idempotent = true;
        self
    }
}

/// The transport failure that means the request never reached the server.
const CONNECT_FAILED: &str = "connection failed";

/// Whether a failed call certainly changed nothing on the server: a 429, or a
/// connection that was never made. A timeout, a dropped answer or a 5xx may follow a
/// change the server made.
fn certainly_not_applied(err: &CoworkError) -> bool {
    match err {
        CoworkError::RateLimited { .. } => true,
        CoworkError::Transient {
            status: None,
            reason,
            ..
        } => reason == CONNECT_FAILED,
        _ => false,
    }
}

/// The reqwest client for the Cowork admin API (tier A and tier B).
#[derive(Debug)]
pub struct HttpCoworkClient {
    http: reqwest::Client,
    base: String,
    mode: Mode,
    admin: TokenBucket,
    spend: TokenBucket,
    invites: TokenBucket,
    plugin_reads: TokenBucket,
    plugin_writes: TokenBucket,
    /// Beta features found unavailable to the organization.
    betas: BetaFeatures,
    /// One write at a time per plugin (the Plugins API answers 503 otherwise).
    plugin_locks: parking_lot::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>,
    >,
    max_attempts: u32,
    backoff: Backoff,
    jitter: Jitter,
    page_size: u32,
    counts: CallCounter,
    /// The `request-id` of the latest write the server accepted, until taken.
    last_write: parking_lot::Mutex<Option<String>>,
}

impl HttpCoworkClient {
    /// Builds a client. Fails on an unusable base URL or key.
    pub fn new(config: ClientConfig) -> Result<Self, CoworkError> {
        let base_url = config.base_url.trim_end_matches('/');
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(CoworkError::Config(
                "base_url must start with http:// or https://".into(),
            ));
        }
        if config.api_key.trim().is_empty() {
            return Err(CoworkError::Config("the API key is empty".into()));
        }
        let mut key = HeaderValue::from_str(config.api_key.trim())
            .map_err(|_| CoworkError::Config("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("cowork-sync/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = config.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = config.request_timeout {
            builder = builder.timeout(t);
        }
        let http = builder
            .build()
            .map_err(|e| CoworkError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: format!("{base_url}/v1/organizations"),
            mode: config.mode,
            admin: TokenBucket::per_minute(config.requests_per_minute),
            spend: TokenBucket::per_minute(config.spend_requests_per_minute),
            invites: TokenBucket::new(config.invites_per_hour, Duration::from_secs(3600)),
            plugin_reads: TokenBucket::per_minute(config.plugin_reads_per_minute),
            plugin_writes: TokenBucket::per_minute(config.plugin_writes_per_minute),
            betas: BetaFeatures::default(),
            plugin_locks: parking_lot::Mutex::new(std::collections::HashMap::new()),
            max_attempts: config.max_attempts.max(1),
            backoff: config.backoff,
            jitter: Jitter::from_entropy(),
            page_size: config.page_size.clamp(1, 1000),
            counts: CallCounter::default(),
            last_write: parking_lot::Mutex::new(None),
        })
    }

    async fn pace(&self, limit: Limit) {
        match limit {
            Limit::Admin => self.admin.acquire().await,
            Limit::Spend => self.spend.acquire().await,
            Limit::Invite => {
                self.invites.acquire().await;
                self.admin.acquire().await;
            }
            Limit::PluginRead => self.plugin_reads.acquire().await,
            Limit::PluginWrite => self.plugin_writes.acquire().await,
        }
    }

    /// Sends a call, retrying transient failures and 429s; returns the 2xx body.
    async fn execute(&self, call: &Call<'_>) -> CoworkResult<Vec<u8>> {
        if call.method == Method::GET {
            self.counts.read();
        } else {
            self.counts.write();
        }
        let mut attempt = 1;
        loop {
            self.pace(call.limit).await;
            let span = crate::telemetry::work::client_span(
                call.method.as_str(),
                &self.base,
                &call.path,
                call.op,
                attempt,
            );
            let err = match tracing::Instrument::instrument(self.attempt(call), span).await {
                Ok(body) => return Ok(body),
                Err(e) => e,
            };
            if let CoworkError::RateLimited { .. } = err {
                self.counts.rate_limited();
            }
            let may_retry =
                err.is_retryable() && (!call.not_idempotent || certainly_not_applied(&err));
            if !may_retry || attempt >= self.max_attempts {
                tracing::debug!(
                    op = call.op,
                    attempt,
                    code = err.code().unwrap_or(""),
                    request_id = err.request_id().unwrap_or(""),
                    "cowork call failed"
                );
                return Err(err);
            }
            let wait = match &err {
                CoworkError::RateLimited {
                    retry_after: Some(d),
                    ..
                } => (*d).min(Duration::from_secs(600)),
                _ => self.backoff.delay(attempt, &self.jitter),
            };
            tracing::debug!(
                op = call.op,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                request_id = err.request_id().unwrap_or(""),
                "cowork call will be retried"
            );
            self.counts.retry();
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, call: &Call<'_>) -> CoworkResult<Vec<u8>> {
        let url = format!("{}{}", self.base, call.path);
        let mut req = self.http.request(call.method.clone(), url);
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = &call.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(key) = call.key {
            req = req.header("Idempotency-Key", key.as_str());
        }
        if let Some(b) = call.beta {
            req = req.header(beta::HEADER, b.header_value());
        }
        for (name, value) in crate::telemetry::propagation::headers_of(&tracing::Span::current()) {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        crate::telemetry::work::client_status(status);
        let request_id = resp
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // The Plugins API says whether a 5xx is worth retrying; `false` means no.
        let no_retry = resp
            .headers()
            .get("x-should-retry")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let body = resp.bytes().await.map_err(transport_error)?;
        tracing::debug!(
            op = call.op,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            "cowork call"
        );
        if (200..300).contains(&status) {
            if call.method != Method::GET {
                *self.last_write.lock() = request_id;
            }
            Ok(body.to_vec())
        } else {
            let err = CoworkError::from_response(status, &body, retry_after, request_id);
            match err {
                CoworkError::Transient {
                    reason, request_id, ..
                } if no_retry => Err(CoworkError::Other {
                    status,
                    error_type: "api_error".into(),
                    message: format!("{reason} (x-should-retry: false)"),
                    request_id,
                }),
                e => Err(e),
            }
        }
    }

    async fn fetch<T: DeserializeOwned>(&self, call: &Call<'_>) -> CoworkResult<T> {
        let body = self.execute(call).await?;
        decode(&body)
    }

    /// Follows ID pagination (`limit`, `after_id` → `last_id`, `has_more`).
    async fn list_by_id<T: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
    ) -> CoworkResult<Vec<T>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut call = Call::get(op, path.to_owned(), Limit::Admin);
            call.query.push(("limit", self.page_size.to_string()));
            if let Some(a) = &after {
                call.query.push(("after_id", a.clone()));
            }
            let page: IdPage<T> = self.fetch(&call).await?;
            out.extend(page.data);
            if !page.has_more {
                return Ok(out);
            }
            match page.last_id {
                Some(last) if after.as_deref() != Some(last.as_str()) => after = Some(last),
                _ => {
                    return Err(CoworkError::Decode {
                        reason: format!("{op}: has_more without a new last_id"),
                    })
                }
            }
        }
    }

    /// Follows cursor pagination (`page` ↔ `next_page`, `has_more`).
    async fn list_by_cursor<T: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
        limit: Limit,
        filters: &[(&'static str, String)],
    ) -> CoworkResult<Vec<T>> {
        self.list_pages(op, path, limit, filters, None).await
    }

    /// Follows cursor pagination, optionally opted into a beta feature (the Plugins
    /// API pages at most 100).
    async fn list_pages<T: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
        limit: Limit,
        filters: &[(&'static str, String)],
        beta: Option<Beta>,
    ) -> CoworkResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let page_size = match beta {
            Some(Beta::Plugins) => self.page_size.min(100),
            _ => self.page_size,
        };
        loop {
            let mut call = Call::get(op, path.to_owned(), limit);
            call.beta = beta;
            call.query.extend(filters.iter().cloned());
            call.query.push(("limit", page_size.to_string()));
            if let Some(c) = &cursor {
                call.query.push(("page", c.clone()));
            }
            let page: CursorPage<T> = self.fetch(&call).await?;
            out.extend(page.data);
            match (page.has_more, page.next_page) {
                (Some(false), _) | (None, None) => return Ok(out),
                (_, Some(next)) if cursor.as_deref() != Some(next.as_str()) => {
                    cursor = Some(next);
                }
                (_, Some(_)) => {
                    return Err(CoworkError::Decode {
                        reason: format!("{op}: next_page repeated the previous cursor"),
                    })
                }
                (Some(true), None) => {
                    return Err(CoworkError::Decode {
                        reason: format!("{op}: has_more without next_page"),
                    })
                }
            }
        }
    }

    fn spend_body(
        &self,
        scope: SpendScope,
        amount_minor: Option<u64>,
        currency: &str,
    ) -> CoworkResult<Vec<u8>> {
        let request = SpendLimitRequest {
            scope,
            period: Some(Period::Monthly),
            amount: amount_minor.map(|a| a.to_string()),
            // The real API has no currency field: the amount is always in the billing
            // currency, which the planner checked against `GET /me`.
            currency: match self.mode {
                Mode::Extended => Some(currency.to_owned()),
                Mode::Real => None,
            },
        };
        encode(&request)
    }
}

impl CoworkApi for HttpCoworkClient {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn call_counts(&self) -> CallCounts {
        self.counts.snapshot()
    }

    fn take_write_request_id(&self) -> Option<String> {
        self.last_write.lock().take()
    }

    async fn get_me(&self) -> CoworkResult<Organization> {
        self.fetch(&Call::get("get_me", "/me".into(), Limit::Admin))
            .await
    }

    async fn list_users(&self) -> CoworkResult<Vec<User>> {
        self.list_by_id("list_users", "/users").await
    }

    async fn get_user(&self, user_id: &str) -> CoworkResult<User> {
        let path = format!("/users/{}", seg(user_id));
        self.fetch(&Call::get("get_user", path, Limit::Admin)).await
    }

    async fn set_user_role(
        &self,
        user_id: &str,
        role: OrgRole,
        key: &IdempotencyKey,
    ) -> CoworkResult<User> {
        let body = encode(&UserRoleUpdate { role })?;
        let path = format!("/users/{}", seg(user_id));
        let call = Call::write(
            "set_user_role",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn remove_user(&self, user_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        let path = format!("/users/{}", seg(user_id));
        let call = Call::write("remove_user", Method::DELETE, path, None, key, Limit::Admin);
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn withdraw_invite(
        &self,
        invite_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/invites/{}", seg(invite_id));
        let call = Call::write(
            "withdraw_invite",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, |e| {
            e.is_not_found() || matches!(e, CoworkError::InvalidRequest { .. })
        })
    }

    async fn list_invites(&self) -> CoworkResult<Vec<Invite>> {
        self.list_by_id("list_invites", "/invites").await
    }

    async fn create_invite(
        &self,
        invite: &InviteRequest,
        key: &IdempotencyKey,
    ) -> CoworkResult<Invite> {
        let body = encode(invite)?;
        let call = Call::write(
            "create_invite",
            Method::POST,
            "/invites".into(),
            Some(body),
            key,
            Limit::Invite,
        );
        self.fetch(&call).await
    }

    async fn list_groups(&self) -> CoworkResult<Vec<RbacGroup>> {
        self.list_by_cursor("list_groups", "/rbac_groups", Limit::Admin, &[])
            .await
    }

    async fn get_group(&self, group_id: &str) -> CoworkResult<RbacGroup> {
        let path = format!("/rbac_groups/{}", seg(group_id));
        self.fetch(&Call::get("get_group", path, Limit::Admin))
            .await
    }

    async fn create_group(
        &self,
        group: &NewGroup,
        key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacGroup>> {
        let (body, not_idempotent) = match self.mode {
            // `external_id` makes a repeated create a 409 naming the group.
            Mode::Extended => (encode(group)?, false),
            // Names are not unique and no idempotency key is documented: a repeated
            // create makes a second group. The executor finds a lost create instead.
            Mode::Real => (encode(&json!({ "name": group.name }))?, true),
        };
        let mut call = Call::write(
            "create_group",
            Method::POST,
            "/rbac_groups".into(),
            Some(body),
            key,
            Limit::Admin,
        );
        if not_idempotent {
            call = call.not_idempotent();
        }
        Created::from_result(self.fetch(&call).await)
    }

    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        let body = match self.mode {
            Mode::Extended => encode(update)?,
            Mode::Real => {
                let Some(name) = &update.name else {
                    return Err(CoworkError::NotInRealApi {
                        operation: "update_group_description",
                    });
                };
                encode(&json!({ "name": name }))?
            }
        };
        let path = format!("/rbac_groups/{}", seg(group_id));
        let call = Call::write(
            "update_group",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn delete_group(&self, group_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        let path = format!("/rbac_groups/{}", seg(group_id));
        let call = Call::write(
            "delete_group",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn list_group_members(&self, group_id: &str) -> CoworkResult<Vec<RbacGroupMember>> {
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        self.list_by_cursor("list_group_members", &path, Limit::Admin, &[])
            .await
    }

    async fn add_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let body = encode(&AddMember {
            user_id: user_id.to_owned(),
        })?;
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        let call = Call::write(
            "add_group_member",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_already_member)
    }

    async fn remove_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/rbac_groups/{}/members/{}", seg(group_id), seg(user_id));
        let call = Call::write(
            "remove_group_member",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn set_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        key: &IdempotencyKey,
    ) -> CoworkResult<SetMembersResult> {
        self.mode.require_extended("set_group_members")?;
        let body = encode(&SetMembers {
            user_ids: user_ids.to_vec(),
        })?;
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        let call = Call::write(
            "set_group_members",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn list_roles(&self) -> CoworkResult<Vec<RbacRole>> {
        self.list_by_cursor("list_roles", "/rbac_roles", Limit::Admin, &[])
            .await
    }

    async fn list_role_permissions(&self, role_id: &str) -> CoworkResult<Vec<RolePermission>> {
        let path = format!("/rbac_roles/{}/permissions", seg(role_id));
        self.list_by_cursor("list_role_permissions", &path, Limit::Admin, &[])
            .await
    }

    async fn create_role(
        &self,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacRole>> {
        self.mode.require_extended("create_role")?;
        let body = encode(spec)?;
        let call = Call::write(
            "create_role",
            Method::POST,
            "/rbac_roles".into(),
            Some(body),
            key,
            Limit::Admin,
        );
        Created::from_result(self.fetch(&call).await)
    }

    async fn update_role(
        &self,
        role_id: &str,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacRole> {
        self.mode.require_extended("update_role")?;
        let body = encode(spec)?;
        let path = format!("/rbac_roles/{}", seg(role_id));
        let call = Call::write(
            "update_role",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn delete_role(&self, role_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.mode.require_extended("delete_role")?;
        let path = format!("/rbac_roles/{}", seg(role_id));
        let call = Call::write("delete_role", Method::DELETE, path, None, key, Limit::Admin);
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn set_group_roles(
        &self,
        group_id: &str,
        role_ids: &[String],
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        self.mode.require_extended("set_group_roles")?;
        let body = encode(&SetRoles {
            role_ids: role_ids.to_vec(),
        })?;
        let path = format!("/rbac_groups/{}/roles", seg(group_id));
        let call = Call::write(
            "set_group_roles",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn list_effective_spend(&self) -> CoworkResult<Vec<SpendSummary>> {
        self.list_by_cursor(
            "list_effective_spend",
            "/spend_limits/effective",
            Limit::Spend,
            &[],
        )
        .await
    }

    async fn list_spend_limits(&self, filter: &SpendLimitFilter) -> CoworkResult<Vec<SpendLimit>> {
        self.read_spend_limits(filter).await
    }

    async fn list_plugins(&self) -> CoworkResult<Vec<Plugin>> {
        self.read_plugins().await
    }

    async fn list_plugin_settings(&self, plugin_id: &str) -> CoworkResult<Vec<PluginSetting>> {
        self.read_plugin_settings(plugin_id).await
    }

    async fn set_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        key: &IdempotencyKey,
    ) -> CoworkResult<PluginSetting> {
        self.write_plugin_setting(plugin_id, target, preference, key)
            .await
    }

    async fn delete_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        self.remove_plugin_setting(plugin_id, target, key).await
    }

    async fn upsert_user_spend_limit(
        &self,
        user_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        let scope = SpendScope::User {
            user_id: user_id.to_owned(),
        };
        let body = self.spend_body(scope, amount_minor, currency)?;
        let call = Call::write(
            "upsert_user_spend_limit",
            Method::POST,
            "/spend_limits".into(),
            Some(body),
            key,
            Limit::Spend,
        );
        self.fetch(&call).await
    }

    async fn upsert_group_spend_limit(
        &self,
        group_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        self.mode.require_extended("upsert_group_spend_limit")?;
        let scope = SpendScope::RbacGroup {
            rbac_group_id: group_id.to_owned(),
        };
        let body = self.spend_body(scope, amount_minor, currency)?;
        let call = Call::write(
            "upsert_group_spend_limit",
            Method::POST,
            "/spend_limits".into(),
            Some(body),
            key,
            Limit::Spend,
        );
        self.fetch(&call).await
    }

    async fn delete_spend_limit(
        &self,
        spend_limit_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/spend_limits/{}", seg(spend_limit_id));
        let call = Call::write(
            "delete_spend_limit",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Spend,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn list_plugin_policies(&self) -> CoworkResult<Vec<PluginPolicy>> {
        self.list_by_cursor(
            "list_plugin_policies",
            "/plugin_policies",
            Limit::Admin,
            &[],
        )
        .await
    }

    async fn put_plugin_policy(
        &self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        key: &IdempotencyKey,
    ) -> CoworkResult<PluginPolicy> {
        self.mode.require_extended("put_plugin_policy")?;
        let body = encode(update)?;
        let path = format!("/plugin_policies/{}", seg(plugin_id));
        let call = Call::write(
            "put_plugin_policy",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn get_effective_access(&self, user_id: &str) -> CoworkResult<EffectiveAccess> {
        let path = format!("/users/{}/effective_access", seg(user_id));
        self.fetch(&Call::get("get_effective_access", path, Limit::Admin))
            .await
    }
}

#[cfg(test)]
mod tests;
