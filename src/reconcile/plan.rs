//! The planner: desired state (from the rules), what is downstream (read, or
//! believed), and what the daemon owns → an ordered list of actions, the drift it
//! cannot write, the objects it must not touch, the users still pending, and the
//! safety valve's verdict.
//!
//! Pure and deterministic: no I/O, no clock; inputs are ordered maps, the output is
//! sorted by action kind, then target, then id. This file must not import
//! actix_web, sled or reqwest (CI greps for it).
//!
//! # What the daemon governs (design §5)
//! - **Groups** are keyed by rule key: the `external_id` (extended mode) or the id
//!   recorded in ownership (real mode, which has no `external_id`). Never by name.
//!   A `source_type: scim` group is never touched, even when it carries a rule key.
//! - **In a group the daemon owns**, a member who is a directory user (matched by
//!   email, or linked earlier) is governed: a directory user the rules do not put
//!   there is removed, including one added by hand. A member who is not a directory
//!   user, or who holds an admin role (owner, primary owner, membership admin), is
//!   **foreign**: never removed, only reported.
//! - **Groups the daemon does not own** are never touched (no members added or
//!   removed, no rename, no roles).
//! - **Users**: governed users with org role `user` are set to `managed` (never from
//!   an admin role, never when the IdP owns org roles). Users missing downstream are
//!   invited with their groups where invites are allowed, otherwise reported pending;
//!   a pending invite is not repeated.
//!
//! # Exactly one write per difference
//! Memberships are diffed member by member (add/remove), never replaced wholesale, so
//! the number of write calls equals the number of differences, and `plan(x, x)` is
//! empty.
//!
//! # Real mode
//! Tier-B differences (role definitions, role attachment, group spend limits, plugin
//! overrides) are not actions: each is a [`Drift`] entry naming the console step
//! that fixes it. With `materialize_group_spend`, a group's spend limit becomes a
//! per-user override (tier A) for each member, recorded as owned so it is deleted
//! when the member leaves the group.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use super::ownership::{
    Change, Membership, OwnedGroup, OwnedRole, OwnedSpend, Ownership, UserLink,
};
use crate::cowork::{
    self, ConnectorAccess, ConnectorGrant, ConnectorPolicy, GroupOverride, Mode, OrgRole,
    Organization, PluginPolicy, Preference, RbacGroup, RbacRole, ToolGrant, ToolMode,
};
use crate::rules::{
    self, ConnectorMode, ConnectorSpec, DesiredGroup, DesiredState, PluginPreference, SpendLimit,
};

// ---------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------

/// A downstream member, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualUser {
    /// `user_01...`.
    pub id: String,
    /// Email, lowercased.
    pub email: String,
    /// Org role.
    pub role: OrgRole,
}

/// A pending invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualInvite {
    /// `invite_01...`.
    pub id: String,
    /// Groups the invitee joins on acceptance.
    pub group_ids: Vec<String>,
}

/// A configured spend-limit row (monthly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualSpend {
    /// `spl_01...`.
    pub id: String,
    /// The limit.
    pub limit: SpendLimit,
}

/// What is downstream: read in full (a full reconcile) or believed from the
/// ownership records (the event path). `None` means unknown: the planner skips what
/// it cannot compare instead of guessing.
#[derive(Debug, Clone, Default)]
pub struct ActualState {
    /// `true` when read from the API; `false` when built from beliefs.
    pub complete: bool,
    /// `GET /me`, when available.
    pub org: Option<Organization>,
    /// Members by id.
    pub users: BTreeMap<String, ActualUser>,
    /// Pending invites by lowercased email.
    pub invites: BTreeMap<String, ActualInvite>,
    /// Groups by id.
    pub groups: BTreeMap<String, RbacGroup>,
    /// Member ids of the groups that were read, by group id.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Custom roles by id.
    pub roles: BTreeMap<String, RbacRole>,
    /// Group spend rows by group id (tier-B read).
    pub group_spend: Option<BTreeMap<String, ActualSpend>>,
    /// Per-user override rows by member id.
    pub user_spend: Option<BTreeMap<String, ActualSpend>>,
    /// Plugin policies by plugin id (tier-B read).
    pub plugins: Option<BTreeMap<String, PluginPolicy>>,
}

/// Which targets a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything: roles, groups, memberships, users, plugins, deletions.
    Full,
    /// The event path: only these directory users' memberships, org role, invite and
    /// spend overrides, and creating a group one of them needs.
    Users(BTreeSet<String>),
}

impl Scope {
    fn covers(&self, scim_id: &str) -> bool {
        match self {
            Scope::Full => true,
            Scope::Users(set) => set.contains(scim_id),
        }
    }

    fn is_full(&self) -> bool {
        matches!(self, Scope::Full)
    }
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// What the client may write.
    pub mode: Mode,
    /// Which targets.
    pub scope: Scope,
    /// The safety valve: the largest share of managed memberships a plan may remove.
    pub max_removal_ratio: f64,
    /// Apply even what the valve refuses.
    pub force: bool,
    /// In real mode, write group spend limits as per-user overrides.
    pub materialize_group_spend: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Extended,
            scope: Scope::Full,
            max_removal_ratio: 0.2,
            force: false,
            materialize_group_spend: false,
        }
    }
}

/// Everything the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// What the rules ask for.
    pub desired: &'a DesiredState,
    /// Directory users by lowercased email → SCIM id (every user for a full plan; the
    /// touched users for the event path).
    pub directory: &'a HashMap<String, String>,
    /// What is downstream.
    pub actual: &'a ActualState,
    /// What the daemon owns and believes.
    pub ownership: &'a Ownership,
    /// How to plan.
    pub options: &'a PlanOptions,
}

// ---------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------

/// The kinds of downstream write, in the order a plan applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Tier B: create a custom role.
    CreateRole,
    /// Tier B: replace a custom role's definition.
    UpdateRole,
    /// Create a group.
    CreateGroup,
    /// Rename a group (and, tier B, change its description).
    UpdateGroup,
    /// Tier B: set the roles attached to a group.
    SetGroupRoles,
    /// Tier B: set a group's monthly per-member spend limit.
    SetGroupSpend,
    /// Tier B: remove a group's spend limit.
    ClearGroupSpend,
    /// Tier B: set a plugin's group overrides.
    SetPluginPolicy,
    /// Set a member's org role to `managed`.
    SetUserRole,
    /// Invite someone missing downstream, with their groups.
    InviteUser,
    /// Add a member to a group.
    AddMember,
    /// Set a per-user spend override (materialized group spend).
    SetUserSpend,
    /// Remove a member from a group.
    RemoveMember,
    /// Delete a per-user spend override the daemon created.
    DeleteUserSpend,
    /// Delete a group whose key left the rules.
    DeleteGroup,
}

impl ActionKind {
    /// Every kind, in plan order.
    pub const ALL: [ActionKind; 15] = [
        ActionKind::CreateRole,
        ActionKind::UpdateRole,
        ActionKind::CreateGroup,
        ActionKind::UpdateGroup,
        ActionKind::SetGroupRoles,
        ActionKind::SetGroupSpend,
        ActionKind::ClearGroupSpend,
        ActionKind::SetPluginPolicy,
        ActionKind::SetUserRole,
        ActionKind::InviteUser,
        ActionKind::AddMember,
        ActionKind::SetUserSpend,
        ActionKind::RemoveMember,
        ActionKind::DeleteUserSpend,
        ActionKind::DeleteGroup,
    ];

    /// The snake_case name (`add_member`); audit actions are `downstream.<name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::CreateRole => "create_role",
            ActionKind::UpdateRole => "update_role",
            ActionKind::CreateGroup => "create_group",
            ActionKind::UpdateGroup => "update_group",
            ActionKind::SetGroupRoles => "set_group_roles",
            ActionKind::SetGroupSpend => "set_group_spend",
            ActionKind::ClearGroupSpend => "clear_group_spend",
            ActionKind::SetPluginPolicy => "set_plugin_policy",
            ActionKind::SetUserRole => "set_user_role",
            ActionKind::InviteUser => "invite_user",
            ActionKind::AddMember => "add_member",
            ActionKind::SetUserSpend => "set_user_spend",
            ActionKind::RemoveMember => "remove_member",
            ActionKind::DeleteUserSpend => "delete_user_spend",
            ActionKind::DeleteGroup => "delete_group",
        }
    }

    /// Whether Anthropic's Admin API cannot write it (extension tier).
    pub fn is_tier_b(self) -> bool {
        matches!(
            self,
            ActionKind::CreateRole
                | ActionKind::UpdateRole
                | ActionKind::SetGroupRoles
                | ActionKind::SetGroupSpend
                | ActionKind::ClearGroupSpend
                | ActionKind::SetPluginPolicy
        )
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A downstream group named by rule key, with its id when it already exists (a group
/// created earlier in the same plan gets its id at execution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    /// Rule key.
    pub key: String,
    /// Downstream id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name (for descriptions and console steps).
    pub name: String,
}

/// A custom role named by key, with its id when it already exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleRef {
    /// Role key.
    pub key: String,
    /// Downstream id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One group override of a plugin, as a plan writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginOverride {
    /// The group.
    pub group: GroupRef,
    /// Its preference.
    pub preference: Preference,
}

