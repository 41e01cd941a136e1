//! Tests of `scim::resource`.

mod project;
mod replace;
mod sort;
use super::project::split_attribute_list;
use super::replace::replace_with;
use super::*;
use crate::scim::members::MemberKind;
use crate::scim::schema::{AttrPath, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::json;

fn reg() -> SchemaRegistry {
    SchemaRegistry::builtin().unwrap()
}

/// Parses strictly (`unknown_attributes = "reject"`), so every case below sees
/// the error it would meet; the `ignore` policy has its own tests.
fn user(body: Value) -> Result<InputResource, ScimError> {
    parse_input(&reg(), ResourceKind::User, body, UnknownAttributes::Reject)
}

fn group(body: Value) -> Result<InputResource, ScimError> {
    parse_input(&reg(), ResourceKind::Group, body, UnknownAttributes::Reject)
}

fn lenient_user(body: Value) -> InputResource {
    parse_input(&reg(), ResourceKind::User, body, UnknownAttributes::Ignore).unwrap()
}

fn path(text: &str) -> AttrPath {
    reg().parse_path(ResourceKind::User, text).unwrap()
}

fn projection(kind: ResourceKind, attributes: Option<&str>, excluded: Option<&str>) -> Projection {
    Projection::parse(&reg(), kind, attributes, excluded).unwrap()
}

/// A rendered user, as responses carry it.
fn rendered_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "password": "must-never-appear",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@example.com", "type": "home"}
        ],
        "groups": [{"value": "g1", "display": "Ops", "$ref": "https://example.com/scim/v2/Groups/g1"}],
        ENTERPRISE_USER_SCHEMA: {"department": "Finance", "manager": {"value": "m1"}},
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-02-01T00:00:00Z",
            "location": "https://example.com/scim/v2/Users/2819c223",
            "version": "W/\"1\""
        }
    })
}

// ---- parse_input -------------------------------------------------------------

#[test]
fn okta_create_body_is_accepted_without_password_or_groups() {
    // idp-behaviour.md §1.3, verbatim apart from the domain.
    let input = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@example.com",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@example.com", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    }))
    .unwrap();
    assert_eq!(
        input.document,
        json!({
            "schemas": [USER_SCHEMA],
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "test.user@example.com",
            "name": {"givenName": "Test", "familyName": "User"},
            "displayName": "Test User",
            "locale": "en-US",
            "active": true,
            "emails": [{"primary": true, "value": "test.user@example.com", "type": "work"}]
        })
    );
    assert_eq!(input.members, None);
    assert_eq!(
        input.attribute_names,
        [
            "externalId",
            "userName",
            "name",
            "displayName",
            "locale",
            "active",
            "emails"
        ]
    );
}

#[test]
fn entra_create_body_with_meta_nulls_and_enterprise_schema_is_accepted() {
    // idp-behaviour.md §2.3, with the explicit nulls Entra sends for unmapped attributes.
    let input = user(json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@example.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "addresses": null,
        "phoneNumbers": null,
        "title": null,
        "department": null,
        "manager": null
    }))
    .unwrap();
    let doc = &input.document;
    assert_eq!(doc["schemas"], json!([USER_SCHEMA]));
    assert_eq!(
        doc["userName"],
        "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    );
    assert_eq!(doc["emails"][0]["value"], "Test_User_11bb@example.com");
    for absent in [
        "meta",
        "roles",
        "addresses",
        "phoneNumbers",
        "title",
        ENTERPRISE_USER_SCHEMA,
    ] {
        assert!(doc.get(absent).is_none(), "{absent} should be unassigned");
    }
}

#[test]
fn entra_postman_body_with_capitalised_names_and_string_booleans_is_canonicalised() {
    let input = user(json!({
        "UserName": "UserName222",
        "Active": "True",
        "DisplayName": "lennay",
        "schemas": [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User"
        ],
        "externalId": "5ec3f1d1c0b4",
        "name": {"formatted": "Andrew Ryan", "familyName": "Ryan", "givenName": "Andrew"},
        "emails": [
            {"Primary": true, "type": "work", "value": "testing@example.com"},
            {"Primary": false, "type": "home", "value": "testinghome@example.com"}
        ],
        "roles": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "admin"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "Department": "bob",
            "Manager": {"Value": "SuzzyQ"}
        }
    }))
    .unwrap();
    let doc = &input.document;
    assert_eq!(doc["userName"], "UserName222");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["displayName"], "lennay");
    assert_eq!(doc["emails"][0]["primary"], true);
    assert_eq!(doc["emails"][1]["primary"], false);
    assert_eq!(doc["roles"][0]["primary"], true);
    assert_eq!(
        doc[ENTERPRISE_USER_SCHEMA],
        json!({"department": "bob", "manager": {"value": "SuzzyQ"}})
    );
    assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert!(input
        .attribute_names
        .contains(&format!("{ENTERPRISE_USER_SCHEMA}:department")));
}

