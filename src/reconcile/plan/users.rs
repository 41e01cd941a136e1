//! Phase: the governed users themselves. A governed user found downstream (by
//! email, or through the member the daemon linked before) is linked and set to org
//! role `managed` (never from an admin role, never when the IdP owns org roles);
//! one missing downstream is invited with their groups where invites are allowed,
//! otherwise reported pending (a pending invite is not repeated). In real mode with
//! `materialize_group_spend`, a user's groups' limit becomes a per-user override the
//! daemon owns. A spent pool's cap (design §6.1) is such an override in every mode, at
//! the lower of the cap and that limit; an override the daemon did not make is never
//! changed ("cap not applied: override not ours"), and when the cap clears the
//! override returns to the limit or goes. Overrides it made for users it no longer governs are deleted, and the
//! links of users gone from the directory with nothing left downstream forgotten.

use std::collections::BTreeSet;

use super::action::{Action, ActionKind, GroupRef, Op};
use super::convert::{money, CONSOLE};
use super::findings::Findings;
use super::groups::{Blocked, BoundGroups};
use super::index::Ctx;
use super::lifecycle::Handled;
use super::model::{ActualUser, DriftKind, Foreign, ForeignKind, Pending, PendingReason};
use crate::cowork::OrgRole;
use crate::reconcile::ownership::{Change, OwnedSpend, UserLink};
use crate::rules::SpendLimit;

