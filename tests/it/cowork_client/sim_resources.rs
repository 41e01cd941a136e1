//! The client against the simulator, resource by resource: the organization,
//! groups, members, roles, users, invites, spend, plugins and effective access; both
//! pagination styles; the product rules and their error codes; idempotency; real
//! mode refusing tier-B writes; the simulator without its extension tier.

use super::*;

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
