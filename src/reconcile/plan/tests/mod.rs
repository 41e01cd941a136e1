//! Planner tests: hand-built desired and actual states → expected actions; `plan(x,
//! x)` is empty; foreign objects are never touched (a property test); the valve's
//! arithmetic; real-mode drift; `roles: null`; the event path's scope. Offboarding,
//! the valve's window, identity collisions, spend overrides, real mode and the
//! property test have files of their own.

mod identity;
mod lifecycle;
mod property;
mod realapi;
mod spend;
mod valve;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::cowork::{
    self, GroupOverride, Mode, OrgRole, Preference, ProvisioningMode as ApiProvisioning, RbacGroup,
    SourceType,
};
use crate::reconcile::ownership::Change;
use crate::reconcile::ownership::{OwnedGroup, OwnedSpend, Ownership};
use crate::rules::{
    self, Capabilities as RuleCaps, DesiredGroup, DesiredState, ManagedUser, OrgExpectations,
    Plan as RulePlan, PluginPreference, ProvisioningMode, SpendLimit,
};

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap()
}

fn org() -> OrgExpectations {
    OrgExpectations {
        plan: RulePlan::Enterprise,
        billing_currency: "USD".into(),
        features: BTreeMap::new(),
        connectors: BTreeSet::new(),
        plugins: BTreeMap::from([("finance-close".to_string(), PluginPreference::Available)]),
        provisioning_mode: ProvisioningMode::Manual,
        usage_credits: true,
        connector_tools_default_always_allow: false,
        invites_allowed: true,
        org_roles_writable: true,
    }
}

fn role(name: &str) -> rules::RoleSpec {
    rules::RoleSpec {
        name: name.into(),
        description: None,
        capabilities: RuleCaps {
            all: None,
            features: BTreeMap::from([("chat".to_string(), true), ("cowork".to_string(), true)]),
        },
        connectors: BTreeMap::new(),
        plugins: BTreeMap::new(),
        admin_permissions: BTreeMap::new(),
        default_model: None,
    }
}

fn email(scim: &str) -> String {
    format!("{scim}@example.com")
}

/// Groups `(key, members)`; every group gets role `pilot`; group `a` has a spend
/// limit of 5000 and a plugin override.
fn desired(groups: &[(&str, &[&str])]) -> DesiredState {
    let mut managed = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (key, members) in groups {
        for m in *members {
            managed.insert(
                m.to_string(),
                ManagedUser {
                    email: Some(email(m)),
                },
            );
        }
        out.insert(
            key.to_string(),
            DesiredGroup {
                key: key.to_string(),
                name: format!("Group {key}"),
                description: None,
                roles: BTreeSet::from(["pilot".to_string()]),
                monthly_spend: (*key == "a").then_some(SpendLimit::Amount(5000)),
                plugins: if *key == "a" {
                    BTreeMap::from([(
                        "finance-close".to_string(),
                        PluginPreference::InstalledByDefault,
                    )])
                } else {
                    BTreeMap::new()
                },
                members: members.iter().map(|m| m.to_string()).collect(),
                rules: BTreeSet::from([format!("rule-{key}")]),
            },
        );
    }
    DesiredState {
        org: org(),
        roles: BTreeMap::from([("pilot".to_string(), role("Pilot"))]),
        groups: out,
        managed_users: managed,
        warnings: Vec::new(),
    }
}

struct World {
    desired: DesiredState,
    actual: ActualState,
    ownership: Ownership,
    directory: DirectoryView,
    caps: BTreeMap<String, PoolCap>,
}

fn group_id(key: &str) -> String {
    format!("rbac_group_{key}")
}

fn user_id(scim: &str) -> String {
    format!("user_{scim}")
}

fn rbac_group(id: &str, name: &str, ext: Option<&str>, scim: bool) -> RbacGroup {
    RbacGroup {
        id: id.into(),
        name: name.into(),
        source_type: if scim {
            SourceType::Scim
        } else {
            SourceType::Direct
        },
        roles: Some(Vec::new()),
        created_at: t0(),
        updated_at: t0(),
        description: None,
        external_id: ext.map(str::to_string),
        managed_by: None,
        version: Some(1),
    }
}

