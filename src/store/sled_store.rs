//! The sled 0.34 backend: one tree per [`Table`], multi-tree transactions for every
//! write, and group-committed flushes so a 2xx is only sent once the write is on disk.

use std::ops::ControlFlow;
use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::group_commit::GroupCommit;
use super::{AuditGuard, Entry, Store, StoreError, Table, TxBody, TxError, Txn, Visit};

/// Tuning for the sled backend.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// Page cache size in bytes.
    pub cache_bytes: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            // sled's resident memory settles near three times this figure.
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A [`Store`] on a sled database.
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    group_commit: GroupCommit,
    /// sled's log file. On Linux, sled's own flush writes the log with
    /// `sync_file_range`, which neither flushes the drive's write cache nor the file's
    /// metadata; `fdatasync` on this handle (it syncs the file, whatever descriptor
    /// wrote it) makes an acknowledged write survive a power loss, not only a crash.
    log: std::fs::File,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, options: &SledOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            // Durability comes from explicit group-committed flushes; the background
            // flusher only bounds the window for writes nobody waits on.
            .flush_every_ms(Some(1000))
            .open()?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let log = std::fs::File::open(dir.join("db"))?;
        Ok(Self {
            db,
            trees,
            group_commit: GroupCommit::default(),
            log,
        })
    }

    /// sled's flush, then `fdatasync` of its log file.
    fn flush_durably(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.log.sync_data()?;
        Ok(())
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }

    /// Flushes everything to disk (used at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.flush_durably()
    }
}

/// Why a sled transaction aborted.
enum Aborted {
    /// The body gave up with its own (already recorded) error.
    ByBody,
    /// The store refused the commit (for example, a missing audit entry).
    Store(StoreError),
}

struct SledTxn<'a> {
    trees: &'a [TransactionalTree],
}

fn tx_err(e: UnabortableTransactionError) -> TxError {
    match e {
        UnabortableTransactionError::Conflict => TxError::Conflict,
        UnabortableTransactionError::Storage(e) => TxError::Store(StoreError::Sled(e)),
    }
}

impl Txn for SledTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        self.trees[table.index()]
            .get(key)
            .map(|v| v.map(|ivec| ivec.to_vec()))
            .map_err(tx_err)
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        self.trees[table.index()]
            .insert(key, value)
            .map(|_| ())
            .map_err(tx_err)
    }

    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), TxError> {
        self.trees[table.index()]
            .remove(key)
            .map(|_| ())
            .map_err(tx_err)
    }
}

impl Store for SledStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree(table).get(key)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        from: Option<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let tree = self.tree(table);
        let start = match from {
            Some(f) if f > prefix => f.to_vec(),
            _ => prefix.to_vec(),
        };
        for entry in tree.range(start..) {
            let (k, v) = entry?;
            if !k.starts_with(prefix) {
                break;
            }
            if let ControlFlow::Break(()) = visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, table: Table, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        let tree = self.tree(table);
        let found = match super::prefix_successor(prefix) {
            Some(end) => tree.range(prefix.to_vec()..end).next_back(),
            None => tree.range(prefix.to_vec()..).next_back(),
        };
        match found {
            Some(entry) => {
                let (k, v) = entry?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn transact(&self, body: &TxBody<'_>) -> Result<(), StoreError> {
        let result: Result<(), TransactionError<Aborted>> =
            self.trees.as_slice().transaction(|trees| {
                let mut txn = SledTxn { trees };
                match AuditGuard::run(&mut txn, body) {
                    Ok(()) => Ok(()),
                    Err(TxError::Conflict) => Err(ConflictableTransactionError::Conflict),
                    Err(TxError::Store(StoreError::Sled(e))) => {
                        Err(ConflictableTransactionError::Storage(e))
                    }
                    Err(TxError::Store(other)) => {
                        Err(ConflictableTransactionError::Abort(Aborted::Store(other)))
                    }
                    Err(TxError::Abort) => {
                        Err(ConflictableTransactionError::Abort(Aborted::ByBody))
                    }
                }
            });
        match result {
            Ok(()) => {
                self.group_commit.committed();
                Ok(())
            }
            // A body that aborts has recorded its own error for the caller; nothing was written.
            Err(TransactionError::Abort(Aborted::ByBody)) => Ok(()),
            Err(TransactionError::Abort(Aborted::Store(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.group_commit
            .sync(|| self.flush_durably())
            .map_err(|message| StoreError::Io(std::io::Error::other(message)))
    }

    fn begin_write(&self) {
        self.group_commit.begin_write();
    }

    fn end_write(&self) {
        self.group_commit.end_write();
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}
