//! Roles (`/rbac_roles`): the catalog, the documented permission rows a typed role
//! maps to, and tier B role writes validated against the org (R8–R11).

use std::collections::BTreeSet;

use serde_json::json;

use chrono::{DateTime, Utc};

use super::*;

/// Capability names that are org-level skill settings, never per role (R10).
const ORG_LEVEL_SETTINGS: [&str; 8] = [
    "skills",
    "skills_enabled",
    "skill_sharing",
    "skill_sharing_enabled",
    "user_skill_creation",
    "user_skill_creation_enabled",
    "org_wide_skill_sharing",
    "org_wide_skill_sharing_enabled",
];

impl SimState {
    // ---------------------------------------------------------------- roles

    /// Roles (for in-process inspection).
    pub fn roles(&self) -> &Coll<RbacRole> {
        &self.roles
    }

    /// `GET /rbac_roles` (cursor pagination).
    pub fn list_roles(&self, q: &CursorQuery) -> ApiResult<CursorPage<RbacRole>> {
        self.require_enterprise()?;
        self.roles.cursor_page(q)
    }

    /// `GET /rbac_roles/{id}`.
    pub fn get_role(&self, id: &str) -> ApiResult<RbacRole> {
        self.require_enterprise()?;
        self.roles
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no role with this id in this organization"))
    }

