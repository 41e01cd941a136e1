//! Tests of `scim::patch`.

mod errors;
mod idp;
mod properties;
mod rfc;
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
