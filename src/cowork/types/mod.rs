//! Wire types of the Cowork admin API: Anthropic's Admin API objects with their exact
//! field names (tier A) and the extension objects of our contract (tier B, marked
//! below). The client decodes them and the simulator encodes them, so both sides agree
//! by construction. Imports nothing of ours.
//!
//! Anthropic's enumerations "grow over time", so every enumeration that comes from
//! Anthropic is open: an unknown value is kept as `Other(String)` instead of failing
//! the whole page. Enumerations that only exist in our extension tier are closed.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Declares an open string enumeration: known values as variants, anything else kept
/// verbatim in `Other`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know; kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $text => Self::$variant, )+
                    _ => Self::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// A member's organization role. Only `user` and `managed` can be assigned through
    /// the API; the admin roles are outside automation (R2).
    OrgRole {
        /// Built-in member role; custom roles are ignored.
        User = "user",
        /// "Custom roles": permissions come from the roles attached to the member's groups.
        Managed = "managed",
        /// Organization owner.
        Owner = "owner",
        /// The one primary owner.
        PrimaryOwner = "primary_owner",
        /// Membership administrator.
        MembershipAdmin = "membership_admin",
        /// Console admin (other org types).
        Admin = "admin",
        /// Console billing role (other org types).
        Billing = "billing",
        /// Console developer role (other org types).
        Developer = "developer",
        /// Console Claude Code user (other org types).
        ClaudeCodeUser = "claude_code_user",
    }
}

impl OrgRole {
    /// Whether the API refuses to assign this role or to change or remove a member who
    /// holds it (R2).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            OrgRole::Owner | OrgRole::PrimaryOwner | OrgRole::MembershipAdmin | OrgRole::Admin
        )
    }

    /// Whether the API can assign this role (`user` or `managed`).
    pub fn is_assignable(&self) -> bool {
        matches!(self, OrgRole::User | OrgRole::Managed)
    }
}

open_enum! {
    /// How a group was created.
    SourceType {
        /// Created in the admin console or through the API.
        Direct = "direct",
        /// Provisioned by the identity provider; read-only through the API (R4).
        Scim = "scim",
    }
}

open_enum! {
    /// The state of an invite.
    InviteStatus {
        /// Waiting for the person to accept.
        Pending = "pending",
        /// Accepted: the person is a member.
        Accepted = "accepted",
        /// Not accepted in time.
        Expired = "expired",
        /// Withdrawn.
        Deleted = "deleted",
    }
}

open_enum! {
    /// The organization's plan (tier B field of `GET /me`).
    Plan {
        /// Claude Enterprise: groups, custom roles, group spend limits, SCIM.
        Enterprise = "enterprise",
        /// Claude Team: none of the RBAC features (R1).
        Team = "team",
    }
}

open_enum! {
    /// How members join the organization (tier B field of `GET /me`; values from the
    /// Compliance API's effective settings plus `manual`).
    ProvisioningMode {
        /// Invite only (the default).
        Manual = "manual",
        /// SSO login only.
        LoginOnly = "login_only",
        /// Just-in-time provisioning.
        JitPermissive = "jit_permissive",
        /// Just-in-time provisioning with IdP group mappings (roles managed by the IdP).
        JitAdvanced = "jit_advanced",
        /// SCIM directory sync.
        ScimPermissive = "scim_permissive",
        /// SCIM directory sync with IdP group mappings (roles managed by the IdP).
        ScimAdvanced = "scim_advanced",
    }
}

impl ProvisioningMode {
    /// Whether `POST /invites` is allowed (not in JIT or SCIM modes; R15).
    pub fn allows_invites(&self) -> bool {
        matches!(self, ProvisioningMode::Manual | ProvisioningMode::LoginOnly)
    }

    /// Whether the IdP manages org roles, so role updates are refused (R3).
    pub fn idp_manages_roles(&self) -> bool {
        matches!(
            self,
            ProvisioningMode::JitAdvanced | ProvisioningMode::ScimAdvanced
        )
    }

