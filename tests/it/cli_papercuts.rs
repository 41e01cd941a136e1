//! The CLI papercuts of the walkthrough, through the real binary against an
//! in-process daemon with the simulator downstream: rules list and apply warnings,
//! money and userNames in `plan` and `held`, a dry run without a run number, and
//! `audit export --since` with a plain date.

use std::process::Command;

use crate::support::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

/// Runs the binary against `app` off the async threads.
async fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--url".to_string(), app.base.clone()]);
    let token = app.admin_token.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(&all)
            .env_remove("COWORK_SYNC_URL")
            .env("COWORK_SYNC_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// The example rule file with web search off at org level (so the pilot role's
/// grant draws a warning) and one disabled rule.
fn rule_file() -> tempfile::NamedTempFile {
    let example = std::fs::read_to_string("deploy/rules.example.toml").unwrap();
    let text = example.replacen(
        "web_search = true\ncode_execution",
        "web_search = false\ncode_execution",
        1,
    );
    assert_ne!(text, example, "the example's org features changed");
    let text = format!(
        "{text}\n[[rules]]\nid = \"legacy\"\nenabled = false\nmatch = {{ group = \"Legacy\" }}\ngroup = {{ key = \"legacy\", name = \"Legacy\" }}\n"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[actix_web::test]
async fn rules_plan_reconcile_and_audit_speak_to_an_operator() {
    let app = TestApp::builder().with_sim().start().await;
    let rules = rule_file();
    let path = rules.path().to_str().unwrap().to_string();

    // rules apply: the warning names the role, the rules using it and the field.
    let (code, out, err) = cli(&app, &["rules", "apply", &path]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "warning: role \"cowork-pilot\" (used by rules \"pilot\", \"engineering\"): field \"capabilities.web_search\""
        ),
        "{err}"
    );

    // rules list: aligned, the disabled rule marked, spend as money.
    let (code, out, err) = cli(&app, &["rules", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(5 rules, 2 DISABLED: they match nobody)"),
        "{out}"
    );
    let line = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no line for {id} in\n{out}"))
            .to_string()
    };
    assert!(line("legacy").contains("DISABLED"), "{out}");
    assert!(line("pilot").contains("$500.00"), "{out}");
    assert_eq!(
        line("legacy").find("DISABLED"),
        line("pilot").find("enabled"),
        "the state column is aligned:\n{out}"
    );

    // plan: people by userName, ids beside it in --json.
    let ada = app.user("ada@example.com").await;
    app.group("Cowork Pilot", &[&ada]).await;
    let (code, out, err) = cli(&app, &["plan"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("ada@example.com ({ada}")), "{out}");
    assert!(out.contains("$500.00"), "money in the plan:\n{out}");
    let (code, out, err) = cli(&app, &["plan", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let named = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_name"] == "ada@example.com")
        .unwrap_or_else(|| panic!("no action names ada: {out}"));
    assert_eq!(named["details"]["scim_id"], ada.as_str(), "{named}");

    // A dry run is not a run: no run number.
    let (code, out, err) = cli(&app, &["reconcile", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Dry run (manual"), "{out}");
    assert!(!out.contains("run 0"), "{out}");

    // audit export --since: a plain date is the start of that day UTC.
    let (code, out, err) = cli(&app, &["audit", "export", "--since", "2026-01-01"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().count() > 0, "{err}");
    let (code, out, _) = cli(&app, &["audit", "export", "--since", "2099-01-01"]).await;
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = cli(&app, &["audit", "export", "--since", "yesterday"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a date (2026-12-01") && err.contains("RFC 3339"),
        "{err}"
    );
}

#[actix_web::test]
async fn held_names_each_held_removal_by_user_name_in_text_and_json() {
    let app = TestApp::builder()
        .config("RECONCILE__REMOVAL_FLOOR", "0")
        .with_sim()
        .start()
        .await;
    crate::console::one_held_removal(&app).await;

    let (code, out, err) = cli(&app, &["held", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let held: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = held["held"].as_array().unwrap();
    assert!(!items.is_empty(), "{out}");
    let alice = items[0]["scim_id"].as_str().unwrap().to_string();
    for item in items {
        assert_eq!(item["user_name"], "alice@example.com", "{item}");
        assert_eq!(item["scim_id"], alice.as_str(), "the id beside it: {item}");
        assert!(
            item["id"].is_string() && item["age_secs"].is_u64(),
            "{item}"
        );
    }

    let (code, out, err) = cli(&app, &["held"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("alice@example.com ({alice}")),
        "{out}"
    );
}
