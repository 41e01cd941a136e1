//! The operator console in process: sign-in with an admin token only, the session
//! cookie's attributes, CSRF and origin checks, expiry on the manual clock, audit
//! entries for sign-in and sign-out, every page, and approving a held removal.

use std::collections::BTreeMap;

use chrono::Duration;
use cowork_sync::audit;
use serde_json::json;

use crate::admin_reconcile::{apply_rules, signed_up, sim_members, RULES};
use crate::support::TestApp;

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the page holds `needle`, printing the page when it does not.
    #[track_caller]
    pub fn shows(&self, needle: &str) {
        assert!(
            self.text.contains(needle),
            "{needle:?} not in:\n{}",
            self.text
        );
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.text[at..].split('"').next().unwrap().to_string()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap();
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(path, form, None).await
    }

    pub async fn post_from(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        self.keep(res).await
    }

    /// Signs in with `token`; returns the answer to the sign-in POST.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/ui/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = form.csrf();
        self.post("/ui/sign-in", &[("csrf", &csrf), ("token", token)])
            .await
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn actions(app: &TestApp) -> Vec<(String, String)> {
    audit::list(app.core.store.as_ref(), None, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect()
}

#[actix_web::test]
async fn only_an_admin_token_signs_in_and_the_session_is_strict_audited_and_expires() {
    let app = TestApp::start().await;
    let mut b = Browser::new(&app);

    let root = b.get("/").await;
    assert_eq!((root.status, root.header("location")), (303, "/ui/"));
    let page = b.get("/ui/").await;
    assert_eq!((page.status, page.header("location")), (303, "/ui/sign-in"));

    let form = b.get("/ui/sign-in").await;
    assert!(form
        .header("content-security-policy")
        .contains("default-src 'none'"));
    assert_eq!(form.header("x-frame-options"), "DENY");
    assert!(!form.text.contains("<script"), "{}", form.text);

    let scim = b.sign_in(&app.scim_token).await;
    assert_eq!(scim.status, 403, "{}", scim.text);
    assert!(
        scim.text.contains("a SCIM token cannot sign in"),
        "{}",
        scim.text
    );
    let bad = b.sign_in("not-a-token").await;
    assert_eq!(bad.status, 401, "{}", bad.text);
    // Without the form's CSRF token.
    b.get("/ui/sign-in").await;
    let forged = b
        .post(
            "/ui/sign-in",
            &[("csrf", "00"), ("token", &app.admin_token)],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!b.cookies.contains_key("cs_session"));

    // A token pasted with its trailing newline works.
    let ok = b.sign_in(&format!("{}\n", app.admin_token)).await;
    assert_eq!(
        (ok.status, ok.header("location")),
        (303, "/ui/"),
        "{}",
        ok.text
    );
    let set = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("cs_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    assert!(!set.contains(&app.admin_token));

    let overview = b.get("/ui/").await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert!(overview
        .text
        .contains("Signed in as <strong>operator</strong>"));
    assert!(actions(&app).contains(&("operator".into(), "ui.sign_in".into())));

    // A form from another origin, or with a stale token, changes nothing.
    let csrf = overview.csrf();
    let other = b
        .post_from(
            "/ui/sign-out",
            &[("csrf", &csrf)],
            Some("https://evil.example.com"),
        )
        .await;
    assert_eq!(other.status, 403);
    let stale = b.post("/ui/sign-out", &[("csrf", "ab")]).await;
    assert_eq!(stale.status, 403);
    assert_eq!(b.get("/ui/").await.status, 200);

    let out = b.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.header("location")), (303, "/ui/sign-in"));
    assert_eq!(b.get("/ui/").await.status, 303);
    assert!(actions(&app).contains(&("operator".into(), "ui.sign_out".into())));

    // Idle for longer than an hour: signed out.
    b.sign_in(&app.admin_token).await;
    assert_eq!(b.get("/ui/").await.status, 200);
    app.advance(Duration::minutes(61));
    assert_eq!(b.get("/ui/").await.status, 303);
}

