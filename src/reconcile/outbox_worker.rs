//! The outbox worker: the event path's task.
//!
//! It drains the outbox at start (resuming what a restart left queued), then each
//! time it is woken: the SCIM handlers and the rules endpoint call `notify_one()`
//! after each write, and a `Notify` keeps one wake-up for a worker that is busy, so
//! no change waits for a timer. While entries remain it drains again at once; after
//! a transient downstream failure it waits (1 s, doubling up to 5 min, reset by a
//! success) before trying again, and a new wake-up does not cut that pause short.
//! Imports only the reconciler and tokio.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::Reconciler;
use crate::cowork::CoworkApi;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs until `stop` turns `true` (or its sender is dropped).
pub async fn outbox_worker<C: CoworkApi + 'static>(
    reconciler: Arc<Reconciler<C>>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut again = false;
        match reconciler.drain_outbox().await {
            Ok(report) if report.blocked => {
                let next = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
                tracing::warn!(
                    entries = report.entries,
                    retry_in_secs = next.as_secs(),
                    "outbox: downstream unavailable; entries stay queued"
                );
                backoff = Some(next);
            }
            Ok(report) => {
                backoff = None;
                // A full batch (or a full reconcile) may have left more behind.
                again = report.entries > 0;
            }
            Err(e) => {
                let next = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
                tracing::error!(error = %e, retry_in_secs = next.as_secs(), "outbox drain failed");
                backoff = Some(next);
            }
        }
        if again {
            continue;
        }
        match backoff {
            Some(pause) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = stop.changed() => if changed.is_err() { break },
                }
            }
            None => {
                tokio::select! {
                    _ = wake.notified() => {}
                    changed = stop.changed() => if changed.is_err() { break },
                }
            }
        }
    }
    tracing::info!("outbox worker stopped");
}