/// Downstream exactly as desired, owned and believed.
fn mirror(desired: DesiredState, mode: Mode) -> World {
    let m = crate::reconcile::mirror::mirror(&desired, mode, t0());
    World {
        desired,
        actual: m.actual,
        ownership: m.ownership,
        directory: m.directory,
        caps: BTreeMap::new(),
    }
}

fn options(mode: Mode) -> PlanOptions {
    PlanOptions {
        mode,
        max_removal_ratio: 0.5,
        ..PlanOptions::default()
    }
}

impl World {
    fn plan(&self, options: &PlanOptions) -> Plan {
        self.plan_at(options, t0())
    }

    fn plan_at(&self, options: &PlanOptions, now: DateTime<Utc>) -> Plan {
        plan(PlanInput {
            desired: &self.desired,
            directory: &self.directory,
            now,
            actual: &self.actual,
            ownership: &self.ownership,
            options,
            caps: &self.caps,
        })
    }

    /// What resolution makes of a user the IdP deactivated: in the directory,
    /// inactive, in no group, not governed.
    fn deactivate(&mut self, scim: &str) {
        self.directory.insert(scim, Some(&email(scim)), false);
        self.forget_desired(scim);
    }

    /// A user the IdP deleted: gone from the directory and the desired state.
    fn delete(&mut self, scim: &str) {
        self.directory.users.remove(scim);
        self.forget_desired(scim);
    }

    fn forget_desired(&mut self, scim: &str) {
        for g in self.desired.groups.values_mut() {
            g.members.remove(scim);
        }
        self.desired.managed_users.remove(scim);
    }

    /// Records what a plan's record changes would leave behind.
    fn settle(&mut self, p: &Plan) {
        self.ownership.apply(&p.sync);
    }

    fn add_downstream_user(&mut self, id: &str, mail: &str, role: OrgRole) {
        self.actual.users.insert(
            id.into(),
            ActualUser {
                id: id.into(),
                email: mail.into(),
                role,
            },
        );
    }

    fn add_directory_user(&mut self, scim: &str) {
        self.directory.insert(scim, Some(&email(scim)), true);
    }

    fn members_mut(&mut self, key: &str) -> &mut BTreeSet<String> {
        self.actual.members.get_mut(&group_id(key)).unwrap()
    }
}

fn kinds(p: &Plan) -> Vec<ActionKind> {
    p.actions.iter().map(|a| a.kind).collect()
}

fn two_groups() -> DesiredState {
    desired(&[("a", &["u1", "u2", "u3"]), ("b", &["u2", "u4"])])
}

// ---------------------------------------------------------------------------------

#[test]
fn a_downstream_that_matches_the_rules_plans_nothing_in_either_mode() {
    for mode in [Mode::Extended, Mode::Real] {
        let w = mirror(two_groups(), mode);
        let p = w.plan(&options(mode));
        assert!(p.actions.is_empty(), "{mode}: {:#?}", p.actions);
        assert!(p.sync.is_empty(), "{mode}: {:#?}", p.sync);
        assert!(p.drift.is_empty(), "{mode}: {:#?}", p.drift);
        assert!(p.foreign.is_empty() && p.pending.is_empty() && !p.holds());
        assert_eq!(p.valve.managed_memberships, 5);
    }
}