#[actix_web::test]
async fn every_console_page_renders_and_the_log_names_the_idp_client() {
    let app = TestApp::builder().with_sim().start().await;
    apply_rules(&app, RULES).await;
    signed_up(&app, "ada@example.com");
    let ada = app.user("ada@example.com").await;
    app.get(&format!("/Users/{ada}")).await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin_token).await;
    for path in [
        "/ui/",
        "/ui/held",
        "/ui/runs",
        "/ui/plan",
        "/ui/user",
        "/ui/user?q=ada%40example.com",
        "/ui/log",
        "/ui/audit",
        "/ui/audit?since=2026-01-01&action=scim.",
        "/ui/audit?verify=1",
        "/ui/rules",
        "/ui/rules?from=1&to=1",
        "/ui/tokens",
        "/ui/insights",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page
            .header("content-security-policy")
            .contains("form-action 'self'"));
        assert!(page.text.contains("aria-current=\"page\""), "{path}");
    }
    let log = b.get("/ui/log?client=okta").await;
    assert!(log.text.contains("<td>okta</td>"), "{}", log.text);
    assert!(log.text.contains(&ada), "{}", log.text);
    assert!(
        !log.text.contains("ada@example.com"),
        "the log shows ids only"
    );
    let user = b.get("/ui/user?q=ada%40example.com").await;
    assert!(user.text.contains("Effective access"), "{}", user.text);
    let verify = b.get("/ui/audit?verify=1").await;
    assert!(
        verify.text.contains("The audit trail is intact"),
        "{}",
        verify.text
    );
    let bad = b.get("/ui/audit?since=yesterday").await;
    assert_eq!(bad.status, 400);
}

