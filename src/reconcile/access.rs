//! One user's access downstream beside what the rules want, and why the two differ:
//! the other half of `explain`. What Cowork holds comes from the daemon's records
//! (the links and memberships it wrote or last read), the held removals, the
//! offboarding record, and the last downstream failure for the user; nothing here
//! calls the Admin API.
//!
//! [`downstream_access`] is pure; [`Reconciler::downstream_access`] loads its inputs.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::ReconcileError;
use super::ownership::{self, Ownership};
use super::pass::blocking;
use super::plan::{ActionKind, OffboardState, OnDeactivate};
use super::Reconciler;
use crate::cowork::{CoworkApi, OrgRole};
use crate::status::UserFailure;

/// What the rules want for the user, as far as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// SCIM `active`.
    pub active: bool,
    /// Some enabled rule matches them.
    pub governed: bool,
    /// Downstream group keys the rules put them in.
    pub groups: BTreeSet<String>,
}

/// The member the user is linked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Downstream member id, once they are a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Their org role when last seen or set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<OrgRole>,
    /// The invite the daemon sent, while it is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<String>,
}

/// One of the daemon's groups, wanted or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    /// Rule key.
    pub key: String,
    /// Its downstream name, when the daemon has the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The rules put the user in it.
    pub wanted: bool,
    /// Cowork holds the user in it (by the daemon's records).
    pub member: bool,
}

/// Where an offboarding stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffboardingView {
    /// `in_grace`, `removing`, `kept_in_org`, `admin_kept`.
    pub state: OffboardState,
    /// Since when (daemon clock), when a record exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// When the organization removal is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

/// A way what Cowork holds differs from what the rules want.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `group:<key>` or `org`.
    pub target: String,
    /// What the rules want (`member`, `not a member`).
    pub want: String,
    /// What Cowork holds.
    pub have: String,
    /// Why they differ.
    pub why: String,
}

/// The user's access downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownstreamAccess {
    /// The linked member or invite, if any.
    pub member: Option<MemberView>,
    /// The daemon's groups the user is wanted in or held in.
    pub groups: Vec<GroupView>,
    /// The offboarding, when the user is leaving.
    pub offboarding: Option<OffboardingView>,
    /// Every difference with its reason; empty when Cowork matches the rules.
    pub differences: Vec<Difference>,
    /// The last downstream failure for the user, until an action for them succeeds.
    pub last_failure: Option<UserFailure>,
}

/// The lifecycle settings the comparison needs.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// What a leaver loses.
    pub on_deactivate: OnDeactivate,
    /// The grace before the organization removal.
    pub remove_from_org_after: chrono::Duration,
}

