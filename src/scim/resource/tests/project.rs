//! Projection: attributes and excludedAttributes on responses.

use super::*;

// ---- Projection / project ----------------------------------------------------

fn rendered_group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Ops",
        "members": [{"value": "u1", "display": "a@example.com", "type": "User"}],
        "meta": {"resourceType": "Group"}
    })
}

fn project_user(attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let p = projection(ResourceKind::User, attributes, excluded);
    project(&reg(), ResourceKind::User, &rendered_user(), &p)
}

#[test]
fn default_projection_returns_everything_but_password() {
    let out = project_user(None, None);
    let mut expected = rendered_user();
    expected.as_object_mut().unwrap().remove("password");
    assert_eq!(out, expected);
}

#[test]
fn attributes_user_name_keeps_id_and_schemas() {
    assert_eq!(
        project_user(Some("userName"), None),
        json!({"schemas": [USER_SCHEMA], "id": "2819c223", "userName": "bjensen@example.com"})
    );
    // Case-insensitive names, a list, and the Postman collection's attributes=userName,emails.
    assert_eq!(
        project_user(Some("USERNAME, emails"), None),
        json!({
            "schemas": [USER_SCHEMA],
            "id": "2819c223",
            "userName": "bjensen@example.com",
            "emails": rendered_user()["emails"]
        })
    );
}

#[test]
fn sub_attribute_projection_keeps_only_that_sub_attribute() {
    assert_eq!(
        project_user(Some("name.givenName"), None),
        json!({"schemas": [USER_SCHEMA], "id": "2819c223", "name": {"givenName": "Barbara"}})
    );
    assert_eq!(
        project_user(Some("emails.value,meta.lastModified"), None),
        json!({
            "schemas": [USER_SCHEMA],
            "id": "2819c223",
            "emails": [{"value": "bjensen@example.com"}, {"value": "babs@example.com"}],
            "meta": {"lastModified": "2024-02-01T00:00:00Z"}
        })
    );
}

#[test]
fn extension_attributes_can_be_selected_and_excluded() {
    let expected = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223",
        ENTERPRISE_USER_SCHEMA: {"department": "Finance"}
    });
    assert_eq!(
        project_user(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None
        ),
        expected
    );
    assert_eq!(project_user(Some("department"), None), expected);
    let whole = project_user(Some(ENTERPRISE_USER_SCHEMA), None);
    assert_eq!(
        whole[ENTERPRISE_USER_SCHEMA],
        rendered_user()[ENTERPRISE_USER_SCHEMA]
    );
    assert_eq!(
        project_user(
            Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")),
            None
        )[ENTERPRISE_USER_SCHEMA],
        json!({"manager": {"value": "m1"}})
    );

    // Excluding the last extension attribute drops the URN from `schemas`.
    let out = project_user(None, Some(ENTERPRISE_USER_SCHEMA));
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    let out = project_user(
        None,
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
    );
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"department": "Finance"})
    );
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
}

#[test]
fn excluded_attributes_remove_defaults_but_never_id_or_schemas() {
    let out = project_user(None, Some("emails,name.familyName,id,meta,groups"));
    assert_eq!(out["id"], "2819c223");
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert!(
        out.get("emails").is_none() && out.get("meta").is_none() && out.get("groups").is_none()
    );
    assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    assert_eq!(out["userName"], "bjensen@example.com");
}

#[test]
fn excluded_members_leave_the_rest_of_the_group() {
    let p = projection(ResourceKind::Group, None, Some("members"));
    assert!(!p.includes("members"));
    assert!(p.includes("displayName"));
    assert_eq!(
        project(&reg(), ResourceKind::Group, &rendered_group(), &p),
        json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "Ops", "meta": {"resourceType": "Group"}})
    );
    let p = projection(ResourceKind::Group, None, Some("Members"));
    assert!(!p.includes("members"));
}

#[test]
fn includes_reflects_selected_attributes() {
    let p = projection(ResourceKind::Group, Some("displayName"), None);
    assert!(p.includes("id") && p.includes("displayName") && !p.includes("members"));
    let p = projection(ResourceKind::Group, Some("members.value"), None);
    assert!(p.includes("members"));
    assert!(Projection::all().includes("members"));
    let p = projection(ResourceKind::Group, None, Some("members.display"));
    assert!(p.includes("members"));
}

#[test]
fn password_never_appears_even_when_asked_for() {
    for (attributes, excluded) in [
        (Some("password"), None),
        (None, Some("userName")),
        (None, None),
    ] {
        let out = project_user(attributes, excluded);
        assert!(out.get("password").is_none());
        assert!(!out.to_string().contains("must-never-appear"));
    }
    assert_eq!(
        project_user(Some("password"), None),
        json!({"schemas": [USER_SCHEMA], "id": "2819c223"})
    );
}

#[test]
fn unknown_projection_names_are_ignored() {
    assert_eq!(
        project_user(Some("nosuch,urn:example:other:1.0:User:x"), None),
        json!({"schemas": [USER_SCHEMA], "id": "2819c223"})
    );
    assert_eq!(project_user(None, Some("nosuch")), project_user(None, None));
}

#[test]
fn malformed_projection_paths_and_both_parameters_are_invalid_values() {
    let r = reg();
    let err = Projection::parse(&r, ResourceKind::User, Some("1abc"), None).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidValue"));
    let err =
        Projection::parse(&r, ResourceKind::User, Some("userName"), Some("emails")).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidValue"));
    // Empty parameters are no parameters.
    let p = Projection::parse(&r, ResourceKind::User, Some(""), Some(" , ")).unwrap();
    assert_eq!(p, Projection::all());
    assert!(Projection::parse(&r, ResourceKind::User, Some("userName"), Some("")).is_ok());
}

#[test]
fn projection_paths_are_canonicalised() {
    let p = projection(
        ResourceKind::User,
        Some("Name.GivenName,Department,urn:ietf:params:scim:schemas:core:2.0:User:UserName"),
        None,
    );
    assert_eq!(
        p.attributes,
        vec![
            AttrPath::new("name", Some("givenName")),
            AttrPath {
                urn: Some(ENTERPRISE_USER_SCHEMA.into()),
                attr: "department".into(),
                sub: None
            },
            AttrPath::new("userName", None),
        ]
    );
}

#[test]
fn bracketed_filters_in_attribute_lists_widen_to_the_attribute() {
    assert_eq!(
        split_attribute_list(r#"emails[type eq "work"].value, userName,name[x eq "a,]b"]"#),
        ["emails.value", "userName", "name"]
    );
    assert_eq!(
        project_user(Some(r#"emails[type eq "work"]"#), None)["emails"],
        rendered_user()["emails"]
    );
}

#[test]
fn whole_core_schema_selects_top_level_attributes() {
    let out = project_user(Some(USER_SCHEMA), None);
    assert_eq!(out["userName"], "bjensen@example.com");
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert!(out.get("password").is_none());
}
