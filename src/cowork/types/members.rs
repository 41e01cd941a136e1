//! Members and invites (E2–E4): users, role updates, invitations and the
//! `*_deleted` answer.

use super::*;

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
