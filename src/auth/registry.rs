//! The token registry: every token the daemon mints or sees, by `jti`, with its
//! scope, subject, issue and expiry times, when it was last used, and whether it is
//! revoked. Never the token itself.
//!
//! Records live in `Table::Meta` under the `token/` prefix (no other meta key starts
//! with it) and are loaded into memory at start; requests consult memory only. A
//! token first presented is recorded (and audited as `token.seen`) then. `token mint`
//! works beside the daemon and hands its records over through files
//! ([`super::minted`]), imported at start, before a listing and when a revocation
//! names a jti not known yet. Last use is kept in memory on every request but written
//! at most once an hour ([`TOUCH_EVERY`]), so SCIM traffic does not write per
//! request. A revocation is committed with its `token.revoked` audit entry and
//! flushed to disk before [`TokenRegistry::revoke`] returns.
//!
//! Records of tokens expired more than [`RETAIN_EXPIRED`] ago are pruned (audited as
//! one `token.pruned` entry): at load, and when a record is added, at most once per
//! [`PRUNE_EVERY`]. Such a token is refused for its expiry whatever the registry
//! says, so a pruned revocation cannot let it back in. This module is free of actix.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{minted, AuthError, Principal};
use crate::audit::{self, AuditDraft};
use crate::store::codec::{scan_json, tx_put_json};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// The meta-table prefix of token records.
pub const PREFIX: &[u8] = b"token/";

/// Last use is persisted at most this often per token.
pub const TOUCH_EVERY: Duration = Duration::hours(1);

/// Records of tokens expired longer than this are pruned.
pub const RETAIN_EXPIRED: Duration = Duration::days(30);

/// Pruning runs at most this often (besides at load).
pub const PRUNE_EVERY: Duration = Duration::hours(1);

/// Records removed per pruning transaction at most (the rest go the next time).
const PRUNE_BATCH: usize = 500;

/// The actor of imported `token mint` records in the audit trail.
const MINT_ACTOR: &str = "cowork-sync token mint";

/// How the registry learnt of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Minted by `serve` on first start.
    Bootstrap,
    /// First presented on a request (an external issuer's token, or one minted
    /// before its record was handed over).
    Seen,
    /// Minted by `cowork-sync token mint` (handed over through [`super::minted`]).
    Minted,
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
    /// Where `token mint` leaves its records, when known.
    minted_dir: Option<PathBuf>,
    /// When pruning last ran.
    last_prune: parking_lot::Mutex<Option<DateTime<Utc>>>,
}