#[test]
fn an_empty_downstream_gets_roles_groups_settings_and_members_in_order() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.actual.roles.clear();
    w.actual.groups.clear();
    w.actual.members.clear();
    w.actual.group_spend = Some(BTreeMap::new());
    w.actual
        .plugins
        .as_mut()
        .unwrap()
        .get_mut("finance-close")
        .unwrap()
        .group_overrides
        .clear();
    w.ownership = Ownership::default();
    w.actual.users.get_mut("user_u4").unwrap().role = OrgRole::User;
    let p = w.plan(&options(Mode::Extended));
    use ActionKind::*;
    assert_eq!(
        kinds(&p),
        vec![
            CreateRole,
            CreateGroup,
            CreateGroup,
            SetGroupRoles,
            SetGroupRoles,
            SetGroupSpend,
            SetPluginPolicy,
            SetUserRole,
            AddMember,
            AddMember,
            AddMember,
            AddMember,
            AddMember,
        ]
    );
    assert_eq!(p.actions[1].target, "group:a");
    assert_eq!(p.actions[2].target, "group:b");
    // Members in group order, then by member id.
    let adds: Vec<(&str, &str)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::AddMember { group, user_id, .. } => Some((group.key.as_str(), user_id.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        adds,
        vec![
            ("a", "user_u1"),
            ("a", "user_u2"),
            ("a", "user_u3"),
            ("b", "user_u2"),
            ("b", "user_u4")
        ]
    );
    match &p.actions[3].op {
        Op::SetGroupRoles { group, roles } => {
            assert_eq!(group.id, None, "created in the same plan");
            assert_eq!(roles[0].key, "pilot");
            assert_eq!(roles[0].id, None);
        }
        other => panic!("{other:?}"),
    }
    // Planning twice gives the same plan.
    assert_eq!(w.plan(&options(Mode::Extended)), p);
}

#[test]
fn drift_made_by_hand_is_one_action_per_difference() {
    let mut w = mirror(two_groups(), Mode::Extended);
    // renamed, a role detached, spend changed, a member removed, a directory user
    // added by hand
    let ga = w.actual.groups.get_mut(&group_id("a")).unwrap();
    ga.name = "Renamed by hand".into();
    ga.roles = Some(Vec::new());
    w.actual
        .group_spend
        .as_mut()
        .unwrap()
        .get_mut(&group_id("a"))
        .unwrap()
        .limit = SpendLimit::Amount(1);
    w.members_mut("a").remove("user_u3");
    w.add_directory_user("u9");
    w.add_downstream_user("user_u9", &email("u9"), OrgRole::Managed);
    w.members_mut("b").insert("user_u9".into());
    let p = w.plan(&options(Mode::Extended));
    use ActionKind::*;
    assert_eq!(
        kinds(&p),
        vec![
            UpdateGroup,
            SetGroupRoles,
            SetGroupSpend,
            AddMember,
            RemoveMember
        ]
    );
    match &p.actions[3].op {
        Op::AddMember { user_id, .. } => assert_eq!(user_id, "user_u3"),
        other => panic!("{other:?}"),
    }
    match &p.actions[4].op {
        Op::RemoveMember { group, scim_id, .. } => {
            assert_eq!(group.key, "b");
            assert_eq!(scim_id.as_deref(), Some("u9"));
        }
        other => panic!("{other:?}"),
    }
    // The dropped belief for u3 is forgotten until the add re-records it.
    assert!(p.sync.is_empty(), "{:?}", p.sync);
}

#[test]
fn members_who_are_not_directory_users_or_hold_admin_roles_are_foreign_and_kept() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.add_downstream_user("user_x", "contractor@example.com", OrgRole::User);
    w.add_downstream_user("user_boss", &email("boss"), OrgRole::Owner);
    w.add_directory_user("boss");
    w.members_mut("a").insert("user_x".into());
    w.members_mut("a").insert("user_boss".into());
    w.members_mut("a").insert("user_gone_from_org".into());
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    let foreign: Vec<(ForeignKind, &str)> =
        p.foreign.iter().map(|f| (f.kind, f.id.as_str())).collect();
    assert_eq!(
        foreign,
        vec![
            (ForeignKind::AdminMember, "user_boss"),
            (ForeignKind::NonDirectoryMember, "user_gone_from_org"),
            (ForeignKind::NonDirectoryMember, "user_x"),
        ]
    );
}

