//! Property tests: display and parse round-trip, and no panic in parse, validate or
//! match on arbitrary text, filter-shaped text or schema-shaped filters.

use super::*;
use crate::scim::filter::parse::parse_attr_path;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
        1 => Just("$ref".to_string()),
        1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "urn", "true", "null"])
            .prop_map(str::to_string),
    ]
}

fn path() -> impl Strategy<Value = AttrPath> {
    let urn = prop_oneof![
        Just(ENT.to_string()),
        Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string()),
        "urn:[a-z]{1,6}(:[a-zA-Z0-9.-]{1,6}){0,4}",
    ];
    (
        prop::option::weighted(0.2, urn),
        name(),
        prop::option::of(name()),
    )
        .prop_map(|(urn, attr, sub)| AttrPath { urn, attr, sub })
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        (-1e300f64..1e300).prop_map(|x| CompValue::Number(Number::from_f64(x).unwrap())),
        any::<String>().prop_map(CompValue::String),
        "[a-z@. ()\\[\\]\"\\\\]{0,12}".prop_map(CompValue::String),
    ]
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        path().prop_map(Filter::Present),
        (path(), op(), comp_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ]
}

fn logic(inner: impl Strategy<Value = Filter> + Clone) -> impl Strategy<Value = Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
        (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
        inner.prop_map(|a| Filter::Not(Box::new(a))),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let bracketed = leaf().prop_recursive(2, 6, 2, logic);
    let atom = prop_oneof![
        3 => leaf(),
        1 => (path(), bracketed).prop_map(|(attr, f)| Filter::ValuePath { attr, filter: Box::new(f) }),
    ];
    atom.prop_recursive(4, 16, 2, logic)
}

fn terms(f: &Filter) -> usize {
    match f {
        Filter::Present(_) | Filter::Compare(..) => 1,
        Filter::And(a, b) | Filter::Or(a, b) => terms(a) + terms(b),
        Filter::Not(a) | Filter::ValuePath { filter: a, .. } => terms(a),
    }
}

fn filterish_token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "(",
            ")",
            "[",
            "]",
            "\"",
            "\\",
            ".",
            ":",
            "not",
            "and",
            "or",
            "pr",
            "eq",
            "ne",
            "co",
            "gt",
            "true",
            "null",
            "-1.5e3",
            "userName",
            "emails",
            "emails[",
            "].value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "\"x\"",
            "\"\\u00e9\"",
            "\"\\ud83d\"",
            "name.givenName",
            "$ref",
            "é",
            "\t",
            " ",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,4}",
    ]
}

fn known_path() -> impl Strategy<Value = AttrPath> {
    prop::sample::select(vec![
        "userName",
        "USERNAME",
        "title",
        "active",
        "emails",
        "emails.value",
        "emails.primary",
        "emails.type",
        "name",
        "name.givenName",
        "meta",
        "meta.lastModified",
        "meta.created",
        "id",
        "externalId",
        "department",
        "manager",
        "manager.value",
        "groups",
        "members",
        "members.value",
        "members.$ref",
        "displayName",
        "schemas",
        "x509Certificates.value",
        "value",
        "type",
        "primary",
        "display",
    ])
    .prop_map(|text| parse_attr_path(text, 0).unwrap())
}

fn known_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        comp_value(),
        prop::sample::select(vec![
            "2011-05-13T04:42:34Z",
            "work",
            "True",
            "bjensen@example.com",
            "5",
            "",
            "É",
        ])
        .prop_map(|v| CompValue::String(v.to_string())),
    ]
}

fn known_filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        known_path().prop_map(Filter::Present),
        (known_path(), op(), known_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ];
    let atom = prop_oneof![
        3 => leaf.clone(),
        1 => (known_path(), leaf.clone().prop_recursive(2, 4, 2, logic))
            .prop_map(|(attr, f)| Filter::ValuePath { attr, filter: Box::new(f) }),
    ];
    atom.prop_recursive(3, 8, 2, logic)
}

proptest! {
    #[test]
    fn validate_and_match_never_panic_on_schema_shaped_filters(f in known_filter()) {
        let r = reg();
        let odd = json!({"emails": "x", "name": [1], "active": "yes", "meta": {"lastModified": 3}, ENT: []});
        for kind in [ResourceKind::User, ResourceKind::Group] {
            if let Ok(v) = f.validate(&r, kind) {
                for resource in [user(), group(), odd.clone(), json!(null)] {
                    v.matches(&resource);
                }
                v.index_hint();
            }
            for parent in ["emails", "members", "name"] {
                if let Ok(v) = f.validate_within(&r, kind, &AttrPath::new(parent, None)) {
                    v.matches(&json!({"value": "x", "type": "work", "primary": true}));
                    v.matches(&json!("x"));
                }
            }
        }
    }

    #[test]
    fn display_then_parse_gives_back_the_same_filter(f in filter()) {
        prop_assume!(terms(&f) <= MAX_FILTER_TERMS);
        let text = f.to_string();
        prop_assert_eq!(Filter::parse(&text), Ok(f), "{}", text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = Filter::parse(&text);
    }

    #[test]
    fn parse_validate_and_match_never_panic_on_filterish_text(
        tokens in prop::collection::vec(filterish_token(), 0..40),
        glue in prop::sample::select(vec!["", " "]),
    ) {
        let text = tokens.join(glue);
        if let Ok(f) = Filter::parse(&text) {
            let r = reg();
            for kind in [ResourceKind::User, ResourceKind::Group] {
                if let Ok(v) = f.validate(&r, kind) {
                    v.matches(&user());
                    v.matches(&group());
                    v.matches(&json!({"emails": "x", "name": [1], ENT: []}));
                    v.index_hint();
                }
            }
        }
    }
}
