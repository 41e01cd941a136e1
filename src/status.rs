//! The daemon's operational status: what `/readyz`, `/metrics` and
//! `GET /admin/v1/status` report. Workers record outcomes here (reconcile runs,
//! downstream calls, outbox drains); readers take a consistent snapshot.
//!
//! Readiness means one thing: SCIM writes can be accepted and stored. Only the
//! store (written by a probe) and the daemon's phase (starting, serving, shutting
//! down) can fail it. Everything downstream of a stored write (the outbox backlog,
//! reconcile runs, the Cowork API, held removals) is reported as `degraded`: an
//! ingress that stopped IdP traffic because Cowork is slow would turn a delay into
//! provisioning errors at the IdP.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::audit::timestamp;
use crate::clock::SharedClock;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::outbox;
use crate::store::{Store, Table};

/// Pending outbox entries beyond which the outbox is reported degraded.
const OUTBOX_BACKLOG_LIMIT: u64 = 50_000;
/// How long a store write probe's result is reused (probes hit the disk).
const STORE_PROBE_TTL_MS: i64 = 5_000;
/// The key the store write probe writes.
const STORE_PROBE_KEY: &[u8] = b"readyz_probe";

/// Where the daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening the store and starting workers: not accepting writes yet.
    Starting = 0,
    /// Accepting SCIM writes.
    Serving = 1,
    /// Draining in-flight requests after a signal.
    ShuttingDown = 2,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Phase::Serving,
            2 => Phase::ShuttingDown,
            _ => Phase::Starting,
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to report.
    Ok,
    /// Something needs an operator, but SCIM writes are accepted and stored.
    Degraded,
    /// SCIM writes cannot be accepted: readiness fails.
    Fail,
}

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

impl DownstreamStatus {
    /// Records one outcome at `now`: a success clears the error and the count.
    fn record(&mut self, outcome: Result<(), String>, now: String) {
        match outcome {
            Ok(()) => {
                self.last_ok_at = Some(now);
                self.last_error = None;
                self.consecutive_failures = 0;
            }
            Err(e) => {
                self.last_error = Some(e);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            }
        }
    }
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `ok`, `degraded` or `fail`.
    pub status: Verdict,
    /// Whether it is `ok`.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn new(status: Verdict, detail: impl Into<String>) -> Self {
        Self {
            status,
            ok: status == Verdict::Ok,
            detail: detail.into(),
        }
    }

    /// `ok` when `healthy`, else `otherwise`.
    fn when(healthy: bool, otherwise: Verdict, detail: impl Into<String>) -> Self {
        Self::new(if healthy { Verdict::Ok } else { otherwise }, detail)
    }
}

/// The `/readyz` body.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// SCIM writes can be accepted and stored (no check failed).
    pub ready: bool,
    /// `ok`, `degraded` (ready, but a check needs an operator) or `unavailable`.
    pub status: &'static str,
    /// Each check by name.
    pub checks: BTreeMap<String, Check>,
}