#[test]
fn groups_the_daemon_does_not_own_are_never_touched() {
    let mut w = mirror(two_groups(), Mode::Extended);
    let other = rbac_group("rbac_group_console", "Made in the console", None, false);
    w.actual.groups.insert(other.id.clone(), other);
    w.actual.members.insert(
        "rbac_group_console".into(),
        BTreeSet::from(["user_u1".to_string(), "user_u9".to_string()]),
    );
    let scim = rbac_group("rbac_group_scim", "All (SCIM)", None, true);
    w.actual.groups.insert(scim.id.clone(), scim);
    w.actual
        .plugins
        .as_mut()
        .unwrap()
        .get_mut("finance-close")
        .unwrap()
        .group_overrides
        .push(GroupOverride {
            rbac_group_id: "rbac_group_console".into(),
            preference: Preference::Required,
        });
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn a_scim_group_carrying_a_rule_key_is_a_conflict_not_a_target() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.ownership.groups.remove("b");
    w.actual.groups.remove(&group_id("b"));
    let scim = rbac_group("rbac_group_scimb", "B from the IdP", Some("b"), true);
    w.actual.groups.insert(scim.id.clone(), scim);
    w.actual.members.insert(
        "rbac_group_scimb".into(),
        BTreeSet::from(["user_u1".to_string()]),
    );
    let p = w.plan(&options(Mode::Extended));
    assert!(
        p.actions.iter().all(|a| a.target != "group:b"),
        "{:#?}",
        p.actions
    );
    assert!(p.foreign.iter().any(|f| f.kind == ForeignKind::ScimGroup));
    assert!(p.drift.iter().any(|d| d.kind == DriftKind::Conflict));
}

#[test]
fn a_group_with_the_rule_key_as_external_id_is_adopted_not_duplicated() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.ownership = Ownership::default();
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    let adopted: Vec<&str> = p
        .sync
        .iter()
        .filter_map(|c| match c {
            Change::PutGroup(g) => Some(g.key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(adopted, vec!["a", "b"]);
    assert_eq!(
        p.sync
            .iter()
            .filter(|c| matches!(c, Change::PutMembership(_)))
            .count(),
        5
    );
}

#[test]
fn real_mode_keys_groups_by_recorded_id_never_by_name() {
    let mut w = mirror(two_groups(), Mode::Real);
    w.ownership.groups.remove("a");
    // A group with the same name exists but is not recorded: it is not ours.
    let p = w.plan(&options(Mode::Real));
    assert_eq!(p.actions[0].kind, ActionKind::CreateGroup);
    assert_eq!(p.actions[0].target, "group:a");
    assert!(p.actions.iter().all(|a| match &a.op {
        Op::AddMember { group, .. } | Op::RemoveMember { group, .. } =>
            group.id.as_deref() != Some("rbac_group_a"),
        _ => true,
    }));
}

#[test]
fn roles_null_is_unknown_and_skips_that_groups_role_check() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.actual.groups.get_mut(&group_id("a")).unwrap().roles = None;
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.notes.iter().any(|n| n.contains("roles: null")));
}

#[test]
fn real_mode_reports_tier_b_differences_with_console_steps_and_writes_tier_a() {
    let mut w = mirror(two_groups(), Mode::Real);
    let ga = w.actual.groups.get_mut(&group_id("a")).unwrap();
    ga.roles = Some(Vec::new());
    ga.name = "Old name".into();
    w.actual
        .group_spend
        .as_mut()
        .unwrap()
        .remove(&group_id("a"));
    w.actual
        .plugins
        .as_mut()
        .unwrap()
        .get_mut("finance-close")
        .unwrap()
        .group_overrides
        .clear();
    w.members_mut("a").remove("user_u1");
    let p = w.plan(&options(Mode::Real));
    assert!(
        p.actions.iter().all(|a| !a.kind.is_tier_b()),
        "{:#?}",
        p.actions
    );
    assert_eq!(
        kinds(&p),
        vec![ActionKind::UpdateGroup, ActionKind::AddMember]
    );
    let steps: Vec<&str> = p
        .drift
        .iter()
        .filter(|d| d.kind == DriftKind::TierB)
        .filter_map(|d| d.console_step.as_deref())
        .collect();
    assert_eq!(steps.len(), 3, "{:#?}", p.drift);
    assert!(steps
        .contains(&"claude.ai › Organization settings › Groups › Group a: attach role \"Pilot\""));
    assert!(steps.iter().any(|s| s.contains("spend limit to $50.00")));
    assert!(steps.iter().any(|s| s.contains("Plugins › finance-close")));
    // Real mode never creates roles: a missing role is drift too.
    w.actual.roles.clear();
    let p = w.plan(&options(Mode::Real));
    assert!(p
        .drift
        .iter()
        .any(|d| d.target == "role:pilot" && d.console_step.is_some()));
    assert!(p.actions.iter().all(|a| !a.kind.is_tier_b()));
}