    /// Whether SCIM manages membership, so removing members is refused (R15).
    pub fn scim_manages_membership(&self) -> bool {
        matches!(
            self,
            ProvisioningMode::ScimPermissive | ProvisioningMode::ScimAdvanced
        )
    }
}

open_enum! {
    /// A spend-limit period. Only `monthly` is supported today (R12).
    Period {
        /// Resets daily.
        Daily = "daily",
        /// Resets weekly.
        Weekly = "weekly",
        /// Resets at 00:00 UTC on the 1st.
        Monthly = "monthly",
    }
}

/// Tier B: a plugin preference. Ordered from least to most permissive, so `max` is
/// the product's "most permissive wins" (§3.5 step 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    /// Hidden.
    NotAvailable,
    /// Members may install it.
    Available,
    /// Pre-installed; members may remove it.
    InstalledByDefault,
    /// Always installed.
    Required,
}

/// Tier B: how a connector tool may be used. Ordered from least to most permissive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolMode {
    /// The tool cannot be used.
    Deny,
    /// Each use needs the member's approval.
    NeedsApproval,
    /// Used without asking.
    AlwaysAllow,
}

/// Tier B: a role's access to one connector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorAccess {
    /// No access to the connector.
    Deny,
    /// Access, with the tool modes given.
    #[default]
    Allow,
}

/// Tier B: how a connector authenticates for members of the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Each member signs in.
    Interactive,
    /// The organization's credentials.
    Managed,
}

/// Tier B: an admin-panel permission level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminLevel {
    /// No access.
    None,
    /// Can view.
    View,
    /// Can manage.
    Manage,
}

/// Tier B: a blanket capability grant (`capabilities.all`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Blanket {
    /// No blanket grant (`false` on the wire).
    #[default]
    None,
    /// `"all"`: every product feature (`capability_access_all`).
    All,
    /// `"all_ga"`: the generally available features (`capability_access_all_ga`).
    AllGa,
}

impl Blanket {
    fn is_none(&self) -> bool {
        *self == Blanket::None
    }
}

impl Serialize for Blanket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Blanket::None => s.serialize_bool(false),
            Blanket::All => s.serialize_str("all"),
            Blanket::AllGa => s.serialize_str("all_ga"),
        }
    }
}

impl<'de> Deserialize<'de> for Blanket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) | Value::Null => Ok(Blanket::None),
            Value::String(s) if s == "all" => Ok(Blanket::All),
            Value::String(s) if s == "all_ga" => Ok(Blanket::AllGa),
            _ => Err(serde::de::Error::custom(
                "capabilities.all must be false, \"all\" or \"all_ga\"",
            )),
        }
    }
}

// ---------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------

/// The error envelope of every non-2xx answer:
/// `{"type":"error","error":{...},"request_id":"req_..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Always `"error"`.
    #[serde(rename = "type", default = "error_tag")]
    pub kind: String,
    /// The error itself.
    pub error: ErrorDetail,
    /// Equals the `request-id` response header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn error_tag() -> String {
    "error".to_owned()
}

/// The `error` object of an [`ErrorEnvelope`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `not_found_error`, ... (an open set).
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Tier B: a machine-readable reason, e.g. `already_member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Tier B: structured details, e.g. `{"existing_id": "rbac_group_01..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// A page of an ID-paginated list (users, invites).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdPage<T> {
    /// The items.
    pub data: Vec<T>,
    /// Id of the first item, to pass as `before_id` for the previous page.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last item, to pass as `after_id` for the next page.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Whether more items follow.
    #[serde(default)]
    pub has_more: bool,
}

/// A page of a cursor-paginated list (groups, members, roles, permissions, spend,
/// plugin policies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CursorPage<T> {
    /// The items.
    pub data: Vec<T>,
    /// Whether more items follow (absent on some endpoints, e.g. effective spend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
    /// The cursor to pass as `page`, `null` at the end.
    #[serde(default)]
    pub next_page: Option<String>,
}

// ---------------------------------------------------------------------------------
// Organization (E1)
// ---------------------------------------------------------------------------------

