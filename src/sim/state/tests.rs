//! Unit tests of the model: the product rules per resource.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap()
}

fn member(state: &mut SimState, email: &str) -> String {
    let new = NewMember {
        email: email.into(),
        name: None,
        role: None,
        seat_tier: None,
    };
    state.sim_add_member(&new, t0()).unwrap().id
}

fn group(state: &mut SimState, name: &str, ext: Option<&str>) -> ApiResult<RbacGroup> {
    let new = NewGroup {
        name: name.into(),
        external_id: ext.map(str::to_owned),
        ..NewGroup::default()
    };
    state.create_group(&new, t0())
}

fn scim_group(state: &SimState) -> String {
    state
        .groups()
        .iter()
        .find(|g| g.is_scim())
        .unwrap()
        .id
        .clone()
}

#[test]
fn seed_has_an_enterprise_org_an_owner_a_scim_group_two_custom_and_two_built_in_roles() {
    let s = SimState::seeded(t0());
    assert_eq!(s.org().plan, Plan::Enterprise);
    assert_eq!(s.org().settings.billing_currency, "USD");
    assert_eq!(s.users().len(), 1);
    assert_eq!(s.users().iter().next().unwrap().role, OrgRole::PrimaryOwner);
    assert_eq!(s.groups().len(), 1);
    assert_eq!(s.roles().len(), 4);
    assert_eq!(s.roles().iter().filter(|r| r.is_built_in()).count(), 2);
    assert!(s.users().iter().next().unwrap().id.starts_with("user_01"));
}

#[test]
fn scim_groups_refuse_every_write() {
    let mut s = SimState::seeded(t0());
    let g = scim_group(&s);
    let u = member(&mut s, "a@example.com");
    let rename = GroupUpdate {
        name: Some("x".into()),
        description: None,
    };
    for err in [
        s.update_group(&g, &rename, None, t0()).unwrap_err(),
        s.delete_group(&g, t0()).unwrap_err(),
        s.add_member(&g, &u, t0()).unwrap_err(),
        s.remove_member(&g, &u, t0()).unwrap_err(),
        s.set_members(&g, std::slice::from_ref(&u), t0())
            .unwrap_err(),
    ] {
        assert_eq!(err.code, Some("scim_managed_resource"));
        assert_eq!(err.status, 400);
    }
}

#[test]
fn admin_roles_cannot_be_assigned_changed_or_removed() {
    let mut s = SimState::seeded(t0());
    let owner = s.users().iter().next().unwrap().id.clone();
    let u = member(&mut s, "a@example.com");
    let e = s.set_user_role(&u, &OrgRole::Owner, t0()).unwrap_err();
    assert_eq!(e.code, Some("admin_role_not_assignable"));
    let e = s
        .set_user_role(&owner, &OrgRole::Managed, t0())
        .unwrap_err();
    assert_eq!(e.code, Some("admin_role_not_assignable"));
    let e = s.delete_user(&owner, t0()).unwrap_err();
    assert_eq!(e.code, Some("admin_role_not_assignable"));
    assert_eq!(
        s.set_user_role(&u, &OrgRole::Managed, t0()).unwrap().role,
        OrgRole::Managed
    );
}

#[test]
fn membership_add_twice_is_400_and_remove_of_a_non_member_is_404() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", None).unwrap().id;
    let u = member(&mut s, "a@example.com");
    s.add_member(&g, &u, t0()).unwrap();
    let e = s.add_member(&g, &u, t0()).unwrap_err();
    assert_eq!((e.status, e.code), (400, Some("already_member")));
    s.remove_member(&g, &u, t0()).unwrap();
    assert_eq!(s.remove_member(&g, &u, t0()).unwrap_err().status, 404);
    assert_eq!(
        s.add_member(&g, "user_01nobody", t0()).unwrap_err().status,
        404
    );
}

#[test]
fn external_id_is_unique_and_the_conflict_names_the_existing_group() {
    let mut s = SimState::seeded(t0());
    let first = group(&mut s, "Eng", Some("okta:1")).unwrap();
    let e = group(&mut s, "Eng again", Some("okta:1")).unwrap_err();
    assert_eq!(e.status, 409);
    assert_eq!(e.kind, "conflict_error");
    assert_eq!(e.details.unwrap()["existing_id"], first.id.as_str());
}

