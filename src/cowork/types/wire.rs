//! The wire shapes of objects whose fields were renamed (reference §1.10): new and
//! old names both written, the new one read first.

use super::*;

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rbac_group")]
pub(super) struct Group {
    id: String,
    name: String,
    source_type: SourceType,
    #[serde(default)]
    role_ids: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    managed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

impl From<Group> for RbacGroup {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
            source_type: g.source_type,
            roles: g.role_ids.or(g.roles),
            created_at: g.created_at,
            updated_at: g.updated_at,
            description: g.description,
            external_id: g.external_id,
            managed_by: g.managed_by,
            version: g.version,
        }
    }
}

impl From<RbacGroup> for Group {
    fn from(g: RbacGroup) -> Self {
        Self {
            id: g.id,
            name: g.name,
            source_type: g.source_type,
            role_ids: g.roles.clone(),
            roles: g.roles,
            created_at: g.created_at,
            updated_at: g.updated_at,
            description: g.description,
            external_id: g.external_id,
            managed_by: g.managed_by,
            version: g.version,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rbac_group_member")]
pub(super) struct Member {
    #[serde(default)]
    rbac_group_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    user_id: String,
    #[serde(default)]
    email: String,
    created_at: DateTime<Utc>,
}

impl From<Member> for RbacGroupMember {
    fn from(m: Member) -> Self {
        Self {
            group_id: m.rbac_group_id.or(m.group_id).unwrap_or_default(),
            user_id: m.user_id,
            email: m.email,
            created_at: m.created_at,
        }
    }
}

impl From<RbacGroupMember> for Member {
    fn from(m: RbacGroupMember) -> Self {
        Self {
            rbac_group_id: Some(m.group_id.clone()),
            group_id: Some(m.group_id),
            user_id: m.user_id,
            email: m.email,
            created_at: m.created_at,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rbac_role")]
pub(super) struct Role {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<RoleSource>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connectors: Option<ConnectorPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin_permissions: Option<BTreeMap<String, AdminLevel>>,
}

impl From<Role> for RbacRole {
    fn from(r: Role) -> Self {
        Self {
            id: r.id,
            name: r.display_name.or(r.name).unwrap_or_default(),
            source: r.source,
            created_at: r.created_at,
            updated_at: r.updated_at,
            description: r.description,
            external_id: r.external_id,
            version: r.version,
            default_model: r.default_model,
            capabilities: r.capabilities,
            connectors: r.connectors,
            admin_permissions: r.admin_permissions,
        }
    }
}

impl From<RbacRole> for Role {
    fn from(r: RbacRole) -> Self {
        Self {
            id: r.id,
            display_name: Some(r.name.clone()),
            name: Some(r.name),
            source: r.source,
            created_at: r.created_at,
            updated_at: r.updated_at,
            description: r.description,
            external_id: r.external_id,
            version: r.version,
            default_model: r.default_model,
            capabilities: r.capabilities,
            connectors: r.connectors,
            admin_permissions: r.admin_permissions,
        }
    }
}