/// What an action writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Op {
    /// [`ActionKind::CreateRole`].
    CreateRole {
        /// Role key.
        role_key: String,
        /// The definition.
        spec: cowork::RoleSpec,
    },
    /// [`ActionKind::UpdateRole`].
    UpdateRole {
        /// Role key.
        role_key: String,
        /// Downstream id.
        role_id: String,
        /// The definition.
        spec: cowork::RoleSpec,
    },
    /// [`ActionKind::CreateGroup`].
    CreateGroup {
        /// Rule key (sent as `external_id` in extended mode).
        group_key: String,
        /// Display name.
        name: String,
        /// Description (extended mode).
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// [`ActionKind::UpdateGroup`].
    UpdateGroup {
        /// The group.
        group: GroupRef,
        /// New name.
        #[serde(skip_serializing_if = "Option::is_none")]
        rename_to: Option<String>,
        /// New description (extended mode).
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// [`ActionKind::SetGroupRoles`].
    SetGroupRoles {
        /// The group.
        group: GroupRef,
        /// The complete list of roles to attach.
        roles: Vec<RoleRef>,
    },
    /// [`ActionKind::SetGroupSpend`].
    SetGroupSpend {
        /// The group.
        group: GroupRef,
        /// The monthly per-member limit.
        limit: SpendLimit,
        /// Billing currency.
        currency: String,
    },
    /// [`ActionKind::ClearGroupSpend`].
    ClearGroupSpend {
        /// The group.
        group: GroupRef,
        /// The row to delete.
        spend_limit_id: String,
    },
    /// [`ActionKind::SetPluginPolicy`].
    SetPluginPolicy {
        /// Plugin id.
        plugin_id: String,
        /// Overrides of the daemon's groups.
        overrides: Vec<PluginOverride>,
        /// Overrides of other groups, kept as they are.
        keep: Vec<GroupOverride>,
    },
    /// [`ActionKind::SetUserRole`].
    SetUserRole {
        /// Directory user.
        scim_id: String,
        /// Downstream member.
        user_id: String,
        /// The role it has now.
        from: OrgRole,
        /// The role to set (`managed`).
        to: OrgRole,
    },
    /// [`ActionKind::InviteUser`].
    InviteUser {
        /// Directory user.
        scim_id: String,
        /// The invitee's email (never serialized: personal data).
        #[serde(skip)]
        email: String,
        /// Role on acceptance.
        role: OrgRole,
        /// Groups to join on acceptance.
        groups: Vec<GroupRef>,
    },
    /// [`ActionKind::AddMember`].
    AddMember {
        /// The group.
        group: GroupRef,
        /// Directory user.
        scim_id: String,
        /// Downstream member.
        user_id: String,
    },
    /// [`ActionKind::RemoveMember`].
    RemoveMember {
        /// The group.
        group: GroupRef,
        /// Directory user, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        scim_id: Option<String>,
        /// Downstream member.
        user_id: String,
    },
    /// [`ActionKind::SetUserSpend`].
    SetUserSpend {
        /// Directory user.
        scim_id: String,
        /// Downstream member.
        user_id: String,
        /// The monthly limit.
        limit: SpendLimit,
        /// Billing currency.
        currency: String,
    },
    /// [`ActionKind::DeleteUserSpend`].
    DeleteUserSpend {
        /// Directory user.
        scim_id: String,
        /// Downstream member.
        user_id: String,
        /// The row to delete.
        spend_limit_id: String,
    },
    /// [`ActionKind::DeleteGroup`].
    DeleteGroup {
        /// The group.
        group: GroupRef,
        /// Directory users who lose this membership with the group.
        governed_members: usize,
        /// Other members (foreign) who lose it too.
        foreign_members: usize,
    },
}

/// One downstream write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What kind of write.
    pub kind: ActionKind,
    /// What it is about: `role:<key>`, `group:<key>`, `plugin:<id>`, `user:<scim id>`.
    pub target: String,
    /// One readable sentence (ids and names of groups and roles, never emails).
    pub description: String,
    /// What exactly is written.
    #[serde(rename = "details")]
    pub op: Op,
}

impl Action {
    fn sort_key(&self) -> (ActionKind, &str, String) {
        let tie = match &self.op {
            Op::AddMember { user_id, .. } | Op::RemoveMember { user_id, .. } => user_id.clone(),
            _ => String::new(),
        };
        (self.kind, self.target.as_str(), tie)
    }

    /// A stable fingerprint of what the action writes (kind, target ids and payload),
    /// the basis of its idempotency key: the same write gets the same key, a
    /// different write a different one.
    pub fn fingerprint(&self) -> String {
        let mut f = String::from(self.kind.as_str());
        let _ = match &self.op {
            Op::CreateRole { role_key, spec } | Op::UpdateRole { role_key, spec, .. } => {
                write!(
                    f,
                    "|{role_key}|{}",
                    serde_json::to_string(spec).unwrap_or_default()
                )
            }
            Op::CreateGroup {
                group_key,
                name,
                description,
            } => write!(f, "|{group_key}|{name}|{description:?}"),
            Op::UpdateGroup {
                group,
                rename_to,
                description,
            } => write!(f, "|{}|{rename_to:?}|{description:?}", group.key),
            Op::SetGroupRoles { group, roles } => {
                let keys: Vec<&str> = roles.iter().map(|r| r.key.as_str()).collect();
                write!(f, "|{}|{}", group.key, keys.join(","))
            }
            Op::SetGroupSpend {
                group,
                limit,
                currency,
            } => write!(f, "|{}|{limit}|{currency}", group.key),
            Op::ClearGroupSpend {
                group,
                spend_limit_id,
            } => write!(f, "|{}|{spend_limit_id}", group.key),
            Op::SetPluginPolicy {
                plugin_id,
                overrides,
                keep,
            } => {
                let mine: Vec<String> = overrides
                    .iter()
                    .map(|o| format!("{}={:?}", o.group.key, o.preference))
                    .collect();
                let theirs: Vec<String> = keep
                    .iter()
                    .map(|o| format!("{}={:?}", o.rbac_group_id, o.preference))
                    .collect();
                write!(f, "|{plugin_id}|{}|{}", mine.join(","), theirs.join(","))
            }
            Op::SetUserRole { user_id, to, .. } => write!(f, "|{user_id}|{to}"),
            Op::InviteUser {
                email,
                role,
                groups,
                ..
            } => {
                let keys: Vec<&str> = groups.iter().map(|g| g.key.as_str()).collect();
                write!(f, "|{}|{role}|{}", email.to_lowercase(), keys.join(","))
            }
            Op::AddMember { group, user_id, .. } | Op::RemoveMember { group, user_id, .. } => {
                write!(f, "|{}|{user_id}", group.key)
            }
            Op::SetUserSpend {
                user_id,
                limit,
                currency,
                ..
            } => write!(f, "|{user_id}|{limit}|{currency}"),
            Op::DeleteUserSpend {
                user_id,
                spend_limit_id,
                ..
            } => write!(f, "|{user_id}|{spend_limit_id}"),
            Op::DeleteGroup { group, .. } => write!(f, "|{}|{:?}", group.key, group.id),
        };
        f
    }
}

/// Why a difference is reported instead of written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Real mode: Anthropic's Admin API cannot write it; fix it in the console.
    TierB,
    /// An org-level setting differs from what the rules expect (never written).
    OrgSetting,
    /// The org role cannot be set through the API (the IdP owns org roles).
    NotWritable,
    /// A rule key is held by an object the daemon must not touch.
    Conflict,
    /// A per-user spend override set by someone else differs from the rules.
    ForeignOverride,
}

/// A difference the plan does not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Why it is not written.
    pub kind: DriftKind,
    /// What it is about (`group:<key>`, `role:<key>`, `org`, `user:<scim id>`, ...).
    pub target: String,
    /// What differs.
    pub detail: String,
    /// Where a person fixes it, when that is a console step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_step: Option<String>,
}

/// Why an object is foreign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForeignKind {
    /// A `source_type: scim` group that carries a rule key.
    ScimGroup,
    /// A member with an admin role in one of the daemon's groups, or a governed user
    /// who holds an admin role.
    AdminMember,
    /// A member of one of the daemon's groups who is not a directory user.
    NonDirectoryMember,
}

/// An object the plan leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Foreign {
    /// Why.
    pub kind: ForeignKind,
    /// `group:<key>` or `user:<scim id>`.
    pub target: String,
    /// Downstream id of the object (member id or group id).
    pub id: String,
}

/// Why a governed user has no downstream action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingReason {
    /// Invited already; waiting for acceptance.
    InvitePending,
    /// Not downstream, and the provisioning mode does not allow invites.
    InvitesNotAllowed,
    /// No email to match downstream.
    NoEmail,
}

/// A governed user who is not downstream yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// SCIM id.
    pub scim_id: String,
    /// Why.
    pub reason: PendingReason,
    /// Rule keys of the groups waiting for the user.
    pub groups: Vec<String>,
}