#[test]
fn enterprise_attributes_are_accepted_in_every_placement() {
    let cases = [
        json!({"userName": "a@example.com",
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance"}),
        json!({"userName": "a@example.com",
               "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"department": "Finance"}}),
        json!({"userName": "a@example.com",
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"department": "Finance"}}),
        json!({"userName": "a@example.com",
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0User:department": "Finance"}),
        json!({"userName": "a@example.com", "department": "Finance"}),
    ];
    for body in cases {
        let input = user(body.clone()).unwrap();
        assert_eq!(
            input.document[ENTERPRISE_USER_SCHEMA],
            json!({"department": "Finance"}),
            "{body}"
        );
        assert_eq!(
            input.document["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
    }
}

#[test]
fn entra_manager_as_a_bare_string_becomes_a_reference_object() {
    let input = user(json!({
        "userName": "a@example.com",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "2c2f6fb8"}
    }))
    .unwrap();
    assert_eq!(
        input.document[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "2c2f6fb8"})
    );
}

#[test]
fn schemas_may_be_missing_or_carry_unknown_uris() {
    let input = user(json!({"userName": "a@example.com"})).unwrap();
    assert_eq!(input.document["schemas"], json!([USER_SCHEMA]));
    // Entra's group create (idp-behaviour.md §2.6).
    let input = group(json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"}
    }))
    .unwrap();
    assert_eq!(
        input.document,
        json!({
            "schemas": [GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName"
        })
    );
    assert_eq!(input.members, None);
    // An extension object of a schema we do not know, with nothing in it.
    assert!(user(json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {}})).is_ok());
    assert!(
        user(json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {"x": null}})).is_ok()
    );
}

#[test]
fn malformed_schemas_are_invalid_syntax() {
    for schemas in [
        json!("urn:ietf:params:scim:schemas:core:2.0:User"),
        json!([1]),
        json!({}),
    ] {
        let err = user(json!({"schemas": schemas, "userName": "a@example.com"})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"), "{schemas}");
    }
    let err = user(json!({"schemas": [GROUP_SCHEMA], "userName": "a@example.com"})).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
}

#[test]
fn bodies_that_are_not_objects_are_invalid_syntax() {
    for body in [json!([]), json!("x"), json!(null), json!(1)] {
        assert_eq!(user(body).unwrap_err().scim_type(), Some("invalidSyntax"));
    }
}

#[test]
fn unknown_attributes_are_invalid_syntax_naming_the_attribute_not_the_value() {
    let err = user(json!({"userName": "a@example.com", "shoeSize": "secret-value"})).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
    assert!(err.detail().contains("shoeSize"));
    assert!(!err.detail().contains("secret-value"));
    let err = user(json!({
        "userName": "a@example.com",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"shoeSize": "42"}
    }))
    .unwrap_err();
    assert!(err.detail().contains("shoeSize"));
    let err = user(json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {"x": 1}}))
        .unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
    // Users have no `members`, groups no `userName`.
    assert!(user(json!({"userName": "a@example.com", "members": [{"value": "u1"}]})).is_err());
    assert!(group(json!({"displayName": "Ops", "userName": "x"})).is_err());
}

