//! The last phase: the actions in plan order (kind, target, member), the reports
//! sorted and deduplicated, the safety valve's verdict on the removals (`valve`), and
//! the identity claims to record.

use std::collections::BTreeSet;

use super::findings::Findings;
use super::groups::Deletions;
use super::index::Ctx;
use super::model::{Plan, Scope};
use super::valve::{self, Totals};
use crate::reconcile::ownership::{Change, Claim};

/// Assembles the plan from every phase's findings.
pub(super) fn finish(
    ctx: &Ctx<'_>,
    mut found: Findings,
    managed_memberships: usize,
    deletions: Deletions<'_>,
) -> Plan {
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
    let (managed, members) = match ctx.scope {
        Scope::Full => (managed_memberships, governed_members(ctx)),
        Scope::Users(_) => (
            ctx.input.ownership.membership_count,
            ctx.input.ownership.member_count,
        ),
    };
    let totals = Totals {
        memberships: managed,
        members,
        non_empty: deletions.non_empty,
    };
    let (actions, held, valve) = valve::apply(ctx, std::mem::take(&mut found.actions), totals);
    found.sync.extend(claims(ctx));
    found.offboarding.sort_by(|a, b| a.scim_id.cmp(&b.scim_id));
    Plan {
        actions,
        drift: found.drift,
        foreign: found.foreign,
        pending: found.pending,
        notes: found.notes,
        valve,
        held,
        offboarding: found.offboarding,
        collisions: ctx.collisions.clone(),
        sync: found.sync,
    }
}

/// Directory users linked to a downstream member that is still there.
fn governed_members(ctx: &Ctx<'_>) -> usize {
    let actual = ctx.input.actual;
    ctx.input
        .ownership
        .links
        .values()
        .filter_map(|l| l.user_id.as_deref())
        .filter(|id| !actual.complete || actual.users.contains_key(*id))
        .count()
}

/// The identity claims to record: every claimant of an email several users claim.
/// A full plan also forgets the claims that no longer hold; the event path, which
/// sees only part of the directory, only adds.
fn claims(ctx: &Ctx<'_>) -> Vec<Change> {
    let want: BTreeSet<Claim> = ctx
        .claimed
        .iter()
        .flat_map(|(email, c)| {
            std::iter::once(&c.matched)
                .chain(&c.others)
                .map(move |scim| Claim {
                    email: email.clone(),
                    scim_id: scim.clone(),
                })
        })
        .collect();
    let have = &ctx.input.ownership.claims;
    let mut changes: Vec<Change> = want
        .difference(have)
        .cloned()
        .map(Change::PutClaim)
        .collect();
    if ctx.scope.is_full() {
        changes.extend(have.difference(&want).cloned().map(Change::ForgetClaim));
    }
    changes
}
