//! The token lifecycle in process: `GET /admin/v1/tokens` lists every token minted or
//! seen (never a token), `DELETE /admin/v1/tokens/{jti}` revokes one at once for
//! SCIM, the admin API and console sessions, and several tokens are valid together
//! (an IdP's token rotated without downtime).

use cowork_sync::audit;
use cowork_sync::auth::Scope;

use crate::console::Browser;
use crate::support::TestApp;

fn jti_of(app: &TestApp, token: &str) -> String {
    app.core
        .auth_context(&app.config, &crate::support::KEY)
        .unwrap()
        .verifier
        .verify(token, app.clock.as_ref())
        .unwrap()
        .token_id
}

async fn scim_with(app: &TestApp, token: &str) -> u16 {
    app.send("GET", "/scim/v2/Users", None, Some(token), &[])
        .await
        .status
}

#[actix_web::test]
async fn two_scim_tokens_work_together_and_revoking_one_leaves_the_other() {
    let app = TestApp::start().await;
    let old = app.scim_token.clone();
    let new = app
        .minter
        .mint("okta-2", Scope::Scim, 30, app.clock.as_ref())
        .unwrap();
    // Rotation: the IdP is given the new token while the old one still works.
    assert_eq!(scim_with(&app, &old).await, 200);
    assert_eq!(scim_with(&app, &new).await, 200);
    let old_jti = jti_of(&app, &old);
    let r = app
        .admin("DELETE", &format!("/tokens/{old_jti}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["already_revoked"], false);
    assert_eq!(r.body["token"]["jti"], old_jti.as_str());
    assert_eq!(r.body["token"]["revoked_by"], "operator");
    // Refused at once, with the SCIM error and the revoked reason counted.
    let refused = app
        .send("GET", "/scim/v2/Users", None, Some(&old), &[])
        .await;
    refused.assert_scim_error(401, None);
    assert!(refused.text.contains("revoked"), "{}", refused.text);
    assert!(refused
        .header("www-authenticate")
        .is_some_and(|h| h.contains("invalid_token")));
    assert_eq!(
        app.core
            .metrics
            .value("cowork_sync_auth_failures_total", &[("reason", "revoked")]),
        1.0
    );
    assert_eq!(
        scim_with(&app, &new).await,
        200,
        "the other token still works"
    );
    // Revoking again answers the same way and changes nothing.
    let again = app
        .admin("DELETE", &format!("/tokens/{old_jti}"), None)
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["already_revoked"], true);
    assert_eq!(again.body["token"]["revoked"], r.body["token"]["revoked"]);
    let revocations: Vec<_> = audit::list(app.core.store.as_ref(), None, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.revoked")
        .collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].actor, "operator");
    assert_eq!(revocations[0].target.as_deref(), Some(old_jti.as_str()));
}

