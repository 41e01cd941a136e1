//! `GET /admin/v1/insights/adoption` and `/insights/spend` in process, over the
//! bundled simulator with usage injected through `POST /_sim/usage`: adoption per
//! group beside its rules, inactive seats by userName, month-to-date cost, the
//! advisor's suggestion with its inputs, and the errors.

use chrono::{Datelike, Duration, NaiveDate};
use cowork_sync::auth::Scope;
use serde_json::{json, Value};

use crate::admin_reconcile::{apply_rules, signed_up};
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
spend = { monthly = 50000 }
"#;

/// A pilot of three, reconciled under `rules`, and what it is made of.
pub struct Pilot {
    pub app: TestApp,
    /// A fresh admin token.
    pub token: String,
    /// The daemon's (and the simulator's) today.
    pub today: NaiveDate,
    /// SCIM ids of alice, bob and carol.
    pub users: Vec<String>,
    /// Their Cowork member ids, in the same order.
    pub members: Vec<String>,
    /// The SCIM id of the `Cowork Pilot` group.
    pub group: String,
}

/// A pilot of three, reconciled under `rules`; the daemon's clock (which the
/// in-process simulator runs on) then moves to mid-December, so the month and the
/// engagement window have days with data.
pub async fn pilot_with(rules: &str) -> Pilot {
    let app = TestApp::builder().with_sim().start().await;
    apply_rules(&app, rules).await;
    let (mut users, mut members) = (Vec::new(), Vec::new());
    for who in ["alice", "bob", "carol"] {
        let email = format!("{who}@example.com");
        members.push(signed_up(&app, &email));
        users.push(app.user(&email).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group = app.group("Cowork Pilot", &refs).await;
    let run = app.admin("POST", "/reconcile", None).await;
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    app.clock.set("2026-12-15T12:00:00Z".parse().unwrap());
    let now = app.sim.as_ref().unwrap().sim().clock().now();
    assert_eq!(now, app.now(), "the simulator runs on the daemon's clock");
    let token = app
        .minter
        .mint("operator", Scope::Admin, 60, app.clock.as_ref())
        .unwrap();
    Pilot {
        app,
        token,
        today: now.date_naive(),
        users,
        members,
        group,
    }
}

/// [`pilot_with`] the pilot's [`RULES`]: the app, a fresh admin token and today.
pub async fn pilot() -> (TestApp, String, NaiveDate) {
    let p = pilot_with(RULES).await;
    (p.app, p.token, p.today)
}

pub async fn usage(app: &TestApp, records: Value) {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/_sim/usage",
            app.sim.as_ref().unwrap().base_url()
        ))
        .header("x-api-key", "local-simulator")
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .send("GET", &format!("/admin/v1{path}"), None, Some(token), &[])
        .await;
    (r.status, r.body)
}

#[actix_web::test]
async fn adoption_counts_active_members_and_names_the_inactive_seats() {
    let (app, token, today) = pilot().await;
    let ago = |d: i64| (today - Duration::days(d)).to_string();
    usage(
        &app,
        json!([
            {"email": "alice@example.com", "date": ago(3), "sessions": 4, "cost_minor": 1200},
            {"email": "bob@example.com", "date": ago(20), "sessions": 2, "cost_minor": 300}
        ]),
    )
    .await;
    let (status, body) = get(&app, &token, "/insights/adoption?days=7").await;
    assert_eq!(status, 200, "{body}");
    let g = &body["groups"][0];
    assert_eq!(g["name"], "Cowork pilot");
    assert_eq!(g["rules"], json!(["pilot"]));
    assert_eq!(g["members"], 3);
    assert_eq!(g["active_7d"], 1);
    assert_eq!(g["active_30d"], 2);
    assert_eq!(g["cowork_users_30d"], 2);
    assert_eq!(g["sessions_per_active_user"], 3.0);
    assert_eq!(
        g["inactive"],
        json!(["bob@example.com", "carol@example.com"])
    );
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Inactive seats in Cowork pilot (no activity in 7 days)"),
        "{text}"
    );

    for bad in [
        "/insights/adoption?days=0",
        "/insights/adoption?days=91",
        "/insights/adoption?weeks=2",
    ] {
        let (status, body) = get(&app, &token, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["status"], "400");
    }
}

