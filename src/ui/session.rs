//! Console sessions: an admin token is exchanged once for a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS). Sessions live in
//! memory, bounded, keyed by the SHA-256 of the cookie value (a memory dump shows no
//! usable cookie); each has an absolute expiry, an idle timeout and its own CSRF
//! token. A restart signs everyone out. Sign-in and sign-out are audited by the
//! handlers; this module holds no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

use crate::auth::{hex, random_bytes, KeyError};

/// The session cookie.
pub const COOKIE: &str = "cs_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub const SIGN_IN_COOKIE: &str = "cs_signin";
/// A session ends this long after sign-in, however busy.
pub const LIFETIME: Duration = Duration::hours(8);
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::hours(1);
/// Most sessions held at once; the least recently used goes first beyond it.
pub const MAX_SESSIONS: usize = 256;

/// One signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The admin token's subject (the actor in the audit trail).
    pub subject: String,
    /// The admin token's id (jti), for correlation and revocation.
    pub token_id: String,
    /// Short, non-secret handle of the session (for the audit trail and the tokens page).
    pub handle: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Sign-in time.
    pub created: DateTime<Utc>,
    /// Last request.
    pub last_seen: DateTime<Utc>,
}

impl Session {
    /// When the session ends if nothing else happens.
    pub fn expires(&self) -> DateTime<Utc> {
        (self.created + LIFETIME).min(self.last_seen + IDLE)
    }
}

/// Why a cookie did not open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A live session.
    Live(Session),
    /// It existed and has expired (now removed).
    Expired(Session),
    /// Unknown.
    Unknown,
}

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

fn digest(cookie: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, cookie.as_bytes()).as_ref())
}

/// A random token for a cookie or a form (256 bits, hex).
pub fn random_token() -> Result<String, KeyError> {
    Ok(hex(&random_bytes::<32>()?))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a session for `subject`; returns the cookie value and the session.
    pub fn open(
        &self,
        subject: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), KeyError> {
        let cookie = random_token()?;
        let key = digest(&cookie);
        let session = Session {
            subject: subject.to_string(),
            token_id: token_id.to_string(),
            handle: key.chars().take(12).collect(),
            csrf: random_token()?,
            created: now,
            last_seen: now,
        };
        let mut table = self.table.lock();
        table.retain(|_, s| s.expires() > now);
        while table.len() >= MAX_SESSIONS {
            let oldest = table
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => table.remove(&k),
                None => break,
            };
        }
        table.insert(key, session.clone());
        Ok((cookie, session))
    }

    /// The session of a cookie, touched (its idle timer restarts) when live.
    pub fn find(&self, cookie: &str, now: DateTime<Utc>) -> Lookup {
        let key = digest(cookie);
        let mut table = self.table.lock();
        match table.get_mut(&key) {
            Some(s) if s.expires() > now => {
                s.last_seen = now;
                Lookup::Live(s.clone())
            }
            Some(_) => table.remove(&key).map_or(Lookup::Unknown, Lookup::Expired),
            None => Lookup::Unknown,
        }
    }

    /// Ends the session of a cookie; returns it when there was one.
    pub fn close(&self, cookie: &str) -> Option<Session> {
        self.table.lock().remove(&digest(cookie))
    }

    /// Ends the session with this handle (from the tokens page).
    pub fn close_handle(&self, handle: &str) -> Option<Session> {
        let mut table = self.table.lock();
        let key = table
            .iter()
            .find(|(_, s)| s.handle == handle)
            .map(|(k, _)| k.clone())?;
        table.remove(&key)
    }

    /// Ends every session opened with the token `token_id` (it was revoked);
    /// returns them.
    pub fn close_token(&self, token_id: &str) -> Vec<Session> {
        let mut table = self.table.lock();
        let keys: Vec<String> = table
            .iter()
            .filter(|(_, s)| s.token_id == token_id)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| table.remove(k)).collect()
    }

    /// Live sessions, newest first.
    pub fn live(&self, now: DateTime<Utc>) -> Vec<Session> {
        let mut out: Vec<Session> = self
            .table
            .lock()
            .values()
            .filter(|s| s.expires() > now)
            .cloned()
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_session_ends_when_idle_and_at_its_lifetime() {
        let sessions = Sessions::new();
        let (cookie, s) = sessions.open("ops", "j1", t0()).unwrap();
        assert_eq!(s.csrf.len(), 64);
        assert!(matches!(
            sessions.find(&cookie, t0() + Duration::minutes(59)),
            Lookup::Live(_)
        ));
        // Touched at 59 min: still live at 1 h 58 min.
        assert!(matches!(
            sessions.find(&cookie, t0() + Duration::minutes(118)),
            Lookup::Live(_)
        ));
        assert!(matches!(
            sessions.find(&cookie, t0() + Duration::minutes(179)),
            Lookup::Expired(_)
        ));
        assert_eq!(sessions.find(&cookie, t0()), Lookup::Unknown);
        let (cookie, _) = sessions.open("ops", "j1", t0()).unwrap();
        for m in (50..=470).step_by(50) {
            assert!(matches!(
                sessions.find(&cookie, t0() + Duration::minutes(m)),
                Lookup::Live(_)
            ));
        }
        assert!(matches!(
            sessions.find(&cookie, t0() + Duration::hours(8)),
            Lookup::Expired(_)
        ));
    }

    #[test]
    fn the_table_is_bounded_and_sign_out_closes() {
        let sessions = Sessions::new();
        let mut cookies = Vec::new();
        for i in 0..(MAX_SESSIONS + 3) {
            let at = t0() + Duration::seconds(i as i64);
            cookies.push(sessions.open("ops", "j", at).unwrap().0);
        }
        assert_eq!(sessions.live(t0()).len(), MAX_SESSIONS);
        assert_eq!(sessions.find(&cookies[0], t0()), Lookup::Unknown);
        let last = cookies.last().unwrap();
        assert!(sessions.close(last).is_some());
        assert_eq!(sessions.find(last, t0()), Lookup::Unknown);
        // A fresh table: in the full one above, sessions opened at t0 are the oldest
        // and would be evicted by the next open.
        let sessions = Sessions::new();
        let (a, _) = sessions.open("ops", "revoked", t0()).unwrap();
        let (b, _) = sessions.open("ops", "revoked", t0()).unwrap();
        let (c, _) = sessions.open("ops", "kept", t0()).unwrap();
        assert_eq!(sessions.close_token("revoked").len(), 2);
        assert_eq!(sessions.find(&a, t0()), Lookup::Unknown);
        assert_eq!(sessions.find(&b, t0()), Lookup::Unknown);
        assert!(matches!(sessions.find(&c, t0()), Lookup::Live(_)));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
