//! Tests of `scim::patch`.
use super::*;
use crate::scim::members::{MemberKind, MemberRef};
use crate::scim::schema::{
    ResourceKind, SchemaRegistry, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA,
    USER_SCHEMA,
};
use crate::scim::unknown::UnknownAttributes;
use crate::scim::ScimError;
use proptest::prelude::*;
use serde_json::{json, Map};

const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
const GROUP_ID: &str = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b";

fn reg() -> SchemaRegistry {
    SchemaRegistry::builtin().unwrap()
}

fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "externalId": "00ujl29u0le5T6Aj10h7",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@example.com", "type": "home"}
        ],
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "m1"}}
    })
}

fn plain_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": "test.user@example.com",
        "active": true
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "externalId": "8aa1a0c0",
        "displayName": "Cowork Pilot"
    })
}

fn patch(kind: ResourceKind, doc: &Value, body: Value) -> Result<PatchOutcome, ScimError> {
    let r = reg();
    let id = match kind {
        ResourceKind::User => USER_ID,
        ResourceKind::Group => GROUP_ID,
    };
    let request = parse(&r, kind, body, UnknownAttributes::Reject)?;
    apply(&r, kind, id, doc, &request)
}

/// A user PATCH under `unknown_attributes = "ignore"`.
fn lenient_user_patch(doc: &Value, operations: Value) -> Result<PatchOutcome, ScimError> {
    let r = reg();
    let request = parse(
        &r,
        ResourceKind::User,
        ops(operations),
        UnknownAttributes::Ignore,
    )?;
    apply(&r, ResourceKind::User, USER_ID, doc, &request)
}

#[test]
fn more_operations_than_the_bound_are_too_many() {
    let one = json!({"op": "replace", "path": "displayName", "value": "x"});
    let at_bound: Vec<Value> = vec![one.clone(); MAX_OPERATIONS];
    assert!(user_patch(&plain_user(), Value::Array(at_bound)).is_ok());
    let over: Vec<Value> = vec![one; MAX_OPERATIONS + 1];
    assert_eq!(
        scim_type(user_patch(&plain_user(), Value::Array(over))),
        "tooMany"
    );
}

#[test]
fn a_multi_valued_attribute_may_not_grow_past_its_bound() {
    use crate::scim::value::MAX_VALUES;
    // Entra's work-email form, one new type per operation: refused past the bound.
    let adds: Vec<Value> = (0..=MAX_VALUES)
        .map(|i| {
            json!({"op": "add", "path": format!("emails[type eq \"w{i}\"].value"),
                   "value": format!("u{i}@example.com")})
        })
        .collect();
    assert_eq!(
        scim_type(user_patch(
            &plain_user(),
            Value::Array(adds[..MAX_VALUES + 1].to_vec())
        )),
        "invalidValue"
    );
    let out = user_patch(&plain_user(), Value::Array(adds[..MAX_VALUES].to_vec())).unwrap();
    assert_eq!(out.document["emails"].as_array().unwrap().len(), MAX_VALUES);
    // A whole-array add past the bound, too.
    let many: Vec<Value> = (0..=MAX_VALUES)
        .map(|i| json!({"value": format!("v{i}@example.com")}))
        .collect();
    assert_eq!(
        scim_type(user_patch(
            &plain_user(),
            json!([{"op": "add", "path": "emails", "value": many}])
        )),
        "invalidValue"
    );
}

#[test]
fn repeated_adds_of_present_values_keep_one_copy_and_the_rest_of_the_document() {
    let out = user_patch(
        &user(),
        json!([
            {"op": "add", "path": "emails", "value": [{"value": "babs@example.com", "type": "home"}]},
            {"op": "add", "path": "emails", "value": [{"value": "new@example.com"}, {"value": "new@example.com"}]},
            {"op": "remove", "path": "emails", "value": [{"value": "nobody@example.com"}]},
            {"op": "add", "path": "phoneNumbers", "value": null}
        ]),
    )
    .unwrap();
    let emails = out.document["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3, "{emails:?}");
    assert_eq!(out.document["userName"], user()["userName"]);
}

fn ops(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
}

fn user_patch(doc: &Value, operations: Value) -> Result<PatchOutcome, ScimError> {
    patch(ResourceKind::User, doc, ops(operations))
}

fn group_patch(operations: Value) -> Result<PatchOutcome, ScimError> {
    patch(ResourceKind::Group, &group(), ops(operations))
}

fn scim_type(result: Result<PatchOutcome, ScimError>) -> &'static str {
    result.unwrap_err().scim_type().unwrap_or("none")
}

