//! Spend: group limits materialized as owned per-user overrides; overrides the
//! daemon did not create are reported, never written; a spent pool's caps.

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

#[test]
fn a_pool_cap_is_an_owned_override_at_the_lower_of_cap_and_limit_and_clears_back() {
    let mut w = mirror(two_groups(), Mode::Real);
    let opts = PlanOptions {
        materialize_group_spend: true,
        ..options(Mode::Real)
    };
    for s in ["u1", "u2"] {
        w.actual.user_spend.as_mut().unwrap().insert(
            user_id(s),
            ActualSpend {
                id: format!("spl_{s}"),
                limit: SpendLimit::Amount(5000),
            },
        );
    }
    w.ownership.spend.insert(
        "u1".into(),
        OwnedSpend {
            scim_id: "u1".into(),
            user_id: user_id("u1"),
            spend_limit_id: "spl_u1".into(),
            amount: Some(5000),
        },
    );
    // u1's override is ours, u2's is not.
    for s in ["u1", "u2"] {
        w.caps.insert(
            s.into(),
            PoolCap {
                at: 1200,
                group: "a".into(),
            },
        );
    }
    let p = w.plan(&opts);
    let set: Vec<(&str, SpendLimit)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::SetUserSpend { scim_id, limit, .. } => Some((scim_id.as_str(), *limit)),
            _ => None,
        })
        .collect();
    assert!(set.contains(&("u1", SpendLimit::Amount(1200))), "{set:?}");
    assert!(p.actions.iter().all(|a| a.target != "user:u2"));
    assert!(p.drift.iter().any(|d| d.kind == DriftKind::ForeignOverride
        && d.target == "user:u2"
        && d.detail.contains("cap not applied: override not ours")));
    // A cap above the limit leaves the limit.
    w.caps.get_mut("u1").unwrap().at = 9000;
    let p = w.plan(&opts);
    assert!(
        p.actions.iter().all(|a| a.target != "user:u1"),
        "{:?}",
        p.actions
    );
    // Cleared: the capped override returns to the groups' limit.
    w.caps.clear();
    w.actual
        .user_spend
        .as_mut()
        .unwrap()
        .get_mut("user_u1")
        .unwrap()
        .limit = SpendLimit::Amount(1200);
    let p = w.plan(&opts);
    assert!(p.actions.iter().any(|a| matches!(&a.op,
        Op::SetUserSpend { scim_id, limit: SpendLimit::Amount(5000), .. } if scim_id == "u1")));
    // Without materialized limits (extended mode) the cap alone is wanted, and its
    // clearing deletes the override the daemon made.
    let mut e = mirror(two_groups(), Mode::Extended);
    e.caps.insert(
        "u1".into(),
        PoolCap {
            at: 10,
            group: "a".into(),
        },
    );
    let p = e.plan(&options(Mode::Extended));
    assert!(p.actions.iter().any(|a| matches!(&a.op,
        Op::SetUserSpend { scim_id, limit: SpendLimit::Amount(10), .. } if scim_id == "u1")));
    e.caps.clear();
    e.actual.user_spend.as_mut().unwrap().insert(
        user_id("u1"),
        ActualSpend {
            id: "spl_u1".into(),
            limit: SpendLimit::Amount(10),
        },
    );
    e.ownership.spend.insert(
        "u1".into(),
        OwnedSpend {
            scim_id: "u1".into(),
            user_id: user_id("u1"),
            spend_limit_id: "spl_u1".into(),
            amount: Some(10),
        },
    );
    let p = e.plan(&options(Mode::Extended));
    assert!(p
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::DeleteUserSpend && a.target == "user:u1"));
}
