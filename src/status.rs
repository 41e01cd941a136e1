//! The daemon's operational status: what `/readyz`, `/metrics` and
//! `GET /admin/v1/status` report. Workers record outcomes here (reconcile runs,
//! downstream calls, outbox drains); readers take a consistent snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::audit::timestamp;
use crate::clock::SharedClock;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::outbox;
use crate::store::{Store, Table};

/// Pending outbox entries beyond which the daemon reports itself not ready.
const OUTBOX_BACKLOG_LIMIT: u64 = 50_000;

/// The last outcome of the scheduled/on-demand reconcile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileStatus {
    /// A run is in progress.
    pub running: bool,
    /// When the last run ended.
    pub last_run_at: Option<String>,
    /// When the last successful run ended.
    pub last_success_at: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The last failure, if the last run failed.
    pub last_error: Option<String>,
    /// Where the running reconcile is.
    pub progress: Option<Progress>,
}

/// How far a running reconcile has got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// `reading`, `planning`, `applying`.
    pub phase: String,
    /// Steps done in this phase.
    pub done: u64,
    /// Steps in this phase (0 when unknown).
    pub total: u64,
}

/// The last outcome of talking to the Cowork admin API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownstreamStatus {
    /// When a call last succeeded.
    pub last_ok_at: Option<String>,
    /// The last error, cleared by the next success.
    pub last_error: Option<String>,
    /// Failed calls in a row.
    pub consecutive_failures: u32,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Whether it passes.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The `/readyz` body.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// All checks pass.
    pub ready: bool,
    /// Each check by name.
    pub checks: BTreeMap<String, Check>,
}

/// Shared operational status.
pub struct Status {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    failure_threshold: u32,
    reconcile: Mutex<ReconcileStatus>,
    downstream: Mutex<DownstreamStatus>,
}

impl Status {
    /// Status over these parts.
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        clock: SharedClock,
        failure_threshold: u32,
    ) -> Self {
        Self {
            store,
            directory,
            metrics,
            clock,
            failure_threshold: failure_threshold.max(1),
            reconcile: Mutex::new(ReconcileStatus::default()),
            downstream: Mutex::new(DownstreamStatus::default()),
        }
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Marks a reconcile as started; `false` if one is already running.
    pub fn begin_reconcile(&self) -> bool {
        let mut r = self.reconcile.lock();
        if r.running {
            return false;
        }
        r.running = true;
        true
    }

    /// Reports the progress of the running reconcile.
    pub fn reconcile_progress(&self, phase: &str, done: u64, total: u64) {
        self.reconcile.lock().progress = Some(Progress {
            phase: phase.to_string(),
            done,
            total,
        });
    }

    /// Records the end of a reconcile.
    pub fn end_reconcile(&self, outcome: Result<(), String>) {
        let now = timestamp(self.clock.now());
        let mut r = self.reconcile.lock();
        r.running = false;
        r.progress = None;
        r.last_run_at = Some(now.clone());
        match outcome {
            Ok(()) => {
                r.last_success_at = Some(now);
                r.consecutive_failures = 0;
                r.last_error = None;
            }
            Err(e) => {
                r.consecutive_failures = r.consecutive_failures.saturating_add(1);
                r.last_error = Some(e);
            }
        }
    }

    /// The reconcile status.
    pub fn reconcile(&self) -> ReconcileStatus {
        self.reconcile.lock().clone()
    }

    /// Records a downstream call outcome.
    pub fn downstream_outcome(&self, outcome: Result<(), String>) {
        let mut d = self.downstream.lock();
        match outcome {
            Ok(()) => {
                d.last_ok_at = Some(timestamp(self.clock.now()));
                d.last_error = None;
                d.consecutive_failures = 0;
            }
            Err(e) => {
                d.last_error = Some(e);
                d.consecutive_failures = d.consecutive_failures.saturating_add(1);
            }
        }
    }

    /// The downstream status.
    pub fn downstream(&self) -> DownstreamStatus {
        self.downstream.lock().clone()
    }

    /// Runs every readiness check (blocking: reads the store).
    pub fn check(&self) -> Readiness {
        let mut checks = BTreeMap::new();
        let store = match self.store.get(Table::Meta, b"schema_version") {
            Ok(_) => Check {
                ok: true,
                detail: "readable".into(),
            },
            Err(e) => Check {
                ok: false,
                detail: format!("store error: {e}"),
            },
        };
        checks.insert("store".into(), store);
        let backlog = match outbox::backlog(self.store.as_ref()) {
            Ok((n, oldest)) => Check {
                ok: n < OUTBOX_BACKLOG_LIMIT,
                detail: match oldest {
                    Some(at) => format!("{n} pending, oldest queued at {at}"),
                    None => "empty".into(),
                },
            },
            Err(e) => Check {
                ok: false,
                detail: format!("store error: {e}"),
            },
        };
        checks.insert("outbox".into(), backlog);
        let r = self.reconcile();
        checks.insert(
            "last_reconcile".into(),
            Check {
                ok: r.consecutive_failures < self.failure_threshold,
                detail: match (&r.last_success_at, r.consecutive_failures) {
                    (_, n) if n > 0 => format!(
                        "{n} failed run(s) in a row (threshold {}); last error: {}",
                        self.failure_threshold,
                        r.last_error.as_deref().unwrap_or("unknown")
                    ),
                    (Some(at), _) => format!("last success at {at}"),
                    (None, _) => "no run yet".into(),
                },
            },
        );
        let d = self.downstream();
        checks.insert(
            "downstream".into(),
            Check {
                ok: d.consecutive_failures < self.failure_threshold,
                detail: match (&d.last_error, &d.last_ok_at) {
                    (Some(e), _) => format!("{} failure(s) in a row: {e}", d.consecutive_failures),
                    (None, Some(at)) => format!("last call succeeded at {at}"),
                    (None, None) => "no call yet".into(),
                },
            },
        );
        Readiness {
            ready: checks.values().all(|c| c.ok),
            checks,
        }
    }

    /// Updates the gauges that are read from state at scrape time.
    pub fn refresh_gauges(&self) {
        if let Ok((users, groups, memberships)) = self.directory.counts() {
            self.metrics.set(
                "cowork_sync_directory_users",
                "Users in the directory.",
                &[],
                users as f64,
            );
            self.metrics.set(
                "cowork_sync_directory_groups",
                "Groups in the directory.",
                &[],
                groups as f64,
            );
            self.metrics.set(
                "cowork_sync_directory_memberships",
                "Direct group memberships in the directory.",
                &[],
                memberships as f64,
            );
        }
        if let Ok((n, _)) = outbox::backlog(self.store.as_ref()) {
            self.metrics.set(
                "cowork_sync_outbox_pending",
                "Downstream changes waiting to be applied.",
                &[],
                n as f64,
            );
        }
        if let Ok(bytes) = self.store.size_on_disk() {
            self.metrics.set(
                "cowork_sync_store_bytes",
                "Bytes the database uses on disk.",
                &[],
                bytes as f64,
            );
        }
        let r = self.reconcile();
        self.metrics.set(
            "cowork_sync_reconcile_consecutive_failures",
            "Failed reconcile runs in a row.",
            &[],
            f64::from(r.consecutive_failures),
        );
    }
}
