//! The SCIM HTTP surface in process: status codes, headers, error bodies, auth,
//! ETags, limits and discovery, as a client sees them.

use chrono::Duration;
use serde_json::json;

use crate::support::TestApp;

#[actix_web::test]
async fn create_returns_201_with_location_etag_and_meta() {
    let app = TestApp::start().await;
    let r = app
        .post(
            "/Users",
            json!({"userName": "bjensen@example.com", "password": "t1meMa$heen", "active": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap();
    let location = format!("{}/scim/v2/Users/{id}", app.base);
    assert_eq!(r.header("location"), Some(location.as_str()));
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["location"], location);
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert_eq!(r.body["meta"]["created"], "2026-01-01T00:00:00.000Z");
    assert!(
        r.body.get("password").is_none(),
        "password is never returned"
    );
    assert!(!r.text.contains("t1meMa"));
    assert!(r.header("x-request-id").is_some());
}

#[actix_web::test]
async fn requests_without_a_valid_token_get_401_with_a_challenge() {
    let app = TestApp::start().await;
    let r = app.send("GET", "/scim/v2/Users", None, None, &[]).await;
    r.assert_scim_error(401, None);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"cowork-sync\"")
    );
    let r = app
        .send("GET", "/scim/v2/Users", None, Some("non-token"), &[])
        .await;
    r.assert_scim_error(401, None);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    // Basic auth is not a bearer token.
    let r = app
        .send(
            "GET",
            "/scim/v2/Users",
            None,
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[actix_web::test]
async fn expired_tokens_and_wrong_scopes_are_refused() {
    let app = TestApp::start().await;
    app.advance(Duration::days(31));
    let r = app.get("/Users").await;
    r.assert_scim_error(401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));

    let app = TestApp::start().await;
    let r = app
        .send(
            "GET",
            "/scim/v2/Users",
            None,
            Some(&app.admin_token.clone()),
            &[],
        )
        .await;
    r.assert_scim_error(403, None);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    let metrics = app.send("GET", "/metrics", None, None, &[]).await;
    assert!(metrics
        .text
        .contains("cowork_sync_auth_failures_total{reason=\"scope\"} 1"));
}

#[actix_web::test]
async fn malformed_bodies_are_invalid_syntax_and_change_nothing() {
    let app = TestApp::start().await;
    let r = app
        .send(
            "POST",
            "/scim/v2/Users",
            Some("{\"userName\":"),
            Some(&app.scim_token.clone()),
            &[],
        )
        .await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    // Unknown attributes are dropped by default (see `interop.rs` for both policies).
    let r = app
        .post(
            "/Users",
            json!({"userName": "a@example.com", "active": "maybe"}),
        )
        .await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app.post("/Users", json!({"displayName": "No Name"})).await;
    r.assert_scim_error(400, Some("invalidValue"));
    let r = app.post("/Users", json!(["not", "an", "object"])).await;
    r.assert_scim_error(400, Some("invalidSyntax"));
    let list = app.get("/Users").await;
    assert_eq!(list.body["totalResults"], 0);
    assert_eq!(app.core.directory.counts().unwrap(), (0, 0, 0));
}

#[actix_web::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::builder()
        .config("SERVER__MAX_BODY_BYTES", "2048")
        .start()
        .await;
    let big = "x".repeat(4096);
    let r = app
        .post(
            "/Users",
            json!({"userName": "a@example.com", "displayName": big}),
        )
        .await;
    r.assert_scim_error(413, None);
    assert_eq!(app.core.directory.counts().unwrap().0, 0);
}

#[actix_web::test]
async fn duplicate_user_names_are_409_uniqueness() {
    let app = TestApp::start().await;
    app.user("bjensen@example.com").await;
    let r = app
        .post("/Users", json!({"userName": "BJENSEN@example.com"}))
        .await;
    r.assert_scim_error(409, Some("uniqueness"));
    assert!(
        !r.text.contains("bjensen"),
        "the detail does not echo the value"
    );
}

