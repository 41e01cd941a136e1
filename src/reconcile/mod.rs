//! Reconciliation: pushing the rules' desired state to Cowork, on two paths that
//! share one planner (design §1, `docs/reconcile.md`).
//!
//! - [`plan`] (pure): desired state + downstream state + ownership → ordered actions,
//!   drift, foreign objects, pending users, the safety valve's verdict.
//! - [`actual`]: reads the downstream state (paginated, within the client's budget).
//! - [`ownership`]: what the daemon owns and believes downstream (`Table::Downstream`).
//! - [`executor`]: applies actions; each action's record and audit entry commit together.
//! - [`Reconciler`]: the facade: [`Reconciler::plan`], [`Reconciler::plan_with`],
//!   [`Reconciler::run`] (the full reconcile), [`Reconciler::drain_outbox`] (the event
//!   path), [`Reconciler::runs`] (history, [`runs`]).
//! - [`outbox_worker`] (woken by a `Notify`) and [`start_scheduler`] (cron).
//! - [`report`]: serializable reports and their text rendering.
//!
//! Depends on `rules`, `directory`, `store` (the trait), `cowork` (the trait), `audit`,
//! `outbox`, `status`, `clock`; never on `http`, `cli` or `app`. Store and CPU-heavy
//! work runs off the async threads (`spawn_blocking`).

pub mod actual;
pub mod error;
pub mod executor;
#[doc(hidden)]
pub mod mirror;
pub mod outbox_worker;
pub mod ownership;
pub mod plan;
pub mod report;
pub mod runs;
pub mod scheduler;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

pub use error::ReconcileError;
pub use outbox_worker::outbox_worker;
pub use plan::{Action, ActionKind, Plan, PlanOptions, Scope};
pub use report::{
    render_plan, render_run, ActionError, DrainReport, Phase, PlanReport, Progress, ProgressFn,
    RunReport,
};
pub use runs::{RunOutcome, RunRecord, Trigger};
pub use scheduler::start_scheduler;

use crate::audit::{self, timestamp, AuditDraft};
use crate::clock::SharedClock;
use crate::config::{CoworkConfig, ReconcileConfig};
use crate::cowork::{CallCounts, CoworkApi, Mode};
use crate::directory::Directory;
use crate::outbox::{self, OutboxEntry};
use crate::rules::{resolve, DesiredState, Snapshot, ValidRuleTable};
use crate::ruleset;
use crate::status::Status;
use crate::store::codec::seq_from_key;
use crate::store::{transaction, Store, StoreError, Table};

use actual::ReadPlan;
use executor::{Executed, Executor};
use ownership::Change;

/// Most ownership changes written in one transaction when beliefs are refreshed.
const SYNC_CHUNK: usize = 5_000;
/// Most errors kept in a run record.
const RECORD_ERRORS: usize = 20;

/// How the reconciler behaves.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// The safety valve: the largest share of managed memberships one plan may
    /// remove without force (`reconcile.max_removal_ratio`).
    pub max_removal_ratio: f64,
    /// In real mode, write group spend limits as per-user overrides
    /// (`cowork.materialize_group_spend`).
    pub materialize_group_spend: bool,
    /// Log (and report) progress every this many actions.
    pub progress_every: usize,
    /// Most outbox entries planned together.
    pub outbox_batch: usize,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            max_removal_ratio: 0.2,
            materialize_group_spend: false,
            progress_every: 100,
            outbox_batch: 500,
        }
    }
}

impl ReconcileOptions {
    /// From the validated configuration.
    pub fn from_config(reconcile: &ReconcileConfig, cowork: &CoworkConfig) -> Self {
        Self {
            max_removal_ratio: reconcile.max_removal_ratio,
            materialize_group_spend: cowork.materialize_group_spend,
            ..Self::default()
        }
    }
}

