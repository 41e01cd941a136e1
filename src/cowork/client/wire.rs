//! The client's wire helpers: transport failures as [`CoworkError`], `retry-after`,
//! JSON in and out (errors name types and positions, never values), path segments.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::CONNECT_FAILED;
use crate::cowork::CoworkError;
use crate::cowork::CoworkResult;

pub(super) fn transport_error(e: reqwest::Error) -> CoworkError {
    let reason = if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        CONNECT_FAILED.to_owned()
    } else if e.is_body() || e.is_decode() {
        "connection closed while reading the answer".to_owned()
    } else {
        format!("transport: {}", e.without_url())
    };
    CoworkError::Transient {
        reason,
        status: None,
        request_id: None,
    }
}

/// `retry-after` as delay-seconds (integer or decimal). HTTP dates are not used by
/// the admin API and are ignored (the client then backs off on its own).
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> CoworkResult<T> {
    serde_json::from_slice(body).map_err(|e| CoworkError::Decode {
        // Position and category only: serde's message can quote values.
        reason: format!(
            "{}: {:?} error at line {} column {}",
            short_type_name::<T>(),
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let end = full.find('<').unwrap_or(full.len());
    full[..end].rsplit("::").next().unwrap_or(full)
}

pub(super) fn encode<T: Serialize>(value: &T) -> CoworkResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| CoworkError::Decode {
        reason: format!("request body: {:?}", e.classify()),
    })
}

/// Percent-encodes one path segment (ids are `[A-Za-z0-9_-]`, but never trust that).
pub(super) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
