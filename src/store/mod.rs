//! Storage: a narrow, transactional, ordered key-value interface over a fixed set of
//! named tables, with a sled backend ([`sled_store`]) and an in-memory backend
//! ([`memory`]) that pass one conformance suite.
//!
//! Everything above it (the directory, rules, outbox, audit, run history) is written
//! once against [`Store`]. Every backend wraps its transactions in [`AuditGuard`], so a
//! transaction that changes governed state without appending an audit entry cannot
//! commit. This module exposes [`StoreError`] only and imports nothing of ours.

pub mod codec;
mod group_commit;
pub mod memory;
pub mod sled_store;

use std::cell::RefCell;
use std::ops::ControlFlow;

/// The tables of the database. Each is a sled tree of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Schema version, counters, chain heads.
    Meta,
    /// SCIM users by id.
    Users,
    /// SCIM groups by id (without members).
    Groups,
    /// `group_id 0x00 member_id` → membership record.
    Members,
    /// `member_id 0x00 group_id` → empty: the reverse membership index.
    MemberOf,
    /// lowercased `userName` → user id.
    UserNameIdx,
    /// `externalId` → user id.
    UserExternalIdIdx,
    /// lowercased group `displayName` → group id.
    GroupNameIdx,
    /// `externalId` → group id.
    GroupExternalIdIdx,
    /// Rule table versions by version number.
    Rules,
    /// Pending downstream work by sequence number.
    Outbox,
    /// The hash-chained audit trail by sequence number.
    Audit,
    /// Reconcile run history by run number.
    Runs,
    /// What the daemon knows it owns downstream (group ids, memberships it made, overrides).
    Downstream,
    /// The Cowork simulator's own state (only used by the simulator's store).
    SimState,
}

impl Table {
    /// Every table, in a fixed order (the order of trees in a sled transaction).
    pub const ALL: [Table; 15] = [
        Table::Meta,
        Table::Users,
        Table::Groups,
        Table::Members,
        Table::MemberOf,
        Table::UserNameIdx,
        Table::UserExternalIdIdx,
        Table::GroupNameIdx,
        Table::GroupExternalIdIdx,
        Table::Rules,
        Table::Outbox,
        Table::Audit,
        Table::Runs,
        Table::Downstream,
        Table::SimState,
    ];

    /// The tree name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Users => "users",
            Table::Groups => "groups",
            Table::Members => "members",
            Table::MemberOf => "member_of",
            Table::UserNameIdx => "idx_user_name",
            Table::UserExternalIdIdx => "idx_user_external_id",
            Table::GroupNameIdx => "idx_group_name",
            Table::GroupExternalIdIdx => "idx_group_external_id",
            Table::Rules => "rules",
            Table::Outbox => "outbox",
            Table::Audit => "audit",
            Table::Runs => "runs",
            Table::Downstream => "downstream",
            Table::SimState => "sim_state",
        }
    }

    /// Position in [`Table::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a change to this table is an access-relevant change that must be
    /// committed together with an audit entry. Bookkeeping tables (meta counters,
    /// the outbox queue, the simulator) and the audit table itself are exempt.
    pub fn requires_audit(self) -> bool {
        !matches!(
            self,
            Table::Meta | Table::Audit | Table::Outbox | Table::SimState
        )
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The sled database failed.
    #[error("database error")]
    Sled(#[from] sled::Error),
    /// A stored value could not be decoded.
    #[error("stored value in {table} is corrupt: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A transaction changed governed state without an audit entry and was refused.
    #[error("refused to commit a change to {table} without an audit entry")]
    Unaudited {
        /// The first governed table the transaction wrote.
        table: &'static str,
    },
    /// The data directory is unusable.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The on-disk schema is newer than this binary understands.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew {
        /// Version found on disk.
        found: u64,
        /// Newest version this binary knows.
        supported: u64,
    },
}

/// Why a transaction body stopped.
#[derive(Debug)]
pub enum TxError {
    /// The body gave up; nothing is written. The caller's own error says why.
    Abort,
    /// A concurrent transaction conflicted; the backend retries the body.
    Conflict,
    /// The backend failed.
    Store(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

/// Reads and writes inside one transaction. Reads see the transaction's own writes.
pub trait Txn {
    /// Reads a key.
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
    /// Writes a key.
    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxError>;
    /// Deletes a key (a missing key is fine).
    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), TxError>;
}

/// The body of a transaction. It may run more than once if the backend retries.
pub type TxBody<'a> = dyn Fn(&mut dyn Txn) -> Result<(), TxError> + 'a;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A visitor over scanned entries; return `ControlFlow::Break(())` to stop early.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A transactional, ordered key-value store over [`Table`]s.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits, in key order, the entries whose key starts with `prefix`, beginning at
    /// `from` (inclusive; defaults to `prefix`), until `visit` breaks or the prefix ends.
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        from: Option<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError>;

