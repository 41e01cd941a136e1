//! Phase: memberships of the bound groups, member by member, so the number of
//! writes equals the number of differences. A full plan diffs the desired members
//! against the members read (a downstream member who is not a directory user, or
//! holds an admin role, is foreign: never removed); the event path diffs against
//! the beliefs recorded in ownership, and also ends the believed memberships of
//! users in scope in groups no longer desired for them. Beliefs the read did not
//! confirm are forgotten.

use std::collections::BTreeSet;

use super::action::{ActionKind, Because, GroupRef, Op};
use super::findings::Findings;
use super::groups::BoundGroups;
use super::index::{Bits, Ctx};
use super::model::Scope;
use crate::reconcile::ownership::{Change, Membership};
use crate::rules::DesiredGroup;

/// What the member diff counted.
#[derive(Debug, Default)]
pub(super) struct Members {
    /// Memberships of directory users in the daemon's groups, as read.
    pub(super) managed: usize,
    /// Beliefs the read confirmed.
    pub(super) confirmed: usize,
    /// Memberships added or removed by actions, by (SCIM id, key): not synced.
    pub(super) touched: BTreeSet<(String, String)>,
}

/// Adds and removes members of the bound groups.
pub(super) fn plan<'a>(ctx: &Ctx<'a>, bound: &BoundGroups<'a>) -> (Members, Findings) {
    let mut counts = Members::default();
    let mut out = Findings::default();
    for (key, b) in bound {
        let (desired, actual, gref) = (b.desired, b.actual, &b.gref);
        if ctx.input.actual.complete {
            let empty = BTreeSet::new();
            let have: &BTreeSet<String> = match actual {
                Some(g) => match ctx.input.actual.members.get(&g.id) {
                    Some(m) => m,
                    None => {
                        out.notes.push(format!(
                            "members of group {key} were not read; not checked this run"
                        ));
                        continue;
                    }
                },
                None => &empty,
            };
            diff_read(ctx, &mut counts, &mut out, key, desired, gref, have);
        } else {
            diff_believed(ctx, &mut counts, &mut out, key, desired, gref);
        }
    }
    if !ctx.scope.is_full() {
        // Beliefs in groups no longer desired for a user in scope.
        let Scope::Users(users) = ctx.scope else {
            return (counts, out);
        };
        let beliefs: Vec<&'a Membership> = users
            .iter()
            .flat_map(|u| ctx.input.ownership.memberships_of(u))
            .collect();
        for m in beliefs {
            let still = ctx
                .input
                .desired
                .groups
                .get(&m.group_key)
                .is_some_and(|g| g.members.contains(&m.scim_id));
            if still || bound.contains_key(m.group_key.as_str()) {
                continue;
            }
            let name = ctx
                .input
                .ownership
                .groups
                .get(&m.group_key)
                .map(|g| g.name.clone())
                .unwrap_or_else(|| m.group_key.clone());
            let because = ctx.because(&m.scim_id, ctx.input.desired.groups.get(&m.group_key), true);
            remove(
                &mut out,
                &mut counts.touched,
                &GroupRef {
                    key: m.group_key.clone(),
                    id: Some(m.group_id.clone()),
                    name,
                },
                Some(&m.scim_id),
                &m.user_id,
                Some(because),
            );
        }
    }
    (counts, out)
}

fn add(
    out: &mut Findings,
    touched: &mut BTreeSet<(String, String)>,
    gref: &GroupRef,
    scim_id: &str,
    user_id: &str,
) {
    touched.insert((scim_id.to_string(), gref.key.clone()));
    out.push(
        ActionKind::AddMember,
        format!("group:{}", gref.key),
        format!(
            "add user {scim_id} ({user_id}) to group {:?} (key {})",
            gref.name, gref.key
        ),
        Op::AddMember {
            group: gref.clone(),
            scim_id: scim_id.to_string(),
            user_id: user_id.to_string(),
        },
    );
}

fn remove(
    out: &mut Findings,
    touched: &mut BTreeSet<(String, String)>,
    gref: &GroupRef,
    scim_id: Option<&str>,
    user_id: &str,
    because: Option<Because>,
) {
    if let Some(s) = scim_id {
        touched.insert((s.to_string(), gref.key.clone()));
    }
    let who = match scim_id {
        Some(s) => format!("user {s} ({user_id})"),
        None => format!("member {user_id}"),
    };
    out.push(
        ActionKind::RemoveMember,
        format!("group:{}", gref.key),
        format!("remove {who} from group {:?} (key {})", gref.name, gref.key),
        Op::RemoveMember {
            group: gref.clone(),
            scim_id: scim_id.map(str::to_string),
            user_id: user_id.to_string(),
            because,
        },
    );
}

