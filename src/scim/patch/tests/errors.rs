//! PATCH errors: each refused body gets its scimType and changes nothing.

use super::*;

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
