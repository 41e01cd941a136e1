//! The examples of RFC 7644 §3.5.2, and filters on multi-valued attributes.

use super::*;

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
