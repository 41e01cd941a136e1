//! The operator API in process: rule versions, validation errors that name the
//! rule and field, effective access, the audit trail and its verification.

use serde_json::{json, Value};

use crate::support::TestApp;

const RULES: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, chat = true, web_search = true }
connectors = ["mcpsrv_github"]

[roles.cowork-pilot]
name = "Cowork pilot"
capabilities = { cowork = true, chat = true }
connectors = { mcpsrv_github = "needs_approval" }

[[rules]]
id = "pilot"
priority = 100
match = { group = "Cowork Pilot" }
group = { key = "cowork-pilot", name = "Cowork pilot" }
roles = ["cowork-pilot"]
spend = { monthly = 50000 }
"#;

async fn put_rules(app: &TestApp, text: &str, dry_run: bool) -> crate::support::Resp {
    let token = app.admin_token.clone();
    app.send(
        "PUT",
        &format!("/admin/v1/rules?dry_run={dry_run}"),
        Some(text),
        Some(&token),
        &[("content-type", "application/toml")],
    )
    .await
}

#[actix_web::test]
async fn rule_tables_are_versioned_and_readable_back() {
    let app = TestApp::start().await;
    let r = app.admin("GET", "/rules", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let dry = put_rules(&app, RULES, true).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["diff"]["rules_added"], json!(["pilot"]));
    assert_eq!(
        app.admin("GET", "/rules", None).await.status,
        404,
        "a dry run writes nothing"
    );

    let applied = put_rules(&app, RULES, false).await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.body["version"], 1);
    let again = put_rules(&app, RULES, false).await;
    assert_eq!(again.body["changed"], false);
    let v2 = put_rules(&app, &RULES.replace("50000", "75000"), false).await;
    assert_eq!(v2.body["version"], 2);
    assert_eq!(v2.body["diff"]["rules_changed"]["pilot"], json!(["spend"]));

    let current = app.admin("GET", "/rules", None).await;
    assert_eq!(current.body["version"], 2);
    assert_eq!(current.body["actor"], "operator");
    assert!(current.body["toml"].as_str().unwrap().contains("75000"));
    let first = app.admin("GET", "/rules?version=1", None).await;
    assert!(first.body["toml"].as_str().unwrap().contains("50000"));
    let versions = app.admin("GET", "/rules/versions", None).await;
    assert_eq!(versions.body["versions"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn invalid_rule_tables_are_refused_with_every_error_named() {
    let app = TestApp::start().await;
    let bad = RULES
        .replace("monthly = 50000", "weekly = 50000")
        .replace("roles = [\"cowork-pilot\"]", "roles = [\"nope\"]");
    let r = put_rules(&app, &bad, false).await;
    r.assert_scim_error(400, None);
    let errors = r.body["errors"].as_array().unwrap();
    assert!(errors.len() >= 2, "{}", r.text);
    let text = r.body["detail"].as_str().unwrap();
    assert!(text.contains("rule \"pilot\""), "{text}");
    assert!(text.contains("spend"), "{text}");
    assert!(text.contains("roles"), "{text}");
    assert_eq!(
        app.admin("GET", "/rules", None).await.status,
        404,
        "nothing was applied"
    );
}

#[actix_web::test]
async fn effective_access_explains_where_access_comes_from() {
    let app = TestApp::start().await;
    put_rules(&app, RULES, false).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.group("Cowork Pilot", &[&alice]).await;
    let r = app
        .admin("GET", &format!("/users/{alice}/effective-access"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = r.body["text"].as_str().unwrap();
    assert!(text.contains("pilot"), "{text}");
    assert!(r.text.contains("cowork"), "{}", r.text);
    let by_name = app
        .admin("GET", "/users/ALICE@example.com/effective-access", None)
        .await;
    assert_eq!(by_name.status, 200);
    let none = app
        .admin("GET", &format!("/users/{bob}/effective-access"), None)
        .await;
    assert_eq!(none.status, 200);
    assert!(!none.text.contains("cowork-pilot\""), "{}", none.text);
    let missing = app
        .admin("GET", "/users/nobody/effective-access", None)
        .await;
    assert_eq!(missing.status, 404);
}

#[actix_web::test]
async fn the_audit_trail_lists_and_verifies() {
    let app = TestApp::start().await;
    let u = app.user("audited@example.com").await;
    app.patch(
        &format!("/Users/{u}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    put_rules(&app, RULES, false).await;
    let r = app.admin("GET", "/audit", None).await;
    assert_eq!(r.status, 200);
    let actions: Vec<&str> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            // Each token is recorded the first time it is presented.
            "token.seen",
            "scim.user.create",
            "scim.user.patch",
            "token.seen",
            "rules.apply"
        ]
    );
    assert!(
        !r.text.contains("audited@example.com"),
        "no personal data in the trail"
    );
    let page = app.admin("GET", "/audit?limit=1&after=1", None).await;
    assert_eq!(page.body["entries"][0]["seq"], 2);
    assert_eq!(page.body["next_after"], 2);
    let since = app
        .admin("GET", "/audit?since=2030-01-01T00:00:00Z", None)
        .await;
    assert_eq!(since.body["entries"], json!([]));
    let bad = app.admin("GET", "/audit?since=yesterday", None).await;
    assert_eq!(bad.status, 400);
    let v = app.admin("GET", "/audit/verify", None).await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["checked"], 5);
}

#[actix_web::test]
async fn admin_routes_need_the_admin_scope() {
    let app = TestApp::start().await;
    let token = app.scim_token.clone();
    let r = app
        .send("GET", "/admin/v1/status", None, Some(&token), &[])
        .await;
    r.assert_scim_error(403, None);
    let status = app.admin("GET", "/status", None).await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.body["directory"]["users"], 0);
    let plan = app.admin("GET", "/plan", None).await;
    plan.assert_scim_error(503, None);
    let _: Value = status.body;
}
