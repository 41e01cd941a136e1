//! Pool records in the store: one [`PoolRecord`] per pooled group, under the meta key
//! `insights/pool/<group key>`, and the caps they add up to.
//!
//! The Analytics cache shares the `insights/` prefix with its own endpoints
//! (`insights/users/…`, `insights/cost_report/…`, `insights/user_cost_report/…`), so
//! no cache key starts with `insights/pool/`. Records are written by the pool check
//! (`super::check`) in the transaction that audits what the check changed; the
//! reconciler reads the caps before it plans.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde::Serialize;

use super::pool::{PoolRecord, PoolSpec};
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

/// One pooled group as `GET /admin/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolStatus {
    /// The downstream group's key.
    pub group: String,
    /// The rules that fill it, comma-separated (empty once the rules dropped the pool).
    pub rule: String,
    /// `ok`, `warn`, `capped`, or `unchecked` before the first check.
    pub level: &'static str,
    /// The month of the last check (`YYYY-MM`, UTC).
    pub month: Option<String>,
    /// The month-to-date cost at the last check, minor units.
    pub spent_minor: u64,
    /// The pool, minor units (as the rules say now; as last checked once they dropped it).
    pub monthly_minor: u64,
    /// `warn_at` as the rule file writes it.
    pub warn_at: f64,
    /// The billing currency.
    pub currency: String,
    /// Members capped now.
    pub capped_members: usize,
}

/// Every pooled group of the current rules, and every record the next check will
/// clear (a pool the rules dropped), with where it stood at the last check.
pub fn status(store: &dyn Store) -> Result<Vec<PoolStatus>, StoreError> {
    let mut records = load_all(store)?;
    let mut out = Vec::new();
    let currency = match crate::ruleset::current(store)? {
        Some(current) => {
            let currency = current.table.org().billing_currency.clone();
            for (key, g) in current.table.groups() {
                let Some(spec) = g.pool else { continue };
                let record = records.remove(key);
                out.push(row(key, &g.rules, spec, record.as_ref(), &currency));
            }
            currency
        }
        None => String::new(),
    };
    for (key, r) in &records {
        out.push(row(key, &BTreeSet::new(), r.spec, Some(r), &currency));
    }
    Ok(out)
}

fn row(
    key: &str,
    rules: &BTreeSet<String>,
    spec: PoolSpec,
    record: Option<&PoolRecord>,
    currency: &str,
) -> PoolStatus {
    PoolStatus {
        group: key.to_string(),
        rule: rules.iter().cloned().collect::<Vec<_>>().join(", "),
        level: record.map_or("unchecked", |r| r.level.as_str()),
        month: record.map(|r| r.month.clone()),
        spent_minor: record.map_or(0, |r| r.spent),
        monthly_minor: spec.monthly,
        warn_at: spec.warn_at(),
        currency: currency.to_string(),
        capped_members: record.map_or(0, |r| r.caps.len()),
    }
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
