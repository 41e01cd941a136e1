//! [`ClientConfig`]: the settings of an [`HttpCoworkClient`](super::HttpCoworkClient)
//! (base URL, key, mode, timeouts, rate budgets, retries, page size), and the
//! `anthropic-version` the client speaks.

use std::fmt;
use std::time::Duration;

use crate::cowork::ratelimit::Backoff;
use crate::cowork::Mode;

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

/// The HTTP client every Anthropic API client here uses: `base_url` checked (returned
/// without its trailing slash), the key as a sensitive `x-api-key` header (`what` names
/// it in errors), `anthropic-version`, our user agent and the timeouts.
pub(crate) fn http_client(
    base_url: &str,
    api_key: &str,
    what: &str,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
) -> Result<(reqwest::Client, String), super::CoworkError> {
    use super::CoworkError;
    use reqwest::header::{HeaderMap, HeaderValue};
    let base_url = base_url.trim_end_matches('/');
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(CoworkError::Config(
            "base_url must start with http:// or https://".into(),
        ));
    }
    if api_key.trim().is_empty() {
        return Err(CoworkError::Config(format!("the {what} is empty")));
    }
    let mut key = HeaderValue::from_str(api_key.trim())
        .map_err(|_| CoworkError::Config(format!("the {what} is not a valid header value")))?;
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
    if let Some(t) = connect_timeout {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = request_timeout {
        builder = builder.timeout(t);
    }
    let http = builder
        .build()
        .map_err(|e| CoworkError::Config(format!("HTTP client: {e}")))?;
    Ok((http, base_url.to_string()))
}
