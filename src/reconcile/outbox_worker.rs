//! The outbox worker: the event path's task.
//!
//! It drains the outbox at start (resuming what a restart left queued), then each
//! time it is woken: the SCIM handlers and the rules endpoint call `notify_one()`
//! after each write, and a `Notify` keeps one wake-up for a worker that is busy, so
//! no change waits for a timer. While entries remain it drains again at once; after
//! a transient downstream failure it waits (1 s, doubling up to 5 min, reset by a
//! success) before trying again, and a new wake-up does not cut that pause short.
//!
//! It also keeps the offboarding timer: while an organization removal waits for
//! its grace (`lifecycle.remove_from_org_after`), the worker sleeps until the
//! earliest one is due and applies the ones due then. One that stays due (its
//! removal failed or is held) is retried at most once a minute.
//! Imports only the reconciler and tokio.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::Reconciler;
use crate::cowork::CoworkApi;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often an organization removal that stays due is tried again.
const OFFBOARD_RETRY: Duration = Duration::from_secs(60);

/// How long until the offboarding timer should fire, if anything waits for it.
async fn offboarding_wait<C: CoworkApi + 'static>(
    reconciler: &Reconciler<C>,
    last_attempt: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<Duration> {
    let due = match reconciler.next_offboarding_due().await {
        Ok(due) => due?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read pending organization removals");
            return Some(OFFBOARD_RETRY);
        }
    };
    let now = reconciler.clock_now();
    let at = match last_attempt {
        // Still due after an attempt: not before the retry interval.
        Some(tried) if due <= tried => {
            tried + chrono::Duration::from_std(OFFBOARD_RETRY).unwrap_or_default()
        }
        _ => due,
    };
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Runs until `stop` turns `true` (or its sender is dropped).
pub async fn outbox_worker<C: CoworkApi + 'static>(
    reconciler: Arc<Reconciler<C>>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff: Option<Duration> = None;
    let mut offboard_tried: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut offboard_now = false;
    loop {
        if *stop.borrow() {
            break;
        }
        if std::mem::take(&mut offboard_now) {
            offboard_tried = Some(reconciler.clock_now());
            match reconciler.offboard_due().await {
                Ok(report) if report.blocked => tracing::warn!(
                    "organization removals due: downstream unavailable; retrying later"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "organization removals due: the pass failed"),
            }
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
                let timer = offboarding_wait(&reconciler, offboard_tried).await;
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(timer.unwrap_or(Duration::ZERO)), if timer.is_some() => {
                        offboard_now = true;
                    }
                    changed = stop.changed() => if changed.is_err() { break },
                }
            }
        }
    }
    tracing::info!("outbox worker stopped");
}
