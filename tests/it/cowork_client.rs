//! The Cowork admin API client against the in-process simulator (every resource,
//! both pagination styles, the product rules, idempotency, faults) and against a
//! scripted local HTTP mock (headers, retries, 429, timeouts, odd pages).
//!
//! Tests that retry run with paused tokio time and a client without reqwest timeouts
//! (see `cowork::client`), so backoff and `retry-after` never really wait.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use cowork_sync::clock::ManualClock;
use cowork_sync::cowork::*;
use cowork_sync::sim::{self, FaultConfig, NewMember, SimHandle, SimOptions};
use parking_lot::Mutex;
use serde_json::{json, Value};

pub(crate) const KEY: &str = "sk-ant-api01-test-key";

fn member(email: &str) -> NewMember {
    NewMember {
        email: email.into(),
        name: None,
        role: None,
        seat_tier: None,
    }
}

pub(crate) async fn start_sim(options: SimOptions) -> SimHandle {
    sim::start(SimOptions {
        api_key: Some(KEY.into()),
        ..options
    })
    .await
    .unwrap()
}

pub(crate) fn client_for(url: &str, mode: Mode) -> HttpCoworkClient {
    HttpCoworkClient::new(ClientConfig::new(url, KEY).with_mode(mode).without_limits()).unwrap()
}

fn key(parts: &[&str]) -> IdempotencyKey {
    IdempotencyKey::derive(parts)
}

fn add_users(h: &SimHandle, n: usize, prefix: &str) -> Vec<String> {
    let mut state = h.state();
    let now = h.sim().clock().now();
    (0..n)
        .map(|i| {
            state
                .sim_add_member(&member(&format!("{prefix}{i}@example.com")), now)
                .unwrap()
                .id
        })
        .collect()
}

fn scim_group_id(h: &SimHandle) -> String {
    h.state()
        .groups()
        .iter()
        .find(|g| g.is_scim())
        .unwrap()
        .id
        .clone()
}

// ----------------------------------------------------------------------------------
// Against the simulator
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn me_reports_the_seeded_enterprise_org_and_extension_capabilities() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let me = c.get_me().await.unwrap();
    assert_eq!(me.plan, Some(Plan::Enterprise));
    assert_eq!(me.provisioning_mode, Some(ProvisioningMode::Manual));
    let settings = me.settings.unwrap();
    assert_eq!(settings.billing_currency, "USD");
    assert!(settings.cowork_enabled && settings.skills_enabled && settings.usage_credits_enabled);
    let connectors: Vec<&str> = settings.connectors.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        connectors,
        [
            "mcpsrv_github",
            "mcpsrv_jira",
            "mcpsrv_slack",
            "mcpsrv_drive"
        ]
    );
    assert!(me.capabilities.extended_api && me.capabilities.plugin_policies);
    assert!(me.capabilities.group_spend_limits_writable);
    assert_eq!(c.call_counts().reads, 1);
    h.stop().await.unwrap();
}