/// `GET /v1/organizations/me`. Anthropic documents `{id, name, type}`; the rest is
/// tier B and absent against the real API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "organization")]
pub struct Organization {
    /// Organization UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tier B: the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Tier B: the provisioning mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_mode: Option<ProvisioningMode>,
    /// Tier B: the org-level settings the daemon validates against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<OrgSettings>,
    /// Tier B: what this server can do; all `false` against the real API.
    #[serde(default)]
    pub capabilities: ApiCapabilities,
}

/// Tier B: which extension endpoints the server offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCapabilities {
    /// Role writes, role attachment, group member replacement, effective access.
    #[serde(default)]
    pub extended_api: bool,
    /// `GET/PUT /plugin_policies`.
    #[serde(default)]
    pub plugin_policies: bool,
    /// `POST /spend_limits` with `scope.type: "rbac_group"`.
    #[serde(default)]
    pub group_spend_limits_writable: bool,
}

/// Tier B: the organization's settings (read-only to the daemon).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// Cowork on at org level.
    pub cowork_enabled: bool,
    /// Claude Code on at org level.
    pub claude_code_enabled: bool,
    /// Chat on at org level.
    pub chat_enabled: bool,
    /// Web search on at org level.
    pub web_search_enabled: bool,
    /// Code execution on at org level.
    pub code_execution_enabled: bool,
    /// Skills on at org level.
    pub skills_enabled: bool,
    /// Members may create skills.
    pub user_skill_creation_enabled: bool,
    /// Members may share skills.
    pub skill_sharing_enabled: bool,
    /// Skills may be shared org-wide.
    pub org_wide_skill_sharing_enabled: bool,
    /// Connector tools default to "always allow" (otherwise capped at "needs approval").
    pub connector_tools_default_always_allow: bool,
    /// Usage credits on (prerequisite of spend limits, R19).
    pub usage_credits_enabled: bool,
    /// Always false on Team and Enterprise (R11).
    pub computer_use_available: bool,
    /// ISO 4217 code; spend amounts are minor units of it.
    pub billing_currency: String,
    /// Connectors added at org level.
    #[serde(default)]
    pub connectors: Vec<OrgConnector>,
    /// Plugins in the org marketplace.
    #[serde(default)]
    pub plugins: Vec<OrgPlugin>,
}

impl OrgSettings {
    /// The org-level switch for a product feature, if the org controls it. A feature
    /// without a switch is "not controllable by this organization's administrators",
    /// which is not the same as off.
    pub fn feature_switch(&self, feature: &str) -> Option<bool> {
        match feature {
            "cowork" => Some(self.cowork_enabled),
            "claude_code" => Some(self.claude_code_enabled),
            "chat" => Some(self.chat_enabled),
            "web_search" => Some(self.web_search_enabled),
            "code_execution" => Some(self.code_execution_enabled),
            "computer_use" => Some(self.computer_use_available),
            _ => None,
        }
    }

    /// The connector with this id, if added at org level.
    pub fn connector(&self, id: &str) -> Option<&OrgConnector> {
        self.connectors.iter().find(|c| c.id == id)
    }
}

/// Tier B: a connector added at org level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgConnector {
    /// `mcpsrv_...`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Enabled at org level.
    pub enabled: bool,
    /// Published tool names.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// Tier B: a plugin in the org marketplace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgPlugin {
    /// Plugin id, e.g. `finance-close`.
    pub id: String,
    /// The marketplace it comes from.
    pub marketplace_id: String,
    /// Display name.
    pub name: String,
    /// The org-wide preference.
    pub org_preference: Preference,
}

// ---------------------------------------------------------------------------------
// Members and invites (E2–E4)
// ---------------------------------------------------------------------------------

/// A member of the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "user")]
pub struct User {
    /// `user_01...`.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Org role.
    pub role: OrgRole,
    /// When the member joined.
    pub added_at: DateTime<Utc>,
    /// Tier B: the member's seat tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_tier: Option<String>,
}

