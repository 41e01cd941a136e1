//! Limits, error bodies and request hygiene at the HTTP level (issue 13): trailing
//! slashes, one Authorization header, JSON errors for malformed admin queries, and
//! the body read deadline.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::TestApp;

#[actix_web::test]
async fn scim_paths_with_a_trailing_slash_are_the_same_endpoints() {
    let app = TestApp::start().await;
    let r = app
        .post(
            "/Users/",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .get("/Users/?filter=userName%20eq%20%22alice@example.com%22")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["totalResults"], 1);
    let r = app.get(&format!("/Users/{id}/")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    for path in [
        "/Groups/",
        "/ServiceProviderConfig/",
        "/Schemas/",
        "/ResourceTypes/",
        "/ResourceTypes/User/",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[actix_web::test]
async fn two_authorization_headers_are_a_bad_request() {
    let app = TestApp::start().await;
    let other = format!("Bearer {}", app.admin_token);
    let r = app
        .send(
            "GET",
            "/scim/v2/Users",
            None,
            Some(&app.scim_token),
            &[("authorization", &other)],
        )
        .await;
    r.assert_scim_error(400, None);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_request"));
    // One header still works.
    assert_eq!(app.get("/Users").await.status, 200);
}

#[actix_web::test]
async fn malformed_admin_queries_answer_a_json_400() {
    let app = TestApp::start().await;
    for (method, path) in [
        ("GET", "/audit?limit=-5"),
        ("GET", "/rules?version=abc"),
        ("PUT", "/rules?dry_run=1"),
    ] {
        let r = app
            .send(
                method,
                &format!("/admin/v1{path}"),
                Some("[org]\nplan = \"enterprise\"\n"),
                Some(&app.admin_token),
                &[],
            )
            .await;
        r.assert_scim_error(400, None);
    }
}

#[actix_web::test]
async fn a_stalled_body_is_answered_408_within_the_deadline_even_when_authenticated() {
    let app = TestApp::builder()
        .config("SERVER__BODY_TIMEOUT_SECS", "1")
        .start()
        .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\":",
        app.scim_token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // The body never completes; the server must answer on its own.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("\"detail\"") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/scim+json"), "{text}");
    assert!(
        text.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{text}"
    );
    // Nothing was written.
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
}

#[actix_web::test]
async fn names_with_control_characters_are_refused_and_user_names_trimmed() {
    let app = TestApp::start().await;
    for bad in [
        "nul\u{0}@example.com",
        "esc\u{1b}@example.com",
        "cr\r@example.com",
        "lf\n@example.com",
    ] {
        let r = app.post("/Users", json!({"userName": bad})).await;
        r.assert_scim_error(400, Some("invalidValue"));
    }
    let id = app.user("alice@example.com").await;
    // Surrounding whitespace does not make a second user.
    let r = app
        .post("/Users", json!({"userName": " alice@example.com "}))
        .await;
    r.assert_scim_error(409, Some("uniqueness"));
    let r = app
        .post("/Users", json!({"userName": " bob@example.com "}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["userName"], "bob@example.com");
    // PATCH is held to the same rules.
    let r = app
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": "Alice\u{1b}[2J"}]),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": "  alice2@example.com  "}]),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    assert_eq!(
        app.get(&format!("/Users/{id}")).await.body["userName"],
        "alice2@example.com"
    );
    let r = app
        .post("/Groups", json!({"displayName": "Ops\u{0}"}))
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(app.get("/Users").await.body["totalResults"], 2);
}
