//! The simulator's persistence: one JSON snapshot (`cowork-sim.json`) in the data
//! directory, written atomically (temp file, fsync, rename, fsync of the directory).
//!
//! Writes are batched: a write marks the state dirty and a background task writes at
//! most once per interval (default 500 ms), plus once on shutdown. A crash loses at
//! most the last interval; the simulator is a test tool, and this keeps bulk loads of
//! 100,000 members cheap. Stored idempotency answers are not persisted (the daemon is
//! safe without them).
//!
//! One simulator at a time per data directory: [`DirLock`] holds an exclusive lock on
//! `cowork-sim.lock` for the simulator's life, so a second one refuses to start instead
//! of overwriting the first one's state on exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::error::SimError;
use super::state::Snapshot;

/// The snapshot's file name inside the data directory.
pub const SNAPSHOT_FILE: &str = "cowork-sim.json";
/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "cowork-sim.lock";

/// The exclusive lock on a data directory; released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Takes the lock of `dir` (created if missing), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, SimError> {
        use fs2::FileExt as _;
        std::fs::create_dir_all(dir).map_err(|source| SimError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        let lock = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| SimError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(Self { _file: file }),
            Err(_) => Err(SimError::Locked {
                path: dir.to_owned(),
                lock,
            }),
        }
    }
}

/// Reads the snapshot in `dir`, if there is one.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, SimError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SimError::SnapshotRead { path, source }),
    };
    let snapshot = serde_json::from_slice(&bytes)
        .map_err(|source| SimError::SnapshotFormat { path, source })?;
    Ok(Some(snapshot))
}

/// Writes `bytes` as the snapshot in `dir`, atomically.
pub fn write_atomic(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Batches snapshot writes.
#[derive(Debug)]
pub struct Persister {
    dir: PathBuf,
    interval: Duration,
    dirty: AtomicBool,
    wake: Notify,
    stopping: AtomicBool,
}

impl Persister {
    /// A persister for `dir`, writing at most once per `interval`.
    pub fn new(dir: PathBuf, interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            dir,
            interval,
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Notes that the state changed.
    pub fn mark_dirty(&self) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Writes now if dirty. `encode` produces the snapshot bytes.
    pub async fn flush(
        &self,
        encode: impl FnOnce() -> Result<Vec<u8>, SimError>,
    ) -> Result<(), SimError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = match encode() {
            Ok(b) => b,
            Err(e) => {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        };
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || write_atomic(&dir, &bytes))
            .await
            .map_err(|e| SimError::Server(format!("snapshot writer stopped: {e}")))?;
        if let Err(e) = written {
            self.dirty.store(true, Ordering::Release);
            return Err(SimError::SnapshotWrite(e));
        }
        Ok(())
    }

    /// Runs until [`Persister::stop`]: waits for a change, lets the interval pass,
    /// writes.
    pub async fn run(self: Arc<Self>, encode: impl Fn() -> Result<Vec<u8>, SimError> + Send) {
        loop {
            self.wake.notified().await;
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(self.interval).await;
            if let Err(e) = self.flush(&encode).await {
                tracing::warn!(error = %e, "simulator snapshot failed; will retry");
                self.wake.notify_one();
            }
        }
    }

    /// Ends [`Persister::run`] (the caller then flushes once more).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), b"{\"a\":1}").unwrap();
        write_atomic(dir.path(), b"{\"a\":2}").unwrap();
        let text = std::fs::read_to_string(dir.path().join(SNAPSHOT_FILE)).unwrap();
        assert_eq!(text, "{\"a\":2}");
        assert!(!dir.path().join(format!("{SNAPSHOT_FILE}.tmp")).exists());
        assert!(load(dir.path()).is_err(), "not a snapshot");
        let empty = tempfile::tempdir().unwrap();
        assert!(load(empty.path()).unwrap().is_none());
    }

    #[test]
    fn a_second_lock_on_one_data_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, SimError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another simulator"));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