/// `POST /v1/organizations/users/{id}` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRoleUpdate {
    /// `user` or `managed`.
    pub role: OrgRole,
}

/// `DELETE /v1/organizations/users/{id}` answer and the other `*_deleted` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    /// `user_deleted`, `rbac_group_deleted`, `spend_limit_deleted`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The id of what was deleted.
    pub id: String,
}

/// An invitation to join.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "invite")]
pub struct Invite {
    /// `invite_01...`.
    pub id: String,
    /// Invitee's email.
    pub email: String,
    /// Org role on acceptance.
    pub role: OrgRole,
    /// `pending`, `accepted`, `expired`, `deleted`.
    pub status: InviteStatus,
    /// When it was created.
    pub invited_at: DateTime<Utc>,
    /// When it expires (server-assigned).
    pub expires_at: DateTime<Utc>,
    /// Groups the invitee joins on acceptance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rbac_group_ids: Vec<String>,
}

/// `POST /v1/organizations/invites` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteRequest {
    /// Invitee's email.
    pub email: String,
    /// `user` or `managed`.
    pub role: OrgRole,
    /// Groups to join on acceptance (needs `write:rbac_groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rbac_group_ids: Vec<String>,
}

// ---------------------------------------------------------------------------------
// Groups (E5–E10)
// ---------------------------------------------------------------------------------

