//! The console in a real browser: Debian's headless `chromium`, driven through
//! WebDriver by Debian's `chromedriver` (plain JSON over HTTP, spoken here with
//! reqwest). Signs in, approves a held removal, revokes a token on the tokens page,
//! reads the insights charts and tables after usage is injected into the simulator,
//! checks what the pages show, and keeps a screenshot of every page under
//! `target/tmp/console-shots/`.
//!
//! Skips, saying why, when chromium or chromedriver is not installed (`.ci/run`
//! installs both).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{json, Value};

use crate::console::one_held_removal;
use crate::insights_http::{pilot, usage};
use crate::support::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver we started, and one browser session in it.
struct Driver {
    child: Child,
    http: reqwest::Client,
    base: String,
    session: String,
    shots: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Only the process this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Option<Driver> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(bin).exists() {
                println!("SKIP console_browser: {bin} is not installed (apt-get install chromium chromium-driver)");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it says so (an event, not a timed wait).
        let stdout = child.stdout.take().unwrap();
        let ready = actix_web::rt::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("started successfully"))
        })
        .await
        .unwrap();
        assert!(ready, "chromedriver did not start");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000"]
                }
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-shots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Driver {
            child,
            http,
            base,
            session,
            shots,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let answer: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "{method} {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    /// Clicks a control that loads another page, and returns once the page it was
    /// on is gone (its root element reference goes stale), so what is read next is
    /// the new page: chromedriver then waits for that page to load. Bounded by the
    /// number of round trips, not by time.
    async fn submit(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        for _ in 0..10_000 {
            let url = format!("{}/session/{}/element/{old}/name", self.base, self.session);
            let answer: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if page_is_gone(&answer["value"]) {
                return;
            }
            assert!(answer["value"].get("error").is_none(), "{answer}");
        }
        panic!("clicking {css} did not load another page");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn title(&self) -> String {
        self.call("GET", "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn text(&self) -> String {
        let body = self.find("main").await;
        self.call("GET", &format!("/element/{body}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn clear(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/clear"), None)
            .await;
    }

    /// The text the browser shows for the element `css` selects.
    async fn text_of(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call("GET", &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A screenshot of one element (scrolled into view) under `name`.
    async fn shot_of(&self, css: &str, name: &str) {
        let id = self.find(css).await;
        let png = self
            .call("GET", &format!("/element/{id}/screenshot"), None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn shot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }
}

#[actix_web::test]
async fn in_chromium_an_operator_signs_in_approves_a_held_removal_and_sees_it_applied() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = TestApp::builder()
        .config("RECONCILE__REMOVAL_FLOOR", "0")
        .with_sim()
        .start()
        .await;
    one_held_removal(&app).await;

    driver.open(&format!("{}/ui/", app.base)).await;
    assert_eq!(driver.title().await, "Sign in · cowork-sync");
    driver.shot("01-sign-in").await;
    driver.type_into("#token", &app.scim_token).await;
    driver.submit("button[type=submit]").await;
    let refused = driver.text().await;
    assert!(refused.contains("a SCIM token cannot sign in"), "{refused}");
    driver.type_into("#token", &app.admin_token).await;
    driver.submit("button[type=submit]").await;
    assert_eq!(driver.title().await, "Overview · cowork-sync");
    let overview = driver.text().await;
    assert!(overview.contains("waiting for approval"), "{overview}");

    for (i, (path, label)) in [
        ("/ui/", "overview"),
        ("/ui/held", "held"),
        ("/ui/runs", "runs"),
        ("/ui/plan", "plan"),
        ("/ui/user?q=alice%40example.com", "user"),
        ("/ui/log", "log"),
        ("/ui/audit", "audit"),
        ("/ui/rules", "rules"),
        ("/ui/tokens", "tokens"),
        ("/ui/insights", "insights"),
    ]
    .iter()
    .enumerate()
    {
        driver.open(&format!("{}{path}", app.base)).await;
        assert!(driver.title().await.ends_with("· cowork-sync"), "{path}");
        driver.shot(&format!("{:02}-{label}", i + 2)).await;
    }

    driver.open(&format!("{}/ui/held", app.base)).await;
    driver.click("input[name=id]").await;
    driver.submit("button[value=selected]").await;
    let shown = driver.text().await;
    assert!(
        shown.contains("Approved 1 removal(s): 1 applied, 0 failed"),
        "{shown}"
    );
    driver.shot("12-held-approved").await;

    // Tokens: revoke an IdP's old token from its row, and see it revoked.
    let old = app
        .minter
        .mint(
            "okta-old",
            cowork_sync::auth::Scope::Scim,
            30,
            app.clock.as_ref(),
        )
        .unwrap();
    let used = app
        .send("GET", "/scim/v2/Users", None, Some(&old), &[])
        .await;
    assert_eq!(used.status, 200);
    let listed = app.admin("GET", "/tokens", None).await;
    let jti = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == "okta-old")
        .unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_string();
    driver.open(&format!("{}/ui/tokens", app.base)).await;
    let row = format!("tr[id='token-{jti}']");
    driver.submit(&format!("{row} button[type=submit]")).await;
    assert_eq!(driver.title().await, "Tokens · cowork-sync");
    let shown = driver.text().await;
    assert!(
        shown.contains(&format!("Revoked token {jti} (okta-old)")),
        "{shown}"
    );
    let row_id = driver.find(&row).await;
    let row_text = driver
        .call("GET", &format!("/element/{row_id}/text"), None)
        .await;
    let row_text = row_text.as_str().unwrap_or_default();
    assert!(
        row_text.contains("revoked") && row_text.contains("by operator"),
        "{row_text}"
    );
    assert!(
        !row_text.contains("Revoke"),
        "no revoke button on a revoked token: {row_text}"
    );
    driver.shot("13-token-revoked").await;
    let refused = app
        .send("GET", "/scim/v2/Users", None, Some(&old), &[])
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    driver.call("DELETE", "", None).await;
    println!("screenshots in {}", driver.shots.display());
}

#[actix_web::test]
async fn in_chromium_the_insights_page_charts_the_usage_the_simulator_was_given() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (app, token, today) = pilot().await;
    let ago = |d: i64| (today - chrono::Duration::days(d)).to_string();
    usage(
        &app,
        json!([
            {"email": "alice@example.com", "date": ago(3), "sessions": 4, "cost_minor": 1200},
            {"email": "bob@example.com", "date": ago(5), "sessions": 2, "cost_minor": 300}
        ]),
    )
    .await;
    driver.open(&format!("{}/ui/sign-in", app.base)).await;
    driver.type_into("#token", &token).await;
    driver.submit("button[type=submit]").await;
    assert_eq!(driver.title().await, "Overview · cowork-sync");

    driver.open(&format!("{}/ui/insights", app.base)).await;
    assert_eq!(driver.title().await, "Insights · cowork-sync");
    // The inactivity window through the form (GET): 4 days leaves bob inactive.
    driver.clear("#days").await;
    driver.type_into("#days", "4").await;
    driver
        .submit("form[action='/ui/insights'] button[type=submit]")
        .await;
    let inactive = driver.text_of("#inactive-table tbody").await;
    assert!(
        inactive.contains("bob@example.com, carol@example.com"),
        "{inactive}"
    );
    assert!(!inactive.contains("alice"), "{inactive}");

    // The adoption chart: an image to assistive technology, named by its title,
    // drawn at its size, its figures written beside the bars.
    let chart = driver.find("#adoption-chart").await;
    let role = driver
        .call("GET", &format!("/element/{chart}/computedrole"), None)
        .await;
    // Chromium names the ARIA role img "image".
    assert!(role == "img" || role == "image", "{role}");
    let label = driver
        .call("GET", &format!("/element/{chart}/computedlabel"), None)
        .await;
    assert!(
        label
            .as_str()
            .unwrap_or("")
            .starts_with("Adoption per group"),
        "{label}"
    );
    let rect = driver
        .call("GET", &format!("/element/{chart}/rect"), None)
        .await;
    assert!(rect["width"].as_f64().unwrap() >= 600.0, "{rect}");
    assert!(rect["height"].as_f64().unwrap() >= 100.0, "{rect}");
    let drawn = driver
        .call(
            "GET",
            &format!("/element/{chart}/property/textContent"),
            None,
        )
        .await;
    let drawn = drawn.as_str().unwrap_or("");
    assert!(drawn.contains("2 (67 %)"), "{drawn}");
    // The table beside it: members 3, latest day 0, 7 days 2, 30 days 2, Cowork users 2.
    let row = driver.text_of("#adoption-table tbody tr").await;
    assert_eq!(row, "Cowork pilot pilot 3 0 2 2 2 67 % 3.00", "{row}");

    // Spend: 4 + 2 sessions by 2 users over 4 weeks, $15.00 of Cowork cost:
    // 0.75 × $2.50 × 4.3 × 1.25 = $10.08 a member, $30.24 for the three.
    let row = driver.text_of("#spend-table tbody tr").await;
    for figure in ["$15.00", "$500.00", "$1,500.00", "$10.08", "$30.24"] {
        assert!(row.contains(figure), "{figure} in {row}");
    }
    let spend = driver.find("#spend-chart").await;
    let drawn = driver
        .call(
            "GET",
            &format!("/element/{spend}/property/textContent"),
            None,
        )
        .await;
    assert!(drawn.as_str().unwrap_or("").contains("$30.24"), "{drawn}");
    let advisor = driver.text_of("#advisor-table tbody tr").await;
    assert_eq!(
        advisor, "Cowork pilot 6 2 0.75 $15.00 $2.50 $10.08",
        "{advisor}"
    );
    driver.shot("14-insights").await;
    driver
        .shot_of("#spend-chart", "15-insights-spend-chart")
        .await;

    // A window the form cannot send (typed into the address bar): the page says why.
    driver
        .open(&format!("{}/ui/insights?days=91", app.base))
        .await;
    assert_eq!(driver.title().await, "Insights · cowork-sync");
    let shown = driver.text().await;
    assert!(shown.contains("from 1 to 90"), "{shown}");
    driver.call("DELETE", "", None).await;
}

/// Whether chromedriver's answer about an element of the previous page says that page
/// is gone. Usually "stale element reference"; while the old document is being torn
/// down it can instead be an "unknown error" from the inspector saying the node does
/// not belong to the document.
fn page_is_gone(value: &Value) -> bool {
    value["error"] == "stale element reference"
        || (value["error"] == "unknown error"
            && value["message"]
                .as_str()
                .is_some_and(|m| m.contains("does not belong to the document")))
}
