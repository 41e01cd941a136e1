//! Tests of `pool = { monthly, warn_at }`: what validation accepts and refuses, and
//! what reaches the target group.

use super::*;

fn pool_rule(org_extra: &str, pool: &str) -> String {
    format!(
        r#"
[org]
plan = "enterprise"
billing_currency = "USD"
{org_extra}

[[rules]]
id = "pilot"
match = {{ group = "Pilot" }}
group = {{ key = "pilot", name = "Pilot" }}
pool = {pool}
"#
    )
}

fn codes(text: &str) -> Vec<(String, ErrorCode)> {
    match load_rule_file(text) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.into_iter().map(|e| (e.field, e.code)).collect(),
    }
}

#[test]
fn a_valid_pool_reaches_the_target_group_with_its_default_warning() {
    let t = load_rule_file(&pool_rule("", "{ monthly = 2000000 }")).unwrap();
    assert_eq!(
        t.groups()["pilot"].pool,
        Some(PoolSpec {
            monthly: 2_000_000,
            warn_at_bp: 8_000
        })
    );
    let t = load_rule_file(&pool_rule(
        "",
        "{ monthly = 500, warn_at = 0.5, currency = \"USD\" }",
    ))
    .unwrap();
    assert_eq!(t.groups()["pilot"].pool.unwrap().warn_at_bp, 5_000);
    assert_eq!(t.groups()["pilot"].pool.unwrap().warn_threshold(), 250);
}

#[test]
fn a_pool_needs_usage_credits() {
    let c = codes(&pool_rule("usage_credits = false", "{ monthly = 100 }"));
    assert!(
        c.contains(&("pool".into(), ErrorCode::UsageCreditsOff)),
        "{c:?}"
    );
}

#[test]
fn a_pool_is_monthly_money_in_the_billing_currency() {
    let c = codes(&pool_rule("", "{ weekly = 100 }"));
    assert!(
        c.contains(&("pool.weekly".into(), ErrorCode::UnsupportedPeriod)),
        "{c:?}"
    );
    let c = codes(&pool_rule("", "{ tokens = 100 }"));
    assert!(
        c.contains(&("pool.tokens".into(), ErrorCode::UnsupportedUnit)),
        "{c:?}"
    );
    let c = codes(&pool_rule("", "{ monthly = 100, currency = \"EUR\" }"));
    assert!(
        c.contains(&("pool.currency".into(), ErrorCode::CurrencyMismatch)),
        "{c:?}"
    );
    for bad in ["12.5", "\"unlimited\"", "0", "-1"] {
        let c = codes(&pool_rule("", &format!("{{ monthly = {bad} }}")));
        assert!(
            c.contains(&("pool.monthly".into(), ErrorCode::InvalidAmount)),
            "{bad}: {c:?}"
        );
    }
    let c = codes(&pool_rule("", "{ warn_at = 0.8 }"));
    assert!(
        c.contains(&("pool.monthly".into(), ErrorCode::MissingField)),
        "{c:?}"
    );
}

#[test]
fn warn_at_is_a_share_strictly_between_zero_and_one() {
    for bad in ["0", "1", "1.5", "-0.2"] {
        let c = codes(&pool_rule(
            "",
            &format!("{{ monthly = 100, warn_at = {bad} }}"),
        ));
        assert!(
            c.contains(&("pool.warn_at".into(), ErrorCode::InvalidValue)),
            "{bad}: {c:?}"
        );
    }
}

#[test]
fn unknown_pool_keys_are_refused() {
    assert!(load_rule_file(&pool_rule("", "{ monthly = 100, yearly = 5 }")).is_err());
}

#[test]
fn rules_sharing_a_group_must_agree_on_its_pool() {
    let text = format!(
        "{}\n[[rules]]\nid = \"other\"\nmatch = {{ group = \"Other\" }}\ngroup = {{ key = \"pilot\", name = \"Pilot\" }}\npool = {{ monthly = 200 }}\n",
        pool_rule("", "{ monthly = 100 }")
    );
    let c = codes(&text);
    assert!(
        c.contains(&("pool".into(), ErrorCode::GroupConflict)),
        "{c:?}"
    );
}

#[test]
fn a_pool_round_trips_through_export() {
    let t = load_rule_file(&pool_rule("", "{ monthly = 100, warn_at = 0.9 }")).unwrap();
    let text = toml::to_string(t.file()).unwrap();
    let again = load_rule_file(&text).unwrap();
    assert_eq!(again.groups()["pilot"].pool, t.groups()["pilot"].pool);
}

#[test]
fn a_valid_pool_loads_without_warnings() {
    let t = load_rule_file(&pool_rule("", "{ monthly = 2000000 }")).unwrap();
    assert!(
        t.warnings().iter().all(|w| w.field != "pool"),
        "{:?}",
        t.warnings()
    );
}