    /// `GET /rbac_roles/{id}/permissions` (cursor pagination).
    pub fn list_permissions(
        &self,
        id: &str,
        q: &CursorQuery,
    ) -> ApiResult<CursorPage<RolePermission>> {
        let role = self.get_role(id)?;
        let start = q.start()?;
        let rows = self.permissions_of(&role);
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u64, r))
            .skip(usize::try_from(from).unwrap_or(usize::MAX));
        Ok(q.finish(start, items))
    }

    /// The documented permission rows a typed role definition maps to (§3.2).
    pub fn permissions_of(&self, role: &RbacRole) -> Vec<RolePermission> {
        let org = || PermissionResource::Organization {
            organization_id: self.org.id.clone(),
        };
        let row = |resource: PermissionResource, action: &str| RolePermission {
            resource,
            action: action.to_owned(),
        };
        let tool_action = |mode: ToolMode| match mode {
            ToolMode::AlwaysAllow => Some("always_allow"),
            ToolMode::NeedsApproval => Some("use"),
            ToolMode::Deny => None,
        };
        let mut rows = Vec::new();
        if let Some(caps) = &role.capabilities {
            match caps.all {
                Blanket::All => rows.push(row(org(), "capability_access_all")),
                Blanket::AllGa => rows.push(row(org(), "capability_access_all_ga")),
                Blanket::None => {}
            }
            for feature in caps.granted() {
                rows.push(row(org(), feature));
            }
        }
        match &role.connectors {
            Some(ConnectorPolicy::All { all_connectors }) => {
                if let Some(action) = tool_action(all_connectors.default_tool_mode) {
                    rows.push(row(PermissionResource::AllConnectors, action));
                }
            }
            Some(ConnectorPolicy::List(grants)) => {
                for g in grants.iter().filter(|g| g.access == ConnectorAccess::Allow) {
                    let connector = || PermissionResource::Connector {
                        connector_id: g.connector_id.clone(),
                    };
                    if g.tools.is_empty() {
                        if let Some(action) = tool_action(g.default_tool_mode) {
                            rows.push(row(connector(), action));
                        }
                    }
                    for t in &g.tools {
                        if let Some(action) = tool_action(t.mode) {
                            let resource = PermissionResource::ConnectorTool {
                                connector_id: g.connector_id.clone(),
                                tool_name: t.tool_name.clone(),
                            };
                            rows.push(row(resource, action));
                        }
                    }
                    for scope in &g.oauth_scopes {
                        let resource = PermissionResource::ConnectorScope {
                            connector_id: g.connector_id.clone(),
                            scope: scope.clone(),
                        };
                        rows.push(row(resource, "grant"));
                    }
                    match g.auth_method {
                        Some(AuthMethod::Interactive) => rows.push(row(connector(), "interactive")),
                        Some(AuthMethod::Managed) => rows.push(row(connector(), "managed")),
                        None => {}
                    }
                }
            }
            None => {}
        }
        if let Some(perms) = &role.admin_permissions {
            for (area, level) in perms {
                match level {
                    AdminLevel::View => rows.push(row(org(), &format!("permission_{area}_view"))),
                    AdminLevel::Manage => {
                        rows.push(row(org(), &format!("permission_{area}_manage")))
                    }
                    AdminLevel::None => {}
                }
            }
        }
        rows
    }

    /// Validates a role definition against the org (R8–R11).
    fn check_role(&self, spec: &RoleSpec) -> ApiResult<()> {
        check_name(&spec.name, "name")?;
        for feature in spec.capabilities.granted() {
            if ORG_LEVEL_SETTINGS.contains(&feature) {
                return Err(ApiError::invalid(
                    Some("org_level_setting"),
                    &format!(
                        "capabilities.{feature} is an organization-level setting, not per role"
                    ),
                ));
            }
            if feature == "computer_use" {
                return Err(ApiError::invalid(
                    Some("computer_use_not_available"),
                    "Computer Use is not available on Team or Enterprise plans",
                ));
            }
            if self.org.settings.feature_switch(feature) == Some(false) {
                return Err(ApiError::invalid(
                    Some("feature_disabled_at_org"),
                    &format!("capabilities.{feature} is turned off for the organization"),
                ));
            }
        }
        if let ConnectorPolicy::List(grants) = &spec.connectors {
            let mut seen = BTreeSet::new();
            for (i, g) in grants.iter().enumerate() {
                if self.org.settings.connector(&g.connector_id).is_none() {
                    return Err(ApiError::invalid(
                        Some("connector_not_in_org"),
                        &format!("connectors[{i}].connector_id is not added at organization level"),
                    ));
                }
                if !seen.insert(&g.connector_id) {
                    return Err(ApiError::invalid(
                        None,
                        &format!("connectors[{i}] repeats a connector"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn role_external_conflict(&self, spec: &RoleSpec, except: Option<&str>) -> ApiResult<()> {
        if let Some(ext) = &spec.external_id {
            if let Some(existing) = self.role_ext.get(ext) {
                if Some(existing.as_str()) != except {
                    return Err(ApiError::conflict(
                        "external_id_in_use",
                        "a role with this external_id already exists",
                    )
                    .with_details(json!({ "existing_id": existing })));
                }
            }
        }
        Ok(())
    }

    /// A role the product makes (`source.type: "built_in"`, seed only): listed beside
    /// the custom roles, never writable.
    pub(super) fn add_built_in_role(&mut self, name: &str, now: DateTime<Utc>) {
        let (id, seq) = self.new_id("rbac_role");
        let role = RbacRole {
            id: id.clone(),
            name: name.to_owned(),
            source: Some(RoleSource::built_in()),
            created_at: now,
            updated_at: now,
            description: None,
            external_id: None,
            version: None,
            default_model: None,
            capabilities: None,
            connectors: None,
            admin_permissions: None,
        };
        self.roles.insert(id, seq, role);
    }

    fn writable_role(&self, id: &str) -> ApiResult<RbacRole> {
        let role = self.get_role(id)?;
        if role.is_built_in() {
            return Err(ApiError::invalid(
                Some("built_in_role"),
                "built-in roles cannot be changed or deleted",
            ));
        }
        Ok(role)
    }

    /// Tier B `POST /rbac_roles`.
    pub fn create_role(&mut self, spec: &RoleSpec, now: DateTime<Utc>) -> ApiResult<RbacRole> {
        self.require_enterprise()?;
        self.role_external_conflict(spec, None)?;
        self.check_role(spec)?;
        let (id, seq) = self.new_id("rbac_role");
        let role = RbacRole {
            id: id.clone(),
            name: spec.name.clone(),
            source: Some(RoleSource::custom()),
            created_at: now,
            updated_at: now,
            description: spec.description.clone(),
            external_id: spec.external_id.clone(),
            version: Some(1),
            default_model: spec.default_model.clone(),
            capabilities: Some(spec.capabilities.clone()),
            connectors: Some(spec.connectors.clone()),
            admin_permissions: Some(spec.admin_permissions.clone()),
        };
        if let Some(ext) = &spec.external_id {
            self.role_ext.insert(ext.clone(), id.clone());
        }
        self.roles.insert(id, seq, role.clone());
        Ok(role)
    }

    /// Tier B `POST /rbac_roles/{id}`: replaces the definition.
    pub fn update_role(
        &mut self,
        id: &str,
        spec: &RoleSpec,
        if_match: Option<u64>,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacRole> {
        let current = self.writable_role(id)?;
        check_version(current.version, if_match)?;
        self.role_external_conflict(spec, Some(id))?;
        self.check_role(spec)?;
        let mut role = current.clone();
        role.name = spec.name.clone();
        role.description = spec.description.clone();
        role.external_id = spec.external_id.clone();
        role.default_model = spec.default_model.clone();
        role.capabilities = Some(spec.capabilities.clone());
        role.connectors = Some(spec.connectors.clone());
        role.admin_permissions = Some(spec.admin_permissions.clone());
        if role != current {
            role.updated_at = now;
            role.version = Some(current.version.unwrap_or(0) + 1);
            if let Some(old) = &current.external_id {
                self.role_ext.remove(old);
            }
            if let Some(ext) = &role.external_id {
                self.role_ext.insert(ext.clone(), id.to_owned());
            }
            if let Some(r) = self.roles.get_mut(id) {
                *r = role.clone();
            }
            self.touch_access(now);
        }
        Ok(role)
    }

    /// Tier B `DELETE /rbac_roles/{id}`: detaches it from every group.
    pub fn delete_role(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let role = self.writable_role(id)?;
        self.roles.remove(id);
        if let Some(ext) = &role.external_id {
            self.role_ext.remove(ext);
        }
        let ids: Vec<String> = self.groups.iter().map(|g| g.id.clone()).collect();
        for gid in ids {
            if let Some(g) = self.groups.get_mut(&gid) {
                if let Some(roles) = &mut g.roles {
                    if roles.iter().any(|r| r == id) {
                        roles.retain(|r| r != id);
                        g.updated_at = now;
                        g.version = Some(g.version.unwrap_or(0) + 1);
                    }
                }
            }
        }
        self.touch_access(now);
        Ok(Deleted {
            kind: "rbac_role_deleted".into(),
            id: id.to_owned(),
        })
    }
}
