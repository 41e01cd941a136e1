//! sort_key: the sortBy value of a resource.

use super::*;

// ---- sort_key ----------------------------------------------------------------

fn key(rendered: &Value, sort_by: &str) -> Option<SortKey> {
    sort_key(&reg(), ResourceKind::User, rendered, &path(sort_by))
}

#[test]
fn string_sort_keys_fold_case_unless_case_exact() {
    let u = json!({"userName": "BJensen@Example.com", "externalId": "ABC", "id": "Xy"});
    assert_eq!(
        key(&u, "userName"),
        Some(SortKey::String("bjensen@example.com".into()))
    );
    assert_eq!(key(&u, "externalId"), Some(SortKey::String("ABC".into())));
    assert_eq!(key(&u, "id"), Some(SortKey::String("Xy".into())));
    assert!(
        key(&json!({"userName": "alice"}), "userName")
            < key(&json!({"userName": "Bob"}), "userName")
    );
}

#[test]
fn multi_valued_sort_keys_use_the_primary_value_else_the_first() {
    let u = rendered_user();
    assert_eq!(
        key(&u, "emails.value"),
        Some(SortKey::String("bjensen@example.com".into()))
    );
    assert_eq!(
        key(&u, "emails"),
        Some(SortKey::String("bjensen@example.com".into()))
    );
    let u = json!({"emails": [{"value": "Z@example.com"}, {"value": "a@example.com", "primary": true}]});
    assert_eq!(
        key(&u, "emails.value"),
        Some(SortKey::String("a@example.com".into()))
    );
    let u =
        json!({"emails": [{"value": "Z@example.com", "type": "work"}, {"value": "a@example.com"}]});
    assert_eq!(
        key(&u, "emails.value"),
        Some(SortKey::String("z@example.com".into()))
    );
    assert_eq!(key(&u, "emails.type"), Some(SortKey::String("work".into())));
}

#[test]
fn sort_keys_follow_the_attribute_type() {
    let u = rendered_user();
    assert_eq!(key(&u, "active"), Some(SortKey::Bool(true)));
    assert_eq!(
        key(&u, "meta.created"),
        Some(SortKey::DateTime("2024-01-01T00:00:00Z".parse().unwrap()))
    );
    assert!(key(&u, "meta.created") < key(&u, "meta.lastModified"));
    assert_eq!(
        key(&u, "name.familyName"),
        Some(SortKey::String("jensen".into()))
    );
    assert_eq!(
        key(&u, "department"),
        Some(SortKey::String("finance".into()))
    );
    assert_eq!(
        key(
            &u,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        ),
        Some(SortKey::String("m1".into()))
    );
}

#[test]
fn missing_values_have_no_sort_key() {
    let u = json!({"userName": "a@example.com", "title": "", "emails": []});
    for sort_by in [
        "displayName",
        "title",
        "emails.value",
        "name.givenName",
        "nosuch",
        "department",
    ] {
        assert_eq!(key(&u, sort_by), None, "{sort_by}");
    }
}