impl Readiness {
    fn of(checks: BTreeMap<String, Check>) -> Self {
        let worst = checks
            .values()
            .map(|c| c.status)
            .fold(Verdict::Ok, |worst, v| match (worst, v) {
                (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
                (Verdict::Degraded, _) | (_, Verdict::Degraded) => Verdict::Degraded,
                _ => Verdict::Ok,
            });
        Self {
            ready: worst != Verdict::Fail,
            status: match worst {
                Verdict::Ok => "ok",
                Verdict::Degraded => "degraded",
                Verdict::Fail => "unavailable",
            },
            checks,
        }
    }
}

/// Most users whose last downstream failure is remembered.
const MAX_USER_FAILURES: usize = 10_000;

/// The last downstream action that failed for a directory user (until one for them
/// succeeds), for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserFailure {
    /// Action kind (`add_member`, ...).
    pub kind: String,
    /// Its target (`group:<key>`, `user:<id>`).
    pub target: String,
    /// What went wrong (no personal data).
    pub error: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What the lifecycle records in the store hold now: rebuilt from the store on every
/// read, so a restart loses none of it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LifecycleCounts {
    /// Removals the safety valve holds.
    pub held_removals: usize,
    /// Deactivated or deleted users whose organization removal is pending.
    pub offboarding: usize,
    /// Emails several directory users map to (one of them is matched).
    pub identity_collisions: usize,
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
    /// The last pool check (same shape: last success, last error, failures in a row).
    pool_check: Mutex<DownstreamStatus>,
    phase: AtomicU8,
    user_failures: Mutex<BTreeMap<String, UserFailure>>,
    /// The last store write probe: when (ms since the epoch) and what it found.
    store_probe: Mutex<Option<(i64, Result<(), String>)>>,
    /// The OTLP exporters' figures, when telemetry is on.
    telemetry: std::sync::OnceLock<Arc<crate::telemetry::Health>>,
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
            pool_check: Mutex::new(DownstreamStatus::default()),
            phase: AtomicU8::new(Phase::Starting as u8),
            user_failures: Mutex::new(BTreeMap::new()),
            store_probe: Mutex::new(None),
            telemetry: std::sync::OnceLock::new(),
        }
    }

    /// Reports the OTLP exporters' health from now on (once).
    pub fn set_telemetry(&self, health: Arc<crate::telemetry::Health>) {
        let _ = self.telemetry.set(health);
    }

    /// The exporters' figures (`None`: telemetry is not configured).
    pub fn telemetry(&self) -> Option<crate::telemetry::HealthReport> {
        self.telemetry.get().map(|h| h.report())
    }

    /// Moves the daemon to `phase` (serving once listening, shutting down on a signal).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// Where the daemon is in its life.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    /// Records what a pass did per directory user: the failures it met, and the users
    /// an applied action concerned (whose earlier failure is then forgotten).
    pub fn user_outcomes(
        &self,
        failed: impl Iterator<Item = (String, UserFailure)>,
        succeeded: &std::collections::BTreeSet<String>,
    ) {
        let mut map = self.user_failures.lock();
        for scim in succeeded {
            map.remove(scim);
        }
        for (scim, failure) in failed {
            map.insert(scim, failure);
        }
        while map.len() > MAX_USER_FAILURES {
            map.pop_first();
        }
    }

    /// The last downstream failure for this directory user, if no action for them
    /// has succeeded since.
    pub fn user_failure(&self, scim_id: &str) -> Option<UserFailure> {
        self.user_failures.lock().get(scim_id).cloned()
    }

    /// Held removals, pending offboardings and identity collisions, from the store.
    pub fn lifecycle(&self) -> Result<LifecycleCounts, crate::store::StoreError> {
        use crate::reconcile::ownership::store as records;
        let store = self.store.as_ref();
        let emails: std::collections::BTreeSet<String> = records::claims(store)?
            .into_iter()
            .map(|c| c.email)
            .collect();
        Ok(LifecycleCounts {
            held_removals: records::held(store)?.len(),
            offboarding: records::offboarding(store)?.len(),
            identity_collisions: emails.len(),
        })
    }

    /// Whether the store takes a write now: a durable write of a probe key, reused
    /// for a few seconds so a probe every second costs one write in five.
    fn store_writable(&self) -> Result<(), String> {
        let now = self.clock.now().timestamp_millis();
        let mut last = self.store_probe.lock();
        if let Some((at, result)) = last.as_ref() {
            if now.saturating_sub(*at) < STORE_PROBE_TTL_MS && now >= *at {
                return result.clone();
            }
        }
        let stamp = now.to_be_bytes();
        let result =
            crate::store::transaction::<_, crate::store::StoreError>(self.store.as_ref(), |txn| {
                txn.insert(Table::Meta, STORE_PROBE_KEY, &stamp)
                    .map_err(crate::store::TxFail::Store)
            })
            .map_err(|e| format!("the store refused a write: {e}"));
        *last = Some((now, result.clone()));
        result
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
        self.downstream
            .lock()
            .record(outcome, timestamp(self.clock.now()));
    }

    /// The downstream status.
    pub fn downstream(&self) -> DownstreamStatus {
        self.downstream.lock().clone()
    }

    /// Records a pool check's outcome (design §6.1); the error names no person.
    pub fn pool_check_outcome(&self, outcome: Result<(), String>) {
        self.pool_check
            .lock()
            .record(outcome, timestamp(self.clock.now()));
    }

    /// Forgets the pool checks' outcomes: a check found no pool to check, so there is
    /// nothing for readiness to report.
    pub fn pool_check_idle(&self) {
        *self.pool_check.lock() = DownstreamStatus::default();
    }

    /// The last pool check's outcome.
    pub fn pool_check(&self) -> DownstreamStatus {
        self.pool_check.lock().clone()
    }

    /// Runs every readiness check (blocking: reads and probes the store).
    pub fn check(&self) -> Readiness {
        let mut checks = BTreeMap::new();
        let phase = self.phase();
        checks.insert(
            "phase".into(),
            Check::when(
                phase == Phase::Serving,
                Verdict::Fail,
                match phase {
                    Phase::Serving => "accepting SCIM writes",
                    Phase::Starting => "starting: not accepting SCIM writes yet",
                    Phase::ShuttingDown => "shutting down: draining in-flight requests",
                },
            ),
        );
        checks.insert(
            "store".into(),
            match self.store_writable() {
                Ok(()) => Check::new(Verdict::Ok, "writable"),
                Err(e) => Check::new(Verdict::Fail, e),
            },
        );
        checks.insert(
            "outbox".into(),
            match outbox::backlog(self.store.as_ref()) {
                Ok((n, oldest)) => Check::when(
                    n < OUTBOX_BACKLOG_LIMIT,
                    Verdict::Degraded,
                    match oldest {
                        Some(at) => format!("{n} pending, oldest queued at {at}"),
                        None => "empty".into(),
                    },
                ),
                Err(e) => Check::new(Verdict::Degraded, format!("store error: {e}")),
            },
        );
        let r = self.reconcile();
        checks.insert(
            "last_reconcile".into(),
            Check::when(
                r.consecutive_failures < self.failure_threshold,
                Verdict::Degraded,
                match (&r.last_success_at, r.consecutive_failures) {
                    (_, n) if n > 0 => format!(
                        "{n} failed run(s) in a row (threshold {}); last error: {}",
                        self.failure_threshold,
                        r.last_error.as_deref().unwrap_or("unknown")
                    ),
                    (Some(at), _) => format!("last success at {at}"),
                    (None, _) => "no run yet".into(),
                },
            ),
        );
        let d = self.downstream();
        checks.insert(
            "downstream".into(),
            Check::when(
                d.consecutive_failures < self.failure_threshold,
                Verdict::Degraded,
                match (&d.last_error, &d.last_ok_at) {
                    (Some(e), _) => format!("{} failure(s) in a row: {e}", d.consecutive_failures),
                    (None, Some(at)) => format!("last call succeeded at {at}"),
                    (None, None) => "no call yet".into(),
                },
            ),
        );
        checks.insert(
            "held_removals".into(),
            match self.lifecycle() {
                Ok(c) if c.held_removals == 0 => Check::new(Verdict::Ok, "none"),
                Ok(c) => Check::new(
                    Verdict::Degraded,
                    format!(
                        "{} removal(s) held by the safety valve: review with `cowork-sync held`, apply with `cowork-sync approve`",
                        c.held_removals
                    ),
                ),
                Err(e) => Check::new(Verdict::Degraded, format!("store error: {e}")),
            },
        );
        let p = self.pool_check();
        if p.last_ok_at.is_some() || p.last_error.is_some() {
            // Pooled budgets: listed once a check has run (rules with a pool and an
            // Analytics client); failures degrade, as the downstream's do.
            checks.insert(
                "pool_check".into(),
                Check::when(
                    p.consecutive_failures < self.failure_threshold,
                    Verdict::Degraded,
                    match (&p.last_error, &p.last_ok_at) {
                        (Some(e), _) => format!(
                            "{} failure(s) in a row, pool levels and caps stand as last checked: {e}",
                            p.consecutive_failures
                        ),
                        (None, Some(at)) => format!("last check succeeded at {at}"),
                        (None, None) => "no check yet".into(),
                    },
                ),
            );
        }
        if let Some(t) = self.telemetry() {
            checks.insert("telemetry".into(), telemetry_check(&t));
        }
        Readiness::of(checks)
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
        if let Ok(n) = outbox::pending_count(self.store.as_ref()) {
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
        if let Ok(c) = self.lifecycle() {
            self.metrics.set(
                "cowork_sync_held_removals",
                "Removals the safety valve holds until an operator approves them.",
                &[],
                c.held_removals as f64,
            );
            self.metrics.set(
                "cowork_sync_offboarding_pending",
                "Deactivated or deleted users whose organization removal is pending.",
                &[],
                c.offboarding as f64,
            );
            self.metrics.set(
                "cowork_sync_identity_collisions",
                "Emails several directory users map to downstream.",
                &[],
                c.identity_collisions as f64,
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

/// The telemetry check: `degraded` while audit records cannot be exported (they wait
/// behind the cursor; SCIM writes are never affected).
fn telemetry_check(t: &crate::telemetry::HealthReport) -> Check {
    let mut lag = format!(
        "audit export lag {} (exported up to #{} of #{})",
        t.audit_lag, t.audit_cursor, t.audit_head
    );
    if t.audit_skipped > 0 {
        lag.push_str(&format!(", {} pruned before export", t.audit_skipped));
    }
    match &t.last_error {
        Some(e) if t.audit_failures_in_row > 0 => Check::new(
            Verdict::Degraded,
            format!(
                "exporting to {} fails ({} in a row: {e}); {lag}",
                t.endpoint, t.audit_failures_in_row
            ),
        ),
        _ => Check::new(
            Verdict::Ok,
            format!(
                "exporting to {}; {lag}; {} span(s) dropped",
                t.endpoint, t.spans_dropped
            ),
        ),
    }
}