#[test]
fn unknown_attributes_are_dropped_and_named_when_ignored() {
    let input = lenient_user(json!({
        "userName": "a@example.com",
        "adreses": [{"streetAddress": "secret-value"}],
        "name": {"givenName": "Ann", "nickName": "secret-value"},
        "name.middleNme": "secret-value",
        "emails": [{"value": "a@example.com", "labell": "secret-value"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Ops",
            "shoeSize": "42",
            "manager.nme": "x"
        },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCentre": "9",
        "urn:example:ext:1.0:User": {"x": 1}
    }));
    assert_eq!(
        input.document,
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "a@example.com",
            "name": {"givenName": "Ann"},
            "emails": [{"value": "a@example.com"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Ops"}
        })
    );
    let names = input.unknown.names().join(" ");
    for name in [
        "adreses",
        "name.nickName",
        "name.middleNme",
        "emails.labell",
        "shoeSize",
        "manager.nme",
        "costCentre",
        "urn:example:ext:1.0:User",
    ] {
        assert!(names.contains(name), "{name} missing from {names}");
    }
    assert!(!names.contains("secret-value"));
    assert_eq!(input.unknown.count(), 8);
    // The known attributes are named for the audit trail; the dropped ones are not.
    assert_eq!(
        input.attribute_names,
        [
            "userName",
            "name",
            "emails",
            &format!("{ENTERPRISE_USER_SCHEMA}:department")
        ]
    );
}

#[test]
fn ignoring_unknown_attributes_keeps_every_other_check() {
    for (body, scim_type) in [
        (
            json!({"userName": "a@example.com", "active": "maybe", "adreses": "x"}),
            "invalidValue",
        ),
        (
            json!({"displayName": "No Name", "adreses": "x"}),
            "invalidValue",
        ),
        (
            json!({"userName": "a@example.com", "schemas": "x"}),
            "invalidSyntax",
        ),
    ] {
        let err = parse_input(
            &reg(),
            ResourceKind::User,
            body.clone(),
            UnknownAttributes::Ignore,
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), Some(scim_type), "{body}");
    }
    // An attribute of the other resource type is undeclared here, so it is dropped.
    let input = lenient_user(json!({"userName": "a@example.com", "members": [{"value": "u1"}]}));
    assert_eq!(input.unknown.names(), ["members"]);
    assert!(input.members.is_none());
    let clean = lenient_user(json!({"userName": "a@example.com", "title": "Eng"}));
    assert!(clean.unknown.is_empty());
}

#[test]
fn unknown_attributes_sent_as_null_are_ignored() {
    assert!(user(json!({"userName": "a@example.com", "customAttribute": null})).is_ok());
}

#[test]
fn read_only_attributes_are_ignored() {
    let input = user(json!({
        "id": "client-chosen",
        "meta": {"resourceType": "User", "created": "2019-09-18T18:15:26.5788954+00:00"},
        "groups": [{"value": "g1", "display": "Ops"}],
        "userName": "a@example.com",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "manager": {"value": "m1", "displayName": "Boss"}
        }
    }))
    .unwrap();
    assert_eq!(
        input.document,
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "a@example.com",
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1"}}
        })
    );
    assert_eq!(
        input.attribute_names,
        [
            "userName",
            format!("{ENTERPRISE_USER_SCHEMA}:manager").as_str()
        ]
    );
}

#[test]
fn password_is_accepted_and_never_stored() {
    let input = user(json!({"userName": "a@example.com", "password": "t0p-secret"})).unwrap();
    assert!(input.document.get("password").is_none());
    assert!(!input.attribute_names.iter().any(|n| n == "password"));
    assert!(!input.document.to_string().contains("t0p-secret"));
}

#[test]
fn nulls_and_empty_arrays_are_unassigned() {
    let input = user(json!({
        "userName": "a@example.com",
        "displayName": null,
        "emails": [],
        "phoneNumbers": [null],
        "name": {"givenName": null, "familyName": "User", "honorificPrefix": null}
    }))
    .unwrap();
    assert_eq!(
        input.document,
        json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "name": {"familyName": "User"}})
    );
}

