//! The audit head checkpointed **outside** the database: `audit-head.json` in the
//! data directory, holding the sequence number and hash of the last entry known to be
//! on disk.
//!
//! A database that rolls back (a restore from an old backup, a damaged file that sled
//! recovers to an earlier state) takes its own head back with it, so the chain still
//! verifies. This file does not roll back with it: at start the daemon compares the
//! two and refuses to serve when the store is behind, unless the operator accepts the
//! rollback, which is then audited (`store.rollback_accepted`).
//!
//! The file is written only after the store has been flushed up to the head it
//! names (temporary file, fsync, rename, fsync of the directory), so a crash never
//! leaves it ahead of what the database kept. Imports the store trait only.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{append, chain_points, AuditDraft, ChainPoint};
use crate::store::{transaction, Store, StoreError, TxFail};

/// The checkpoint's file name in the data directory.
pub const FILE_NAME: &str = "audit-head.json";

/// Errors reading or enforcing the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("audit head checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("audit head checkpoint {0} is not valid JSON of a sequence and hash; restore it from a backup or remove it to start over")]
    Malformed(PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store's head is behind the checkpoint (or differs from it).
    #[error(
        "the database's audit trail ends at sequence {store_seq} but the data directory's \
         checkpoint ({file}) recorded sequence {checkpoint_seq}{diverged}: the database was \
         rolled back or damaged, and changes after sequence {store_seq} are missing from it. \
         Restore the data directory from a backup taken after sequence {checkpoint_seq} \
         (docs/operations.md, \"Backup and restore\"), or start with --accept-rollback to \
         continue from sequence {store_seq} (audited as store.rollback_accepted)",
        file = .path.display(),
        diverged = if *.diverged { " with another hash" } else { "" }
    )]
    RolledBack {
        /// The checkpoint file.
        path: PathBuf,
        /// The head the checkpoint recorded.
        checkpoint_seq: u64,
        /// The store's head.
        store_seq: u64,
        /// Same sequence number, different hash.
        diverged: bool,
    },
}

/// Where the checkpoint lives for a data directory.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Reads the checkpoint, `None` when there is none yet.
pub fn read(path: &Path) -> Result<Option<ChainPoint>, CheckpointError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| CheckpointError::Malformed(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the checkpoint durably (temporary file, fsync, rename, directory fsync).
/// Call only once the store is flushed up to `head`.
pub fn write(path: &Path, head: &ChainPoint) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    let body = serde_json::to_vec(head).map_err(|e| io(std::io::Error::other(e)))?;
    file.write_all(&body).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The store's head: the last entry, or the prune checkpoint when every entry is pruned.
pub fn store_head(store: &dyn Store) -> Result<Option<ChainPoint>, StoreError> {
    let (head, checkpoint) = chain_points(store)?;
    Ok(head.or(checkpoint))
}

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartCheck {
    /// No checkpoint yet, or the store is at or past it.
    Consistent,
    /// The store was behind and the operator accepted it; the acceptance is audited.
    RollbackAccepted {
        /// The checkpoint's sequence.
        checkpoint_seq: u64,
        /// The store's sequence.
        store_seq: u64,
    },
}

/// Compares the store's head with the checkpoint at `path`. Behind (or the same
/// sequence with another hash) is an error unless `accept_rollback`, in which case an
/// audit entry records it and the checkpoint moves to the store's head.
pub fn check_at_start(
    store: &dyn Store,
    path: &Path,
    accept_rollback: bool,
    now: DateTime<Utc>,
) -> Result<StartCheck, CheckpointError> {
    let Some(recorded) = read(path)? else {
        return Ok(StartCheck::Consistent);
    };
    let head = store_head(store)?;
    let store_seq = head.as_ref().map_or(0, |h| h.seq);
    let diverged =
        store_seq == recorded.seq && head.as_ref().is_some_and(|h| h.hash != recorded.hash);
    if store_seq > recorded.seq || (store_seq == recorded.seq && !diverged) {
        return Ok(StartCheck::Consistent);
    }
    if !accept_rollback {
        return Err(CheckpointError::RolledBack {
            path: path.to_path_buf(),
            checkpoint_seq: recorded.seq,
            store_seq,
            diverged,
        });
    }
    transaction::<_, StoreError>(store, |txn| {
        append(
            txn,
            AuditDraft::new("system", "store.rollback_accepted", None).with(serde_json::json!({
                "checkpoint_seq": recorded.seq,
                "store_seq": store_seq,
                "diverged": diverged,
            })),
            now,
        )
        .map_err(TxFail::Store)?;
        Ok(())
    })?;
    Ok(StartCheck::RollbackAccepted {
        checkpoint_seq: recorded.seq,
        store_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    fn entry(store: &dyn Store, clock: &ManualClock) {
        transaction::<_, StoreError>(store, |txn| {
            append(txn, AuditDraft::new("t", "t", None), clock.now()).map_err(TxFail::Store)?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_store_behind_its_checkpoint_is_refused_unless_accepted_and_then_audited() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let clock = ManualClock::at_epoch_2026();
        let store = MemoryStore::new();
        assert_eq!(
            check_at_start(&store, &path, false, clock.now()).unwrap(),
            StartCheck::Consistent
        );
        for _ in 0..3 {
            entry(&store, &clock);
        }
        write(&path, &store_head(&store).unwrap().unwrap()).unwrap();
        assert_eq!(
            check_at_start(&store, &path, false, clock.now()).unwrap(),
            StartCheck::Consistent
        );
        // An older database: one entry.
        let old = MemoryStore::new();
        entry(&old, &clock);
        let err = check_at_start(&old, &path, false, clock.now()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sequence 1") && text.contains("sequence 3"),
            "{text}"
        );
        assert!(
            text.contains("--accept-rollback") && text.contains("backup"),
            "{text}"
        );
        assert_eq!(
            check_at_start(&old, &path, true, clock.now()).unwrap(),
            StartCheck::RollbackAccepted {
                checkpoint_seq: 3,
                store_seq: 1
            }
        );
        let last = crate::audit::list(&old, None, 0, 10)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(last.action, "store.rollback_accepted");
        // Same sequence, another chain: refused as well.
        let other = MemoryStore::new();
        clock.advance(chrono::Duration::seconds(5));
        for _ in 0..3 {
            entry(&other, &clock);
        }
        let err = check_at_start(&other, &path, false, clock.now()).unwrap_err();
        assert!(err.to_string().contains("another hash"), "{err}");
    }
}
