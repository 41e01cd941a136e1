//! The last phase: the actions in plan order (kind, target, member), the reports
//! sorted and deduplicated, and the safety valve's verdict on the removals.

use super::action::ActionKind;
use super::findings::Findings;
use super::groups::Deletions;
use super::index::Ctx;
use super::model::{Plan, Scope, Valve};

/// Assembles the plan from every phase's findings.
pub(super) fn finish(
    ctx: &Ctx<'_>,
    mut found: Findings,
    managed_memberships: usize,
    deletions: Deletions<'_>,
) -> Plan {
    found
        .actions
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    found
        .drift
        .sort_by(|a, b| (a.kind, &a.target, &a.detail).cmp(&(b.kind, &b.target, &b.detail)));
    found
        .foreign
        .sort_by(|a, b| (&a.target, a.kind, &a.id).cmp(&(&b.target, b.kind, &b.id)));
    found.foreign.dedup();
    found.pending.sort_by(|a, b| a.scim_id.cmp(&b.scim_id));
    found.notes.sort();
    found.notes.dedup();
    let managed = match ctx.scope {
        Scope::Full => managed_memberships,
        Scope::Users(_) => ctx.input.ownership.membership_count,
    };
    let removals = found
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::RemoveMember)
        .count()
        + deletions.governed_memberships;
    let ratio = if removals == 0 {
        0.0
    } else if managed == 0 {
        1.0
    } else {
        removals as f64 / managed as f64
    };
    let max = ctx.input.options.max_removal_ratio;
    let too_many = removals > 0 && ratio > max;
    let reason = match (too_many, deletions.non_empty.is_empty()) {
            (false, true) => None,
            (true, _) => Some(format!(
                "the plan removes {removals} of {managed} managed memberships ({:.1}%), more than the limit of {:.1}% (reconcile.max_removal_ratio)",
                ratio * 100.0,
                max * 100.0
            )),
            (false, false) => Some(format!(
                "the plan deletes group(s) [{}] that still have members",
                deletions.non_empty.join(", ")
            )),
        };
    let would_refuse = reason.is_some();
    let force = ctx.input.options.force;
    let valve = Valve {
        managed_memberships: managed,
        removals,
        ratio,
        max_removal_ratio: max,
        non_empty_deletions: deletions.non_empty,
        refused: would_refuse && !force,
        forced: would_refuse && force,
        reason,
    };
    Plan {
        actions: found.actions,
        drift: found.drift,
        foreign: found.foreign,
        pending: found.pending,
        notes: found.notes,
        valve,
        sync: found.sync,
    }
}