#[actix_web::test]
async fn the_simulator_also_starts_inside_an_actix_system() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    assert_eq!(c.list_users().await.unwrap().len(), 1);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn groups_members_and_roles_round_trip_through_the_client() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let users = add_users(&h, 3, "crud");

    let new = NewGroup {
        name: "Cowork pilot".into(),
        description: Some("managed by cowork-sync".into()),
        external_id: Some("okta:00g1".into()),
        managed_by: Some("cowork-sync".into()),
    };
    let group = match c
        .create_group(&new, &key(&["create", "okta:00g1"]))
        .await
        .unwrap()
    {
        Created::New(g) => g,
        other => panic!("expected a new group, got {other:?}"),
    };
    assert!(group.id.starts_with("rbac_group_01"));
    assert_eq!(group.source_type, SourceType::Direct);
    assert_eq!(group.roles, Some(vec![]));

    let renamed = c
        .rename_group(&group.id, "Cowork pilot (EU)", &key(&["rename", &group.id]))
        .await
        .unwrap();
    assert_eq!(renamed.name, "Cowork pilot (EU)");
    assert_eq!(
        c.get_group(&group.id).await.unwrap().name,
        "Cowork pilot (EU)"
    );

    for u in &users[..2] {
        let o = c
            .add_group_member(&group.id, u, &key(&["add", &group.id, u]))
            .await
            .unwrap();
        assert_eq!(o, Outcome::Applied);
    }
    let members = c.list_group_members(&group.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        vec![users[0].as_str(), users[1].as_str()],
        "oldest first"
    );
    assert_eq!(members[0].email, "crud0@example.com");

    let set = c
        .set_group_members(
            &group.id,
            &[users[1].clone(), users[2].clone()],
            &key(&["set", &group.id]),
        )
        .await
        .unwrap();
    assert_eq!(set.added, vec![users[2].clone()]);
    assert_eq!(set.removed, vec![users[0].clone()]);
    assert_eq!(set.unchanged, 1);

    let spec = RoleSpec {
        name: "Cowork pilot".into(),
        external_id: Some("cowork-pilot".into()),
        capabilities: serde_json::from_value(json!({"cowork": true, "chat": true})).unwrap(),
        connectors: serde_json::from_value(json!([
            {"connector_id": "mcpsrv_github", "default_tool_mode": "needs_approval",
             "tools": [{"tool_name": "create_issue", "mode": "always_allow"}],
             "oauth_scopes": ["repo"]}
        ]))
        .unwrap(),
        admin_permissions: [("billing".to_owned(), AdminLevel::View)].into(),
        ..RoleSpec::default()
    };
    let role = match c
        .create_role(&spec, &key(&["role", "cowork-pilot"]))
        .await
        .unwrap()
    {
        Created::New(r) => r,
        other => panic!("expected a new role, got {other:?}"),
    };
    assert!(role.id.starts_with("rbac_role_01"));
    assert_eq!(role.spec().unwrap(), spec);
    let perms = c.list_role_permissions(&role.id).await.unwrap();
    let actions: BTreeSet<&str> = perms.iter().map(|p| p.action.as_str()).collect();
    for expected in [
        "cowork",
        "chat",
        "always_allow",
        "grant",
        "permission_billing_view",
    ] {
        assert!(actions.contains(expected), "{expected} in {actions:?}");
    }
    let mut changed = spec.clone();
    changed
        .capabilities
        .features
        .insert("claude_code".into(), true);
    let updated = c
        .update_role(&role.id, &changed, &key(&["role-upd", &role.id]))
        .await
        .unwrap();
    assert_eq!(updated.version, Some(2));

    let attached = c
        .set_group_roles(
            &group.id,
            std::slice::from_ref(&role.id),
            &key(&["attach", &group.id]),
        )
        .await
        .unwrap();
    assert_eq!(attached.roles, Some(vec![role.id.clone()]));
    let roles = c.list_roles().await.unwrap();
    assert_eq!(
        roles.len(),
        5,
        "two seeded custom roles, two built-in roles and ours"
    );

    assert_eq!(
        c.delete_role(&role.id, &key(&["del-role", &role.id]))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(c.get_group(&group.id).await.unwrap().roles, Some(vec![]));
    assert_eq!(
        c.delete_group(&group.id, &key(&["del", &group.id]))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        c.delete_group(&group.id, &key(&["del-again", &group.id]))
            .await
            .unwrap(),
        Outcome::AlreadyInState
    );
    let groups = c.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1, "only the seeded SCIM group is left");
    h.stop().await.unwrap();
}

