//! Groups on both backends: member deltas, full replaces, unknown members, nesting, renames and deletes.

use super::*;

#[test]
fn group_patches_apply_member_deltas_both_ways() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let b = user(&f.dir, "bob@example.com");
        let c = user(&f.dir, "carol@example.com");
        let g = group(&f.dir, "Cowork Pilot", &[&a]);
        // Okta's membership push: one remove by filter and one add in one request.
        patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([
                {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
                {"op": "add", "path": "members", "value": [{"value": b, "display": "bob@example.com"}, {"value": c}]}
            ]),
        )
        .unwrap();
        let mut expected = vec![b.clone(), c.clone()];
        expected.sort();
        assert_eq!(member_ids(&f.dir, &g), expected, "{}", f.name);
        assert_eq!(f.dir.member_of(&b).unwrap(), vec![g.clone()]);
        assert!(f.dir.member_of(&a).unwrap().is_empty());
        // Entra's remove with a value list, and re-adding an existing member.
        patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([
                {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": c}]},
                {"op": "Add", "path": "members", "value": [{"$ref": null, "value": b}]}
            ]),
        )
        .unwrap();
        assert_eq!(member_ids(&f.dir, &g), vec![b.clone()], "{}", f.name);
        let rendered = get(&f.dir, ResourceKind::Group, &g);
        assert_eq!(rendered["members"][0]["display"], "bob@example.com");
        assert_eq!(rendered["members"][0]["type"], "User");
        assert_eq!(
            rendered["members"][0]["$ref"],
            format!("https://sync.example.com/scim/v2/Users/{b}")
        );
        let bob = get(&f.dir, ResourceKind::User, &b);
        assert_eq!(bob["groups"][0]["value"], g.as_str());
        assert_eq!(bob["groups"][0]["display"], "Cowork Pilot");
        assert_eq!(bob["groups"][0]["type"], "direct");
        assert_eq!(
            f.dir
                .record(ResourceKind::Group, &g)
                .unwrap()
                .unwrap()
                .member_count,
            1
        );
        assert_eq!(f.dir.counts().unwrap().2, 1);
    }
}

#[test]
fn full_member_replace_and_put_compute_the_difference() {
    for f in fixtures() {
        let ids: Vec<String> = (0..5)
            .map(|i| user(&f.dir, &format!("u{i}@example.com")))
            .collect();
        let g = group(&f.dir, "Finance", &[&ids[0], &ids[1], &ids[2]]);
        patch(&f.dir, ResourceKind::Group, &g, json!([{"op": "replace", "path": "members", "value": [{"value": ids[2]}, {"value": ids[3]}]}])).unwrap();
        let mut want = vec![ids[2].clone(), ids[3].clone()];
        want.sort();
        assert_eq!(member_ids(&f.dir, &g), want, "{}", f.name);
        let entry = crate::audit::list(f.dir.store().as_ref(), None, 0, usize::MAX)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(entry.details["members_added"], 1);
        assert_eq!(entry.details["members_removed"], 2);
        // PUT without members empties the group (RFC 7644 §3.5.1).
        f.dir
            .replace(
                caller(),
                ResourceKind::Group,
                &g,
                json!({"displayName": "Finance"}),
                &Precondition::default(),
            )
            .unwrap();
        assert!(member_ids(&f.dir, &g).is_empty());
        assert_eq!(f.dir.counts().unwrap().2, 0);
    }
}

#[test]
fn an_add_and_remove_of_the_same_member_in_one_request_is_no_change() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let g = group(&f.dir, "Ops", &[]);
        let version = f
            .dir
            .record(ResourceKind::Group, &g)
            .unwrap()
            .unwrap()
            .version;
        let w = patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([
                {"op": "add", "path": "members", "value": [{"value": a}]},
                {"op": "remove", "path": format!("members[value eq \"{a}\"]")}
            ]),
        )
        .unwrap();
        assert!(!w.changed, "{}", f.name);
        assert!(member_ids(&f.dir, &g).is_empty());
        assert_eq!(
            f.dir
                .record(ResourceKind::Group, &g)
                .unwrap()
                .unwrap()
                .version,
            version
        );
    }
}

