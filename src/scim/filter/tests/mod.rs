//! Tests of filter parsing, validation and evaluation: the semantics here, the
//! syntax (escapes, literals, display, limits) in `syntax`, property tests in `props`.

use super::*;
use crate::scim::schema::ENTERPRISE_USER_SCHEMA;
use proptest::prelude::*;
use serde_json::json;

const ENT: &str = ENTERPRISE_USER_SCHEMA;

fn reg() -> SchemaRegistry {
    SchemaRegistry::builtin().unwrap()
}

fn user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENT
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "Bjensen-Ext",
        "userName": "Bjensen@Example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "nickName": "",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.example.org", "type": "home"}
        ],
        "ims": [{"value": "babs@chat.example.com", "type": "xmpp"}],
        "phoneNumbers": [],
        "groups": [{"value": "g-1", "display": "Finance"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\"",
            "location": "https://example.com/v2/Users/2819c223"
        },
        ENT: {
            "department": "Finance",
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Cowork Pilot",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "Group"}
        ],
        "meta": {"resourceType": "Group"}
    })
}

fn parse(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn valid(text: &str, kind: ResourceKind) -> ValidFilter {
    parse(text)
        .validate(&reg(), kind)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn user_matches(text: &str) -> bool {
    valid(text, ResourceKind::User).matches(&user())
}

fn invalid_detail(text: &str, kind: ResourceKind) -> String {
    let err = match Filter::parse(text) {
        Err(e) => e,
        Ok(f) => match f.validate(&reg(), kind) {
            Err(e) => e,
            Ok(_) => panic!("{text}: accepted"),
        },
    };
    assert_eq!(err.scim_type(), Some("invalidFilter"), "{text}");
    assert_eq!(err.status(), 400);
    err.detail().to_string()
}

fn check_table(kind: ResourceKind, resource: &Value, cases: &[(&str, bool)]) {
    let r = reg();
    for (text, want) in cases {
        let f = parse(text)
            .validate(&r, kind)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(f.matches(resource), *want, "{text}");
    }
}

fn cmp(attr: &str, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(AttrPath::new(attr, None), op, v)
}

fn s(text: &str) -> CompValue {
    CompValue::String(text.into())
}

mod props;
mod syntax;

#[test]
fn rfc_7644_example_filters_all_parse_and_validate() {
    let examples = [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ];
    let r = reg();
    for text in examples {
        let f = parse(text);
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f, "{text}");
        f.validate(&r, ResourceKind::User)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn rfc_7644_examples_evaluate_as_the_rfc_describes() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"userName eq "bjensen@example.com""#, true),
            (r#"name.familyName co "O'Malley""#, true),
            (r#"userName sw "B""#, true),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b""#,
                true,
            ),
            (r#"title pr"#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
            (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
            (r#"title pr and userType eq "Employee""#, true),
            (r#"title pr or userType eq "Intern""#, true),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user""#,
                true,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                true,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                false,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                true,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                true,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "home" and value co "@example.com"]"#,
                false,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                true,
            ),
        ],
    );
}

#[test]
fn each_operator_on_strings_follows_the_rfc() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"title eq "Tour Guide""#, true),
            (r#"title eq "Tour""#, false),
            (r#"title ne "Tour""#, true),
            (r#"title ne "tour guide""#, false),
            (r#"title co "our G""#, true),
            (r#"title co "xyz""#, false),
            (r#"title co """#, true),
            (r#"title sw "Tour""#, true),
            (r#"title sw "Guide""#, false),
            (r#"title ew "Guide""#, true),
            (r#"title ew "Tour""#, false),
            (r#"title gt "Tour""#, true),
            (r#"title gt "Tour Guide""#, false),
            (r#"title ge "Tour Guide""#, true),
            (r#"title lt "Tour Guidf""#, true),
            (r#"title lt "Tour Guide""#, false),
            (r#"title le "Tour Guide""#, true),
            (r#"title le "A""#, false),
            (r#"title pr"#, true),
            (r#"nickName pr"#, false),
            (r#"locale pr"#, false),
            (r#"locale eq "en""#, false),
            (r#"locale ne "en""#, true),
        ],
    );
}

#[test]
fn string_comparisons_honour_case_exact() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            // userName, emails.value, title: caseExact false.
            (r#"userName eq "BJENSEN@EXAMPLE.COM""#, true),
            (r#"userName ne "bjensen@example.com""#, false),
            (r#"userName sw "bjENSEN""#, true),
            (r#"userName ew "EXAMPLE.com""#, true),
            (r#"userName co "N@eX""#, true),
            (r#"userName gt "BJENSEN@EXAMPLE.CO""#, true),
            (r#"userName le "bjensen@example.com""#, true),
            (r#"emails.value eq "BJensen@Example.COM""#, true),
            (r#"emails eq "BJensen@Example.COM""#, true),
            // id, externalId, meta.resourceType: caseExact true.
            (r#"externalId eq "Bjensen-Ext""#, true),
            (r#"externalId eq "bjensen-ext""#, false),
            (r#"externalId ne "bjensen-ext""#, true),
            (r#"externalId sw "bjensen""#, false),
            (r#"externalId co "Ext""#, true),
            (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.resourceType eq "User""#, true),
        ],
    );
}

#[test]
fn case_insensitive_comparison_folds_unicode() {
    let r = reg();
    let resource = json!({"userName": "JOSÉ.Ünal@Example.com", "title": "ΣΊΣΥΦΟΣ"});
    for (text, want) in [
        (r#"userName eq "josé.ünal@example.com""#, true),
        (r#"userName sw "JOSÉ.ü""#, true),
        (r#"userName co "é.Ün""#, true),
        (r#"userName ew "ÜNAL@EXAMPLE.COM""#, true),
        (r#"userName eq "jose.unal@example.com""#, false),
        (r#"userName gt "josé""#, true),
        (r#"title eq "σίσυφοσ""#, true),
    ] {
        let f = parse(text).validate(&r, ResourceKind::User).unwrap();
        assert_eq!(f.matches(&resource), want, "{text}");
    }
}

#[test]
fn datetime_comparisons_are_chronological() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            // Same instant, written with another offset.
            (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
            (r#"meta.lastModified ne "2011-05-13T06:42:34+02:00""#, false),
            (r#"meta.lastModified gt "2011-05-13T05:42:34+02:00""#, true),
            (r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#, true),
            (r#"meta.lastModified ge "2011-05-13T04:42:34""#, true),
            (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
            (r#"meta.created gt "2011-01-01T00:00:00Z""#, false),
        ],
    );
    // A stored value that is not a date never matches.
    let f = valid(
        r#"meta.created lt "2011-01-01T00:00:00Z""#,
        ResourceKind::User,
    );
    assert!(!f.matches(&json!({"meta": {"created": "yesterday"}})));
    assert!(!f.matches(&json!({"meta": {"created": 5}})));
}

#[test]
fn numeric_comparisons_are_numeric() {
    // No served schema has an integer or decimal attribute, so exercise the
    // operand directly.
    let five = Operand::Num(5.into());
    let half = Operand::Num(Number::from_f64(0.5).unwrap());
    for (operand, op, stored, want) in [
        (&five, CompareOp::Eq, json!(5), true),
        (&five, CompareOp::Eq, json!(5.0), true),
        (&five, CompareOp::Eq, json!("5"), false),
        (&five, CompareOp::Gt, json!(10), true),
        (&five, CompareOp::Gt, json!(5), false),
        (&five, CompareOp::Ge, json!(5), true),
        (&five, CompareOp::Lt, json!(-3), true),
        (&five, CompareOp::Le, json!(6), false),
        (&five, CompareOp::Gt, json!(u64::MAX), true),
        (&half, CompareOp::Lt, json!(0.25), true),
        (&half, CompareOp::Gt, json!(1), true),
        (&half, CompareOp::Eq, json!(0.5), true),
    ] {
        assert_eq!(operand.test(op, &stored), want, "{op} {stored}");
    }
}

#[test]
fn booleans_compare_only_with_eq_and_ne() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            ("active eq true", true),
            ("active eq false", false),
            ("active ne false", true),
            ("active eq True", true),
            (r#"active eq "True""#, true),
            (r#"active eq "false""#, false),
            ("emails[primary eq true and type eq \"work\"]", true),
            ("emails[primary eq true and type eq \"home\"]", false),
        ],
    );
    for text in ["active gt true", "active co true", "active le false"] {
        let detail = invalid_detail(text, ResourceKind::User);
        assert!(
            detail.contains("boolean") && detail.contains("active"),
            "{detail}"
        );
    }
    let detail = invalid_detail(r#"active eq "yes""#, ResourceKind::User);
    assert!(detail.contains("true or false"), "{detail}");
    invalid_detail(r#"x509Certificates.value gt "AAAA""#, ResourceKind::User);
    invalid_detail(r#"x509Certificates co "AAAA""#, ResourceKind::User);
    valid(r#"x509Certificates.value eq "AAAA""#, ResourceKind::User);
}

#[test]
fn operators_that_mean_nothing_for_a_type_are_invalid_filters() {
    for text in [
        r#"meta.lastModified co "2011""#,
        r#"meta.lastModified sw "2011""#,
        r#"meta.lastModified gt "last tuesday""#,
        r#"meta.lastModified gt 5"#,
        r#"name eq "Barbara""#,
        r#"name co "Barbara""#,
        r#"meta gt "x""#,
        r#"title gt null"#,
        r#"title[value eq "x"]"#,
        r#"emails.value[value eq "x"]"#,
        r#"emails[value eq "x" and ims[value pr]]"#,
        r#"emails[display.value eq "x"]"#,
        r#"emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]"#,
        r#"emails[nosuch eq "x"]"#,
        r#"password eq "hunter2""#,
        r#"password pr"#,
    ] {
        invalid_detail(text, ResourceKind::User);
    }
}

#[test]
fn and_binds_tighter_than_or_and_both_associate_left() {
    let a = || cmp("a", CompareOp::Eq, CompValue::Number(1.into()));
    let b = || cmp("b", CompareOp::Eq, CompValue::Number(2.into()));
    let c = || cmp("c", CompareOp::Eq, CompValue::Number(3.into()));
    let bx = Box::new;
    assert_eq!(
        parse("a eq 1 or b eq 2 and c eq 3"),
        Filter::Or(bx(a()), bx(Filter::And(bx(b()), bx(c()))))
    );
    assert_eq!(
        parse("a eq 1 and b eq 2 or c eq 3"),
        Filter::Or(bx(Filter::And(bx(a()), bx(b()))), bx(c()))
    );
    assert_eq!(
        parse("a eq 1 and b eq 2 and c eq 3"),
        Filter::And(bx(Filter::And(bx(a()), bx(b()))), bx(c()))
    );
    assert_eq!(
        parse("(a eq 1 or b eq 2) and c eq 3"),
        Filter::And(bx(Filter::Or(bx(a()), bx(b()))), bx(c()))
    );
    assert_eq!(
        parse("a eq 1 and (b eq 2 and c eq 3)"),
        Filter::And(bx(a()), bx(Filter::And(bx(b()), bx(c()))))
    );
    assert_eq!(
        parse("not (a eq 1) and b eq 2"),
        Filter::And(bx(Filter::Not(bx(a()))), bx(b()))
    );
    assert_eq!(parse("((a eq 1))"), a());
    // Evaluated with the same precedence.
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"title eq "x" or title pr and active eq false"#, false),
            (r#"(title eq "x" or title pr) and active eq true"#, true),
            (r#"title pr or title eq "x" and active eq false"#, true),
            (r#"not (title pr) or active eq true"#, true),
            (r#"not (title pr or active eq true)"#, false),
            (r#"not (not (title pr))"#, true),
        ],
    );
}

#[test]
fn not_needs_parentheses() {
    assert_eq!(
        parse("not(title pr)"),
        Filter::Not(Box::new(Filter::Present(AttrPath::new("title", None))))
    );
    invalid_detail("not title pr", ResourceKind::User);
    invalid_detail("not", ResourceKind::User);
    invalid_detail("not ()", ResourceKind::User);
}

#[test]
fn keywords_operators_and_names_are_case_insensitive() {
    let f = parse(r#"UserName EQ "x" And NOT (Title PR) oR Emails[Type Eq "work"]"#);
    assert_eq!(
        f.to_string(),
        r#"UserName eq "x" and not (Title pr) or Emails[Type eq "work"]"#
    );
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"USERNAME EQ "bjensen@example.com""#, true),
            (r#"Name.FamilyName Co "malley""#, true),
            (r#"META.LASTMODIFIED GE "2011-05-13T04:42:34Z""#, true),
            (r#"EMAILS[TYPE EQ "WORK" AND PRIMARY EQ TRUE]"#, true),
            (
                r#"emails[type eq "work"].VALUE EQ "BJENSEN@example.com""#,
                true,
            ),
            (
                r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department EQ "finance""#,
                true,
            ),
        ],
    );
}

#[test]
fn urn_qualified_paths_split_at_the_last_colon() {
    let f = parse(&format!(r#"{ENT}:department eq "Finance""#));
    let Filter::Compare(path, CompareOp::Eq, _) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(path.urn.as_deref(), Some(ENT));
    assert_eq!(path.attr, "department");
    let f = parse(&format!(r#"{ENT}:manager.value pr"#));
    assert_eq!(
        f,
        Filter::Present(AttrPath {
            urn: Some(ENT.into()),
            attr: "manager".into(),
            sub: Some("value".into())
        })
    );
    let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "B""#);
    let Filter::Compare(path, ..) = &f else {
        panic!("{f:?}")
    };
    assert_eq!(
        path.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:core:2.0:User")
    );
    assert_eq!(
        (path.attr.as_str(), path.sub.as_deref()),
        ("name", Some("givenName"))
    );
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (&format!(r#"{ENT}:department eq "Finance""#), true),
            (r#"department eq "finance""#, true),
            (r#"department eq "Sales""#, false),
            (
                &format!(r#"{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
                true,
            ),
            (r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#, true),
            (r#"manager[value sw "2611"]"#, true),
            (&format!(r#"{ENT}:employeeNumber pr"#), true),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:id pr"#, true),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
                true,
            ),
            (r#"costCenter pr"#, false),
        ],
    );
    invalid_detail(
        r#"urn:example:unknown:1.0:User:department eq "x""#,
        ResourceKind::User,
    );
    invalid_detail(&format!(r#"{ENT}:department eq "x""#), ResourceKind::Group);
    invalid_detail(r#"urn: eq "x""#, ResourceKind::User);
    invalid_detail(r#"urn:x eq "x""#, ResourceKind::User);
}

#[test]
fn ref_is_a_sub_attribute_name() {
    let f = parse(r#"members.$ref eq "https://example.com/v2/Users/1""#);
    assert_eq!(
        f.to_string(),
        r#"members.$ref eq "https://example.com/v2/Users/1""#
    );
    let v = f.validate(&reg(), ResourceKind::Group).unwrap();
    assert!(
        v.matches(&json!({"members": [{"value": "1", "$ref": "https://example.com/v2/Users/1"}]}))
    );
    valid(r#"groups[$ref pr]"#, ResourceKind::User);
}

#[test]
fn value_paths_evaluate_their_filter_on_each_element() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"emails[type eq "work"]"#, true),
            (r#"emails[type eq "other"]"#, false),
            (r#"emails[type eq "home" and value ew ".org"]"#, true),
            // Both conditions must hold on the SAME element.
            (r#"emails[type eq "home" and primary eq true]"#, false),
            (r#"emails[type eq "home" or primary eq true]"#, true),
            (r#"emails[not (type eq "work") and value co "babs"]"#, true),
            (
                r#"emails[(type eq "home" or type eq "work") and value sw "BJ"]"#,
                true,
            ),
            (r#"not (emails[type eq "other"])"#, true),
            (r#"phoneNumbers[type eq "work"]"#, false),
            (r#"addresses[type eq "work"]"#, false),
            (r#"name[givenName eq "barbara"]"#, true),
            (r#"groups[display eq "finance"]"#, true),
            (r#"emails [type eq "work"]"#, true),
        ],
    );
    check_table(
        ResourceKind::Group,
        &group(),
        &[
            (
                r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
                true,
            ),
            (
                r#"members[value eq "2819c223-7f76-453a-919d-413861904646" and type eq "Group"]"#,
                false,
            ),
            (r#"members[type eq "Group"]"#, true),
            (
                r#"members.value eq "902c246b-6245-4190-8e05-00816be7344a""#,
                true,
            ),
            (r#"members eq "902c246b-6245-4190-8e05-00816be7344a""#, true),
            (r#"members pr"#, true),
        ],
    );
    // No members array: no match, and not present.
    let f = valid(r#"members[type eq "User"]"#, ResourceKind::Group);
    assert!(!f.matches(&json!({"displayName": "x"})));
    assert!(!f.matches(&json!({"members": "not an array"})));
}

#[test]
fn entra_trailing_sub_attribute_form_means_the_same_element() {
    let f = parse(r#"emails[type eq "work"].value eq "user@contoso.com""#);
    assert_eq!(
        f,
        Filter::ValuePath {
            attr: AttrPath::new("emails", None),
            filter: Box::new(Filter::And(
                Box::new(cmp("type", CompareOp::Eq, s("work"))),
                Box::new(cmp("value", CompareOp::Eq, s("user@contoso.com"))),
            )),
        }
    );
    assert_eq!(
        f.to_string(),
        r#"emails[type eq "work" and value eq "user@contoso.com"]"#
    );
    assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
    let f = parse(r#"emails[type eq "work" or type eq "home"].value pr"#);
    assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (
                r#"emails[type eq "work"].value eq "bjensen@example.com""#,
                true,
            ),
            (
                r#"emails[type eq "work"].value eq "babs@jensen.example.org""#,
                false,
            ),
            (
                r#"emails[type eq "home"].value eq "babs@jensen.example.org""#,
                true,
            ),
            (
                r#"emails[type eq "work"].value eq "BJENSEN@EXAMPLE.COM" and active eq true"#,
                true,
            ),
            (r#"emails[type eq "work"].primary eq true"#, true),
        ],
    );
    invalid_detail(r#"emails[type eq "work"].value"#, ResourceKind::User);
    invalid_detail(r#"emails[type eq "work"].1x eq "a""#, ResourceKind::User);
    invalid_detail(
        r#"emails[type eq "work"].nosuch eq "a""#,
        ResourceKind::User,
    );
}

#[test]
fn multi_valued_attributes_match_when_any_value_matches() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            (r#"emails.value eq "babs@jensen.example.org""#, true),
            (r#"emails.type eq "home""#, true),
            (r#"emails co "@example.com""#, true),
            (r#"emails co "@nowhere.example""#, false),
            (r#"emails sw "babs""#, true),
            (r#"emails pr"#, true),
            (r#"emails.primary pr"#, true),
            (r#"phoneNumbers pr"#, false),
            (r#"emails.display pr"#, false),
        ],
    );
}

#[test]
fn ne_is_the_negation_of_any_value_being_equal() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            // One email is "work": ne is false even though the other is not.
            (r#"emails.type ne "work""#, false),
            (r#"emails.type ne "other""#, true),
            // Absent attribute: ne is true, eq is false.
            (r#"locale ne "en""#, true),
            (r#"phoneNumbers.value ne "555""#, true),
            (r#"phoneNumbers.value eq "555""#, false),
        ],
    );
    // A stored value of the wrong type is "not equal".
    let f = valid(r#"title ne "x""#, ResourceKind::User);
    assert!(f.matches(&json!({"title": 5})));
    let f = valid(r#"title eq "x""#, ResourceKind::User);
    assert!(!f.matches(&json!({"title": 5})));
}

#[test]
fn eq_null_means_absent_and_ne_null_means_present() {
    check_table(
        ResourceKind::User,
        &user(),
        &[
            ("locale eq null", true),
            ("locale ne null", false),
            ("title eq null", false),
            ("title ne null", true),
            ("nickName eq null", true),
            ("phoneNumbers eq null", true),
            ("emails ne null", true),
            ("name eq NULL", false),
        ],
    );
}

#[test]
fn present_ignores_null_empty_strings_arrays_and_objects() {
    let r = reg();
    for (resource, want) in [
        (json!({"title": "x"}), true),
        (json!({"title": ""}), false),
        (json!({"title": null}), false),
        (json!({}), false),
    ] {
        let f = parse("title pr").validate(&r, ResourceKind::User).unwrap();
        assert_eq!(f.matches(&resource), want, "{resource}");
    }
    for (resource, want) in [
        (json!({"emails": [{"value": "a@example.com"}]}), true),
        (json!({"emails": []}), false),
        (json!({"emails": [{}]}), false),
        (json!({"emails": null}), false),
        (json!({"name": {}}), false),
    ] {
        let f = parse("emails pr").validate(&r, ResourceKind::User).unwrap();
        assert_eq!(f.matches(&resource), want, "{resource}");
    }
    let f = valid("name pr", ResourceKind::User);
    assert!(!f.matches(&json!({"name": {}})));
    assert!(f.matches(&json!({"name": {"givenName": "B"}})));
}

#[test]
fn runtime_type_mismatches_never_match() {
    let weird = json!({
        "userName": ["a"],
        "active": "yes",
        "emails": {"value": 7},
        "name": "Barbara",
        "meta": [],
        ENT: "not an object",
    });
    for text in [
        r#"userName eq "b""#,
        r#"active eq true"#,
        r#"emails.value eq "x""#,
        r#"emails[value eq "x"]"#,
        r#"name.givenName sw "B""#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"department eq "x""#,
    ] {
        assert!(!valid(text, ResourceKind::User).matches(&weird), "{text}");
        assert!(
            !valid(text, ResourceKind::User).matches(&json!(null)),
            "{text}"
        );
        assert!(
            !valid(text, ResourceKind::User).matches(&json!([1, 2])),
            "{text}"
        );
    }
}

#[test]
fn validate_within_evaluates_one_element_of_the_parent() {
    let r = reg();
    let members = AttrPath::new("members", None);
    let f = parse(r#"value eq "2819c223-7f76-453a-919d-413861904646""#)
        .validate_within(&r, ResourceKind::Group, &members)
        .unwrap();
    assert!(f.matches(&json!({"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"})));
    assert!(!f.matches(&json!({"value": "other"})));
    assert!(!f.matches(&json!("2819c223-7f76-453a-919d-413861904646")));
    assert!(f.mentions("members"));
    assert_eq!(f.index_hint(), None);

    let emails = AttrPath::new("EMAILS", None);
    let f = parse(r#"type eq "WORK" and not (primary eq false)"#)
        .validate_within(&r, ResourceKind::User, &emails)
        .unwrap();
    assert!(f.matches(&json!({"type": "work", "primary": true, "value": "a@example.com"})));
    assert!(!f.matches(&json!({"type": "home"})));

    let f = parse(r#"value co "@example.com""#)
        .validate_within(&r, ResourceKind::User, &emails)
        .unwrap();
    assert!(f.matches(&json!({"Value": "a@EXAMPLE.com"})));

    let ent_manager = AttrPath {
        urn: Some(ENT.into()),
        attr: "manager".into(),
        sub: None,
    };
    parse(r#"value pr"#)
        .validate_within(&r, ResourceKind::User, &ent_manager)
        .unwrap();

    for (text, parent) in [
        (r#"nosuch eq "x""#, &members),
        (r#"members.value eq "x""#, &members),
        (r#"display[value eq "x"]"#, &members),
        (r#"value gt 5"#, &emails),
    ] {
        let err = parse(text)
            .validate_within(&r, ResourceKind::Group, parent)
            .and_then(|_| parse(text).validate_within(&r, ResourceKind::User, parent))
            .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidFilter"), "{text}");
    }
    let title = AttrPath::new("title", None);
    assert!(parse("value pr")
        .validate_within(&r, ResourceKind::User, &title)
        .is_err());
    let nosuch = AttrPath::new("nosuch", None);
    assert!(parse("value pr")
        .validate_within(&r, ResourceKind::User, &nosuch)
        .is_err());
}

#[test]
fn index_hint_names_an_indexed_equality() {
    let u = ResourceKind::User;
    let g = ResourceKind::Group;
    for (text, kind, want) in [
        (
            r#"userName eq "x""#,
            u,
            Some(IndexHint::UserName("x".into())),
        ),
        (
            r#"USERNAME EQ "Alice@Example.com""#,
            u,
            Some(IndexHint::UserName("Alice@Example.com".into())),
        ),
        (
            r#"userName eq "x" and active eq true"#,
            u,
            Some(IndexHint::UserName("x".into())),
        ),
        (
            r#"active eq true and (title pr and externalId eq "e")"#,
            u,
            Some(IndexHint::ExternalId("e".into())),
        ),
        (
            r#"externalId eq "e" and userName eq "x""#,
            u,
            Some(IndexHint::UserName("x".into())),
        ),
        (
            r#"externalId eq "e" and id eq "i" and userName eq "x""#,
            u,
            Some(IndexHint::Id("i".into())),
        ),
        (
            r#"externalId eq jyoung"#,
            u,
            Some(IndexHint::ExternalId("jyoung".into())),
        ),
        (
            r#"externalId eq 12345"#,
            u,
            Some(IndexHint::ExternalId("12345".into())),
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            u,
            Some(IndexHint::UserName("x".into())),
        ),
        (r#"id eq "i""#, g, Some(IndexHint::Id("i".into()))),
        (
            r#"displayName eq "Cowork Pilot""#,
            g,
            Some(IndexHint::DisplayName("Cowork Pilot".into())),
        ),
        (
            r#"externalId eq "e""#,
            g,
            Some(IndexHint::ExternalId("e".into())),
        ),
        (r#"userName eq "x" or title pr"#, u, None),
        (r#"userName co "x""#, u, None),
        (r#"userName ne "x""#, u, None),
        (r#"userName eq null"#, u, None),
        (r#"not (userName eq "x")"#, u, None),
        (r#"displayName eq "x""#, u, None),
        (r#"emails[type eq "work"].value eq "x""#, u, None),
        (r#"title pr"#, u, None),
    ] {
        assert_eq!(valid(text, kind).index_hint(), want, "{text}");
    }
}

#[test]
fn mentions_lists_the_top_level_attributes_read() {
    let f = valid(
        r#"groups[value eq "g"] and userName pr and department eq "x""#,
        ResourceKind::User,
    );
    assert!(f.mentions("groups"));
    assert!(f.mentions("userName"));
    assert!(f.mentions("USERNAME"));
    assert!(f.mentions("department"));
    assert!(f.mentions(ENT));
    assert!(!f.mentions("emails"));
    assert!(!f.mentions("members"));
    let f = valid(r#"members.value eq "u""#, ResourceKind::Group);
    assert!(f.mentions("members"));
    let f = valid(r#"displayName eq "x""#, ResourceKind::Group);
    assert!(!f.mentions("members"));
    assert_eq!(f.filter(), &parse(r#"displayName eq "x""#));
}