/// How to run one full reconcile.
#[derive(Clone)]
pub struct RunOptions {
    /// Plan and report, apply nothing (not recorded in the history).
    pub dry_run: bool,
    /// Apply even what the safety valve refuses.
    pub force: bool,
    /// What started it.
    pub trigger: Trigger,
    /// Who asked (the admin token's subject), for the history and the audit trail.
    pub requested_by: Option<String>,
    /// Progress events (the CLI's progress display).
    pub progress: Option<ProgressFn>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            force: false,
            trigger: Trigger::Manual,
            requested_by: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("dry_run", &self.dry_run)
            .field("force", &self.force)
            .field("trigger", &self.trigger)
            .field("requested_by", &self.requested_by)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The desired side of a plan.
struct Desired {
    state: DesiredState,
    /// Directory users by lowercased email.
    directory: HashMap<String, String>,
    rule_version: Option<u64>,
}

/// A plan with what it was made from.
struct Planned {
    plan: Plan,
    desired: Desired,
    /// The ownership records planned against (the apply lock keeps them current).
    ownership: ownership::Ownership,
    calls: CallCounts,
}

fn directory_index(snapshot: &Snapshot) -> HashMap<String, String> {
    snapshot
        .users
        .iter()
        .filter_map(|u| Some((u.email.as_ref()?.to_lowercase(), u.id.clone())))
        .collect()
}

fn needs_groups(table: &ValidRuleTable) -> bool {
    table
        .filter_attributes()
        .iter()
        .any(|a| a == "groups" || a.starts_with("groups."))
}

fn calls_since(before: CallCounts, after: CallCounts) -> CallCounts {
    CallCounts {
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        retries: after.retries.saturating_sub(before.retries),
        rate_limited: after.rate_limited.saturating_sub(before.rate_limited),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReconcileError> + Send + 'static,
) -> Result<T, ReconcileError> {
    tokio::task::spawn_blocking(f).await?
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
        }
    }

    /// A receiver that changes each time an outbox drain finishes (whatever it did).
    pub fn drained(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drains.subscribe()
    }

