//! Reconciliation: pushing the rules' desired state to Cowork, on two paths that
//! share one pass (design §1, `docs/reconcile.md`).
//!
//! - [`plan`] (pure): desired state + downstream state + ownership → ordered actions,
//!   drift, foreign objects, pending users, the safety valve's verdict.
//! - `pass`: one pass, prepare → plan → apply → settle, for both paths; [`actual`]
//!   reads the downstream, [`executor`] applies actions, `settle` records the run or
//!   acknowledges the outbox.
//! - [`ownership`]: what the daemon owns and believes downstream, and the
//!   [`ownership::Ledger`] that changes it together with the audit trail.
//! - [`Reconciler`]: the facade: [`Reconciler::plan`], [`Reconciler::plan_with`],
//!   [`Reconciler::run`] (the full reconcile), [`Reconciler::drain_outbox`] (the event
//!   path), [`Reconciler::runs`] (history, [`runs`]).
//! - [`outbox_worker`] (woken by a `Notify`) and [`start_scheduler`] (cron).
//! - [`report`]: serializable reports and their text rendering; `metrics`: every
//!   metric the reconciler records.
//!
//! Depends on `rules`, `directory`, `store` (the trait), `cowork` (the trait), `audit`,
//! `outbox`, `status`, `clock`; never on `http`, `cli` or `app`. Store and CPU-heavy
//! work runs off the async threads (`spawn_blocking`).

pub mod access;
pub mod actual;
pub mod error;
pub mod executor;
mod held;
mod metrics;
#[doc(hidden)]
pub mod mirror;
mod offboard;
mod options;
pub mod outbox_worker;
pub mod ownership;
mod pass;
pub mod plan;
pub mod report;
pub mod runs;
pub mod scheduler;
mod settle;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

pub use error::ReconcileError;

use crate::telemetry::work::phase_span;
pub use held::{render_approval, render_held, render_held_named, Approval, ApproveReport};
pub use options::{ReconcileOptions, RunOptions};
pub use outbox_worker::outbox_worker;
pub use plan::{Action, ActionKind, Plan, PlanOptions, Scope};
pub use report::{
    add_user_names, render_plan, render_plan_named, render_run, render_run_named, user_ids,
    with_user_name, ActionError, DrainReport, Phase, PlanReport, Progress, ProgressFn, RunReport,
    UserNames,
};
pub use runs::{RunOutcome, RunRecord, Trigger};
pub use scheduler::start_scheduler;
use tracing::Instrument;

use crate::audit::timestamp;
use crate::clock::SharedClock;
use crate::cowork::{CoworkApi, Mode};
use crate::directory::Directory;
use crate::outbox::{self, OutboxEntry};
use crate::rules::ValidRuleTable;
use crate::status::Status;
use crate::store::Store;

use executor::Executed;
use metrics::ReconcileMetrics;
use pass::{blocking, calls_since, Applier, EventsPrepared};

/// A check of the pooled team budgets, run by every full reconcile before it plans,
/// so the caps it sets feed the same run (design §6.1); the insights layer's
/// `PoolChecker` is the one there is. A failed check reports itself and never fails
/// the reconcile.
pub trait PoolCheck: Send + Sync {
    /// Runs one check.
    fn check(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// The reconciler: plans and applies, on demand, on schedule and from the outbox.
pub struct Reconciler<C> {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    client: C,
    clock: SharedClock,
    status: Arc<Status>,
    options: ReconcileOptions,
    /// Held while applying: full runs and outbox drains never interleave.
    apply: tokio::sync::Mutex<()>,
    /// Counts finished outbox drains, so callers can wait for the worker's next pass.
    drains: tokio::sync::watch::Sender<u64>,
    /// The pool check full runs start with (set once, when insights are configured).
    pool_check: std::sync::OnceLock<Arc<dyn PoolCheck>>,
}

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// A reconciler. The client's [`Mode`] decides what is written.
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        client: C,
        clock: SharedClock,
        status: Arc<Status>,
        options: ReconcileOptions,
    ) -> Self {
        Self {
            store,
            directory,
            client,
            clock,
            status,
            options,
            apply: tokio::sync::Mutex::new(()),
            drains: tokio::sync::watch::channel(0).0,
            pool_check: std::sync::OnceLock::new(),
        }
    }

