//! The valve's arithmetic: held only when the removals in the window exceed both the
//! floor and the ratio; a trickle across passes counts together; organization
//! removals count against governed members; approvals apply, earlier holds stay.

use super::*;
use crate::reconcile::ownership::{HeldRemoval, RemovalEvent};

fn group_of(n: usize) -> World {
    let names: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    mirror(desired(&[("a", &refs)]), Mode::Extended)
}

fn valve(floor: usize) -> PlanOptions {
    PlanOptions {
        max_removal_ratio: 0.2,
        removal_floor: floor,
        on_deactivate: OnDeactivate::RemoveFromGroups,
        ..options(Mode::Extended)
    }
}

#[test]
fn a_leaver_in_a_pilot_of_two_is_never_held() {
    // The case the product is taught with: 1 of 2 memberships (50 %) and 1 of 2
    // members leaving the organization, far under the floor.
    let mut w = group_of(2);
    w.deactivate("u1");
    let p = w.plan(&PlanOptions {
        max_removal_ratio: 0.2,
        ..options(Mode::Extended)
    });
    assert!(!p.holds(), "{:?}", p.valve);
    assert_eq!(
        kinds(&p),
        vec![ActionKind::RemoveMember, ActionKind::RemoveFromOrg]
    );
    assert_eq!((p.valve.removals, p.valve.org_removals), (1, 1));
}

#[test]
fn removals_in_the_window_count_together_and_leave_it_after_the_window() {
    let mut w = group_of(10);
    w.deactivate("u1");
    // Two removals applied ten minutes ago: 3 in the window > floor 2, 30 % > 20 %.
    w.ownership.removals.push(RemovalEvent {
        at: t0() - chrono::Duration::minutes(10),
        n: 0,
        memberships: 2,
        org: 0,
    });
    let p = w.plan(&valve(2));
    assert!(p.holds(), "{:?}", p.valve);
    assert_eq!(p.valve.window_removals, 2);
    assert!(p.valve.reason.as_deref().unwrap().contains("3 of 10"));
    // The same two removals two hours ago are outside the 1 h window.
    w.ownership.removals[0].at = t0() - chrono::Duration::hours(2);
    let p = w.plan(&valve(2));
    assert!(!p.holds());
    assert_eq!(p.valve.window_removals, 0);
    // Inside the window but at the floor: 2 + 1 = 3 is not more than a floor of 3.
    w.ownership.removals[0].at = t0() - chrono::Duration::minutes(10);
    assert!(!w.plan(&valve(3)).holds());
}

#[test]
fn organization_removals_count_against_the_governed_members() {
    let mut w = group_of(10);
    // Three users whose group memberships already went (an earlier pass), now due for
    // the organization removal: 3 of 10 governed members.
    for u in ["u1", "u2", "u3"] {
        w.deactivate(u);
        w.members_mut("a").remove(&user_id(u));
        w.ownership
            .memberships
            .remove(&(u.to_string(), "a".to_string()));
    }
    w.ownership.membership_count = w.ownership.memberships.len();
    let opts = PlanOptions {
        on_deactivate: OnDeactivate::RemoveFromOrg,
        ..valve(0)
    };
    let p = w.plan(&opts);
    assert_eq!(p.valve.org_removals, 3);
    assert_eq!(p.valve.governed_members, 10);
    assert!(
        p.holds()
            && p.held
                .iter()
                .all(|h| h.action.kind == ActionKind::RemoveFromOrg)
    );
    assert!(p
        .valve
        .reason
        .as_deref()
        .unwrap()
        .contains("governed members"));
    assert!(!w
        .plan(&PlanOptions {
            removal_floor: 3,
            ..opts
        })
        .holds());
}

#[test]
fn an_approved_removal_applies_and_one_held_before_stays_held_without_counting() {
    let mut w = group_of(10);
    for u in ["u1", "u2", "u3"] {
        w.deactivate(u);
    }
    let first = w.plan(&valve(0));
    assert_eq!(first.held.len(), 3, "3 of 10 is over 20 %");
    let record = |a: &Action, approved: bool| HeldRemoval {
        id: HeldRemoval::id_of(&a.fingerprint()),
        fingerprint: a.fingerprint(),
        kind: a.kind,
        target: a.target.clone(),
        description: a.description.clone(),
        scim_id: a.scim_id().map(str::to_string),
        reason: "held before".into(),
        held_at: t0(),
        approved_by: approved.then(|| "operator".to_string()),
        approved_at: approved.then(t0),
    };
    let (u1, u2) = (&first.held[0].action, &first.held[1].action);
    w.ownership.held.insert(u1.fingerprint(), record(u1, true));
    w.ownership.held.insert(u2.fingerprint(), record(u2, false));
    let u3 = &first.held[2].action;
    let p = w.plan(&valve(0));
    // The approved one applies; u3 alone (1 of 10) is within the limits now.
    assert_eq!(p.actions, vec![u1.clone(), u3.clone()]);
    assert_eq!(p.held.len(), 1);
    assert!(!p.held[0].new && p.held[0].reason == "held before");
    assert_eq!(p.valve.approved, 1);
    assert_eq!(p.valve.removals, 1, "only u3 counts");
    // Forced: nothing is held, and the plan says what it overrode.
    let forced = w.plan(&PlanOptions {
        force: true,
        ..valve(0)
    });
    assert!(!forced.holds() && forced.valve.forced);
    assert_eq!(forced.actions.len(), 3);
}
