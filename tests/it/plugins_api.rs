//! The beta endpoints (reference §1.10) through the client: the Plugins API and the
//! spend-limit reads against the simulator as the real API behaves (no extension
//! tier) and against the scripted mock (headers, pagination, 429, 503 retry, 404 on a
//! repeated delete, feature detection); the renamed fields and built-in roles.

use std::time::Duration;

use cowork_sync::cowork::*;
use cowork_sync::sim::{FaultConfig, SimHandle, SimOptions};
use serde_json::{json, Value};

use crate::cowork_client::{client_for, error_json, mock, start_sim, Reply, KEY};

fn key(parts: &[&str]) -> IdempotencyKey {
    IdempotencyKey::derive(parts)
}

async fn real_sim(plugins: &[&str]) -> SimHandle {
    start_sim(SimOptions {
        extended: false,
        plugins: plugins.iter().map(|p| (*p).to_owned()).collect(),
        ..SimOptions::for_tests()
    })
    .await
}

async fn raw_get(h: &SimHandle, path: &str, beta: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("{}/v1/organizations{path}", h.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01");
    if let Some(b) = beta {
        req = req.header("anthropic-beta", b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn plugins_seeded_by_name_are_listed_with_ids_and_their_group_settings_are_written() {
    let h = real_sim(&["sales-kit", "legal-review"]).await;
    let c = client_for(&h.base_url(), Mode::Real);
    let plugins = c.list_plugins().await.unwrap();
    let sales = plugins.iter().find(|p| p.name == "sales-kit").unwrap();
    assert!(sales.id.starts_with("plugin_01"), "{}", sales.id);
    assert!(plugins.iter().any(|p| p.name == "legal-review"));

    let gid = c
        .create_group(
            &NewGroup {
                name: "Sales".into(),
                ..NewGroup::default()
            },
            &key(&["g"]),
        )
        .await
        .unwrap()
        .id()
        .to_owned();
    let target = PluginTarget::RbacGroup {
        rbac_group_id: gid.clone(),
    };
    let set = c
        .set_plugin_setting(
            &sales.id,
            &target,
            InstallationPreference::AutoInstall,
            &key(&["s"]),
        )
        .await
        .unwrap();
    assert_eq!(
        set.installation_preference,
        InstallationPreference::AutoInstall
    );
    let settings = c.list_plugin_settings(&sales.id).await.unwrap();
    assert!(settings
        .iter()
        .any(|s| s.target == PluginTarget::Organization));
    assert!(settings
        .iter()
        .any(|s| s.target == target
            && s.installation_preference == InstallationPreference::AutoInstall));
    // The same value again is a no-op; a second delete is already in state (404).
    c.set_plugin_setting(
        &sales.id,
        &target,
        InstallationPreference::AutoInstall,
        &key(&["s2"]),
    )
    .await
    .unwrap();
    let first = c
        .delete_plugin_setting(&sales.id, &target, &key(&["d"]))
        .await
        .unwrap();
    let second = c
        .delete_plugin_setting(&sales.id, &target, &key(&["d2"]))
        .await
        .unwrap();
    assert_eq!((first, second), (Outcome::Applied, Outcome::AlreadyInState));
    assert!(h.state().plugin_overrides("sales-kit").is_empty());
    h.stop().await.unwrap();
}

#[tokio::test]
async fn the_plugins_api_is_404_without_its_beta_header_and_pages_at_most_100() {
    let h = real_sim(&[]).await;
    let beta = Some(Beta::Plugins.header_value());
    let (status, _) = raw_get(&h, "/plugins", None).await;
    assert_eq!(status, 404);
    let (status, body) = raw_get(&h, "/plugins", beta).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw_get(&h, "/plugins?limit=101", beta).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("100"));
    let (status, _) = raw_get(&h, "/plugins?limit=100", beta).await;
    assert_eq!(status, 200);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_writes_to_one_plugin_answer_503_with_x_should_retry() {
    let h = real_sim(&["sales-kit"]).await;
    let c = client_for(&h.base_url(), Mode::Real);
    let plugin = c.list_plugins().await.unwrap()[0].id.clone();
    h.sim().set_faults(FaultConfig {
        latency_ms: 300,
        ..FaultConfig::default()
    });
    let write = || {
        let url = format!(
            "{}/v1/organizations/plugins/{plugin}/installation_settings/organization",
            h.base_url()
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-api-key", KEY)
                .header("anthropic-beta", Beta::Plugins.header_value())
                .json(&json!({"installation_preference": "required"}))
                .send()
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(write(), write());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503]);
    let busy = if a.status() == 503 { &a } else { &b };
    assert_eq!(busy.headers()["x-should-retry"], "true");
    // The client writes one at a time per plugin: both of its writes succeed.
    let target = PluginTarget::Organization;
    let (kx, ky) = (key(&["x"]), key(&["y"]));
    let (x, y) = tokio::join!(
        c.set_plugin_setting(&plugin, &target, InstallationPreference::Available, &kx),
        c.set_plugin_setting(&plugin, &target, InstallationPreference::Required, &ky),
    );
    x.unwrap();
    y.unwrap();
    h.stop().await.unwrap();
}

#[tokio::test]
async fn spend_limits_of_every_scope_are_read_with_the_beta_header_in_real_mode() {
    let h = real_sim(&[]).await;
    let c = client_for(&h.base_url(), Mode::Real);
    let gid = c
        .create_group(
            &NewGroup {
                name: "Pilot".into(),
                ..NewGroup::default()
            },
            &key(&["g"]),
        )
        .await
        .unwrap()
        .id()
        .to_owned();
    {
        // Set "in claude.ai": the API cannot write group or organization limits.
        let mut s = h.state();
        let now = h.sim().clock().now();
        for scope in [
            SpendScope::RbacGroup {
                rbac_group_id: gid.clone(),
            },
            SpendScope::Organization,
        ] {
            let req = SpendLimitRequest {
                scope,
                period: Some(Period::Monthly),
                amount: Some("50000".into()),
                currency: None,
            };
            s.upsert_spend_limit(&req, true, now).unwrap();
        }
    }
    let (status, _) = raw_get(&h, "/spend_limits", None).await;
    assert_eq!(status, 404, "without the beta header (and without tier B)");
    let all = c
        .list_spend_limits(&SpendLimitFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].scope,
        SpendScope::Organization,
        "grouped by scope, org first"
    );
    let groups = c
        .list_spend_limits(&SpendLimitFilter {
            scope_type: Some("rbac_group".into()),
            rbac_group_id: Some(gid.clone()),
        })
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].amount_minor(), Some(50_000));
    h.stop().await.unwrap();
}

#[tokio::test]
async fn renamed_fields_are_on_the_wire_and_built_in_roles_are_in_the_role_list() {
    let h = real_sim(&[]).await;
    let c = client_for(&h.base_url(), Mode::Real);
    let (_, roles) = raw_get(&h, "/rbac_roles", None).await;
    let first = &roles["data"][0];
    assert_eq!(first["display_name"], first["name"]);
    assert!(first["source"]["type"].is_string());
    let (_, groups) = raw_get(&h, "/rbac_groups", None).await;
    assert_eq!(groups["data"][0]["role_ids"], groups["data"][0]["roles"]);
    let listed = c.list_roles().await.unwrap();
    let built_in: Vec<&str> = listed
        .iter()
        .filter(|r| r.is_built_in())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(built_in, ["Owner", "User"]);
    h.stop().await.unwrap();
}

fn plugin_json(id: &str) -> Value {
    json!({"type": "plugin", "id": id, "name": id, "created_at": "2026-01-01T00:00:00Z",
           "updated_at": "2026-01-01T00:00:00Z"})
}

fn setting_json(pref: &str) -> Value {
    json!({"type": "plugin_installation_setting", "plugin_id": "plugin_01a",
           "target": {"type": "organization"}, "installation_preference": pref,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
}

#[tokio::test]
async fn plugin_lists_carry_the_beta_header_page_by_100_and_follow_short_pages() {
    let m = mock(|seen, n| {
        let next = |c: &str| Value::String(c.to_owned());
        let page = |data: Vec<Value>, next_page: Value| {
            Reply::Json(200, json!({"data": data, "next_page": next_page}), vec![])
        };
        match (seen.path.as_str(), n) {
            // A short page, then an empty page that still carries a cursor, then the end.
            ("/v1/organizations/plugins", 1) => page(vec![plugin_json("plugin_01a")], next("c1")),
            ("/v1/organizations/plugins", 2) => page(vec![], next("c2")),
            ("/v1/organizations/plugins", _) => page(vec![plugin_json("plugin_01b")], Value::Null),
            _ => Reply::Json(404, error_json("not_found_error", "no"), vec![]),
        }
    })
    .await;
    let c = m.client();
    let plugins = c.list_plugins().await.unwrap();
    assert_eq!(plugins.len(), 2);
    let seen = m.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.headers["anthropic-beta"], "ce-plugins-2026-09-01");
        assert_eq!(s.headers["x-api-key"], KEY);
        assert!(s.query.contains("limit=100"), "{}", s.query);
    }
    assert!(seen[1].query.contains("page=c1"));
    assert!(seen[2].query.contains("page=c2"));
}

#[tokio::test(start_paused = true)]
async fn a_plugin_write_waits_out_a_429_and_retries_a_503_that_should_be_retried() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(
            429,
            error_json("rate_limit_error", "slow down"),
            vec![("retry-after", "5")],
        ),
        2 => Reply::Json(
            503,
            error_json("api_error", "busy"),
            vec![("x-should-retry", "true")],
        ),
        _ => Reply::Json(200, setting_json("required"), vec![]),
    })
    .await;
    let c = m.client();
    let started = tokio::time::Instant::now();
    let k = key(&["w"]);
    c.set_plugin_setting(
        "plugin_01a",
        &PluginTarget::Organization,
        InstallationPreference::Required,
        &k,
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(5));
    let seen = m.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.method == "POST"
        && s.path == "/v1/organizations/plugins/plugin_01a/installation_settings/organization"
        && s.headers["anthropic-beta"] == "ce-plugins-2026-09-01"));
    assert_eq!(c.call_counts().writes, 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_that_should_not_be_retried_is_not() {
    let m = mock(|_, _| {
        Reply::Json(
            503,
            error_json("api_error", "registration pending"),
            vec![("x-should-retry", "false")],
        )
    })
    .await;
    let c = m.client();
    let err = c
        .set_plugin_setting(
            "plugin_01a",
            &PluginTarget::Organization,
            InstallationPreference::Required,
            &key(&["w"]),
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(m.seen().len(), 1);
}

#[tokio::test]
async fn a_repeated_delete_answering_404_is_already_in_state() {
    let m =
        mock(|_, _| Reply::Json(404, error_json("not_found_error", "no setting"), vec![])).await;
    let c = m.client();
    let target = PluginTarget::RbacGroup {
        rbac_group_id: "rbac_group_01x".into(),
    };
    let out = c
        .delete_plugin_setting("plugin_01a", &target, &key(&["d"]))
        .await
        .unwrap();
    assert_eq!(out, Outcome::AlreadyInState);
    assert_eq!(
        m.seen()[0].path,
        "/v1/organizations/plugins/plugin_01a/installation_settings/rbac_group_01x"
    );
}

#[tokio::test]
async fn a_beta_that_is_not_available_to_the_org_is_detected_once_and_not_called_again() {
    let m = mock(|seen, _| {
        if seen.path.ends_with("/plugins") || seen.path.ends_with("/spend_limits") {
            Reply::Json(404, error_json("not_found_error", "Not found"), vec![])
        } else {
            Reply::Json(
                200,
                json!({"data": [], "has_more": false, "next_page": null}),
                vec![],
            )
        }
    })
    .await;
    let c = m.client();
    for _ in 0..3 {
        let err = c.list_plugins().await.unwrap_err();
        assert!(matches!(err, CoworkError::BetaUnavailable { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the Plugins API is not available to this organization"
        );
    }
    let err = c.list_plugin_settings("plugin_01a").await.unwrap_err();
    assert!(matches!(err, CoworkError::BetaUnavailable { .. }));
    let err = c
        .list_spend_limits(&SpendLimitFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CoworkError::BetaUnavailable { .. }));
    // The stable endpoints still work.
    c.list_groups().await.unwrap();
    let plugin_calls = m
        .seen()
        .iter()
        .filter(|s| s.path.contains("/plugins"))
        .count();
    assert_eq!(plugin_calls, 1, "one probe, then no more calls");
}
