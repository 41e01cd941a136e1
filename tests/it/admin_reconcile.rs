//! The operator API over the bundled simulator, in process (`TestApp::with_sim`):
//! `GET /admin/v1/plan` previews, `POST /admin/v1/reconcile` applies, and the event
//! path delivers SCIM changes; the next plan is empty.

use cowork_sync::sim::NewMember;
use serde_json::json;

use crate::support::TestApp;

pub const RULES: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"

[roles.cowork-pilot]
name = "Cowork pilot"
capabilities = { cowork = true, chat = true }

[[rules]]
id = "pilot"
match = { group = "Cowork Pilot" }
group = { key = "cowork-pilot", name = "Cowork pilot" }
roles = ["cowork-pilot"]
"#;

/// Applies the rule file through the operator API.
pub async fn apply_rules(app: &TestApp, text: &str) {
    apply_rules_with(app, &app.admin_token, text).await;
}

/// Applies the rule file with this admin token (for tests that move the clock past
/// the first token's expiry).
pub async fn apply_rules_with(app: &TestApp, token: &str, text: &str) {
    let r = app
        .send(
            "PUT",
            "/admin/v1/rules",
            Some(text),
            Some(token),
            &[("content-type", "application/toml")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A person who already signed in to Cowork; returns their member id.
pub fn signed_up(app: &TestApp, email: &str) -> String {
    let sim = app.sim.as_ref().unwrap();
    let now = sim.sim().clock().now();
    sim.state()
        .sim_add_member(
            &NewMember {
                email: email.into(),
                name: None,
                role: None,
                seat_tier: None,
            },
            now,
        )
        .unwrap()
        .id
}

/// Member ids of the downstream group with this external id.
pub fn sim_members(app: &TestApp, key: &str) -> Vec<String> {
    let state = app.sim.as_ref().unwrap().state();
    let Some(group) = state
        .groups()
        .iter()
        .find(|g| g.external_id.as_deref() == Some(key))
        .cloned()
    else {
        return Vec::new();
    };
    let mut ids: Vec<String> = state.member_ids(&group.id).into_iter().collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn the_operator_api_previews_applies_and_then_plans_nothing() {
    let app = TestApp::builder().with_sim().start().await;
    apply_rules(&app, RULES).await;
    let alice = signed_up(&app, "alice@example.com");
    let u = app.user("alice@example.com").await;
    app.group("Cowork Pilot", &[&u]).await;

    let plan = app.admin("GET", "/plan", None).await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    let kinds: Vec<&str> = plan.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "create_role",
            "create_group",
            "set_group_roles",
            "set_user_role",
            "add_member"
        ],
        "{}",
        plan.body["text"]
    );
    assert!(
        sim_members(&app, "cowork-pilot").is_empty(),
        "a plan applies nothing"
    );

    let run = app.admin("POST", "/reconcile", None).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    assert_eq!(sim_members(&app, "cowork-pilot"), vec![alice.clone()]);
    let again = app.admin("GET", "/plan", None).await;
    assert_eq!(again.body["actions"], json!([]), "{}", again.body["text"]);
    let runs = app.admin("GET", "/status", None).await;
    assert_eq!(runs.body["recent_runs"][0]["outcome"], "ok");
}

#[actix_web::test]
async fn the_event_path_delivers_a_scim_change_and_a_dry_run_changes_nothing() {
    let app = TestApp::builder().with_sim().start().await;
    apply_rules(&app, RULES).await;
    let reconciler = app.reconciler.clone().unwrap();
    let bob = signed_up(&app, "bob@example.com");
    let run = app.admin("POST", "/reconcile", None).await;
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    reconciler.drain_outbox().await.unwrap();

    let u = app.user("bob@example.com").await;
    let dry = app.admin("POST", "/reconcile?dry_run=true", None).await;
    assert_eq!(dry.body["outcome"], "dry_run");
    app.group("Cowork Pilot", &[&u]).await;
    assert!(sim_members(&app, "cowork-pilot").is_empty());
    let drained = reconciler.drain_outbox().await.unwrap();
    assert!(drained.entries > 0 && !drained.blocked, "{drained:?}");
    assert_eq!(sim_members(&app, "cowork-pilot"), vec![bob]);
    let plan = app.admin("GET", "/plan", None).await;
    assert_eq!(plan.body["actions"], json!([]), "{}", plan.body["text"]);
}