#[test]
fn control_characters_in_names_are_refused_and_user_names_trimmed() {
    for bad in [
        "a\u{0}b@example.com",
        "a\u{1b}[31m@example.com",
        "a\rb",
        "a\nb",
    ] {
        let err = user(json!({"userName": bad})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"), "{bad:?}");
        let err = user(json!({"userName": "ok@example.com", "displayName": bad})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"), "{bad:?}");
        assert!(group(json!({"displayName": bad})).is_err(), "{bad:?}");
    }
    let input = user(json!({"userName": "  alice@example.com \t"})).unwrap();
    assert_eq!(input.document["userName"], "alice@example.com");
    // Unicode letters and inner spaces are names like any other.
    let input = user(json!({"userName": "zoë", "displayName": "Zoë de Vries"})).unwrap();
    assert_eq!(input.document["displayName"], "Zoë de Vries");
}

#[test]
fn required_attributes_must_be_present_and_non_blank() {
    let cases = [
        (ResourceKind::User, json!({"displayName": "x"}), "userName"),
        (ResourceKind::User, json!({"userName": ""}), "userName"),
        (ResourceKind::User, json!({"userName": "   "}), "userName"),
        (ResourceKind::User, json!({"userName": null}), "userName"),
        (ResourceKind::Group, json!({"members": []}), "displayName"),
        (
            ResourceKind::Group,
            json!({"displayName": ""}),
            "displayName",
        ),
    ];
    for (kind, body, attr) in cases {
        let err = parse_input(&reg(), kind, body.clone(), UnknownAttributes::Reject).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"), "{body}");
        assert!(err.detail().contains(attr), "{body}: {}", err.detail());
    }
}

#[test]
fn wrong_value_types_are_invalid_values() {
    let cases = [
        json!({"userName": "a@example.com", "active": "yes"}),
        json!({"userName": "a@example.com", "name": "Test User"}),
        json!({"userName": ["a@example.com"]}),
        json!({"userName": "a@example.com", "emails": [{"value": "a@example.com", "kind": "x"}]}),
    ];
    for body in cases {
        assert_eq!(
            user(body.clone()).unwrap_err().scim_type(),
            Some("invalidValue"),
            "{body}"
        );
    }
}

#[test]
fn values_are_stored_as_sent() {
    let input = user(json!({
        "userName": "Mixed.Case@Example.com",
        "externalId": "ABC-def",
        "emails": [{"value": "Mixed.Case@Example.com", "type": "Work"}],
        "name": {"middleName": ""}
    }))
    .unwrap();
    assert_eq!(input.document["userName"], "Mixed.Case@Example.com");
    assert_eq!(input.document["externalId"], "ABC-def");
    assert_eq!(
        input.document["emails"][0],
        json!({"value": "Mixed.Case@Example.com", "type": "Work"})
    );
    assert_eq!(input.document["name"]["middleName"], "");
}

#[test]
fn several_primary_values_keep_the_first() {
    let input = user(json!({
        "userName": "a@example.com",
        "emails": [
            {"value": "a@example.com"},
            {"value": "b@example.com", "primary": "True"},
            {"value": "c@example.com", "primary": true}
        ]
    }))
    .unwrap();
    let primaries: Vec<_> = input.document["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.get("primary").cloned())
        .collect();
    assert_eq!(primaries, [None, Some(json!(true)), Some(json!(false))]);
}

#[test]
fn dotted_sub_attribute_keys_merge_into_their_parent() {
    let input = user(json!({
        "userName": "a@example.com",
        "name.givenName": "Test",
        "Name": {"familyName": "User"}
    }))
    .unwrap();
    assert_eq!(
        input.document["name"],
        json!({"givenName": "Test", "familyName": "User"})
    );
    let err =
        user(json!({"userName": "a@example.com", "emails.value": "a@example.com"})).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
}

#[test]
fn an_attribute_given_twice_is_invalid_syntax() {
    let err = user(json!({"userName": "a@example.com", "UserName": "b@example.com"})).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
    let err = user(json!({
        "userName": "a@example.com",
        "department": "A",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "B"}
    }))
    .unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidSyntax"));
}

#[test]
fn group_members_go_to_the_member_list_not_the_document() {
    // Okta Group Push create (idp-behaviour.md §1.7).
    let input = group(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv2",
        "members": []
    }))
    .unwrap();
    assert_eq!(
        input.document,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2"})
    );
    assert_eq!(input.members, Some(Vec::new()));
    assert_eq!(input.attribute_names, ["displayName", "members"]);

    // Postman PUT with members.
    let input = group(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "DisplayName": "putName",
        "Members": [{"value": "u3", "display": "VP"}, {"$ref": null, "value": "u4", "type": "User"}]
    }))
    .unwrap();
    let members = input.members.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].value, "u3");
    assert_eq!(members[1].kind, Some(MemberKind::User));
    assert!(input.document.get("members").is_none());

    let input = group(json!({"displayName": "Ops", "members": null})).unwrap();
    assert_eq!(input.members, Some(Vec::new()));
    let err = group(json!({"displayName": "Ops", "members": [{"display": "x"}]})).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidValue"));
}
