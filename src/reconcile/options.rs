//! How the reconciler behaves ([`ReconcileOptions`], from the configuration) and how
//! one full reconcile runs ([`RunOptions`]).

use super::report::ProgressFn;
use super::runs::Trigger;
use crate::config::{CoworkConfig, ReconcileConfig};

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