fn changed(out: &PatchOutcome) -> Vec<&str> {
    out.changed.iter().map(String::as_str).collect()
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: None,
        display: None,
    }
}

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

// ---- RFC 7644 §3.5.2 examples ----------------------------------------------

#[test]
fn rfc_pathless_add_appends_an_email_and_sets_a_nickname() {
    let out = user_patch(
        &user(),
        json!([{"op": "add", "value": {
            "emails": [{"value": "babs@example.com", "type": "home"}, {"value": "b@example.com", "type": "other"}],
            "nickname": "Babs"
        }}]),
    )
    .unwrap();
    let emails = out.document["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3, "an equal value is not duplicated");
    assert_eq!(emails[2]["value"], "b@example.com");
    assert_eq!(out.document["nickName"], "Babs");
}

#[test]
fn rfc_add_member_and_replace_member() {
    let out = group_patch(json!([
        {"op": "add", "path": "members", "value": [{
            "display": "Babs Jensen",
            "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "value": "2819c223-7f76-453a-919d-413861904646"
        }]},
        {"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"},
        {"op": "add", "path": "members", "value": [{"value": "902c246b-6245-4190-8e05-00816be7344a"}]}
    ]))
    .unwrap();
    assert_eq!(out.member_ops.len(), 3);
}

#[test]
fn rfc_replace_matching_elements_and_their_sub_attributes() {
    let doc = json!({
        "schemas": [USER_SCHEMA],
        "userName": "bjensen@example.com",
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"},
            {"type": "home", "streetAddress": "456 Hollywood Blvd"}
        ]
    });
    let out = user_patch(
        &doc,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["addresses"][0],
        json!({"type": "work", "streetAddress": "1010 Broadway Ave", "locality": "Hollywood"})
    );
    let out = user_patch(
        &doc,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
            "type": "work", "streetAddress": "911 Universal City Plaza", "primary": true
        }}]),
    )
    .unwrap();
    assert_eq!(
        out.document["addresses"][0],
        json!({"type": "work", "streetAddress": "911 Universal City Plaza", "primary": true})
    );
    assert_eq!(out.document["addresses"][1]["type"], "home");
}

#[test]
fn rfc_pathless_replace_replaces_emails_and_merges_name() {
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "value": {
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "name": {"middleName": "Jane"}
        }}]),
    )
    .unwrap();
    assert_eq!(out.document["emails"].as_array().unwrap().len(), 1);
    assert_eq!(
        out.document["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"})
    );
}

#[test]
fn rfc_remove_by_complex_filter_and_whole_attribute() {
    let out = user_patch(
        &user(),
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["emails"],
        json!([{"value": "babs@example.com", "type": "home"}])
    );
    let out = user_patch(&user(), json!([{"op": "remove", "path": "emails"}])).unwrap();
    assert!(out.document.get("emails").is_none());
    let out = user_patch(
        &user(),
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}, {"op": "remove", "path": "emails[type eq \"work\"]"}]),
    )
    .unwrap();
    assert!(
        out.document.get("emails").is_none(),
        "an emptied array is unassigned"
    );
}

#[test]
fn remove_of_a_sub_attribute_from_matching_elements() {
    let out = user_patch(
        &user(),
        json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["emails"][0],
        json!({"value": "bjensen@example.com", "type": "work"})
    );
    let out = user_patch(&user(), json!([{"op": "remove", "path": "name.givenName"}])).unwrap();
    assert_eq!(out.document["name"], json!({"familyName": "Jensen"}));
}

#[test]
fn remove_with_a_filter_matching_nothing_is_idempotent() {
    let out = user_patch(
        &user(),
        json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
    )
    .unwrap();
    assert_eq!(out.document, user());
    assert!(out.changed.is_empty());
}

#[test]
fn a_work_email_is_created_when_the_filter_matches_nothing() {
    let out = user_patch(
        &plain_user(),
        json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["emails"],
        json!([{"type": "work", "value": "new@example.com"}])
    );
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\" and primary eq true].value", "value": "555-0100"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["phoneNumbers"],
        json!([{"type": "mobile", "primary": true, "value": "555-0100"}])
    );
}

#[test]
fn entra_single_app_role_uses_a_string_boolean_filter() {
    let out = user_patch(
        &plain_user(),
        json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["roles"],
        json!([{"primary": true, "value": "Admin"}])
    );
    let out = user_patch(
        &out.document,
        json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "User"}]),
    )
    .unwrap();
    assert_eq!(
        out.document["roles"],
        json!([{"primary": true, "value": "User"}])
    );
}

