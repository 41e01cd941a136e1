//! The tamper-evident audit trail.
//!
//! Every change appends an entry **inside the transaction that makes the change**
//! ([`append`]); the store refuses to commit governed writes without one. Entries
//! carry a strictly increasing sequence number and are hash-chained: each entry's
//! `hash` is SHA-256 over the canonical encoding of the entry (sorted keys, no
//! whitespace) including the previous entry's hash. [`verify_chain`] detects any
//! edit, deletion, insertion or reordering and names the first bad sequence number.
//! Pruning keeps a checkpoint (sequence and hash) so verification still works.
//!
//! Entries hold ids, operation names and attribute *names*, never attribute values,
//! emails or tokens.

pub mod checkpoint;
pub mod recorder;

use std::ops::ControlFlow;

use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::hex;
use crate::store::codec::{scan_json, seq_key, tx_get_json, tx_put_json};
use crate::store::{transaction, Store, StoreError, Table, TxError, TxFail, Txn};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HEAD_KEY: &[u8] = b"audit/head";
const CHECKPOINT_KEY: &[u8] = b"audit/checkpoint";

/// One audit entry as stored and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Strictly increasing, starting at 1, without gaps.
    pub seq: u64,
    /// When (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// Who: a token subject, `reconciler`, `outbox`, `system`, or `anonymous`.
    pub actor: String,
    /// What, as a dotted name: `scim.user.create`, `rules.apply`, `downstream.group.add_member`...
    pub action: String,
    /// The object acted on (a resource id, a rule version, a downstream key), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Structured facts (changed attribute names, counts, request ids). Never values.
    #[serde(default)]
    pub details: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// SHA-256 (hex) over the canonical encoding of every other field.
    pub hash: String,
}

/// An entry before it is sequenced and chained.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// Facts.
    pub details: Value,
}

