//! Authentication failures in the audit trail, rate-limited so a flood of bad
//! tokens cannot flood the log.
//!
//! The auth extractor hands each refusal to [`FailureRecorder::record`], which never
//! blocks a request: events go through a bounded queue to a background writer. Up to
//! the configured number per minute become `auth.failure` entries; beyond that they
//! are counted and summarized by one `auth.failure.suppressed` entry when the budget
//! allows again.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{append, AuditDraft};
use crate::clock::SharedClock;
use crate::ratelimit::KeyedLimiter;
use crate::store::{transaction, Store, StoreError, TxFail};

/// Events waiting for the writer at most; beyond that they are counted as suppressed.
const QUEUE: usize = 1024;

/// One refused request.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    /// `missing`, `invalid`, `expired`, `scope`.
    pub reason: &'static str,
    /// The route pattern (never the full path with ids or a query string).
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The peer address the request came from (a proxy's, behind an ingress).
    pub peer: Option<String>,
    /// The first `X-Forwarded-For` address, when a proxy sent one (unverified).
    pub forwarded_for: Option<String>,
}

enum Message {
    Failure(AuthFailure),
    Flush(oneshot::Sender<()>),
}

/// The request-side handle.
#[derive(Clone)]
pub struct FailureRecorder {
    tx: mpsc::Sender<Message>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    enabled: bool,
}

/// The writer side, to be spawned on a runtime.
pub struct FailureWriter {
    rx: mpsc::Receiver<Message>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    limiter: KeyedLimiter,
}

/// A recorder and its writer, allowing `per_minute` entries a minute (0: record
/// nothing).
pub fn channel(
    store: Arc<dyn Store>,
    clock: SharedClock,
    per_minute: u32,
) -> (FailureRecorder, FailureWriter) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let enabled = per_minute > 0;
    let per_minute = f64::from(per_minute.max(1));
    (
        FailureRecorder {
            tx,
            dropped: dropped.clone(),
            enabled,
        },
        FailureWriter {
            rx,
            dropped,
            store,
            clock,
            limiter: KeyedLimiter::new(per_minute / 60.0, per_minute),
        },
    )
}

impl FailureRecorder {
    /// Queues a failure; never blocks. A full queue counts it as suppressed.
    pub fn record(&self, failure: AuthFailure) {
        if !self.enabled {
            return;
        }
        if self.tx.try_send(Message::Failure(failure)).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits until everything queued so far is written (for tests and shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl FailureWriter {
    /// Writes entries until every recorder is dropped.
    pub async fn run(mut self) {
        let mut suppressed: u64 = 0;
        while let Some(message) = self.rx.recv().await {
            let failure = match message {
                Message::Flush(done) => {
                    let _ = done.send(());
                    continue;
                }
                Message::Failure(f) => f,
            };
            suppressed += self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
            if self.limiter.check("auth", self.clock.as_ref()).is_err() {
                suppressed += 1;
                continue;
            }
            let store = self.store.clone();
            let now = self.clock.now();
            let pending = std::mem::take(&mut suppressed);
            let written = tokio::task::spawn_blocking(move || {
                transaction::<_, StoreError>(store.as_ref(), |txn| {
                    if pending > 0 {
                        append(
                            txn,
                            AuditDraft::new("anonymous", "auth.failure.suppressed", None)
                                .with(json!({ "count": pending })),
                            now,
                        )
                        .map_err(TxFail::Store)?;
                    }
                    append(
                        txn,
                        AuditDraft::new("anonymous", "auth.failure", Some(&failure.route)).with(
                            json!({
                                "reason": failure.reason,
                                "method": failure.method,
                                "peer": failure.peer,
                            "forwarded_for": failure.forwarded_for,
                            }),
                        ),
                        now,
                    )
                    .map_err(TxFail::Store)?;
                    Ok(())
                })
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::warn!("could not record an authentication failure in the audit trail");
                suppressed += pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    fn failure() -> AuthFailure {
        AuthFailure {
            reason: "invalid",
            route: "/scim/v2/{endpoint}".into(),
            method: "GET".into(),
            peer: Some("192.0.2.10".into()),
            forwarded_for: None,
        }
    }

    #[tokio::test]
    async fn failures_are_audited_up_to_the_budget_then_summarized() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at_epoch_2026());
        let (recorder, writer) = channel(store.clone(), clock.clone(), 3);
        let task = tokio::spawn(writer.run());
        for _ in 0..10 {
            recorder.record(failure());
        }
        recorder.flush().await;
        let actions: Vec<String> = crate::audit::list(store.as_ref(), None, 0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, vec!["auth.failure"; 3]);
        clock.advance(chrono::Duration::minutes(1));
        recorder.record(failure());
        recorder.flush().await;
        let entries = crate::audit::list(store.as_ref(), None, 0, 100).unwrap();
        assert_eq!(entries[3].action, "auth.failure.suppressed");
        assert_eq!(entries[3].details["count"], 7);
        assert_eq!(entries[4].action, "auth.failure");
        assert!(crate::audit::verify_store(store.as_ref()).unwrap().ok);
        drop(recorder);
        task.await.unwrap();
    }
}
