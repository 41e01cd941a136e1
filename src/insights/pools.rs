//! Pool records in the store: one [`PoolRecord`] per pooled group, under the meta key
//! `insights/pool/<group key>`, and the caps they add up to.
//!
//! The Analytics cache shares the `insights/` prefix with its own endpoints
//! (`insights/users/…`, `insights/cost_report/…`, `insights/user_cost_report/…`), so
//! no cache key starts with `insights/pool/`. Records are written by the pool check
//! (`super::check`) in the transaction that audits what the check changed; the
//! reconciler reads the caps before it plans.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use super::pool::PoolRecord;
use crate::reconcile::plan::PoolCap;
use crate::store::codec::{self, tx_put_json};
use crate::store::{Store, StoreError, Table, TxError, Txn};

/// Key prefix of the records in `Table::Meta`.
pub const PREFIX: &str = "insights/pool/";

/// The meta key of a group's record.
pub fn key(group_key: &str) -> Vec<u8> {
    format!("{PREFIX}{group_key}").into_bytes()
}

/// Every pool record, by group key.
pub fn load_all(store: &dyn Store) -> Result<BTreeMap<String, PoolRecord>, StoreError> {
    let mut out = BTreeMap::new();
    codec::scan_json::<PoolRecord>(store, Table::Meta, PREFIX.as_bytes(), None, |_, r| {
        out.insert(r.group_key.clone(), r);
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The caps all records want, by SCIM user id: the lowest where more than one pool
/// caps a member, with the group whose pool set it.
pub fn caps_of(records: &BTreeMap<String, PoolRecord>) -> BTreeMap<String, PoolCap> {
    let mut caps: BTreeMap<String, PoolCap> = BTreeMap::new();
    for r in records.values() {
        for (user, &at) in &r.caps {
            let lower = caps.get(user).is_none_or(|c| at < c.at);
            if lower {
                caps.insert(
                    user.clone(),
                    PoolCap {
                        at,
                        group: r.group_key.clone(),
                    },
                );
            }
        }
    }
    caps
}

/// The caps the stored records want (see [`caps_of`]).
pub fn caps(store: &dyn Store) -> Result<BTreeMap<String, PoolCap>, StoreError> {
    Ok(caps_of(&load_all(store)?))
}

/// Writes (`Some`) or removes (`None`) a group's record inside the caller's
/// transaction.
pub fn tx_write(
    txn: &mut dyn Txn,
    group_key: &str,
    record: Option<&PoolRecord>,
) -> Result<(), TxError> {
    match record {
        Some(r) => tx_put_json(txn, Table::Meta, &key(group_key), r),
        None => txn.remove(Table::Meta, &key(group_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::pool::PoolLevel;
    use crate::rules::PoolSpec;
    use crate::store::memory::MemoryStore;

    fn record(group: &str, caps: &[(&str, u64)]) -> PoolRecord {
        PoolRecord {
            group_key: group.into(),
            month: "2026-12".into(),
            spec: PoolSpec {
                monthly: 100,
                warn_at_bp: 8_000,
            },
            spent: 100,
            level: PoolLevel::Capped,
            warned: true,
            caps: caps.iter().map(|(u, a)| (u.to_string(), *a)).collect(),
        }
    }

    #[test]
    fn records_round_trip_beside_the_cache_and_caps_take_the_lower_pool() {
        let store = MemoryStore::new();
        let (a, b) = (
            record("a", &[("u", 30), ("v", 5)]),
            record("b", &[("u", 20)]),
        );
        crate::store::transaction(&store, |txn| {
            tx_write(txn, "a", Some(&a))?;
            tx_write(txn, "b", Some(&b))?;
            // An Analytics cache entry under the shared prefix is not a record.
            txn.insert(Table::Meta, b"insights/cost_report/00ff", b"{}")?;
            Ok::<_, crate::store::TxFail<StoreError>>(())
        })
        .unwrap();
        let all = load_all(&store).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"], a);
        let caps = caps(&store).unwrap();
        assert_eq!(
            caps["u"],
            PoolCap {
                at: 20,
                group: "b".into()
            }
        );
        assert_eq!(caps["v"].group, "a");
        crate::store::transaction(&store, |txn| {
            tx_write(txn, "b", None)?;
            Ok::<_, crate::store::TxFail<StoreError>>(())
        })
        .unwrap();
        assert_eq!(caps_of(&load_all(&store).unwrap())["u"].at, 30);
    }
}
