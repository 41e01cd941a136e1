//! Rule-file values as the Admin API writes them, and the wording plans use.

use crate::cowork::{
    self, ConnectorAccess, ConnectorGrant, ConnectorPolicy, Preference, ToolGrant, ToolMode,
};
use crate::rules::{self, ConnectorMode, ConnectorSpec, PluginPreference, SpendLimit};

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

pub(super) fn money(limit: SpendLimit, currency: &str) -> String {
    limit.money(currency)
}

pub(super) const CONSOLE: &str = "claude.ai › Organization settings";

/// A preference's rule-file name.
pub(super) fn pref_name(p: Preference) -> &'static str {
    match p {
        Preference::NotAvailable => "not_available",
        Preference::Available => "available",
        Preference::InstalledByDefault => "installed_by_default",
        Preference::Required => "required",
    }
}
