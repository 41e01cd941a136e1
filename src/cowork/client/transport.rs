//! The client's transport: one logical [`Call`], the rate budget it counts against,
//! pacing, the retry loop (429 with `retry-after`, transient failures, backoff with
//! jitter), decoding, and the ID- and cursor-paginated list walkers.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::wire::{decode, encode, parse_retry_after, transport_error};
use super::HttpCoworkClient;
use crate::cowork::beta::{self, Beta};
use crate::cowork::error::CoworkError;
use crate::cowork::types::*;
use crate::cowork::{CoworkResult, IdempotencyKey, Mode};

/// Which rate limit a call counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
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
pub(super) struct Call<'a> {
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
    pub(super) fn get(op: &'static str, path: String, limit: Limit) -> Self {
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

    pub(super) fn write(
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
    pub(super) fn with_beta(mut self, beta: Beta) -> Self {
        self.beta = Some(beta);
        self
    }

    /// Marks a write the server may apply twice if it is sent twice.
    pub(super) fn not_idempotent(mut self) -> Self {
        self.not_idempotent = true;
        self
    }
}

/// The transport failure that means the request never reached the server.
pub(super) const CONNECT_FAILED: &str = "connection failed";

/// Whether a failed call certainly changed nothing on the server: a 429, or a
/// connection that was never made. A timeout, a dropped answer or a 5xx may follow a
/// change the server made.
pub(super) fn certainly_not_applied(err: &CoworkError) -> bool {
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

impl HttpCoworkClient {
    pub(super) async fn pace(&self, limit: Limit) {
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
    pub(super) async fn execute(&self, call: &Call<'_>) -> CoworkResult<Vec<u8>> {
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

    pub(super) async fn attempt(&self, call: &Call<'_>) -> CoworkResult<Vec<u8>> {
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

    pub(super) async fn fetch<T: DeserializeOwned>(&self, call: &Call<'_>) -> CoworkResult<T> {
        let body = self.execute(call).await?;
        decode(&body)
    }

    /// Follows ID pagination (`limit`, `after_id` → `last_id`, `has_more`).
    pub(super) async fn list_by_id<T: DeserializeOwned>(
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
    pub(super) async fn list_by_cursor<T: DeserializeOwned>(
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
    pub(super) async fn list_pages<T: DeserializeOwned>(
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

    pub(super) fn spend_body(
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