#[actix_web::test]
async fn users_sharing_an_external_id_are_both_created_and_both_found() {
    let app = TestApp::start().await;
    // RFC 7643 §3.1 gives externalId no uniqueness; Microsoft's collection sends
    // duplicates on purpose and Entra maps it from attributes that are not unique.
    for name in ["a@example.com", "b@example.com"] {
        let r = app
            .post("/Users", json!({"userName": name, "externalId": "dup-1"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = app.get("/Users?filter=externalId%20eq%20%22dup-1%22").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["totalResults"], 2);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a@example.com", "b@example.com"]);
}

#[actix_web::test]
async fn a_patch_of_more_operations_than_the_bound_is_400_too_many_and_changes_nothing() {
    let app = TestApp::start().await;
    let id = app.user("ops@example.com").await;
    let op = json!({"op": "replace", "path": "displayName", "value": "Changed"});
    let r = app
        .patch(&format!("/Users/{id}"), json!(vec![op; 10_001]))
        .await;
    r.assert_scim_error(400, Some("tooMany"));
    let r = app.get(&format!("/Users/{id}")).await;
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert!(r.body.get("displayName").is_none());
}

#[actix_web::test]
async fn unknown_ids_are_404_and_deleted_resources_stay_gone() {
    let app = TestApp::start().await;
    let r = app.get("/Users/010101001010101011001010101011").await;
    r.assert_scim_error(404, None);
    let id = app.user("gone@example.com").await;
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status, 204);
    app.get(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
    app.delete(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
}

#[actix_web::test]
async fn etags_drive_conditional_requests() {
    let app = TestApp::start().await;
    let id = app.user("etag@example.com").await;
    let path = format!("/scim/v2/Users/{id}");
    let token = app.scim_token.clone();
    let r = app
        .send(
            "GET",
            &path,
            None,
            Some(&token),
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]})
    .to_string();
    let r = app
        .send(
            "PATCH",
            &path,
            Some(&body),
            Some(&token),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    r.assert_scim_error(412, None);
    let r = app
        .send(
            "PATCH",
            &path,
            Some(&body),
            Some(&token),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(r.body["active"], false);
    let r = app
        .send(
            "GET",
            &path,
            None,
            Some(&token),
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn group_patch_answers_204_unless_attributes_are_asked_for() {
    let app = TestApp::start().await;
    let u = app.user("m@example.com").await;
    let g = app.group("Pilot", &[]).await;
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": u}]}]);
    let r = app.patch(&format!("/Groups/{g}"), ops).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Pilot 2"}]);
    let r = app
        .patch(&format!("/Groups/{g}?attributes=displayName,members"), ops)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["displayName"], "Pilot 2");
    assert_eq!(r.body["members"][0]["value"], u.as_str());
    assert!(r.body.get("meta").is_none());
}

#[actix_web::test]
async fn filters_are_parsed_from_raw_and_encoded_query_strings() {
    let app = TestApp::start().await;
    let id = app.user("test.user@example.com").await;
    for query in [
        "/Users?filter=userName%20eq%20%22test.user%40example.com%22&startIndex=1&count=100",
        "/Users?filter=userName+eq+%22TEST.USER@example.com%22",
        "/Users?filter=userName%20eq%20\"test.user@example.com\"",
    ] {
        let r = app.get(query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert_eq!(r.body["totalResults"], 1, "{query}");
        assert_eq!(r.body["Resources"][0]["id"], id.as_str());
    }
    let r = app
        .get("/Users?filter=userName%20eq%20%22abcdefgh%40example.com%22&startIndex=1&count=100")
        .await;
    assert_eq!(
        r.body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []
        })
    );
    app.get("/Users?filter=userName%20zz%20%22x%22")
        .await
        .assert_scim_error(400, Some("invalidFilter"));
    let deep = "(".repeat(40) + "userName eq \"x\"" + &")".repeat(40);
    let r = app
        .get(&format!("/Users?filter={}", urlencode(&deep)))
        .await;
    r.assert_scim_error(400, Some("invalidFilter"));
}

#[actix_web::test]
async fn search_endpoints_take_a_search_request_body() {
    let app = TestApp::start().await;
    let u = app.user("searcher@example.com").await;
    let g = app.group("Searchers", &[&u]).await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"search\"",
        "attributes": ["userName"],
        "startIndex": 1, "count": 10
    });
    let r = app.post("/Users/.search", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("emails").is_none());
    let r = app
        .post(
            "/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "displayName eq \"Searchers\" or userName eq \"searcher@example.com\""}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&u.as_str()) && ids.contains(&g.as_str()),
        "{ids:?}"
    );
}