/// An RBAC group. On the wire the attached roles are `role_ids`, with the older
/// `roles` beside them (same values); both are written, `role_ids` is read first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Group", into = "wire::Group")]
pub struct RbacGroup {
    /// `rbac_group_01...`.
    pub id: String,
    /// Display name (1–255 chars, not unique).
    pub name: String,
    /// `direct` or `scim`.
    pub source_type: SourceType,
    /// Attached role ids; `null` means "temporarily unknown", never "none".
    pub roles: Option<Vec<String>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Description (documented on the Compliance variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tier B: the caller's stable key, unique per org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Tier B: who manages the group (label for humans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// Tier B: version for `If-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl RbacGroup {
    /// Whether the IdP owns this group (read-only through the API, R4).
    pub fn is_scim(&self) -> bool {
        self.source_type == SourceType::Scim
    }
}

/// `POST /v1/organizations/rbac_groups` body. Against the real API only `name` is
/// sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewGroup {
    /// Display name.
    pub name: String,
    /// Tier B: description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tier B: stable key; a second create with the same key answers 409 with the
    /// existing id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Tier B: label for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// `POST /v1/organizations/rbac_groups/{id}` body. Against the real API only `name`
/// is writable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupUpdate {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tier B: new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A member of a group. On the wire the group is `rbac_group_id`, with the
/// deprecated `group_id` beside it; both are written, `rbac_group_id` is read first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Member", into = "wire::Member")]
pub struct RbacGroupMember {
    /// The group.
    pub group_id: String,
    /// The member.
    pub user_id: String,
    /// The member's email.
    #[serde(default)]
    pub email: String,
    /// When the member was added to the group.
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/organizations/rbac_groups/{id}/members` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddMember {
    /// The member to add.
    pub user_id: String,
}

/// `DELETE /v1/organizations/rbac_groups/{id}/members/{user_id}` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rbac_group_member_deleted")]
pub struct MemberDeleted {
    /// The group.
    pub group_id: String,
    /// The former member.
    pub user_id: String,
}

/// Tier B (E9): `PUT /rbac_groups/{id}/members` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetMembers {
    /// The complete member list (at most 10,000).
    pub user_ids: Vec<String>,
}

/// Tier B (E9): what a member replacement changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMembersResult {
    /// Users added.
    pub added: Vec<String>,
    /// Users removed.
    pub removed: Vec<String>,
    /// How many were already members.
    pub unchanged: u64,
}

/// Tier B (E10): `PUT /rbac_groups/{id}/roles` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetRoles {
    /// The complete list of attached roles.
    pub role_ids: Vec<String>,
}

// ---------------------------------------------------------------------------------
// Roles (E11–E12)
// ---------------------------------------------------------------------------------

/// A role. Anthropic documents `{id, display_name, name (deprecated), source,
/// created_at, updated_at}`; both names are written, `display_name` is read first.
/// Built-in roles appear in the list too (`source.type: "built_in"`): never ours.
/// The typed definition fields are tier B and absent against the real API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Role", into = "wire::Role")]
pub struct RbacRole {
    /// `rbac_role_01...`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Built-in or custom; `None` from servers that predate the field (custom then).
    pub source: Option<RoleSource>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Description (documented on the Compliance variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tier B: the caller's stable key, unique per org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Tier B: version for `If-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Tier B: default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Tier B: feature grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Tier B: connector grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectors: Option<ConnectorPolicy>,
    /// Tier B: admin-panel permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_permissions: Option<BTreeMap<String, AdminLevel>>,
}

impl RbacRole {
    /// Whether the product made this role (never updated, deleted or adopted).
    pub fn is_built_in(&self) -> bool {
        matches!(&self.source, Some(RoleSource { kind }) if kind != "custom")
    }

    /// The typed definition, if the server exposes it (tier B).
    pub fn spec(&self) -> Option<RoleSpec> {
        Some(RoleSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            external_id: self.external_id.clone(),
            default_model: self.default_model.clone(),
            capabilities: self.capabilities.clone()?,
            connectors: self.connectors.clone().unwrap_or_default(),
            admin_permissions: self.admin_permissions.clone().unwrap_or_default(),
        })
    }
}

/// Tier B (E12): the typed body of `POST /rbac_roles` and `POST /rbac_roles/{id}`
/// (§3.2). Each field maps onto documented permission rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleSpec {
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Stable key, unique per org; a second create answers 409 with the existing id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Feature grants.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Connector grants.
    #[serde(default)]
    pub connectors: ConnectorPolicy,
    /// Admin-panel permissions by area (`billing`, `user_management`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admin_permissions: BTreeMap<String, AdminLevel>,
}

/// Tier B: a role's feature grants: a blanket grant plus an open map of feature name
/// to granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Blanket grant (`false`, `"all"`, `"all_ga"`).
    #[serde(default, skip_serializing_if = "Blanket::is_none")]
    pub all: Blanket,
    /// Feature name (`chat`, `cowork`, `claude_code`, ...) to granted. An open set.
    #[serde(flatten)]
    pub features: BTreeMap<String, bool>,
}

impl Capabilities {
    /// The features explicitly granted.
    pub fn granted(&self) -> impl Iterator<Item = &str> {
        self.features
            .iter()
            .filter(|(_, on)| **on)
            .map(|(f, _)| f.as_str())
    }
}

/// Tier B: connector grants, either per connector or for all connectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConnectorPolicy {
    /// One entry per connector; connectors not listed are denied.
    List(Vec<ConnectorGrant>),
    /// Every connector the org has added.
    All {
        /// The grant applied to all connectors.
        all_connectors: AllConnectors,
    },
}

impl Default for ConnectorPolicy {
    fn default() -> Self {
        ConnectorPolicy::List(Vec::new())
    }
}

/// Tier B: the grant of `{"all_connectors": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllConnectors {
    /// Mode of every tool.
    pub default_tool_mode: ToolMode,
}

/// Tier B: a role's grant on one connector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorGrant {
    /// `mcpsrv_...`; must be added at org level (R9).
    pub connector_id: String,
    /// Allow or deny the connector.
    #[serde(default)]
    pub access: ConnectorAccess,
    /// Mode of tools not listed in `tools`.
    #[serde(default = "default_tool_mode")]
    pub default_tool_mode: ToolMode,
    /// Per-tool modes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolGrant>,
    /// OAuth scopes the role may receive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oauth_scopes: Vec<String>,
    /// Authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
}

fn default_tool_mode() -> ToolMode {
    ToolMode::NeedsApproval
}

/// Tier B: one tool's mode in a [`ConnectorGrant`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolGrant {
    /// Published tool name.
    pub tool_name: String,
    /// Its mode.
    pub mode: ToolMode,
}