#[test]
fn unknown_member_ids_are_skipped_and_audited_by_default() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let g = group(&f.dir, "Ops", &[]);
        let w = patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([
                {"op": "add", "path": "members", "value": [{"value": a}, {"value": "no-such-user"}]}
            ]),
        )
        .unwrap();
        assert!(w.changed);
        assert_eq!(member_ids(&f.dir, &g), vec![a.clone()], "{}", f.name);
        let entry = crate::audit::list(f.dir.store().as_ref(), None, 0, usize::MAX)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(entry.details["unknown_members"], 1);
        assert_eq!(entry.details["unknown_member_ids"], json!(["no-such-user"]));
        // Removing an unknown id is simply idempotent.
        let w = patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]),
        )
        .unwrap();
        assert!(!w.changed);
    }
}

#[test]
fn unknown_member_ids_are_refused_whole_in_strict_mode() {
    for f in fixtures_with(UnknownMembers::Reject) {
        let a = user(&f.dir, ALICE);
        let g = group(&f.dir, "Ops", &[]);
        let err = patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([
                {"op": "add", "path": "members", "value": [{"value": a}, {"value": "no-such-user"}]}
            ]),
        )
        .unwrap_err();
        match err {
            DirectoryError::Scim(ScimError::InvalidValue(d)) => {
                assert!(d.contains("no-such-user"), "{d}")
            }
            other => panic!("{other:?}"),
        }
        assert!(member_ids(&f.dir, &g).is_empty(), "{}", f.name);
    }
}

#[test]
fn deleting_a_user_removes_it_from_every_group() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let b = user(&f.dir, "bob@example.com");
        let g1 = group(&f.dir, "One", &[&a, &b]);
        let g2 = group(&f.dir, "Two", &[&a]);
        f.dir
            .delete(caller(), ResourceKind::User, &a, &Precondition::default())
            .unwrap();
        assert_eq!(member_ids(&f.dir, &g1), vec![b.clone()], "{}", f.name);
        assert!(member_ids(&f.dir, &g2).is_empty());
        assert_eq!(
            f.dir
                .record(ResourceKind::Group, &g1)
                .unwrap()
                .unwrap()
                .member_count,
            1
        );
        assert_eq!(f.dir.counts().unwrap().2, 1);
    }
}

#[test]
fn nested_groups_render_indirect_memberships_and_delete_cleanly() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let inner = group(&f.dir, "Inner", &[&a]);
        let outer = group(&f.dir, "Outer", &[&inner]);
        let alice = get(&f.dir, ResourceKind::User, &a);
        let groups = alice["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{}", f.name);
        assert!(groups
            .iter()
            .any(|g| g["value"] == outer.as_str() && g["type"] == "indirect"));
        assert_eq!(
            f.dir
                .transitive_users(&outer)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![a.clone()]
        );
        f.dir
            .delete(
                caller(),
                ResourceKind::Group,
                &inner,
                &Precondition::default(),
            )
            .unwrap();
        assert!(member_ids(&f.dir, &outer).is_empty());
        assert!(f.dir.member_of(&a).unwrap().is_empty());
    }
}

#[test]
fn renaming_a_group_updates_its_members_views() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let g = group(&f.dir, "Old name", &[&a]);
        patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([{"op": "replace", "value": {"id": g, "displayName": "New name"}}]),
        )
        .unwrap();
        assert_eq!(
            get(&f.dir, ResourceKind::User, &a)["groups"][0]["display"],
            "New name",
            "{}",
            f.name
        );
        assert_eq!(
            list(
                &f.dir,
                ResourceKind::Group,
                &[("filter", "displayName eq \"new NAME\"")]
            )["totalResults"],
            1
        );
        assert_eq!(
            list(
                &f.dir,
                ResourceKind::Group,
                &[("filter", "displayName eq \"Old name\"")]
            )["totalResults"],
            0
        );
        // Okta repeats the rename on every push: no change, no audit entry.
        let before = audit_actions(&f.dir).len();
        let w = patch(
            &f.dir,
            ResourceKind::Group,
            &g,
            json!([{"op": "replace", "value": {"id": g, "displayName": "New name"}}]),
        )
        .unwrap();
        assert!(!w.changed);
        assert_eq!(audit_actions(&f.dir).len(), before);
    }
}