#[tokio::test]
async fn users_invites_spend_plugins_and_effective_access_round_trip() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let user = add_users(&h, 1, "person")[0].clone();

    let managed = c
        .set_user_role(&user, OrgRole::Managed, &key(&["role", &user]))
        .await
        .unwrap();
    assert_eq!(managed.role, OrgRole::Managed);
    assert_eq!(c.get_user(&user).await.unwrap().role, OrgRole::Managed);

    let group = c
        .create_group(
            &NewGroup {
                name: "Finance".into(),
                external_id: Some("okta:fin".into()),
                ..NewGroup::default()
            },
            &key(&["g", "fin"]),
        )
        .await
        .unwrap();
    let gid = group.id().to_owned();
    let invite = c
        .create_invite(
            &InviteRequest {
                email: "newcomer@example.com".into(),
                role: OrgRole::Managed,
                rbac_group_ids: vec![gid.clone()],
            },
            &key(&["invite", "newcomer"]),
        )
        .await
        .unwrap();
    assert!(invite.id.starts_with("invite_01"));
    assert_eq!(invite.status, InviteStatus::Pending);
    assert_eq!(c.list_invites().await.unwrap().len(), 1);

    c.add_group_member(&gid, &user, &key(&["add", &gid, &user]))
        .await
        .unwrap();
    let own = c
        .upsert_user_spend_limit(&user, Some(50_000), "USD", &key(&["spend", &user]))
        .await
        .unwrap();
    assert!(own.id.starts_with("spl_01"));
    assert_eq!(own.amount.as_deref(), Some("50000"));
    let group_limit = c
        .upsert_group_spend_limit(&gid, Some(20_000), "USD", &key(&["gspend", &gid]))
        .await
        .unwrap();
    let effective = c.list_effective_spend().await.unwrap();
    let row = effective.iter().find(|r| r.actor.user_id == user).unwrap();
    assert_eq!(row.amount.as_deref(), Some("50000"));
    assert_eq!(
        row.source,
        SpendScope::User {
            user_id: user.clone()
        }
    );
    let group_rows = c
        .list_spend_limits(&SpendLimitFilter {
            scope_type: Some("rbac_group".into()),
            rbac_group_id: Some(gid.clone()),
        })
        .await
        .unwrap();
    assert_eq!(group_rows, vec![group_limit]);
    assert_eq!(
        c.delete_spend_limit(&own.id, &key(&["del-spend", &own.id]))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        c.delete_spend_limit(&own.id, &key(&["del-spend-2", &own.id]))
            .await
            .unwrap(),
        Outcome::AlreadyInState
    );
    let err = c
        .upsert_user_spend_limit(&user, Some(1), "EUR", &key(&["eur", &user]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("currency_mismatch"));

    let policy = c
        .put_plugin_policy(
            "finance-close",
            &PluginPolicyUpdate {
                org_preference: None,
                group_overrides: vec![GroupOverride {
                    rbac_group_id: gid.clone(),
                    preference: Preference::Required,
                }],
            },
            &key(&["plugin", "finance-close"]),
        )
        .await
        .unwrap();
    assert_eq!(policy.group_overrides.len(), 1);
    assert_eq!(c.list_plugin_policies().await.unwrap().len(), 3);

    let access = c.get_effective_access(&user).await.unwrap();
    assert!(access.custom_roles_apply);
    assert_eq!(access.groups, vec![gid.clone()]);
    assert_eq!(
        access.spend.unwrap().amount.as_deref(),
        Some("20000"),
        "group default now applies"
    );
    let fc = access
        .plugins
        .iter()
        .find(|p| p.plugin_id == "finance-close")
        .unwrap();
    assert_eq!(fc.preference, Preference::Required);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn both_pagination_styles_cover_more_than_a_thousand_items_with_short_pages() {
    let h = start_sim(SimOptions {
        short_pages: true,
        ..SimOptions::for_tests()
    })
    .await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let users = add_users(&h, 2_400, "bulk");
    let gid = c
        .create_group(
            &NewGroup {
                name: "Everyone".into(),
                ..NewGroup::default()
            },
            &key(&["everyone"]),
        )
        .await
        .unwrap()
        .id()
        .to_owned();
    {
        let mut state = h.state();
        let now = h.sim().clock().now();
        for u in &users {
            state.add_member(&gid, u, now).unwrap();
        }
    }

    let listed = c.list_users().await.unwrap();
    assert_eq!(listed.len(), 2_401, "2,400 members and the owner");
    let ids: BTreeSet<&str> = listed.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), listed.len(), "no duplicates across pages");
    assert_eq!(listed[0].id, *users.last().unwrap(), "newest first");
    let reads_for_users = c.call_counts().reads;
    assert_eq!(reads_for_users, 3, "1000 + 1000 + 401");

    let members = c.list_group_members(&gid).await.unwrap();
    assert_eq!(members.len(), 2_400);
    let order: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    let expected: Vec<&str> = users.iter().map(String::as_str).collect();
    assert_eq!(order, expected, "oldest first, nothing lost on short pages");
    let member_pages = c.call_counts().reads - reads_for_users;
    assert_eq!(member_pages, 4, "1000 + a short 333 + 1000 + 67");
    h.stop().await.unwrap();
}

