//! The safety valve: an IdP outage or a bad rule must not empty Cowork, and one
//! leaver in a pilot of five must still lose access at once. Removals (member
//! removals, the governed members of deleted groups, organization removals and
//! withdrawn invites) are held only when those in the sliding window (applied by
//! earlier passes, plus this plan's) exceed **both** the floor and the ratio:
//! memberships against managed memberships, organization removals against governed
//! members. A plan is never refused as a whole: what the valve holds waits for an
//! operator's approval, and everything else applies.
//!
//! - A removal an operator approved applies and does not count.
//! - A removal held before stays held (it does not count again).
//! - Deleting a group that still has members is always held.
//! - A forced plan holds nothing (`forced` says what it overrode).

use super::action::{Action, ActionKind, Op};
use super::index::Ctx;
use super::model::{Held, Valve};

/// What the valve counts against.
pub(super) struct Totals {
    /// Managed memberships.
    pub(super) memberships: usize,
    /// Governed members.
    pub(super) members: usize,
    /// Keys of groups deleted although they have members.
    pub(super) non_empty: Vec<String>,
}

/// How many memberships an action removes.
fn membership_units(a: &Action) -> usize {
    match (&a.kind, &a.op) {
        (ActionKind::RemoveMember, _) => 1,
        (
            ActionKind::DeleteGroup,
            Op::DeleteGroup {
                governed_members, ..
            },
        ) => *governed_members,
        _ => 0,
    }
}

fn ratio(n: usize, total: usize) -> f64 {
    match (n, total) {
        (0, _) => 0.0,
        (_, 0) => 1.0,
        (n, t) => n as f64 / t as f64,
    }
}

/// Splits `actions` into those that apply and those held, with the verdict.
pub(super) fn apply(
    ctx: &Ctx<'_>,
    actions: Vec<Action>,
    totals: Totals,
) -> (Vec<Action>, Vec<Held>, Valve) {
    let options = ctx.input.options;
    let held_before = &ctx.input.ownership.held;
    let force = options.force;
    let since = ctx.input.now - options.removal_window;
    let (window_removals, window_org_removals) = ctx
        .input
        .ownership
        .removals
        .iter()
        .filter(|e| e.at > since)
        .fold((0, 0), |(m, o), e| (m + e.memberships, o + e.org));

    let mut keep = Vec::with_capacity(actions.len());
    let mut held = Vec::new();
    let mut candidates: Vec<Action> = Vec::new();
    let (mut removals, mut org_removals, mut approved) = (0usize, 0usize, 0usize);
    let mut overridden = false;
    let non_empty_deletion = |a: &Action| {
        matches!(&a.op, Op::DeleteGroup { governed_members, foreign_members, .. }
            if governed_members + foreign_members > 0)
    };
    for a in actions {
        if !a.kind.is_removal() {
            keep.push(a);
            continue;
        }
        let fingerprint = a.fingerprint();
        match held_before.get(&fingerprint) {
            Some(h) if h.approved_at.is_some() => {
                approved += 1;
                keep.push(a);
            }
            Some(_) | None if force => {
                overridden |= held_before.contains_key(&fingerprint) || non_empty_deletion(&a);
                candidates.push(a);
            }
            Some(h) => held.push(Held {
                action: a,
                reason: h.reason.clone(),
                new: false,
            }),
            None if non_empty_deletion(&a) => {
                let reason = format!(
                    "deleting a group that still has members waits for approval (group {})",
                    a.target.trim_start_matches("group:")
                );
                held.push(Held {
                    action: a,
                    reason,
                    new: true,
                });
            }
            None => candidates.push(a),
        }
    }
    for a in &candidates {
        if a.kind.is_org_removal() {
            org_removals += 1;
        } else {
            removals += membership_units(a);
        }
    }
    let floor = options.removal_floor;
    let max = options.max_removal_ratio;
    let in_window = window_removals + removals;
    let org_in_window = window_org_removals + org_removals;
    let ratio_now = ratio(in_window, totals.memberships);
    let org_ratio = ratio(org_in_window, totals.members);
    let too_many = removals > 0 && in_window > floor && ratio_now > max;
    let too_many_org = org_removals > 0 && org_in_window > floor && org_ratio > max;
    let hours = options.removal_window.num_minutes() as f64 / 60.0;
    let reason = if too_many {
        Some(format!(
            "removals in the last {hours}h would reach {in_window} of {} managed memberships ({:.1}%), more than the floor of {floor} (reconcile.removal_floor) and the limit of {:.1}% (reconcile.max_removal_ratio)",
            totals.memberships,
            ratio_now * 100.0,
            max * 100.0
        ))
    } else if too_many_org {
        Some(format!(
            "organization removals in the last {hours}h would reach {org_in_window} of {} governed members ({:.1}%), more than the floor of {floor} (reconcile.removal_floor) and the limit of {:.1}% (reconcile.max_removal_ratio)",
            totals.members,
            org_ratio * 100.0,
            max * 100.0
        ))
    } else {
        None
    };
    let holding = reason.is_some() && !force;
    match (&reason, holding) {
        (Some(why), true) => held.extend(candidates.into_iter().map(|a| Held {
            action: a,
            reason: why.clone(),
            new: true,
        })),
        _ => keep.extend(candidates),
    }
    keep.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    held.sort_by(|a, b| a.action.sort_key().cmp(&b.action.sort_key()));
    let reason = reason.or_else(|| held.first().map(|h| h.reason.clone()));
    let valve = Valve {
        managed_memberships: totals.memberships,
        governed_members: totals.members,
        removals,
        org_removals,
        window_removals,
        window_org_removals,
        ratio: ratio_now,
        org_ratio,
        max_removal_ratio: max,
        removal_floor: floor,
        window_seconds: options.removal_window.num_seconds(),
        non_empty_deletions: totals.non_empty,
        holding,
        held: held.len(),
        approved,
        forced: force && (overridden || reason.is_some()),
        reason,
    };
    (keep, held, valve)
}
