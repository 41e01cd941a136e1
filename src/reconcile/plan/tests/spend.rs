//! Spend: group limits materialized as owned per-user overrides; overrides the
//! daemon did not create are reported, never written.

use super::*;

#[test]
fn materialized_group_spend_becomes_owned_per_user_overrides() {
    let mut w = mirror(two_groups(), Mode::Real);
    let opts = PlanOptions {
        materialize_group_spend: true,
        ..options(Mode::Real)
    };
    let p = w.plan(&opts);
    let set: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::SetUserSpend { scim_id, limit, .. } => {
                assert_eq!(*limit, SpendLimit::Amount(5000));
                Some(scim_id.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(set, vec!["u1", "u2", "u3"]);
    assert!(
        p.drift.iter().all(|d| !d.detail.contains("spend")),
        "{:#?}",
        p.drift
    );

    // Once in place and owned: nothing. When u3 leaves group a: its override goes.
    for s in ["u1", "u2", "u3"] {
        w.actual.user_spend.as_mut().unwrap().insert(
            user_id(s),
            ActualSpend {
                id: format!("spl_{s}"),
                limit: SpendLimit::Amount(5000),
            },
        );
        w.ownership.spend.insert(
            s.into(),
            OwnedSpend {
                scim_id: s.into(),
                user_id: user_id(s),
                spend_limit_id: format!("spl_{s}"),
                amount: Some(5000),
            },
        );
    }
    assert!(w.plan(&opts).actions.is_empty());
    w.desired.groups.get_mut("a").unwrap().members.remove("u3");
    w.desired.managed_users.remove("u3");
    let p = w.plan(&opts);
    assert_eq!(
        kinds(&p),
        vec![ActionKind::RemoveMember, ActionKind::DeleteUserSpend]
    );
    // An override someone else set is reported, not overwritten.
    w.ownership.spend.remove("u1");
    w.actual
        .user_spend
        .as_mut()
        .unwrap()
        .get_mut("user_u1")
        .unwrap()
        .limit = SpendLimit::Amount(7);
    let p = w.plan(&opts);
    assert!(p
        .drift
        .iter()
        .any(|d| d.kind == DriftKind::ForeignOverride && d.target == "user:u1"));
    assert!(p.actions.iter().all(|a| a.target != "user:u1"));
}
