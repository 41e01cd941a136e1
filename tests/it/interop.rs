//! What IdPs and proxies send beyond the schema: attributes no schema declares
//! (`[scim] unknown_attributes`), and request heads larger than we accept (414, 431),
//! each answered with the JSON error body.

use serde_json::{json, Value};

use crate::support::TestApp;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const METRIC: &str = "cowork_sync_scim_unknown_attributes_total";

fn dropped(app: &TestApp, resource: &str) -> f64 {
    app.core.metrics.value(METRIC, &[("resource", resource)])
}

#[actix_web::test]
async fn unknown_attributes_are_dropped_and_counted_by_default() {
    let app = TestApp::start().await;
    let schemas_before = app.get("/Schemas").await.body;
    let r = app
        .post(
            "/Users",
            json!({
                "userName": "ann@example.com",
                "adreses": [{"streetAddress": "1 Main St"}],
                "name": {"givenName": "Ann", "nickName": "Annie"},
                ENTERPRISE: {"department": "Ops", "shoeSize": "42"}
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("adreses").is_none());
    assert_eq!(r.body["name"], json!({"givenName": "Ann"}));
    assert_eq!(r.body[ENTERPRISE], json!({"department": "Ops"}));
    assert_eq!(dropped(&app, "User"), 3.0);
    let id = r.body["id"].as_str().unwrap().to_string();

    // PUT: the same, and the stored user holds nothing unknown.
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "ann@example.com", "displayName": "Ann", "adreses": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["displayName"], "Ann");
    assert_eq!(dropped(&app, "User"), 4.0);

    // PATCH: an op on an unknown path is a no-op that still answers 2xx; the
    // others apply.
    let r = app
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "replace", "path": "adreses", "value": "x"},
                {"op": "replace", "path": "title", "value": "Eng"},
                {"op": "add", "value": {"shoeSize": 42}}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "Eng");
    let r = app
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "remove", "path": "adreses"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(dropped(&app, "User"), 7.0);

    // Groups are counted under their own label.
    let r = app
        .post("/Groups", json!({"displayName": "Ops", "colour": "blue"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(dropped(&app, "Group"), 1.0);

    let user = app.get(&format!("/Users/{id}")).await.body;
    for absent in ["adreses", "shoeSize"] {
        assert!(user.get(absent).is_none(), "{user}");
    }
    // What /Schemas advertises does not change.
    assert_eq!(app.get("/Schemas").await.body, schemas_before);
    let metrics = app.send("GET", "/metrics", None, None, &[]).await.text;
    assert!(
        metrics.contains(&format!("{METRIC}{{resource=\"User\"}} 7")),
        "{metrics}"
    );
}

#[actix_web::test]
async fn unknown_attributes_are_refused_whole_in_strict_mode() {
    let app = TestApp::builder()
        .config("SCIM__UNKNOWN_ATTRIBUTES", "reject")
        .start()
        .await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "ann@example.com", "adreses": "x"}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    assert!(r.body["detail"].as_str().unwrap().contains("adreses"));
    let r = app
        .post(
            "/Users",
            json!({"userName": "ann@example.com", "name": {"nickName": "Annie"}}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);

    let id = app.user("ann@example.com").await;
    let r = app
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "replace", "path": "title", "value": "Should Not Stick"},
                {"op": "replace", "path": "adreses", "value": "x"}
            ]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidPath"));
    let r = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "ann@example.com", "title": "Should Not Stick", "adreses": "x"}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    let user = app.get(&format!("/Users/{id}")).await.body;
    assert!(user.get("title").is_none(), "{user}");
    assert_eq!(dropped(&app, "User"), 0.0);
}

#[actix_web::test]
async fn an_unknown_config_value_for_unknown_attributes_is_refused() {
    let env = vec![(
        "COWORK_SYNC__SCIM__UNKNOWN_ATTRIBUTES".to_string(),
        "drop".to_string(),
    )];
    let err = cowork_sync::config::Config::load(None, env).unwrap_err();
    assert!(err.to_string().contains("scim.unknown_attributes"), "{err}");
}

/// Sends a raw GET so nothing in between trims or refuses the head.
async fn raw_get(app: &TestApp, target: &str, extra: &str) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n{extra}Connection: close\r\n\r\n",
        app.scim_token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (text, body)
}

fn assert_json_error(text: &str, body: &Value, status: u16) {
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    assert!(
        text.contains("content-type: application/scim+json"),
        "{text}"
    );
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{text}"
    );
    assert_eq!(body["status"], status.to_string(), "{text}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("limit")));
}

