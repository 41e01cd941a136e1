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

mod access;
mod groups;
mod members;
mod org;
mod plugin_policies;
mod roles;
mod spend;
mod wire;

pub use access::*;
pub use groups::*;
pub use members::*;
pub use org::*;
pub use plugin_policies::*;
pub use roles::*;
pub use spend::*;

#[cfg(test)]
mod tests;
