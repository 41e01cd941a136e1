//! Every metric the reconciler records, named in one place: full runs, downstream
//! calls, actions, and the outbox.

use std::collections::BTreeMap;

use super::plan::ActionKind;
use super::report::{ActionError, RunReport};
use super::runs::RunOutcome;
use crate::cowork::CallCounts;
use crate::metrics::Metrics;

const RUNS: (&str, &str) = (
    "cowork_sync_reconcile_runs_total",
    "Full reconcile runs by outcome.",
);
const DURATION: (&str, &str) = (
    "cowork_sync_reconcile_duration_seconds",
    "Duration of the last full reconcile.",
);
const LAST_SUCCESS: (&str, &str) = (
    "cowork_sync_reconcile_last_success_timestamp_seconds",
    "When the last successful full reconcile ended (Unix time).",
);
const DRIFT_FOUND: (&str, &str) = (
    "cowork_sync_reconcile_drift_found",
    "Differences the last full reconcile found downstream (actions plus reported drift).",
);
const DRIFT_TOTAL: (&str, &str) = (
    "cowork_sync_reconcile_drift_total",
    "Differences found downstream by full reconciles.",
);
const RUN_CALLS: (&str, &str) = (
    "cowork_sync_reconcile_calls",
    "Downstream calls made by the last full reconcile.",
);
const CALLS: (&str, &str) = (
    "cowork_sync_downstream_calls_total",
    "Calls made to the Cowork admin API.",
);
const ACTIONS: (&str, &str) = (
    "cowork_sync_reconcile_actions_total",
    "Downstream actions by kind and result.",
);
const OUTBOX_ACKED: (&str, &str) = (
    "cowork_sync_outbox_acked_total",
    "Outbox entries applied downstream and acknowledged.",
);
const OUTBOX_BLOCKED: (&str, &str) = (
    "cowork_sync_outbox_blocked_total",
    "Outbox drains stopped by a transient downstream failure.",
);

/// The reconciler's view of the metrics registry.
pub(super) struct ReconcileMetrics<'a>(pub(super) &'a Metrics);

impl ReconcileMetrics<'_> {
    /// A full run that ended with a report.
    pub(super) fn run(&self, report: &RunReport, seconds: f64, ended_unix: f64) {
        let m = self.0;
        m.inc(RUNS.0, RUNS.1, &[("outcome", report.outcome.as_str())], 1.0);
        m.set(DURATION.0, DURATION.1, &[], seconds);
        if report.outcome == RunOutcome::Ok {
            m.set(LAST_SUCCESS.0, LAST_SUCCESS.1, &[], ended_unix);
        }
        let differences = report.plan.differences() as f64;
        m.set(DRIFT_FOUND.0, DRIFT_FOUND.1, &[], differences);
        m.inc(DRIFT_TOTAL.0, DRIFT_TOTAL.1, &[], differences);
        m.set(
            RUN_CALLS.0,
            RUN_CALLS.1,
            &[("kind", "read")],
            report.calls.reads as f64,
        );
        m.set(
            RUN_CALLS.0,
            RUN_CALLS.1,
            &[("kind", "write")],
            report.calls.writes as f64,
        );
        self.calls(report.calls);
        self.actions(&report.done_by_kind, &report.errors);
    }

    /// A full run that failed before it had a report.
    pub(super) fn failed_run(&self) {
        self.0.inc(
            RUNS.0,
            RUNS.1,
            &[("outcome", RunOutcome::Failed.as_str())],
            1.0,
        );
    }

    /// Downstream calls made.
    pub(super) fn calls(&self, calls: CallCounts) {
        for (kind, n) in [
            ("read", calls.reads),
            ("write", calls.writes),
            ("retry", calls.retries),
            ("rate_limited", calls.rate_limited),
        ] {
            self.0.inc(CALLS.0, CALLS.1, &[("kind", kind)], n as f64);
        }
    }

    /// Actions done and failed.
    pub(super) fn actions(&self, done: &BTreeMap<ActionKind, usize>, errors: &[ActionError]) {
        for (kind, n) in done {
            self.0.inc(
                ACTIONS.0,
                ACTIONS.1,
                &[("kind", kind.as_str()), ("result", "done")],
                *n as f64,
            );
        }
        for e in errors {
            self.0.inc(
                ACTIONS.0,
                ACTIONS.1,
                &[("kind", e.kind.as_str()), ("result", "failed")],
                1.0,
            );
        }
    }

    /// One outbox drain.
    pub(super) fn drain(&self, acked: usize, blocked: bool) {
        self.0
            .inc(OUTBOX_ACKED.0, OUTBOX_ACKED.1, &[], acked as f64);
        if blocked {
            self.0.inc(OUTBOX_BLOCKED.0, OUTBOX_BLOCKED.1, &[], 1.0);
        }
    }
}