#[test]
fn governed_users_are_set_to_managed_invited_or_reported_pending() {
    let mut w = mirror(
        desired(&[("a", &["u1", "u2", "u3", "u4", "u5"])]),
        Mode::Extended,
    );
    w.actual.users.get_mut("user_u1").unwrap().role = OrgRole::User;
    w.actual.users.get_mut("user_u2").unwrap().role = OrgRole::PrimaryOwner;
    for u in ["u3", "u4"] {
        w.actual.users.remove(&user_id(u));
        w.members_mut("a").remove(&user_id(u));
        w.ownership
            .memberships
            .remove(&(u.to_string(), "a".to_string()));
    }
    w.actual.invites.insert(
        email("u4"),
        ActualInvite {
            id: "invite_u4".into(),
            group_ids: vec![group_id("a")],
        },
    );
    w.desired.managed_users.get_mut("u5").unwrap().email = None;
    let p = w.plan(&options(Mode::Extended));
    assert_eq!(
        kinds(&p),
        vec![ActionKind::SetUserRole, ActionKind::InviteUser]
    );
    match &p.actions[1].op {
        Op::InviteUser {
            scim_id,
            role,
            groups,
            email: e,
        } => {
            assert_eq!(scim_id, "u3");
            assert_eq!(*role, OrgRole::Managed);
            assert_eq!(groups[0].id.as_deref(), Some("rbac_group_a"));
            assert_eq!(e, "u3@example.com");
        }
        other => panic!("{other:?}"),
    }
    let json = serde_json::to_string(&p).unwrap();
    assert!(
        !json.contains("u3@example.com"),
        "emails stay out of reports"
    );
    let pending: Vec<(&str, PendingReason)> = p
        .pending
        .iter()
        .map(|x| (x.scim_id.as_str(), x.reason))
        .collect();
    assert_eq!(
        pending,
        vec![
            ("u4", PendingReason::InvitePending),
            ("u5", PendingReason::NoEmail)
        ]
    );
    assert!(p
        .foreign
        .iter()
        .any(|f| f.kind == ForeignKind::AdminMember && f.target == "user:u2"));

    // Invites not allowed: pending. Org roles owned by the IdP: drift.
    w.desired.org.invites_allowed = false;
    w.desired.org.org_roles_writable = false;
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p
        .pending
        .iter()
        .any(|x| x.scim_id == "u3" && x.reason == PendingReason::InvitesNotAllowed));
    assert!(p
        .drift
        .iter()
        .any(|d| d.kind == DriftKind::NotWritable && d.target == "user:u1"));

    // The org says SCIM provisioning: no invites whatever the rules say.
    w.desired.org.invites_allowed = true;
    w.desired.org.org_roles_writable = true;
    w.actual.org = Some(cowork::Organization {
        id: "org".into(),
        name: "Example".into(),
        plan: None,
        provisioning_mode: Some(ApiProvisioning::ScimPermissive),
        settings: None,
        capabilities: cowork::ApiCapabilities::default(),
    });
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.iter().all(|a| a.kind != ActionKind::InviteUser));
}

