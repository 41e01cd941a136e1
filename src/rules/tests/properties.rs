//! Property tests: resolution is deterministic and revocation is complete over random directories.

use super::*;

// ------------------------------------------------------------ properties

/// Users (active, department), groups (member users, nested groups), rules (target, preference, role).
type World = (
    Vec<(bool, u8)>,
    Vec<(Vec<usize>, Vec<usize>)>,
    Vec<(u8, u8, u8)>,
);

/// A random directory of up to 12 users and 6 groups (nesting with cycles allowed) and a
/// table whose rules match groups by display name, id or externalId, or a department.
fn arb_world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec((any::<bool>(), 0u8..3), 1..12),
        prop::collection::vec(
            (
                prop::collection::vec(0usize..12, 0..6),
                prop::collection::vec(0usize..6, 0..3),
            ),
            1..6,
        ),
        prop::collection::vec((0u8..8, 0u8..4, 0u8..3), 1..7),
    )
}

fn world_table(rules: &[(u8, u8, u8)]) -> String {
    let mut text = String::from(
        r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, skills = true }
connectors = ["mcpsrv_github"]
plugins = ["p"]
connector_tools_default_always_allow = true

[roles.r0]
name = "R0"
capabilities = { chat = true }
connectors = { mcpsrv_github = "needs_approval" }
[roles.r1]
name = "R1"
capabilities = { cowork = true }
connectors = { mcpsrv_github = "always_allow" }
[roles.r2]
name = "R2"
capabilities = { all = "all" }
"#,
    );
    let prefs = [
        "not_available",
        "available",
        "installed_by_default",
        "required",
    ];
    for (i, (target, pref, rl)) in rules.iter().enumerate() {
        let matcher = match target % 8 {
            6 => format!("filter = 'department eq \"D{}\"'", rl),
            7 => format!("group = \"ext-g{}\"", rl),
            n => format!("group = \"GROUP {n}\""),
        };
        // One downstream group per rule, so shared keys never conflict (R7).
        text.push_str(&format!(
            "[[rules]]\nid = \"rule{i}\"\npriority = {}\nmatch = {{ {matcher} }}\ngroup = {{ key = \"k{i}\", name = \"K{i}\" }}\nroles = [\"r{rl}\"]\nspend = {{ monthly = {} }}\nplugins = {{ p = \"{}\" }}\n",
            i % 3,
            1000 * (*pref as u64 + 1),
            prefs[*pref as usize]
        ));
    }
    text
}

fn world(users: &[(bool, u8)], groups: &[(Vec<usize>, Vec<usize>)]) -> Snapshot {
    Snapshot {
        users: users
            .iter()
            .enumerate()
            .map(|(i, (active, dept))| SnapshotUser {
                id: format!("u{i}"),
                user_name: format!("u{i}@example.com"),
                active: *active,
                email: Some(format!("u{i}@example.com")),
                attributes: json!({ "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": format!("D{dept}") } }),
            })
            .collect(),
        groups: groups
            .iter()
            .enumerate()
            .map(|(j, (members, nested))| SnapshotGroup {
                id: format!("g{j}"),
                external_id: Some(format!("ext-g{j}")),
                display_name: format!("Group {j}"),
                member_users: members
                    .iter()
                    .filter(|m| **m < users.len())
                    .map(|m| format!("u{m}"))
                    .collect(),
                member_groups: nested
                    .iter()
                    .filter(|n| **n < groups.len())
                    .map(|n| format!("g{n}"))
                    .collect(),
            })
            .collect(),
    }
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn resolution_is_independent_of_input_order((users, groups, rules) in arb_world(), seed in any::<u64>()) {
        let table = load(&world_table(&rules));
        let snap = world(&users, &groups);
        let expected = resolve(&table, &snap);

        let mut file = table.file().clone();
        file.rules = shuffled(&file.rules, seed);
        let table2 = validate(file).unwrap();
        let mut snap2 = snap.clone();
        snap2.users = shuffled(&snap2.users, seed.rotate_left(7));
        snap2.groups = shuffled(&snap2.groups, seed.rotate_left(13));
        for (i, g) in snap2.groups.iter_mut().enumerate() {
            g.member_users = shuffled(&g.member_users, seed ^ i as u64);
            g.member_groups = shuffled(&g.member_groups, seed.rotate_right(3) ^ i as u64);
        }
        let again = resolve(&table2, &snap2);
        prop_assert_eq!(&again, &expected);
        for u in &snap.users {
            prop_assert_eq!(explain(&table2, &snap2, &u.id), explain(&table, &snap, &u.id));
        }
    }

    #[test]
    fn explain_agrees_with_resolution((users, groups, rules) in arb_world()) {
        let table = load(&world_table(&rules));
        let snap = world(&users, &groups);
        let desired = resolve(&table, &snap);
        for u in &snap.users {
            let a = effective_access(&table, &snap, &u.id).unwrap();
            let in_groups: BTreeSet<String> = desired
                .groups
                .values()
                .filter(|g| g.members.contains(&u.id))
                .map(|g| g.key.clone())
                .collect();
            prop_assert_eq!(&a.groups, &in_groups);
            prop_assert_eq!(a.governed, desired.managed_users.contains_key(&u.id));
            if !u.active {
                prop_assert!(!a.governed);
            }
        }
    }

    #[test]
    fn removing_a_user_from_every_matching_idp_group_removes_every_grant(
        (users, groups, rules) in arb_world(),
        pick in any::<prop::sample::Index>(),
    ) {
        // Group rules only: filters match on attributes, not on IdP groups.
        let rules: Vec<_> = rules.into_iter().filter(|r| r.0 % 8 != 6).collect();
        prop_assume!(!rules.is_empty());
        let table = load(&world_table(&rules));
        let mut snap = world(&users, &groups);
        let victim = snap.users[pick.index(snap.users.len())].id.clone();
        for g in &mut snap.groups {
            g.member_users.retain(|m| *m != victim);
        }
        let desired = resolve(&table, &snap);
        prop_assert!(desired.groups.values().all(|g| !g.members.contains(&victim)));
        prop_assert!(!desired.managed_users.contains_key(&victim));
        let a = effective_access(&table, &snap, &victim).unwrap();
        prop_assert!(!a.governed);
        prop_assert!(a.roles.is_empty());
        prop_assert!(a.capabilities.values().all(|v| !v));
        prop_assert!(a.connectors.values().all(|c| c.default == ConnectorMode::Deny && c.tools.is_empty()));
        prop_assert_eq!(a.monthly_spend, None);
        prop_assert!(a.admin_permissions.is_empty());
    }

    #[test]
    fn a_team_plan_table_never_yields_roles(with_role in any::<bool>(), with_rule in any::<bool>(), (users, groups, _) in arb_world()) {
        let mut text = String::from("[org]\nplan = \"team\"\nbilling_currency = \"USD\"\n");
        if with_role {
            text.push_str("[roles.r]\nname = \"R\"\n");
        }
        if with_rule {
            text.push_str("[[rules]]\nid = \"a\"\nmatch = { group = \"Group 0\" }\ngroup = { key = \"a\", name = \"A\" }\n");
        }
        match load_rule_file(&text) {
            Ok(table) => {
                prop_assert!(!with_role && !with_rule);
                let d = resolve(&table, &world(&users, &groups));
                prop_assert!(d.roles.is_empty());
                prop_assert!(d.groups.is_empty());
                prop_assert!(d.managed_users.is_empty());
            }
            Err(errs) => {
                prop_assert!(with_role || with_rule);
                prop_assert!(errs.iter().all(|e| e.code == ErrorCode::PlanNotSupported));
            }
        }
    }
}
