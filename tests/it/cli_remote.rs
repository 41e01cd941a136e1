//! The daemon-facing CLI through the real binary, against an in-process daemon:
//! `status`, and the papercuts an operator meets first (a token with a trailing
//! newline, a URL without a scheme, a daemon that is not running, a closed stderr).

use std::process::{Command, Stdio};

use crate::support::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

/// Runs the binary off the async threads (the daemon under test shares them).
async fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> (i32, String, String) {
    actix_web::rt::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .env_remove("COWORK_SYNC_URL")
            .env_remove("COWORK_SYNC_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[actix_web::test]
async fn status_prints_the_overview_figures_and_json_with_a_token_that_ends_in_a_newline() {
    let app = TestApp::start().await;
    app.user("ada@example.com").await;
    let token = format!("{}\n", app.admin_token);
    let (code, out, err) = run(
        args(&["status", "--url", &app.base]),
        vec![("COWORK_SYNC_TOKEN", token.clone())],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "directory",
        "1 users",
        "rules",
        "outbox",
        "held",
        "drift",
        "downstream",
        "telemetry",
    ] {
        assert!(out.contains(want), "{want} missing from\n{out}");
    }
    let (code, out, err) = run(
        args(&["status", "--json", "--url", &app.base, "--token", &token]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["directory"]["users"], 1);
}

#[actix_web::test]
async fn a_url_without_a_scheme_is_a_usage_error() {
    let (code, _, err) = run(
        args(&["status", "--url", "127.0.0.1:8080", "--token", "x"]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http://127.0.0.1:8080"), "{err}");
}

#[actix_web::test]
async fn a_daemon_that_is_not_running_is_named_with_the_fix() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) = run(args(&["status", "--url", &url, "--token", "x"]), vec![]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("connection refused at 127.0.0.1:{port}"))
            && err.contains("is `cowork-sync serve` running?"),
        "{err}"
    );
}

#[actix_web::test]
async fn a_closed_stderr_never_makes_the_cli_exit_101() {
    let code = actix_web::rt::task::spawn_blocking(|| {
        let mut child = Command::new(BIN)
            .args(["status", "--url", "localhost:1", "--token", "x"])
            .env_remove("COWORK_SYNC_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end: the CLI's error message meets a broken pipe.
        drop(child.stderr.take());
        child.wait().unwrap().code()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(2));
}

fn remote(app: &TestApp, list: &[&str]) -> Vec<String> {
    let mut all = args(list);
    all.extend(args(&["--url", &app.base, "--token", &app.admin_token]));
    all
}

#[actix_web::test]
async fn token_list_and_revoke_through_the_binary_show_no_secret_and_refuse_the_revoked_token() {
    let app = TestApp::start().await;
    // Both tokens seen once, so both are in the registry.
    let r = app
        .send("GET", "/scim/v2/Users", None, Some(&app.scim_token), &[])
        .await;
    assert_eq!(r.status, 200);
    let (code, table, err) = run(remote(&app, &["token", "list"]), vec![]).await;
    assert_eq!(code, 0, "{table}{err}");
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "JTI",
        "SCOPE",
        "SUBJECT",
        "ISSUED",
        "EXPIRES",
        "LAST USED",
        "REVOKED",
    ] {
        assert!(header.contains(column), "{column} missing from\n{table}");
    }
    assert_eq!(table.lines().count(), 3, "{table}");
    let (code, json, err) = run(remote(&app, &["token", "list", "--json"]), vec![]).await;
    assert_eq!(code, 0, "{json}{err}");
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    let scim = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "scim")
        .unwrap()
        .clone();
    let jti = scim["jti"].as_str().unwrap().to_string();
    assert!(table.contains(&jti), "{table}");
    for secret in [&app.scim_token, &app.admin_token] {
        let signature = secret.rsplit('.').next().unwrap();
        for shown in [&table, &json] {
            assert!(!shown.contains(secret.as_str()) && !shown.contains(signature));
        }
    }

    let (code, out, err) = run(remote(&app, &["token", "revoke", &jti]), vec![]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("revoked token {jti}")) && out.contains("refused from now on"),
        "{out}"
    );
    let refused = app
        .send("GET", "/scim/v2/Users", None, Some(&app.scim_token), &[])
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    // Again: nothing changes, and the JSON says so.
    let (code, out, err) = run(remote(&app, &["token", "revoke", &jti, "--json"]), vec![]).await;
    assert_eq!(code, 0, "{out}{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["already_revoked"], true);
    let (_, table, _) = run(remote(&app, &["token", "list"]), vec![]).await;
    let row = table.lines().find(|l| l.starts_with(&jti)).unwrap();
    assert_eq!(
        row.split_whitespace().count(),
        7,
        "revoked shows a time: {row}"
    );
}

#[actix_web::test]
async fn revoking_an_unknown_jti_exits_2_naming_it() {
    let app = TestApp::start().await;
    let (code, out, err) = run(remote(&app, &["token", "revoke", "no-such-jti"]), vec![]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("404") && err.contains("no token with jti 'no-such-jti'"),
        "{err}"
    );
    let long = "x".repeat(5_000);
    let (code, _, err) = run(remote(&app, &["token", "revoke", &long]), vec![]).await;
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains(&long[..100]), "the jti is not echoed: {err}");
    assert!(err.len() < 400, "{err}");
}

#[actix_web::test]
async fn a_token_minted_by_the_binary_beside_the_daemon_can_be_listed_and_revoked_before_use() {
    let app = TestApp::start().await;
    let key_file = app.config.auth.signing_key_file.clone();
    std::fs::write(
        &key_file,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            crate::support::KEY,
        ),
    )
    .unwrap();
    let data_dir = app.config.storage.data_dir.to_str().unwrap().to_string();
    let env = vec![("COWORK_SYNC__STORAGE__DATA_DIR", data_dir)];
    let (code, token, err) = run(
        args(&["token", "mint", "--scope", "scim", "--subject", "entra"]),
        env,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    let (code, json, err) = run(remote(&app, &["token", "list", "--json"]), vec![]).await;
    assert_eq!(code, 0, "{json}{err}");
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    let minted = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == "entra")
        .unwrap_or_else(|| panic!("the minted token is listed: {json}"))
        .clone();
    assert_eq!(minted["source"], "minted");
    assert!(minted["last_used"].is_null());
    let jti = minted["jti"].as_str().unwrap();
    let (code, out, err) = run(remote(&app, &["token", "revoke", jti]), vec![]).await;
    assert_eq!(code, 0, "{out}{err}");
    let r = app
        .send("GET", "/scim/v2/Users", None, Some(&token), &[])
        .await;
    assert_eq!(r.status, 401, "refused on first use: {}", r.text);
}