#[test]
fn the_valve_holds_new_removals_beyond_the_floor_and_the_ratio_unless_forced() {
    let all: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut w = mirror(desired(&[("a", &refs)]), Mode::Extended);
    // The IdP "lost" three users: 3 of 10 = 30 %.
    for u in &refs[..3] {
        w.desired.groups.get_mut("a").unwrap().members.remove(*u);
        w.desired.managed_users.remove(*u);
    }
    let strict = PlanOptions {
        max_removal_ratio: 0.2,
        removal_floor: 0,
        ..options(Mode::Extended)
    };
    let p = w.plan(&strict);
    assert_eq!(p.valve.removals, 3);
    assert_eq!(p.valve.managed_memberships, 10);
    assert!((p.valve.ratio - 0.3).abs() < 1e-9);
    assert!(p.holds() && p.valve.holding && !p.valve.forced);
    assert_eq!(p.held.len(), 3);
    assert!(p
        .held
        .iter()
        .all(|h| h.new && h.action.kind == ActionKind::RemoveMember));
    assert!(
        p.actions.iter().all(|a| !a.kind.is_removal()),
        "held, not applied"
    );
    assert!(p.valve.reason.as_deref().unwrap().contains("3 of 10"));
    let forced = w.plan(&PlanOptions {
        force: true,
        ..strict.clone()
    });
    assert!(!forced.holds() && forced.valve.forced);
    let held: Vec<&Action> = p.held.iter().map(|h| &h.action).collect();
    assert_eq!(forced.actions.iter().collect::<Vec<_>>(), held);
    // The default floor of 10 lets the same three through: a few leavers are not an
    // outage.
    let p = w.plan(&PlanOptions {
        max_removal_ratio: 0.2,
        ..options(Mode::Extended)
    });
    assert!(!p.holds() && p.actions.len() == 3);
    // Exactly at the limit is allowed: 2 of 10 = 20 %.
    w.desired
        .groups
        .get_mut("a")
        .unwrap()
        .members
        .insert("u0".into());
    w.desired.managed_users.insert(
        "u0".into(),
        ManagedUser {
            email: Some(email("u0")),
        },
    );
    let p = w.plan(&strict);
    assert_eq!(p.valve.removals, 2);
    assert!(!p.holds());
}

#[test]
fn a_group_whose_key_left_the_rules_is_deleted_at_once_only_when_empty() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.desired.groups.remove("b");
    w.desired.managed_users.remove("u4");
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.holds(), "group b still has members");
    assert_eq!(p.held[0].action.kind, ActionKind::DeleteGroup);
    assert!(p.held[0].reason.contains("still has members"));
    assert_eq!(p.valve.non_empty_deletions, vec!["b".to_string()]);
    let forced = w.plan(&PlanOptions {
        force: true,
        ..options(Mode::Extended)
    });
    assert!(!forced.holds() && forced.valve.forced);
    assert_eq!(kinds(&forced), vec![ActionKind::DeleteGroup]);
    // Empty: deleted without force.
    w.members_mut("b").clear();
    let p = w.plan(&options(Mode::Extended));
    assert_eq!(kinds(&p), vec![ActionKind::DeleteGroup]);
    assert!(!p.holds());
    // Gone downstream already: just forgotten.
    w.actual.groups.remove(&group_id("b"));
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty());
    assert!(p.sync.contains(&Change::ForgetGroup { key: "b".into() }));
}

#[test]
fn a_deleted_directory_user_still_in_a_group_is_removed_through_its_link() {
    let mut w = mirror(two_groups(), Mode::Extended);
    // u4 was deleted in the IdP: not in the directory, not desired.
    w.directory.users.remove("u4");
    w.desired.groups.get_mut("b").unwrap().members.remove("u4");
    w.desired.managed_users.remove("u4");
    let p = w.plan(&options(Mode::Extended));
    assert_eq!(
        kinds(&p),
        vec![ActionKind::RemoveMember, ActionKind::RemoveFromOrg]
    );
    // The link stays until the removals are recorded.
    assert!(!p
        .sync
        .iter()
        .any(|c| matches!(c, Change::ForgetLink { .. })));
    // With remove_from_groups the organization membership stays.
    let p = w.plan(&PlanOptions {
        on_deactivate: OnDeactivate::RemoveFromGroups,
        ..options(Mode::Extended)
    });
    assert_eq!(kinds(&p), vec![ActionKind::RemoveMember]);
}

#[test]
fn a_user_whose_email_changed_in_the_idp_keeps_their_linked_account() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.directory
        .insert("u1", Some("u1.renamed@example.com"), true);
    w.desired.managed_users.get_mut("u1").unwrap().email = Some("U1.Renamed@example.com".into());
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.pending.is_empty());
}