/// Full plan: compare the desired members with the members read. Works on
/// directory user indices: one hash lookup per membership on each side.
fn diff_read<'a>(
    ctx: &Ctx<'a>,
    counts: &mut Members,
    out: &mut Findings,
    key: &'a str,
    desired: &'a DesiredGroup,
    gref: &GroupRef,
    have: &BTreeSet<String>,
) {
    let n = ctx.scims.len();
    let mut wanted = Bits::new(n);
    let mut wanted_count = 0usize;
    for s in &desired.members {
        if !ctx.scope.covers(s) {
            continue;
        }
        if let Some(i) = ctx.scim_ix.get(s.as_str()) {
            if wanted.set(*i) {
                wanted_count += 1;
            }
        }
    }
    let mut believed = Bits::new(n);
    if let Some(list) = ctx.believed.get(key) {
        for i in list {
            believed.set(*i);
        }
    }
    let mut present = Bits::new(n);
    let mut present_count = 0usize;
    for user_id in have {
        let person = match ctx.classify_member(key, user_id) {
            Ok(p) => p,
            Err(f) => {
                out.foreign.push(f);
                continue;
            }
        };
        counts.managed += 1;
        let scim = ctx.scim(person);
        if wanted.get(person) {
            if !present.set(person) {
                continue;
            }
            present_count += 1;
            if believed.get(person) {
                counts.confirmed += 1;
            } else if let Some(gid) = &gref.id {
                out.sync.push(Change::PutMembership(Membership {
                    scim_id: scim.to_string(),
                    group_key: key.to_string(),
                    group_id: gid.clone(),
                    user_id: user_id.clone(),
                }));
            }
        } else if ctx.scope.covers(scim) {
            let because = ctx.because(scim, Some(desired), believed.get(person));
            remove(
                out,
                &mut counts.touched,
                gref,
                Some(scim),
                user_id,
                Some(because),
            );
        }
    }
    if present_count == wanted_count {
        return;
    }
    for scim in &desired.members {
        let Some(i) = ctx.scim_ix.get(scim.as_str()).copied() else {
            continue;
        };
        if !wanted.get(i) || present.get(i) {
            continue;
        }
        let Some(user) = ctx.downstream(scim) else {
            continue; // invited or pending: see users()
        };
        if user.role.is_admin() {
            continue; // reported by users()
        }
        add(out, &mut counts.touched, gref, scim, &user.id);
    }
}

/// Event path: compare the desired members in scope with the beliefs.
fn diff_believed<'a>(
    ctx: &Ctx<'a>,
    counts: &mut Members,
    out: &mut Findings,
    key: &'a str,
    desired: &'a DesiredGroup,
    gref: &GroupRef,
) {
    let Scope::Users(users) = ctx.scope else {
        return;
    };
    for scim in users {
        let belief = ctx
            .input
            .ownership
            .memberships
            .get(&(scim.clone(), key.to_string()));
        let wanted = desired.members.contains(scim);
        match (wanted, belief) {
            (true, None) => {
                if let Some(user) = ctx.downstream(scim) {
                    if !user.role.is_admin() {
                        add(out, &mut counts.touched, gref, scim, &user.id);
                    }
                }
            }
            (false, Some(m)) => {
                let because = ctx.because(scim, Some(desired), true);
                remove(
                    out,
                    &mut counts.touched,
                    gref,
                    Some(scim),
                    &m.user_id,
                    Some(because),
                );
            }
            _ => {}
        }
    }
}

/// Beliefs that no longer match what was read (full plans only).
pub(super) fn forget_stale_beliefs(
    ctx: &Ctx<'_>,
    bound: &BoundGroups<'_>,
    members: &Members,
    deleting: &BTreeSet<&str>,
) -> Findings {
    let (touched, confirmed) = (&members.touched, members.confirmed);
    let mut out = Findings::default();
    if !ctx.input.actual.complete {
        return out;
    }
    // Every belief was confirmed by the read (the usual case): nothing to forget.
    if confirmed == ctx.input.ownership.memberships.len() {
        return out;
    }
    for ((scim, key), m) in &ctx.input.ownership.memberships {
        if deleting.contains(key.as_str()) {
            continue; // forgotten when the deletion is recorded
        }
        if !touched.is_empty() && touched.contains(&(scim.clone(), key.clone())) {
            continue;
        }
        let confirmed = bound
            .get(key.as_str())
            .and_then(|b| b.actual)
            .and_then(|g| ctx.input.actual.members.get(&g.id))
            .is_some_and(|members| members.contains(&m.user_id))
            && bound
                .get(key.as_str())
                .is_some_and(|b| b.desired.members.contains(scim));
        if !confirmed {
            out.sync.push(Change::ForgetMembership {
                scim_id: scim.clone(),
                group_key: key.clone(),
            });
        }
    }
    out
}
