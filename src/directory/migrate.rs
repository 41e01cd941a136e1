//! Directory conversions run once by the store migration (`app::migrate`), before
//! the daemon serves anything.
//!
//! Schema 3: users' `externalId` index becomes a multi-index. Up to schema 2 it held
//! `externalId → id` and refused a second user with the same value; RFC 7643 §3.1
//! gives `externalId` no uniqueness, so it now holds `externalId 0x00 id → ""`.
//! Old entries are told apart by their non-empty value, so the conversion can stop
//! and resume anywhere: it runs in chunks, each one transaction with its audit entry.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{self, AuditDraft};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// Entries converted per transaction.
const CHUNK: usize = 10_000;

/// Converts every old-format user `externalId` entry; returns how many it converted.
pub fn external_id_multi_index(store: &dyn Store, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut converted = 0u64;
    let mut from: Option<Vec<u8>> = None;
    loop {
        // Old entries carry the id as their value; converted ones carry nothing (and
        // sort right after the old key, so the cursor never misses an old one).
        let mut old: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut last_seen: Option<Vec<u8>> = None;
        let mut exhausted = true;
        store.scan(
            Table::UserExternalIdIdx,
            b"",
            from.as_deref(),
            &mut |k, v| {
                if from.as_deref() == Some(k) {
                    return ControlFlow::Continue(());
                }
                last_seen = Some(k.to_vec());
                if !v.is_empty() {
                    old.push((k.to_vec(), v.to_vec()));
                }
                if old.len() >= CHUNK {
                    exhausted = false;
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        if !old.is_empty() {
            transaction::<_, StoreError>(store, |txn| {
                for (key, id) in &old {
                    let mut new = key.clone();
                    new.push(0);
                    new.extend_from_slice(id);
                    txn.remove(Table::UserExternalIdIdx, key)
                        .map_err(TxFail::Store)?;
                    txn.insert(Table::UserExternalIdIdx, &new, b"")
                        .map_err(TxFail::Store)?;
                }
                audit::append(
                    txn,
                    AuditDraft::new("cowork-sync", "store.migrated", None).with(json!({
                        "to": 3,
                        "external_id_entries_converted": old.len(),
                    })),
                    now,
                )
                .map_err(TxFail::Store)?;
                Ok(())
            })?;
            converted += old.len() as u64;
        }
        if exhausted {
            return Ok(converted);
        }
        from = last_seen;
    }
}