/// Links, org roles, invites and spend overrides of the governed users in scope.
/// `prior` are the actions earlier phases planned (a user with a removal pending
/// keeps their link until it is recorded).
pub(super) fn plan<'a>(
    ctx: &Ctx<'a>,
    bound: &BoundGroups<'_>,
    blocked: &Blocked<'_>,
    prior: &[Action],
    handled: &Handled,
) -> Findings {
    let mut out = Findings::default();
    let desired = ctx.input.desired;
    let roles_writable = desired.org.org_roles_writable
        && !ctx
            .input
            .actual
            .org
            .as_ref()
            .and_then(|o| o.provisioning_mode.as_ref())
            .is_some_and(|m| m.idp_manages_roles());
    let invites_allowed = desired.org.invites_allowed
        && ctx
            .input
            .actual
            .org
            .as_ref()
            .and_then(|o| o.provisioning_mode.as_ref())
            .is_none_or(|m| m.allows_invites());
    let currency = desired.org.billing_currency.clone();
    for (scim, managed) in &desired.managed_users {
        if !ctx.scope.covers(scim) {
            continue;
        }
        let Some(email) = managed.email.as_deref() else {
            let groups = ctx.groups_of(scim);
            out.pending.push(Pending {
                scim_id: scim.clone(),
                reason: PendingReason::NoEmail,
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
            continue;
        };
        let link = ctx.input.ownership.links.get(scim);
        if ctx.matched_instead(scim).is_some() {
            let groups = ctx.groups_of(scim);
            out.pending.push(Pending {
                scim_id: scim.clone(),
                reason: PendingReason::IdentityCollision,
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
            // A link this user held to a member the matched user now holds ends.
            if link.is_some_and(|l| l.user_id.is_some()) && !handled.contains(scim) {
                out.sync.push(Change::ForgetLink {
                    scim_id: scim.clone(),
                });
            }
            continue;
        }
        match ctx.downstream(scim) {
            Some(user) => {
                if link.is_none_or(|l| {
                    l.user_id.as_deref() != Some(user.id.as_str())
                        || l.role.as_ref() != Some(&user.role)
                        || l.email != user.email
                        || l.invite_id.is_some()
                }) {
                    out.sync.push(Change::PutLink(UserLink {
                        scim_id: scim.clone(),
                        email: user.email.clone(),
                        user_id: Some(user.id.clone()),
                        role: Some(user.role.clone()),
                        invite_id: None,
                    }));
                }
                user_role(&mut out, scim, user, roles_writable);
                if !user.role.is_admin() {
                    let groups = if ctx.materializing() {
                        ctx.groups_of(scim)
                    } else {
                        Vec::new()
                    };
                    user_spend(ctx, blocked, &mut out, scim, Some(user), &groups, &currency);
                }
            }
            None => {
                let groups = ctx.groups_of(scim);
                let email = email.to_lowercase();
                let invite = ctx.input.actual.invites.get(&email);
                if let Some(inv) = invite {
                    if link.is_none_or(|l| l.invite_id.as_deref() != Some(inv.id.as_str())) {
                        out.sync.push(Change::PutLink(UserLink {
                            scim_id: scim.clone(),
                            email: email.clone(),
                            user_id: None,
                            role: None,
                            invite_id: Some(inv.id.clone()),
                        }));
                    }
                    out.pending.push(Pending {
                        scim_id: scim.clone(),
                        reason: PendingReason::InvitePending,
                        groups: groups.iter().map(|g| g.to_string()).collect(),
                    });
                } else if invites_allowed {
                    let refs: Vec<GroupRef> = groups
                        .iter()
                        .filter_map(|k| bound.get(k).map(|b| b.gref.clone()))
                        .collect();
                    let role = if roles_writable {
                        OrgRole::Managed
                    } else {
                        OrgRole::User
                    };
                    let keys: Vec<&str> = refs.iter().map(|g| g.key.as_str()).collect();
                    out.push(
                        ActionKind::InviteUser,
                        format!("user:{scim}"),
                        format!(
                            "invite user {scim} as {role} into groups [{}]",
                            keys.join(", ")
                        ),
                        Op::InviteUser {
                            scim_id: scim.clone(),
                            email: email.clone(),
                            role,
                            groups: refs,
                        },
                    );
                } else {
                    out.pending.push(Pending {
                        scim_id: scim.clone(),
                        reason: PendingReason::InvitesNotAllowed,
                        groups: groups.iter().map(|g| g.to_string()).collect(),
                    });
                }
                user_spend(ctx, blocked, &mut out, scim, None, &groups, &currency);
            }
        }
    }
    // Overrides the daemon made for users it no longer governs.
    let stale: Vec<&'a OwnedSpend> = ctx
        .input
        .ownership
        .spend
        .values()
        .filter(|s| ctx.scope.covers(&s.scim_id) && !desired.managed_users.contains_key(&s.scim_id))
        .collect();
    for s in stale {
        delete_owned_spend(ctx, &mut out, s);
    }
    // Links of users who left the directory and have nothing left downstream.
    if ctx.input.actual.complete {
        let removing: BTreeSet<&str> = prior
            .iter()
            .chain(&out.actions)
            .filter_map(|a| match &a.op {
                Op::RemoveMember {
                    scim_id: Some(s), ..
                }
                | Op::DeleteUserSpend { scim_id: s, .. }
                | Op::RemoveFromOrg { scim_id: s, .. }
                | Op::WithdrawInvite { scim_id: s, .. } => Some(s.as_str()),
                _ => None,
            })
            .collect();
        for scim in ctx.input.ownership.links.keys() {
            if !ctx.input.directory.users.contains_key(scim)
                && !removing.contains(scim.as_str())
                && !handled.contains(scim)
            {
                out.sync.push(Change::ForgetLink {
                    scim_id: scim.clone(),
                });
            }
        }
    }
    out
}

fn user_role(out: &mut Findings, scim: &str, user: &ActualUser, writable: bool) {
    let target = format!("user:{scim}");
    if user.role.is_admin() {
        out.foreign.push(Foreign {
            kind: ForeignKind::AdminMember,
            target,
            id: user.id.clone(),
        });
        return;
    }
    match &user.role {
            OrgRole::Managed => {}
            OrgRole::User if writable => out.push(
                ActionKind::SetUserRole,
                target,
                format!(
                    "set the org role of user {scim} ({}) from user to managed, so the custom roles of their groups apply",
                    user.id
                ),
                Op::SetUserRole {
                    scim_id: scim.to_string(),
                    user_id: user.id.clone(),
                    from: OrgRole::User,
                    to: OrgRole::Managed,
                },
            ),
            OrgRole::User => out.drift(
                DriftKind::NotWritable,
                target,
                format!(
                    "user {scim} ({}) has org role user, so custom roles do not apply; the IdP's group mappings own org roles",
                    user.id
                ),
                Some(format!(
                    "{CONSOLE} › Identity: map the user to the \"Custom roles\" role in the IdP's group mappings"
                )),
            ),
            other => out.drift(
                DriftKind::NotWritable,
                target,
                format!(
                    "user {scim} ({}) has org role {other}, which the API cannot change to managed",
                    user.id
                ),
                Some(format!("{CONSOLE} › Members: set the user's role to Custom roles")),
            ),
        }
}

/// The monthly limit materialized for a governed user: the most permissive of
/// their groups' limits.
fn materialized_limit(ctx: &Ctx<'_>, blocked: &Blocked<'_>, groups: &[&str]) -> Option<SpendLimit> {
    groups
        .iter()
        .filter(|k| !blocked.contains(**k))
        .filter_map(|k| ctx.input.desired.groups.get(*k)?.monthly_spend)
        .max()
}

fn user_spend(
    ctx: &Ctx<'_>,
    blocked: &Blocked<'_>,
    out: &mut Findings,
    scim: &str,
    user: Option<&ActualUser>,
    groups: &[&str],
    currency: &str,
) {
    let owned = ctx.input.ownership.spend.get(scim);
    let limit = if ctx.materializing() {
        materialized_limit(ctx, blocked, groups)
    } else {
        None
    };
    // A spent pool's cap is a per-user override (tier A) in every mode, and the
    // lower of it and the groups' limit wins.
    let cap = ctx.input.caps.get(scim);
    let want = match (cap, limit) {
        (Some(c), Some(l)) => Some(l.min(SpendLimit::Amount(c.at))),
        (Some(c), None) => Some(SpendLimit::Amount(c.at)),
        (None, l) => l,
    };
    let capped = cap.filter(|c| want == Some(SpendLimit::Amount(c.at)));
    let why = match capped {
        Some(c) => format!("capped because the pool of group {} is spent", c.group),
        None => "from their groups' limit".to_string(),
    };
    let Some(user) = user else {
        return; // not downstream yet: its override follows once it is
    };
    let Some(rows) = &ctx.input.actual.user_spend else {
        if want.is_some() {
            out.notes.push(format!(
                "per-user spend overrides cannot be read; user {scim} not checked"
            ));
        }
        return;
    };
    let have = rows.get(&user.id);
    let target = format!("user:{scim}");
    match (want, have) {
        (Some(limit), None) => out.push(
            ActionKind::SetUserSpend,
            target,
            format!(
                "set a monthly spend override of {} for user {scim} ({}), {why}",
                money(limit, currency),
                user.id
            ),
            Op::SetUserSpend {
                scim_id: scim.to_string(),
                user_id: user.id.clone(),
                limit,
                currency: currency.to_string(),
            },
        ),
        (Some(limit), Some(row)) if row.limit != limit => {
            if owned.is_some_and(|o| o.spend_limit_id == row.id) {
                out.push(
                    ActionKind::SetUserSpend,
                    target,
                    format!(
                        "change the monthly spend override of user {scim} ({}) to {}, {why}",
                        user.id,
                        money(limit, currency)
                    ),
                    Op::SetUserSpend {
                        scim_id: scim.to_string(),
                        user_id: user.id.clone(),
                        limit,
                        currency: currency.to_string(),
                    },
                );
            } else if let Some(c) = capped {
                out.drift(
                    DriftKind::ForeignOverride,
                    target,
                    format!(
                        "cap not applied: override not ours: user {scim} ({}) has a per-user spend override the daemon did not set; the spent pool of group {} would cap them at {}, and the override is left alone",
                        user.id,
                        c.group,
                        money(limit, currency)
                    ),
                    Some(format!(
                        "{CONSOLE} › Members: lower the user's own spend limit, or remove it so the daemon can cap them"
                    )),
                );
            } else {
                out.drift(
                        DriftKind::ForeignOverride,
                        target,
                        format!(
                            "user {scim} ({}) has a per-user spend override the daemon did not set; it differs from their groups' limit {} and is left alone",
                            user.id,
                            money(limit, currency)
                        ),
                        Some(format!(
                            "{CONSOLE} › Members: remove the user's own spend limit so the group's applies"
                        )),
                    );
            }
        }
        (Some(limit), Some(row)) => {
            if ctx.input.actual.complete && owned.is_none_or(|o| o.spend_limit_id != row.id) {
                // Already as wanted; record it only if the daemon made it before.
                if owned.is_some() {
                    out.sync.push(Change::PutSpend(OwnedSpend {
                        scim_id: scim.to_string(),
                        user_id: user.id.clone(),
                        spend_limit_id: row.id.clone(),
                        amount: match limit {
                            SpendLimit::Amount(n) => Some(n),
                            SpendLimit::Unlimited => None,
                        },
                    }));
                }
            }
        }
        (None, _) => {
            if let Some(o) = owned {
                delete_owned_spend(ctx, out, o);
            }
        }
    }
}

fn delete_owned_spend(ctx: &Ctx<'_>, out: &mut Findings, owned: &OwnedSpend) {
    let exists = match &ctx.input.actual.user_spend {
        Some(rows) => rows
            .get(&owned.user_id)
            .is_some_and(|r| r.id == owned.spend_limit_id),
        None => true,
    };
    if !exists {
        if ctx.input.actual.complete {
            out.sync.push(Change::ForgetSpend {
                scim_id: owned.scim_id.clone(),
            });
        }
        return;
    }
    out.push(
            ActionKind::DeleteUserSpend,
            format!("user:{}", owned.scim_id),
            format!(
                "delete the spend override the daemon set for user {} ({}), who is no longer in a group with a limit nor capped by a pool",
                owned.scim_id, owned.user_id
            ),
            Op::DeleteUserSpend {
                scim_id: owned.scim_id.clone(),
                user_id: owned.user_id.clone(),
                spend_limit_id: owned.spend_limit_id.clone(),
            },
        );
}
