//! The simulator's persistence: one JSON snapshot (`cowork-sim.json`) in the data
//! directory, written atomically (temp file, fsync, rename, fsync of the directory).
//!
//! Writes are batched: a write marks the state dirty and a background task writes at
//! most once per interval (default 500 ms), plus once on shutdown. A crash loses at
//! most the last interval; the simulator is a test tool, and this keeps bulk loads of
//! 100,000 members cheap. Stored idempotency answers are not persisted (the daemon is
//! safe without them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;

use super::state::Snapshot;

/// The snapshot's file name inside the data directory.
pub const SNAPSHOT_FILE: &str = "cowork-sim.json";

/// Reads the snapshot in `dir`, if there is one.
pub fn load(dir: &Path) -> anyhow::Result<Option<Snapshot>> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let snapshot = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a simulator snapshot", path.display()))?;
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
        encode: impl FnOnce() -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<()> {
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
            .context("snapshot writer stopped")?;
        if let Err(e) = written {
            self.dirty.store(true, Ordering::Release);
            return Err(e).context("writing the simulator snapshot");
        }
        Ok(())
    }

    /// Runs until [`Persister::stop`]: waits for a change, lets the interval pass,
    /// writes.
    pub async fn run(self: Arc<Self>, encode: impl Fn() -> anyhow::Result<Vec<u8>> + Send) {
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
}
