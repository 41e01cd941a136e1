//! The planner's property: foreign objects are never touched, and plan(x, x) is
//! empty.

use super::*;

#[derive(Debug, Clone)]
struct Random {
    /// Per desired group, per user 0..12: desired member?
    desired: Vec<Vec<bool>>,
    /// Per desired group: (downstream members 0..16 incl. foreign ids 12..16), owned?,
    /// scim?
    actual: Vec<(Vec<bool>, bool, bool)>,
    /// Admin users among 0..12.
    admins: Vec<bool>,
    /// Directory users among 0..12 (the rest are not in the directory).
    directory: Vec<bool>,
    /// An extra group not owned, with members.
    stranger: Vec<bool>,
    mode_real: bool,
    force: bool,
}

fn random() -> impl Strategy<Value = Random> {
    (
        prop::collection::vec(prop::collection::vec(any::<bool>(), 12), 1..4),
        prop::collection::vec(
            (
                prop::collection::vec(any::<bool>(), 16),
                any::<bool>(),
                any::<bool>(),
            ),
            3,
        ),
        prop::collection::vec(any::<bool>(), 12),
        prop::collection::vec(prop::bool::weighted(0.8), 12),
        prop::collection::vec(any::<bool>(), 16),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(desired, actual, admins, directory, stranger, mode_real, force)| Random {
                desired,
                actual,
                admins,
                directory,
                stranger,
                mode_real,
                force,
            },
        )
}

