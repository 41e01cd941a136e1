//! The outbox: downstream work that must not be lost.
//!
//! Every SCIM write and rule change appends an entry naming what it touched, in the
//! same transaction as the change, so a crash can never lose a pending downstream
//! change. The outbox worker reads entries in sequence order, plans just those
//! targets, applies them, and removes the entries in the transaction that records
//! the outcome. Entries are never reordered; a restart resumes at the first one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::timestamp;
use crate::store::codec::{collect_json, seq_key, tx_bump, tx_put_json};
use crate::store::{Store, StoreError, Table, TxError, Txn};

const SEQ_KEY: &[u8] = b"outbox/seq";
const PENDING_KEY: &[u8] = b"outbox/pending";

/// What a change touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touched {
    /// SCIM user ids whose downstream state may change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// SCIM group ids whose (transitive) members may be affected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Everything may be affected (a rule change): plan the whole state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
}

impl Touched {
    /// Touches one user.
    pub fn user(id: &str) -> Self {
        Self {
            users: vec![id.into()],
            ..Self::default()
        }
    }

    /// Touches everything.
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// Whether nothing is touched.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.users.is_empty() && self.groups.is_empty()
    }
}

/// One pending unit of downstream work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Position in the queue.
    pub seq: u64,
    /// When it was queued.
    pub at: String,
    /// The audit action that caused it (for logs and metrics).
    pub cause: String,
    /// What it touched.
    pub touched: Touched,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// The W3C `traceparent` of the write that queued it, so the drain continues
    /// its trace (absent when telemetry is off, and in entries written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Queues work inside the caller's transaction. Empty work is not queued.
pub fn append(
    txn: &mut dyn Txn,
    cause: &str,
    touched: Touched,
    at: DateTime<Utc>,
) -> Result<Option<u64>, TxError> {
    if touched.is_empty() {
        return Ok(None);
    }
    let seq = tx_bump(txn, Table::Meta, SEQ_KEY, 1)?;
    let entry = OutboxEntry {
        seq,
        at: timestamp(at),
        cause: cause.into(),
        touched,
        attempts: 0,
        trace: crate::telemetry::propagation::traceparent_for_queue(),
    };
    tx_put_json(txn, Table::Outbox, &seq_key(seq), &entry)?;
    tx_bump(txn, Table::Meta, PENDING_KEY, 1)?;
    Ok(Some(seq))
}

/// Removes a finished entry inside the caller's transaction.
pub fn ack(txn: &mut dyn Txn, seq: u64) -> Result<(), TxError> {
    let key = seq_key(seq);
    if txn.get(Table::Outbox, &key)?.is_some() {
        txn.remove(Table::Outbox, &key)?;
        tx_bump(txn, Table::Meta, PENDING_KEY, -1)?;
    }
    Ok(())
}

/// Records a failed attempt (the entry stays queued).
pub fn record_attempt(txn: &mut dyn Txn, entry: &OutboxEntry) -> Result<(), TxError> {
    let mut next = entry.clone();
    next.attempts = next.attempts.saturating_add(1);
    tx_put_json(txn, Table::Outbox, &seq_key(entry.seq), &next)
}

/// The oldest `limit` pending entries.
pub fn pending(store: &dyn Store, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
    Ok(collect_json(store, Table::Outbox, b"", None, limit)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// How many entries are pending: one counter read.
pub fn pending_count(store: &dyn Store) -> Result<u64, StoreError> {
    match store.get(Table::Meta, PENDING_KEY)? {
        Some(b) => crate::store::codec::seq_from_key(&b, Table::Meta),
        None => Ok(0),
    }
}

/// How many entries are pending (a counter, not a scan), and when the oldest was
/// queued.
pub fn backlog(store: &dyn Store) -> Result<(u64, Option<String>), StoreError> {
    let count = pending_count(store)?;
    let oldest = match collect_json::<OutboxEntry>(store, Table::Outbox, b"", None, 1)?.pop() {
        Some((_, e)) => Some(e.at),
        None => None,
    };
    Ok((count, oldest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;
    use crate::store::{transaction, TxFail};

    #[test]
    fn entries_queue_in_order_and_ack_removes_them() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        for id in ["u1", "u2", "u3"] {
            transaction::<_, StoreError>(&store, |txn| {
                append(txn, "scim.user.create", Touched::user(id), clock.now())
                    .map_err(TxFail::Store)?;
                Ok(())
            })
            .unwrap();
        }
        let queued = pending(&store, 10).unwrap();
        assert_eq!(
            queued.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(queued[1].touched.users, vec!["u2".to_string()]);
        transaction::<_, StoreError>(&store, |txn| {
            ack(txn, 1)?;
            record_attempt(txn, &queued[1])?;
            Ok(())
        })
        .unwrap();
        let queued = pending(&store, 10).unwrap();
        assert_eq!(queued.len(), 2);
        assert_eq!(queued[0].attempts, 1);
        assert_eq!(backlog(&store).unwrap().0, 2);
    }

    #[test]
    fn entries_written_before_trace_context_still_decode_and_new_ones_omit_it_when_off() {
        let old = r#"{"seq":3,"at":"2026-01-01T00:00:00.000Z","cause":"scim.user.create","touched":{"users":["u1"]},"attempts":1}"#;
        let entry: OutboxEntry = serde_json::from_str(old).unwrap();
        assert_eq!(entry.trace, None);
        assert_eq!(entry.touched, Touched::user("u1"));
        let again = serde_json::to_string(&entry).unwrap();
        assert!(!again.contains("trace"));
        let traced = OutboxEntry {
            trace: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            ..entry
        };
        let back: OutboxEntry =
            serde_json::from_str(&serde_json::to_string(&traced).unwrap()).unwrap();
        assert_eq!(back, traced);
    }

    #[test]
    fn empty_work_is_not_queued() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        let seq = transaction::<_, StoreError>(&store, |txn| {
            append(txn, "noop", Touched::default(), clock.now()).map_err(TxFail::Store)
        })
        .unwrap();
        assert_eq!(seq, None);
        assert!(pending(&store, 10).unwrap().is_empty());
    }
}
