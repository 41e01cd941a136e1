//! What a write in a combined batch reads: the store as it was when the batch began,
//! overlaid with the writes of the batch's earlier writes ([`BatchView`]), and the
//! writes of one write kept apart until it has succeeded ([`Savepoint`]).
//!
//! A sled 0.34 transaction cannot scan, and the store cannot be read at all while one
//! of its transactions runs, so a batch is validated outside any transaction against
//! this view (under the directory's writer lock, so nobody else changes directory
//! state meanwhile) and then written in one transaction that only applies what the
//! view collected. Reads here are single keys and prefix scans; both see the overlay.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use crate::store::{Store, StoreError, Table, TxError, Txn, Visit};

/// Reads the directory's validation needs: single keys and prefix scans.
pub(super) trait Reads {
    /// Reads one key.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits, in key order, the entries whose key starts with `prefix`.
    fn scan(&self, table: Table, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError>;
}

/// The store itself, for reads outside a batch.
pub(super) struct Plain<'a>(pub &'a dyn Store);

impl Reads for Plain<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(table, key)
    }

    fn scan(&self, table: Table, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        self.0.scan(table, prefix, None, visit)
    }
}

/// Pending writes: `Some(value)` to write, `None` to remove.
pub(super) type Writes = BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>;

/// The store overlaid with the writes of a batch's successful writes so far.
pub(super) struct BatchView<'s> {
    store: &'s dyn Store,
    writes: Writes,
}

impl<'s> BatchView<'s> {
    pub(super) fn new(store: &'s dyn Store) -> Self {
        Self {
            store,
            writes: Writes::new(),
        }
    }

    /// How many keys the batch writes so far.
    pub(super) fn len(&self) -> usize {
        self.writes.len()
    }

    /// The collected writes, for the batch's transaction.
    pub(super) fn into_writes(self) -> Writes {
        self.writes
    }

    fn absorb(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }
}

impl Reads for BatchView<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.store.get(table, key),
        }
    }

    fn scan(&self, table: Table, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        let start = (table, prefix.to_vec());
        let mut pending = self
            .writes
            .range((Bound::Included(&start), Bound::Unbounded))
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .peekable();
        if pending.peek().is_none() {
            return self.store.scan(table, prefix, None, visit);
        }
        // Merge: the batch's writes replace or hide stored keys, and add new ones.
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        self.store.scan(table, prefix, None, &mut |k, v| {
            merged.insert(k.to_vec(), v.to_vec());
            ControlFlow::Continue(())
        })?;
        for ((_, key), value) in pending {
            match value {
                Some(v) => merged.insert(key.clone(), v.clone()),
                None => merged.remove(key),
            };
        }
        for (k, v) in &merged {
            if let ControlFlow::Break(()) = visit(k, v) {
                break;
            }
        }
        Ok(())
    }
}

/// The writes of one write of a batch: its reads see its own writes, then the view;
/// its writes reach the view only when it succeeded ([`Savepoint::release`]).
pub(super) struct Savepoint<'v, 's> {
    view: &'v mut BatchView<'s>,
    writes: Writes,
}

impl<'v, 's> Savepoint<'v, 's> {
    pub(super) fn new(view: &'v mut BatchView<'s>) -> Self {
        Self {
            view,
            writes: Writes::new(),
        }
    }

    /// Keeps this write's changes: later writes of the batch see them.
    pub(super) fn release(self) {
        self.view.absorb(self.writes);
    }
}

impl Txn for Savepoint<'_, '_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => Ok(self.view.get(table, key)?),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::transaction;

    fn seeded() -> MemoryStore {
        let store = MemoryStore::new();
        transaction::<_, StoreError>(&store, |txn| {
            for k in [b"g1\0a".as_slice(), b"g1\0c", b"g2\0a"] {
                txn.insert(Table::SimState, k, b"old")?;
            }
            Ok(())
        })
        .unwrap();
        store
    }

    fn keys(view: &BatchView<'_>, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        view.scan(Table::SimState, prefix, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_scan_sees_released_writes_and_not_dropped_ones() {
        let store = seeded();
        let mut view = BatchView::new(&store);
        let mut kept = Savepoint::new(&mut view);
        kept.insert(Table::SimState, b"g1\0b", b"new").unwrap();
        kept.remove(Table::SimState, b"g1\0c").unwrap();
        kept.insert(Table::SimState, b"g1\0a", b"changed").unwrap();
        assert_eq!(
            kept.get(Table::SimState, b"g1\0b").unwrap(),
            Some(b"new".to_vec())
        );
        kept.release();
        let mut dropped = Savepoint::new(&mut view);
        dropped.insert(Table::SimState, b"g1\0d", b"never").unwrap();
        drop(dropped);
        assert_eq!(
            keys(&view, b"g1\0"),
            vec![
                (b"g1\0a".to_vec(), b"changed".to_vec()),
                (b"g1\0b".to_vec(), b"new".to_vec()),
            ]
        );
        // Other prefixes and tables read the store as it is.
        assert_eq!(
            keys(&view, b"g2\0"),
            vec![(b"g2\0a".to_vec(), b"old".to_vec())]
        );
        assert_eq!(view.get(Table::SimState, b"g1\0c").unwrap(), None);
        assert_eq!(view.get(Table::Meta, b"g1\0b").unwrap(), None);
        assert_eq!(view.len(), 3);
        // The store itself is untouched until the batch commits.
        assert_eq!(
            store.get(Table::SimState, b"g1\0c").unwrap(),
            Some(b"old".to_vec())
        );
    }

    #[test]
    fn a_scan_stops_when_the_visitor_breaks() {
        let store = seeded();
        let mut view = BatchView::new(&store);
        let mut sp = Savepoint::new(&mut view);
        sp.insert(Table::SimState, b"g1\0b", b"new").unwrap();
        sp.release();
        let mut seen = 0;
        view.scan(Table::SimState, b"g1\0", &mut |_, _| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(seen, 1);
    }
}
