//! The storage conformance suite: every backend must pass the same cases.
//! Directory-level cases (uniqueness, index consistency) live with the directory and
//! also run on both backends.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::codec::{seq_key, tx_bump};
use super::memory::MemoryStore;
use super::sled_store::{SledOptions, SledStore};
use super::{collect_prefix, transaction, Store, StoreError, Table, TxFail};

#[derive(Debug)]
enum TestError {
    Store(StoreError),
    Refused,
}

impl From<StoreError> for TestError {
    fn from(e: StoreError) -> Self {
        TestError::Store(e)
    }
}

fn audit_write(txn: &mut dyn super::Txn, seq: u64) -> Result<(), TxFail<TestError>> {
    txn.insert(Table::Audit, &seq_key(seq), b"entry")?;
    Ok(())
}

pub fn backends() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
    vec![
        ("memory", Arc::new(MemoryStore::new()), None),
        ("sled", Arc::new(sled), Some(dir)),
    ]
}

#[test]
fn committed_writes_are_visible_and_aborted_ones_are_not() {
    for (name, store, _dir) in backends() {
        let ok: Result<(), TestError> = transaction(store.as_ref(), |txn| {
            txn.insert(Table::Users, b"u1", b"alice")?;
            txn.insert(Table::UserNameIdx, b"alice", b"u1")?;
            audit_write(txn, 1)
        });
        assert!(ok.is_ok(), "{name}");
        let refused: Result<(), TestError> = transaction(store.as_ref(), |txn| {
            txn.insert(Table::Users, b"u2", b"bob")?;
            audit_write(txn, 2)?;
            Err(TxFail::Domain(TestError::Refused))
        });
        assert!(matches!(refused, Err(TestError::Refused)), "{name}");
        assert_eq!(
            store.get(Table::Users, b"u1").unwrap().as_deref(),
            Some(&b"alice"[..]),
            "{name}"
        );
        assert_eq!(store.get(Table::Users, b"u2").unwrap(), None, "{name}");
        assert_eq!(
            store.get(Table::Audit, &seq_key(2)).unwrap(),
            None,
            "{name}"
        );
    }
}

#[test]
fn a_governed_write_without_an_audit_entry_cannot_commit() {
    for (name, store, _dir) in backends() {
        let result: Result<(), TestError> = transaction(store.as_ref(), |txn| {
            txn.insert(Table::Users, b"u1", b"alice")?;
            Ok(())
        });
        assert!(
            matches!(
                result,
                Err(TestError::Store(StoreError::Unaudited { table: "users" }))
            ),
            "{name}: {result:?}"
        );
        assert_eq!(store.get(Table::Users, b"u1").unwrap(), None, "{name}");
        // Bookkeeping tables need no audit entry.
        let meta: Result<(), TestError> = transaction(store.as_ref(), |txn| {
            tx_bump(txn, Table::Meta, b"counter", 1)?;
            Ok(())
        });
        assert!(meta.is_ok(), "{name}");
    }
}

#[test]
fn reads_inside_a_transaction_see_its_own_writes() {
    for (name, store, _dir) in backends() {
        let seen: Result<Option<Vec<u8>>, TestError> = transaction(store.as_ref(), |txn| {
            txn.insert(Table::Meta, b"k", b"v")?;
            let v = txn.get(Table::Meta, b"k")?;
            txn.remove(Table::Meta, b"k")?;
            let gone = txn.get(Table::Meta, b"k")?;
            assert_eq!(gone, None);
            Ok(v)
        });
        assert_eq!(seen.unwrap().as_deref(), Some(&b"v"[..]), "{name}");
    }
}

#[test]
fn scans_respect_prefix_start_and_early_stop() {
    for (name, store, _dir) in backends() {
        let _: () = transaction::<_, TestError>(store.as_ref(), |txn| {
            for k in ["a/1", "a/2", "a/3", "b/1"] {
                txn.insert(Table::Meta, k.as_bytes(), b"x")?;
            }
            Ok(())
        })
        .unwrap();
        let all = collect_prefix(store.as_ref(), Table::Meta, b"a/", 10).unwrap();
        assert_eq!(all.len(), 3, "{name}");
        let mut from_two = Vec::new();
        store
            .scan(Table::Meta, b"a/", Some(b"a/2"), &mut |k, _| {
                from_two.push(k.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(from_two, vec![b"a/2".to_vec(), b"a/3".to_vec()], "{name}");
        let first = collect_prefix(store.as_ref(), Table::Meta, b"a/", 1).unwrap();
        assert_eq!(first[0].0, b"a/1".to_vec(), "{name}");
        let last = store.last(Table::Meta, b"a/").unwrap().unwrap();
        assert_eq!(last.0, b"a/3".to_vec(), "{name}");
        assert_eq!(store.last(Table::Meta, b"c/").unwrap(), None, "{name}");
        let everything = store.last(Table::Meta, b"").unwrap().unwrap();
        assert_eq!(everything.0, b"b/1".to_vec(), "{name}");
    }
}

#[test]
fn sync_returns_after_commits_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
        let _: () = transaction::<_, TestError>(&store, |txn| {
            txn.insert(Table::Users, b"u1", b"alice")?;
            audit_write(txn, 1)
        })
        .unwrap();
        store.sync().unwrap();
    }
    let store = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(
        store.get(Table::Users, b"u1").unwrap().as_deref(),
        Some(&b"alice"[..])
    );
}

#[test]
fn concurrent_counter_increments_are_serialized() {
    for (name, store, _dir) in backends() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _: u64 = transaction::<_, TestError>(store.as_ref(), |txn| {
                            Ok(tx_bump(txn, Table::Meta, b"n", 1)?)
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = store.get(Table::Meta, b"n").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 200, "{name}");
    }
}
