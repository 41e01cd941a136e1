//! Offboarding: a governed user the IdP deactivates or deletes loses every group of
//! the daemon's at once and, by default, the organization membership; a grace delays
//! only the organization removal, and a return within it cancels it; admins and
//! SCIM-provisioned organizations are never removed; a pending invite is withdrawn.

use super::*;
use crate::reconcile::ownership::{Offboarding, UserLink};

fn removals_of(p: &Plan, scim: &str) -> Vec<ActionKind> {
    p.actions
        .iter()
        .filter(|a| a.scim_id() == Some(scim))
        .map(|a| a.kind)
        .collect()
}

#[test]
fn a_deactivated_user_loses_every_group_and_the_organization_at_once_by_default() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.deactivate("u2");
    let p = w.plan(&options(Mode::Extended));
    use ActionKind::*;
    assert_eq!(
        removals_of(&p, "u2"),
        vec![RemoveMember, RemoveMember, RemoveFromOrg]
    );
    assert_eq!(kinds(&p), vec![RemoveMember, RemoveMember, RemoveFromOrg]);
    for a in &p.actions {
        match &a.op {
            Op::RemoveMember { because, .. } => assert_eq!(because, &Some(Because::Deactivated)),
            Op::RemoveFromOrg {
                user_id, because, ..
            } => {
                assert_eq!(user_id, &user_id_of("u2"));
                assert_eq!(because, &Because::Deactivated);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!p.holds(), "one leaver is never held");
    assert_eq!(p.offboarding.len(), 1);
    assert_eq!(p.offboarding[0].state, OffboardState::Removing);
    assert!(p.sync.iter().any(|c| matches!(c,
        Change::PutOffboarding(o) if o.scim_id == "u2" && o.since == t0())));
    // Deleted instead: the same removals, for the other reason.
    let mut w = mirror(two_groups(), Mode::Extended);
    w.delete("u2");
    let p = w.plan(&options(Mode::Extended));
    assert_eq!(kinds(&p), vec![RemoveMember, RemoveMember, RemoveFromOrg]);
    assert!(matches!(
        &p.actions[2].op,
        Op::RemoveFromOrg {
            because: Because::Deleted,
            ..
        }
    ));
}

fn user_id_of(scim: &str) -> String {
    user_id(scim)
}

#[test]
fn the_organization_removal_waits_for_the_grace_and_a_return_cancels_it() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.deactivate("u2");
    let graced = PlanOptions {
        remove_from_org_after: chrono::Duration::hours(1),
        ..options(Mode::Extended)
    };
    let p = w.plan(&graced);
    use ActionKind::*;
    assert_eq!(
        kinds(&p),
        vec![RemoveMember, RemoveMember],
        "groups go at once"
    );
    assert_eq!(p.offboarding[0].state, OffboardState::InGrace);
    assert_eq!(
        p.offboarding[0].due_at,
        Some(t0() + chrono::Duration::hours(1))
    );
    w.settle(&p);
    // Half an hour later: still in grace, the record is not written again.
    let p = w.plan_at(&graced, t0() + chrono::Duration::minutes(30));
    assert!(!kinds(&p).contains(&RemoveFromOrg));
    assert!(!p
        .sync
        .iter()
        .any(|c| matches!(c, Change::PutOffboarding(_))));
    // Due: removed from the organization.
    let p = w.plan_at(&graced, t0() + chrono::Duration::hours(1));
    assert!(kinds(&p).contains(&RemoveFromOrg));
    // Back within the grace instead: the removal is cancelled and the groups return.
    w.directory.insert("u2", Some(&email("u2")), true);
    let back = desired(&[("a", &["u1", "u2", "u3"]), ("b", &["u2", "u4"])]);
    w.desired = back;
    let p = w.plan_at(&graced, t0() + chrono::Duration::minutes(40));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.sync.contains(&Change::ForgetOffboarding {
        scim_id: "u2".into()
    }));
    assert!(p.offboarding.is_empty());
}

#[test]
fn remove_from_groups_keeps_the_organization_membership() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.deactivate("u2");
    let p = w.plan(&PlanOptions {
        on_deactivate: OnDeactivate::RemoveFromGroups,
        ..options(Mode::Extended)
    });
    assert_eq!(
        kinds(&p),
        vec![ActionKind::RemoveMember, ActionKind::RemoveMember]
    );
    assert_eq!(p.offboarding[0].state, OffboardState::KeptInOrg);
    assert!(!p
        .sync
        .iter()
        .any(|c| matches!(c, Change::PutOffboarding(_))));
}

#[test]
fn admins_are_never_removed_and_a_scim_provisioned_organization_is_reported() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.add_downstream_user(&user_id("u2"), &email("u2"), OrgRole::Owner);
    w.deactivate("u2");
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(p.offboarding[0].state, OffboardState::AdminKept);
    assert!(p
        .foreign
        .iter()
        .any(|f| f.kind == ForeignKind::AdminMember && f.id == user_id("u2")));

    let mut w = mirror(two_groups(), Mode::Extended);
    w.deactivate("u2");
    w.actual.org = Some(cowork::Organization {
        id: "org".into(),
        name: "Example".into(),
        plan: None,
        provisioning_mode: Some(ApiProvisioning::ScimPermissive),
        settings: None,
        capabilities: cowork::ApiCapabilities::default(),
    });
    let p = w.plan(&options(Mode::Extended));
    assert!(!kinds(&p).contains(&ActionKind::RemoveFromOrg));
    assert_eq!(p.offboarding[0].state, OffboardState::IdpManaged);
    assert!(p
        .drift
        .iter()
        .any(|d| d.kind == DriftKind::NotWritable && d.target == "user:u2"));
}

