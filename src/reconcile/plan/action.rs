//! What a plan writes: [`ActionKind`] (in plan order), the [`Op`] payloads, and
//! [`Action`] with its fingerprint (the basis of its idempotency key).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cowork::{self, GroupOverride, OrgRole, Preference};
use crate::rules::SpendLimit;

/// The kinds of downstream write, in the order a plan applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Set a plugin's org-wide installation setting (the beta Plugins API: tier A).
    SetOrgPluginSetting,
    /// Set or delete one group's installation setting of a plugin (the beta Plugins
    /// API: tier A).
    SetPluginSetting,
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
    /// Withdraw a pending invite of someone the IdP deactivated or deleted.
    WithdrawInvite,
    /// Remove someone the IdP deactivated or deleted from the organization (frees the
    /// seat).
    RemoveFromOrg,
}

impl ActionKind {
    /// Every kind, in plan order.
    pub const ALL: [ActionKind; 19] = [
        ActionKind::CreateRole,
        ActionKind::UpdateRole,
        ActionKind::CreateGroup,
        ActionKind::UpdateGroup,
        ActionKind::SetGroupRoles,
        ActionKind::SetGroupSpend,
        ActionKind::ClearGroupSpend,
        ActionKind::SetPluginPolicy,
        ActionKind::SetOrgPluginSetting,
        ActionKind::SetPluginSetting,
        ActionKind::SetUserRole,
        ActionKind::InviteUser,
        ActionKind::AddMember,
        ActionKind::SetUserSpend,
        ActionKind::RemoveMember,
        ActionKind::DeleteUserSpend,
        ActionKind::DeleteGroup,
        ActionKind::WithdrawInvite,
        ActionKind::RemoveFromOrg,
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
            ActionKind::SetOrgPluginSetting => "set_org_plugin_setting",
            ActionKind::SetPluginSetting => "set_plugin_setting",
            ActionKind::SetUserRole => "set_user_role",
            ActionKind::InviteUser => "invite_user",
            ActionKind::AddMember => "add_member",
            ActionKind::SetUserSpend => "set_user_spend",
            ActionKind::RemoveMember => "remove_member",
            ActionKind::DeleteUserSpend => "delete_user_spend",
            ActionKind::DeleteGroup => "delete_group",
            ActionKind::WithdrawInvite => "withdraw_invite",
            ActionKind::RemoveFromOrg => "remove_from_org",
        }
    }

    /// Whether it takes access away (what the safety valve counts and holds).
    pub fn is_removal(self) -> bool {
        matches!(
            self,
            ActionKind::RemoveMember
                | ActionKind::DeleteGroup
                | ActionKind::WithdrawInvite
                | ActionKind::RemoveFromOrg
        )
    }

    /// Whether it removes someone from the organization (the valve counts these
    /// against governed members; the others against managed memberships).
    pub fn is_org_removal(self) -> bool {
        matches!(self, ActionKind::WithdrawInvite | ActionKind::RemoveFromOrg)
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

/// Why a removal is planned: the IdP change or the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "because", rename_all = "snake_case")]
pub enum Because {
    /// The IdP deactivated the user (`active: false`).
    Deactivated,
    /// The IdP deleted the user.
    Deleted,
    /// The user is active, but no rule that fills this group matches them any more.
    NoLongerMatched {
        /// The rules that fill the group (none match the user now).
        rules: Vec<String>,
    },
    /// The user is in a group of the daemon's that no rule puts them in (added by hand,
    /// or the group left the rules).
    NotInRules,
    /// Another directory user claims the same downstream member and was matched.
    IdentityCollision {
        /// The directory user who was matched.
        matched: String,
    },
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
    /// [`ActionKind::SetOrgPluginSetting`].
    SetOrgPluginSetting {
        /// The plugin's name, as the rules write it.
        plugin: String,
        /// `plugin_01...`.
        plugin_id: String,
        /// The org-wide preference to set.
        preference: Preference,
    },
    /// [`ActionKind::SetPluginSetting`].
    SetPluginSetting {
        /// The plugin's name, as the rules write it.
        plugin: String,
        /// `plugin_01...`.
        plugin_id: String,
        /// The group.
        group: GroupRef,
        /// The preference to set; `None` deletes the group's setting.
        preference: Option<Preference>,
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
        /// Why (for the audit trail; not part of the write).
        #[serde(skip_serializing_if = "Option::is_none")]
        because: Option<Because>,
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
    /// [`ActionKind::WithdrawInvite`].
    WithdrawInvite {
        /// Directory user.
        scim_id: String,
        /// The invite.
        invite_id: String,
        /// Why.
        because: Because,
    },
    /// [`ActionKind::RemoveFromOrg`].
    RemoveFromOrg {
        /// Directory user.
        scim_id: String,
        /// Downstream member.
        user_id: String,
        /// Why.
        because: Because,
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
    pub(super) fn sort_key(&self) -> (ActionKind, &str, String) {
        let tie = match &self.op {
            Op::AddMember { user_id, .. } | Op::RemoveMember { user_id, .. } => user_id.clone(),
            _ => String::new(),
        };
        (self.kind, self.target.as_str(), tie)
    }

    /// The directory user the action concerns, when it concerns one.
    pub fn scim_id(&self) -> Option<&str> {
        match &self.op {
            Op::SetUserRole { scim_id, .. }
            | Op::InviteUser { scim_id, .. }
            | Op::AddMember { scim_id, .. }
            | Op::SetUserSpend { scim_id, .. }
            | Op::DeleteUserSpend { scim_id, .. }
            | Op::WithdrawInvite { scim_id, .. }
            | Op::RemoveFromOrg { scim_id, .. } => Some(scim_id),
            Op::RemoveMember { scim_id, .. } => scim_id.as_deref(),
            _ => None,
        }
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
            Op::SetOrgPluginSetting {
                plugin_id,
                preference,
                ..
            } => write!(f, "|{plugin_id}|organization|{preference:?}"),
            Op::SetPluginSetting {
                plugin_id,
                group,
                preference,
                ..
            } => write!(f, "|{plugin_id}|{}|{preference:?}", group.key),
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
            Op::WithdrawInvite { invite_id, .. } => write!(f, "|{invite_id}"),
            Op::RemoveFromOrg { user_id, .. } => write!(f, "|{user_id}"),
        };
        f
    }
}