/// A pilot of two synced, then one leaver whose removal the valve holds (no floor).
pub async fn one_held_removal(app: &TestApp) {
    apply_rules(app, RULES).await;
    signed_up(app, "alice@example.com");
    signed_up(app, "bob@example.com");
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.group("Cowork Pilot", &[&alice, &bob]).await;
    let run = app.admin("POST", "/reconcile", None).await;
    assert_eq!(run.body["outcome"], "ok", "{}", run.body["text"]);
    let r = app.reconciler.clone().unwrap();
    r.drain_outbox().await.unwrap();
    assert_eq!(sim_members(app, "cowork-pilot").len(), 2);
    let off = app
        .patch(
            &format!("/Users/{alice}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let drained = r.drain_outbox().await.unwrap();
    assert!(drained.held > 0, "{drained:?}");
}

#[actix_web::test]
async fn a_held_removal_is_approved_from_the_console_and_audited_with_the_operator() {
    let app = TestApp::builder()
        .config("RECONCILE__REMOVAL_FLOOR", "0")
        .with_sim()
        .start()
        .await;
    one_held_removal(&app).await;
    let held = app.admin("GET", "/held", None).await;
    let id = held.body["held"][0]["id"].as_str().unwrap().to_string();

    let mut b = Browser::new(&app);
    b.sign_in(&app.admin_token).await;
    let overview = b.get("/ui/").await;
    assert!(
        overview.text.contains("waiting for approval"),
        "{}",
        overview.text
    );
    let page = b.get("/ui/held").await;
    page.shows(&id);
    assert!(
        page.text.contains("alice@example.com"),
        "the operator sees whom"
    );
    let csrf = page.csrf();
    let nothing = b.post("/ui/held/approve", &[("csrf", &csrf)]).await;
    assert_eq!(nothing.status, 400);
    let done = b
        .post(
            "/ui/held/approve",
            &[("csrf", &csrf), ("id", &id), ("which", "selected")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert!(
        done.header("location").starts_with("/ui/held?approved=1&"),
        "{}",
        done.header("location")
    );
    let after = b.get(done.header("location")).await;
    assert!(
        after.text.contains("Approved 1 removal(s)"),
        "{}",
        after.text
    );
    assert!(!after.text.contains(&id), "{}", after.text);
    assert_eq!(sim_members(&app, "cowork-pilot").len(), 1);
    // What the approval planned next (the seat) may be held in turn: approve all.
    let mut page = after;
    for _ in 0..3 {
        if page.text.contains("No removal is held.") {
            break;
        }
        let csrf = page.csrf();
        let done = b
            .post("/ui/held/approve", &[("csrf", &csrf), ("which", "all")])
            .await;
        assert_eq!(done.status, 303, "{}", done.text);
        page = b.get(done.header("location")).await;
    }
    page.shows("No removal is held.");
    assert!(actions(&app).contains(&("operator".into(), "reconcile.approved".into())));
}

/// The text of the element whose opening tag contains `marker`, up to its `close`.
pub fn section<'a>(page: &'a str, marker: &str, close: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {page}"));
    let rest = &page[at..];
    &rest[..rest.find(close).unwrap_or(rest.len())]
}

#[actix_web::test]
async fn the_insights_page_charts_adoption_and_spend_beside_tables_of_the_same_figures() {
    use crate::insights_http::{pilot, usage};
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
    let mut b = Browser::new(&app);
    b.sign_in(&token).await;
    let page = b.get("/ui/insights?days=7").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains("style="), "CSP-clean: {}", page.text);
    assert!(!page.text.contains("<script"), "{}", page.text);
    assert!(
        page.text
            .contains("<a href=\"/ui/insights\" aria-current=\"page\">Insights</a>"),
        "in the nav: {}",
        page.text
    );

    // Adoption: the chart with its text alternative, and the table of the same figures.
    let chart = section(&page.text, "id=\"adoption-chart\"", "</svg>");
    assert!(
        chart.contains("<title id=\"adoption-chart-title\">Adoption per group</title>"),
        "{chart}"
    );
    assert!(
        chart.contains("<desc id=\"adoption-chart-desc\">"),
        "{chart}"
    );
    assert!(chart.contains(">Cowork pilot<"), "{chart}");
    assert!(
        chart.contains(">2 (67 %)<"),
        "Cowork users with their share: {chart}"
    );
    let table = section(&page.text, "id=\"adoption-table\"", "</table>");
    let cells = |t: &str| -> Vec<String> {
        t.split("<td")
            .skip(1)
            .map(|c| {
                c.split_once('>')
                    .unwrap()
                    .1
                    .split('<')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    // rules, members, latest day, 7 days, 30 days, Cowork users, share, sessions per user
    let row = cells(table);
    assert_eq!(
        row,
        ["pilot", "3", "0", "1", "2", "2", "67 %", "3.00"],
        "{table}"
    );
    let inactive = section(&page.text, "id=\"inactive-table\"", "</table>");
    page.shows("Inactive seats (no activity in 7 days)");
    assert!(
        inactive.contains("bob@example.com, carol@example.com"),
        "{inactive}"
    );
    assert!(!inactive.contains("alice@example.com"), "{inactive}");

    // Spend: money as money; the limit and the suggestion per member and × members.
    let month_start = chrono::Datelike::with_day(&today, 1).unwrap();
    let mtd: u64 = [(3, 1200), (20, 300)]
        .iter()
        .filter(|(d, _)| today - Duration::days(*d) >= month_start)
        .map(|(_, c)| c)
        .sum();
    let mtd = cowork_sync::money::format_minor(mtd, "USD");
    let chart = section(&page.text, "id=\"spend-chart\"", "</svg>");
    assert!(
        chart.contains("<title id=\"spend-chart-title\">Spend per group</title>"),
        "{chart}"
    );
    assert!(chart.contains(&format!(">{mtd}<")), "{chart}");
    assert!(chart.contains(">$1,500.00<"), "limit × members: {chart}");
    assert!(chart.contains(">$30.24<"), "suggested × members: {chart}");
    let table = section(&page.text, "id=\"spend-table\"", "</table>");
    let row = cells(table);
    assert_eq!(
        row[..6],
        [
            "3",
            mtd.as_str(),
            "$500.00",
            "$1,500.00",
            "$10.08",
            "$30.24"
        ],
        "{table}"
    );
    // The advisor's inputs and windows.
    let advisor = section(&page.text, "id=\"advisor-table\"", "</table>");
    assert_eq!(
        cells(advisor),
        ["6", "2", "0.75", "$15.00", "$2.50", "$10.08"],
        "{advisor}"
    );
    page.shows("× 4.3 weeks × 1.25 headroom");
    page.shows("Sessions and active users measured ");
}

#[actix_web::test]
async fn the_insights_form_refuses_a_bad_window_with_the_page_and_a_400() {
    let app = TestApp::builder().with_sim().start().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin_token).await;
    for bad in ["0", "91", "seven", "7.5", "-3"] {
        let page = b.get(&format!("/ui/insights?days={bad}")).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.text);
        assert!(page.text.contains("from 1 to 90"), "{bad}: {}", page.text);
        assert!(
            page.text.contains("aria-current=\"page\""),
            "the page, with its nav"
        );
        assert!(page.text.contains("name=\"days\""), "the form again");
    }
}

#[actix_web::test]
async fn when_the_analytics_side_cannot_answer_the_insights_page_says_why() {
    // No Analytics client (no simulator, no key): a sentence naming the setting.
    let app = TestApp::start().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin_token).await;
    let page = b.get("/ui/insights").await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.shows("analytics_api_key_file");

    // The simulator without rules: no groups to report on, said so.
    let app = TestApp::builder().with_sim().start().await;
    let mut b = Browser::new(&app);
    b.sign_in(&app.admin_token).await;
    let page = b.get("/ui/insights").await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.shows("No rule table has been applied yet");
}

#[actix_web::test]
async fn when_the_analytics_api_is_down_the_insights_page_says_so_after_one_retry() {
    use cowork_sync::sim::faults::FaultConfig;
    let (app, token, _) = crate::insights_http::pilot().await;
    let sim = app.sim.as_ref().unwrap();
    sim.sim().set_faults(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    let before = sim.sim().metrics().injected_errors;
    let mut b = Browser::new(&app);
    b.sign_in(&token).await;
    let page = b.get("/ui/insights").await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.shows("The Analytics API is unavailable");
    page.shows("<h1"); // the page itself, not an error page
                       // A person is waiting: each report the page asks for is tried twice, not six
                       // times with backoff (the pool check, which nobody waits on, stays patient).
    let calls = sim.sim().metrics().injected_errors - before;
    assert!((2..=4).contains(&calls), "{calls} analytics calls");

    // The JSON report fails the same way: a 503 (the cause goes to the log).
    let before = sim.sim().metrics().injected_errors;
    let r = app
        .send(
            "GET",
            "/admin/v1/insights/adoption",
            None,
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);

    assert_eq!(sim.sim().metrics().injected_errors - before, 2);
}

#[actix_web::test]
async fn the_insights_page_shows_a_pooled_budget_as_a_meter_with_its_level() {
    use crate::insights_http::{pilot, usage};
    let (app, token, today) = pilot().await;
    // The same pilot with a $20.00 pool that warns at half.
    let rules = format!(
        "{}pool = {{ monthly = 2000, warn_at = 0.5 }}\n",
        crate::insights_http::RULES
    );
    crate::admin_reconcile::apply_rules_with(&app, &token, &rules).await;
    let ago = |d: i64| (today - Duration::days(d)).to_string();
    usage(
        &app,
        json!([{"email": "alice@example.com", "date": ago(3), "sessions": 4, "cost_minor": 1200}]),
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in(&token).await;
    let page = b.get("/ui/insights").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let meter = section(&page.text, "id=\"pool-chart\"", "</svg>");
    assert!(
        meter.contains("<title id=\"pool-chart-title\">Pooled budgets, month to date</title>"),
        "{meter}"
    );
    // $12.00 of $20.00: 60 % of the 340 px track, past the tick at half (the warn fill).
    assert!(meter.contains("width=\"204.0\""), "{meter}");
    assert!(meter.contains("x1=\"360.0\""), "{meter}");
    assert!(
        meter.contains("$12.00 of $20.00 (60 %), warn; warns at 50 %"),
        "{meter}"
    );
    let table = section(&page.text, "id=\"spend-table\"", "</table>");
    assert!(table.contains("$12.00 of $20.00 (60 %), warn"), "{table}");
    assert!(!page.text.contains("style="), "{}", page.text);
}