#[test]
fn the_pending_invite_of_a_deactivated_user_is_withdrawn() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.ownership.links.insert(
        "u9".into(),
        UserLink {
            scim_id: "u9".into(),
            email: email("u9"),
            user_id: None,
            role: None,
            invite_id: Some("invite_9".into()),
        },
    );
    w.directory.insert("u9", Some(&email("u9")), false);
    let p = w.plan(&options(Mode::Extended));
    assert_eq!(kinds(&p), vec![ActionKind::WithdrawInvite]);
    assert!(
        matches!(&p.actions[0].op, Op::WithdrawInvite { invite_id, .. } if invite_id == "invite_9")
    );
}

#[test]
fn a_deleted_user_no_longer_downstream_is_simply_forgotten() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.delete("u4");
    w.actual.users.remove(&user_id("u4"));
    w.members_mut("b").remove(&user_id("u4"));
    w.ownership.offboarding.insert(
        "u4".into(),
        Offboarding {
            scim_id: "u4".into(),
            user_id: Some(user_id("u4")),
            reason: crate::reconcile::ownership::OffboardReason::Deleted,
            since: t0(),
            cause: None,
        },
    );
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.sync.contains(&Change::ForgetLink {
        scim_id: "u4".into()
    }));
    assert!(p.sync.contains(&Change::ForgetOffboarding {
        scim_id: "u4".into()
    }));
}

#[test]
fn the_event_path_offboards_against_the_records_alone() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.actual.complete = false;
    w.actual.members.clear();
    w.actual.groups.clear();
    w.actual.roles.clear();
    w.actual.group_spend = None;
    w.actual.plugins = None;
    w.deactivate("u2");
    // The event path sees the users in scope only.
    w.directory.users.retain(|s, _| s == "u2");
    let p = w.plan(&PlanOptions {
        scope: Scope::Users(BTreeSet::from(["u2".to_string()])),
        ..options(Mode::Extended)
    });
    use ActionKind::*;
    assert_eq!(kinds(&p), vec![RemoveMember, RemoveMember, RemoveFromOrg]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whoever leaves, and however many: each of their memberships is removed once,
    /// each is removed from the organization once (applied or held), nobody else is
    /// touched, and the records the plan writes are not written again.
    #[test]
    fn every_leaver_loses_each_membership_and_the_organization_exactly_once(
        groups in prop::collection::vec(prop::collection::btree_set(0usize..12, 1..10), 1..4),
        leaving in prop::collection::vec(0u8..3, 12),
        floor in 0usize..6,
    ) {
        let keys = ["a", "b", "c", "d"];
        let names: Vec<Vec<String>> = groups
            .iter()
            .map(|s| s.iter().map(|i| format!("u{i}")).collect())
            .collect();
        let refs: Vec<Vec<&str>> = names.iter().map(|v| v.iter().map(String::as_str).collect()).collect();
        let spec: Vec<(&str, &[&str])> = refs.iter().enumerate().map(|(i, m)| (keys[i], m.as_slice())).collect();
        let mut w = mirror(desired(&spec), Mode::Extended);
        let governed: BTreeSet<String> = w.desired.managed_users.keys().cloned().collect();
        let mut leavers = BTreeSet::new();
        for (i, how) in leaving.iter().enumerate() {
            let scim = format!("u{i}");
            if !governed.contains(&scim) {
                continue;
            }
            match how {
                1 => w.deactivate(&scim),
                2 => w.delete(&scim),
                _ => continue,
            }
            leavers.insert(scim);
        }
        let opts = PlanOptions { removal_floor: floor, max_removal_ratio: 0.2, ..options(Mode::Extended) };
        let p = w.plan(&opts);
        let all: Vec<&Action> = p.actions.iter().chain(p.held.iter().map(|h| &h.action)).collect();
        for a in &all {
            let who = a.scim_id().unwrap_or("");
            prop_assert!(leavers.contains(who), "{a:?} touches someone who stays");
        }
        for l in &leavers {
            let memberships = w.ownership.memberships.keys().filter(|(s, _)| s == l).count();
            let removed = all.iter().filter(|a| a.kind == ActionKind::RemoveMember && a.scim_id() == Some(l)).count();
            prop_assert_eq!(removed, memberships, "memberships of {}", l);
            let org = all.iter().filter(|a| a.kind == ActionKind::RemoveFromOrg && a.scim_id() == Some(l)).count();
            prop_assert_eq!(org, 1, "organization removal of {}", l);
        }
        prop_assert_eq!(&w.plan(&opts), &p, "deterministic");
        w.settle(&p);
        let again = w.plan(&opts);
        prop_assert!(!again.sync.iter().any(|c| matches!(c, Change::PutOffboarding(_))));
    }
}
