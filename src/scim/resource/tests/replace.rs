//! replace_document: PUT semantics over the stored document.

use super::*;

// ---- replace_document --------------------------------------------------------

fn stored_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "externalId": "00u1",
        "userName": "a@example.com",
        "active": false,
        "title": "Engineer",
        ENTERPRISE_USER_SCHEMA: {"department": "Finance"}
    })
}

#[test]
fn put_replaces_writable_attributes_and_keeps_active_when_omitted() {
    let input = user(json!({"userName": "b@example.com", "displayName": "B"})).unwrap();
    let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
    assert_eq!(
        doc,
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "b@example.com",
            "displayName": "B",
            "active": false
        })
    );
}

#[test]
fn put_with_active_sets_it() {
    // Okta AIW deactivation is a PUT with the full body and active:false; here the reverse.
    let input = user(json!({"userName": "a@example.com", "active": true})).unwrap();
    let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
    assert_eq!(doc["active"], true);
}

#[test]
fn okta_put_echoing_id_meta_and_groups_replaces_cleanly() {
    let input = user(json!({
        "schemas": [USER_SCHEMA],
        "id": "23a35c27",
        "userName": "a@example.com",
        "name": {"givenName": "New", "familyName": "User", "middleName": ""},
        "emails": [{"primary": true, "value": "a@example.com", "type": "work", "display": "a@example.com"}],
        "active": true,
        "groups": [],
        "meta": {"resourceType": "User", "location": "https://example.com/scim/v2/Users/23a35c27"}
    }))
    .unwrap();
    let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
    assert_eq!(doc["name"]["givenName"], "New");
    assert!(doc.get("id").is_none() && doc.get("meta").is_none() && doc.get("groups").is_none());
    assert!(doc.get("externalId").is_none());
}

fn immutable_schemas() -> (Schema, Schema, Schema) {
    let core: Schema = serde_json::from_value(json!({
        "id": "urn:example:core:User",
        "name": "User",
        "attributes": [
            {"name": "userName", "type": "string", "multiValued": false, "required": true,
             "mutability": "readWrite", "returned": "default"},
            {"name": "employeeId", "type": "string", "multiValued": false, "caseExact": false,
             "mutability": "immutable", "returned": "default"},
            {"name": "badge", "type": "complex", "multiValued": false,
             "mutability": "readWrite", "returned": "default", "subAttributes": [
                {"name": "serial", "type": "string", "multiValued": false, "caseExact": true,
                 "mutability": "immutable", "returned": "default"},
                {"name": "color", "type": "string", "multiValued": false,
                 "mutability": "readWrite", "returned": "default"}
             ]}
        ]
    }))
    .unwrap();
    let ext: Schema = serde_json::from_value(json!({
        "id": "urn:example:ext:User",
        "name": "Ext",
        "attributes": [
            {"name": "costCenter", "type": "string", "multiValued": false,
             "mutability": "immutable", "returned": "default"}
        ]
    }))
    .unwrap();
    (core, reg().common().clone(), ext)
}

fn replace_immutable(existing: Value, new: Value) -> Result<Value, ScimError> {
    let (core, common, ext) = immutable_schemas();
    let schemas = Schemas {
        core: &core,
        common: &common,
        extensions: vec![&ext],
    };
    let input = InputResource {
        document: new,
        members: None,
        attribute_names: Vec::new(),
        unknown: Unknowns::default(),
    };
    replace_with(&schemas, &existing, &input)
}

#[test]
fn put_changing_an_immutable_attribute_is_a_mutability_error() {
    let existing =
        json!({"userName": "a", "employeeId": "E1", "urn:example:ext:User": {"costCenter": "C1"}});
    let err = replace_immutable(
        existing.clone(),
        json!({"userName": "a", "employeeId": "E2"}),
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), Some("mutability"));
    assert!(err.detail().contains("employeeId"));
    let err = replace_immutable(
        existing,
        json!({"userName": "a", "urn:example:ext:User": {"costCenter": "C2"}}),
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), Some("mutability"));
    assert!(err.detail().contains("urn:example:ext:User:costCenter"));
}

#[test]
fn put_matching_or_omitting_an_immutable_attribute_keeps_it() {
    let existing =
        json!({"userName": "a", "employeeId": "E1", "urn:example:ext:User": {"costCenter": "C1"}});
    // Not caseExact: a case-only difference matches.
    let doc = replace_immutable(
        existing.clone(),
        json!({"userName": "b", "employeeId": "e1"}),
    )
    .unwrap();
    assert_eq!(doc["employeeId"], "e1");
    assert_eq!(doc["urn:example:ext:User"]["costCenter"], "C1");
    assert_eq!(
        doc["schemas"],
        json!(["urn:example:core:User", "urn:example:ext:User"])
    );
    let doc = replace_immutable(existing, json!({"userName": "b"})).unwrap();
    assert_eq!(doc["employeeId"], "E1");
}

#[test]
fn put_may_set_an_immutable_attribute_that_had_no_value() {
    let doc = replace_immutable(
        json!({"userName": "a"}),
        json!({"userName": "a", "employeeId": "E9"}),
    )
    .unwrap();
    assert_eq!(doc["employeeId"], "E9");
}

#[test]
fn immutable_sub_attributes_of_complex_attributes_are_enforced() {
    let existing = json!({"userName": "a", "badge": {"serial": "S1", "color": "red"}});
    let err = replace_immutable(
        existing.clone(),
        json!({"userName": "a", "badge": {"serial": "s1"}}),
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), Some("mutability"));
    let doc = replace_immutable(
        existing,
        json!({"userName": "a", "badge": {"color": "blue"}}),
    )
    .unwrap();
    assert_eq!(doc["badge"], json!({"serial": "S1", "color": "blue"}));
}
