//! Phase: offboarding. A governed user (one the daemon linked to a downstream member
//! or invited) whom the IdP deactivated or deleted loses every group the daemon owns
//! at once (the member phase plans those removals, since the rules no longer want
//! them) and, with `on_deactivate = "remove_from_org"`, their organization membership
//! once `remove_from_org_after` has passed since the daemon first saw it. A pending
//! invite is withdrawn at once. Never for a member with an admin role, never where
//! the IdP provisions the organization over SCIM (reported instead). A user who
//! returns before the removal keeps their membership and gets their groups back.

use std::collections::BTreeSet;

use super::action::{ActionKind, Because, Op};
use super::findings::Findings;
use super::index::{Ctx, UserStatus};
use super::model::{DriftKind, Foreign, ForeignKind, Offboard, OffboardState, OnDeactivate};
use crate::reconcile::ownership::{Change, OffboardReason, Offboarding, UserLink};

/// Users whose links this phase decided about: offboarding still in progress (the
/// link stays until the organization removal is recorded) or already ended here.
pub(super) type Handled = BTreeSet<String>;

/// Offboarding of the linked users in scope.
pub(super) fn plan(ctx: &Ctx<'_>) -> (Handled, Findings) {
    let mut out = Findings::default();
    let mut handled = Handled::new();
    let options = ctx.input.options;
    let ownership = ctx.input.ownership;
    let org_by_idp = ctx
        .input
        .actual
        .org
        .as_ref()
        .and_then(|o| o.provisioning_mode.as_ref())
        .map(|m| m.scim_manages_membership())
        .unwrap_or_else(|| {
            ctx.input
                .desired
                .org
                .provisioning_mode
                .scim_manages_membership()
        });
    for (scim, link) in &ownership.links {
        if !ctx.scope.covers(scim) {
            continue;
        }
        let record = ownership.offboarding.get(scim);
        let reason = match ctx.status(scim) {
            UserStatus::Active => {
                if record.is_some() {
                    // Back before the organization removal: nothing more to do; the
                    // member phase gives them their groups back.
                    out.sync.push(Change::ForgetOffboarding {
                        scim_id: scim.clone(),
                    });
                }
                continue;
            }
            UserStatus::Inactive => OffboardReason::Deactivated,
            UserStatus::Deleted => OffboardReason::Deleted,
        };
        // Another directory user now holds this member (a re-hire, a duplicate
        // account): this link ends, the member is not offboarded.
        if let Some(uid) = link.user_id.as_deref() {
            if ctx.person_of(uid).is_some_and(|p| p != scim.as_str()) {
                handled.insert(scim.clone());
                out.sync.push(Change::ForgetLink {
                    scim_id: scim.clone(),
                });
                if record.is_some() {
                    out.sync.push(Change::ForgetOffboarding {
                        scim_id: scim.clone(),
                    });
                }
                continue;
            }
        }
        let because = match reason {
            OffboardReason::Deactivated => Because::Deactivated,
            OffboardReason::Deleted => Because::Deleted,
        };
        let since = record.map_or(ctx.input.now, |r| r.since);
        let report = |user_id: Option<&str>, state, due_at| Offboard {
            scim_id: scim.clone(),
            user_id: user_id.map(str::to_string),
            reason,
            since,
            due_at,
            state,
        };
        match (link.user_id.as_deref(), link.invite_id.as_deref()) {
            (Some(uid), _) => {
                let actual = ctx.input.actual;
                if actual.complete && !actual.users.contains_key(uid) {
                    // No longer a member (removed by hand, or by an earlier pass whose
                    // record was lost): nothing to remove; the link ends.
                    handled.insert(scim.clone());
                    out.sync.extend(gone(scim, link, reason, record.is_some()));
                    continue;
                }
                let admin = link.role.as_ref().is_some_and(|r| r.is_admin())
                    || actual.users.get(uid).is_some_and(|u| u.role.is_admin());
                if admin {
                    out.offboarding
                        .push(report(Some(uid), OffboardState::AdminKept, None));
                    out.foreign.push(Foreign {
                        kind: ForeignKind::AdminMember,
                        target: format!("user:{scim}"),
                        id: uid.to_string(),
                    });
                    continue;
                }
                if options.on_deactivate == OnDeactivate::RemoveFromGroups {
                    out.offboarding
                        .push(report(Some(uid), OffboardState::KeptInOrg, None));
                    continue;
                }
                if org_by_idp {
                    out.offboarding
                        .push(report(Some(uid), OffboardState::IdpManaged, None));
                    out.drift(
                        DriftKind::NotWritable,
                        format!("user:{scim}"),
                        format!(
                            "user {scim} ({uid}) was {} in the IdP, but the organization is provisioned over SCIM, so the Admin API cannot remove them",
                            reason.as_str()
                        ),
                        Some(
                            "the IdP that provisions the organization: unassign the user from the Claude application"
                                .into(),
                        ),
                    );
                    continue;
                }
                handled.insert(scim.clone());
                if record.is_none() {
                    out.sync.push(Change::PutOffboarding(Offboarding {
                        scim_id: scim.clone(),
                        user_id: Some(uid.to_string()),
                        reason,
                        since,
                        cause: None,
                    }));
                }
                let due = since + options.remove_from_org_after;
                if ctx.input.now < due {
                    out.offboarding
                        .push(report(Some(uid), OffboardState::InGrace, Some(due)));
                    continue;
                }
                out.offboarding
                    .push(report(Some(uid), OffboardState::Removing, Some(due)));
                out.push(
                    ActionKind::RemoveFromOrg,
                    format!("user:{scim}"),
                    format!(
                        "remove user {scim} ({uid}) from the organization, which frees their seat: {} in the IdP",
                        reason.as_str()
                    ),
                    Op::RemoveFromOrg {
                        scim_id: scim.clone(),
                        user_id: uid.to_string(),
                        because,
                    },
                );
            }
            (None, Some(invite)) => {
                handled.insert(scim.clone());
                out.offboarding
                    .push(report(None, OffboardState::Removing, None));
                out.push(
                    ActionKind::WithdrawInvite,
                    format!("user:{scim}"),
                    format!(
                        "withdraw the pending invite {invite} of user {scim}: {} in the IdP",
                        reason.as_str()
                    ),
                    Op::WithdrawInvite {
                        scim_id: scim.clone(),
                        invite_id: invite.to_string(),
                        because,
                    },
                );
            }
            (None, None) => {
                if record.is_some() {
                    out.sync.push(Change::ForgetOffboarding {
                        scim_id: scim.clone(),
                    });
                }
            }
        }
    }
    (handled, out)
}

/// The records of a user who is no longer a member: a deleted user's link goes; a
/// deactivated user's link keeps their email but names no member.
pub(super) fn gone(
    scim: &str,
    link: &UserLink,
    reason: OffboardReason,
    offboarding: bool,
) -> Vec<Change> {
    let mut changes = Vec::new();
    if offboarding {
        changes.push(Change::ForgetOffboarding {
            scim_id: scim.to_string(),
        });
    }
    changes.push(match reason {
        OffboardReason::Deleted => Change::ForgetLink {
            scim_id: scim.to_string(),
        },
        OffboardReason::Deactivated => Change::PutLink(UserLink {
            user_id: None,
            role: None,
            invite_id: None,
            ..link.clone()
        }),
    });
    changes
}