#[actix_web::test]
async fn discovery_advertises_what_works_and_is_read_only() {
    let app = TestApp::start().await;
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["sort"]["supported"], true);
    assert_eq!(
        spc.body["meta"]["location"],
        format!("{}/scim/v2/ServiceProviderConfig", app.base)
    );
    let schemas = app.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user = app
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(user.body["name"], "User");
    let types = app.get("/ResourceTypes").await;
    assert_eq!(types.body["Resources"][0]["endpoint"], "/Users");
    app.get("/ResourceTypes/Nope")
        .await
        .assert_scim_error(404, None);
    let r = app.post("/ServiceProviderConfig", json!({})).await;
    r.assert_scim_error(405, None);
    assert_eq!(r.header("allow"), Some("GET"));
    app.get("/Schemas?filter=id%20eq%20%22x%22")
        .await
        .assert_scim_error(403, None);
    app.post("/Bulk", json!({}))
        .await
        .assert_scim_error(501, None);
}

#[actix_web::test]
async fn listing_caps_count_and_pages_stably() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(app.user(&format!("p{i:02}@example.com")).await);
    }
    let r = app.get("/Users?startIndex=1&count=2").await;
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["Resources"][1]["id"], ids[1].as_str());
    let r = app.get("/Users?startIndex=11&count=5000").await;
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["totalResults"], 12);
    let r = app.get("/Users?count=abc").await;
    r.assert_scim_error(400, Some("invalidValue"));
}

#[actix_web::test]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let app = TestApp::start().await;
    app.user("metric@example.com").await;
    let h = app.send("GET", "/healthz", None, None, &[]).await;
    assert_eq!(h.status, 200);
    let r = app.send("GET", "/readyz", None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["checks"]["store"]["ok"], true);
    let m = app.send("GET", "/metrics", None, None, &[]).await;
    assert!(
        m.text.contains("cowork_sync_directory_users 1"),
        "{}",
        m.text
    );
    assert!(m.text.contains(
        "cowork_sync_http_requests_total{route=\"/scim/v2/{endpoint}\",method=\"POST\",status=\"201\"} 1"
    ));
    assert!(m
        .text
        .contains("cowork_sync_http_request_duration_seconds_bucket"));
}

#[actix_web::test]
async fn callers_over_their_budget_get_429_with_retry_after() {
    let app = TestApp::builder()
        .config("SERVER__RATE_LIMIT_PER_SECOND", "1")
        .config("SERVER__RATE_LIMIT_BURST", "2")
        .start()
        .await;
    assert_eq!(app.get("/Users").await.status, 200);
    assert_eq!(app.get("/Users").await.status, 200);
    let r = app.get("/Users").await;
    r.assert_scim_error(429, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    app.advance(Duration::seconds(1));
    assert_eq!(app.get("/Users").await.status, 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn unknown_member_ids_are_skipped_counted_and_never_a_server_error() {
    let app = TestApp::start().await;
    let u = app.user("known@example.com").await;
    let g = app.group("Mixed", &[]).await;
    let r = app
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": u}, {"value": "stale-id"}]}]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let group = app.get(&format!("/Groups/{g}")).await;
    assert_eq!(group.body["members"].as_array().unwrap().len(), 1);
    let m = app.send("GET", "/metrics", None, None, &[]).await;
    assert!(
        m.text.contains("cowork_sync_scim_unknown_members_total 1"),
        "{}",
        m.text
    );
}