#[test]
fn setting_primary_clears_it_on_the_other_values() {
    let out = user_patch(
        &user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}]),
    )
    .unwrap();
    let emails = &out.document["emails"];
    assert_eq!(emails[0]["primary"], json!(false));
    assert_eq!(emails[2]["primary"], json!(true));
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
    )
    .unwrap();
    assert_eq!(out.document["emails"][0]["primary"], json!(false));
    assert_eq!(out.document["emails"][1]["primary"], json!(true));
    let result = user_patch(
        &user(),
        json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}
        ]}]),
    );
    assert_eq!(scim_type(result), "invalidValue");
}

#[test]
fn extension_urn_as_a_path_or_key_takes_an_object() {
    let out = user_patch(
        &plain_user(),
        json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: {"department": "Finance", "Manager": {"Value": "m9"}}}}]),
    )
    .unwrap();
    assert_eq!(
        out.document[ENTERPRISE_USER_SCHEMA],
        json!({"department": "Finance", "manager": {"value": "m9"}})
    );
    let out = user_patch(
        &out.document,
        json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
    )
    .unwrap();
    assert_eq!(out.document, plain_user());
}

#[test]
fn capitalised_attribute_names_are_canonicalised() {
    let out = user_patch(
        &plain_user(),
        json!([{"op": "Replace", "value": {"DisplayName": "Babs", "Active": "False", "Department": "Ops"}}]),
    )
    .unwrap();
    assert_eq!(out.document["displayName"], "Babs");
    assert_eq!(out.document["active"], json!(false));
    assert_eq!(out.document[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
}

#[test]
fn password_is_accepted_and_never_stored() {
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "value": {"password": "1mz050nq"}}, {"op": "replace", "path": "password", "value": "x"}]),
    )
    .unwrap();
    assert_eq!(out.document, user());
    assert!(out.changed.is_empty());
}

#[test]
fn pathless_meta_and_schemas_are_ignored_as_echoes() {
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "value": {
            "schemas": [USER_SCHEMA], "meta": {"resourceType": "User"}, "title": "Boss"
        }}]),
    )
    .unwrap();
    assert_eq!(
        out.document["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
    );
    assert!(out.document.get("meta").is_none());
    assert_eq!(changed(&out), ["title"]);
}

#[test]
fn a_missing_schemas_member_is_tolerated() {
    let out = patch(
        ResourceKind::User,
        &user(),
        json!({"Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}),
    )
    .unwrap();
    assert_eq!(out.document["title"], "Boss");
}

// ---- errors ------------------------------------------------------------------

#[test]
fn malformed_bodies_are_invalid_syntax() {
    let r = reg();
    for body in [
        json!([]),
        json!({"schemas": [PATCH_OP_SCHEMA]}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {}}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}),
        ops(json!(["add"])),
        ops(json!([{"path": "title", "value": "x"}])),
        ops(json!([{"op": "upsert", "path": "title", "value": "x"}])),
    ] {
        let err = parse(&r, ResourceKind::User, body, UnknownAttributes::Reject).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"), "{err:?}");
    }
}