    /// Full runs check the pools with `check` first (once; later calls are ignored).
    pub fn set_pool_check(&self, check: Arc<dyn PoolCheck>) {
        let _ = self.pool_check.set(check);
    }

    /// A receiver that changes each time an outbox drain finishes (whatever it did).
    pub fn drained(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drains.subscribe()
    }

    /// The downstream client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// Now, by the reconciler's clock.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The options it runs with.
    pub fn options(&self) -> &ReconcileOptions {
        &self.options
    }

    fn mode(&self) -> Mode {
        self.client.mode()
    }

    fn now(&self) -> String {
        timestamp(self.clock.now())
    }

    fn metrics(&self) -> ReconcileMetrics<'_> {
        ReconcileMetrics(self.status.metrics())
    }

    /// What a full reconcile would change now; nothing is applied or recorded.
    pub async fn plan(&self) -> Result<PlanReport, ReconcileError> {
        self.plan_report(None, false, None).await
    }

    /// What a full reconcile would change if `table` were the rule table (for
    /// `PUT /admin/v1/rules?dry_run=true`); nothing is applied or recorded.
    pub async fn plan_with(&self, table: &ValidRuleTable) -> Result<PlanReport, ReconcileError> {
        self.plan_report(Some(table.clone()), false, None).await
    }

    async fn plan_report(
        &self,
        table: Option<ValidRuleTable>,
        force: bool,
        progress: Option<&ProgressFn>,
    ) -> Result<PlanReport, ReconcileError> {
        let before = self.client.call_counts();
        match self.prepare_full(table, progress).await? {
            Some(prepared) => {
                let planned = self.plan_prepared(prepared, force, progress).await?;
                let calls = calls_since(before, self.client.call_counts());
                Ok(self.report_of(&planned, true, calls))
            }
            None => Ok(PlanReport::empty(
                self.now(),
                self.mode(),
                "no rule table has been applied yet; nothing to reconcile",
            )),
        }
    }

    /// Runs one full reconcile: read the whole downstream state, plan against the
    /// whole desired state, apply (unless refused by the valve or a dry run),
    /// acknowledge the outbox entries queued before it started, and record the run.
    ///
    /// Only one runs at a time: a second call gets [`ReconcileError::AlreadyRunning`].
    pub async fn run(&self, options: RunOptions) -> Result<RunReport, ReconcileError> {
        if options.dry_run {
            return self.dry_run(options).await;
        }
        if !self.status.begin_reconcile() {
            return Err(ReconcileError::AlreadyRunning);
        }
        let _apply = self.apply.lock().await;
        let span = crate::telemetry::work::run_span(&options.trigger);
        let result = self.run_locked(&options).instrument(span).await;
        self.end_run(&result);
        result
    }

    /// Tells the status how a run ended.
    fn end_run(&self, result: &Result<RunReport, ReconcileError>) {
        let outcome = match result {
            // Held removals are not a failure: they are listed, counted and degraded
            // in `/readyz`, and wait for an operator.
            Ok(r) => match r.outcome {
                RunOutcome::Ok
                | RunOutcome::Held
                | RunOutcome::Refused
                | RunOutcome::Skipped
                | RunOutcome::DryRun => Ok(()),
                RunOutcome::Failed => Err(format!("{} action(s) failed", r.failed)),
            },
            Err(e) => {
                self.metrics().failed_run();
                Err(e.to_string())
            }
        };
        self.status.end_reconcile(outcome);
    }

    async fn dry_run(&self, options: RunOptions) -> Result<RunReport, ReconcileError> {
        let started = self.clock.now();
        let plan = self
            .plan_report(None, options.force, options.progress.as_ref())
            .await?;
        let ended = self.clock.now();
        Ok(RunReport {
            run: 0,
            trigger: options.trigger,
            requested_by: options.requested_by.clone(),
            started_at: timestamp(started),
            ended_at: timestamp(ended),
            duration_ms: u64::try_from((ended - started).num_milliseconds()).unwrap_or(0),
            dry_run: true,
            forced: options.force,
            outcome: RunOutcome::DryRun,
            calls: plan.calls,
            plan,
            applied: 0,
            already_in_state: 0,
            failed: 0,
            skipped: 0,
            done_by_kind: Default::default(),
            errors: Vec::new(),
            outbox_acked: 0,
            error: None,
        })
    }

    /// Progress goes to the caller and to the status (`GET /admin/v1/status`).
    fn run_progress(&self, caller: Option<ProgressFn>) -> ProgressFn {
        let status = self.status.clone();
        Arc::new(move |p: &Progress| {
            let phase = match p.phase {
                Phase::Reading => "reading",
                Phase::Planning => "planning",
                Phase::Applying => "applying",
                Phase::Done => "done",
            };
            status.reconcile_progress(phase, p.done as u64, p.total as u64);
            if let Some(c) = &caller {
                c(p);
            }
        })
    }

    async fn run_locked(&self, options: &RunOptions) -> Result<RunReport, ReconcileError> {
        let started = self.clock.now();
        let wall = Instant::now();
        let before = self.client.call_counts();
        let store = self.store.clone();
        let run = blocking(move || Ok(runs::next_run(store.as_ref())?)).await?;
        // Pools first: caps it sets or clears feed this run's plan (and the outbox
        // entry it may queue is covered by this run).
        if let Some(check) = self.pool_check.get() {
            check.check().instrument(phase_span("pools")).await;
        }
        let mark = self.outbox_mark().await?;
        tracing::info!(run, trigger = ?options.trigger, force = options.force, "reconcile started");
        let progress = self.run_progress(options.progress.clone());
        let report_of = |outcome, plan, executed: Executed, error| {
            let ended = self.clock.now();
            RunReport {
                run,
                trigger: options.trigger,
                requested_by: options.requested_by.clone(),
                started_at: timestamp(started),
                ended_at: timestamp(ended),
                duration_ms: u64::try_from((ended - started).num_milliseconds()).unwrap_or(0),
                dry_run: false,
                forced: options.force,
                outcome,
                plan,
                applied: executed.applied,
                already_in_state: executed.already_in_state,
                failed: executed.failed,
                skipped: executed.skipped,
                done_by_kind: executed.done_by_kind,
                errors: executed.errors,
                calls: calls_since(before, self.client.call_counts()),
                outbox_acked: 0,
                error,
            }
        };
        let prepared = match self
            .prepare_full(None, Some(&progress))
            .instrument(phase_span("read"))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                self.status.downstream_outcome(Err(e.to_string()));
                // The failed run is part of the history too.
                let failed = report_of(
                    RunOutcome::Failed,
                    PlanReport::empty(self.now(), self.mode(), "the run failed before planning"),
                    Executed::default(),
                    Some(e.to_string()),
                );
                self.record_run(&failed, None).await?;
                self.metrics().calls(failed.calls);
                tracing::warn!(run, error = %e, "reconcile failed");
                return Err(e);
            }
        };
        self.status.downstream_outcome(Ok(()));
        let report = match prepared {
            None => report_of(
                RunOutcome::Skipped,
                PlanReport::empty(
                    self.now(),
                    self.mode(),
                    "no rule table has been applied yet; nothing to reconcile",
                ),
                Executed::default(),
                None,
            ),
            Some(prepared) => {
                let mut planned = self
                    .plan_prepared(prepared, options.force, Some(&progress))
                    .instrument(phase_span("plan"))
                    .await?;
                let read_calls = calls_since(before, self.client.call_counts());
                let who = Applier {
                    actor: "reconciler",
                    cause: match &options.requested_by {
                        Some(by) => format!("reconcile run {run} ({:?}, by {by})", options.trigger),
                        None => format!("reconcile run {run} ({:?})", options.trigger),
                    },
                    forced: options.force,
                    key_prefix: format!("run:{run}"),
                    context: json!({ "run": run }),
                    progress: Some(progress.clone()),
                    stop_on_transient: false,
                };
                let executed = self
                    .apply(&mut planned, who)
                    .instrument(phase_span("apply"))
                    .await?;
                let outcome = match (executed.failed + executed.skipped, planned.plan.holds()) {
                    (0, false) => RunOutcome::Ok,
                    (0, true) => RunOutcome::Held,
                    _ => RunOutcome::Failed,
                };
                let plan = self.report_of(&planned, true, read_calls);
                report_of(outcome, plan, executed, None)
            }
        };
        let report = RunReport {
            forced: report.plan.valve.forced,
            ..report
        };
        let ack_up_to = match report.outcome {
            RunOutcome::Ok | RunOutcome::Held | RunOutcome::Skipped => Some(mark),
            _ => None,
        };
        let acked = self
            .record_run(&report, ack_up_to)
            .instrument(phase_span("record"))
            .await?;
        let report = RunReport {
            outbox_acked: acked,
            ..report
        };
        let ended_unix = self.clock.now().timestamp_millis() as f64 / 1000.0;
        self.metrics()
            .run(&report, wall.elapsed().as_secs_f64(), ended_unix);
        progress(&Progress {
            phase: Phase::Done,
            done: report.applied + report.already_in_state,
            total: report.plan.actions.len(),
            message: format!("run {run} finished: {:?}", report.outcome),
        });
        tracing::info!(
            run,
            outcome = ?report.outcome,
            planned = report.plan.actions.len(),
            applied = report.applied,
            failed = report.failed,
            reads = report.calls.reads,
            writes = report.calls.writes,
            "reconcile finished"
        );
        Ok(report)
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ReconcileError> {
        Ok(runs::list(self.store.as_ref(), limit)?)
    }

    /// How many outbox entries are queued (a counter read, not a scan).
    pub fn outbox_backlog(&self) -> Result<u64, ReconcileError> {
        Ok(outbox::pending_count(self.store.as_ref())?)
    }

    /// The event path: plans and applies the pending outbox entries (one batch),
    /// acknowledging them in the transaction that records the result. An entry that
    /// touches everything (a rule change) runs a full reconcile instead. A transient
    /// failure leaves the entries queued (`blocked` in the report).
    pub async fn drain_outbox(&self) -> Result<DrainReport, ReconcileError> {
        let result = self.drain_outbox_once().await;
        self.drains.send_modify(|n| *n += 1);
        result
    }

    async fn drain_outbox_once(&self) -> Result<DrainReport, ReconcileError> {
        let _apply = self.apply.lock().await;
        let store = self.store.clone();
        let batch = self.options.full_outbox_batch();
        let entries = blocking(move || Ok(outbox::pending(store.as_ref(), batch)?)).await?;
        if entries.is_empty() {
            return Ok(DrainReport::default());
        }
        let span = crate::telemetry::work::drain_span(&entries);
        self.drain_entries(entries).instrument(span).await
    }

    /// Applies what `entries` touched (in the drain's span, which continues the
    /// traces of the writes that queued them).
    async fn drain_entries(
        &self,
        entries: Vec<OutboxEntry>,
    ) -> Result<DrainReport, ReconcileError> {
        let before = self.client.call_counts();
        let mut report = if entries.iter().any(|e| e.touched.everything) {
            self.drain_everything(&entries).await?
        } else {
            self.drain_users(&entries).await?
        };
        report.entries = entries.len();
        report.calls = calls_since(before, self.client.call_counts());
        self.metrics().calls(report.calls);
        self.metrics().drain(report.acked, report.blocked);
        Ok(report)
    }

    async fn drain_everything(
        &self,
        entries: &[OutboxEntry],
    ) -> Result<DrainReport, ReconcileError> {
        let mut report = DrainReport::default();
        if !self.status.begin_reconcile() {
            // A full run is about to start: it covers these entries.
            return Ok(report);
        }
        let options = RunOptions {
            trigger: Trigger::Outbox,
            ..RunOptions::default()
        };
        let result = self.run_locked(&options).await;
        self.end_run(&result);
        let everything: Vec<u64> = entries
            .iter()
            .filter(|e| e.touched.everything)
            .map(|e| e.seq)
            .collect();
        match result {
            Ok(r) => {
                report.full_reconcile = Some(r.outcome);
                report.planned = r.plan.actions.len();
                report.applied = r.applied + r.already_in_state;
                report.failed = r.failed;
                report.errors = r.errors;
                report.acked = r.outbox_acked;
                match r.outcome {
                    // Only failures a retry may fix keep the queue waiting; a
                    // permanent one (a role the org rejects, say) is in the history
                    // and the audit trail, and must not stall every later change.
                    RunOutcome::Failed if report.errors.iter().any(|e| e.transient) => {
                        report.blocked = true;
                        self.record_attempts(entries).await?;
                    }
                    RunOutcome::Failed => {
                        report.acked += self.ack(&everything).await?;
                    }
                    _ => {}
                }
            }
            Err(e) if e.is_transient() => {
                report.blocked = true;
                self.record_attempts(entries).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    async fn drain_users(&self, entries: &[OutboxEntry]) -> Result<DrainReport, ReconcileError> {
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        let first = seqs.first().copied().unwrap_or(0);
        let users = self.touched_users(entries).await?;
        let causes: BTreeSet<&str> = entries.iter().map(|e| e.cause.as_str()).collect();
        let more = match seqs.len() {
            0 | 1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let who = Applier {
            actor: "outbox",
            cause: format!(
                "{} (outbox {first}{more})",
                causes.into_iter().collect::<Vec<_>>().join(", ")
            ),
            forced: false,
            key_prefix: format!("outbox:{first}"),
            context: json!({ "outbox_seq": first, "entries": seqs.len() }),
            progress: None,
            stop_on_transient: true,
        };
        let mut report = self.users_pass(users, who).await?;
        report.acked = if report.blocked {
            self.record_attempts(entries).await?;
            0
        } else {
            // Permanent failures are in the report and the log; the full reconcile
            // plans them again.
            self.ack(&seqs).await?
        };
        tracing::debug!(
            entries = seqs.len(),
            users = report.users,
            planned = report.planned,
            applied = report.applied,
            failed = report.failed,
            held = report.held,
            "outbox drained"
        );
        Ok(report)
    }

    /// An event pass over `users` (the caller holds the apply lock).
    async fn users_pass(
        &self,
        users: BTreeSet<String>,
        who: Applier,
    ) -> Result<DrainReport, ReconcileError> {
        let mut report = DrainReport::default();
        let prepared = match self.prepare_users(users).await? {
            EventsPrepared::NoRules => return Ok(report),
            EventsPrepared::Blocked(e) => {
                self.status.downstream_outcome(Err(e.to_string()));
                report.blocked = true;
                return Ok(report);
            }
            EventsPrepared::Ready(p) => p,
        };
        if let Scope::Users(users) = &prepared.scope {
            report.users = users.len();
        }
        let mut planned = self.plan_prepared(*prepared, who.forced, None).await?;
        report.planned = planned.plan.actions.len();
        report.held = planned.plan.held.len();
        let executed = self.apply(&mut planned, who).await?;
        report.applied = executed.applied + executed.already_in_state;
        report.failed = executed.failed;
        report.errors = executed.errors.clone();
        self.metrics()
            .actions(&executed.done_by_kind, &executed.errors);
        if executed.stopped_transient {
            self.status
                .downstream_outcome(Err("transient failure on the event path".into()));
            report.blocked = true;
        } else {
            self.status.downstream_outcome(Ok(()));
        }
        Ok(report)
    }
}