/// Compares what the rules want for `scim` with what the records say Cowork holds.
pub fn downstream_access(
    own: &Ownership,
    scim: &str,
    wanted: &Wanted,
    lifecycle: Lifecycle,
    failure: Option<UserFailure>,
    now: DateTime<Utc>,
) -> DownstreamAccess {
    let link = own.links.get(scim);
    let member = link.map(|l| MemberView {
        user_id: l.user_id.clone(),
        role: l.role.clone(),
        invite_id: l.invite_id.clone(),
    });
    let held: Vec<&ownership::HeldRemoval> = own
        .held
        .values()
        .filter(|h| h.scim_id.as_deref() == Some(scim))
        .collect();
    let held_on = |kinds: &[ActionKind], target: &str| {
        held.iter()
            .find(|h| kinds.contains(&h.kind) && h.target == target)
            .map(|h| {
                format!(
                    "held by the safety valve ({}: {}); apply with `cowork-sync approve {}`",
                    h.id, h.reason, h.id
                )
            })
    };
    let pending = |failure: &Option<UserFailure>, target: &str| match failure {
        Some(f) if f.target == target || f.target == format!("user:{scim}") => format!(
            "action failed: {} at {}: {} (retried by the event path and the next reconcile)",
            f.kind, f.at, f.error
        ),
        _ => "not applied yet: the event path or the next reconcile applies it".to_string(),
    };

    let mut keys: BTreeSet<&str> = wanted.groups.iter().map(String::as_str).collect();
    let memberships: BTreeSet<&str> = own
        .memberships_of(scim)
        .map(|m| m.group_key.as_str())
        .collect();
    keys.extend(memberships.iter().copied());
    let mut groups = Vec::new();
    let mut differences = Vec::new();
    for key in keys {
        let want = wanted.groups.contains(key);
        let have = memberships.contains(key);
        groups.push(GroupView {
            key: key.to_string(),
            name: own.groups.get(key).map(|g| g.name.clone()),
            wanted: want,
            member: have,
        });
        if want == have {
            continue;
        }
        let target = format!("group:{key}");
        let why = if want {
            match link {
                None => "not yet linked to a Cowork member: the next pass invites them, or links them when they sign in".to_string(),
                Some(l) if l.user_id.is_none() && l.invite_id.is_some() => format!(
                    "invite pending ({}): they join their groups once they accept it",
                    l.invite_id.as_deref().unwrap_or_default()
                ),
                Some(_) => pending(&failure, &target),
            }
        } else {
            held_on(&[ActionKind::RemoveMember], &target)
                .unwrap_or_else(|| pending(&failure, &target))
        };
        differences.push(Difference {
            target,
            want: if want { "member" } else { "not a member" }.into(),
            have: if have { "member" } else { "not a member" }.into(),
            why,
        });
    }

    let leaving = !wanted.active;
    let record = own.offboarding.get(scim);
    let user_target = format!("user:{scim}");
    let offboarding = match (record, link) {
        (Some(o), _) => {
            let due = o.since + lifecycle.remove_from_org_after;
            Some(OffboardingView {
                state: if now < due {
                    OffboardState::InGrace
                } else {
                    OffboardState::Removing
                },
                since: Some(o.since),
                due_at: Some(due),
            })
        }
        (None, Some(l)) if leaving && l.user_id.is_some() => {
            let admin = l.role.as_ref().is_some_and(OrgRole::is_admin);
            match (admin, lifecycle.on_deactivate) {
                (true, _) => Some(OffboardState::AdminKept),
                (false, OnDeactivate::RemoveFromGroups) => Some(OffboardState::KeptInOrg),
                (false, OnDeactivate::RemoveFromOrg) => Some(OffboardState::Removing),
            }
            .map(|state| OffboardingView {
                state,
                since: None,
                due_at: None,
            })
        }
        _ => None,
    };
    if let (Some(view), Some(l)) = (&offboarding, link) {
        if l.user_id.is_some() || l.invite_id.is_some() {
            let why = match view.state {
                OffboardState::InGrace => Some(format!(
                    "in grace until {} (lifecycle.remove_from_org_after); returning before then cancels it",
                    view.due_at.map(|d| d.to_rfc3339()).unwrap_or_default()
                )),
                OffboardState::Removing => Some(
                    held_on(
                        &[ActionKind::RemoveFromOrg, ActionKind::WithdrawInvite],
                        &user_target,
                    )
                    .unwrap_or_else(|| pending(&failure, &user_target)),
                ),
                OffboardState::AdminKept | OffboardState::IdpManaged | OffboardState::KeptInOrg => {
                    None
                }
            };
            if let Some(why) = why {
                differences.push(Difference {
                    target: "org".into(),
                    want: "not a member".into(),
                    have: if l.user_id.is_some() {
                        "member".into()
                    } else {
                        "invited".into()
                    },
                    why,
                });
            }
        }
    }
    DownstreamAccess {
        member,
        groups,
        offboarding,
        differences,
        last_failure: failure,
    }
}

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// Compares what the rules want for a user with what the records say Cowork holds.
    pub async fn downstream_access(
        &self,
        scim: &str,
        wanted: Wanted,
    ) -> Result<DownstreamAccess, ReconcileError> {
        let store = self.store.clone();
        let id = scim.to_string();
        let own = blocking(move || Ok(ownership::store::load_user(store.as_ref(), &id)?)).await?;
        let lifecycle = Lifecycle {
            on_deactivate: self.options.on_deactivate,
            remove_from_org_after: self.options.remove_from_org_after,
        };
        Ok(downstream_access(
            &own,
            scim,
            &wanted,
            lifecycle,
            self.status.user_failure(scim),
            self.clock.now(),
        ))
    }
}

