//! Pooled budgets end to end, in process over the bundled simulator: usage injected
//! through `POST /_sim/usage` takes a pool to `warn`, then spent (every member capped
//! downstream at what they have spent, shown in status, `effective-access` and the
//! audit trail), a member who leaves is uncapped, and the month's turn clears the
//! caps at the next reconcile. The check runs first in every full reconcile and on its
//! own (the schedule's path), which queues the cap changes and wakes the outbox worker.

use serde_json::{json, Value};

use chrono::Duration;
use cowork_sync::auth::Scope;

use crate::insights_http::{pilot_with, usage, Pilot, RULES};
use crate::support::{Resp, TestApp};

/// The pilot with a $20.00 pool that warns at half, beside the $500.00 group limit.
fn pooled_rules() -> String {
    format!("{RULES}pool = {{ monthly = 2000, warn_at = 0.5 }}\n")
}

/// The monthly limit the simulator applies to a member now, and whether it is their
/// own (a per-user override) rather than their group's.
fn limit_of(app: &TestApp, member: &str) -> (Option<u64>, bool) {
    let state = app.sim.as_ref().unwrap().state();
    let user = state.users().get(member).cloned().unwrap();
    match state.resolve_spend(&user).0 {
        Some(l) => (
            l.amount_minor(),
            matches!(l.scope, cowork_sync::cowork::SpendScope::User { .. }),
        ),
        None => (None, false),
    }
}

/// An operator API call with a token minted now (the tests move the clock by months).
async fn admin(app: &TestApp, method: &str, path: &str) -> Resp {
    let token = app
        .minter
        .mint("operator", Scope::Admin, 60, app.clock.as_ref())
        .unwrap();
    app.send(method, &format!("/admin/v1{path}"), None, Some(&token), &[])
        .await
}

async fn status_pool(app: &TestApp) -> Value {
    let s = admin(app, "GET", "/status").await;
    assert_eq!(s.status, 200, "{}", s.text);
    let pools = s.body["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{}", s.body["pools"]);
    pools[0].clone()
}