/// The safety valve's arithmetic and verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Valve {
    /// Memberships of directory users in the daemon's groups.
    pub managed_memberships: usize,
    /// Memberships the plan removes (member removals, and the governed members of
    /// deleted groups).
    pub removals: usize,
    /// `removals / managed_memberships`.
    pub ratio: f64,
    /// The configured limit.
    pub max_removal_ratio: f64,
    /// Groups the plan deletes although they still have members.
    pub non_empty_deletions: Vec<String>,
    /// The plan is refused (nothing may be applied).
    pub refused: bool,
    /// The valve would refuse, but the plan was forced.
    pub forced: bool,
    /// Why it refuses, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The planner's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// Differences reported, not written.
    pub drift: Vec<Drift>,
    /// Objects left alone.
    pub foreign: Vec<Foreign>,
    /// Governed users not downstream yet.
    pub pending: Vec<Pending>,
    /// What could not be compared this time (unknown downstream data).
    pub notes: Vec<String>,
    /// The valve.
    pub valve: Valve,
    /// Ownership records to bring in line with what was read (no downstream write).
    #[serde(skip)]
    pub sync: Vec<Change>,
}

impl Plan {
    /// Whether the valve refuses it.
    pub fn refused(&self) -> bool {
        self.valve.refused
    }

    /// Actions by kind.
    pub fn counts(&self) -> BTreeMap<ActionKind, usize> {
        let mut out = BTreeMap::new();
        for a in &self.actions {
            *out.entry(a.kind).or_insert(0) += 1;
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------

fn tool_mode(m: ConnectorMode) -> ToolMode {
    match m {
        ConnectorMode::Deny => ToolMode::Deny,
        ConnectorMode::NeedsApproval => ToolMode::NeedsApproval,
        ConnectorMode::AlwaysAllow => ToolMode::AlwaysAllow,
    }
}

/// A rule-file preference as the API writes it.
pub fn preference(p: PluginPreference) -> Preference {
    match p {
        PluginPreference::NotAvailable => Preference::NotAvailable,
        PluginPreference::Available => Preference::Available,
        PluginPreference::InstalledByDefault => Preference::InstalledByDefault,
        PluginPreference::Required => Preference::Required,
    }
}

/// The API's typed role body for a rule-file role (`external_id` = the role key).
/// Deterministic, so a role written from it reads back equal.
pub fn role_spec(key: &str, role: &rules::RoleSpec) -> cowork::RoleSpec {
    let grants = role
        .connectors
        .iter()
        .map(|(id, spec)| {
            let tools: Vec<ToolGrant> = spec
                .tools()
                .map(|(name, mode)| ToolGrant {
                    tool_name: name.clone(),
                    mode: tool_mode(mode),
                })
                .collect();
            let default = spec.default_mode();
            let denied = default == ConnectorMode::Deny
                && tools.iter().all(|t| t.mode == ToolMode::Deny)
                && matches!(spec, ConnectorSpec::Mode(_) | ConnectorSpec::Tools(_));
            ConnectorGrant {
                connector_id: id.clone(),
                access: if denied {
                    ConnectorAccess::Deny
                } else {
                    ConnectorAccess::Allow
                },
                default_tool_mode: tool_mode(default),
                tools,
                oauth_scopes: Vec::new(),
                auth_method: None,
            }
        })
        .collect();
    cowork::RoleSpec {
        name: role.name.clone(),
        description: role.description.clone(),
        external_id: Some(key.to_string()),
        default_model: role.default_model.clone(),
        capabilities: cowork::Capabilities {
            all: match role.capabilities.all {
                None => cowork::Blanket::None,
                Some(rules::Blanket::All) => cowork::Blanket::All,
                Some(rules::Blanket::AllGa) => cowork::Blanket::AllGa,
            },
            features: role.capabilities.features.clone(),
        },
        connectors: ConnectorPolicy::List(grants),
        admin_permissions: role
            .admin_permissions
            .iter()
            .map(|(area, level)| {
                let level = match level {
                    rules::AdminLevel::None => cowork::AdminLevel::None,
                    rules::AdminLevel::View => cowork::AdminLevel::View,
                    rules::AdminLevel::Manage => cowork::AdminLevel::Manage,
                };
                (area.clone(), level)
            })
            .collect(),
    }
}

/// A spend row's amount as a limit (`None` when the amount does not parse).
pub fn spend_limit_of(amount: Option<&str>) -> Option<SpendLimit> {
    match amount {
        None => Some(SpendLimit::Unlimited),
        Some(a) => a.parse().ok().map(SpendLimit::Amount),
    }
}

fn money(limit: SpendLimit, currency: &str) -> String {
    match limit {
        SpendLimit::Unlimited => "unlimited".into(),
        SpendLimit::Amount(n) => format!("{n} (minor units of {currency})"),
    }
}

const CONSOLE: &str = "claude.ai › Organization settings";

/// The Fx hash (as in rustc): the planner hashes millions of short ids; SipHash's
/// flooding resistance buys nothing here and costs a third of the planning time.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (the bucket index) weak; mix them
        // (MurmurHash3's finalizer) so similar ids do not collide.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type FxBuild = std::hash::BuildHasherDefault<Fx>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

// ---------------------------------------------------------------------------------
// The planner
// ---------------------------------------------------------------------------------

/// A desired group bound to what is (or will be) downstream.
struct Bound<'a> {
    desired: &'a DesiredGroup,
    /// Existing downstream group, when there is one.
    actual: Option<&'a RbacGroup>,
    /// The reference actions use.
    gref: GroupRef,
    /// Created by this plan.
    created: bool,
}

struct Planner<'a> {
    input: PlanInput<'a>,
    mode: Mode,
    scope: &'a Scope,
    /// Every directory user the plan deals with, by dense index.
    scim_ix: FxMap<&'a str, u32>,
    /// SCIM ids by index.
    scims: Vec<&'a str>,
    /// Downstream members by id: admin or not, and the directory user behind them
    /// (by email, or by an earlier link).
    member: FxMap<&'a str, MemberInfo>,
    /// Downstream member id → the directory user linked to it.
    linked: FxMap<&'a str, u32>,
    /// Governed users found downstream, by SCIM id.
    downstream_of: FxMap<&'a str, &'a ActualUser>,
    /// Believed members (directory user indices) by group key.
    believed: FxMap<&'a str, Vec<u32>>,
    /// Beliefs the read confirmed.
    confirmed: usize,
    bound: BTreeMap<&'a str, Bound<'a>>,
    /// Keys held by objects the daemon must not touch.
    blocked: BTreeSet<&'a str>,
    role_refs: BTreeMap<String, RoleRef>,
    roles_created: BTreeSet<String>,
    actions: Vec<Action>,
    drift: Vec<Drift>,
    foreign: Vec<Foreign>,
    pending: Vec<Pending>,
    notes: Vec<String>,
    sync: Vec<Change>,
    managed_memberships: usize,
    non_empty_deletions: Vec<String>,
    /// Memberships added or removed by actions, by (SCIM id, key): not synced.
    touched_memberships: BTreeSet<(String, String)>,
    /// Governed memberships that end with a deleted group.
    deleted_memberships: usize,
    /// Keys of the groups the plan deletes.
    deleting: BTreeSet<&'a str>,
    /// Desired group keys by SCIM id.
    /// Desired group keys by SCIM id (built only when materializing spend).
    groups_by_user: Option<FxMap<&'a str, Vec<&'a str>>>,
}

#[derive(Clone, Copy)]
struct MemberInfo {
    admin: bool,
    person: Option<u32>,
}

/// A set of directory user indices.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Sets a bit; `true` if it was clear.
    fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        match self.0.get_mut(i / 64) {
            Some(w) => {
                let was = *w & (1 << (i % 64)) != 0;
                *w |= 1 << (i % 64);
                !was
            }
            None => false,
        }
    }
}

/// Plans. See the module documentation for the rules it follows.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let mut p = Planner::new(input);
    if p.scope.is_full() {
        p.org();
        p.roles();
    } else {
        p.known_roles();
    }
    p.bind_groups();
    p.group_settings();
    p.members();
    if p.scope.is_full() {
        p.plugins();
        p.deletions();
    }
    p.users();
    p.sync_memberships();
    p.finish()
}