    /// The downstream client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &ReconcileOptions {
        &self.options
    }

    fn mode(&self) -> Mode {
        self.client.mode()
    }

    fn now(&self) -> String {
        timestamp(self.clock.now())
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
        let mode = self.mode();
        match self.plan_full(table, force, progress).await? {
            Some(p) => Ok(self.report_of(&p, true)),
            None => Ok(PlanReport::empty(
                self.now(),
                mode,
                "no rule table has been applied yet; nothing to reconcile",
            )),
        }
    }

    fn report_of(&self, p: &Planned, full: bool) -> PlanReport {
        PlanReport::new(
            &p.plan,
            self.now(),
            self.mode(),
            full,
            p.desired.rule_version,
            p.desired.state.warnings.clone(),
            p.calls,
        )
    }

    /// Resolves the rules against the whole directory (`None`: no rule table).
    async fn desired_full(
        &self,
        table: Option<ValidRuleTable>,
    ) -> Result<Option<Desired>, ReconcileError> {
        let store = self.store.clone();
        let directory = self.directory.clone();
        blocking(move || {
            let (table, version) = match table {
                Some(t) => (t, None),
                None => match ruleset::current(store.as_ref())? {
                    Some(v) => (v.table, Some(v.version)),
                    None => return Ok(None),
                },
            };
            let project = |u: &serde_json::Value| table.project_user(u);
            let snapshot = directory.snapshot(&project, needs_groups(&table))?;
            let state = resolve(&table, &snapshot);
            Ok(Some(Desired {
                directory: directory_index(&snapshot),
                state,
                rule_version: version,
            }))
        })
        .await
    }

    async fn plan_full(
        &self,
        table: Option<ValidRuleTable>,
        force: bool,
        progress: Option<&ProgressFn>,
    ) -> Result<Option<Planned>, ReconcileError> {
        let before = self.client.call_counts();
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Reading,
                done: 0,
                total: 0,
                message: "reading the directory and the rules".into(),
            });
        }
        let Some(desired) = self.desired_full(table).await? else {
            return Ok(None);
        };
        let store = self.store.clone();
        let ownership = blocking(move || Ok(ownership::load_all(store.as_ref())?)).await?;
        let what = ReadPlan {
            desired_keys: desired.state.groups.keys().cloned().collect(),
            user_spend: (self.mode() == Mode::Real && self.options.materialize_group_spend)
                || !ownership.spend.is_empty(),
        };
        let actual = actual::read_full(&self.client, &ownership, &what, progress).await?;
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Planning,
                done: 0,
                total: 0,
                message: "planning".into(),
            });
        }
        let options = PlanOptions {
            mode: self.mode(),
            scope: Scope::Full,
            max_removal_ratio: self.options.max_removal_ratio,
            force,
            materialize_group_spend: self.options.materialize_group_spend,
        };
        let (plan, desired, ownership) = blocking(move || {
            let plan = plan::plan(plan::PlanInput {
                desired: &desired.state,
                directory: &desired.directory,
                actual: &actual,
                ownership: &ownership,
                options: &options,
            });
            Ok((plan, desired, ownership))
        })
        .await?;
        Ok(Some(Planned {
            plan,
            desired,
            ownership,
            calls: calls_since(before, self.client.call_counts()),
        }))
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
        let result = self.run_locked(&options).await;
        match &result {
            Ok(r) => {
                let outcome = match r.outcome {
                    RunOutcome::Ok | RunOutcome::Skipped | RunOutcome::DryRun => Ok(()),
                    RunOutcome::Refused => Err(format!(
                        "refused by the safety valve: {}",
                        r.plan.valve.reason.as_deref().unwrap_or("")
                    )),
                    RunOutcome::Failed => Err(format!("{} action(s) failed", r.failed)),
                };
                self.status.end_reconcile(outcome);
            }
            Err(e) => {
                self.status.end_reconcile(Err(e.to_string()));
                self.metrics_failed_run();
            }
        }
        result
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

    /// The highest outbox sequence number queued now (0 when empty).
    async fn outbox_mark(&self) -> Result<u64, ReconcileError> {
        let store = self.store.clone();
        blocking(move || match store.last(Table::Outbox, b"")? {
            Some((k, _)) => Ok(seq_from_key(&k, Table::Outbox)?),
            None => Ok(0),
        })
        .await
    }

    async fn run_locked(&self, options: &RunOptions) -> Result<RunReport, ReconcileError> {
        let started = self.clock.now();
        let wall = Instant::now();
        let before = self.client.call_counts();
        let store = self.store.clone();
        let run = blocking(move || Ok(runs::next_run(store.as_ref())?)).await?;
        let mark = self.outbox_mark().await?;
        tracing::info!(run, trigger = ?options.trigger, force = options.force, "reconcile started");

        // Progress goes to the caller and to the status (`GET /admin/v1/status`).
        let status = self.status.clone();
        let caller = options.progress.clone();
        let progress: ProgressFn = Arc::new(move |p: &Progress| {
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
        });
        let planned = match self.plan_full(None, options.force, Some(&progress)).await {
            Ok(p) => p,
            Err(e) => {
                self.status.downstream_outcome(Err(e.to_string()));
                // The failed run is part of the history too.
                let ended = self.clock.now();
                let failed = RunReport {
                    run,
                    trigger: options.trigger,
                    requested_by: options.requested_by.clone(),
                    started_at: timestamp(started),
                    ended_at: timestamp(ended),
                    duration_ms: u64::try_from((ended - started).num_milliseconds()).unwrap_or(0),
                    dry_run: false,
                    forced: options.force,
                    outcome: RunOutcome::Failed,
                    plan: PlanReport::empty(
                        self.now(),
                        self.mode(),
                        "the run failed before planning",
                    ),
                    applied: 0,
                    already_in_state: 0,
                    failed: 0,
                    skipped: 0,
                    done_by_kind: Default::default(),
                    errors: Vec::new(),
                    calls: calls_since(before, self.client.call_counts()),
                    outbox_acked: 0,
                    error: Some(e.to_string()),
                };
                self.record_run(&failed, None).await?;
                self.metrics_calls(failed.calls);
                tracing::warn!(run, error = %e, "reconcile failed");
                return Err(e);
            }
        };
        self.status.downstream_outcome(Ok(()));
        let (report_plan, executed, outcome) = match planned {
            None => (
                PlanReport::empty(
                    self.now(),
                    self.mode(),
                    "no rule table has been applied yet; nothing to reconcile",
                ),
                Executed::default(),
                RunOutcome::Skipped,
            ),
            Some(p) if p.plan.refused() => (
                self.report_of(&p, true),
                Executed::default(),
                RunOutcome::Refused,
            ),
            Some(mut p) => {
                let mut ownership = std::mem::take(&mut p.ownership);
                self.write_sync(&p.plan.sync, "reconciler", json!({ "run": run }))
                    .await?;
                ownership.apply(&p.plan.sync);
                let executor = Executor {
                    client: &self.client,
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    actor: "reconciler",
                    key_prefix: format!("run:{run}"),
                    context: json!({ "run": run }),
                    progress: Some(progress.clone()),
                    progress_every: self.options.progress_every,
                    stop_on_transient: false,
                };
                let executed = executor.run(&p.plan.actions, &mut ownership).await?;
                let outcome = if executed.failed == 0 && executed.skipped == 0 {
                    RunOutcome::Ok
                } else {
                    RunOutcome::Failed
                };
                (self.report_of(&p, true), executed, outcome)
            }
        };
        let ended = self.clock.now();
        let calls = calls_since(before, self.client.call_counts());
        let report = RunReport {
            run,
            trigger: options.trigger,
            requested_by: options.requested_by.clone(),
            started_at: timestamp(started),
            ended_at: timestamp(ended),
            duration_ms: u64::try_from((ended - started).num_milliseconds()).unwrap_or(0),
            dry_run: false,
            forced: report_plan.valve.forced,
            outcome,
            plan: report_plan,
            applied: executed.applied,
            already_in_state: executed.already_in_state,
            failed: executed.failed,
            skipped: executed.skipped,
            done_by_kind: executed.done_by_kind.clone(),
            errors: executed.errors.clone(),
            calls,
            outbox_acked: 0,
            error: None,
        };
        let ack_up_to = match outcome {
            RunOutcome::Ok | RunOutcome::Skipped => Some(mark),
            _ => None,
        };
        let acked = self.record_run(&report, ack_up_to).await?;
        let report = RunReport {
            outbox_acked: acked,
            ..report
        };
        self.metrics_run(&report, wall.elapsed().as_secs_f64());
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

    /// Writes ownership beliefs refreshed from a read, in chunks, each with an audit
    /// entry.
    async fn write_sync(
        &self,
        changes: &[Change],
        actor: &'static str,
        context: serde_json::Value,
    ) -> Result<(), ReconcileError> {
        for chunk in changes.chunks(SYNC_CHUNK) {
            let draft = AuditDraft::new(actor, "reconcile.ownership", None).with(json!({
                "context": context,
                "changes": chunk.len(),
            }));
            executor::record(
                self.store.clone(),
                self.clock.clone(),
                draft,
                chunk.to_vec(),
            )
            .await?;
        }
        Ok(())
    }

    /// Records the run, its audit entries and the outbox acknowledgement in one
    /// transaction; returns how many entries were acknowledged.
    async fn record_run(
        &self,
        report: &RunReport,
        ack_up_to: Option<u64>,
    ) -> Result<usize, ReconcileError> {
        let record = RunRecord {
            run: report.run,
            trigger: report.trigger,
            requested_by: report.requested_by.clone(),
            started_at: report.started_at.clone(),
            ended_at: report.ended_at.clone(),
            duration_ms: report.duration_ms,
            outcome: report.outcome,
            forced: report.forced,
            rule_version: report.plan.rule_version,
            planned: report
                .plan
                .counts
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            applied: report.applied,
            already_in_state: report.already_in_state,
            failed: report.failed,
            skipped: report.skipped,
            drift_found: report.plan.differences(),
            drift_reported: report.plan.drift.len(),
            calls: report.calls.into(),
            errors: report
                .error
                .iter()
                .cloned()
                .chain(
                    report
                        .errors
                        .iter()
                        .map(|e| format!("{} {}: {}", e.kind, e.target, e.error)),
                )
                .take(RECORD_ERRORS)
                .collect(),
            outbox_acked: 0,
        };
        let store = self.store.clone();
        let clock = self.clock.clone();
        let plan = report.plan.clone();
        blocking(move || {
            let now = clock.now();
            let seqs: Vec<u64> = match ack_up_to {
                Some(mark) if mark > 0 => outbox::pending(store.as_ref(), usize::MAX)?
                    .into_iter()
                    .map(|e| e.seq)
                    .filter(|s| *s <= mark)
                    .collect(),
                _ => Vec::new(),
            };
            let record = RunRecord {
                outbox_acked: seqs.len(),
                ..record
            };
            let target = format!("run:{}", record.run);
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                runs::put(txn, &record)?;
                audit::append(
                    txn,
                    AuditDraft::new("reconciler", "reconcile.run", Some(&target)).with(json!({
                        "trigger": record.trigger,
                        "requested_by": record.requested_by,
                        "outcome": record.outcome,
                        "forced": record.forced,
                        "rule_version": record.rule_version,
                        "planned": record.planned,
                        "applied": record.applied,
                        "already_in_state": record.already_in_state,
                        "failed": record.failed,
                        "skipped": record.skipped,
                        "calls": record.calls,
                        "outbox_acked": record.outbox_acked,
                        "errors": record.errors.len(),
                    })),
                    now,
                )?;
                if plan.refusal.is_some() {
                    audit::append(
                        txn,
                        AuditDraft::new("reconciler", "reconcile.refused", Some(&target)).with(
                            json!({
                                "reason": plan.refusal,
                                "removals": plan.valve.removals,
                                "managed_memberships": plan.valve.managed_memberships,
                                "max_removal_ratio": plan.valve.max_removal_ratio,
                                "non_empty_deletions": plan.valve.non_empty_deletions,
                            }),
                        ),
                        now,
                    )?;
                }
                if plan.differences() > 0 {
                    let drift: Vec<serde_json::Value> = plan
                        .drift
                        .iter()
                        .take(100)
                        .map(|d| json!({ "kind": d.kind, "target": d.target }))
                        .collect();
                    audit::append(
                        txn,
                        AuditDraft::new("reconciler", "reconcile.drift", Some(&target)).with(
                            json!({
                                "differences": plan.differences(),
                                "actions": plan.counts,
                                "reported": plan.drift.len(),
                                "reported_sample": drift,
                            }),
                        ),
                        now,
                    )?;
                }
                for seq in &seqs {
                    outbox::ack(txn, *seq)?;
                }
                Ok(())
            })?;
            store.sync()?;
            Ok(seqs.len())
        })
        .await
    }

    fn metrics_run(&self, report: &RunReport, seconds: f64) {
        let m = self.status.metrics();
        let outcome = match report.outcome {
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Refused => "refused",
            RunOutcome::Skipped => "skipped",
            RunOutcome::DryRun => "dry_run",
        };
        m.inc(
            "cowork_sync_reconcile_runs_total",
            "Full reconcile runs by outcome.",
            &[("outcome", outcome)],
            1.0,
        );
        m.set(
            "cowork_sync_reconcile_duration_seconds",
            "Duration of the last full reconcile.",
            &[],
            seconds,
        );
        if report.outcome == RunOutcome::Ok {
            let at = self.clock.now().timestamp_millis() as f64 / 1000.0;
            m.set(
                "cowork_sync_reconcile_last_success_timestamp_seconds",
                "When the last successful full reconcile ended (Unix time).",
                &[],
                at,
            );
        }
        m.set(
            "cowork_sync_reconcile_drift_found",
            "Differences the last full reconcile found downstream (actions plus reported drift).",
            &[],
            report.plan.differences() as f64,
        );
        m.inc(
            "cowork_sync_reconcile_drift_total",
            "Differences found downstream by full reconciles.",
            &[],
            report.plan.differences() as f64,
        );
        m.set(
            "cowork_sync_reconcile_calls",
            "Downstream calls made by the last full reconcile.",
            &[("kind", "read")],
            report.calls.reads as f64,
        );
        m.set(
            "cowork_sync_reconcile_calls",
            "Downstream calls made by the last full reconcile.",
            &[("kind", "write")],
            report.calls.writes as f64,
        );
        self.metrics_calls(report.calls);
        self.metrics_actions(&report.done_by_kind, &report.errors);
    }

    fn metrics_failed_run(&self) {
        self.status.metrics().inc(
            "cowork_sync_reconcile_runs_total",
            "Full reconcile runs by outcome.",
            &[("outcome", "failed")],
            1.0,
        );
    }

    fn metrics_calls(&self, calls: CallCounts) {
        let m = self.status.metrics();
        for (kind, n) in [
            ("read", calls.reads),
            ("write", calls.writes),
            ("retry", calls.retries),
            ("rate_limited", calls.rate_limited),
        ] {
            m.inc(
                "cowork_sync_downstream_calls_total",
                "Calls made to the Cowork admin API.",
                &[("kind", kind)],
                n as f64,
            );
        }
    }

    fn metrics_actions(
        &self,
        done: &std::collections::BTreeMap<ActionKind, usize>,
        errors: &[ActionError],
    ) {
        let m = self.status.metrics();
        for (kind, n) in done {
            m.inc(
                "cowork_sync_reconcile_actions_total",
                "Downstream actions by kind and result.",
                &[("kind", kind.as_str()), ("result", "done")],
                *n as f64,
            );
        }
        for e in errors {
            m.inc(
                "cowork_sync_reconcile_actions_total",
                "Downstream actions by kind and result.",
                &[("kind", e.kind.as_str()), ("result", "failed")],
                1.0,
            );
        }
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, ReconcileError> {
        Ok(runs::list(self.store.as_ref(), limit)?)
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
        let batch = self.options.outbox_batch.max(1);
        let entries = blocking(move || Ok(outbox::pending(store.as_ref(), batch)?)).await?;
        if entries.is_empty() {
            return Ok(DrainReport::default());
        }
        let before = self.client.call_counts();
        let mut report = if entries.iter().any(|e| e.touched.everything) {
            self.drain_everything(&entries).await?
        } else {
            self.drain_users(&entries).await?
        };
        report.entries = entries.len();
        report.calls = calls_since(before, self.client.call_counts());
        self.metrics_calls(report.calls);
        let m = self.status.metrics();
        m.inc(
            "cowork_sync_outbox_acked_total",
            "Outbox entries applied downstream and acknowledged.",
            &[],
            report.acked as f64,
        );
        if report.blocked {
            m.inc(
                "cowork_sync_outbox_blocked_total",
                "Outbox drains stopped by a transient downstream failure.",
                &[],
                1.0,
            );
        }
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
        let outcome = match &result {
            Ok(r) => match r.outcome {
                RunOutcome::Ok | RunOutcome::Skipped | RunOutcome::DryRun => Ok(()),
                RunOutcome::Refused => Err("refused by the safety valve".to_string()),
                RunOutcome::Failed => Err(format!("{} action(s) failed", r.failed)),
            },
            Err(e) => Err(e.to_string()),
        };
        self.status.end_reconcile(outcome);
        match result {
            Ok(r) => {
                report.full_reconcile = Some(r.outcome);
                report.planned = r.plan.actions.len();
                report.applied = r.applied + r.already_in_state;
                report.failed = r.failed;
                report.errors = r.errors;
                report.acked = r.outbox_acked;
                match r.outcome {
                    // Refused: the rule change was planned and refused (the history
                    // and the audit trail say so); acknowledge the entries that asked
                    // for everything, so the valve does not loop. The other entries
                    // stay for the event path, which applies what is not a removal.
                    RunOutcome::Refused => {
                        let everything: Vec<u64> = entries
                            .iter()
                            .filter(|e| e.touched.everything)
                            .map(|e| e.seq)
                            .collect();
                        report.acked = self.ack(&everything).await?;
                    }
                    // Only failures a retry may fix keep the queue waiting; a
                    // permanent one (a role the org rejects, say) is in the history
                    // and the audit trail, and must not stall every later change.
                    RunOutcome::Failed if report.errors.iter().any(|e| e.transient) => {
                        report.blocked = true;
                        self.record_attempts(entries).await?;
                    }
                    RunOutcome::Failed => {
                        let everything: Vec<u64> = entries
                            .iter()
                            .filter(|e| e.touched.everything)
                            .map(|e| e.seq)
                            .collect();
                        report.acked += self.ack(&everything).await?;
                    }
                    _ => {}
                }
            }
            Err(e) => {
                self.metrics_failed_run();
                if e.is_transient() {
                    report.blocked = true;
                    self.record_attempts(entries).await?;
                } else {
                    return Err(e);
                }
            }
        }
        Ok(report)
    }

    async fn ack(&self, seqs: &[u64]) -> Result<usize, ReconcileError> {
        let store = self.store.clone();
        let seqs = seqs.to_vec();
        blocking(move || {
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                for s in &seqs {
                    outbox::ack(txn, *s)?;
                }
                Ok(())
            })?;
            store.sync()?;
            Ok(seqs.len())
        })
        .await
    }

    async fn record_attempts(&self, entries: &[OutboxEntry]) -> Result<(), ReconcileError> {
        let store = self.store.clone();
        let entries = entries.to_vec();
        blocking(move || {
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                for e in &entries {
                    outbox::record_attempt(txn, e)?;
                }
                Ok(())
            })?;
            Ok(store.sync()?)
        })
        .await
    }

    async fn drain_users(&self, entries: &[OutboxEntry]) -> Result<DrainReport, ReconcileError> {
        let mut report = DrainReport::default();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        let first = seqs.first().copied().unwrap_or(0);
        // Which users, what the rules say about them, and what we believe.
        let store = self.store.clone();
        let directory = self.directory.clone();
        let touched = entries.to_vec();
        let prepared = blocking(move || {
            let mut users: BTreeSet<String> = BTreeSet::new();
            for e in &touched {
                users.extend(e.touched.users.iter().cloned());
                for g in &e.touched.groups {
                    users.extend(directory.transitive_users(g)?);
                }
            }
            let Some(version) = ruleset::current(store.as_ref())? else {
                return Ok(None);
            };
            let table = version.table;
            let project = |u: &serde_json::Value| table.project_user(u);
            let snapshot = directory.snapshot_for(&users, &project, needs_groups(&table))?;
            let state = resolve(&table, &snapshot);
            let ownership = ownership::load_for(store.as_ref(), &users)?;
            Ok(Some((users, state, directory_index(&snapshot), ownership)))
        })
        .await?;
        let Some((users, desired, directory, mut ownership)) = prepared else {
            report.acked = self.ack(&seqs).await?;
            return Ok(report);
        };
        report.users = users.len();
        let mut actual = actual::believed(&ownership);
        // Governed users the daemon has not matched to a member yet: read the people
        // lists once (a new hire may already be in Cowork, or an invite accepted).
        let unlinked = desired.managed_users.keys().any(|s| {
            users.contains(s) && ownership.links.get(s).is_none_or(|l| l.user_id.is_none())
        });
        if unlinked {
            let read = async {
                let u = self.client.list_users().await?;
                let i = self.client.list_invites().await?;
                Ok::<_, crate::cowork::CoworkError>((u, i))
            }
            .await;
            match read {
                Ok((u, i)) => {
                    let (u, i) = actual::people(u, i);
                    actual.users.extend(u);
                    actual.invites.extend(i);
                }
                Err(e) if e.is_retryable() => {
                    self.status.downstream_outcome(Err(e.to_string()));
                    report.blocked = true;
                    self.record_attempts(entries).await?;
                    return Ok(report);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let options = PlanOptions {
            mode: self.mode(),
            scope: Scope::Users(users),
            max_removal_ratio: self.options.max_removal_ratio,
            force: false,
            materialize_group_spend: self.options.materialize_group_spend,
        };
        let mut plan = {
            let ownership = ownership.clone();
            blocking(move || {
                Ok(plan::plan(plan::PlanInput {
                    desired: &desired,
                    directory: &directory,
                    actual: &actual,
                    ownership: &ownership,
                    options: &options,
                }))
            })
            .await?
        };
        if plan.refused() {
            // The event path never removes in bulk: removals are held back for the
            // full reconcile (which applies them within the valve, or when forced);
            // the rest applies now.
            let before = plan.actions.len();
            plan.actions.retain(|a| a.kind != ActionKind::RemoveMember);
            report.deferred_removals = before - plan.actions.len();
            let draft = AuditDraft::new("outbox", "reconcile.refused", None).with(json!({
                "scope": "events",
                "outbox_seq": first,
                "reason": plan.valve.reason,
                "deferred_removals": report.deferred_removals,
            }));
            executor::record(self.store.clone(), self.clock.clone(), draft, Vec::new()).await?;
            tracing::warn!(
                deferred = report.deferred_removals,
                "outbox: removals held back by the safety valve; the full reconcile decides"
            );
        }
        report.planned = plan.actions.len();
        self.write_sync(&plan.sync, "outbox", json!({ "outbox_seq": first }))
            .await?;
        ownership.apply(&plan.sync);
        let executor = Executor {
            client: &self.client,
            store: self.store.clone(),
            clock: self.clock.clone(),
            actor: "outbox",
            key_prefix: format!("outbox:{first}"),
            context: json!({ "outbox_seq": first, "entries": seqs.len() }),
            progress: None,
            progress_every: self.options.progress_every,
            stop_on_transient: true,
        };
        let executed = executor.run(&plan.actions, &mut ownership).await?;
        report.applied = executed.applied + executed.already_in_state;
        report.failed = executed.failed;
        report.errors = executed.errors.clone();
        self.metrics_actions(&executed.done_by_kind, &executed.errors);
        if executed.stopped_transient {
            self.status
                .downstream_outcome(Err("transient failure on the event path".into()));
            report.blocked = true;
            self.record_attempts(entries).await?;
        } else {
            self.status.downstream_outcome(Ok(()));
            // Permanent failures are in the report and the log; the full reconcile
            // plans them again.
            report.acked = self.ack(&seqs).await?;
        }
        tracing::debug!(
            entries = seqs.len(),
            users = report.users,
            planned = report.planned,
            applied = report.applied,
            failed = report.failed,
            "outbox drained"
        );
        Ok(report)
    }
}