fn key(jti: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

impl TokenRegistry {
    /// Loads every record from `store` and prunes those expired longer than
    /// [`RETAIN_EXPIRED`] before `now`.
    pub fn load(store: Arc<dyn Store>, now: DateTime<Utc>) -> Result<Self, StoreError> {
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
        let registry = Self {
            store,
            entries: RwLock::new(entries),
            minted_dir: None,
            last_prune: parking_lot::Mutex::new(None),
        };
        registry.prune(now)?;
        Ok(registry)
    }

    /// Imports the records `token mint` leaves in `dir` (see [`super::minted`]), now
    /// and whenever [`TokenRegistry::import_minted`] runs.
    pub fn with_minted_dir(mut self, dir: PathBuf, now: DateTime<Utc>) -> Self {
        self.minted_dir = Some(dir);
        self.import_minted(now);
        self
    }

    /// Imports every record `token mint` has left (audited as `token.minted`) and
    /// deletes its file; returns how many were new. Failures are logged: a file that
    /// cannot be imported now is tried again the next time.
    pub fn import_minted(&self, now: DateTime<Utc>) -> usize {
        let Some(dir) = &self.minted_dir else {
            return 0;
        };
        let found = minted::scan(dir);
        if found.is_empty() {
            return 0;
        }
        let mut added = 0;
        for f in found {
            match f.record {
                Some(record) => match self.add(record, "token.minted", MINT_ACTOR, now) {
                    Ok(new) => {
                        added += usize::from(new);
                        let _ = std::fs::remove_file(&f.path);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "importing a minted token's record failed")
                    }
                },
                None => {
                    tracing::warn!(
                        file = %f.path.display(),
                        "a file in the minted-tokens directory is not a token record; removed"
                    );
                    let _ = std::fs::remove_file(&f.path);
                }
            }
        }
        minted::sync_dir(dir);
        added
    }

    /// Imports the one record `token mint` left for `jti`, if there is one.
    fn import_one(&self, jti: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(path) = self
            .minted_dir
            .as_deref()
            .and_then(|d| minted::file_of(d, jti))
        else {
            return Ok(false);
        };
        let Some(record) = minted::read_one(&path) else {
            return Ok(false);
        };
        let new = self.add(record, "token.minted", MINT_ACTOR, now)?;
        let _ = std::fs::remove_file(&path);
        Ok(new)
    }

    /// Removes the records of tokens expired more than [`RETAIN_EXPIRED`] before
    /// `now`, audited as one `token.pruned` entry per batch; returns how many.
    pub fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        *self.last_prune.lock() = Some(now);
        let cutoff = now - RETAIN_EXPIRED;
        let mut entries = self.entries.write();
        let mut stale: Vec<String> = entries
            .values()
            .filter(|e| e.record.expires < cutoff)
            .map(|e| e.record.jti.clone())
            .collect();
        stale.sort();
        let mut pruned = 0;
        for batch in stale.chunks(PRUNE_BATCH) {
            transaction::<_, StoreError>(self.store.as_ref(), |txn| {
                for jti in batch {
                    txn.remove(Table::Meta, &key(jti)).map_err(TxFail::Store)?;
                }
                audit::append(
                    txn,
                    AuditDraft::new("cowork-sync", "token.pruned", None).with(json!({
                        "count": batch.len(),
                        "jtis": batch,
                        "expired_before": audit::timestamp(cutoff),
                    })),
                    now,
                )
                .map_err(TxFail::Store)?;
                Ok(())
            })?;
            for jti in batch {
                entries.remove(jti);
            }
            pruned += batch.len();
        }
        if pruned > 0 {
            tracing::info!(
                pruned,
                "pruned the records of tokens expired over 30 days ago"
            );
        }
        Ok(pruned)
    }

    /// Prunes when [`PRUNE_EVERY`] has passed since the last time (logged on failure).
    fn prune_due(&self, now: DateTime<Utc>) {
        let due = self
            .last_prune
            .lock()
            .is_none_or(|t| now - t >= PRUNE_EVERY || now < t);
        if due {
            if let Err(err) = self.prune(now) {
                tracing::warn!(error = %err, "pruning expired token records failed");
            }
        }
    }

    /// Adds `record` audited as `action` unless its jti is known; returns whether it
    /// was new.
    fn add(
        &self,
        record: TokenRecord,
        action: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        {
            let mut entries = self.entries.write();
            if entries.contains_key(&record.jti) {
                return Ok(false);
            }
            self.write(&record, Some(action), actor, now)?;
            entries.insert(
                record.jti.clone(),
                Entry {
                    persisted_use: None,
                    record,
                },
            );
        }
        self.prune_due(now);
        Ok(true)
    }

    /// Records a token the daemon minted (the first-start tokens), audited as
    /// `token.minted`. An already known jti is left as it is.
    pub fn register(&self, record: TokenRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.add(record, "token.minted", "cowork-sync", now)
            .map(|_| ())
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
                drop(entries);
                self.prune_due(now);
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
    /// on disk before this returns. Revoking a revoked jti changes nothing. A jti not
    /// known yet is looked for among the records `token mint` has left.
    pub fn revoke(
        &self,
        jti: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Revocation, StoreError> {
        if !self.entries.read().contains_key(jti) {
            self.import_one(jti, now)?;
        }
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
        let registry = TokenRegistry::load(store.clone(), t0()).unwrap();
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
        let reloaded = TokenRegistry::load(store, t0()).unwrap();
        assert_eq!(reloaded.list(), listed);
    }

    #[test]
    fn last_use_is_written_at_most_hourly() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone(), t0()).unwrap();
        registry.observe(&principal("j1"), t0()).unwrap();
        registry
            .observe(&principal("j1"), t0() + Duration::minutes(59))
            .unwrap();
        let stored = || TokenRegistry::load(store.clone(), t0()).unwrap().list()[0].last_used;
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
        let registry = TokenRegistry::load(store.clone(), t0()).unwrap();
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
        let reloaded = TokenRegistry::load(store.clone(), t0()).unwrap();
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
        let registry = TokenRegistry::load(store.clone(), t0()).unwrap();
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

    #[test]
    fn records_expired_past_the_retention_are_pruned_at_load_and_when_one_is_added() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone(), t0()).unwrap();
        // j1 expires at t0 + 30 days (see `principal`).
        registry.observe(&principal("j1"), t0()).unwrap();
        let mut long = principal("j2");
        long.expires_at = (t0() + Duration::days(365)).timestamp();
        registry.observe(&long, t0()).unwrap();
        let jtis = |r: &TokenRegistry| r.list().into_iter().map(|t| t.jti).collect::<Vec<_>>();
        // Expired, but within the retention: kept.
        let within = t0() + Duration::days(30) + RETAIN_EXPIRED - Duration::minutes(1);
        let reloaded = TokenRegistry::load(store.clone(), within).unwrap();
        assert_eq!(jtis(&reloaded), vec!["j1", "j2"]);
        // Past it: pruned at load, from memory and from the store, and audited.
        let past = t0() + Duration::days(30) + RETAIN_EXPIRED + Duration::minutes(1);
        let reloaded = TokenRegistry::load(store.clone(), past).unwrap();
        assert_eq!(jtis(&reloaded), vec!["j2"]);
        assert_eq!(
            jtis(&TokenRegistry::load(store.clone(), t0()).unwrap()),
            vec!["j2"]
        );
        let pruned: Vec<_> = audit::list(store.as_ref(), None, 0, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "token.pruned")
            .collect();
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned[0].details["jtis"], json!(["j1"]));
        // The running registry prunes when a record is added (not more than hourly).
        let live = |jti: &str| {
            let mut p = principal(jti);
            p.expires_at = (t0() + Duration::days(365)).timestamp();
            p
        };
        registry.observe(&live("j3"), past).unwrap();
        assert_eq!(jtis(&registry), vec!["j2", "j3"]);
        let mut stale = principal("j5");
        stale.expires_at = t0().timestamp();
        registry.observe(&stale, past).unwrap();
        assert!(
            jtis(&registry).contains(&"j5".to_string()),
            "pruned at most hourly"
        );
        registry.observe(&live("j6"), past + PRUNE_EVERY).unwrap();
        assert!(!jtis(&registry).contains(&"j5".to_string()));
    }

    #[test]
    fn records_left_by_token_mint_are_imported_listed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join(minted::DIR);
        let record = |jti: &str| {
            let mut r = TokenRecord::of(&principal(jti), Source::Minted, t0());
            r.subject = "entra".into();
            r
        };
        minted::write(&spool, &record("m1")).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let registry = TokenRegistry::load(store.clone(), t0())
            .unwrap()
            .with_minted_dir(spool.clone(), t0());
        assert_eq!(registry.list(), vec![record("m1")], "imported at start");
        assert!(minted::scan(&spool).is_empty(), "and its file removed");
        // Minted while the daemon runs: found by a revocation that names it ...
        minted::write(&spool, &record("m2")).unwrap();
        assert!(matches!(
            registry.revoke("m2", "ops", t0()),
            Ok(Revocation::Revoked(ref r)) if r.subject == "entra"
        ));
        assert_eq!(
            registry.observe(&principal("m2"), t0()),
            Err(AuthError::Revoked)
        );
        // ... or by the next import (a listing).
        minted::write(&spool, &record("m3")).unwrap();
        assert_eq!(registry.import_minted(t0()), 1);
        assert_eq!(registry.list().len(), 3);
        assert_eq!(registry.import_minted(t0()), 0);
        let minted_audits = actions(store.as_ref())
            .into_iter()
            .filter(|a| a.1 == "token.minted")
            .count();
        assert_eq!(minted_audits, 3);
        assert_eq!(
            registry.revoke("../m9", "ops", t0()).unwrap(),
            Revocation::Unknown
        );
    }
}
