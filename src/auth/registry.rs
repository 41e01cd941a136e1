//! The token registry: every token the daemon mints or sees, by `jti`, with its
//! scope, subject, issue and expiry times, when it was last used, and whether it is
//! revoked. Never the token itself.
//!
//! Records live in `Table::Meta` under the `token/` prefix (no other meta key starts
//! with it) and are loaded into memory at start; requests consult memory only. A
//! token first presented is recorded (and audited as `token.seen`) then; `token mint`
//! works without the daemon, so that is how minted tokens reach the registry. Last
//! use is kept in memory on every request but written at most once an hour
//! ([`TOUCH_EVERY`]), so SCIM traffic does not write per request. A revocation is
//! committed with its `token.revoked` audit entry and flushed to disk before
//! [`TokenRegistry::revoke`] returns. This module is free of actix.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AuthError, Principal};
use crate::audit::{self, AuditDraft};
use crate::store::codec::{scan_json, tx_put_json};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// The meta-table prefix of token records.
pub const PREFIX: &[u8] = b"token/";

/// Last use is persisted at most this often per token.
pub const TOUCH_EVERY: Duration = Duration::hours(1);

/// How the registry learnt of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Minted by `serve` on first start.
    Bootstrap,
    /// First presented on a request (`token mint`, or an external issuer's token).
    Seen,
}

/// What the registry knows of one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token id (`jti` claim).
    pub jti: String,
    /// The scopes it carries, space-separated.
    pub scope: String,
    /// Its subject.
    pub subject: String,
    /// Issued at.
    pub issued: DateTime<Utc>,
    /// Expires at.
    pub expires: DateTime<Utc>,
    /// Last accepted request (as last persisted, within [`TOUCH_EVERY`]).
    #[serde(default)]
    pub last_used: Option<DateTime<Utc>>,
    /// When it was revoked.
    #[serde(default)]
    pub revoked: Option<DateTime<Utc>>,
    /// Who revoked it (the revoking token's subject).
    #[serde(default)]
    pub revoked_by: Option<String>,
    /// How the registry learnt of it.
    pub source: Source,
}

impl TokenRecord {
    /// The record of a verified token, first seen at `now`.
    pub fn of(principal: &Principal, source: Source, now: DateTime<Utc>) -> Self {
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(now);
        Self {
            jti: principal.token_id.clone(),
            scope: principal
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            subject: principal.subject.clone(),
            issued: at(principal.issued_at),
            expires: at(principal.expires_at),
            last_used: None,
            revoked: None,
            revoked_by: None,
            source,
        }
    }
}

/// The outcome of a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now.
    Revoked(TokenRecord),
    /// It was revoked before; nothing changed.
    AlreadyRevoked(TokenRecord),
    /// No token with that jti is known.
    Unknown,
}

/// In memory: the record, and when its last use was last written.
#[derive(Debug, Clone)]
struct Entry {
    record: TokenRecord,
    persisted_use: Option<DateTime<Utc>>,
}

/// The registry, shared by every worker.
pub struct TokenRegistry {
    store: Arc<dyn Store>,
    entries: RwLock<HashMap<String, Entry>>,
}

