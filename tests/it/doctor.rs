//! `cowork-sync doctor`: the downstream checks against the simulator (everything
//! passes) and the scripted mock (a missing scope is named, an unavailable beta is a
//! warning, clock skew fails), the data-dir checks, and the binary's exit code.

use std::process::Command;

use cowork_sync::config::Config;
use cowork_sync::cowork::Mode;
use cowork_sync::doctor::{self, Verdict};
use cowork_sync::sim::SimOptions;
use serde_json::json;

use crate::cowork_client::{error_json, mock, start_sim, Reply, KEY};

fn names(checks: &[doctor::Check], verdict: Verdict) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.verdict == verdict)
        .map(|c| c.name.clone())
        .collect()
}

#[tokio::test]
async fn against_the_simulator_the_key_scopes_and_clock_pass() {
    let h = start_sim(SimOptions {
        extended: false,
        ..SimOptions::for_tests()
    })
    .await;
    let checks = doctor::downstream(
        &h.base_url(),
        KEY,
        Mode::Real,
        cowork_sync::clock::system().now(),
    )
    .await;
    let text: Vec<String> = checks.iter().map(|c| c.render()).collect();
    assert!(!doctor::failed(&checks), "{text:#?}");
    assert!(names(&checks, Verdict::Warn).is_empty(), "{text:#?}");
    assert!(names(&checks, Verdict::Pass).contains(&"clock skew".to_owned()));
    // The probes changed nothing.
    assert_eq!(h.metrics().writes_applied, 0);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn missing_scopes_are_named_and_an_unavailable_plugins_api_is_a_warning() {
    let m = mock(|seen, _| {
        let forbidden = Reply::Json(
            403,
            error_json("permission_error", "key has read:members"),
            vec![],
        );
        match (seen.method.as_str(), seen.path.as_str()) {
            ("DELETE", "/v1/organizations/rbac_groups/rbac_group_doctor_probe") => forbidden,
            ("GET", "/v1/organizations/spend_limits/effective") => forbidden,
            (_, p) if p.contains("/plugins") => {
                Reply::Json(404, error_json("not_found_error", "Not found"), vec![])
            }
            ("GET", _) => Reply::Json(200, json!({"data": [], "has_more": false}), vec![]),
            _ => Reply::Json(404, error_json("not_found_error", "no such id"), vec![]),
        }
    })
    .await;
    let checks =
        doctor::downstream(&m.url, KEY, Mode::Real, cowork_sync::clock::system().now()).await;
    let scopes = checks
        .iter()
        .find(|c| c.name == "downstream scopes")
        .unwrap();
    assert_eq!(scopes.verdict, Verdict::Fail);
    assert_eq!(
        scopes.detail,
        "the key lacks write:rbac_groups, read:spend_limits"
    );
    assert!(names(&checks, Verdict::Warn).contains(&"plugins API".to_owned()));
    assert!(doctor::failed(&checks));
    // Every probe sent the key, and the plugin probes their beta header.
    for s in m.seen() {
        assert_eq!(s.headers["x-api-key"], KEY);
        if s.path.contains("/plugins") {
            assert_eq!(s.headers["anthropic-beta"], "ce-plugins-2026-09-01");
        }
    }
}

#[tokio::test]
async fn a_clock_minutes_off_the_servers_fails() {
    let m = mock(|_, _| Reply::Json(200, json!({"data": [], "has_more": false}), vec![])).await;
    let late = cowork_sync::clock::system().now() + chrono::Duration::minutes(5);
    let checks = doctor::downstream(&m.url, KEY, Mode::Real, late).await;
    let skew = checks.iter().find(|c| c.name == "clock skew").unwrap();
    assert_eq!(skew.verdict, Verdict::Fail, "{}", skew.render());
}

fn config_with_data_dir(dir: &std::path::Path) -> Config {
    Config::load(
        None,
        [(
            "COWORK_SYNC__STORAGE__DATA_DIR".to_owned(),
            dir.to_string_lossy().into_owned(),
        )],
    )
    .unwrap()
}

#[cfg(unix)]
#[test]
fn a_data_dir_others_can_read_is_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let checks = doctor::data_dir(&config_with_data_dir(dir.path()));
    assert_eq!(checks[0].verdict, Verdict::Warn, "{}", checks[0].render());
    assert!(checks[0].fix.as_deref().unwrap().starts_with("chmod 700"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let checks = doctor::data_dir(&config_with_data_dir(dir.path()));
    assert_eq!(checks[0].verdict, Verdict::Pass, "{}", checks[0].render());
}

#[test]
fn the_binary_exits_1_and_says_why_when_the_downstream_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api.key");
    std::fs::write(&key, "sk-ant-api01-doctor").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\ndata_dir = {:?}\n[cowork]\nbase_url = \"http://127.0.0.1:9\"\napi_key_file = {:?}\nmode = \"real\"\n",
            dir.path().join("data"),
            key
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cowork-sync"))
        .args(["doctor", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PASS config"), "{stdout}");
    assert!(
        stdout.contains("FAIL downstream: http://127.0.0.1:9 cannot be reached"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("sk-ant-api01-doctor"),
        "the key is never printed"
    );
}

#[cfg(unix)]
#[test]
fn key_files_group_or_others_can_read_are_warnings() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("api.key");
    let analytics = dir.path().join("analytics.key");
    std::fs::write(&admin, "sk-ant-api01-doctor").unwrap();
    std::fs::write(&analytics, "sk-ant-analytics-doctor").unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(&analytics, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = Config::load(
        None,
        [
            ("COWORK_SYNC__COWORK__BASE_URL", "http://127.0.0.1:9"),
            ("COWORK_SYNC__COWORK__API_KEY_FILE", admin.to_str().unwrap()),
            (
                "COWORK_SYNC__INSIGHTS__ANALYTICS_API_KEY_FILE",
                analytics.to_str().unwrap(),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let checks = doctor::key_files(&config);
    let text: Vec<String> = checks.iter().map(|c| c.render()).collect();
    assert_eq!(checks.len(), 2, "{text:#?}");
    assert_eq!(checks[0].name, "downstream key file");
    assert_eq!(checks[0].verdict, Verdict::Warn, "{text:#?}");
    assert!(checks[0].fix.as_deref().unwrap().starts_with("chmod 600"));
    assert_eq!(checks[1].name, "analytics key file");
    assert_eq!(checks[1].verdict, Verdict::Pass, "{text:#?}");
    assert!(
        text.iter().all(|t| !t.contains("sk-ant")),
        "never the key itself"
    );
}

#[tokio::test]
async fn the_analytics_key_is_probed_once_and_a_missing_scope_or_refused_key_fails() {
    for (status, verdict, says) in [
        (200, Verdict::Pass, "accepts the key"),
        (400, Verdict::Pass, "accepts the key"),
        (
            401,
            Verdict::Fail,
            "refuses the key (401); it needs read:analytics",
        ),
        (403, Verdict::Fail, "read:analytics"),
        (404, Verdict::Warn, "404"),
        (500, Verdict::Warn, "answered with an error"),
    ] {
        let m = mock(move |_, _| match status {
            200 => Reply::Json(200, json!({"data": [], "next_page": null}), vec![]),
            s => Reply::Json(s, error_json("error", "no"), vec![]),
        })
        .await;
        let check = doctor::analytics(&m.url, "sk-ant-analytics-k").await;
        assert_eq!(check.verdict, verdict, "{status}: {}", check.render());
        assert!(check.detail.contains(says), "{status}: {}", check.render());
        let seen = m.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, "/v1/organizations/analytics/users");
        assert_eq!(seen[0].headers["x-api-key"], "sk-ant-analytics-k");
        assert!(!check.render().contains("sk-ant"));
    }
    // Nothing listening: the address and the fix, after one attempt.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let check = doctor::analytics(&url, "sk-ant-analytics-k").await;
    assert_eq!(check.verdict, Verdict::Fail, "{}", check.render());
    assert!(
        check.detail.contains("cannot be reached"),
        "{}",
        check.render()
    );
}