#[test]
fn operations_on_unknown_attributes_are_no_ops_when_ignored() {
    for path in [
        "nosuch",
        "name.nosuch",
        "emails[type eq \"work\"].nosuch",
        "urn:example:unknown:1.0:User:thing",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize",
    ] {
        for op in ["add", "replace", "remove"] {
            let out = lenient_user_patch(
                &user(),
                json!([{"op": op, "path": path, "value": "secret-value"}]),
            )
            .unwrap_or_else(|e| panic!("{op} {path}: {e:?}"));
            assert_eq!(out.document, user(), "{op} {path}");
            assert!(out.changed.is_empty(), "{op} {path}");
            assert_eq!(out.unknown.count(), 1, "{op} {path}");
        }
    }
    // The other operations of the request still apply; names are kept, values never.
    let out = lenient_user_patch(
        &user(),
        json!([
            {"op": "replace", "path": "adreses", "value": "secret-value"},
            {"op": "replace", "path": "displayName", "value": "Barbara"},
            {"op": "add", "value": {"title": "Eng", "shoeSize": 42, "name": {"nickName": "B"}}},
            {"op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": {"department": "Ops", "costCentre": "9"}},
            {"op": "add", "path": "emails", "value": [{"value": "c@example.com", "labell": "x"}]}
        ]),
    )
    .unwrap();
    assert_eq!(out.document["displayName"], "Barbara");
    assert_eq!(out.document["title"], "Eng");
    assert_eq!(out.document[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    assert_eq!(out.document["emails"][2], json!({"value": "c@example.com"}));
    assert!(out.document.get("shoeSize").is_none());
    assert_eq!(
        out.unknown.names(),
        [
            "adreses",
            "name.nickName",
            "shoeSize",
            &format!("{ENTERPRISE_USER_SCHEMA}:costCentre"),
            "emails.labell"
        ]
    );
    // Malformed paths and filters stay errors: only undeclared names are dropped.
    for path in [
        "emails[type eq \"work\"",
        "emails[nosuch eq \"work\"]",
        "1abc",
    ] {
        let result = lenient_user_patch(
            &user(),
            json!([{"op": "replace", "path": path, "value": "x"}]),
        );
        assert_eq!(scim_type(result), "invalidPath", "{path}");
    }
}

#[test]
fn unknown_or_malformed_paths_are_invalid_path() {
    for path in [
        "nosuch",
        "name.nosuch",
        "emails[type eq \"work\"",
        "emails[type eq \"work\"]value",
        "emails[nosuch eq \"work\"]",
        "emails[type eq]",
        "name[givenName eq \"x\"]",
        "emails[type eq \"work\"].nosuch",
        "urn:example:unknown:1.0:User:thing",
        "1abc",
    ] {
        let result = user_patch(
            &user(),
            json!([{"op": "replace", "path": path, "value": "x"}]),
        );
        assert_eq!(scim_type(result), "invalidPath", "{path}");
    }
    let result = user_patch(&user(), json!([{"op": "replace", "value": {"nosuch": 1}}]));
    assert_eq!(scim_type(result), "invalidPath");
    let result = group_patch(json!([{"op": "add", "path": "userName", "value": "x"}]));
    assert_eq!(scim_type(result), "invalidPath");
}

#[test]
fn read_only_targets_are_mutability_errors() {
    for operation in [
        json!({"op": "replace", "path": "id", "value": "other"}),
        json!({"op": "remove", "path": "id"}),
        json!({"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"}),
        json!({"op": "add", "path": "groups", "value": [{"value": "g1"}]}),
        json!({"op": "replace", "value": {"groups": []}}),
        json!({"op": "replace", "path": "manager.displayName", "value": "Boss"}),
    ] {
        let result = user_patch(&user(), json!([operation.clone()]));
        assert_eq!(scim_type(result), "mutability", "{operation}");
    }
    // The resource's own id is an echo, not a change.
    let out = user_patch(
        &user(),
        json!([{"op": "replace", "path": "id", "value": USER_ID}]),
    )
    .unwrap();
    assert!(out.changed.is_empty());
}

#[test]
fn removing_a_required_attribute_is_a_mutability_error() {
    let result = user_patch(&user(), json!([{"op": "remove", "path": "userName"}]));
    assert_eq!(scim_type(result), "mutability");
    let result = user_patch(
        &user(),
        json!([{"op": "replace", "path": "userName", "value": null}]),
    );
    assert_eq!(scim_type(result), "mutability");
    let result = group_patch(json!([{"op": "remove", "path": "displayName"}]));
    assert_eq!(scim_type(result), "mutability");
    let result = user_patch(
        &user(),
        json!([{"op": "replace", "path": "userName", "value": " "}]),
    );
    assert_eq!(scim_type(result), "invalidValue");
}

#[test]
fn values_of_the_wrong_type_are_invalid_value() {
    for operation in [
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "replace", "path": "userName", "value": {"a": 1}}),
        json!({"op": "replace", "path": "name", "value": "Barbara"}),
        json!({"op": "add", "path": "emails", "value": [{"nosuch": "x"}]}),
        json!({"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "often"}),
        json!({"op": "replace", "value": {"active": 3}}),
        json!({"op": "replace", "value": "active"}),
        json!({"op": "add", "path": "title"}),
    ] {
        let result = user_patch(&user(), json!([operation.clone()]));
        assert_eq!(scim_type(result), "invalidValue", "{operation}");
    }
    let result =
        group_patch(json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]));
    assert_eq!(scim_type(result), "invalidValue");
}

#[test]
fn remove_without_a_path_is_no_target() {
    let result = user_patch(&user(), json!([{"op": "remove"}]));
    assert_eq!(scim_type(result), "noTarget");
    let result = user_patch(
        &user(),
        json!([{"op": "Remove", "path": "", "value": {"title": "x"}}]),
    );
    assert_eq!(scim_type(result), "noTarget");
}