#[test]
fn the_event_path_plans_only_the_touched_users_against_beliefs() {
    let mut w = mirror(two_groups(), Mode::Extended);
    // The event path reads nothing: beliefs stand in for the downstream.
    w.actual.complete = false;
    w.actual.members.clear();
    w.actual.groups.clear();
    w.actual.roles.clear();
    w.actual.group_spend = None;
    w.actual.plugins = None;
    // u2 left group a and joined a new group c; u3 changed too but is not touched.
    w.desired.groups.get_mut("a").unwrap().members.remove("u2");
    w.desired.groups.get_mut("a").unwrap().members.remove("u3");
    let mut c = w.desired.groups["b"].clone();
    c.key = "c".into();
    c.name = "Group c".into();
    c.members = BTreeSet::from(["u2".to_string()]);
    w.desired.groups.insert("c".into(), c);
    let opts = PlanOptions {
        scope: Scope::Users(BTreeSet::from(["u2".to_string()])),
        max_removal_ratio: 1.0,
        ..options(Mode::Extended)
    };
    let p = w.plan(&opts);
    use ActionKind::*;
    assert_eq!(
        kinds(&p),
        vec![CreateGroup, SetGroupRoles, AddMember, RemoveMember]
    );
    assert!(p
        .actions
        .iter()
        .all(|a| a.description.contains("u2") || a.kind == CreateGroup || a.kind == SetGroupRoles));
    match &p.actions[1].op {
        Op::SetGroupRoles { roles, .. } => {
            assert_eq!(roles[0].id.as_deref(), Some("rbac_role_pilot"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.valve.managed_memberships, 5);
    assert!(p.sync.is_empty());
    // A user deleted from the directory: its believed memberships are removed.
    w.desired.groups.get_mut("b").unwrap().members.remove("u4");
    w.desired.managed_users.remove("u4");
    let p = w.plan(&PlanOptions {
        scope: Scope::Users(BTreeSet::from(["u4".to_string()])),
        ..opts
    });
    assert_eq!(kinds(&p), vec![RemoveMember]);
}

#[test]
fn fingerprints_differ_by_payload_and_omit_nothing_that_matters() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.actual
        .group_spend
        .as_mut()
        .unwrap()
        .get_mut(&group_id("a"))
        .unwrap()
        .limit = SpendLimit::Amount(1);
    let p1 = w.plan(&options(Mode::Extended));
    w.desired.groups.get_mut("a").unwrap().monthly_spend = Some(SpendLimit::Amount(6000));
    let p2 = w.plan(&options(Mode::Extended));
    assert_ne!(p1.actions[0].fingerprint(), p2.actions[0].fingerprint());
    assert_eq!(
        p1.actions[0].fingerprint(),
        w.plan(&options(Mode::Extended)).actions[0]
            .fingerprint()
            .replace("6000", "5000")
    );
}

#[test]
fn org_settings_that_differ_are_reported_never_written() {
    let mut w = mirror(two_groups(), Mode::Extended);
    w.desired.org.features.insert("web_search".into(), true);
    w.desired.org.connectors.insert("mcpsrv_github".into());
    let mut settings: cowork::OrgSettings = serde_json::from_value(serde_json::json!({
        "cowork_enabled": true, "claude_code_enabled": true, "chat_enabled": true,
        "web_search_enabled": false, "code_execution_enabled": true, "skills_enabled": true,
        "user_skill_creation_enabled": true, "skill_sharing_enabled": true,
        "org_wide_skill_sharing_enabled": false, "connector_tools_default_always_allow": true,
        "usage_credits_enabled": true, "computer_use_available": false, "billing_currency": "EUR"
    }))
    .unwrap();
    settings.connectors.clear();
    w.actual.org = Some(cowork::Organization {
        id: "org".into(),
        name: "Example".into(),
        plan: Some(cowork::Plan::Enterprise),
        provisioning_mode: Some(ApiProvisioning::Manual),
        settings: Some(settings),
        capabilities: cowork::ApiCapabilities::default(),
    });
    let p = w.plan(&options(Mode::Extended));
    assert!(p.actions.is_empty());
    let details: Vec<&str> = p.drift.iter().map(|d| d.detail.as_str()).collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(p.drift.iter().all(|d| d.kind == DriftKind::OrgSetting));
}