#[allow(clippy::needless_range_loop)]
fn build(r: &Random) -> (World, BTreeSet<String>, BTreeSet<String>) {
    let keys = ["a", "b", "c"];
    let names: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
    let groups: Vec<(&str, Vec<&str>)> = r
        .desired
        .iter()
        .enumerate()
        .map(|(gi, row)| {
            let members = row
                .iter()
                .enumerate()
                .filter(|(i, on)| **on && r.directory[*i])
                .map(|(i, _)| names[i].as_str())
                .collect();
            (keys[gi], members)
        })
        .collect();
    let refs: Vec<(&str, &[&str])> = groups.iter().map(|(k, m)| (*k, m.as_slice())).collect();
    let mode = if r.mode_real {
        Mode::Real
    } else {
        Mode::Extended
    };
    let mut w = mirror(desired(&refs), mode);
    w.actual.users.clear();
    w.directory.users.clear();
    w.ownership.links.clear();
    let mut foreign_users = BTreeSet::new();
    for i in 0..16 {
        let id = format!("user_u{i}");
        let admin = i < 12 && r.admins[i];
        if i < 12 {
            w.add_downstream_user(
                &id,
                &email(&names[i]),
                if admin {
                    OrgRole::Owner
                } else {
                    OrgRole::Managed
                },
            );
            if r.directory[i] {
                w.add_directory_user(&names[i]);
            }
        } else {
            w.add_downstream_user(&id, &format!("outsider{i}@example.com"), OrgRole::User);
        }
        if admin || i >= 12 || !r.directory[i] {
            foreign_users.insert(id);
        }
    }
    let mut foreign_groups = BTreeSet::new();
    for (gi, (members, owned, scim)) in r.actual.iter().enumerate() {
        let key = keys[gi];
        let id = group_id(key);
        let set: BTreeSet<String> = members
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(i, _)| format!("user_u{i}"))
            .collect();
        let mut g = rbac_group(
            &id,
            &format!("Group {key}"),
            (!r.mode_real).then_some(key),
            *scim,
        );
        g.roles = Some(vec!["rbac_role_pilot".into()]);
        w.actual.groups.insert(id.clone(), g);
        w.actual.members.insert(id.clone(), set);
        if !owned || *scim {
            w.ownership.groups.remove(key);
            w.ownership.memberships.retain(|(_, k), _| k != key);
        } else if !w.ownership.groups.contains_key(key) {
            w.ownership.groups.insert(
                key.to_string(),
                OwnedGroup {
                    key: key.to_string(),
                    id: id.clone(),
                    name: format!("Group {key}"),
                    created: true,
                },
            );
        }
        let desired_key = gi < r.desired.len();
        let ours = !*scim && (*owned || (!r.mode_real && desired_key));
        if !ours {
            foreign_groups.insert(id);
        }
    }
    let stranger: BTreeSet<String> = r
        .stranger
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| format!("user_u{i}"))
        .collect();
    let g = rbac_group(
        "rbac_group_stranger",
        "Someone else's",
        Some("not-a-rule-key"),
        false,
    );
    w.actual.groups.insert(g.id.clone(), g);
    w.actual
        .members
        .insert("rbac_group_stranger".into(), stranger);
    foreign_groups.insert("rbac_group_stranger".into());
    w.ownership.membership_count = w.ownership.memberships.len();
    (w, foreign_users, foreign_groups)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_action_ever_targets_a_foreign_object(r in random()) {
        let (w, foreign_users, foreign_groups) = build(&r);
        let mode = if r.mode_real { Mode::Real } else { Mode::Extended };
        let p = w.plan(&PlanOptions { force: r.force, ..options(mode) });
        for a in &p.actions {
            match &a.op {
                Op::AddMember { group, user_id, .. } => {
                    prop_assert!(!foreign_users.contains(user_id), "{a:?}");
                    prop_assert!(group.id.as_ref().is_none_or(|g| !foreign_groups.contains(g)), "{a:?}");
                }
                Op::RemoveMember { group, user_id, .. } => {
                    prop_assert!(!foreign_users.contains(user_id), "{a:?}");
                    prop_assert!(group.id.as_ref().is_none_or(|g| !foreign_groups.contains(g)), "{a:?}");
                }
                Op::UpdateGroup { group, .. }
                | Op::SetGroupRoles { group, .. }
                | Op::SetGroupSpend { group, .. }
                | Op::ClearGroupSpend { group, .. }
                | Op::DeleteGroup { group, .. } => {
                    prop_assert!(group.id.as_ref().is_none_or(|g| !foreign_groups.contains(g)), "{a:?}");
                }
                Op::SetUserRole { user_id, .. } | Op::SetUserSpend { user_id, .. } => {
                    prop_assert!(!foreign_users.contains(user_id), "{a:?}");
                }
                Op::SetPluginPolicy { overrides, keep, .. } => {
                    prop_assert!(overrides.iter().all(|o| o.group.id.as_ref().is_none_or(|g| !foreign_groups.contains(g))));
                    // Foreign groups' overrides are kept verbatim.
                    prop_assert!(keep.iter().all(|o| foreign_groups.contains(&o.rbac_group_id) || !w.ownership.groups.values().any(|g| g.id == o.rbac_group_id)));
                }
                _ => {}
            }
            if r.mode_real {
                prop_assert!(!a.kind.is_tier_b(), "{a:?}");
            }
        }
        // Deterministic.
        prop_assert_eq!(&w.plan(&PlanOptions { force: r.force, ..options(mode) }), &p);
        // Sorted by kind.
        prop_assert!(p.actions.windows(2).all(|x| x[0].kind <= x[1].kind));
    }

    #[test]
    fn a_downstream_built_from_the_desired_state_plans_nothing(
        groups in prop::collection::vec(prop::collection::btree_set(0usize..30, 0..20), 0..5),
        real in any::<bool>(),
    ) {
        let keys = ["a", "b", "c", "d", "e"];
        let names: Vec<Vec<String>> = groups.iter().map(|s| s.iter().map(|i| format!("u{i}")).collect()).collect();
        let refs: Vec<Vec<&str>> = names.iter().map(|v| v.iter().map(String::as_str).collect()).collect();
        let spec: Vec<(&str, &[&str])> = refs.iter().enumerate().map(|(i, m)| (keys[i], m.as_slice())).collect();
        let mode = if real { Mode::Real } else { Mode::Extended };
        let w = mirror(desired(&spec), mode);
        let p = w.plan(&options(mode));
        prop_assert!(p.actions.is_empty(), "{:?}", p.actions);
        prop_assert!(p.sync.is_empty(), "{:?}", p.sync);
        prop_assert!(p.drift.is_empty(), "{:?}", p.drift);
    }
}