#[test]
fn the_hundred_and_first_group_is_refused() {
    let mut s = SimState::seeded(t0());
    for i in 1..MAX_GROUPS {
        group(&mut s, &format!("g{i}"), None).unwrap();
    }
    let e = group(&mut s, "one too many", None).unwrap_err();
    assert_eq!(e.code, Some("group_limit_exceeded"));
}

#[test]
fn team_plan_refuses_groups_roles_group_spend_and_plugin_overrides() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", None).unwrap().id;
    s.patch_org(&json!({"plan": "team"}), t0()).unwrap();
    assert_eq!(
        group(&mut s, "x", None).unwrap_err().code,
        Some("plan_not_supported")
    );
    let spec = RoleSpec {
        name: "r".into(),
        ..RoleSpec::default()
    };
    assert_eq!(
        s.create_role(&spec, t0()).unwrap_err().code,
        Some("plan_not_supported")
    );
    let req = SpendLimitRequest {
        scope: SpendScope::RbacGroup {
            rbac_group_id: g.clone(),
        },
        period: None,
        amount: Some("100".into()),
        currency: None,
    };
    assert_eq!(
        s.upsert_spend_limit(&req, true, t0()).unwrap_err().code,
        Some("plan_not_supported")
    );
    let update = PluginPolicyUpdate {
        org_preference: None,
        group_overrides: vec![GroupOverride {
            rbac_group_id: g,
            preference: Preference::Required,
        }],
    };
    assert_eq!(
        s.put_plugin_policy("finance-close", &update, t0())
            .unwrap_err()
            .code,
        Some("plan_not_supported")
    );
}

#[test]
fn spend_limits_are_monthly_in_the_billing_currency_and_upsert_in_place() {
    let mut s = SimState::seeded(t0());
    let u = member(&mut s, "a@example.com");
    let mut req = SpendLimitRequest {
        scope: SpendScope::User { user_id: u.clone() },
        period: Some(Period::Weekly),
        amount: Some("5000".into()),
        currency: Some("USD".into()),
    };
    assert_eq!(
        s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
        Some("unsupported_period")
    );
    req.period = None;
    req.currency = Some("EUR".into());
    assert_eq!(
        s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
        Some("currency_mismatch")
    );
    req.currency = None;
    let first = s.upsert_spend_limit(&req, false, t0()).unwrap();
    assert!(first.id.starts_with("spl_01"));
    req.amount = Some("7000".into());
    let second = s.upsert_spend_limit(&req, false, t0()).unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(second.amount_minor(), Some(7000));
    req.amount = Some("-1".into());
    assert_eq!(
        s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
        Some("invalid_amount")
    );
    let g = group(&mut s, "Eng", None).unwrap().id;
    let group_req = SpendLimitRequest {
        scope: SpendScope::RbacGroup { rbac_group_id: g },
        period: None,
        amount: Some("1".into()),
        currency: None,
    };
    assert_eq!(
        s.upsert_spend_limit(&group_req, false, t0())
            .unwrap_err()
            .code,
        Some("scope_not_writable"),
        "the real API writes user scopes only"
    );
    assert!(s.upsert_spend_limit(&group_req, true, t0()).is_ok());
}

#[test]
fn invites_respect_provisioning_mode_and_duplicates() {
    let mut s = SimState::seeded(t0());
    let req = InviteRequest {
        email: "new@example.com".into(),
        role: OrgRole::User,
        rbac_group_ids: vec![],
    };
    let invite = s.create_invite(&req, false, t0()).unwrap();
    assert!(invite.id.starts_with("invite_01"));
    assert_eq!(
        s.create_invite(&req, false, t0()).unwrap_err().code,
        Some("invite_exists")
    );
    let owner = InviteRequest {
        email: "OWNER+x@example.com".into(),
        ..req.clone()
    };
    assert_eq!(
        s.create_invite(&owner, false, t0()).unwrap_err().code,
        Some("member_exists")
    );
    s.patch_org(&json!({"provisioning_mode": "scim_permissive"}), t0())
        .unwrap();
    let other = InviteRequest {
        email: "other@example.com".into(),
        ..req
    };
    assert_eq!(
        s.create_invite(&other, false, t0()).unwrap_err().code,
        Some("provisioning_mode")
    );
}