#[tokio::test]
async fn scim_groups_and_admin_roles_are_refused_with_their_codes() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let user = add_users(&h, 1, "x")[0].clone();
    let scim = scim_group_id(&h);
    let owner = h.state().users().iter().next().unwrap().id.clone();

    let errors = [
        c.rename_group(&scim, "renamed", &key(&["1"]))
            .await
            .unwrap_err(),
        c.delete_group(&scim, &key(&["2"])).await.unwrap_err(),
        c.add_group_member(&scim, &user, &key(&["3"]))
            .await
            .unwrap_err(),
        c.remove_group_member(&scim, &user, &key(&["4"]))
            .await
            .unwrap_err(),
    ];
    for e in &errors {
        assert!(matches!(e, CoworkError::InvalidRequest { .. }), "{e:?}");
        assert_eq!(e.code(), Some("scim_managed_resource"));
        assert!(e.request_id().unwrap().starts_with("req_01"));
    }
    let e = c
        .set_user_role(&user, OrgRole::Owner, &key(&["5"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("admin_role_not_assignable"));
    let e = c
        .set_user_role(&owner, OrgRole::Managed, &key(&["6"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("admin_role_not_assignable"));
    assert_eq!(
        h.state().get_user(&owner).unwrap().role,
        OrgRole::PrimaryOwner
    );
    h.stop().await.unwrap();
}

#[tokio::test]
async fn already_member_and_not_member_converge_and_duplicate_external_id_returns_the_existing_group(
) {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let user = add_users(&h, 1, "y")[0].clone();
    let new = NewGroup {
        name: "Eng".into(),
        external_id: Some("entra:abc".into()),
        ..NewGroup::default()
    };
    let first = c
        .create_group(&new, &key(&["run1", "create"]))
        .await
        .unwrap();
    let second = c
        .create_group(&new, &key(&["run2", "create"]))
        .await
        .unwrap();
    assert_eq!(
        second,
        Created::Existing {
            id: first.id().to_owned()
        }
    );
    let gid = first.id();
    assert_eq!(
        c.add_group_member(gid, &user, &key(&["a1"])).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        c.add_group_member(gid, &user, &key(&["a2"])).await.unwrap(),
        Outcome::AlreadyInState
    );
    assert_eq!(
        c.remove_group_member(gid, &user, &key(&["r1"]))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        c.remove_group_member(gid, &user, &key(&["r2"]))
            .await
            .unwrap(),
        Outcome::AlreadyInState
    );
    let m = h.metrics();
    assert_eq!(m.writes, 6);
    assert_eq!(m.writes_applied, 3);
    assert_eq!(m.writes_rejected, 3);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_body() {
    let h = start_sim(SimOptions::for_tests()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/organizations/rbac_groups", h.base_url());
    let post = |body: Value| {
        http.post(&url)
            .header("x-api-key", KEY)
            .header("Idempotency-Key", "same-key")
            .json(&body)
            .send()
    };
    let first = post(json!({"name": "Ops"})).await.unwrap();
    assert_eq!(first.status(), 200);
    let first_id = first.headers()["request-id"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    let again = post(json!({"name": "Ops"})).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_ne!(again.headers()["request-id"].to_str().unwrap(), first_id);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the same group, not a second one");
    let reused = post(json!({"name": "Other"})).await.unwrap();
    assert_eq!(reused.status(), 409);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "conflict_error");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(h.state().groups().len(), 2, "the seeded SCIM group and Ops");
    assert_eq!(h.metrics().replays, 1);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn real_mode_refuses_tier_b_writes_without_calling_the_server() {
    let h = start_sim(SimOptions::for_tests()).await;
    let c = client_for(&h.base_url(), Mode::Real);
    let gid = scim_group_id(&h);
    let k = key(&["real"]);
    let errors = [
        c.create_role(&RoleSpec::default(), &k).await.unwrap_err(),
        c.update_role("rbac_role_01x", &RoleSpec::default(), &k)
            .await
            .unwrap_err(),
        c.delete_role("rbac_role_01x", &k).await.unwrap_err(),
        c.set_group_roles(&gid, &[], &k).await.unwrap_err(),
        c.set_group_members(&gid, &[], &k).await.unwrap_err(),
        c.upsert_group_spend_limit(&gid, Some(1), "USD", &k)
            .await
            .unwrap_err(),
        c.put_plugin_policy("brand-kit", &PluginPolicyUpdate::default(), &k)
            .await
            .unwrap_err(),
    ];
    for e in &errors {
        assert!(matches!(e, CoworkError::NotInRealApi { .. }), "{e:?}");
    }
    assert_eq!(c.call_counts().writes, 0);
    assert_eq!(h.metrics().writes, 0);
    // Tier A writes still work, with only the documented fields.
    let created = c
        .create_group(
            &NewGroup {
                name: "Plain".into(),
                external_id: Some("ignored-in-real-mode".into()),
                ..NewGroup::default()
            },
            &k,
        )
        .await
        .unwrap();
    let Created::New(group) = created else {
        panic!("expected a new group")
    };
    assert_eq!(group.external_id, None);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulator_without_the_extension_tier_behaves_like_the_real_api() {
    let h = start_sim(SimOptions {
        extended: false,
        ..SimOptions::for_tests()
    })
    .await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let me = c.get_me().await.unwrap();
    assert!(!me.capabilities.extended_api);
    let user = add_users(&h, 1, "z")[0].clone();
    let e = c.get_effective_access(&user).await.unwrap_err();
    assert!(matches!(e, CoworkError::NotFound { .. }));
    let gid = scim_group_id(&h);
    let e = c
        .upsert_group_spend_limit(&gid, Some(5), "USD", &key(&["g"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("scope_not_writable"));
    assert!(c
        .upsert_user_spend_limit(&user, Some(5), "USD", &key(&["u"]))
        .await
        .is_ok());
    h.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulator_checks_the_key_the_version_header_and_cursor_bindings() {
    let h = start_sim(SimOptions::for_tests()).await;
    let http = reqwest::Client::new();
    let base = format!("{}/v1/organizations", h.base_url());

    let r = http
        .get(format!("{base}/rbac_groups"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let r = http
        .get(format!("{base}/rbac_groups"))
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = http
        .get(format!("{base}/users"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "users need anthropic-version");
    let r = http
        .get(format!("{base}/rbac_groups"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "groups do not");
    assert!(r.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_01"));

    h.state()
        .sim_add_member(&member("a@example.com"), h.sim().clock().now())
        .unwrap();
    let first: Value = http
        .get(format!("{base}/spend_limits/effective?limit=1"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(first["data"].is_array());
    let page: Value = http
        .get(format!("{base}/rbac_roles?limit=1"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page["next_page"].as_str().unwrap().to_owned();
    let ok = http
        .get(format!("{base}/rbac_roles?limit=1&page={cursor}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let gid = scim_group_id(&h);
    let mismatch = http
        .get(format!("{base}/rbac_groups/{gid}/members?page={cursor}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 400);
    let body: Value = mismatch.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "cursor does not match current query parameters"
    );
    h.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulators_rate_limit_answers_429_with_retry_after_on_its_own_clock() {
    let clock = Arc::new(ManualClock::at_epoch_2026());
    let h = start_sim(SimOptions {
        rpm: 3,
        clock: clock.clone(),
        ..SimOptions::for_tests()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/organizations/rbac_groups", h.base_url());
    let get = || http.get(&url).header("x-api-key", KEY).send();
    for _ in 0..3 {
        assert_eq!(get().await.unwrap().status(), 200);
    }
    let limited = get().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "20");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    clock.advance(chrono::Duration::seconds(20));
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(h.metrics().rate_limited, 1);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn the_simulator_keeps_its_state_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = SimOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..SimOptions::for_tests()
    };
    let h = start_sim(options.clone()).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let user = add_users(&h, 1, "keep")[0].clone();
    let gid = c
        .create_group(
            &NewGroup {
                name: "Kept".into(),
                external_id: Some("okta:kept".into()),
                ..NewGroup::default()
            },
            &key(&["kept"]),
        )
        .await
        .unwrap()
        .id()
        .to_owned();
    c.add_group_member(&gid, &user, &key(&["kept-add"]))
        .await
        .unwrap();
    h.stop().await.unwrap();

    let h = start_sim(options).await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let members = c.list_group_members(&gid).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, user);
    let again = c
        .create_group(
            &NewGroup {
                name: "Kept".into(),
                external_id: Some("okta:kept".into()),
                ..NewGroup::default()
            },
            &key(&["kept-2"]),
        )
        .await
        .unwrap();
    assert_eq!(again, Created::Existing { id: gid });
    h.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_simulator_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = SimOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..SimOptions::for_tests()
    };
    let first = start_sim(options.clone()).await;
    let users = add_users(&first, 1, "first");
    let err = sim::start(options.clone()).await.unwrap_err();
    assert!(matches!(err, sim::SimError::Locked { .. }), "{err}");
    first.stop().await.unwrap();
    // The refused one wrote nothing: the first one's state is intact and reopens.
    let again = start_sim(options).await;
    assert!(again.state().users().contains(&users[0]));
    again.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_is_written_in_the_background_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_sim(SimOptions {
        data_dir: Some(dir.path().to_path_buf()),
        snapshot_interval: Duration::from_millis(200),
        ..SimOptions::for_tests()
    })
    .await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let created = c
        .create_group(
            &NewGroup {
                name: "Background".into(),
                external_id: Some("okta:bg".into()),
                ..NewGroup::default()
            },
            &key(&["bg"]),
        )
        .await
        .unwrap();
    let path = dir.path().join(sim::persist::SNAPSHOT_FILE);
    let mut written = false;
    for _ in 0..1_000 {
        // Paused time: each tick is instant; the writer's file I/O runs meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(created.id())) {
            written = true;
            break;
        }
    }
    assert!(
        written,
        "the change reached the snapshot without a shutdown"
    );
    drop(h);
}

#[tokio::test]
async fn sim_hooks_add_members_accept_invites_and_reset() {
    let h = start_sim(SimOptions::for_tests()).await;
    let http = reqwest::Client::new();
    let hook = |path: &str| format!("{}/_sim/{path}", h.base_url());
    let r = http
        .post(hook("users"))
        .header("x-api-key", KEY)
        .json(&json!([{"email": "a@example.com"}, {"email": "b@example.com", "role": "managed"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Vec<User> = r.json().await.unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].role, OrgRole::Managed);
    let r = http
        .put(hook("org"))
        .header("x-api-key", KEY)
        .json(&json!({"plan": "team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = client_for(&h.base_url(), Mode::Extended);
    let e = c
        .create_group(
            &NewGroup {
                name: "x".into(),
                ..NewGroup::default()
            },
            &key(&["team"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("plan_not_supported"));
    let state: Value = http
        .get(hook("state"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["snapshot"]["users"].as_array().unwrap().len(), 3);
    assert_eq!(state["metrics"]["writes_rejected"], 1);
    let r = http
        .post(hook("reset"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.state().users().len(), 1);
    assert_eq!(h.state().org().plan, Plan::Enterprise);
    assert_eq!(http.get(hook("state")).send().await.unwrap().status(), 401);
    h.stop().await.unwrap();
}

#[tokio::test]
async fn accept_invites_turns_each_invite_into_a_member() {
    let h = start_sim(SimOptions {
        accept_invites: true,
        ..SimOptions::for_tests()
    })
    .await;
    let c = client_for(&h.base_url(), Mode::Extended);
    let invite = c
        .create_invite(
            &InviteRequest {
                email: "joiner@example.com".into(),
                role: OrgRole::Managed,
                rbac_group_ids: vec![],
            },
            &key(&["joiner"]),
        )
        .await
        .unwrap();
    assert_eq!(invite.status, InviteStatus::Accepted);
    let users = c.list_users().await.unwrap();
    assert!(users
        .iter()
        .any(|u| u.email == "joiner@example.com" && u.role == OrgRole::Managed));
    h.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn writes_converge_without_duplicates_under_thirty_percent_failures() {
    let h = start_sim(SimOptions::for_tests()).await;
    h.sim().set_faults(FaultConfig {
        error_rate: 0.3,
        drop_rate: 0.1,
        rate_limit_rate: 0.05,
        seed: Some(7),
        ..FaultConfig::default()
    });
    let mut config = ClientConfig::new(h.base_url(), KEY).without_limits();
    config.max_attempts = 12;
    let c = HttpCoworkClient::new(config).unwrap();
    let users = add_users(&h, 20, "flaky");

    let mut groups = Vec::new();
    for i in 0..5 {
        let ext = format!("okta:g{i}");
        let new = NewGroup {
            name: format!("Group {i}"),
            external_id: Some(ext.clone()),
            ..NewGroup::default()
        };
        let created = c
            .create_group(&new, &key(&["run", "create", &ext]))
            .await
            .unwrap();
        groups.push(created.id().to_owned());
    }
    for (i, g) in groups.iter().enumerate() {
        for u in users.iter().skip(i).step_by(2) {
            c.add_group_member(g, u, &key(&["run", "add", g, u]))
                .await
                .unwrap();
        }
        c.remove_group_member(g, &users[i], &key(&["run", "remove", g, &users[i]]))
            .await
            .unwrap();
        c.upsert_group_spend_limit(
            g,
            Some(1000 * (i as u64 + 1)),
            "USD",
            &key(&["run", "spend", g]),
        )
        .await
        .unwrap();
    }

    let faults = h.metrics();
    assert!(faults.injected_errors > 10, "{faults:?}");
    assert!(faults.dropped > 0, "{faults:?}");
    h.sim().set_faults(FaultConfig::default());

    let listed = c.list_groups().await.unwrap();
    let direct: Vec<&RbacGroup> = listed.iter().filter(|g| !g.is_scim()).collect();
    assert_eq!(direct.len(), 5, "no duplicate groups");
    for (i, g) in groups.iter().enumerate() {
        let members: BTreeSet<String> = c
            .list_group_members(g)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let expected: BTreeSet<String> = users
            .iter()
            .skip(i)
            .step_by(2)
            .filter(|u| **u != users[i])
            .cloned()
            .collect();
        assert_eq!(members, expected, "group {i}");
    }
    let limits = c
        .list_spend_limits(&SpendLimitFilter {
            scope_type: Some("rbac_group".into()),
            rbac_group_id: None,
        })
        .await
        .unwrap();
    assert_eq!(limits.len(), 5, "one limit per group");
    h.stop().await.unwrap();
}

// ----------------------------------------------------------------------------------
// Against a scripted mock
// ----------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HashMap<String, String>,
}

pub(crate) enum Reply {
    Json(u16, Value, Vec<(&'static str, &'static str)>),
    Hang,
}

pub(crate) struct Mock {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: actix_web::dev::ServerHandle,
}

impl Mock {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    pub(crate) fn client(&self) -> HttpCoworkClient {
        HttpCoworkClient::new(ClientConfig::new(&self.url, KEY).without_limits()).unwrap()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// The mock's answer for the n-th request.
type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// A server that records each request and answers with `script(request, n)` where
/// `n` counts requests from 1.
pub(crate) async fn mock(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Mock {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script: Script = Arc::new(script);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let recorded = seen.clone();
    let server = HttpServer::new(move || {
        let recorded = recorded.clone();
        let script = script.clone();
        App::new().default_service(web::to(move |req: HttpRequest, _body: Bytes| {
            let recorded = recorded.clone();
            let script = script.clone();
            async move {
                let seen = Seen {
                    method: req.method().to_string(),
                    path: req.path().to_owned(),
                    query: req.query_string().to_owned(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                };
                let n = {
                    let mut all = recorded.lock();
                    all.push(seen.clone());
                    all.len()
                };
                match script(&seen, n) {
                    Reply::Json(status, body, headers) => {
                        let mut resp = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        );
                        resp.insert_header(("request-id", format!("req_mock_{n}")));
                        for h in headers {
                            resp.insert_header(h);
                        }
                        resp.json(body)
                    }
                    Reply::Hang => std::future::pending::<HttpResponse>().await,
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Mock {
        url,
        seen,
        server: handle,
    }
}

fn group_json(id: &str) -> Value {
    json!({
        "type": "rbac_group", "id": id, "name": "G", "source_type": "direct",
        "roles": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    })
}

fn user_json(id: &str) -> Value {
    json!({
        "type": "user", "id": id, "email": format!("{id}@example.com"), "name": "U",
        "role": "user", "added_at": "2026-01-01T00:00:00Z"
    })
}

pub(crate) fn error_json(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_body"})
}

#[tokio::test]
async fn requests_carry_the_key_the_version_and_an_idempotency_key_on_writes() {
    let m = mock(|seen, _| match seen.method.as_str() {
        "GET" => Reply::Json(
            200,
            json!({"data": [], "has_more": false, "next_page": null}),
            vec![],
        ),
        _ => Reply::Json(200, group_json("rbac_group_01a"), vec![]),
    })
    .await;
    let c = m.client();
    c.list_groups().await.unwrap();
    let k = key(&["op"]);
    c.create_group(
        &NewGroup {
            name: "G".into(),
            ..NewGroup::default()
        },
        &k,
    )
    .await
    .unwrap();
    let seen = m.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.headers["x-api-key"], KEY);
        assert_eq!(s.headers["anthropic-version"], "2023-06-01");
    }
    assert_eq!(seen[0].path, "/v1/organizations/rbac_groups");
    assert_eq!(seen[0].query, "limit=1000");
    assert!(!seen[0].headers.contains_key("idempotency-key"));
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].headers["idempotency-key"], k.as_str());
    assert_eq!(seen[1].headers["content-type"], "application/json");
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_waits_that_long_then_succeeds() {
    let m = mock(|_, n| {
        if n == 1 {
            Reply::Json(
                429,
                error_json("rate_limit_error", "slow down"),
                vec![("retry-after", "7")],
            )
        } else {
            Reply::Json(200, group_json("rbac_group_01a"), vec![])
        }
    })
    .await;
    let c = m.client();
    let started = tokio::time::Instant::now();
    let g = c.get_group("rbac_group_01a").await.unwrap();
    assert_eq!(g.id, "rbac_group_01a");
    assert!(started.elapsed() >= Duration::from_secs(7));
    let counts = c.call_counts();
    assert_eq!(
        (counts.reads, counts.retries, counts.rate_limited),
        (1, 1, 1)
    );
    assert_eq!(m.seen().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_backs_off_exponentially_and_gives_up() {
    let m =
        mock(|_, _| Reply::Json(429, error_json("rate_limit_error", "slow down"), vec![])).await;
    let c = m.client();
    let started = tokio::time::Instant::now();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    assert!(
        matches!(
            e,
            CoworkError::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(m.seen().len(), 6, "default attempts");
    // Equal jitter: at least half of 1 + 2 + 4 + 8 + 16 seconds.
    assert!(started.elapsed() >= Duration::from_millis(15_500));
    assert_eq!(c.call_counts().retries, 5);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_the_same_idempotency_key_then_succeed() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(500, error_json("api_error", "boom"), vec![]),
        2 => Reply::Json(529, error_json("overloaded_error", "busy"), vec![]),
        _ => Reply::Json(200, json!({"type": "rbac_group_member", "group_id": "g", "user_id": "u",
                                     "email": "u@example.com", "created_at": "2026-01-01T00:00:00Z"}), vec![]),
    })
    .await;
    let c = m.client();
    let k = key(&["add", "g", "u"]);
    assert_eq!(
        c.add_group_member("g", "u", &k).await.unwrap(),
        Outcome::Applied
    );
    let seen = m.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.headers["idempotency-key"] == k.as_str()));
    assert_eq!(c.call_counts().writes, 1, "one logical write");
}

#[tokio::test(start_paused = true)]
async fn a_400_is_not_retried_and_keeps_its_code() {
    let m = mock(|_, _| {
        Reply::Json(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "nope",
                    "code": "group_limit_exceeded"}}),
            vec![],
        )
    })
    .await;
    let c = m.client();
    let e = c
        .create_group(
            &NewGroup {
                name: "G".into(),
                ..NewGroup::default()
            },
            &key(&["g"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("group_limit_exceeded"));
    assert_eq!(
        e.request_id(),
        Some("req_mock_1"),
        "the header wins over the body"
    );
    assert_eq!(m.seen().len(), 1);
}

/// In real mode a group create is not idempotent (names are not unique, no key is
/// honoured): a 5xx may follow a create the server made, so it is not repeated; a 429
/// certainly changed nothing, so it is.
#[tokio::test(start_paused = true)]
async fn a_real_mode_group_create_is_retried_after_a_429_but_never_after_a_5xx() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(
            429,
            error_json("rate_limit_error", "slow down"),
            vec![("retry-after", "1")],
        ),
        2 | 3 => Reply::Json(500, error_json("api_error", "boom"), vec![]),
        _ => Reply::Json(200, group_json("rbac_group_1"), vec![]),
    })
    .await;
    let new = NewGroup {
        name: "G".into(),
        ..NewGroup::default()
    };
    let real = HttpCoworkClient::new(
        ClientConfig::new(&m.url, KEY)
            .with_mode(Mode::Real)
            .without_limits(),
    )
    .unwrap();
    let e = real.create_group(&new, &key(&["g"])).await.unwrap_err();
    assert!(e.is_retryable(), "the caller may look for it and try again");
    assert_eq!(m.seen().len(), 2, "the 429 was retried, the 500 was not");

    // Extended mode: `external_id` makes a repeat safe, so the 500 is retried.
    let extended = m.client();
    let created = extended.create_group(&new, &key(&["g2"])).await.unwrap();
    assert_eq!(created.id(), "rbac_group_1");
    assert_eq!(m.seen().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn unknown_error_types_are_tolerated() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(503, error_json("brand_new_error", "?"), vec![]),
        2 => Reply::Json(418, error_json("teapot_error", "short and stout"), vec![]),
        _ => Reply::Json(200, json!({}), vec![]),
    })
    .await;
    let c = m.client();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    match e {
        CoworkError::Other {
            status, error_type, ..
        } => assert_eq!((status, error_type.as_str()), (418, "teapot_error")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.seen().len(), 2, "503 retried, 418 not");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let m = mock(|_, _| Reply::Hang).await;
    let mut config = ClientConfig::new(&m.url, KEY).without_limits();
    config.request_timeout = Some(Duration::from_secs(2));
    config.max_attempts = 3;
    let c = HttpCoworkClient::new(config).unwrap();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    match &e {
        CoworkError::Transient { reason, status, .. } => {
            assert_eq!(reason, "timeout");
            assert_eq!(*status, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.call_counts().retries, 2);
}

#[tokio::test]
async fn short_pages_with_has_more_are_followed_in_both_styles() {
    let m = mock(|seen, _| {
        let q = seen.query.as_str();
        match seen.path.as_str() {
            "/v1/organizations/rbac_groups" => match q {
                "limit=1000" => Reply::Json(
                    200,
                    json!({"data": [group_json("rbac_group_01a")], "has_more": true, "next_page": "c1"}),
                    vec![],
                ),
                "limit=1000&page=c1" => Reply::Json(
                    200,
                    json!({"data": [], "has_more": true, "next_page": "c2"}),
                    vec![],
                ),
                _ => Reply::Json(
                    200,
                    json!({"data": [group_json("rbac_group_01b"), group_json("rbac_group_01c")],
                           "has_more": false, "next_page": "ignored-when-has-more-is-false"}),
                    vec![],
                ),
            },
            _ => match q {
                "limit=1000" => Reply::Json(
                    200,
                    json!({"data": [user_json("user_01a")], "first_id": "user_01a",
                           "last_id": "user_01a", "has_more": true}),
                    vec![],
                ),
                _ => Reply::Json(
                    200,
                    json!({"data": [user_json("user_01b")], "first_id": "user_01b",
                           "last_id": "user_01b", "has_more": false}),
                    vec![],
                ),
            },
        }
    })
    .await;
    let c = m.client();
    let groups = c.list_groups().await.unwrap();
    assert_eq!(groups.len(), 3);
    let users = c.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    let queries: Vec<String> = m.seen().into_iter().map(|s| s.query).collect();
    assert_eq!(
        queries,
        vec![
            "limit=1000",
            "limit=1000&page=c1",
            "limit=1000&page=c2",
            "limit=1000",
            "limit=1000&after_id=user_01a"
        ]
    );
}

#[tokio::test]
async fn a_page_claiming_more_without_a_cursor_is_an_error_not_a_silent_truncation() {
    let m = mock(|_, _| {
        Reply::Json(
            200,
            json!({"data": [group_json("rbac_group_01a")], "has_more": true, "next_page": null}),
            vec![],
        )
    })
    .await;
    let e = m.client().list_groups().await.unwrap_err();
    assert!(matches!(e, CoworkError::Decode { .. }), "{e:?}");
}

/// Measures the simulator listing 100,000 members through the client
/// (`cargo test --release --test cowork_client -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn measure_listing_a_hundred_thousand_users() {
    let h = start_sim(SimOptions::for_tests()).await;
    let started = std::time::Instant::now();
    add_users(&h, 100_000, "load");
    let seeded = started.elapsed();
    let c = client_for(&h.base_url(), Mode::Extended);
    let started = std::time::Instant::now();
    let users = c.list_users().await.unwrap();
    let listed = started.elapsed();
    assert_eq!(users.len(), 100_001);
    let gid = c
        .create_group(
            &NewGroup {
                name: "All".into(),
                ..NewGroup::default()
            },
            &key(&["all"]),
        )
        .await
        .unwrap()
        .id()
        .to_owned();
    let ids: Vec<String> = users.iter().take(10_000).map(|u| u.id.clone()).collect();
    let started = std::time::Instant::now();
    c.set_group_members(&gid, &ids, &key(&["set-all"]))
        .await
        .unwrap();
    let set = started.elapsed();
    let started = std::time::Instant::now();
    let members = c.list_group_members(&gid).await.unwrap();
    let listed_members = started.elapsed();
    assert_eq!(members.len(), 10_000);
    println!(
        "seed 100k members in-process: {seeded:?}; list 100,001 users (101 pages): {listed:?} \
         ({:.0} users/s); PUT 10,000 members: {set:?}; list 10,000 members: {listed_members:?}",
        100_001.0 / listed.as_secs_f64()
    );
    h.stop().await.unwrap();
}