/// The differences as a person reads them (for `explain`).
pub fn render_downstream(access: &DownstreamAccess) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("in Cowork now (from cowork-sync's records):\n");
    match &access.member {
        Some(MemberView {
            user_id: Some(id),
            role,
            ..
        }) => {
            let role = role
                .as_ref()
                .map(|r| format!(", role {}", r.as_str()))
                .unwrap_or_default();
            let _ = writeln!(out, "  member {id}{role}");
        }
        Some(MemberView {
            invite_id: Some(invite),
            ..
        }) => {
            let _ = writeln!(out, "  invited ({invite}), not yet a member");
        }
        _ => out.push_str("  not linked to a Cowork member\n"),
    }
    let held: Vec<&str> = access
        .groups
        .iter()
        .filter(|g| g.member)
        .map(|g| g.name.as_deref().unwrap_or(g.key.as_str()))
        .collect();
    let _ = writeln!(
        out,
        "  in groups: {}",
        if held.is_empty() {
            "(none)".to_string()
        } else {
            held.join(", ")
        }
    );
    if let Some(o) = &access.offboarding {
        let state = serde_json::to_value(o.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "  offboarding: {state}");
    }
    if access.differences.is_empty() {
        out.push_str("  matches what the rules want\n");
    } else {
        out.push_str("differs from the rules:\n");
        for d in &access.differences {
            let _ = writeln!(
                out,
                "  {}: the rules want {}, Cowork has {}: {}",
                d.target, d.want, d.have, d.why
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ownership::{
        HeldRemoval, Membership, OffboardReason, Offboarding, OwnedGroup, UserLink,
    };

    fn t0() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn lifecycle(grace_mins: i64) -> Lifecycle {
        Lifecycle {
            on_deactivate: OnDeactivate::RemoveFromOrg,
            remove_from_org_after: chrono::Duration::minutes(grace_mins),
        }
    }

    fn records() -> Ownership {
        let mut own = Ownership::default();
        for key in ["pilot", "eng"] {
            own.groups.insert(
                key.into(),
                OwnedGroup {
                    key: key.into(),
                    id: format!("g_{key}"),
                    name: key.to_uppercase(),
                    created: true,
                },
            );
        }
        own.links.insert(
            "u1".into(),
            UserLink {
                scim_id: "u1".into(),
                email: "a@example.com".into(),
                user_id: Some("user_1".into()),
                role: Some(OrgRole::User),
                invite_id: None,
            },
        );
        own.memberships.insert(
            ("u1".into(), "pilot".into()),
            Membership {
                scim_id: "u1".into(),
                group_key: "pilot".into(),
                group_id: "g_pilot".into(),
                user_id: "user_1".into(),
            },
        );
        own
    }

    fn wanted(active: bool, groups: &[&str]) -> Wanted {
        Wanted {
            active,
            governed: true,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn in_sync_means_no_differences() {
        let a = downstream_access(
            &records(),
            "u1",
            &wanted(true, &["pilot"]),
            lifecycle(0),
            None,
            t0(),
        );
        assert!(a.differences.is_empty(), "{a:?}");
        assert_eq!(a.groups.len(), 1);
        assert!(a.groups[0].wanted && a.groups[0].member);
        assert!(render_downstream(&a).contains("matches what the rules want"));
    }

    #[test]
    fn a_missing_group_names_the_failure_until_an_action_succeeds() {
        let failure = UserFailure {
            kind: "add_member".into(),
            target: "group:eng".into(),
            error: "503 from the Admin API".into(),
            at: "2026-01-01T00:00:00Z".into(),
        };
        let a = downstream_access(
            &records(),
            "u1",
            &wanted(true, &["pilot", "eng"]),
            lifecycle(0),
            Some(failure),
            t0(),
        );
        assert_eq!(a.differences.len(), 1);
        assert_eq!(a.differences[0].target, "group:eng");
        assert!(a.differences[0]
            .why
            .starts_with("action failed: add_member"));
        let quiet = downstream_access(
            &records(),
            "u1",
            &wanted(true, &["pilot", "eng"]),
            lifecycle(0),
            None,
            t0(),
        );
        assert!(quiet.differences[0].why.starts_with("not applied yet"));
    }

    #[test]
    fn a_held_removal_and_a_grace_say_so() {
        let mut own = records();
        own.held.insert(
            "fp".into(),
            HeldRemoval {
                id: "h_1".into(),
                fingerprint: "fp".into(),
                kind: ActionKind::RemoveMember,
                target: "group:pilot".into(),
                description: "remove".into(),
                scim_id: Some("u1".into()),
                reason: "too many removals".into(),
                held_at: t0(),
                approved_by: None,
                approved_at: None,
            },
        );
        own.offboarding.insert(
            "u1".into(),
            Offboarding {
                scim_id: "u1".into(),
                user_id: Some("user_1".into()),
                reason: OffboardReason::Deactivated,
                since: t0(),
                cause: None,
            },
        );
        let a = downstream_access(&own, "u1", &wanted(false, &[]), lifecycle(60), None, t0());
        let whys: Vec<&str> = a.differences.iter().map(|d| d.why.as_str()).collect();
        assert!(
            whys[0].contains("held by the safety valve (h_1"),
            "{whys:?}"
        );
        assert!(whys[1].starts_with("in grace until"), "{whys:?}");
        assert_eq!(a.offboarding.unwrap().state, OffboardState::InGrace);
        let later = downstream_access(
            &own,
            "u1",
            &wanted(false, &[]),
            lifecycle(60),
            None,
            t0() + chrono::Duration::hours(2),
        );
        assert_eq!(later.offboarding.unwrap().state, OffboardState::Removing);
    }

    #[test]
    fn an_invite_pending_is_the_reason_for_missing_groups() {
        let mut own = records();
        own.memberships.clear();
        if let Some(l) = own.links.get_mut("u1") {
            l.user_id = None;
            l.invite_id = Some("invite_9".into());
        }
        let a = downstream_access(
            &own,
            "u1",
            &wanted(true, &["pilot"]),
            lifecycle(0),
            None,
            t0(),
        );
        assert!(a.differences[0]
            .why
            .starts_with("invite pending (invite_9)"));
        assert!(render_downstream(&a).contains("invited (invite_9)"));
    }
}
