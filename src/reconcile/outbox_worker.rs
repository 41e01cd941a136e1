//! The outbox worker: the event path's task.
//!
//! It drains the outbox at start (resuming what a restart left queued), then each
//! time it is woken: the SCIM handlers and the rules endpoint call `notify_one()`
//! after each write, and a `Notify` keeps one wake-up for a worker that is busy, so
//! no change waits for a timer. A wake-up first lets the burst it belongs to gather
//! for `drain_settle` (10 ms; ended early once a full batch is queued): an IdP push
//! writes a batch every millisecond or two, and draining after each one cost every
//! write a second transaction and a dozen thread hand-offs (bench/README.md, issue
//! 17). While entries remain it drains again at once; after
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

/// After a wake-up: waits `window` for more of the burst, or until `backlog` says a
/// full batch is queued (or cannot tell). `false` when the worker is told to stop
/// meanwhile.
async fn settle(
    window: Duration,
    full: u64,
    backlog: impl Fn() -> Option<u64>,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match backlog() {
            Some(queued) if queued < full => {}
            _ => return true,
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = wake.notified() => {}
            changed = stop.changed() => return changed.is_ok() && !*stop.borrow(),
        }
    }
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
                // A full batch (or a full reconcile) may have left more behind;
                // what was queued during a smaller drain woke the worker again.
                again = report.entries >= reconciler.options().full_outbox_batch()
                    || report.full_reconcile.is_some();
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
                    _ = wake.notified() => {
                        let options = reconciler.options();
                        let backlog = || reconciler.outbox_backlog().ok();
                        let full = options.full_outbox_batch() as u64;
                        if !settle(options.drain_settle, full, backlog, &wake, &mut stop).await {
                            break;
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const WINDOW: Duration = Duration::from_millis(10);

    /// Lets the spawned task run until it waits again (time is paused, so it only
    /// moves when the test says).
    async fn let_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// A `settle` running on its own task, with the backlog it reads, the wake-up it
    /// listens to and the stop it obeys (a backlog of 1 of a batch of 3 at first).
    struct Settling {
        queued: Arc<AtomicU64>,
        wake: Arc<Notify>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<bool>,
    }

    fn spawn_settle() -> Settling {
        let queued = Arc::new(AtomicU64::new(1));
        let wake = Arc::new(Notify::new());
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn({
            let (queued, wake) = (queued.clone(), wake.clone());
            async move {
                settle(
                    WINDOW,
                    3,
                    || Some(queued.load(Ordering::SeqCst)),
                    &wake,
                    &mut stop_rx,
                )
                .await
            }
        });
        Settling {
            queued,
            wake,
            stop,
            task,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_waits_for_its_burst_until_the_window_ends() {
        let s = spawn_settle();
        let_run().await;
        tokio::time::advance(WINDOW / 2).await;
        // More of the burst arrives, still short of a batch: it keeps waiting.
        s.queued.store(2, Ordering::SeqCst);
        s.wake.notify_one();
        let_run().await;
        assert!(!s.task.is_finished(), "drained before the window ended");
        tokio::time::advance(WINDOW / 2).await;
        let_run().await;
        assert!(s.task.is_finished());
        assert!(s.task.await.unwrap(), "the worker goes on to drain");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_ends_the_wait_at_once() {
        let s = spawn_settle();
        let_run().await;
        assert!(!s.task.is_finished());
        s.queued.store(3, Ordering::SeqCst);
        s.wake.notify_one();
        let_run().await;
        assert!(s.task.is_finished(), "a full batch waits for nothing");
        assert!(s.task.await.unwrap());
        // Already full, or a backlog that cannot be read: no wait at all.
        let (_tx, mut stop) = watch::channel(false);
        assert!(settle(WINDOW, 3, || None, &s.wake, &mut stop).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_the_wait_ends_the_worker() {
        let s = spawn_settle();
        let_run().await;
        s.stop.send(true).unwrap();
        let_run().await;
        assert!(!s.task.await.unwrap(), "told to stop: no drain");
    }
}
