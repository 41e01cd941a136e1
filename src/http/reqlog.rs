//! The provisioning log: a bounded in-memory ring of the most recent SCIM requests
//! (method, resource type, resource id, status, latency, and the IdP client, which
//! is the token's subject), recorded by the request middleware and shown by the
//! console. It holds ids only, never bodies, userNames or emails, and it is lost on
//! restart by design: the audit trail is the durable record of every change.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

/// How many requests the ring keeps.
pub const CAPACITY: usize = 2_000;

/// The subject of the token that made a request, left in the request's extensions
/// by the SCIM extractor for the middleware to read.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// One SCIM request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The request id (as in the log and `X-Request-Id`).
    pub request_id: String,
    /// The IdP client (token subject); `None` when the request was not authenticated.
    pub client: Option<String>,
    /// `GET`, `POST`, ...
    pub method: String,
    /// `Users`, `Groups`, `Schemas`, ... (the first segment after `/scim/v2`).
    pub resource: String,
    /// The resource id in the path, or the one a create made (from `Location`).
    pub id: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// Latency in microseconds.
    pub micros: u64,
}

/// The ring.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
}

/// Longest id kept (ids are opaque; a longer one is cut).
const MAX_ID: usize = 80;

impl RequestLog {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request, dropping the oldest beyond [`CAPACITY`].
    pub fn record(&self, entry: LoggedRequest) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The newest requests first, at most `limit`, only those of `client` when given.
    pub fn recent(&self, client: Option<&str>, limit: usize) -> Vec<LoggedRequest> {
        self.entries
            .lock()
            .iter()
            .rev()
            .filter(|e| client.is_none_or(|c| e.client.as_deref() == Some(c)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The clients seen, with their request count and last request time.
    pub fn clients(&self) -> Vec<(String, usize, DateTime<Utc>)> {
        let mut out: Vec<(String, usize, DateTime<Utc>)> = Vec::new();
        for e in self.entries.lock().iter() {
            let Some(c) = &e.client else { continue };
            match out.iter_mut().find(|(name, _, _)| name == c) {
                Some(row) => {
                    row.1 += 1;
                    row.2 = e.at;
                }
                None => out.push((c.clone(), 1, e.at)),
            }
        }
        out
    }
}

/// The resource type and id of a SCIM path (`/scim/v2/Users/abc` → `Users`, `abc`),
/// or `None` for other paths.
pub fn scim_target(path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix("/scim/v2")?;
    let mut parts = rest.trim_matches('/').split('/');
    let resource = parts.next().filter(|s| !s.is_empty()).unwrap_or("(root)");
    let id = parts
        .next()
        .filter(|s| !s.is_empty() && *s != ".search")
        .map(|s| s.chars().take(MAX_ID).collect());
    Some((resource.chars().take(40).collect(), id))
}

/// The id at the end of a `Location` header (a create's new resource).
pub fn id_from_location(location: &str) -> Option<String> {
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(MAX_ID).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: &str, n: u16) -> LoggedRequest {
        LoggedRequest {
            at: DateTime::<Utc>::default(),
            request_id: format!("r{n}"),
            client: Some(client.into()),
            method: "GET".into(),
            resource: "Users".into(),
            id: None,
            status: n,
            micros: 1,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_requests_only() {
        let log = RequestLog::new();
        for n in 0..(CAPACITY as u16 + 5) {
            log.record(entry(if n % 2 == 0 { "okta" } else { "entra" }, n));
        }
        let recent = log.recent(None, usize::MAX);
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].status, CAPACITY as u16 + 4);
        assert!(log
            .recent(Some("okta"), 10)
            .iter()
            .all(|e| e.client.as_deref() == Some("okta")));
        assert_eq!(log.clients().len(), 2);
    }

    #[test]
    fn scim_paths_name_their_resource_and_id() {
        assert_eq!(
            scim_target("/scim/v2/Users/abc"),
            Some(("Users".into(), Some("abc".into())))
        );
        assert_eq!(
            scim_target("/scim/v2/Groups/.search"),
            Some(("Groups".into(), None))
        );
        assert_eq!(scim_target("/admin/v1/status"), None);
        assert_eq!(
            id_from_location("https://h/scim/v2/Users/u-1").as_deref(),
            Some("u-1")
        );
    }
}