#[actix_web::test]
async fn a_20_kb_header_or_url_is_answered_with_a_json_error() {
    let app = TestApp::start().await;
    let big_header = format!("X-Padding: {}\r\n", "a".repeat(20 * 1024));
    let long_query = format!("?filter={}", "a".repeat(20 * 1024));
    for path in ["/scim/v2/Users", "/admin/v1/status", "/healthz"] {
        let (text, body) = raw_get(&app, path, &big_header).await;
        assert_json_error(&text, &body, 431);
        let (text, body) = raw_get(&app, &format!("{path}{long_query}"), "").await;
        assert_json_error(&text, &body, 414);
    }
    // Within the bounds, the same requests are served.
    let (text, _) = raw_get(&app, "/scim/v2/Users", "X-Padding: small\r\n").await;
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    // Refusals are counted like any other.
    let metrics = app.send("GET", "/metrics", None, None, &[]).await.text;
    assert!(metrics.contains("status=\"431\""), "{metrics}");
    assert!(metrics.contains("status=\"414\""), "{metrics}");
}

// ---- the real binary -----------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

/// One HTTP/1.1 exchange over a fresh connection: the status line and the body.
fn exchange(addr: &str, method: &str, target: &str, headers: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/scim+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A server may answer (and close) before reading a huge head to its end.
    let _ = socket.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_binary_answers_big_heads_in_json_and_notes_unknown_attributes_once_without_values() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data.path())
        .env("COWORK_SYNC__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "exited early");
        if let Some(at) = line.find("serving SCIM at http://") {
            let rest = &line[at + "serving SCIM at http://".len()..];
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let logs = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>());
    let mint = Command::new(BIN)
        .args(["token", "mint", "--scope", "scim"])
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data.path())
        .output()
        .unwrap();
    let token = String::from_utf8(mint.stdout).unwrap().trim().to_string();
    let auth = format!("Authorization: Bearer {token}\r\n");

    for name in ["ann@example.com", "bob@example.com"] {
        let body = json!({"userName": name, "adreses": "secret-value"}).to_string();
        let (status, _) = exchange(&addr, "POST", "/scim/v2/Users", &auth, &body);
        assert!(status.contains(" 201 "), "{status}");
    }
    // A name is the client's choice: it must not be able to forge a log line.
    let body = json!({"userName": "cy@example.com", "x\nERROR forged": "v"}).to_string();
    let (status, _) = exchange(&addr, "POST", "/scim/v2/Users", &auth, &body);
    assert!(status.contains(" 201 "), "{status}");
    let padding = format!("{auth}X-Padding: {}\r\n", "a".repeat(20 * 1024));
    let (status, body) = exchange(&addr, "GET", "/scim/v2/Users", &padding, "");
    assert!(status.contains(" 431 "), "{status}");
    assert!(
        body.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{body}"
    );
    let long = format!("/scim/v2/Users?filter={}", "a".repeat(20 * 1024));
    let (status, body) = exchange(&addr, "GET", &long, &auth, "");
    assert!(status.contains(" 414 "), "{status}");
    assert!(body.contains("\"status\":\"414\""), "{body}");
    // Past actix-http's own limit (a 128 KiB head) it answers itself, with no body;
    // it must not log the client's mistake as a server error.
    let huge = format!("{auth}X-Padding: {}\r\n", "a".repeat(200 * 1024));
    let (status, _) = exchange(&addr, "GET", "/scim/v2/Users", &huge, "");
    assert!(status.is_empty() || status.contains(" 431 "), "{status}");
    let (status, _) = exchange(&addr, "GET", "/scim/v2/Users", &auth, "");
    assert!(status.contains(" 200 "), "{status}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let logs = logs.join().unwrap();
    let noted: Vec<&String> = logs.iter().filter(|l| l.contains("adreses")).collect();
    assert_eq!(noted.len(), 1, "{logs:#?}");
    assert!(noted[0].contains("WARN"), "{}", noted[0]);
    assert!(
        !logs.iter().any(|l| l.contains("secret-value")),
        "{logs:#?}"
    );
    let level = |l: &String| l.split_whitespace().nth(1).map(str::to_string);
    assert!(
        !logs.iter().any(|l| level(l).as_deref() == Some("ERROR")),
        "{logs:#?}"
    );
    assert!(!logs.iter().any(|l| l.starts_with("ERROR")), "{logs:#?}");
    assert_eq!(logs.iter().filter(|l| l.contains("forged")).count(), 1);
}