#[test]
fn accepted_invites_become_members_of_their_groups() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", None).unwrap().id;
    let req = InviteRequest {
        email: "new@example.com".into(),
        role: OrgRole::Managed,
        rbac_group_ids: vec![g.clone()],
    };
    let invite = s.create_invite(&req, true, t0()).unwrap();
    assert_eq!(invite.status, InviteStatus::Accepted);
    let user = s.user_by_email("new@example.com").unwrap().clone();
    assert_eq!(user.role, OrgRole::Managed);
    assert_eq!(s.member_ids(&g), vec![user.id]);
}

#[test]
fn roles_are_checked_against_the_org_and_detached_on_delete() {
    let mut s = SimState::seeded(t0());
    let bad = |caps: Value| RoleSpec {
        name: "r".into(),
        capabilities: serde_json::from_value(caps).unwrap(),
        ..RoleSpec::default()
    };
    assert_eq!(
        s.create_role(&bad(json!({"computer_use": true})), t0())
            .unwrap_err()
            .code,
        Some("computer_use_not_available")
    );
    assert_eq!(
        s.create_role(&bad(json!({"skill_sharing": true})), t0())
            .unwrap_err()
            .code,
        Some("org_level_setting")
    );
    s.patch_org(&json!({"settings": {"cowork_enabled": false}}), t0())
        .unwrap();
    assert_eq!(
        s.create_role(&bad(json!({"cowork": true})), t0())
            .unwrap_err()
            .code,
        Some("feature_disabled_at_org")
    );
    let mut spec = bad(json!({"chat": true}));
    spec.connectors = ConnectorPolicy::List(vec![ConnectorGrant {
        connector_id: "mcpsrv_unknown".into(),
        access: ConnectorAccess::Allow,
        default_tool_mode: ToolMode::NeedsApproval,
        tools: vec![],
        oauth_scopes: vec![],
        auth_method: None,
    }]);
    assert_eq!(
        s.create_role(&spec, t0()).unwrap_err().code,
        Some("connector_not_in_org")
    );
    let role = s.create_role(&bad(json!({"chat": true})), t0()).unwrap();
    let g = group(&mut s, "Eng", None).unwrap().id;
    s.set_group_roles(&g, std::slice::from_ref(&role.id), t0())
        .unwrap();
    assert_eq!(
        s.set_group_roles(&g, &["rbac_role_01nope".to_owned()], t0())
            .unwrap_err()
            .status,
        404
    );
    s.delete_role(&role.id, t0()).unwrap();
    assert_eq!(s.get_group(&g).unwrap().roles, Some(vec![]));
}

#[test]
fn set_members_reports_added_removed_and_unchanged() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", None).unwrap().id;
    let a = member(&mut s, "a@example.com");
    let b = member(&mut s, "b@example.com");
    let c = member(&mut s, "c@example.com");
    s.add_member(&g, &a, t0()).unwrap();
    s.add_member(&g, &b, t0()).unwrap();
    let r = s.set_members(&g, &[b.clone(), c.clone()], t0()).unwrap();
    assert_eq!(r.added, vec![c.clone()]);
    assert_eq!(r.removed, vec![a]);
    assert_eq!(r.unchanged, 1);
    assert_eq!(s.member_ids(&g), vec![b, c]);
}

#[test]
fn deleting_a_group_removes_its_memberships_limits_and_overrides() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", None).unwrap().id;
    let a = member(&mut s, "a@example.com");
    s.add_member(&g, &a, t0()).unwrap();
    let req = SpendLimitRequest {
        scope: SpendScope::RbacGroup {
            rbac_group_id: g.clone(),
        },
        period: None,
        amount: Some("100".into()),
        currency: None,
    };
    s.upsert_spend_limit(&req, true, t0()).unwrap();
    let update = PluginPolicyUpdate {
        org_preference: None,
        group_overrides: vec![GroupOverride {
            rbac_group_id: g.clone(),
            preference: Preference::Required,
        }],
    };
    s.put_plugin_policy("brand-kit", &update, t0()).unwrap();
    s.delete_group(&g, t0()).unwrap();
    assert!(s.groups_of(&a).is_empty());
    assert!(s.spend_limits().is_empty());
    assert!(s.plugin_overrides("brand-kit").is_empty());
}