impl AuditDraft {
    /// A draft with empty details.
    pub fn new(actor: &str, action: &str, target: Option<&str>) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.map(Into::into),
            details: Value::Null,
        }
    }

    /// Adds facts.
    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The chain position of the last entry (or of the last pruned entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPoint {
    /// Sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// Its time, so the next entry's time never goes backwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Canonical JSON: object keys sorted, no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash an entry must carry, computed from all its other fields.
pub fn entry_hash(entry: &AuditEntry) -> String {
    let mut doc = serde_json::Map::new();
    doc.insert("seq".into(), Value::from(entry.seq));
    doc.insert("at".into(), Value::String(entry.at.clone()));
    doc.insert("actor".into(), Value::String(entry.actor.clone()));
    doc.insert("action".into(), Value::String(entry.action.clone()));
    doc.insert(
        "target".into(),
        entry
            .target
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    doc.insert("details".into(), entry.details.clone());
    doc.insert("prev_hash".into(), Value::String(entry.prev_hash.clone()));
    let canonical = canonical_json(&Value::Object(doc));
    hex(digest(&SHA256, canonical.as_bytes()).as_ref())
}

/// Formats a timestamp the way entries carry it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The forms a "since" bound accepts, for messages that name them.
pub const SINCE_FORMS: &str =
    "a date (2026-12-01, the start of that day UTC) or an RFC 3339 time (2026-12-01T09:30:00Z)";

/// Reads a "since" bound: an RFC 3339 time, or a plain date `YYYY-MM-DD` meaning
/// the start of that day in UTC. `None` for anything else.
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// Appends an entry inside the caller's transaction and returns it.
pub fn append(
    txn: &mut dyn Txn,
    draft: AuditDraft,
    at: DateTime<Utc>,
) -> Result<AuditEntry, TxError> {
    let head: Option<ChainPoint> = tx_get_json(txn, Table::Meta, HEAD_KEY)?;
    let previous = match head {
        Some(h) => Some(h),
        None => tx_get_json::<ChainPoint>(txn, Table::Meta, CHECKPOINT_KEY)?,
    };
    let (seq, prev_hash) = match &previous {
        Some(p) => (p.seq + 1, p.hash.clone()),
        None => (1, GENESIS_HASH.to_string()),
    };
    // Times follow sequence numbers, so `since=` selects a suffix of the chain.
    let mut at = timestamp(at);
    if let Some(prev_at) = previous.and_then(|p| p.at) {
        if prev_at > at {
            at = prev_at;
        }
    }
    let mut entry = AuditEntry {
        seq,
        at,
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        details: draft.details,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    tx_put_json(txn, Table::Audit, &seq_key(seq), &entry)?;
    tx_put_json(
        txn,
        Table::Meta,
        HEAD_KEY,
        &ChainPoint {
            seq,
            hash: entry.hash.clone(),
            at: Some(entry.at.clone()),
        },
    )?;
    Ok(entry)
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Whether the chain is intact.
    pub ok: bool,
    /// Entries checked.
    pub checked: u64,
    /// The first sequence number at which the chain breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last good position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<ChainPoint>,
}

/// Checks a sequence of entries, starting after `start` (the genesis or a
/// checkpoint). `expected_head`, when known, catches a truncated tail and entries
/// appended past it.
pub fn verify_chain<I>(
    entries: I,
    start: Option<&ChainPoint>,
    expected_head: Option<&ChainPoint>,
) -> Verification
where
    I: IntoIterator<Item = Result<AuditEntry, String>>,
{
    verify_chain_between(entries, start, expected_head, expected_head)
}

#[allow(clippy::explicit_counter_loop)] // the sequence check reads clearer with a counter
/// Checks entries read while writers may be appending: `covered` is the head read
/// before the entries and `latest` the head read after them. The trail must reach
/// `covered` and carry its hash there; entries past `covered` up to `latest` were
/// appended meanwhile and are checked as far as they were read (never reported as
/// broken for not being there yet); entries past `latest` are a break, because no
/// commit put them there.
pub fn verify_chain_between<I>(
    entries: I,
    start: Option<&ChainPoint>,
    covered: Option<&ChainPoint>,
    latest: Option<&ChainPoint>,
) -> Verification
where
    I: IntoIterator<Item = Result<AuditEntry, String>>,
{
    let mut hash_at_covered: Option<String> = None;
    let mut expected_seq = start.map_or(1, |c| c.seq + 1);
    let mut prev_hash = start.map_or_else(|| GENESIS_HASH.to_string(), |c| c.hash.clone());
    let mut checked = 0u64;
    let mut last: Option<ChainPoint> = start.cloned();
    let fail = |seq: u64, reason: String, checked: u64, last: Option<ChainPoint>| Verification {
        ok: false,
        checked,
        first_bad_seq: Some(seq),
        reason: Some(reason),
        head: last,
    };
    for item in entries {
        let entry = match item {
            Ok(e) => e,
            Err(reason) => return fail(expected_seq, reason, checked, last),
        };
        if entry.seq != expected_seq {
            let reason = if entry.seq > expected_seq {
                format!(
                    "entry {expected_seq} is missing (next entry is {})",
                    entry.seq
                )
            } else {
                format!("entry {} appears out of order", entry.seq)
            };
            return fail(expected_seq, reason, checked, last);
        }
        if entry.prev_hash != prev_hash {
            return fail(
                entry.seq,
                "prev_hash does not match the previous entry".into(),
                checked,
                last,
            );
        }
        if entry_hash(&entry) != entry.hash {
            return fail(
                entry.seq,
                "hash does not match the entry's contents".into(),
                checked,
                last,
            );
        }
        checked += 1;
        if covered.is_some_and(|c| c.seq == entry.seq) {
            hash_at_covered = Some(entry.hash.clone());
        }
        prev_hash = entry.hash.clone();
        expected_seq += 1;
        last = Some(ChainPoint {
            seq: entry.seq,
            hash: entry.hash,
            at: Some(entry.at),
        });
    }
    let last_seq = last.as_ref().map_or(0, |l| l.seq);
    if let Some(head) = covered {
        if last_seq < head.seq {
            return fail(
                last_seq + 1,
                format!(
                    "the trail ends at {last_seq} but the recorded head is {}",
                    head.seq
                ),
                checked,
                last,
            );
        }
        // At the start point itself (everything before it pruned) the hash is the
        // checkpoint's, checked by the first entry's link.
        let at_head =
            hash_at_covered.or_else(|| start.filter(|s| s.seq == head.seq).map(|s| s.hash.clone()));
        if at_head.is_some_and(|h| h != head.hash) {
            return fail(
                head.seq,
                "the last entry differs from the recorded head".into(),
                checked,
                last,
            );
        }
    }
    if let Some(head) = latest {
        if last_seq > head.seq {
            return fail(
                head.seq + 1,
                format!("entries continue past the recorded head {}", head.seq),
                checked,
                last,
            );
        }
        if last_seq == head.seq && last.as_ref().is_some_and(|l| l.hash != head.hash) {
            return fail(
                head.seq,
                "the last entry differs from the recorded head".into(),
                checked,
                last,
            );
        }
    }
    Verification {
        ok: true,
        checked,
        first_bad_seq: None,
        reason: None,
        head: last,
    }
}

/// Reads the recorded head and checkpoint.
pub fn chain_points(
    store: &dyn Store,
) -> Result<(Option<ChainPoint>, Option<ChainPoint>), StoreError> {
    let read = |key: &[u8]| -> Result<Option<ChainPoint>, StoreError> {
        match store.get(Table::Meta, key)? {
            Some(bytes) => Ok(Some(crate::store::codec::from_bytes(&bytes, Table::Meta)?)),
            None => Ok(None),
        }
    };
    Ok((read(HEAD_KEY)?, read(CHECKPOINT_KEY)?))
}

/// Verifies the whole stored trail while writers may be appending to it.
///
/// The head is read before and after the entries: what was committed before the
/// scan must all be there and end at that head; what was appended during the scan is
/// checked as far as it was read. A prune running meanwhile moves the checkpoint;
/// then the reading is repeated (a few times at most).
pub fn verify_store(store: &dyn Store) -> Result<Verification, StoreError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (covered, checkpoint) = chain_points(store)?;
        let mut entries = Vec::new();
        store.scan(Table::Audit, b"", None, &mut |_, v| {
            entries.push(
                serde_json::from_slice::<AuditEntry>(v)
                    .map_err(|e| format!("undecodable entry: {e}")),
            );
            ControlFlow::Continue(())
        })?;
        let (latest, checkpoint_after) = chain_points(store)?;
        if checkpoint_after != checkpoint && attempts < 4 {
            continue;
        }
        return Ok(verify_chain_between(
            entries,
            checkpoint.as_ref(),
            covered.as_ref(),
            latest.as_ref(),
        ));
    }
}

/// Entries with `at >= since` (all when `None`), oldest first, at most `limit`,
/// starting after sequence `after`.
pub fn list(
    store: &dyn Store,
    since: Option<DateTime<Utc>>,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let since = since.map(timestamp);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let from = seq_key(after.saturating_add(1));
    scan_json::<AuditEntry>(store, Table::Audit, b"", Some(&from), |_, entry| {
        // `at` strings of one format compare in time order.
        if since
            .as_ref()
            .is_none_or(|s| entry.at.as_str() >= s.as_str())
        {
            out.push(entry);
        }
        if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(out)
}

/// Removes entries older than `before`, leaving a checkpoint at the last removed
/// entry so the rest still verifies. Returns how many were removed. The pruning
/// itself is recorded as an audit entry.
pub fn prune(
    store: &dyn Store,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<u64, StoreError> {
    let cutoff = timestamp(before);
    let mut victims: Vec<(u64, String, String)> = Vec::new();
    scan_json::<AuditEntry>(store, Table::Audit, b"", None, |_, e| {
        if e.at >= cutoff {
            return ControlFlow::Break(());
        }
        victims.push((e.seq, e.hash, e.at));
        if victims.len() >= batch {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let Some((last_seq, last_hash, last_at)) = victims.last().cloned() else {
        return Ok(0);
    };
    let count = victims.len() as u64;
    transaction::<_, StoreError>(store, |txn| {
        for (seq, _, _) in &victims {
            txn.remove(Table::Audit, &seq_key(*seq))?;
        }
        tx_put_json(
            txn,
            Table::Meta,
            CHECKPOINT_KEY,
            &ChainPoint {
                seq: last_seq,
                hash: last_hash.clone(),
                at: Some(last_at.clone()),
            },
        )?;
        append(
            txn,
            AuditDraft::new("system", "audit.prune", None).with(serde_json::json!({
                "removed": count,
                "checkpoint_seq": last_seq,
            })),
            now,
        )
        .map_err(TxFail::Store)?;
        Ok(())
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_plain_date_as_the_start_of_that_day_utc_or_an_rfc3339_time() {
        let day = parse_since("2026-12-01").unwrap();
        assert_eq!(timestamp(day), "2026-12-01T00:00:00.000Z");
        let t = parse_since("2026-12-01T10:30:00+02:00").unwrap();
        assert_eq!(timestamp(t), "2026-12-01T08:30:00.000Z");
        for bad in [
            "yesterday",
            "2026-13-01",
            "12/01/2026",
            "2026-12-01T10:30",
            "",
        ] {
            assert_eq!(parse_since(bad), None, "{bad}");
        }
    }
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;
    use serde_json::json;

    fn write(store: &dyn Store, clock: &ManualClock, n: usize) {
        for i in 0..n {
            transaction::<_, StoreError>(store, |txn| {
                append(
                    txn,
                    AuditDraft::new("okta", "scim.user.create", Some(&format!("u{i}")))
                        .with(json!({"attributes": ["userName", "active"]})),
                    clock.now(),
                )
                .map_err(TxFail::Store)?;
                Ok(())
            })
            .unwrap();
            clock.advance(chrono::Duration::minutes(1));
        }
    }

    fn entries(store: &dyn Store) -> Vec<AuditEntry> {
        list(store, None, 0, usize::MAX).unwrap()
    }

    fn tamper(store: &dyn Store, seq: u64, f: impl Fn(&mut AuditEntry)) {
        let mut e: AuditEntry =
            serde_json::from_slice(&store.get(Table::Audit, &seq_key(seq)).unwrap().unwrap())
                .unwrap();
        f(&mut e);
        raw_put(store, seq, &e);
    }

    fn raw_put(store: &dyn Store, seq: u64, e: &AuditEntry) {
        // Tampering bypasses the API but still has to get past the store's own rules.
        transaction::<_, StoreError>(store, |txn| {
            txn.insert(Table::Audit, &seq_key(seq), &serde_json::to_vec(e).unwrap())?;
            Ok(())
        })
        .unwrap();
    }

    fn raw_remove(store: &dyn Store, seq: u64) {
        transaction::<_, StoreError>(store, |txn| {
            txn.remove(Table::Audit, &seq_key(seq))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 5);
        let v = verify_store(&store).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.checked, 5);
        let all = entries(&store);
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        assert_eq!(all[1].prev_hash, all[0].hash);
    }

    #[test]
    fn an_edited_entry_is_detected_at_its_sequence() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 5);
        tamper(&store, 3, |e| e.actor = "mallory".into());
        let v = verify_store(&store).unwrap();
        assert!(!v.ok);
        assert_eq!(v.first_bad_seq, Some(3));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 5);
        tamper(&store, 2, |e| {
            e.details = json!({"attributes": []});
            e.hash = entry_hash(e);
        });
        let v = verify_store(&store).unwrap();
        assert_eq!(v.first_bad_seq, Some(3));
    }

    #[test]
    fn a_deleted_entry_is_detected() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 5);
        raw_remove(&store, 3);
        let v = verify_store(&store).unwrap();
        assert_eq!(v.first_bad_seq, Some(3));
    }

    #[test]
    fn a_truncated_tail_is_detected_against_the_head() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 5);
        raw_remove(&store, 5);
        let v = verify_store(&store).unwrap();
        assert_eq!(v.first_bad_seq, Some(5));
    }

    #[test]
    fn an_inserted_entry_is_detected() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 3);
        let all = entries(&store);
        // Insert a forged entry between 1 and 2 by renumbering is impossible without
        // rewriting the chain; a forged entry at the end must link and hash correctly.
        let mut forged = all[2].clone();
        forged.seq = 4;
        forged.prev_hash = all[2].hash.clone();
        forged.actor = "mallory".into();
        forged.hash = entry_hash(&forged);
        raw_put(&store, 4, &forged);
        // The forged entry links and hashes correctly, but runs past the recorded head.
        let v = verify_store(&store).unwrap();
        assert_eq!(v.first_bad_seq, Some(4), "{v:?}");
        // An insertion in the middle is caught by the link.
        let store = MemoryStore::new();
        write(&store, &clock, 3);
        let mut all = entries(&store);
        all.insert(1, forged);
        let v = verify_chain(all.into_iter().map(Ok), None, None);
        assert_eq!(v.first_bad_seq, Some(2));
    }

    #[test]
    fn reordered_entries_are_detected() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        write(&store, &clock, 4);
        let mut all = entries(&store);
        all.swap(1, 2);
        let v = verify_chain(all.into_iter().map(Ok), None, None);
        assert_eq!(v.first_bad_seq, Some(2));
    }

    #[test]
    fn pruning_keeps_a_checkpoint_that_still_verifies() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        let start = clock.now();
        write(&store, &clock, 6);
        let removed = prune(
            &store,
            start + chrono::Duration::minutes(3),
            clock.now(),
            1000,
        )
        .unwrap();
        assert_eq!(removed, 3);
        let v = verify_store(&store).unwrap();
        assert!(v.ok, "{v:?}");
        let remaining = entries(&store);
        assert_eq!(remaining.first().unwrap().seq, 4);
        assert_eq!(remaining.last().unwrap().action, "audit.prune");
    }

    #[test]
    fn verification_while_entries_are_appended_never_reports_a_healthy_trail_broken() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let clock = ManualClock::at_epoch_2026();
        write(store.as_ref(), &clock, 3);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let store = store.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let clock = ManualClock::at_epoch_2026();
                write(store.as_ref(), &clock, 3000);
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            })
        };
        let mut verified = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let v = verify_store(store.as_ref()).unwrap();
            assert!(v.ok, "a healthy trail reported broken: {v:?}");
            verified += 1;
        }
        writer.join().unwrap();
        assert!(verified > 0);
        assert!(verify_store(store.as_ref()).unwrap().ok);
        // Entries past the head read after the scan are still a break.
        let store = MemoryStore::new();
        write(&store, &clock, 2);
        let mut forged = entries(&store)[1].clone();
        forged.seq = 3;
        forged.prev_hash = forged.hash.clone();
        forged.hash = entry_hash(&forged);
        raw_put(&store, 3, &forged);
        let v = verify_store(&store).unwrap();
        assert_eq!(v.first_bad_seq, Some(3), "{v:?}");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }
}