#[actix_web::test]
async fn the_list_names_every_token_seen_and_never_a_token() {
    let app = TestApp::start().await;
    assert_eq!(scim_with(&app, &app.scim_token).await, 200);
    let r = app.admin("GET", "/tokens", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tokens = r.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{}", r.text);
    let scim = tokens.iter().find(|t| t["scope"] == "scim").unwrap();
    assert_eq!(scim["subject"], "okta");
    assert_eq!(scim["jti"], jti_of(&app, &app.scim_token).as_str());
    assert!(scim["issued"].is_string() && scim["expires"].is_string());
    assert!(scim["last_used"].is_string());
    assert!(scim["revoked"].is_null());
    for secret in [&app.scim_token, &app.admin_token] {
        assert!(!r.text.contains(secret.as_str()));
        // Nor any signature.
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!r.text.contains(signature));
    }
    let seen: Vec<_> = audit::list(app.core.store.as_ref(), None, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.seen")
        .collect();
    assert_eq!(seen.len(), 2);
    let trail = serde_json::to_string(&seen).unwrap();
    assert!(!trail.contains(app.scim_token.as_str()));
    // A SCIM token cannot list tokens.
    let r = app
        .send("GET", "/admin/v1/tokens", None, Some(&app.scim_token), &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[actix_web::test]
async fn an_unknown_jti_is_a_json_404() {
    let app = TestApp::start().await;
    let r = app.admin("DELETE", "/tokens/no-such-jti", None).await;
    r.assert_scim_error(404, None);
    assert!(r.text.contains("no-such-jti"));
    // An unbounded or odd jti is not echoed.
    let long = "a".repeat(2_000);
    let r = app.admin("DELETE", &format!("/tokens/{long}"), None).await;
    r.assert_scim_error(404, None);
    assert!(!r.text.contains(&long[..65]), "{}", r.text);
    let r = app.admin("DELETE", "/tokens/%3Cscript%3E", None).await;
    r.assert_scim_error(404, None);
    assert!(!r.text.contains("<script>"), "{}", r.text);
}

#[actix_web::test]
async fn a_revoked_admin_token_is_refused_on_the_api_and_its_console_sessions_end() {
    let app = TestApp::start().await;
    let other_admin = app
        .minter
        .mint("second-operator", Scope::Admin, 30, app.clock.as_ref())
        .unwrap();
    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&other_admin).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert_eq!(browser.get("/ui/tokens").await.status, 200);
    let jti = jti_of(&app, &other_admin);
    let r = app.admin("DELETE", &format!("/tokens/{jti}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["sessions_closed"], 1);
    // The console session is gone: back to sign-in.
    let page = browser.get("/ui/tokens").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/ui/sign-in");
    // Signing in again with it fails; the admin API refuses it.
    let again = browser.sign_in(&other_admin).await;
    assert_eq!(again.status, 401, "{}", again.text);
    let api = app
        .send("GET", "/admin/v1/status", None, Some(&other_admin), &[])
        .await;
    api.assert_scim_error(401, None);
    // The revoking operator's own token still works.
    assert_eq!(app.admin("GET", "/tokens", None).await.status, 200);
}

#[actix_web::test]
async fn a_revocation_survives_a_restart() {
    let app = TestApp::builder().sled().start().await;
    assert_eq!(scim_with(&app, &app.scim_token).await, 200);
    let jti = jti_of(&app, &app.scim_token);
    assert_eq!(
        app.admin("DELETE", &format!("/tokens/{jti}"), None)
            .await
            .status,
        200
    );
    let reloaded =
        cowork_sync::auth::registry::TokenRegistry::load(app.core.store.clone(), app.now())
            .unwrap();
    assert!(reloaded.is_revoked(&jti));
}

#[actix_web::test]
async fn a_rotated_key_signs_new_tokens_and_the_previous_key_works_until_its_deadline() {
    use base64::Engine;
    let app = TestApp::start().await;
    let key_file = app.config.auth.signing_key_file.clone();
    std::fs::write(
        &key_file,
        base64::engine::general_purpose::STANDARD.encode(crate::support::KEY),
    )
    .unwrap();
    let old = app
        .minter
        .mint("okta", Scope::Scim, 3650, app.clock.as_ref())
        .unwrap();
    let data_dir = app.config.storage.data_dir.to_str().unwrap().to_string();
    let bin = |args: &'static [&'static str]| {
        let data_dir = data_dir.clone();
        actix_web::rt::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_cowork-sync"))
                .args(args)
                .env("COWORK_SYNC__STORAGE__DATA_DIR", data_dir)
                .output()
                .unwrap()
        })
    };
    let out = bin(&["token", "rotate-key", "--keep-previous", "2"])
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("accepted until") && said.contains("SIGHUP"),
        "{said}"
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert!(!said.contains(new_key.trim()), "no key is printed");
    let previous = cowork_sync::auth::keys::load_previous(&key_file)
        .unwrap()
        .unwrap();
    assert_eq!(previous.key, crate::support::KEY.to_vec());
    // Tokens minted after the rotation use the new key.
    let out = bin(&["token", "mint", "--scope", "scim", "--ttl", "3650"])
        .await
        .unwrap();
    assert!(out.status.success());
    let new = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rejected_before_reload = scim_with(&app, &new).await;
    assert_eq!(
        rejected_before_reload, 401,
        "the daemon still has the old key"
    );
    // What SIGHUP does.
    app.auth.verifier.reload(&key_file).unwrap();
    assert_eq!(
        scim_with(&app, &old).await,
        200,
        "previous key, before the deadline"
    );
    assert_eq!(scim_with(&app, &new).await, 200, "new key");
    app.advance(previous.accepted_until - app.now() - chrono::Duration::seconds(1));
    assert_eq!(
        scim_with(&app, &old).await,
        200,
        "a second before the deadline"
    );
    app.advance(chrono::Duration::seconds(1));
    let refused = app
        .send("GET", "/scim/v2/Users", None, Some(&old), &[])
        .await;
    refused.assert_scim_error(401, None);
    assert_eq!(scim_with(&app, &new).await, 200);
    // A bad --keep-previous-until is a usage error and changes nothing.
    let out = bin(&["token", "rotate-key", "--keep-previous-until", "yesterday"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin(&[
        "token",
        "rotate-key",
        "--keep-previous-until",
        "2020-01-01T00:00:00Z",
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        cowork_sync::auth::keys::load_previous(&key_file).unwrap(),
        Some(previous)
    );
}

#[actix_web::test]
async fn the_console_lists_tokens_and_revokes_one_only_with_its_csrf_token() {
    let app = TestApp::start().await;
    assert_eq!(scim_with(&app, &app.scim_token).await, 200);
    let jti = jti_of(&app, &app.scim_token);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&app.admin_token).await.status, 303);
    let page = browser.get("/ui/tokens").await;
    assert_eq!(page.status, 200);
    for want in [
        "jti",
        "scope",
        "subject",
        "issued",
        "expires",
        "last used",
        "revoked",
        &jti,
        "okta",
        "/ui/tokens/revoke",
    ] {
        assert!(page.text.contains(want), "{want} missing");
    }
    assert!(!page.text.contains(app.scim_token.as_str()));
    // Without the CSRF token: refused, nothing revoked.
    let forged = browser
        .post("/ui/tokens/revoke", &[("jti", &jti), ("csrf", "nope")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(scim_with(&app, &app.scim_token).await, 200);
    let csrf = page.csrf();
    let done = browser
        .post("/ui/tokens/revoke", &[("jti", &jti), ("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    let location = done.header("location").to_string();
    assert!(
        location.starts_with(&format!("/ui/tokens?revoked={jti}&already=0")),
        "{location}"
    );
    assert_eq!(scim_with(&app, &app.scim_token).await, 401);
    let after = browser.get(&location).await;
    assert!(
        after.text.contains(&format!("Revoked token {jti} (okta)")),
        "{}",
        after.text
    );
    let revocations: Vec<_> = audit::list(app.core.store.as_ref(), None, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.revoked")
        .collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].actor, "operator");
    // A notice is shown only for a jti the registry holds as revoked.
    let odd = browser.get("/ui/tokens?revoked=%3Cb%3Ehi&already=0").await;
    assert!(!odd.text.contains("<b>hi") && !odd.text.contains("Revoked token"));
    // An unknown jti is the console's 404 page.
    let unknown = browser
        .post("/ui/tokens/revoke", &[("jti", "no-such"), ("csrf", &csrf)])
        .await;
    assert_eq!(unknown.status, 404);
}