#[test]
fn bulk_member_creation_is_all_or_nothing() {
    let mut s = SimState::seeded(t0());
    let batch = |emails: &[&str]| -> Vec<NewMember> {
        emails
            .iter()
            .map(|e| NewMember {
                email: (*e).into(),
                name: None,
                role: None,
                seat_tier: None,
            })
            .collect()
    };
    let e = s
        .sim_add_members(&batch(&["a@example.com", "A+x@example.com"]), t0())
        .unwrap_err();
    assert_eq!(e.status, 409);
    assert!(e.message.starts_with("[1]"), "{}", e.message);
    assert_eq!(s.users().len(), 1, "nothing was added");
    let added = s
        .sim_add_members(&batch(&["a@example.com", "b@example.com"]), t0())
        .unwrap();
    assert_eq!(added.len(), 2);
}

#[test]
fn snapshots_round_trip_with_their_indexes() {
    let mut s = SimState::seeded(t0());
    let g = group(&mut s, "Eng", Some("okta:1")).unwrap().id;
    let a = member(&mut s, "a@example.com");
    s.add_member(&g, &a, t0()).unwrap();
    let restored = SimState::from_snapshot(s.snapshot());
    assert_eq!(restored.member_ids(&g), vec![a.clone()]);
    assert_eq!(restored.groups_of(&a), vec![g.clone()]);
    assert!(restored.user_by_email("A@example.com").is_some());
    let mut restored = restored;
    assert_eq!(
        group(&mut restored, "dup", Some("okta:1"))
            .unwrap_err()
            .status,
        409
    );
    let next = group(&mut restored, "new", None).unwrap();
    assert!(next.id > g, "ids keep increasing after a restart");
}

#[test]
fn built_in_roles_are_listed_but_never_written() {
    let mut s = SimState::seeded(t0());
    let built_in = s
        .roles()
        .iter()
        .find(|r| r.is_built_in())
        .unwrap()
        .id
        .clone();
    let spec = RoleSpec {
        name: "Mine now".into(),
        ..RoleSpec::default()
    };
    let err = s.update_role(&built_in, &spec, None, t0()).unwrap_err();
    assert_eq!(err.code, Some("built_in_role"));
    let err = s.delete_role(&built_in, t0()).unwrap_err();
    assert_eq!(err.code, Some("built_in_role"));
    assert!(s.roles().contains(&built_in));
}

#[test]
fn plugin_settings_set_replace_and_delete_once() {
    let mut s = SimState::seeded(t0());
    s.seed_plugins(&["sales-kit".to_owned()]);
    let page = s
        .list_plugins(
            &CursorQuery {
                limit: 100,
                page: None,
                binding: "p".into(),
                short_pages: false,
            },
            None,
            None,
        )
        .unwrap();
    let plugin = page.data.iter().find(|p| p.name == "sales-kit").unwrap();
    assert!(plugin.id.starts_with("plugin_01"));
    let gid = group(&mut s, "Sales", None).unwrap().id;
    let target = PluginTarget::RbacGroup {
        rbac_group_id: gid.clone(),
    };
    s.set_plugin_setting(
        &plugin.id,
        &target,
        InstallationPreference::AutoInstall,
        t0(),
    )
    .unwrap();
    assert_eq!(
        s.plugin_overrides("sales-kit"),
        &[GroupOverride {
            rbac_group_id: gid.clone(),
            preference: Preference::InstalledByDefault
        }]
    );
    s.delete_plugin_setting(&plugin.id, &target, t0()).unwrap();
    let again = s
        .delete_plugin_setting(&plugin.id, &target, t0())
        .unwrap_err();
    assert_eq!(again.status, 404, "a repeated DELETE is 404");
    let unknown_group = PluginTarget::RbacGroup {
        rbac_group_id: "rbac_group_01nope".into(),
    };
    let err = s
        .set_plugin_setting(
            &plugin.id,
            &unknown_group,
            InstallationPreference::Required,
            t0(),
        )
        .unwrap_err();
    assert_eq!(err.status, 404);
}
