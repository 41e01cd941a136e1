//! Offboarding over the whole path, in process with the simulator: a leaver in a
//! pilot of two loses their group and their seat on the event path; the grace
//! before the organization removal and a return within it; removals the valve
//! holds, listed and approved over the operator API, with `/readyz` degraded and
//! never 503; and identity collisions that plan nothing twice.

use chrono::Duration;
use cowork_sync::audit;
use serde_json::json;

use crate::admin_reconcile::{apply_rules, signed_up, sim_members, RULES};
use crate::support::TestApp;

/// Whether the simulator's organization still has this member.
fn in_org(app: &TestApp, member_id: &str) -> bool {
    let state = app.sim.as_ref().unwrap().state();
    let found = state.users().iter().any(|u| u.id == member_id);
    found
}

fn actions(app: &TestApp) -> Vec<String> {
    audit::list(app.core.store.as_ref(), None, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// A pilot of two, synced: both members of the org and of the pilot group.
async fn pilot_of_two(app: &TestApp) -> ([String; 2], [String; 2]) {
    apply_rules(app, RULES).await;
    let members = [
        signed_up(app, "alice@example.com"),
        signed_up(app, "bob@example.com"),
    ];
    let users = [
        app.user("alice@example.com").await,
        app.user("bob@example.com").await,
    ];
    app.group("Cowork Pilot", &[&users[0], &users[1]]).await;
    let run = app.admin("POST", "/reconcile", None).await;
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    app.reconciler
        .as_ref()
        .unwrap()
        .drain_outbox()
        .await
        .unwrap();
    let mut both = members.to_vec();
    both.sort();
    assert_eq!(sim_members(app, "cowork-pilot"), both);
    (users, members)
}

async fn deactivate(app: &TestApp, user: &str) {
    let r = app
        .patch(
            &format!("/Users/{user}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn reactivate(app: &TestApp, user: &str) {
    let r = app
        .patch(
            &format!("/Users/{user}"),
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[actix_web::test]
async fn a_leaver_in_a_pilot_of_two_loses_the_group_and_the_seat_on_the_event_path() {
    let app = TestApp::builder().with_sim().start().await;
    let ([alice, _bob], [alice_id, bob_id]) = pilot_of_two(&app).await;

    deactivate(&app, &alice).await;
    app.drain_clean().await;
    assert_eq!(sim_members(&app, "cowork-pilot"), vec![bob_id.clone()]);
    assert!(!in_org(&app, &alice_id), "the seat is freed");
    assert!(in_org(&app, &bob_id));

    let done = actions(&app);
    for expected in [
        "lifecycle.offboarding",
        "downstream.remove_member",
        "downstream.remove_from_org",
    ] {
        assert!(done.iter().any(|a| a == expected), "{expected}: {done:?}");
    }
    let ready = app.send("GET", "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["status"], "ok", "{}", ready.text);
    let plan = app.admin("GET", "/plan", None).await;
    assert_eq!(plan.body["actions"], json!([]), "{}", plan.body["text"]);
    let status = app.admin("GET", "/status", None).await;
    assert_eq!(status.body["held_removals"], 0);
    assert_eq!(status.body["offboarding"], 0, "{}", status.text);
}

#[actix_web::test]
async fn the_grace_keeps_the_seat_a_return_cancels_it_and_its_end_frees_it() {
    let app = TestApp::builder()
        .config("LIFECYCLE__REMOVE_FROM_ORG_AFTER", "1h")
        .with_sim()
        .start()
        .await;
    let r = app.reconciler.clone().unwrap();
    let ([alice, _bob], [alice_id, bob_id]) = pilot_of_two(&app).await;

    // Out of the group at once; the seat stays for the grace.
    deactivate(&app, &alice).await;
    r.drain_outbox().await.unwrap();
    assert_eq!(sim_members(&app, "cowork-pilot"), vec![bob_id.clone()]);
    assert!(in_org(&app, &alice_id));
    let status = app.admin("GET", "/status", None).await;
    assert_eq!(status.body["offboarding"], 1, "{}", status.text);
    let due = r.next_offboarding_due().await.unwrap().unwrap();
    assert_eq!(due, app.now() + Duration::hours(1));
    let explain = app
        .admin("GET", &format!("/users/{alice}/effective-access"), None)
        .await;
    assert_eq!(explain.status, 200, "{}", explain.text);
    assert_eq!(
        explain.body["downstream"]["offboarding"]["state"], "in_grace",
        "{}",
        explain.text
    );

    // Back within the grace: the group returns, the organization removal is cancelled.
    app.advance(Duration::minutes(30));
    reactivate(&app, &alice).await;
    r.drain_outbox().await.unwrap();
    let mut both = vec![alice_id.clone(), bob_id.clone()];
    both.sort();
    assert_eq!(sim_members(&app, "cowork-pilot"), both);
    assert!(r.next_offboarding_due().await.unwrap().is_none());
    assert!(actions(&app).iter().any(|a| a == "lifecycle.returned"));

    // Gone again, and this time the grace runs out: the timer's pass frees the seat.
    deactivate(&app, &alice).await;
    r.drain_outbox().await.unwrap();
    app.advance(Duration::minutes(59));
    assert_eq!(r.offboard_due().await.unwrap().entries, 0);
    assert!(in_org(&app, &alice_id), "not due yet");
    app.advance(Duration::minutes(2));
    r.offboard_due().await.unwrap();
    assert!(!in_org(&app, &alice_id));
    assert!(r.next_offboarding_due().await.unwrap().is_none());
    let plan = app.admin("GET", "/plan", None).await;
    assert_eq!(plan.body["actions"], json!([]), "{}", plan.body["text"]);
}

#[actix_web::test]
async fn held_removals_are_listed_and_approved_over_http_and_readiness_only_degrades() {
    // No floor: any removal beyond the ratio is held (a strict operator's choice).
    let app = TestApp::builder()
        .config("RECONCILE__REMOVAL_FLOOR", "0")
        .with_sim()
        .start()
        .await;
    let r = app.reconciler.clone().unwrap();
    let ([alice, _bob], [alice_id, _]) = pilot_of_two(&app).await;

    deactivate(&app, &alice).await;
    let drained = r.drain_outbox().await.unwrap();
    assert!(drained.held > 0, "{drained:?}");
    assert!(sim_members(&app, "cowork-pilot").contains(&alice_id));

    let held = app.admin("GET", "/held", None).await;
    assert_eq!(held.status, 200, "{}", held.text);
    let items = held.body["held"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    for item in &items {
        assert!(item["id"].as_str().unwrap().starts_with("h_"));
        assert_eq!(item["userName"], "alice@example.com", "{item}");
        assert!(
            item["reason"]
                .as_str()
                .unwrap()
                .contains("reconcile.removal_floor"),
            "{item}"
        );
        assert_eq!(item["age_secs"], 0);
    }
    assert!(held.body["text"]
        .as_str()
        .unwrap()
        .contains("held by the safety valve"));

    // Degraded, not unavailable: the IdP keeps writing.
    let ready = app.send("GET", "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(ready.body["checks"]["held_removals"]["status"], "degraded");
    let status = app.admin("GET", "/status", None).await;
    assert_eq!(status.body["held_removals"], items.len(), "{}", status.text);
    assert_eq!(status.body["readiness"], "degraded");
    let metrics = app.send("GET", "/metrics", None, None, &[]).await;
    assert!(
        metrics
            .text
            .contains(&format!("cowork_sync_held_removals {}", items.len())),
        "{}",
        metrics.text
    );

    // Bad approvals change nothing and answer JSON.
    for body in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": ["x"], "all": true}),
    ] {
        let bad = app.admin("POST", "/held/approve", Some(body.clone())).await;
        assert_eq!(bad.status, 400, "{body}: {}", bad.text);
        assert!(bad.body["detail"].is_string(), "{}", bad.text);
    }
    let unknown = app
        .admin(
            "POST",
            "/held/approve",
            Some(json!({"ids": ["h_000000000000"]})),
        )
        .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.body["unknown"], json!(["h_000000000000"]));
    assert_eq!(unknown.body["still_held"], items.len());

    // Approved: applied at once, audited with the approver's token subject.
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let approved = app
        .admin("POST", "/held/approve", Some(json!({ "ids": ids })))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["still_held"], 0, "{}", approved.text);
    assert!(!sim_members(&app, "cowork-pilot").contains(&alice_id));
    assert!(!in_org(&app, &alice_id));
    let entries = audit::list(app.core.store.as_ref(), None, 0, usize::MAX).unwrap();
    let approval = entries
        .iter()
        .find(|e| e.action == "reconcile.approved")
        .unwrap();
    assert_eq!(approval.actor, "operator");
    let ready = app.send("GET", "/readyz", None, None, &[]).await;
    assert_eq!(ready.body["status"], "ok", "{}", ready.text);
    let held = app.admin("GET", "/held", None).await;
    assert_eq!(held.body["held"], json!([]));
}

#[actix_web::test]
async fn two_directory_users_of_one_member_never_flap_and_are_reported() {
    let app = TestApp::builder().with_sim().start().await;
    apply_rules(&app, RULES).await;
    let alice_id = signed_up(&app, "alice@example.com");
    let first = app.user("alice@example.com").await;
    let second = app.user("Alice+cowork@example.com").await;
    app.group("Cowork Pilot", &[&first, &second]).await;
    for _ in 0..2 {
        let run = app.admin("POST", "/reconcile", None).await;
        assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    }
    app.reconciler
        .as_ref()
        .unwrap()
        .drain_outbox()
        .await
        .unwrap();
    assert_eq!(sim_members(&app, "cowork-pilot"), vec![alice_id]);
    let plan = app.admin("GET", "/plan", None).await;
    assert_eq!(plan.body["actions"], json!([]), "{}", plan.body["text"]);
    assert_eq!(
        plan.body["collisions"].as_array().unwrap().len(),
        1,
        "{}",
        plan.text
    );
    let status = app.admin("GET", "/status", None).await;
    assert_eq!(status.body["identity_collisions"], 1, "{}", status.text);
    assert!(actions(&app)
        .iter()
        .any(|a| a == "reconcile.identity_collision"));
}
