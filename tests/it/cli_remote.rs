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
