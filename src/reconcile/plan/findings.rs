//! [`Findings`]: what one phase of the planner found. Each phase returns its own;
//! [`super::plan`] merges them in phase order, and `finish` sorts the result.

use super::action::{Action, ActionKind, Op};
use super::model::{Drift, DriftKind, Foreign, Offboard, Pending};
use crate::reconcile::ownership::Change;

/// Actions, reports and record changes found by one phase.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub(super) actions: Vec<Action>,
    pub(super) drift: Vec<Drift>,
    pub(super) foreign: Vec<Foreign>,
    pub(super) pending: Vec<Pending>,
    pub(super) notes: Vec<String>,
    pub(super) sync: Vec<Change>,
    pub(super) offboarding: Vec<Offboard>,
}

impl Findings {
    pub(super) fn push(&mut self, kind: ActionKind, target: String, description: String, op: Op) {
        self.actions.push(Action {
            kind,
            target,
            description,
            op,
        });
    }

    pub(super) fn drift(
        &mut self,
        kind: DriftKind,
        target: String,
        detail: String,
        step: Option<String>,
    ) {
        self.drift.push(Drift {
            kind,
            target,
            detail,
            console_step: step,
        });
    }

    /// Appends what a later phase found.
    pub(super) fn extend(&mut self, other: Findings) {
        self.actions.extend(other.actions);
        self.drift.extend(other.drift);
        self.foreign.extend(other.foreign);
        self.pending.extend(other.pending);
        self.notes.extend(other.notes);
        self.sync.extend(other.sync);
        self.offboarding.extend(other.offboarding);
    }
}
