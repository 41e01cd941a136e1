//! How the reconciler behaves ([`ReconcileOptions`], from the configuration) and how
//! one full reconcile runs ([`RunOptions`]).

use super::plan::OnDeactivate;
use super::report::ProgressFn;
use super::runs::Trigger;
use crate::config::{self, CoworkConfig, LifecycleConfig, ReconcileConfig};

/// The default [`ReconcileOptions::drain_settle`]: short next to anything a person
/// notices, long next to the 1-2 ms between the batches of a busy IdP push, so a
/// push drains in a few passes instead of one pass per batch of writes.
pub const DRAIN_SETTLE: std::time::Duration = std::time::Duration::from_millis(10);

/// How the reconciler behaves.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// The safety valve: removals in the window beyond this share of managed
    /// memberships are held (`reconcile.max_removal_ratio`) ...
    pub max_removal_ratio: f64,
    /// ... unless they are at most this many (`reconcile.removal_floor`).
    pub removal_floor: usize,
    /// The valve's sliding window (`reconcile.removal_window`).
    pub removal_window: chrono::Duration,
    /// What offboarding takes away (`lifecycle.on_deactivate`).
    pub on_deactivate: OnDeactivate,
    /// Grace before the organization removal (`lifecycle.remove_from_org_after`).
    pub remove_from_org_after: chrono::Duration,
    /// In real mode, write group spend limits as per-user overrides
    /// (`cowork.materialize_group_spend`).
    pub materialize_group_spend: bool,
    /// Log (and report) progress every this many actions.
    pub progress_every: usize,
    /// Most outbox entries planned together.
    pub outbox_batch: usize,
    /// How long the outbox worker lets a burst of changes gather after a wake-up
    /// before it drains them together (cut short once a full batch is queued).
    pub drain_settle: std::time::Duration,
}

impl ReconcileOptions {
    /// [`ReconcileOptions::outbox_batch`], at least 1: what counts as a full batch.
    pub fn full_outbox_batch(&self) -> usize {
        self.outbox_batch.max(1)
    }
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            max_removal_ratio: 0.2,
            removal_floor: 10,
            removal_window: chrono::Duration::hours(1),
            on_deactivate: OnDeactivate::RemoveFromOrg,
            remove_from_org_after: chrono::Duration::zero(),
            materialize_group_spend: false,
            progress_every: 100,
            outbox_batch: 500,
            drain_settle: DRAIN_SETTLE,
        }
    }
}

impl ReconcileOptions {
    /// From the validated configuration.
    pub fn from_config(
        reconcile: &ReconcileConfig,
        lifecycle: &LifecycleConfig,
        cowork: &CoworkConfig,
    ) -> Self {
        let duration =
            |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Self {
            max_removal_ratio: reconcile.max_removal_ratio,
            removal_floor: reconcile.removal_floor,
            removal_window: duration(reconcile.removal_window),
            on_deactivate: match lifecycle.on_deactivate {
                config::OnDeactivate::RemoveFromOrg => OnDeactivate::RemoveFromOrg,
                config::OnDeactivate::RemoveFromGroups => OnDeactivate::RemoveFromGroups,
            },
            remove_from_org_after: duration(lifecycle.remove_from_org_after),
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
