//! PATCH bodies as Okta, Entra and Microsoft's validator send them.

use super::*;

// ---- Okta ------------------------------------------------------------------

#[test]
fn okta_deactivates_and_reactivates_with_a_pathless_replace() {
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .unwrap();
    assert_eq!(out.document["active"], json!(false));
    assert_eq!(changed(&out), ["active"]);
    let back = user_patch(
        &out.document,
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .unwrap();
    assert_eq!(back.document, user());
}

#[test]
fn okta_group_rename_carrying_the_own_id_is_accepted() {
    let out = group_patch(json!([
        {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Test SCIMv2"}}
    ]))
    .unwrap();
    assert_eq!(out.document["displayName"], "Test SCIMv2");
    assert!(out.document.get("id").is_none());
    assert_eq!(changed(&out), ["displayName"]);
    assert!(out.member_ops.is_empty());
}

#[test]
fn okta_no_op_rename_changes_nothing() {
    let out = group_patch(json!([
        {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Cowork Pilot"}}
    ]))
    .unwrap();
    assert_eq!(out.document, group());
    assert!(out.changed.is_empty());
}

#[test]
fn a_rename_carrying_another_id_is_a_mutability_error() {
    let result = group_patch(json!([
        {"op": "replace", "value": {"id": "other", "displayName": "Test SCIMv2"}}
    ]));
    assert_eq!(scim_type(result), "mutability");
}

#[test]
fn okta_membership_push_becomes_ordered_deltas() {
    let out = group_patch(json!([
        {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
        {"op": "add", "path": "members", "value": [
            {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@example.com"}
        ]}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![
            MemberOp::Remove(vec!["89bb1940-b905-4575-9e7f-6f887cfb368e".into()]),
            MemberOp::Add(vec![MemberRef {
                display: Some("test.user@example.com".into()),
                ..member("23a35c27-23d3-4c03-b4c5-6443c09e7173")
            }]),
        ]
    );
    assert_eq!(out.document, group());
    assert_eq!(changed(&out), ["members"]);
}

#[test]
fn okta_full_members_replace_becomes_a_replace_delta() {
    let out = group_patch(json!([
        {"op": "replace", "path": "members", "value": [
            {"value": "u1", "display": "a@example.com"},
            {"value": "g1", "type": "Group"}
        ]}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![MemberOp::Replace(vec![
            MemberRef {
                display: Some("a@example.com".into()),
                ..member("u1")
            },
            MemberRef {
                value: "g1".into(),
                kind: Some(MemberKind::Group),
                display: None,
            }
        ])]
    );
    let out = group_patch(json!([{"op": "replace", "path": "members", "value": []}])).unwrap();
    assert_eq!(out.member_ops, vec![MemberOp::Replace(vec![])]);
}

// ---- Entra -----------------------------------------------------------------

#[test]
fn entra_capitalised_ops_replace_work_email_and_family_name() {
    let out = user_patch(
        &user(),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@example.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
    )
    .unwrap();
    assert_eq!(
        out.document["emails"][0],
        json!({"value": "updated@example.com", "type": "work", "primary": true})
    );
    assert_eq!(out.document["emails"][1]["value"], "babs@example.com");
    assert_eq!(
        out.document["name"],
        json!({"givenName": "Barbara", "familyName": "updatedFamilyName"})
    );
    assert_eq!(changed(&out), ["emails", "name"]);
}

#[test]
fn entra_string_booleans_disable_and_enable() {
    let out = user_patch(
        &user(),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .unwrap();
    assert_eq!(out.document["active"], json!(false));
    let out = user_patch(
        &out.document,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .unwrap();
    assert_eq!(out.document["active"], json!(true));
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .unwrap();
    assert_eq!(out.document["active"], json!(false));
}

#[test]
fn entra_aadoptscim062020_pathless_replace_takes_dotted_and_urn_keys() {
    let out = user_patch(
        &plain_user(),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@example.com"},
            {"op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }}
        ]),
    )
    .unwrap();
    let doc = &out.document;
    assert_eq!(
        doc["emails"],
        json!([{"type": "work", "value": "TestMhvaes@example.com"}])
    );
    assert_eq!(doc["displayName"], "Bjfe");
    assert_eq!(
        doc["name"],
        json!({"givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(
        doc[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "Aklq"})
    );
    assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert_eq!(
        changed(&out),
        [
            "displayName",
            "emails",
            "name",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
        ]
    );
}

#[test]
fn entra_urn_qualified_path_replaces_an_extension_attribute() {
    let out = user_patch(
        &user(),
        json!([{
            "op": "Replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "value": "42"
        }]),
    )
    .unwrap();
    assert_eq!(out.document[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
    assert_eq!(
        out.document[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "m1"})
    );
}

#[test]
fn entra_manager_as_bare_string_then_removed_with_an_empty_value() {
    let manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let out = user_patch(
        &plain_user(),
        json!([{"op": "add", "path": manager, "value": "2c2f6fb8-8ad4-4b6e-9d3c-1f6c1b1e0a11"}]),
    )
    .unwrap();
    assert_eq!(
        out.document[ENTERPRISE_USER_SCHEMA],
        json!({"manager": {"value": "2c2f6fb8-8ad4-4b6e-9d3c-1f6c1b1e0a11"}})
    );
    assert_eq!(
        out.document["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
    );
    let removed = user_patch(
        &out.document,
        json!([{"op": "replace", "path": manager, "value": {"value": ""}}]),
    )
    .unwrap();
    // The last enterprise attribute is gone: so are the object and the URN.
    assert_eq!(removed.document, plain_user());
    assert_eq!(changed(&removed), [manager]);
}

#[test]
fn entra_manager_in_a_one_element_array_is_accepted() {
    let out = user_patch(
        &user(),
        json!([{"op": "Add", "path": "manager", "value": [
            {"$ref": "https://example.com/scim/v2/Users/00aa", "value": "00aa"}
        ]}]),
    )
    .unwrap();
    // A new manager replaces the old reference rather than merging into it.
    assert_eq!(
        out.document[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"$ref": "https://example.com/scim/v2/Users/00aa", "value": "00aa"})
    );
}

#[test]
fn entra_group_member_add_with_null_ref() {
    let out = group_patch(json!([
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![MemberOp::Add(vec![member("f648f8d5ea4e4cd38e9c")])]
    );
}

#[test]
fn entra_remove_with_a_value_list_removes_those_members() {
    let out = group_patch(json!([
        {"op": "Remove", "path": "members", "value": [
            {"$ref": null, "value": "f648f8d5ea4e4cd38e9c"},
            {"value": "u2"}
        ]}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![MemberOp::Remove(vec![
            "f648f8d5ea4e4cd38e9c".into(),
            "u2".into()
        ])]
    );
}

#[test]
fn members_removed_by_value_filters_joined_with_or() {
    let out = group_patch(json!([
        {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"},
        {"op": "remove", "path": "Members[Value EQ \"c\"]"}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![
            MemberOp::Remove(vec!["a".into(), "b".into()]),
            MemberOp::Remove(vec!["c".into()])
        ]
    );
}

#[test]
fn members_removed_by_another_filter_are_refused_with_invalid_filter() {
    let result = group_patch(json!([{"op": "remove", "path": "members[type eq \"User\"]"}]));
    assert_eq!(scim_type(result), "invalidFilter");
    let result = group_patch(json!([
        {"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}
    ]));
    assert_eq!(scim_type(result), "invalidFilter");
}

#[test]
fn a_large_member_add_is_one_delta_and_leaves_the_document_alone() {
    let members: Vec<Value> = (0..5000)
        .map(|i| json!({"value": format!("u{i}")}))
        .collect();
    let out = group_patch(json!([
        {"op": "add", "path": "members", "value": members},
        {"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
    ]))
    .unwrap();
    assert_eq!(out.document, group());
    assert!(matches!(&out.member_ops[0], MemberOp::Add(list) if list.len() == 5000));
    assert_eq!(
        out.member_ops[1],
        MemberOp::Remove(vec!["u1".into(), "u2".into()])
    );
}

#[test]
fn removing_members_without_a_value_removes_all() {
    let out = group_patch(json!([{"op": "remove", "path": "members"}])).unwrap();
    assert_eq!(out.member_ops, vec![MemberOp::RemoveAll]);
}

#[test]
fn pathless_members_become_add_and_replace_deltas() {
    let out = group_patch(json!([
        {"op": "add", "value": {"members": [{"value": "u1"}]}},
        {"op": "replace", "value": {"members": [{"value": "u2"}], "displayName": "Renamed"}}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![
            MemberOp::Add(vec![member("u1")]),
            MemberOp::Replace(vec![member("u2")])
        ]
    );
    assert_eq!(out.document["displayName"], "Renamed");
    assert_eq!(changed(&out), ["displayName", "members"]);
}

#[test]
fn member_display_is_ignored_and_member_values_are_immutable() {
    let out = group_patch(json!([
        {"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"},
        {"op": "replace", "path": "members.display", "value": "x"}
    ]))
    .unwrap();
    assert!(out.member_ops.is_empty());
    assert!(out.changed.is_empty());
    let result = group_patch(json!([
        {"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}
    ]));
    assert_eq!(scim_type(result), "mutability");
    let result = group_patch(json!([
        {"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}
    ]));
    assert_eq!(scim_type(result), "mutability");
}

#[test]
fn ms_validator_empty_operations_is_a_no_op() {
    let out = patch(ResourceKind::User, &user(), ops(json!([]))).unwrap();
    assert_eq!(out.document, user());
    assert!(out.changed.is_empty());
    assert!(out.member_ops.is_empty());
}

#[test]
fn ms_validator_add_then_remove_of_one_member_keeps_the_order() {
    let out = group_patch(json!([
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "members[value eq \"u1\"]"}
    ]))
    .unwrap();
    assert_eq!(
        out.member_ops,
        vec![
            MemberOp::Add(vec![member("u1")]),
            MemberOp::Remove(vec!["u1".into()])
        ]
    );
}

#[test]
fn ms_validator_group_replace_attributes_and_add_member_name_key() {
    let out = group_patch(json!([
        {"op": "replace", "value": {"externalId": "new-ext"}},
        {"op": "Add", "path": "members", "name": "addMember", "value": [{"value": "u1"}]}
    ]))
    .unwrap();
    assert_eq!(out.document["externalId"], "new-ext");
    assert_eq!(out.member_ops, vec![MemberOp::Add(vec![member("u1")])]);
    assert_eq!(changed(&out), ["externalId", "members"]);
}

#[test]
fn ms_validator_multiple_ops_on_one_attribute_apply_in_order() {
    let out = user_patch(
        &plain_user(),
        json!([
            {"op": "add", "path": "title", "value": "Engineer"},
            {"op": "replace", "path": "title", "value": "Manager"},
            {"op": "add", "path": "nickName", "value": "Babs"},
            {"op": "remove", "path": "nickName"}
        ]),
    )
    .unwrap();
    assert_eq!(out.document["title"], "Manager");
    assert!(out.document.get("nickName").is_none());
    assert_eq!(changed(&out), ["title"]);
}