/// One permission row of a role (`GET /rbac_roles/{id}/permissions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rbac_role_permission")]
pub struct RolePermission {
    /// What the permission applies to.
    pub resource: PermissionResource,
    /// The action (an open set: `chat`, `permission_*`, `use`, `always_allow`,
    /// `grant`, `interactive`, `managed`, `capability_access_all[_ga]`, ...).
    pub action: String,
}

/// The resource of a [`RolePermission`] (a tagged union).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PermissionResource {
    /// The organization: the action is a feature, a `permission_*` or a blanket grant.
    Organization {
        /// Organization UUID.
        organization_id: String,
    },
    /// One tool of a connector.
    ConnectorTool {
        /// `mcpsrv_...`.
        connector_id: String,
        /// Tool name (possibly server-encoded).
        tool_name: String,
    },
    /// One OAuth scope of a connector.
    ConnectorScope {
        /// `mcpsrv_...`.
        connector_id: String,
        /// Scope (possibly server-encoded).
        scope: String,
    },
    /// A whole connector.
    Connector {
        /// `mcpsrv_...`.
        connector_id: String,
    },
    /// Every connector.
    AllConnectors,
    /// A resource type this version does not know.
    #[serde(other)]
    Unknown,
}

// ---------------------------------------------------------------------------------
// Spend limits (E13–E14)
// ---------------------------------------------------------------------------------

/// What a spend limit applies to (a tagged union; an open set).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpendScope {
    /// One member (the only scope the real API writes).
    User {
        /// `user_01...`.
        user_id: String,
    },
    /// A seat tier's default.
    SeatTier {
        /// The seat tier.
        seat_tier: String,
    },
    /// A group's per-member default.
    RbacGroup {
        /// `rbac_group_01...`.
        rbac_group_id: String,
    },
    /// An organization service.
    OrganizationService {
        /// The service.
        service: String,
    },
    /// The organization default.
    Organization,
    /// A scope type this version does not know.
    #[serde(other)]
    Unknown,
}

impl SpendScope {
    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            SpendScope::User { .. } => "user",
            SpendScope::SeatTier { .. } => "seat_tier",
            SpendScope::RbacGroup { .. } => "rbac_group",
            SpendScope::OrganizationService { .. } => "organization_service",
            SpendScope::Organization => "organization",
            SpendScope::Unknown => "unknown",
        }
    }
}

/// A configured spend limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "spend_limit")]
pub struct SpendLimit {
    /// `spl_01...`.
    pub id: String,
    /// What it applies to.
    pub scope: SpendScope,
    /// Period (`monthly`).
    pub period: Period,
    /// Minor units of `currency` as a decimal string; `null` = explicitly unlimited.
    pub amount: Option<String>,
    /// ISO 4217 code of the org's billing currency.
    pub currency: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl SpendLimit {
    /// The amount in minor units (`None` = unlimited or unparsable).
    pub fn amount_minor(&self) -> Option<u64> {
        self.amount.as_deref().and_then(|a| a.parse().ok())
    }
}

/// `POST /v1/organizations/spend_limits` body: an upsert on (scope, period).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendLimitRequest {
    /// What it applies to (`user` on the real API; others are tier B).
    pub scope: SpendScope,
    /// Period (defaults to `monthly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Minor units as a decimal string; `null` = explicitly unlimited.
    pub amount: Option<String>,
    /// Tier B: the currency the caller meant; must equal the billing currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// One row of `GET /spend_limits/effective`: a member's effective limit for a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// The member.
    pub actor: SpendActor,
    /// Effective limit in minor units; `null` = no limit for this period.
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period.
    pub period: Period,
    /// Spend so far this period (may be fractional).
    pub period_to_date_spend: String,
    /// The member's scope.
    pub scope: SpendScope,
    /// The scope the limit was inherited from.
    pub source: SpendScope,
    /// The limit row that applies.
    #[serde(default)]
    pub spend_limit_id: Option<String>,
}