async fn audit_actions(app: &TestApp, prefix: &str) -> Vec<(String, Value)> {
    let r = admin(app, "GET", "/audit?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with(prefix))
        .map(|e| (e["action"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// Whether `core.changes` (the outbox worker's wake-up) holds a notification.
async fn woken(app: &TestApp) -> bool {
    tokio::select! {
        biased;
        _ = app.core.changes.notified() => true,
        _ = std::future::ready(()) => false,
    }
}

async fn check(app: &TestApp) {
    let report = app.pools.as_ref().unwrap().check_reported().await;
    assert!(report.is_some(), "the pool check failed");
}

#[actix_web::test]
async fn a_pool_warns_then_caps_its_members_uncaps_a_leaver_and_clears_when_the_month_turns() {
    let Pilot {
        app,
        today,
        users,
        members,
        group,
        ..
    } = pilot_with(&pooled_rules()).await;
    let (alice, bob, carol) = (&members[0], &members[1], &members[2]);
    check(&app).await;
    let pool = status_pool(&app).await;
    assert_eq!(
        pool,
        json!({"group": "cowork-pilot", "rule": "pilot", "level": "ok", "month": "2026-12",
               "spent_minor": 0, "monthly_minor": 2000, "warn_at": 0.5, "currency": "USD",
               "capped_members": 0}),
    );
    assert_eq!(limit_of(&app, alice), (Some(50_000), false), "the group's");
    let s = admin(&app, "GET", "/status").await;
    let c = &s.body["checks"]["pool_check"];
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .starts_with("last check succeeded at 2026-12-15"),
        "{c}"
    );

    // $12.00 of $20.00: past warn_at, once; nobody capped.
    let date = today.to_string();
    usage(
        &app,
        json!([{"email": "alice@example.com", "date": date, "cost_minor": 1200}]),
    )
    .await;
    check(&app).await;
    check(&app).await;
    assert_eq!(status_pool(&app).await["level"], "warn");
    let warned = audit_actions(&app, "pool.warned").await;
    assert_eq!(warned.len(), 1, "warned once a month: {warned:?}");
    assert_eq!(warned[0].1["details"]["spent_minor"], 1200);
    assert_eq!(limit_of(&app, alice), (Some(50_000), false));

    // $21.00, of which bob's $9.00 lands two hours after it is posted: not yet spent.
    usage(
        &app,
        json!([{"email": "bob@example.com", "date": date, "cost_minor": 900, "cost_lag_minutes": 120}]),
    )
    .await;
    check(&app).await;
    assert_eq!(status_pool(&app).await["spent_minor"], 1200);
    assert_eq!(limit_of(&app, bob), (Some(50_000), false));
    // Once it lands the pool is spent. Each member is capped at what they have spent;
    // the check queues the change and wakes the worker, which sets the overrides at once.
    app.advance(Duration::hours(2));
    let _ = woken(&app).await; // whatever the SCIM writes left
    check(&app).await;
    assert!(woken(&app).await, "the check wakes the outbox worker");
    app.drain_clean().await;
    assert_eq!(limit_of(&app, alice), (Some(1200), true));
    assert_eq!(limit_of(&app, bob), (Some(900), true));
    assert_eq!(limit_of(&app, carol), (Some(0), true));
    let pool = status_pool(&app).await;
    assert_eq!(pool["level"], "capped", "{pool}");
    assert_eq!(pool["spent_minor"], 2100);
    assert_eq!(pool["capped_members"], 3);
    assert_eq!(audit_actions(&app, "pool.spent").await.len(), 1);
    let capped = audit_actions(&app, "pool.capped").await;
    assert_eq!(capped.len(), 3, "{capped:?}");
    assert!(capped
        .iter()
        .any(|(_, e)| e["target"] == format!("user:{}", users[0])
            && e["details"]["cap_minor"] == 1200));

    // effective-access says why alice can spend no more.
    let r = admin(&app, "GET", "/users/alice@example.com/effective-access").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["pool_cap"]["cap_minor"], 1200, "{}", r.text);
    assert_eq!(r.body["pool_cap"]["group"], "cowork-pilot");
    assert_eq!(r.body["pool_cap"]["month"], "2026-12");
    let text = r.body["text"].as_str().unwrap();
    assert!(
        text.contains(
            "Spend capped at $12.00 for 2026-12 by the pooled budget of group cowork-pilot"
        ),
        "{text}"
    );
    // A check with nothing new changes nothing and queues nothing.
    check(&app).await;
    assert!(!woken(&app).await, "nothing queued, nobody woken");
    assert_eq!(audit_actions(&app, "pool.capped").await.len(), 3);

    // Carol leaves the group: her access goes with the event, her cap at the next check.
    let scim = app
        .minter
        .mint("okta", Scope::Scim, 60, app.clock.as_ref())
        .unwrap();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", users[2])}],
    })
    .to_string();
    let r = app
        .send(
            "PATCH",
            &format!("/scim/v2/Groups/{group}"),
            Some(&body),
            Some(&scim),
            &[],
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    app.drain_clean().await;
    check(&app).await;
    app.drain_clean().await;
    assert_eq!(
        limit_of(&app, carol),
        (None, false),
        "no override, no group"
    );
    assert_eq!(limit_of(&app, alice), (Some(1200), true), "still capped");
    assert_eq!(status_pool(&app).await["capped_members"], 2);
    let cleared = audit_actions(&app, "pool.cleared").await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0].1["target"], format!("user:{}", users[2]));

    // January: the next reconcile checks the pool first, so the caps go and the
    // group's limit applies again.
    app.clock.set("2027-01-01T06:00:00Z".parse().unwrap());
    let run = admin(&app, "POST", "/reconcile").await;
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    assert_eq!(limit_of(&app, alice), (Some(50_000), false));
    assert_eq!(limit_of(&app, bob), (Some(50_000), false));
    let pool = status_pool(&app).await;
    assert_eq!(pool["level"], "ok", "{pool}");
    assert_eq!(pool["month"], "2027-01");
    assert_eq!(pool["capped_members"], 0);
    assert_eq!(audit_actions(&app, "pool.cleared").await.len(), 3);
    let r = admin(&app, "GET", "/users/alice@example.com/effective-access").await;
    assert_eq!(r.body["pool_cap"], Value::Null, "{}", r.text);
    let plan = admin(&app, "GET", "/plan").await;
    assert_eq!(plan.body["actions"], json!([]), "{}", plan.text);
}

#[actix_web::test]
async fn status_lists_a_pool_before_its_first_check_and_the_console_overview_shows_it() {
    let Pilot { app, token, .. } = pilot_with(&pooled_rules()).await;
    // The pilot's reconcile ran a check in January; December's has not run yet.
    let pool = status_pool(&app).await;
    assert_eq!(pool["month"], "2026-01", "{pool}");
    // A pool added to a group that was never checked: listed, unchecked.
    let rules = pooled_rules().replace("monthly = 2000", "monthly = 3000")
        + r#"
[[rules]]
id = "writers"
match = { group = "Writers" }
group = { key = "writers", name = "Writers" }
roles = ["cowork-pilot"]
pool = { monthly = 10000 }
"#;
    crate::admin_reconcile::apply_rules_with(&app, &token, &rules).await;
    let s = admin(&app, "GET", "/status").await;
    let pools = s.body["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2, "{}", s.body["pools"]);
    assert_eq!(pools[0]["monthly_minor"], 3000, "as the rules say now");
    assert_eq!(pools[1]["group"], "writers");
    assert_eq!(pools[1]["level"], "unchecked");
    assert_eq!(pools[1]["warn_at"], 0.8);
    assert_eq!(s.body["pool_check"]["consecutive_failures"], 0);

    let mut b = crate::console::Browser::new(&app);
    b.sign_in(&token).await;
    let page = b.get("/ui/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let table = crate::console::section(&page.text, "id=\"pools-table\"", "</table>");
    assert!(table.contains("cowork-pilot"), "{table}");
    assert!(table.contains("$30.00"), "{table}");
    assert!(table.contains("unchecked"), "{table}");
    assert!(page.text.contains("id=\"overview-pools\""), "the meters");
}
