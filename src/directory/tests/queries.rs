//! Reads on both backends: paging in creation order, bad filters, and excluded members never read.

use super::*;

#[test]
fn listing_pages_in_creation_order_with_correct_totals() {
    for f in fixtures() {
        let ids: Vec<String> = (0..25)
            .map(|i| user(&f.dir, &format!("user{i:02}@example.com")))
            .collect();
        f.clock.advance(chrono::Duration::seconds(1));
        let page = list(
            &f.dir,
            ResourceKind::User,
            &[("startIndex", "11"), ("count", "10")],
        );
        assert_eq!(page["totalResults"], 25, "{}", f.name);
        assert_eq!(page["startIndex"], 11);
        assert_eq!(page["itemsPerPage"], 10);
        assert_eq!(page["Resources"][0]["id"], ids[10].as_str());
        let last = list(
            &f.dir,
            ResourceKind::User,
            &[("startIndex", "21"), ("count", "10")],
        );
        assert_eq!(last["itemsPerPage"], 5);
        let empty = list(&f.dir, ResourceKind::User, &[("startIndex", "100")]);
        assert_eq!(empty["Resources"], json!([]));
        let none = list(
            &f.dir,
            ResourceKind::User,
            &[
                ("filter", "userName eq \"nobody@example.com\""),
                ("startIndex", "1"),
                ("count", "100"),
            ],
        );
        assert_eq!(none["totalResults"], 0);
        assert_eq!(none["Resources"], json!([]));
        // A scan filter, sorted descending, paged.
        let sorted = list(
            &f.dir,
            ResourceKind::User,
            &[
                ("filter", "userName sw \"user1\""),
                ("sortBy", "userName"),
                ("sortOrder", "descending"),
                ("count", "3"),
            ],
        );
        assert_eq!(sorted["totalResults"], 10);
        assert_eq!(sorted["Resources"][0]["userName"], "user19@example.com");
        let projected = list(
            &f.dir,
            ResourceKind::User,
            &[("attributes", "userName"), ("count", "1")],
        );
        let keys: Vec<&String> = projected["Resources"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, vec!["id", "schemas", "userName"]);
    }
}

#[test]
fn bad_filters_are_invalid_filter_errors() {
    for f in fixtures() {
        let query = ListQuery::from_pairs([("filter", "userName eq")]).unwrap();
        let err = f
            .dir
            .list(ResourceKind::User, &query, "https://x.example.com")
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Scim(ScimError::InvalidFilter(_))),
            "{}",
            f.name
        );
        let query = ListQuery::from_pairs([("filter", "nosuch eq \"x\"")]).unwrap();
        assert!(f
            .dir
            .list(ResourceKind::User, &query, "https://x.example.com")
            .is_err());
    }
}

#[test]
fn excluding_members_never_reads_them() {
    for f in fixtures() {
        let ids: Vec<String> = (0..3)
            .map(|i| user(&f.dir, &format!("m{i}@example.com")))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let g = group(&f.dir, "Big", &refs);
        let listed = list(
            &f.dir,
            ResourceKind::Group,
            &[
                ("excludedAttributes", "members"),
                ("filter", "displayName eq \"Big\""),
            ],
        );
        assert!(
            listed["Resources"][0].get("members").is_none(),
            "{}",
            f.name
        );
        assert_eq!(listed["Resources"][0]["id"], g.as_str());
        let full = get(&f.dir, ResourceKind::Group, &g);
        assert_eq!(full["members"].as_array().unwrap().len(), 3);
    }
}