#[test]
fn replace_with_a_filter_matching_nothing_is_no_target() {
    for operation in [
        json!({"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x@example.com"}}),
        json!({"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "work"}),
        json!({"op": "replace", "path": "emails[type eq \"x\" or type eq \"y\"].value", "value": "a@example.com"}),
        json!({"op": "add", "path": "phoneNumbers.type", "value": "work"}),
    ] {
        let result = user_patch(&user(), json!([operation.clone()]));
        assert_eq!(scim_type(result), "noTarget", "{operation}");
    }
}

#[test]
fn a_failing_third_operation_leaves_no_trace() {
    let doc = user();
    let result = user_patch(
        &doc,
        json!([
            {"op": "replace", "path": "title", "value": "Boss"},
            {"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]},
            {"op": "replace", "path": "active", "value": "perhaps"}
        ]),
    );
    let err = result.unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidValue"));
    assert!(
        err.detail().starts_with("'Operations[2]'"),
        "{}",
        err.detail()
    );
    assert_eq!(doc, user());
    let result = group_patch(json!([
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "displayName", "value": "New"},
        {"op": "remove", "path": "members[type eq \"User\"]"}
    ]));
    assert!(result.is_err(), "member deltas are not returned on failure");
}

#[test]
fn error_details_never_carry_values() {
    let secret = "secret-person@example.com";
    for operation in [
        json!({"op": "replace", "path": format!("emails[value eq \"{secret}\"]"), "value": {"value": "x@example.com"}}),
        json!({"op": "replace", "path": "active", "value": secret}),
        json!({"op": "replace", "path": format!("emails[value eq \"{secret}\""), "value": "x"}),
    ] {
        let err = user_patch(&user(), json!([operation])).unwrap_err();
        assert!(!err.detail().contains("secret-person"), "{}", err.detail());
    }
}

// ---- properties ----------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-zA-Z@. ]{0,8}".prop_map(Value::String),
        Just(json!("False")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("value".to_string()),
                        Just("type".to_string()),
                        Just("primary".to_string()),
                        Just("givenName".to_string()),
                        Just("name.givenName".to_string()),
                        Just("id".to_string()),
                        Just("active".to_string()),
                        Just("emails".to_string()),
                        Just("members".to_string()),
                        "[a-z]{1,5}",
                    ],
                    inner
                ),
                0..3
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("active".to_string()),
        Just("userName".to_string()),
        Just("displayName".to_string()),
        Just("name".to_string()),
        Just("name.givenName".to_string()),
        Just("emails".to_string()),
        Just("emails.value".to_string()),
        Just("emails[type eq \"work\"]".to_string()),
        Just("emails[type eq \"work\"].value".to_string()),
        Just("emails[primary eq true].primary".to_string()),
        Just("members".to_string()),
        Just("members[value eq \"u1\"]".to_string()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".to_string()),
        Just("id".to_string()),
        "[a-z\\[\\]\". ]{0,12}",
    ])
}

fn arb_operation() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("bad")],
        arb_path(),
        prop::option::of(arb_json()),
    )
        .prop_map(|(op, path, value)| {
            let mut object = Map::new();
            object.insert("op".into(), json!(op));
            if let Some(path) = path {
                object.insert("path".into(), json!(path));
            }
            if let Some(value) = value {
                object.insert("value".into(), value);
            }
            Value::Object(object)
        })
}

proptest! {
    #[test]
    fn apply_never_panics_on_arbitrary_operations(
        operations in prop::collection::vec(arb_operation(), 0..5),
        as_group in any::<bool>(),
    ) {
        let (kind, doc) = if as_group { (ResourceKind::Group, group()) } else { (ResourceKind::User, user()) };
        if let Ok(out) = patch(kind, &doc, ops(Value::Array(operations))) {
            // Whatever succeeded left a well-formed document.
            prop_assert!(out.document.is_object());
            prop_assert!(out.document["schemas"].as_array().is_some_and(|s| !s.is_empty()));
        }
    }

    #[test]
    fn a_replaced_value_reads_back(
        text in "[A-Za-z0-9 @.-]{1,20}",
        active in any::<bool>(),
        pick in 0usize..4,
    ) {
        let (path, pointer) = [
            ("title", "/title"),
            ("name.givenName", "/name/givenName"),
            ("emails[type eq \"home\"].value", "/emails/1/value"),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
             "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department"),
        ][pick];
        let out = user_patch(&user(), json!([
            {"op": "replace", "path": path, "value": text.clone()},
            {"op": "Replace", "path": "active", "value": if active { "True" } else { "false" }}
        ])).unwrap();
        prop_assert_eq!(out.document.pointer(pointer), Some(&json!(text)));
        prop_assert_eq!(&out.document["active"], &json!(active));
        let again = user_patch(&out.document, json!([
            {"op": "replace", "path": path, "value": text}
        ])).unwrap();
        prop_assert!(again.changed.is_empty(), "a repeated replace changes nothing");
    }
}
