//! The in-memory backend: ordered maps under one lock. Used by unit tests and the
//! conformance suite; it has the same semantics as sled except durability.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use parking_lot::RwLock;

use super::{AuditGuard, Entry, Store, StoreError, Table, TxBody, TxError, Txn, Visit};

type Tables = HashMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`Store`] held in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemTxn<'a> {
    base: &'a Tables,
    writes: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl Txn for MemTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        if let Some(pending) = self.writes.get(&(table, key.to_vec())) {
            return Ok(pending.clone());
        }
        Ok(self.base.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        self.writes
            .insert((table, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), TxError> {
        self.writes.insert((table, key.to_vec()), None);
        Ok(())
    }
}

impl Store for MemoryStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables
            .read()
            .get(&table)
            .and_then(|t| t.get(key))
            .cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        from: Option<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        // Copy the range out so the visitor may read the store again without
        // re-entering the lock.
        let entries: Vec<(Vec<u8>, Vec<u8>)> = {
            let tables = self.tables.read();
            let Some(map) = tables.get(&table) else {
                return Ok(());
            };
            let start = match from {
                Some(f) if f > prefix => f,
                _ => prefix,
            };
            map.range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (k, v) in &entries {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, table: Table, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        let tables = self.tables.read();
        let Some(map) = tables.get(&table) else {
            return Ok(None);
        };
        let upper = match super::prefix_successor(prefix) {
            Some(end) => map
                .range::<[u8], _>((Bound::Included(prefix), Bound::Excluded(end.as_slice())))
                .next_back(),
            None => map
                .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .next_back(),
        };
        Ok(upper.map(|(k, v)| (k.clone(), v.clone())))
    }

    fn transact(&self, body: &TxBody<'_>) -> Result<(), StoreError> {
        let mut tables = self.tables.write();
        let mut txn = MemTxn {
            base: &tables,
            writes: BTreeMap::new(),
        };
        match AuditGuard::run(&mut txn, body) {
            Ok(()) => {
                let writes = std::mem::take(&mut txn.writes);
                for ((table, key), value) in writes {
                    let map = tables.entry(table).or_default();
                    match value {
                        Some(v) => {
                            map.insert(key, v);
                        }
                        None => {
                            map.remove(&key);
                        }
                    }
                }
                Ok(())
            }
            Err(TxError::Store(e)) => Err(e),
            // A body that aborts has already recorded its own error; nothing was written.
            // Conflicts cannot happen under the single writer lock.
            Err(TxError::Abort) | Err(TxError::Conflict) => Ok(()),
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
