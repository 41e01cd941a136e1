//! RBAC groups and their members (E5–E10), with the tier-B replacement bodies.

use super::*;

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
