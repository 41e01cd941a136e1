//! Roles (E11–E12): the role object with its source, the tier-B typed role
//! specification and its grants, and permission rows.

use super::*;

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
