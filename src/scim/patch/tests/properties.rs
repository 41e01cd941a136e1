//! PATCH properties over generated documents and operations.

use super::*;

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