fn key(jti: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

impl TokenRegistry {
    /// Loads every record from `store`.
    pub fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut entries = HashMap::new();
        scan_json::<TokenRecord>(store.as_ref(), Table::Meta, PREFIX, None, |_, record| {
            entries.insert(
                record.jti.clone(),
                Entry {
                    persisted_use: record.last_used,
                    record,
                },
            );
            ControlFlow::Continue(())
        })?;
        Ok(Self {
            store,
            entries: RwLock::new(entries),
        })
    }

    /// Records a token the daemon minted (the first-start tokens), audited as
    /// `token.minted`. An already known jti is left as it is.
    pub fn register(&self, record: TokenRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut entries = self.entries.write();
        if entries.contains_key(&record.jti) {
            return Ok(());
        }
        self.write(&record, Some("token.minted"), "cowork-sync", now)?;
        entries.insert(
            record.jti.clone(),
            Entry {
                persisted_use: None,
                record,
            },
        );
        Ok(())
    }

    /// Called for every verified token: refuses a revoked one, records one not seen
    /// before (audited as `token.seen`), and notes its use. A failed write is logged
    /// and does not refuse the request; the revocation check uses memory only.
    pub fn observe(&self, principal: &Principal, now: DateTime<Utc>) -> Result<(), AuthError> {
        let fresh = |e: &Entry| {
            e.persisted_use
                .is_some_and(|t| now - t < TOUCH_EVERY && t <= now)
        };
        if let Some(e) = self.entries.read().get(&principal.token_id) {
            if e.record.revoked.is_some() {
                return Err(AuthError::Revoked);
            }
            if fresh(e) {
                return Ok(());
            }
        }
        let mut entries = self.entries.write();
        match entries.get_mut(&principal.token_id) {
            Some(e) if e.record.revoked.is_some() => Err(AuthError::Revoked),
            Some(e) if fresh(e) => Ok(()),
            Some(e) => {
                e.record.last_used = Some(now);
                match self.write(&e.record, None, "cowork-sync", now) {
                    Ok(()) => e.persisted_use = Some(now),
                    Err(err) => {
                        tracing::warn!(error = %err, jti = %e.record.jti, "recording a token's last use failed")
                    }
                }
                Ok(())
            }
            None => {
                let mut record = TokenRecord::of(principal, Source::Seen, now);
                record.last_used = Some(now);
                let persisted_use = match self.write(
                    &record,
                    Some("token.seen"),
                    "cowork-sync",
                    now,
                ) {
                    Ok(()) => Some(now),
                    Err(err) => {
                        tracing::warn!(error = %err, jti = %record.jti, "recording a newly seen token failed");
                        None
                    }
                };
                entries.insert(
                    record.jti.clone(),
                    Entry {
                        record,
                        persisted_use,
                    },
                );
                Ok(())
            }
        }
    }

    /// Whether `jti` is revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.entries
            .read()
            .get(jti)
            .is_some_and(|e| e.record.revoked.is_some())
    }

    /// Every record, newest issue first (ties by jti).
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut out: Vec<TokenRecord> = self
            .entries
            .read()
            .values()
            .map(|e| e.record.clone())
            .collect();
        out.sort_by(|a, b| b.issued.cmp(&a.issued).then_with(|| a.jti.cmp(&b.jti)));
        out
    }

    /// Revokes `jti` for `actor`: committed with its `token.revoked` audit entry and
    /// on disk before this returns. Revoking a revoked jti changes nothing.
    pub fn revoke(
        &self,
        jti: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Revocation, StoreError> {
        let outcome = {
            let mut entries = self.entries.write();
            let Some(e) = entries.get_mut(jti) else {
                return Ok(Revocation::Unknown);
            };
            if e.record.revoked.is_some() {
                return Ok(Revocation::AlreadyRevoked(e.record.clone()));
            }
            let mut record = e.record.clone();
            record.revoked = Some(now);
            record.revoked_by = Some(actor.to_string());
            self.write(&record, Some("token.revoked"), actor, now)?;
            e.record = record.clone();
            record
        };
        // Durable before the caller answers 2xx.
        self.store.sync()?;
        Ok(Revocation::Revoked(outcome))
    }

    /// Writes a record, with an audit entry when `action` is given.
    fn write(
        &self,
        record: &TokenRecord,
        action: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let k = key(&record.jti);
        transaction::<_, StoreError>(self.store.as_ref(), |txn| {
            tx_put_json(txn, Table::Meta, &k, record).map_err(TxFail::Store)?;
            if let Some(action) = action {
                audit::append(
                    txn,
                    AuditDraft::new(actor, action, Some(&record.jti)).with(json!({
                        "scope": record.scope,
                        "subject": record.subject,
                        "expires": audit::timestamp(record.expires),
                        "source": record.source,
                    })),
                    now,
                )
                .map_err(TxFail::Store)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;
    use crate::store::memory::MemoryStore;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn principal(jti: &str) -> Principal {
        Principal {
            subject: "okta".into(),
            scopes: vec![Scope::Scim],
            token_id: jti.into(),
            issued_at: t0().timestamp(),
            expires_at: (t0() + Duration::days(30)).timestamp(),
        }
    }

    fn actions(store: &dyn Store) -> Vec<(String, String, Option<String>)> {
        audit::list(store, None, 0, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action, e.target))
            .collect()
    }

    #[test]
    fn a_token_is_recorded_once_when_first_seen_and_survives_a_reload() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone()).unwrap();
        registry.observe(&principal("j1"), t0()).unwrap();
        registry
            .observe(&principal("j1"), t0() + Duration::minutes(5))
            .unwrap();
        assert_eq!(
            actions(store.as_ref()),
            vec![("cowork-sync".into(), "token.seen".into(), Some("j1".into()))]
        );
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].scope, "scim");
        assert_eq!(listed[0].subject, "okta");
        assert_eq!(listed[0].issued, t0());
        assert_eq!(listed[0].expires, t0() + Duration::days(30));
        assert_eq!(listed[0].source, Source::Seen);
        let reloaded = TokenRegistry::load(store).unwrap();
        assert_eq!(reloaded.list(), listed);
    }

    #[test]
    fn last_use_is_written_at_most_hourly() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone()).unwrap();
        registry.observe(&principal("j1"), t0()).unwrap();
        registry
            .observe(&principal("j1"), t0() + Duration::minutes(59))
            .unwrap();
        let stored = || TokenRegistry::load(store.clone()).unwrap().list()[0].last_used;
        assert_eq!(stored(), Some(t0()), "not written within the hour");
        registry
            .observe(&principal("j1"), t0() + Duration::minutes(61))
            .unwrap();
        assert_eq!(stored(), Some(t0() + Duration::minutes(61)));
        // Only the first sight is audited.
        assert_eq!(actions(store.as_ref()).len(), 1);
    }

    #[test]
    fn a_revoked_jti_is_refused_durably_and_revoking_again_changes_nothing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone()).unwrap();
        registry.observe(&principal("j1"), t0()).unwrap();
        registry.observe(&principal("j2"), t0()).unwrap();
        assert_eq!(
            registry.revoke("nope", "ops", t0()).unwrap(),
            Revocation::Unknown
        );
        let Revocation::Revoked(r) = registry.revoke("j1", "ops", t0()).unwrap() else {
            panic!("not revoked");
        };
        assert_eq!(r.revoked, Some(t0()));
        assert_eq!(r.revoked_by.as_deref(), Some("ops"));
        assert!(matches!(
            registry.revoke("j1", "ops", t0() + Duration::minutes(1)),
            Ok(Revocation::AlreadyRevoked(ref again)) if again.revoked == Some(t0())
        ));
        assert_eq!(
            registry.observe(&principal("j1"), t0()),
            Err(AuthError::Revoked)
        );
        assert!(registry.is_revoked("j1") && !registry.is_revoked("j2"));
        assert_eq!(registry.observe(&principal("j2"), t0()), Ok(()));
        let reloaded = TokenRegistry::load(store.clone()).unwrap();
        assert_eq!(
            reloaded.observe(&principal("j1"), t0()),
            Err(AuthError::Revoked)
        );
        let audited = actions(store.as_ref());
        assert_eq!(
            audited.last(),
            Some(&(
                "ops".to_string(),
                "token.revoked".to_string(),
                Some("j1".to_string())
            ))
        );
        assert_eq!(audited.iter().filter(|a| a.1 == "token.revoked").count(), 1);
    }

    #[test]
    fn minted_tokens_are_registered_once_and_nothing_secret_is_stored() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone()).unwrap();
        let record = TokenRecord::of(&principal("boot"), Source::Bootstrap, t0());
        registry.register(record.clone(), t0()).unwrap();
        registry.register(record, t0()).unwrap();
        assert_eq!(registry.list()[0].source, Source::Bootstrap);
        assert_eq!(actions(store.as_ref()).len(), 1);
        let rows = crate::store::collect_prefix(store.as_ref(), Table::Meta, PREFIX, 10).unwrap();
        assert_eq!(rows.len(), 1);
        let value: serde_json::Value = serde_json::from_slice(&rows[0].1).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        for k in keys {
            assert!(
                [
                    "jti",
                    "scope",
                    "subject",
                    "issued",
                    "expires",
                    "last_used",
                    "revoked",
                    "revoked_by",
                    "source"
                ]
                .contains(&k.as_str()),
                "{k}"
            );
        }
    }
}