impl<'a> Planner<'a> {
    fn new(input: PlanInput<'a>) -> Self {
        let actual = input.actual;
        let mut scim_ix: FxMap<&str, u32> = FxMap::default();
        let mut scims: Vec<&str> = Vec::new();
        let mut index = |s: &'a str, scim_ix: &mut FxMap<&'a str, u32>| -> u32 {
            *scim_ix.entry(s).or_insert_with(|| {
                scims.push(s);
                u32::try_from(scims.len() - 1).unwrap_or(u32::MAX)
            })
        };
        for scim in input.desired.managed_users.keys() {
            index(scim, &mut scim_ix);
        }
        let mut linked: FxMap<&str, u32> = FxMap::default();
        for l in input.ownership.links.values() {
            if let Some(uid) = l.user_id.as_deref() {
                linked.insert(uid, index(&l.scim_id, &mut scim_ix));
            }
        }
        let mut member: FxMap<&str, MemberInfo> = FxMap::default();
        let mut users_by_email: FxMap<&str, &ActualUser> = FxMap::default();
        for u in actual.users.values() {
            users_by_email.insert(u.email.as_str(), u);
            let person = match input.directory.get(&u.email) {
                Some(s) => Some(index(s, &mut scim_ix)),
                None => linked.get(u.id.as_str()).copied(),
            };
            member.insert(
                u.id.as_str(),
                MemberInfo {
                    admin: u.role.is_admin(),
                    person,
                },
            );
        }
        let mut believed: FxMap<&str, Vec<u32>> = FxMap::default();
        let mut last: Option<(&str, u32)> = None;
        for (scim, key) in input.ownership.memberships.keys() {
            let ix = match last {
                Some((s, i)) if s == scim => i,
                _ => index(scim, &mut scim_ix),
            };
            last = Some((scim.as_str(), ix));
            believed.entry(key.as_str()).or_default().push(ix);
        }
        let mut downstream_of: FxMap<&str, &ActualUser> = FxMap::default();
        let mut lower = String::new();
        for (scim, m) in &input.desired.managed_users {
            let Some(email) = m.email.as_deref() else {
                continue;
            };
            lower.clear();
            lower.extend(email.chars().flat_map(char::to_lowercase));
            // By email; else the member the user was linked to before (their email
            // changed in the IdP, the account stays the same).
            let found = users_by_email.get(lower.as_str()).copied().or_else(|| {
                let uid = input.ownership.links.get(scim)?.user_id.as_ref()?;
                actual.users.get(uid)
            });
            if let Some(u) = found {
                downstream_of.insert(scim.as_str(), u);
            }
        }
        let groups_by_user = (input.options.mode == Mode::Real
            && input.options.materialize_group_spend)
            .then(|| {
                let mut map: FxMap<&str, Vec<&str>> = FxMap::default();
                for g in input.desired.groups.values() {
                    for m in &g.members {
                        map.entry(m.as_str()).or_default().push(g.key.as_str());
                    }
                }
                map
            });
        Planner {
            input,
            mode: input.options.mode,
            scope: &input.options.scope,
            scim_ix,
            scims,
            member,
            linked,
            downstream_of,
            believed,
            confirmed: 0,
            bound: BTreeMap::new(),
            blocked: BTreeSet::new(),
            role_refs: BTreeMap::new(),
            roles_created: BTreeSet::new(),
            actions: Vec::new(),
            drift: Vec::new(),
            foreign: Vec::new(),
            pending: Vec::new(),
            notes: Vec::new(),
            sync: Vec::new(),
            managed_memberships: 0,
            non_empty_deletions: Vec::new(),
            touched_memberships: BTreeSet::new(),
            deleted_memberships: 0,
            deleting: BTreeSet::new(),
            groups_by_user,
        }
    }

    fn extended(&self) -> bool {
        self.mode == Mode::Extended
    }

    fn push(&mut self, kind: ActionKind, target: String, description: String, op: Op) {
        self.actions.push(Action {
            kind,
            target,
            description,
            op,
        });
    }

    fn drift(&mut self, kind: DriftKind, target: String, detail: String, step: Option<String>) {
        self.drift.push(Drift {
            kind,
            target,
            detail,
            console_step: step,
        });
    }