/// The `actor` of a [`SpendSummary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "user_actor")]
pub struct SpendActor {
    /// `user_01...`.
    pub user_id: String,
    /// Display name (null when unavailable).
    #[serde(default)]
    pub name: Option<String>,
    /// Email (null when unavailable).
    #[serde(default)]
    pub email_address: Option<String>,
    /// The account was deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// Filter of `GET /spend_limits` (the beta spend-limit reads, or tier B E14).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendLimitFilter {
    /// Only rows of this scope type (`user`, `rbac_group`, `seat_tier`, `organization`).
    pub scope_type: Option<String>,
    /// Only rows of this group.
    pub rbac_group_id: Option<String>,
}

// ---------------------------------------------------------------------------------
// Plugin policies (E16)
// ---------------------------------------------------------------------------------

/// Tier B: a plugin's org preference and per-group overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "plugin_policy")]
pub struct PluginPolicy {
    /// Plugin id.
    pub plugin_id: String,
    /// Marketplace id.
    pub marketplace_id: String,
    /// Org-wide preference.
    pub org_preference: Preference,
    /// Per-group overrides.
    #[serde(default)]
    pub group_overrides: Vec<GroupOverride>,
}

/// Tier B: one group's override of a plugin preference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupOverride {
    /// The group.
    pub rbac_group_id: String,
    /// Its preference.
    pub preference: Preference,
}

/// Tier B: `PUT /plugin_policies/{plugin_id}` body; replaces all overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginPolicyUpdate {
    /// New org preference (unchanged when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_preference: Option<Preference>,
    /// The complete override list.
    #[serde(default)]
    pub group_overrides: Vec<GroupOverride>,
}

// ---------------------------------------------------------------------------------
// Effective access (E17)
// ---------------------------------------------------------------------------------

/// Tier B (E17): a member's resolved access (§3.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "effective_access")]
pub struct EffectiveAccess {
    /// The member.
    pub user_id: String,
    /// Org role.
    pub role: OrgRole,
    /// Whether custom roles govern this member (`role == managed`).
    pub custom_roles_apply: bool,
    /// The member's groups.
    pub groups: Vec<String>,
    /// The roles that apply (empty unless `custom_roles_apply`).
    pub roles: Vec<String>,
    /// Feature → granted.
    pub capabilities: BTreeMap<String, bool>,
    /// Per connector, per tool mode.
    pub connectors: Vec<EffectiveConnector>,
    /// Per plugin, the resolved preference.
    pub plugins: Vec<EffectivePlugin>,
    /// The monthly spend limit that applies, if any.
    #[serde(default)]
    pub spend: Option<EffectiveSpend>,
    /// Explanations and warnings (`role_not_managed`, `multi_group_spend_conflict`, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Until when recent changes may not have reached the member yet.
    #[serde(default)]
    pub pending_until: Option<DateTime<Utc>>,
}

/// Tier B: one connector in an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveConnector {
    /// `mcpsrv_...`.
    pub connector_id: String,
    /// Tool name → mode.
    pub tools: BTreeMap<String, ToolMode>,
}

/// Tier B: one plugin in an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePlugin {
    /// Plugin id.
    pub plugin_id: String,
    /// Resolved preference.
    pub preference: Preference,
    /// `org` or the group id whose override won.
    pub source: String,
    /// The member's groups disagree on this plugin.
    #[serde(default)]
    pub conflicting: bool,
}

/// Tier B: the spend part of an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveSpend {
    /// Minor units; `null` = unlimited.
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period.
    pub period: Period,
    /// Where the limit comes from.
    pub source: SpendScope,
}

/// Where a role comes from: `{"type": "built_in" | "custom"}` (an open set: anything
/// but `custom` is treated as built in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSource {
    /// `built_in` or `custom`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl RoleSource {
    /// `{"type": "built_in"}`.
    pub fn built_in() -> Self {
        Self {
            kind: "built_in".into(),
        }
    }

    /// `{"type": "custom"}`.
    pub fn custom() -> Self {
        Self {
            kind: "custom".into(),
        }
    }
}

mod wire;

#[cfg(test)]
mod tests;