    /// The entry with the greatest key starting with `prefix`.
    fn last(&self, table: Table, prefix: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// Runs `body` atomically: all of its writes commit together or none do. Prefer
    /// [`transaction`], which carries a typed result and error out of the body.
    fn transact(&self, body: &TxBody<'_>) -> Result<(), StoreError>;

    /// Returns once every write committed before this call is on disk. Concurrent
    /// callers share one flush (group commit).
    fn sync(&self) -> Result<(), StoreError>;

    /// Announces a writer that is about to commit and then call [`Store::sync`]. While
    /// announced writers are still committing, a flush waits briefly for them so that
    /// one flush covers them all. Pair with [`Store::end_write`]; [`WriteIntent`] does.
    fn begin_write(&self) {}

    /// Ends an announcement made with [`Store::begin_write`].
    fn end_write(&self) {}

    /// Bytes used on disk (0 for the memory backend).
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}

/// An announced write (see [`Store::begin_write`]), ended when dropped: take it
/// before queueing for the writer lock, drop it once the transaction has committed
/// or failed, then call [`Store::sync`].
pub struct WriteIntent<'a> {
    store: &'a dyn Store,
}

impl<'a> WriteIntent<'a> {
    /// Announces a write on `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        store.begin_write();
        Self { store }
    }
}

impl Drop for WriteIntent<'_> {
    fn drop(&mut self) {
        self.store.end_write();
    }
}

/// What a transaction body returns: a value, or a failure that aborts the transaction.
pub enum TxFail<E> {
    /// The caller's own error: nothing is written and `transaction` returns it.
    Domain(E),
    /// A storage-level stop (conflict, backend error).
    Store(TxError),
}

impl<E> From<TxError> for TxFail<E> {
    fn from(e: TxError) -> Self {
        TxFail::Store(e)
    }
}

/// Runs `body` in one transaction and hands back its value or its domain error.
///
/// The body may run more than once (a backend retries on conflict), so it must not
/// have side effects outside the transaction.
pub fn transaction<T, E>(
    store: &dyn Store,
    body: impl Fn(&mut dyn Txn) -> Result<T, TxFail<E>>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    let outcome: RefCell<Option<Result<T, E>>> = RefCell::new(None);
    let run = |txn: &mut dyn Txn| -> Result<(), TxError> {
        match body(txn) {
            Ok(value) => {
                *outcome.borrow_mut() = Some(Ok(value));
                Ok(())
            }
            Err(TxFail::Domain(e)) => {
                *outcome.borrow_mut() = Some(Err(e));
                Err(TxError::Abort)
            }
            Err(TxFail::Store(e)) => Err(e),
        }
    };
    let committed = store.transact(&run);
    match (committed, outcome.into_inner()) {
        (Ok(()), Some(result)) => result,
        (Err(e), Some(Ok(_))) | (Err(e), None) => Err(E::from(e)),
        (_, Some(Err(domain))) => Err(domain),
        (Ok(()), None) => Err(E::from(StoreError::Corrupt {
            table: "meta",
            detail: "transaction committed without running its body".into(),
        })),
    }
}

/// Wraps a backend's raw transaction and refuses to let a body that wrote governed
/// tables commit unless it also appended to the audit table.
pub struct AuditGuard<'a> {
    inner: &'a mut dyn Txn,
    first_governed: Option<Table>,
    audited: bool,
}

impl<'a> AuditGuard<'a> {
    /// Guards `inner`.
    pub fn new(inner: &'a mut dyn Txn) -> Self {
        Self {
            inner,
            first_governed: None,
            audited: false,
        }
    }

    /// Runs `body` against the guarded transaction and checks the audit rule.
    pub fn run(inner: &'a mut dyn Txn, body: &TxBody<'_>) -> Result<(), TxError> {
        let mut guard = AuditGuard::new(inner);
        body(&mut guard)?;
        guard.check()
    }

    fn note_write(&mut self, table: Table) {
        if table == Table::Audit {
            self.audited = true;
        } else if table.requires_audit() && self.first_governed.is_none() {
            self.first_governed = Some(table);
        }
    }

    /// `Ok` unless governed tables were written without an audit entry.
    pub fn check(&self) -> Result<(), TxError> {
        match self.first_governed {
            Some(table) if !self.audited => Err(TxError::Store(StoreError::Unaudited {
                table: table.name(),
            })),
            _ => Ok(()),
        }
    }
}

impl Txn for AuditGuard<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        self.inner.get(table, key)
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        self.note_write(table);
        self.inner.insert(table, key, value)
    }

    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), TxError> {
        self.note_write(table);
        self.inner.remove(table, key)
    }
}

/// Collects up to `limit` entries of a prefix scan.
pub fn collect_prefix(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    store.scan(table, prefix, None, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(out)
}

/// The smallest key greater than every key starting with `prefix`, or `None` when
/// no such key exists (the prefix is empty or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
pub mod conformance;