#[actix_web::test]
async fn spend_shows_month_to_date_cost_and_the_advisors_suggestion_with_its_inputs() {
    let (app, token, today) = pilot().await;
    let ago = |d: i64| (today - Duration::days(d)).to_string();
    usage(
        &app,
        json!([
            {"email": "alice@example.com", "date": ago(3), "sessions": 4, "cost_minor": 1200},
            {"email": "bob@example.com", "date": ago(5), "sessions": 2, "cost_minor": 300},
            {"email": "carol@example.com", "date": today.to_string(), "product": "chat", "cost_minor": 700}
        ]),
    )
    .await;
    let month_start = today.with_day(1).unwrap();
    let mtd: u64 = [(3, 1200), (5, 300), (0, 700)]
        .iter()
        .filter(|(d, _)| today - Duration::days(*d) >= month_start)
        .map(|(_, c)| c)
        .sum();
    let (status, body) = get(&app, &token, "/insights/spend").await;
    assert_eq!(status, 200, "{body}");
    let g = &body["groups"][0];
    assert_eq!(g["month_to_date"]["minor"], mtd, "{body}");
    // No rule sets a pool: the reconciles' pool checks leave no readiness check.
    let (_, status) = get(&app, &token, "/status").await;
    assert!(status["checks"].get("pool_check").is_none(), "{status}");
    assert_eq!(status["pools"], json!([]));
    assert_eq!(g["current_limit"], "$500.00");
    assert_eq!(g["current_limit_minor"], 50000);
    // 6 sessions by 2 users over 4 weeks = 0.75 a week; $15.00 / 6 = 250 a session;
    // 0.75 × 250 × 4.3 × 1.25 = 1007.8 → $10.08.
    let advice = &g["advisor"];
    assert_eq!(advice["input"]["sessions"], 6, "{body}");
    assert_eq!(advice["input"]["active_users"], 2);
    assert_eq!(advice["input"]["cost_minor"], 1500);
    assert_eq!(advice["suggested_monthly_minor"], 1008);
    assert_eq!(g["suggested"]["display"], "$10.08");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("6 sessions by 2 active users"), "{text}");
    assert!(
        text.contains(&format!(
            "sessions measured {}",
            body["engagement"]["from"].as_str().unwrap()
        )),
        "{text}"
    );
}

#[actix_web::test]
async fn without_an_analytics_client_the_endpoints_answer_503() {
    let app = TestApp::start().await;
    let r = app.admin("GET", "/insights/spend", None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "503");
}

#[actix_web::test]
async fn the_simulators_today_moves_with_the_daemons_clock() {
    let (app, token, today) = pilot().await;
    // 2026-12-15 12:00: the latest day with engagement data is the 14th, so the 15th's
    // usage is not visible yet; this month's cost is.
    usage(
        &app,
        json!([{"email": "alice@example.com", "date": today.to_string(), "sessions": 3, "cost_minor": 900}]),
    )
    .await;
    let (_, body) = get(&app, &token, "/insights/adoption?days=1").await;
    assert_eq!(body["groups"][0]["active_1d"], 0, "{body}");
    let (_, body) = get(&app, &token, "/insights/spend").await;
    assert_eq!(body["groups"][0]["month_to_date"]["minor"], 900, "{body}");
    // A day later (12:00 on the 16th, after 10:00) the 15th has landed.
    app.advance(Duration::days(1));
    let (_, body) = get(&app, &token, "/insights/adoption?days=1").await;
    assert_eq!(body["groups"][0]["active_1d"], 1, "{body}");
    // In January the month-to-date cost starts again from zero.
    app.advance(Duration::days(17));
    let (_, body) = get(&app, &token, "/insights/spend").await;
    assert_eq!(body["groups"][0]["month_to_date"]["minor"], 0, "{body}");
}
