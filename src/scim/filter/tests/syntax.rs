//! Filter syntax: string escapes, literals, whitespace, canonical display, garbage,
//! error details and the length, depth and term limits.

use super::*;

#[test]
fn string_escapes_are_decoded_and_printed_back() {
    let f = parse(r#"title eq "a \"quoted\" \\ back\/slash \u00e9 \ud83d\ude00 \n""#);
    assert_eq!(
        f,
        cmp(
            "title",
            CompareOp::Eq,
            s("a \"quoted\" \\ back/slash é 😀 \n")
        )
    );
    assert_eq!(
        f.to_string(),
        r#"title eq "a \"quoted\" \\ back/slash é 😀 \n""#
    );
    assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
    let f = parse(r#"displayName eq "Cowork (Pilot) [EU] and or not""#);
    assert_eq!(
        f,
        cmp(
            "displayName",
            CompareOp::Eq,
            s("Cowork (Pilot) [EU] and or not")
        )
    );
    for bad in [
        r#"title eq "unterminated"#,
        r#"title eq "bad \q escape""#,
        r#"title eq "half \ud83d surrogate""#,
        "title eq \"raw \u{1} control\"",
        r#"title eq "trailing backslash\"#,
    ] {
        invalid_detail(bad, ResourceKind::User);
    }
}

#[test]
fn literals_numbers_and_bare_words_parse_as_json_values() {
    for (text, value) in [
        ("a eq true", CompValue::Bool(true)),
        ("a eq FALSE", CompValue::Bool(false)),
        ("a eq null", CompValue::Null),
        ("a eq 42", CompValue::Number(42.into())),
        ("a eq -7", CompValue::Number((-7).into())),
        (
            "a eq 1.5",
            CompValue::Number(Number::from_f64(1.5).unwrap()),
        ),
        (
            "a eq 2.5e3",
            CompValue::Number(Number::from_f64(2500.0).unwrap()),
        ),
        (
            "a eq -1E-2",
            CompValue::Number(Number::from_f64(-0.01).unwrap()),
        ),
        (
            "a eq 18446744073709551615",
            CompValue::Number(u64::MAX.into()),
        ),
        // Entra's older docs: unquoted values are strings.
        ("a eq jyoung", s("jyoung")),
        ("a eq dale.mohr@example.com", s("dale.mohr@example.com")),
        ("a eq 007", s("007")),
        ("a eq 1.", s("1.")),
        ("a eq +1", s("+1")),
    ] {
        assert_eq!(parse(text), cmp("a", CompareOp::Eq, value), "{text}");
    }
    invalid_detail("a eq 1e999", ResourceKind::User);
    invalid_detail("a eq and b pr", ResourceKind::User);
    // Bare words and numbers given for string attributes compare as text.
    check_table(
        ResourceKind::User,
        &user(),
        &[
            ("externalId eq Bjensen-Ext", true),
            ("userName eq bjensen@example.com", true),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984", true),
        ],
    );
}

#[test]
fn whitespace_between_tokens_is_flexible() {
    let want = parse(r#"userName eq "x" and (title pr)"#);
    for text in [
        "  userName   eq\t\"x\"   and  ( title pr )  ",
        "userName eq\"x\"and(title pr)",
        "userName\teq \"x\"\tand\t(title\tpr)",
    ] {
        assert_eq!(parse(text), want, "{text:?}");
    }
}

#[test]
fn display_is_canonical_and_adds_only_needed_parentheses() {
    for (text, canonical) in [
        (r#"a EQ "x""#, r#"a eq "x""#),
        ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
        (
            "(a eq 1 or b eq 2) and c eq 3",
            "(a eq 1 or b eq 2) and c eq 3",
        ),
        (
            "a eq 1 and (b eq 2 and c eq 3)",
            "a eq 1 and (b eq 2 and c eq 3)",
        ),
        (
            "a eq 1 or (b eq 2 or c eq 3)",
            "a eq 1 or (b eq 2 or c eq 3)",
        ),
        ("((a eq 1) and (b eq 2))", "a eq 1 and b eq 2"),
        ("not(a pr)", "not (a pr)"),
        (
            "x[a eq 1 or b pr] and c eq jyoung",
            r#"x[a eq 1 or b pr] and c eq "jyoung""#,
        ),
        ("a eq 1.0", "a eq 1.0"),
    ] {
        let f = parse(text);
        assert_eq!(f.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical), f, "{text}");
    }
}

#[test]
fn unknown_attributes_are_invalid_filters_that_name_them() {
    let detail = invalid_detail(r#"nosuch eq "x""#, ResourceKind::User);
    assert!(detail.contains("nosuch"), "{detail}");
    let detail = invalid_detail(r#"name.nosuch eq "x""#, ResourceKind::User);
    assert!(detail.contains("name.nosuch"), "{detail}");
    let detail = invalid_detail(r#"userName eq "x""#, ResourceKind::Group);
    assert!(detail.contains("userName"), "{detail}");
    let detail = invalid_detail(r#"emails[kind eq "x"]"#, ResourceKind::User);
    assert!(
        detail.contains("kind") && detail.contains("emails"),
        "{detail}"
    );
}

#[test]
fn garbage_is_an_invalid_filter() {
    for text in [
        "",
        "   ",
        "userName",
        "userName eq",
        r#"userName eq "x" extra"#,
        r#"userName xx "x""#,
        r#"eq "x""#,
        r#""x" eq userName"#,
        "(userName pr",
        "userName pr)",
        "userName pr and",
        "and userName pr",
        "userName pr or or title pr",
        "emails[type eq \"work\"",
        "emails]",
        "emails[]",
        "1abc pr",
        "a.b.c pr",
        "a..b pr",
        ".a pr",
        "a. pr",
        "é pr",
        "userName eq (x)",
        "[",
        ")",
        "\"",
        "userName pr title pr",
        "userName eq \"x\" and not",
    ] {
        let err = Filter::parse(text).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidFilter"), "{text:?}");
        assert_eq!(err.to_body()["scimType"], "invalidFilter");
        assert!(!err.detail().is_empty());
    }
}

#[test]
fn error_details_give_positions_and_do_not_echo_values() {
    let err = Filter::parse(r#"userName eq "secret@example.com" bogus"#).unwrap_err();
    assert!(err.detail().contains("position 34"), "{}", err.detail());
    assert!(!err.detail().contains("secret"), "{}", err.detail());
    let err = Filter::parse(r#"userName eq "x" jane.doe@example.com"#).unwrap_err();
    assert!(!err.detail().contains("jane"), "{}", err.detail());
    let long = "a".repeat(500);
    let err = Filter::parse(&format!("{long} xx 1")).unwrap_err();
    assert!(err.detail().len() < 200, "{}", err.detail());
    let err = Filter::parse(&format!("userName zz{long}")).unwrap_err();
    assert!(err.detail().len() < 200, "{}", err.detail());
}

fn nested_not(levels: usize) -> String {
    let mut text = "title pr".to_string();
    for _ in 0..levels {
        text = format!("not ({text})");
    }
    text
}

#[test]
fn filter_depth_over_limit_is_rejected() {
    let detail = invalid_detail(&nested_not(MAX_FILTER_DEPTH + 1), ResourceKind::User);
    assert!(detail.contains("deeper"), "{detail}");
    let parens = format!(
        "{}title pr{}",
        "(".repeat(MAX_FILTER_DEPTH + 1),
        ")".repeat(MAX_FILTER_DEPTH + 1)
    );
    invalid_detail(&parens, ResourceKind::User);
    // Unbalanced deep openings fail on depth, not on the stack.
    invalid_detail(&"(".repeat(MAX_FILTER_LEN), ResourceKind::User);
    invalid_detail(&"not (".repeat(800), ResourceKind::User);
}

#[test]
fn filter_at_depth_limit_is_accepted_and_evaluates() {
    assert!(user_matches(&nested_not(MAX_FILTER_DEPTH)));
    // Every level mixes or, and, not, the deepest shape a parse can produce:
    // 1 (outer parentheses) + 13 (not) + 1 (brackets) + 1 (inner not) = 16.
    let mut text = r#"emails[type eq "work" or value pr and not (primary eq true)]"#.to_string();
    for _ in 0..MAX_FILTER_DEPTH - 3 {
        text = format!(r#"title eq "x" or title pr and not ({text})"#);
    }
    let f = parse(&format!("userType pr and ({text})"));
    f.validate(&reg(), ResourceKind::User).unwrap();
    assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
    let deeper = format!("userType pr and (title pr and not ({text}))");
    invalid_detail(&deeper, ResourceKind::User);
}

#[test]
fn filter_length_over_limit_is_rejected() {
    let pad = MAX_FILTER_LEN - r#"title eq """#.len();
    let at_limit = format!(r#"title eq "{}""#, "x".repeat(pad));
    assert_eq!(at_limit.len(), MAX_FILTER_LEN);
    parse(&at_limit);
    let over = format!(r#"title eq "{}""#, "x".repeat(pad + 1));
    let detail = invalid_detail(&over, ResourceKind::User);
    assert!(detail.contains("4096"), "{detail}");
}

#[test]
fn filter_term_count_over_limit_is_rejected() {
    let chain = |n: usize, op: &str| vec!["title pr"; n].join(&format!(" {op} "));
    let f = parse(&chain(MAX_FILTER_TERMS, "and"));
    assert!(f
        .validate(&reg(), ResourceKind::User)
        .unwrap()
        .matches(&user()));
    assert!(f.to_string().len() > 100);
    let detail = invalid_detail(&chain(MAX_FILTER_TERMS + 1, "and"), ResourceKind::User);
    assert!(detail.contains("64"), "{detail}");
    invalid_detail(&chain(MAX_FILTER_TERMS + 1, "or"), ResourceKind::User);
    // Terms inside value paths and Entra's trailing form count too.
    let many = vec![r#"emails[type eq "a"].value eq "b""#; MAX_FILTER_TERMS / 2 + 1].join(" or ");
    invalid_detail(&many, ResourceKind::User);
}

#[test]
fn long_hand_built_chains_neither_overflow_nor_validate() {
    let mut f = Filter::Present(AttrPath::new("title", None));
    for _ in 0..5000 {
        f = Filter::And(
            Box::new(f),
            Box::new(Filter::Present(AttrPath::new("title", None))),
        );
    }
    assert!(f.to_string().len() > 5000 * 10);
    let err = f.validate(&reg(), ResourceKind::User).unwrap_err();
    assert_eq!(err.scim_type(), Some("invalidFilter"));
    let mut f = Filter::Present(AttrPath::new("title", None));
    for _ in 0..2000 {
        f = Filter::Not(Box::new(f));
    }
    assert!(f.to_string().starts_with("not (not ("));
    assert!(f.validate(&reg(), ResourceKind::User).is_err());
}