    /// The downstream member a governed user was matched to (by email).
    fn downstream(&self, scim: &str) -> Option<&'a ActualUser> {
        self.downstream_of.get(scim).copied()
    }

    // ------------------------------------------------------------- org settings

    fn org(&mut self) {
        let Some(org) = &self.input.actual.org else {
            return;
        };
        let want = &self.input.desired.org;
        if let Some(plan) = &org.plan {
            if plan.as_str() != want.plan.as_str() {
                self.drift(
                    DriftKind::OrgSetting,
                    "org".into(),
                    format!(
                        "the rules expect plan {} but the organization is on {}",
                        want.plan.as_str(),
                        plan
                    ),
                    None,
                );
            }
        }
        if let Some(mode) = &org.provisioning_mode {
            if mode.as_str() != want.provisioning_mode.as_str() {
                self.drift(
                    DriftKind::OrgSetting,
                    "org".into(),
                    format!(
                        "the rules expect provisioning mode {} but the organization uses {}",
                        want.provisioning_mode.as_str(),
                        mode
                    ),
                    Some(format!("{CONSOLE} › Identity: provisioning mode")),
                );
            }
        }
        let Some(settings) = &org.settings else {
            return;
        };
        if !settings
            .billing_currency
            .eq_ignore_ascii_case(&want.billing_currency)
        {
            self.drift(
                DriftKind::OrgSetting,
                "org".into(),
                format!(
                    "the rules use billing currency {} but the organization bills in {}",
                    want.billing_currency, settings.billing_currency
                ),
                None,
            );
        }
        for (feature, on) in &want.features {
            let have = match feature.as_str() {
                "skills" => Some(settings.skills_enabled),
                "user_skill_creation" => Some(settings.user_skill_creation_enabled),
                "skill_sharing" => Some(settings.skill_sharing_enabled),
                "org_wide_skill_sharing" => Some(settings.org_wide_skill_sharing_enabled),
                other => settings.feature_switch(other),
            };
            if let Some(have) = have {
                if have != *on {
                    self.drift(
                        DriftKind::OrgSetting,
                        "org".into(),
                        format!(
                            "feature {feature} is {} at org level; the rules expect {}",
                            if have { "on" } else { "off" },
                            if *on { "on" } else { "off" }
                        ),
                        Some(format!(
                            "{CONSOLE} › Capabilities: turn {feature} {}",
                            if *on { "on" } else { "off" }
                        )),
                    );
                }
            }
        }
        for connector in &want.connectors {
            if !settings.connector(connector).is_some_and(|c| c.enabled) {
                self.drift(
                    DriftKind::OrgSetting,
                    "org".into(),
                    format!("connector {connector} is not enabled at org level"),
                    Some(format!(
                        "{CONSOLE} › Connectors: add and enable {connector}"
                    )),
                );
            }
        }
    }

    // ------------------------------------------------------------------- roles

    /// Role ids known without reading (the event path): ownership records.
    fn known_roles(&mut self) {
        for key in self.input.desired.roles.keys() {
            let id = self
                .input
                .ownership
                .roles
                .get(key)
                .map(|r| r.id.clone())
                .or_else(|| {
                    self.input
                        .actual
                        .roles
                        .values()
                        .find(|r| r.external_id.as_deref() == Some(key))
                        .map(|r| r.id.clone())
                });
            self.role_refs.insert(
                key.clone(),
                RoleRef {
                    key: key.clone(),
                    id,
                },
            );
        }
    }

    fn roles(&mut self) {
        let actual = &self.input.actual.roles;
        let by_ext: HashMap<&str, &RbacRole> = actual
            .values()
            .filter_map(|r| Some((r.external_id.as_deref()?, r)))
            .collect();
        for (key, role) in &self.input.desired.roles {
            let want = role_spec(key, role);
            let found = by_ext.get(key.as_str()).copied().or_else(|| {
                self.input
                    .ownership
                    .roles
                    .get(key)
                    .and_then(|o| actual.get(&o.id))
            });
            // Real mode has no external_id: a console-made role is recognised by its
            // name, for reporting only (nothing is written to roles in real mode).
            let found = match (found, self.extended()) {
                (None, false) => actual.values().find(|r| r.name == role.name),
                (f, _) => f,
            };
            let target = format!("role:{key}");
            match found {
                Some(r) => {
                    self.role_refs.insert(
                        key.clone(),
                        RoleRef {
                            key: key.clone(),
                            id: Some(r.id.clone()),
                        },
                    );
                    if r.external_id.as_deref() == Some(key.as_str())
                        && self.input.ownership.roles.get(key).map(|o| o.id.as_str())
                            != Some(r.id.as_str())
                    {
                        self.sync.push(Change::PutRole(OwnedRole {
                            key: key.clone(),
                            id: r.id.clone(),
                        }));
                    }
                    // Real mode reads no external_id: compare the definition only.
                    let have = r.spec().map(|mut h| {
                        if !self.extended() {
                            h.external_id = want.external_id.clone();
                        }
                        h
                    });
                    match have {
                        None => {}
                        Some(have) if have == want => {}
                        Some(_) if self.extended() => self.push(
                            ActionKind::UpdateRole,
                            target,
                            format!("update custom role {:?} (key {key}) to match the rules", role.name),
                            Op::UpdateRole {
                                role_key: key.clone(),
                                role_id: r.id.clone(),
                                spec: want,
                            },
                        ),
                        Some(_) => self.drift(
                            DriftKind::TierB,
                            target,
                            format!("custom role {:?} differs from the rules", role.name),
                            Some(format!(
                                "{CONSOLE} › Roles › {}: edit its permissions to match role {key} of the rules",
                                r.name
                            )),
                        ),
                    }
                }
                None => {
                    self.role_refs.insert(
                        key.clone(),
                        RoleRef {
                            key: key.clone(),
                            id: None,
                        },
                    );
                    if self.extended() {
                        self.roles_created.insert(key.clone());
                        self.push(
                            ActionKind::CreateRole,
                            target,
                            format!("create custom role {:?} (key {key})", role.name),
                            Op::CreateRole {
                                role_key: key.clone(),
                                spec: want,
                            },
                        );
                    } else {
                        self.drift(
                            DriftKind::TierB,
                            target,
                            format!("custom role {:?} does not exist downstream", role.name),
                            Some(format!(
                                "{CONSOLE} › Roles: create role {:?} as role {key} of the rules defines it",
                                role.name
                            )),
                        );
                    }
                }
            }
        }
    }

    fn role_name(&self, key: &str) -> String {
        self.input
            .desired
            .roles
            .get(key)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| key.to_string())
    }

    // ------------------------------------------------------------------ groups

    fn in_scope(&self, g: &DesiredGroup) -> bool {
        match self.scope {
            Scope::Full => true,
            Scope::Users(users) => g.members.iter().any(|m| users.contains(m)),
        }
    }

    fn bind_groups(&mut self) {
        let actual = self.input.actual;
        let by_ext: HashMap<&str, &RbacGroup> = actual
            .groups
            .values()
            .filter_map(|g| Some((g.external_id.as_deref()?, g)))
            .collect();
        for (key, desired) in &self.input.desired.groups {
            if !self.in_scope(desired) {
                continue;
            }
            let owned = self.input.ownership.groups.get(key);
            let mut found: Option<&RbacGroup> = None;
            if actual.complete {
                found = owned
                    .and_then(|o| actual.groups.get(&o.id))
                    .filter(|g| !g.is_scim());
                if found.is_none() && self.extended() {
                    if let Some(g) = by_ext.get(key.as_str()) {
                        if g.is_scim() {
                            self.blocked.insert(key);
                            self.foreign.push(Foreign {
                                kind: ForeignKind::ScimGroup,
                                target: format!("group:{key}"),
                                id: g.id.clone(),
                            });
                            self.drift(
                                DriftKind::Conflict,
                                format!("group:{key}"),
                                format!(
                                    "the SCIM group {} carries the rule key {key}; it is never modified, so the rule's group is not managed",
                                    g.id
                                ),
                                None,
                            );
                            continue;
                        }
                        found = Some(g);
                    }
                }
                if let Some(g) = found {
                    if owned.map(|o| o.id.as_str()) != Some(g.id.as_str()) {
                        self.sync.push(Change::PutGroup(OwnedGroup {
                            key: key.clone(),
                            id: g.id.clone(),
                            name: g.name.clone(),
                            created: owned.is_some_and(|o| o.created),
                        }));
                    }
                } else if owned.is_some() {
                    self.notes.push(format!(
                        "group {key} was deleted downstream; it is created again"
                    ));
                }
            }
            let gref = match (found, owned, actual.complete) {
                (Some(g), _, _) => GroupRef {
                    key: key.clone(),
                    id: Some(g.id.clone()),
                    name: desired.name.clone(),
                },
                (None, Some(o), false) => GroupRef {
                    key: key.clone(),
                    id: Some(o.id.clone()),
                    name: desired.name.clone(),
                },
                _ => GroupRef {
                    key: key.clone(),
                    id: None,
                    name: desired.name.clone(),
                },
            };
            let created = gref.id.is_none();
            if created {
                self.push(
                    ActionKind::CreateGroup,
                    format!("group:{key}"),
                    format!("create group {:?} (key {key})", desired.name),
                    Op::CreateGroup {
                        group_key: key.clone(),
                        name: desired.name.clone(),
                        description: if self.extended() {
                            desired.description.clone()
                        } else {
                            None
                        },
                    },
                );
            }
            self.bound.insert(
                key,
                Bound {
                    desired,
                    actual: found,
                    gref,
                    created,
                },
            );
        }
    }

    fn group_settings(&mut self) {
        let keys: Vec<&'a str> = self.bound.keys().copied().collect();
        for key in keys {
            let Some(b) = self.bound.get(key) else {
                continue;
            };
            let (desired, actual, gref, created) = (b.desired, b.actual, b.gref.clone(), b.created);
            // Group-level settings belong to the full plan, except for a group the
            // event path just created (it must not stay without its roles and limit).
            if !self.scope.is_full() && !created {
                continue;
            }
            let target = format!("group:{key}");
            if let Some(g) = actual {
                let rename_to = (g.name != desired.name).then(|| desired.name.clone());
                let description = match (&desired.description, self.extended()) {
                    (Some(d), true) if g.description.as_ref() != Some(d) => Some(d.clone()),
                    _ => None,
                };
                if rename_to.is_some() || description.is_some() {
                    let what = match &rename_to {
                        Some(to) => format!("rename group {:?} (key {key}) to {to:?}", g.name),
                        None => format!("set the description of group {:?} (key {key})", g.name),
                    };
                    self.push(
                        ActionKind::UpdateGroup,
                        target.clone(),
                        what,
                        Op::UpdateGroup {
                            group: gref.clone(),
                            rename_to,
                            description,
                        },
                    );
                }
            }
            self.group_roles(key, desired, actual, &gref, created);
            self.group_spend(key, desired, actual, &gref, created);
        }
    }

    fn group_roles(
        &mut self,
        key: &str,
        desired: &DesiredGroup,
        actual: Option<&RbacGroup>,
        gref: &GroupRef,
        created: bool,
    ) {
        let target = format!("group:{key}");
        let have: BTreeSet<String> = match actual {
            Some(g) => match &g.roles {
                Some(r) => r.iter().cloned().collect(),
                None => {
                    self.notes.push(format!(
                        "roles of group {key} are temporarily unknown (roles: null); not checked this run"
                    ));
                    return;
                }
            },
            None => BTreeSet::new(),
        };
        let wanted: Vec<RoleRef> = desired
            .roles
            .iter()
            .map(|k| {
                self.role_refs.get(k).cloned().unwrap_or(RoleRef {
                    key: k.clone(),
                    id: None,
                })
            })
            .collect();
        let wanted_ids: BTreeSet<String> = wanted.iter().filter_map(|r| r.id.clone()).collect();
        let all_known = wanted.iter().all(|r| r.id.is_some());
        let differs = !all_known || wanted_ids != have;
        if !differs || (created && wanted.is_empty()) {
            return;
        }
        if self.extended() {
            let resolvable = wanted
                .iter()
                .all(|r| r.id.is_some() || self.roles_created.contains(&r.key));
            if !resolvable {
                self.notes.push(format!(
                    "roles of new group {key} are set by the next full reconcile (role ids not known yet)"
                ));
                return;
            }
            let names: Vec<String> = wanted.iter().map(|r| self.role_name(&r.key)).collect();
            self.push(
                ActionKind::SetGroupRoles,
                target,
                format!(
                    "attach roles [{}] to group {:?} (key {key})",
                    names.join(", "),
                    desired.name
                ),
                Op::SetGroupRoles {
                    group: gref.clone(),
                    roles: wanted,
                },
            );
        } else {
            for r in &wanted {
                if r.id.as_ref().is_some_and(|id| have.contains(id)) {
                    continue;
                }
                let name = self.role_name(&r.key);
                self.drift(
                    DriftKind::TierB,
                    target.clone(),
                    format!("role {name:?} is not attached to group {:?}", desired.name),
                    Some(format!(
                        "{CONSOLE} › Groups › {}: attach role {name:?}",
                        desired.name
                    )),
                );
            }
            for id in have.difference(&wanted_ids) {
                let name = self
                    .input
                    .actual
                    .roles
                    .get(id)
                    .map(|r| r.name.clone())
                    .unwrap_or_else(|| id.clone());
                self.drift(
                    DriftKind::TierB,
                    target.clone(),
                    format!(
                        "role {name:?} is attached to group {:?} but not in the rules",
                        desired.name
                    ),
                    Some(format!(
                        "{CONSOLE} › Groups › {}: detach role {name:?}",
                        desired.name
                    )),
                );
            }
        }
    }

    fn group_spend(
        &mut self,
        key: &str,
        desired: &DesiredGroup,
        actual: Option<&RbacGroup>,
        gref: &GroupRef,
        created: bool,
    ) {
        let target = format!("group:{key}");
        let currency = self.input.desired.org.billing_currency.clone();
        let have: Option<Option<&ActualSpend>> = match (actual, &self.input.actual.group_spend) {
            (Some(g), Some(rows)) => Some(rows.get(&g.id)),
            // A new group has no limit, but say so only where limits can be read, so
            // a run and the next one report the same.
            (None, Some(_)) => Some(None),
            (None, None) if self.extended() => Some(None),
            (_, None) => None,
        };
        let Some(have) = have else {
            match desired.monthly_spend {
                Some(limit) if !self.extended() && !self.materializing() => self.drift(
                    DriftKind::TierB,
                    target,
                    format!(
                        "group {:?} should have a monthly spend limit of {}; the API can neither read nor write group limits",
                        desired.name,
                        money(limit, &currency)
                    ),
                    Some(format!(
                        "{CONSOLE} › Groups › {}: check that the monthly spend limit is {}",
                        desired.name,
                        money(limit, &currency)
                    )),
                ),
                Some(_) if !self.materializing() => self.notes.push(format!(
                    "the spend limit of group {key} cannot be read; not checked this run"
                )),
                _ => {}
            }
            return;
        };
        let have_limit = have.map(|s| s.limit);
        if have_limit == desired.monthly_spend {
            return;
        }
        if self.extended() {
            match (desired.monthly_spend, have) {
                (Some(limit), _) => self.push(
                    ActionKind::SetGroupSpend,
                    target,
                    format!(
                        "set the monthly spend limit of group {:?} (key {key}) to {}",
                        desired.name,
                        money(limit, &currency)
                    ),
                    Op::SetGroupSpend {
                        group: gref.clone(),
                        limit,
                        currency,
                    },
                ),
                (None, Some(row)) if !created => self.push(
                    ActionKind::ClearGroupSpend,
                    target,
                    format!(
                        "remove the monthly spend limit of group {:?} (key {key})",
                        desired.name
                    ),
                    Op::ClearGroupSpend {
                        group: gref.clone(),
                        spend_limit_id: row.id.clone(),
                    },
                ),
                (None, _) => {}
            }
        } else if !self.materializing() {
            let (detail, step) = match desired.monthly_spend {
                Some(limit) => (
                    format!(
                        "group {:?} should have a monthly spend limit of {}",
                        desired.name,
                        money(limit, &currency)
                    ),
                    format!(
                        "{CONSOLE} › Groups › {}: set the monthly spend limit to {}",
                        desired.name,
                        money(limit, &currency)
                    ),
                ),
                None => (
                    format!(
                        "group {:?} has a spend limit the rules do not set",
                        desired.name
                    ),
                    format!(
                        "{CONSOLE} › Groups › {}: remove the group spend limit",
                        desired.name
                    ),
                ),
            };
            self.drift(DriftKind::TierB, target, detail, Some(step));
        }
    }

    fn materializing(&self) -> bool {
        !self.extended() && self.input.options.materialize_group_spend
    }

    // ----------------------------------------------------------------- members

    /// A downstream member of one of the daemon's groups: `Some(scim id)` when
    /// governed, `None` when foreign (recorded as such).
    fn classify_member(&mut self, key: &str, user_id: &str) -> Option<u32> {
        let governed = match self.member.get(user_id) {
            // An admin is never managed, whoever they are in the directory.
            Some(m) if m.admin => {
                self.foreign.push(Foreign {
                    kind: ForeignKind::AdminMember,
                    target: format!("group:{key}"),
                    id: user_id.to_string(),
                });
                return None;
            }
            // A directory user by email, or one the daemon linked earlier.
            Some(m) => m.person,
            // Not in the member list (another org of the enterprise, or removed
            // meanwhile): a directory user only if the daemon linked it.
            None => self.linked.get(user_id).copied(),
        };
        if governed.is_none() {
            self.foreign.push(Foreign {
                kind: ForeignKind::NonDirectoryMember,
                target: format!("group:{key}"),
                id: user_id.to_string(),
            });
        }
        governed
    }

    fn scim(&self, person: u32) -> &'a str {
        self.scims.get(person as usize).copied().unwrap_or("")
    }

    fn members(&mut self) {
        let keys: Vec<&'a str> = self.bound.keys().copied().collect();
        for key in keys {
            let Some(b) = self.bound.get(key) else {
                continue;
            };
            let (desired, actual, gref) = (b.desired, b.actual, b.gref.clone());
            if self.input.actual.complete {
                let empty = BTreeSet::new();
                let have: &BTreeSet<String> = match actual {
                    Some(g) => match self.input.actual.members.get(&g.id) {
                        Some(m) => m,
                        None => {
                            self.notes.push(format!(
                                "members of group {key} were not read; not checked this run"
                            ));
                            continue;
                        }
                    },
                    None => &empty,
                };
                self.diff_members_read(key, desired, &gref, have);
            } else {
                self.diff_members_believed(key, desired, &gref);
            }
        }
        if !self.scope.is_full() {
            // Beliefs in groups no longer desired for a user in scope.
            let Scope::Users(users) = self.scope else {
                return;
            };
            let beliefs: Vec<&'a Membership> = users
                .iter()
                .flat_map(|u| self.input.ownership.memberships_of(u))
                .collect();
            for m in beliefs {
                let still = self
                    .input
                    .desired
                    .groups
                    .get(&m.group_key)
                    .is_some_and(|g| g.members.contains(&m.scim_id));
                if still || self.bound.contains_key(m.group_key.as_str()) {
                    continue;
                }
                let name = self
                    .input
                    .ownership
                    .groups
                    .get(&m.group_key)
                    .map(|g| g.name.clone())
                    .unwrap_or_else(|| m.group_key.clone());
                self.remove_member(
                    &GroupRef {
                        key: m.group_key.clone(),
                        id: Some(m.group_id.clone()),
                        name,
                    },
                    Some(&m.scim_id),
                    &m.user_id,
                );
            }
        }
    }

    fn add_member(&mut self, gref: &GroupRef, scim_id: &str, user_id: &str) {
        self.touched_memberships
            .insert((scim_id.to_string(), gref.key.clone()));
        self.push(
            ActionKind::AddMember,
            format!("group:{}", gref.key),
            format!(
                "add user {scim_id} ({user_id}) to group {:?} (key {})",
                gref.name, gref.key
            ),
            Op::AddMember {
                group: gref.clone(),
                scim_id: scim_id.to_string(),
                user_id: user_id.to_string(),
            },
        );
    }

    fn remove_member(&mut self, gref: &GroupRef, scim_id: Option<&str>, user_id: &str) {
        if let Some(s) = scim_id {
            self.touched_memberships
                .insert((s.to_string(), gref.key.clone()));
        }
        let who = match scim_id {
            Some(s) => format!("user {s} ({user_id})"),
            None => format!("member {user_id}"),
        };
        self.push(
            ActionKind::RemoveMember,
            format!("group:{}", gref.key),
            format!("remove {who} from group {:?} (key {})", gref.name, gref.key),
            Op::RemoveMember {
                group: gref.clone(),
                scim_id: scim_id.map(str::to_string),
                user_id: user_id.to_string(),
            },
        );
    }

    /// Full plan: compare the desired members with the members read. Works on
    /// directory user indices: one hash lookup per membership on each side.
    fn diff_members_read(
        &mut self,
        key: &'a str,
        desired: &'a DesiredGroup,
        gref: &GroupRef,
        have: &BTreeSet<String>,
    ) {
        let n = self.scims.len();
        let mut wanted = Bits::new(n);
        let mut wanted_count = 0usize;
        for s in &desired.members {
            if !self.scope.covers(s) {
                continue;
            }
            if let Some(i) = self.scim_ix.get(s.as_str()) {
                if wanted.set(*i) {
                    wanted_count += 1;
                }
            }
        }
        let mut believed = Bits::new(n);
        if let Some(list) = self.believed.get(key) {
            for i in list {
                believed.set(*i);
            }
        }
        let mut present = Bits::new(n);
        let mut present_count = 0usize;
        for user_id in have {
            let Some(person) = self.classify_member(key, user_id) else {
                continue;
            };
            self.managed_memberships += 1;
            let scim = self.scim(person);
            if wanted.get(person) {
                if !present.set(person) {
                    continue;
                }
                present_count += 1;
                if believed.get(person) {
                    self.confirmed += 1;
                } else if let Some(gid) = &gref.id {
                    self.sync.push(Change::PutMembership(Membership {
                        scim_id: scim.to_string(),
                        group_key: key.to_string(),
                        group_id: gid.clone(),
                        user_id: user_id.clone(),
                    }));
                }
            } else if self.scope.covers(scim) {
                self.remove_member(gref, Some(scim), user_id);
            }
        }
        if present_count == wanted_count {
            return;
        }
        for scim in &desired.members {
            let Some(i) = self.scim_ix.get(scim.as_str()).copied() else {
                continue;
            };
            if !wanted.get(i) || present.get(i) {
                continue;
            }
            let Some(user) = self.downstream(scim) else {
                continue; // invited or pending: see users()
            };
            if user.role.is_admin() {
                continue; // reported by users()
            }
            self.add_member(gref, scim, &user.id);
        }
    }

    /// Event path: compare the desired members in scope with the beliefs.
    fn diff_members_believed(&mut self, key: &'a str, desired: &'a DesiredGroup, gref: &GroupRef) {
        let Scope::Users(users) = self.scope else {
            return;
        };
        for scim in users {
            let belief = self
                .input
                .ownership
                .memberships
                .get(&(scim.clone(), key.to_string()));
            let wanted = desired.members.contains(scim);
            match (wanted, belief) {
                (true, None) => {
                    if let Some(user) = self.downstream(scim) {
                        if !user.role.is_admin() {
                            self.add_member(gref, scim, &user.id);
                        }
                    }
                }
                (false, Some(m)) => {
                    let user_id = m.user_id.clone();
                    self.remove_member(gref, Some(scim), &user_id);
                }
                _ => {}
            }
        }
    }

    /// Beliefs that no longer match what was read (full plan only).
    fn sync_memberships(&mut self) {
        if !self.input.actual.complete {
            return;
        }
        // Every belief was confirmed by the read (the usual case): nothing to forget.
        if self.confirmed == self.input.ownership.memberships.len() {
            return;
        }
        for ((scim, key), m) in &self.input.ownership.memberships {
            if self.deleting.contains(key.as_str()) {
                continue; // forgotten when the deletion is recorded
            }
            if !self.touched_memberships.is_empty()
                && self
                    .touched_memberships
                    .contains(&(scim.clone(), key.clone()))
            {
                continue;
            }
            let confirmed = self
                .bound
                .get(key.as_str())
                .and_then(|b| b.actual)
                .and_then(|g| self.input.actual.members.get(&g.id))
                .is_some_and(|members| members.contains(&m.user_id))
                && self
                    .bound
                    .get(key.as_str())
                    .is_some_and(|b| b.desired.members.contains(scim));
            if !confirmed {
                self.sync.push(Change::ForgetMembership {
                    scim_id: scim.clone(),
                    group_key: key.clone(),
                });
            }
        }
    }

    // ----------------------------------------------------------------- plugins

    fn plugins(&mut self) {
        let bound_ids: BTreeSet<String> = self
            .bound
            .values()
            .filter_map(|b| b.gref.id.clone())
            .collect();
        // Overrides of the daemon's other groups (no longer in the rules) go with
        // the group when it is deleted: neither kept nor compared.
        let owned_ids: BTreeSet<&str> = self
            .input
            .ownership
            .groups
            .values()
            .map(|g| g.id.as_str())
            .chain(bound_ids.iter().map(String::as_str))
            .collect();
        let mut wanted: BTreeMap<&str, Vec<PluginOverride>> = BTreeMap::new();
        for b in self.bound.values() {
            for (plugin, pref) in &b.desired.plugins {
                wanted
                    .entry(plugin.as_str())
                    .or_default()
                    .push(PluginOverride {
                        group: b.gref.clone(),
                        preference: preference(*pref),
                    });
            }
        }
        let Some(policies) = &self.input.actual.plugins else {
            if !wanted.is_empty() {
                self.notes.push(
                    "plugin policies cannot be read from this API; group plugin overrides not checked"
                        .into(),
                );
            }
            return;
        };
        for plugin in wanted.keys() {
            if !policies.contains_key(*plugin) {
                self.drift(
                    DriftKind::OrgSetting,
                    format!("plugin:{plugin}"),
                    format!("plugin {plugin} is not in the organization's marketplace"),
                    Some(format!(
                        "{CONSOLE} › Plugins: add {plugin} to the marketplace"
                    )),
                );
            }
        }
        for (plugin_id, policy) in policies {
            let mine: Vec<PluginOverride> =
                wanted.get(plugin_id.as_str()).cloned().unwrap_or_default();
            let keep: Vec<GroupOverride> = policy
                .group_overrides
                .iter()
                .filter(|o| !owned_ids.contains(o.rbac_group_id.as_str()))
                .cloned()
                .collect();
            let have: BTreeSet<(String, Preference)> = policy
                .group_overrides
                .iter()
                .filter(|o| bound_ids.contains(&o.rbac_group_id))
                .map(|o| (o.rbac_group_id.clone(), o.preference))
                .collect();
            let mine_known: BTreeSet<(String, Preference)> = mine
                .iter()
                .filter_map(|o| Some((o.group.id.clone()?, o.preference)))
                .collect();
            let any_new = mine.iter().any(|o| o.group.id.is_none());
            if !any_new && mine_known == have {
                continue;
            }
            let target = format!("plugin:{plugin_id}");
            if self.extended() {
                let desc: Vec<String> = mine
                    .iter()
                    .map(|o| format!("{}={}", o.group.key, pref_name(o.preference)))
                    .collect();
                self.push(
                    ActionKind::SetPluginPolicy,
                    target,
                    format!(
                        "set the group overrides of plugin {plugin_id} to [{}] (keeping {} override(s) of other groups)",
                        desc.join(", "),
                        keep.len()
                    ),
                    Op::SetPluginPolicy {
                        plugin_id: plugin_id.clone(),
                        overrides: mine,
                        keep,
                    },
                );
            } else {
                for o in &mine {
                    let ok = o
                        .group
                        .id
                        .as_ref()
                        .is_some_and(|id| have.contains(&(id.clone(), o.preference)));
                    if !ok {
                        self.drift(
                            DriftKind::TierB,
                            target.clone(),
                            format!(
                                "group {:?} should override plugin {plugin_id} with {}",
                                o.group.name,
                                pref_name(o.preference)
                            ),
                            Some(format!(
                                "{CONSOLE} › Plugins › {plugin_id}: set the override of group {:?} to {}",
                                o.group.name,
                                pref_name(o.preference)
                            )),
                        );
                    }
                }
                for (gid, pref) in &have {
                    if !mine_known.contains(&(gid.clone(), *pref))
                        && !mine.iter().any(|o| o.group.id.as_deref() == Some(gid))
                    {
                        let name = self
                            .input
                            .actual
                            .groups
                            .get(gid)
                            .map(|g| g.name.clone())
                            .unwrap_or_else(|| gid.clone());
                        self.drift(
                            DriftKind::TierB,
                            target.clone(),
                            format!("group {name:?} overrides plugin {plugin_id} but the rules do not"),
                            Some(format!(
                                "{CONSOLE} › Plugins › {plugin_id}: remove the override of group {name:?}"
                            )),
                        );
                    }
                }
            }
        }
    }

    // --------------------------------------------------------------- deletions

    fn deletions(&mut self) {
        let actual = self.input.actual;
        for (key, owned) in &self.input.ownership.groups {
            if self.input.desired.groups.contains_key(key) {
                continue;
            }
            let Some(g) = actual.groups.get(&owned.id).filter(|g| !g.is_scim()) else {
                self.sync.push(Change::ForgetGroup { key: key.clone() });
                continue;
            };
            let Some(members) = actual.members.get(&g.id) else {
                self.notes.push(format!(
                    "members of group {key} (no longer in the rules) were not read; it is not deleted this run"
                ));
                continue;
            };
            // Deleting the group ends every membership in it: one write, and each
            // governed membership counts as a removal for the valve.
            let (mut governed, mut foreign) = (0usize, 0usize);
            for user_id in members {
                match self.classify_member(key, user_id) {
                    Some(_) => governed += 1,
                    None => foreign += 1,
                }
            }
            self.managed_memberships += governed;
            self.deleted_memberships += governed;
            if governed + foreign > 0 {
                self.non_empty_deletions.push(key.clone());
            }
            self.deleting.insert(key.as_str());
            self.push(
                ActionKind::DeleteGroup,
                format!("group:{key}"),
                format!(
                    "delete group {:?} (key {key}), which is no longer in the rules{}",
                    g.name,
                    if governed + foreign > 0 {
                        format!(
                            "; {governed} directory user(s) and {foreign} other member(s) lose it"
                        )
                    } else {
                        " (it is empty)".to_string()
                    }
                ),
                Op::DeleteGroup {
                    group: GroupRef {
                        key: key.clone(),
                        id: Some(g.id.clone()),
                        name: g.name.clone(),
                    },
                    governed_members: governed,
                    foreign_members: foreign,
                },
            );
        }
    }

    // ------------------------------------------------------------------- users

    fn groups_of(&self, scim_id: &str) -> Vec<&'a str> {
        match &self.groups_by_user {
            Some(map) => map.get(scim_id).cloned().unwrap_or_default(),
            None => self
                .input
                .desired
                .groups
                .values()
                .filter(|g| g.members.contains(scim_id))
                .map(|g| g.key.as_str())
                .collect(),
        }
    }

    fn users(&mut self) {
        let desired = self.input.desired;
        let roles_writable = desired.org.org_roles_writable
            && !self
                .input
                .actual
                .org
                .as_ref()
                .and_then(|o| o.provisioning_mode.as_ref())
                .is_some_and(|m| m.idp_manages_roles());
        let invites_allowed = desired.org.invites_allowed
            && self
                .input
                .actual
                .org
                .as_ref()
                .and_then(|o| o.provisioning_mode.as_ref())
                .is_none_or(|m| m.allows_invites());
        let currency = desired.org.billing_currency.clone();
        for (scim, managed) in &desired.managed_users {
            if !self.scope.covers(scim) {
                continue;
            }
            let Some(email) = managed.email.as_deref() else {
                let groups = self.groups_of(scim);
                self.pending.push(Pending {
                    scim_id: scim.clone(),
                    reason: PendingReason::NoEmail,
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                });
                continue;
            };
            let link = self.input.ownership.links.get(scim);
            match self.downstream(scim) {
                Some(user) => {
                    if link.is_none_or(|l| {
                        l.user_id.as_deref() != Some(user.id.as_str())
                            || l.role.as_ref() != Some(&user.role)
                            || l.email != user.email
                            || l.invite_id.is_some()
                    }) {
                        self.sync.push(Change::PutLink(UserLink {
                            scim_id: scim.clone(),
                            email: user.email.clone(),
                            user_id: Some(user.id.clone()),
                            role: Some(user.role.clone()),
                            invite_id: None,
                        }));
                    }
                    self.user_role(scim, user, roles_writable);
                    if !user.role.is_admin() {
                        let groups = if self.materializing() {
                            self.groups_of(scim)
                        } else {
                            Vec::new()
                        };
                        self.user_spend(scim, Some(user), &groups, &currency);
                    }
                }
                None => {
                    let groups = self.groups_of(scim);
                    let email = email.to_lowercase();
                    let invite = self.input.actual.invites.get(&email);
                    if let Some(inv) = invite {
                        if link.is_none_or(|l| l.invite_id.as_deref() != Some(inv.id.as_str())) {
                            self.sync.push(Change::PutLink(UserLink {
                                scim_id: scim.clone(),
                                email: email.clone(),
                                user_id: None,
                                role: None,
                                invite_id: Some(inv.id.clone()),
                            }));
                        }
                        self.pending.push(Pending {
                            scim_id: scim.clone(),
                            reason: PendingReason::InvitePending,
                            groups: groups.iter().map(|g| g.to_string()).collect(),
                        });
                    } else if invites_allowed {
                        let refs: Vec<GroupRef> = groups
                            .iter()
                            .filter_map(|k| self.bound.get(k).map(|b| b.gref.clone()))
                            .collect();
                        let role = if roles_writable {
                            OrgRole::Managed
                        } else {
                            OrgRole::User
                        };
                        let keys: Vec<&str> = refs.iter().map(|g| g.key.as_str()).collect();
                        self.push(
                            ActionKind::InviteUser,
                            format!("user:{scim}"),
                            format!(
                                "invite user {scim} as {role} into groups [{}]",
                                keys.join(", ")
                            ),
                            Op::InviteUser {
                                scim_id: scim.clone(),
                                email: email.clone(),
                                role,
                                groups: refs,
                            },
                        );
                    } else {
                        self.pending.push(Pending {
                            scim_id: scim.clone(),
                            reason: PendingReason::InvitesNotAllowed,
                            groups: groups.iter().map(|g| g.to_string()).collect(),
                        });
                    }
                    self.user_spend(scim, None, &groups, &currency);
                }
            }
        }
        // Overrides the daemon made for users it no longer governs.
        let stale: Vec<&'a OwnedSpend> = self
            .input
            .ownership
            .spend
            .values()
            .filter(|s| {
                self.scope.covers(&s.scim_id) && !desired.managed_users.contains_key(&s.scim_id)
            })
            .collect();
        for s in stale {
            self.delete_owned_spend(s);
        }
        // Links of users who left the directory and have nothing left downstream.
        if self.input.actual.complete {
            let removing: BTreeSet<&str> = self
                .actions
                .iter()
                .filter_map(|a| match &a.op {
                    Op::RemoveMember {
                        scim_id: Some(s), ..
                    }
                    | Op::DeleteUserSpend { scim_id: s, .. } => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            let directory: BTreeSet<&str> =
                self.input.directory.values().map(String::as_str).collect();
            for scim in self.input.ownership.links.keys() {
                if !directory.contains(scim.as_str()) && !removing.contains(scim.as_str()) {
                    self.sync.push(Change::ForgetLink {
                        scim_id: scim.clone(),
                    });
                }
            }
        }
    }

    fn user_role(&mut self, scim: &str, user: &ActualUser, writable: bool) {
        let target = format!("user:{scim}");
        if user.role.is_admin() {
            self.foreign.push(Foreign {
                kind: ForeignKind::AdminMember,
                target,
                id: user.id.clone(),
            });
            return;
        }
        match &user.role {
            OrgRole::Managed => {}
            OrgRole::User if writable => self.push(
                ActionKind::SetUserRole,
                target,
                format!(
                    "set the org role of user {scim} ({}) from user to managed, so the custom roles of their groups apply",
                    user.id
                ),
                Op::SetUserRole {
                    scim_id: scim.to_string(),
                    user_id: user.id.clone(),
                    from: OrgRole::User,
                    to: OrgRole::Managed,
                },
            ),
            OrgRole::User => self.drift(
                DriftKind::NotWritable,
                target,
                format!(
                    "user {scim} ({}) has org role user, so custom roles do not apply; the IdP's group mappings own org roles",
                    user.id
                ),
                Some(format!(
                    "{CONSOLE} › Identity: map the user to the \"Custom roles\" role in the IdP's group mappings"
                )),
            ),
            other => self.drift(
                DriftKind::NotWritable,
                target,
                format!(
                    "user {scim} ({}) has org role {other}, which the API cannot change to managed",
                    user.id
                ),
                Some(format!("{CONSOLE} › Members: set the user's role to Custom roles")),
            ),
        }
    }

    /// The monthly limit materialized for a governed user: the most permissive of
    /// their groups' limits.
    fn materialized_limit(&self, groups: &[&str]) -> Option<SpendLimit> {
        groups
            .iter()
            .filter(|k| !self.blocked.contains(**k))
            .filter_map(|k| self.input.desired.groups.get(*k)?.monthly_spend)
            .max()
    }

    fn user_spend(
        &mut self,
        scim: &str,
        user: Option<&ActualUser>,
        groups: &[&str],
        currency: &str,
    ) {
        let owned = self.input.ownership.spend.get(scim);
        let want = if self.materializing() {
            self.materialized_limit(groups)
        } else {
            None
        };
        let Some(user) = user else {
            return; // not downstream yet: its override follows once it is
        };
        let Some(rows) = &self.input.actual.user_spend else {
            if want.is_some() {
                self.notes.push(format!(
                    "per-user spend overrides cannot be read; user {scim} not checked"
                ));
            }
            return;
        };
        let have = rows.get(&user.id);
        let target = format!("user:{scim}");
        match (want, have) {
            (Some(limit), None) => self.push(
                ActionKind::SetUserSpend,
                target,
                format!(
                    "set a monthly spend override of {} for user {scim} ({}), from their groups' limit",
                    money(limit, currency),
                    user.id
                ),
                Op::SetUserSpend {
                    scim_id: scim.to_string(),
                    user_id: user.id.clone(),
                    limit,
                    currency: currency.to_string(),
                },
            ),
            (Some(limit), Some(row)) if row.limit != limit => {
                if owned.is_some_and(|o| o.spend_limit_id == row.id) {
                    self.push(
                        ActionKind::SetUserSpend,
                        target,
                        format!(
                            "change the monthly spend override of user {scim} ({}) to {}",
                            user.id,
                            money(limit, currency)
                        ),
                        Op::SetUserSpend {
                            scim_id: scim.to_string(),
                            user_id: user.id.clone(),
                            limit,
                            currency: currency.to_string(),
                        },
                    );
                } else {
                    self.drift(
                        DriftKind::ForeignOverride,
                        target,
                        format!(
                            "user {scim} ({}) has a per-user spend override the daemon did not set; it differs from their groups' limit {} and is left alone",
                            user.id,
                            money(limit, currency)
                        ),
                        Some(format!(
                            "{CONSOLE} › Members: remove the user's own spend limit so the group's applies"
                        )),
                    );
                }
            }
            (Some(limit), Some(row)) => {
                if self.input.actual.complete && owned.is_none_or(|o| o.spend_limit_id != row.id) {
                    // Already as wanted; record it only if the daemon made it before.
                    if owned.is_some() {
                        self.sync.push(Change::PutSpend(OwnedSpend {
                            scim_id: scim.to_string(),
                            user_id: user.id.clone(),
                            spend_limit_id: row.id.clone(),
                            amount: match limit {
                                SpendLimit::Amount(n) => Some(n),
                                SpendLimit::Unlimited => None,
                            },
                        }));
                    }
                }
            }
            (None, _) => {
                if let Some(o) = owned {
                    self.delete_owned_spend(o);
                }
            }
        }
    }

    fn delete_owned_spend(&mut self, owned: &OwnedSpend) {
        let exists = match &self.input.actual.user_spend {
            Some(rows) => rows
                .get(&owned.user_id)
                .is_some_and(|r| r.id == owned.spend_limit_id),
            None => true,
        };
        if !exists {
            if self.input.actual.complete {
                self.sync.push(Change::ForgetSpend {
                    scim_id: owned.scim_id.clone(),
                });
            }
            return;
        }
        self.push(
            ActionKind::DeleteUserSpend,
            format!("user:{}", owned.scim_id),
            format!(
                "delete the spend override the daemon set for user {} ({}), who is no longer in a group with a limit",
                owned.scim_id, owned.user_id
            ),
            Op::DeleteUserSpend {
                scim_id: owned.scim_id.clone(),
                user_id: owned.user_id.clone(),
                spend_limit_id: owned.spend_limit_id.clone(),
            },
        );
    }

    // ------------------------------------------------------------------ finish

    fn finish(mut self) -> Plan {
        self.actions.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.drift
            .sort_by(|a, b| (a.kind, &a.target, &a.detail).cmp(&(b.kind, &b.target, &b.detail)));
        self.foreign
            .sort_by(|a, b| (&a.target, a.kind, &a.id).cmp(&(&b.target, b.kind, &b.id)));
        self.foreign.dedup();
        self.pending.sort_by(|a, b| a.scim_id.cmp(&b.scim_id));
        self.notes.sort();
        self.notes.dedup();
        let managed = match self.scope {
            Scope::Full => self.managed_memberships,
            Scope::Users(_) => self.input.ownership.membership_count,
        };
        let removals = self
            .actions
            .iter()
            .filter(|a| a.kind == ActionKind::RemoveMember)
            .count()
            + self.deleted_memberships;
        let ratio = if removals == 0 {
            0.0
        } else if managed == 0 {
            1.0
        } else {
            removals as f64 / managed as f64
        };
        let max = self.input.options.max_removal_ratio;
        let too_many = removals > 0 && ratio > max;
        let reason = match (too_many, self.non_empty_deletions.is_empty()) {
            (false, true) => None,
            (true, _) => Some(format!(
                "the plan removes {removals} of {managed} managed memberships ({:.1}%), more than the limit of {:.1}% (reconcile.max_removal_ratio)",
                ratio * 100.0,
                max * 100.0
            )),
            (false, false) => Some(format!(
                "the plan deletes group(s) [{}] that still have members",
                self.non_empty_deletions.join(", ")
            )),
        };
        let would_refuse = reason.is_some();
        let force = self.input.options.force;
        let valve = Valve {
            managed_memberships: managed,
            removals,
            ratio,
            max_removal_ratio: max,
            non_empty_deletions: self.non_empty_deletions,
            refused: would_refuse && !force,
            forced: would_refuse && force,
            reason,
        };
        Plan {
            actions: self.actions,
            drift: self.drift,
            foreign: self.foreign,
            pending: self.pending,
            notes: self.notes,
            valve,
            sync: self.sync,
        }
    }
}

fn pref_name(p: Preference) -> &'static str {
    match p {
        Preference::NotAvailable => "not_available",
        Preference::Available => "available",
        Preference::InstalledByDefault => "installed_by_default",
        Preference::Required => "required",
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
