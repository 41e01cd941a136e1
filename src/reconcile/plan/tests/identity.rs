//! Identity collisions: directory users whose emails name one downstream member (equal
//! ignoring case, or after dropping a `+tag`) never flap; one is matched by the
//! documented rule, the others are reported and get nothing.

use super::*;

#[test]
fn two_users_whose_emails_differ_only_by_case_never_flap() {
    // u1 and u9 both claim alice's member; u1 is linked to it, u9 is in group b.
    let mut w = mirror(desired(&[("a", &["u1"]), ("b", &["u2"])]), Mode::Extended);
    w.desired
        .groups
        .get_mut("b")
        .unwrap()
        .members
        .insert("u9".into());
    w.desired.managed_users.insert(
        "u9".into(),
        ManagedUser {
            email: Some("U1@Example.com".into()),
        },
    );
    w.directory.insert("u9", Some("U1@Example.com"), true);
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(
        p.collisions,
        vec![Collision {
            member_id: Some(user_id("u1")),
            matched: "u1".into(),
            others: vec!["u9".into()],
        }]
    );
    assert!(p
        .pending
        .iter()
        .any(|x| x.scim_id == "u9" && x.reason == PendingReason::IdentityCollision));
    // The claims are recorded once; the next plan is the same and changes nothing.
    assert_eq!(
        p.sync
            .iter()
            .filter(|c| matches!(c, Change::PutClaim(_)))
            .count(),
        2
    );
    w.settle(&p);
    let again = w.plan(&options(Mode::Extended));
    assert!(
        again.actions.is_empty() && again.sync.is_empty(),
        "{again:#?}"
    );
    assert_eq!(again.collisions, p.collisions);
}

#[test]
fn a_plus_tag_variant_names_the_member_without_a_tag() {
    let mut w = mirror(desired(&[("a", &["u1"])]), Mode::Extended);
    // The directory knows bob by a tagged address; Cowork by the plain one.
    w.ownership.links.clear();
    w.desired.managed_users.get_mut("u1").unwrap().email = Some("u1+cowork@example.com".into());
    w.directory
        .insert("u1", Some("u1+cowork@example.com"), true);
    let p = w.plan(&options(Mode::Extended));
    assert!(
        p.actions.is_empty(),
        "no invite, no removal: {:#?}",
        p.actions
    );
    assert!(p.sync.iter().any(|c| matches!(c,
        Change::PutLink(l) if l.scim_id == "u1" && l.user_id.as_deref() == Some("user_u1"))));
}

#[test]
fn an_active_user_is_matched_before_a_deactivated_one_and_the_member_is_not_offboarded() {
    // u1 (linked) is deactivated; u9, active and in the same group, has u1's email: a
    // re-hire, or a second account. The member stays and follows u9.
    let mut w = mirror(desired(&[("a", &["u1", "u2"])]), Mode::Extended);
    w.deactivate("u1");
    w.desired
        .groups
        .get_mut("a")
        .unwrap()
        .members
        .insert("u9".into());
    w.desired.managed_users.insert(
        "u9".into(),
        ManagedUser {
            email: Some(email("u1")),
        },
    );
    w.directory.insert("u9", Some(&email("u1")), true);
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(p.collisions[0].matched, "u9");
    assert!(p.sync.contains(&Change::ForgetLink {
        scim_id: "u1".into()
    }));
    assert!(p.sync.iter().any(|c| matches!(c,
        Change::PutLink(l) if l.scim_id == "u9" && l.user_id.as_deref() == Some("user_u1"))));
    assert!(p.offboarding.is_empty());
}
