//! Decoding tests: open enumerations, renamed fields, tolerant error envelopes.

use super::*;
use serde_json::json;

#[test]
fn unknown_enum_values_are_kept_verbatim() {
    let role: OrgRole = serde_json::from_value(json!("auditor")).unwrap();
    assert_eq!(role, OrgRole::Other("auditor".into()));
    assert_eq!(serde_json::to_value(&role).unwrap(), json!("auditor"));
    let known: OrgRole = serde_json::from_value(json!("primary_owner")).unwrap();
    assert!(known.is_admin());
    assert!(!known.is_assignable());
}

#[test]
fn tagged_structs_write_and_check_their_type() {
    let user = User {
        id: "user_01abc".into(),
        email: "a@example.com".into(),
        name: "A".into(),
        role: OrgRole::Managed,
        added_at: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap(),
        seat_tier: None,
    };
    let v = serde_json::to_value(&user).unwrap();
    assert_eq!(v["type"], "user");
    assert_eq!(v["added_at"], "2026-01-01T00:00:00Z");
    assert!(v.get("seat_tier").is_none());
    let back: User = serde_json::from_value(v).unwrap();
    assert_eq!(back, user);
}

#[test]
fn capabilities_carry_a_blanket_grant_and_an_open_feature_map() {
    let caps: Capabilities =
        serde_json::from_value(json!({"all": "all_ga", "cowork": true, "fast_mode": false}))
            .unwrap();
    assert_eq!(caps.all, Blanket::AllGa);
    assert_eq!(caps.features.get("cowork"), Some(&true));
    assert_eq!(caps.granted().collect::<Vec<_>>(), vec!["cowork"]);
    let none: Capabilities = serde_json::from_value(json!({"all": false})).unwrap();
    assert_eq!(none.all, Blanket::None);
    assert_eq!(serde_json::to_value(&none).unwrap(), json!({}));
}

#[test]
fn connector_policy_reads_a_list_or_all_connectors() {
    let list: ConnectorPolicy = serde_json::from_value(json!([
        {"connector_id": "mcpsrv_github", "tools": [{"tool_name": "create_issue", "mode": "always_allow"}]}
    ]))
    .unwrap();
    match list {
        ConnectorPolicy::List(grants) => {
            assert_eq!(grants[0].access, ConnectorAccess::Allow);
            assert_eq!(grants[0].default_tool_mode, ToolMode::NeedsApproval);
        }
        ConnectorPolicy::All { .. } => panic!("expected a list"),
    }
    let all: ConnectorPolicy =
        serde_json::from_value(json!({"all_connectors": {"default_tool_mode": "deny"}})).unwrap();
    assert!(matches!(all, ConnectorPolicy::All { .. }));
}

#[test]
fn unknown_scope_and_resource_types_do_not_fail_a_page() {
    let page: CursorPage<RolePermission> = serde_json::from_value(json!({
        "data": [
            {"type": "rbac_role_permission", "action": "x", "resource": {"type": "workspace", "id": "w"}},
            {"type": "rbac_role_permission", "action": "chat", "resource": {"type": "organization", "organization_id": "o"}}
        ],
        "has_more": false, "next_page": null
    }))
    .unwrap();
    assert_eq!(page.data[0].resource, PermissionResource::Unknown);
    let scope: SpendScope =
        serde_json::from_value(json!({"type": "cost_center", "id": "c"})).unwrap();
    assert_eq!(scope, SpendScope::Unknown);
}

#[test]
fn renamed_fields_are_read_first_and_old_names_are_the_fallback() {
    let t = "2026-01-01T00:00:00Z";
    let g: RbacGroup = serde_json::from_value(json!({
        "type": "rbac_group", "id": "rbac_group_01", "name": "G", "source_type": "direct",
        "role_ids": ["rbac_role_02"], "roles": ["rbac_role_01"], "created_at": t, "updated_at": t
    }))
    .unwrap();
    assert_eq!(g.roles, Some(vec!["rbac_role_02".to_owned()]));
    let old: RbacGroup = serde_json::from_value(json!({
        "type": "rbac_group", "id": "rbac_group_01", "name": "G", "source_type": "direct",
        "roles": null, "created_at": t, "updated_at": t
    }))
    .unwrap();
    assert_eq!(old.roles, None, "null stays unknown");
    let wire = serde_json::to_value(&g).unwrap();
    assert_eq!(wire["role_ids"], wire["roles"]);
    let m: RbacGroupMember = serde_json::from_value(json!({
        "type": "rbac_group_member", "group_id": "old", "user_id": "u", "created_at": t
    }))
    .unwrap();
    assert_eq!(m.group_id, "old");
    let m: RbacGroupMember = serde_json::from_value(json!({
        "type": "rbac_group_member", "rbac_group_id": "new", "group_id": "old",
        "user_id": "u", "created_at": t
    }))
    .unwrap();
    assert_eq!(m.group_id, "new");
    let r: RbacRole = serde_json::from_value(json!({
        "type": "rbac_role", "id": "rbac_role_01", "display_name": "Owner", "name": "old",
        "source": {"type": "built_in"}, "created_at": t, "updated_at": t
    }))
    .unwrap();
    assert_eq!(r.name, "Owner");
    assert!(r.is_built_in());
    let legacy: RbacRole = serde_json::from_value(json!({
        "type": "rbac_role", "id": "rbac_role_02", "name": "Pilot",
        "created_at": t, "updated_at": t
    }))
    .unwrap();
    assert_eq!(legacy.name, "Pilot");
    assert!(!legacy.is_built_in(), "no source: custom");
}

#[test]
fn preferences_order_from_hidden_to_required() {
    assert!(Preference::Required > Preference::InstalledByDefault);
    assert!(Preference::InstalledByDefault > Preference::Available);
    assert!(Preference::Available > Preference::NotAvailable);
    assert!(ToolMode::AlwaysAllow > ToolMode::NeedsApproval);
}

#[test]
fn error_envelope_tolerates_unknown_types_and_missing_fields() {
    let env: ErrorEnvelope = serde_json::from_value(json!({
        "type": "error", "error": {"type": "brand_new_error"}
    }))
    .unwrap();
    assert_eq!(env.error.kind, "brand_new_error");
    assert_eq!(env.error.message, "");
    assert!(env.request_id.is_none());
}
