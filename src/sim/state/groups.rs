//! Groups (`/rbac_groups`) and their memberships: the `scim` read-only rule, the
//! 100-group limit, `external_id` uniqueness, tier B member and role replacement.

use std::collections::BTreeSet;

use serde_json::json;

use chrono::{DateTime, Utc};

use super::*;

/// A group created through the simulator's own hook (`POST /_sim/groups`), e.g. one
/// the IdP provisioned over SCIM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSimGroup {
    /// Name.
    pub name: String,
    /// Source (defaults to `scim`).
    #[serde(default)]
    pub source_type: Option<SourceType>,
    /// Initial members.
    #[serde(default)]
    pub user_ids: Vec<String>,
}

impl SimState {
    // ---------------------------------------------------------------- groups

    /// Groups (for in-process inspection).
    pub fn groups(&self) -> &Coll<RbacGroup> {
        &self.groups
    }

    /// `GET /rbac_groups` (cursor pagination, oldest first).
    pub fn list_groups(&self, q: &CursorQuery) -> ApiResult<CursorPage<RbacGroup>> {
        self.require_enterprise()?;
        self.groups.cursor_page(q)
    }

    /// `GET /rbac_groups/{id}`.
    pub fn get_group(&self, id: &str) -> ApiResult<RbacGroup> {
        self.require_enterprise()?;
        self.groups
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no group with this id"))
    }

    fn writable_group(&self, id: &str) -> ApiResult<RbacGroup> {
        let group = self.get_group(id)?;
        if group.is_scim() {
            return Err(ApiError::scim());
        }
        Ok(group)
    }

    /// `POST /rbac_groups`.
    pub fn create_group(&mut self, new: &NewGroup, now: DateTime<Utc>) -> ApiResult<RbacGroup> {
        self.require_enterprise()?;
        check_name(&new.name, "name")?;
        if let Some(ext) = &new.external_id {
            if ext.is_empty() || ext.len() > 255 {
                return Err(ApiError::invalid(
                    None,
                    "external_id must be 1 to 255 characters",
                ));
            }
            if let Some(existing) = self.group_ext.get(ext) {
                return Err(ApiError::conflict(
                    "external_id_in_use",
                    "a group with this external_id already exists",
                )
                .with_details(json!({ "existing_id": existing })));
            }
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(ApiError::invalid(
                Some("group_limit_exceeded"),
                "an organization can have at most 100 groups",
            ));
        }
        let (id, seq) = self.new_id("rbac_group");
        let group = RbacGroup {
            id: id.clone(),
            name: new.name.clone(),
            source_type: SourceType::Direct,
            roles: Some(Vec::new()),
            created_at: now,
            updated_at: now,
            description: new.description.clone(),
            external_id: new.external_id.clone(),
            managed_by: new.managed_by.clone(),
            version: Some(1),
        };
        if let Some(ext) = &new.external_id {
            self.group_ext.insert(ext.clone(), id.clone());
        }
        self.members.insert(id.clone(), Coll::default());
        self.groups.insert(id, seq, group.clone());
        Ok(group)
    }

    /// `POST /_sim/groups`: a group made outside the API (by default a SCIM group).
    pub fn sim_add_group(&mut self, new: &NewSimGroup, now: DateTime<Utc>) -> ApiResult<RbacGroup> {
        check_name(&new.name, "name")?;
        if self.groups.len() >= MAX_GROUPS {
            return Err(ApiError::invalid(
                Some("group_limit_exceeded"),
                "an organization can have at most 100 groups",
            ));
        }
        for uid in &new.user_ids {
            if !self.users.contains(uid) {
                return Err(ApiError::not_found("no member with this id"));
            }
        }
        let (id, seq) = self.new_id("rbac_group");
        let group = RbacGroup {
            id: id.clone(),
            name: new.name.clone(),
            source_type: new.source_type.clone().unwrap_or(SourceType::Scim),
            roles: Some(Vec::new()),
            created_at: now,
            updated_at: now,
            description: None,
            external_id: None,
            managed_by: None,
            version: Some(1),
        };
        self.members.insert(id.clone(), Coll::default());
        self.groups.insert(id.clone(), seq, group.clone());
        for uid in &new.user_ids {
            self.insert_member(&id, uid, now);
        }
        Ok(group)
    }

    /// `POST /rbac_groups/{id}` (`name`, tier B `description`; optional `If-Match`).
    pub fn update_group(
        &mut self,
        id: &str,
        update: &GroupUpdate,
        if_match: Option<u64>,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroup> {
        let group = self.writable_group(id)?;
        check_version(group.version, if_match)?;
        if let Some(name) = &update.name {
            check_name(name, "name")?;
        }
        let g = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("no group with this id"))?;
        let mut changed = false;
        if let Some(name) = &update.name {
            changed |= g.name != *name;
            g.name = name.clone();
        }
        if let Some(description) = &update.description {
            changed |= g.description.as_ref() != Some(description);
            g.description = Some(description.clone());
        }
        if changed {
            g.updated_at = now;
            g.version = Some(g.version.unwrap_or(0) + 1);
        }
        Ok(g.clone())
    }

    /// `DELETE /rbac_groups/{id}`: members lose its roles, spend limit and plugin
    /// overrides.
    pub fn delete_group(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let group = self.writable_group(id)?;
        self.groups.remove(id);
        if let Some(ext) = &group.external_id {
            self.group_ext.remove(ext);
        }
        if let Some(members) = self.members.remove(id) {
            for m in members.iter() {
                if let Some(set) = self.user_groups.get_mut(&m.user_id) {
                    set.remove(id);
                }
            }
        }
        let scope = SpendScope::RbacGroup {
            rbac_group_id: id.to_owned(),
        };
        let doomed: Vec<String> = self
            .spend
            .iter()
            .filter(|l| l.scope == scope)
            .map(|l| l.id.clone())
            .collect();
        for sid in doomed {
            self.remove_spend(&sid);
        }
        for overrides in self.plugin_overrides.values_mut() {
            overrides.retain(|o| o.rbac_group_id != id);
        }
        self.touch_access(now);
        Ok(Deleted {
            kind: "rbac_group_deleted".into(),
            id: id.to_owned(),
        })
    }

    /// The group ids of a member.
    pub fn groups_of(&self, user_id: &str) -> Vec<String> {
        self.user_groups
            .get(user_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The member ids of a group, oldest first.
    pub fn member_ids(&self, group_id: &str) -> Vec<String> {
        self.members
            .get(group_id)
            .map(|c| c.iter().map(|m| m.user_id.clone()).collect())
            .unwrap_or_default()
    }

    /// `GET /rbac_groups/{id}/members` (cursor pagination, oldest first).
    pub fn list_members(
        &self,
        group_id: &str,
        q: &CursorQuery,
    ) -> ApiResult<CursorPage<RbacGroupMember>> {
        self.get_group(group_id)?;
        let start = q.start()?;
        let Some(members) = self.members.get(group_id) else {
            return Ok(q.finish(start, std::iter::empty()));
        };
        let items = members.by_seq().range(start.range()).map(|(k, m)| {
            let email = self
                .users
                .get(&m.user_id)
                .map(|u| u.email.clone())
                .unwrap_or_default();
            (
                *k,
                RbacGroupMember {
                    group_id: group_id.to_owned(),
                    user_id: m.user_id.clone(),
                    email,
                    created_at: m.created_at,
                },
            )
        });
        Ok(q.finish(start, items))
    }

    pub(super) fn insert_member(
        &mut self,
        group_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> MemberRec {
        let seq = self.bump_seq();
        let rec = MemberRec {
            user_id: user_id.to_owned(),
            created_at: now,
            seq,
        };
        self.members.entry(group_id.to_owned()).or_default().insert(
            user_id.to_owned(),
            seq,
            rec.clone(),
        );
        self.user_groups
            .entry(user_id.to_owned())
            .or_default()
            .insert(group_id.to_owned());
        self.access_changed_at = Some(now);
        rec
    }

    fn delete_member(&mut self, group_id: &str, user_id: &str, now: DateTime<Utc>) -> bool {
        let removed = self
            .members
            .get_mut(group_id)
            .and_then(|c| c.remove(user_id))
            .is_some();
        if removed {
            if let Some(set) = self.user_groups.get_mut(user_id) {
                set.remove(group_id);
            }
            self.access_changed_at = Some(now);
        }
        removed
    }

    fn is_member(&self, group_id: &str, user_id: &str) -> bool {
        self.members
            .get(group_id)
            .is_some_and(|c| c.contains(user_id))
    }

    /// `POST /rbac_groups/{id}/members` `{user_id}`: 400 if already a member.
    pub fn add_member(
        &mut self,
        group_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroupMember> {
        self.writable_group(group_id)?;
        let user = self
            .users
            .get(user_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no member with this id in the organization"))?;
        if self.is_member(group_id, user_id) {
            return Err(ApiError::invalid(
                Some("already_member"),
                "the user is already a member of this group",
            ));
        }
        let rec = self.insert_member(group_id, user_id, now);
        Ok(RbacGroupMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            email: user.email,
            created_at: rec.created_at,
        })
    }

    /// `DELETE /rbac_groups/{id}/members/{user_id}`: 404 if not a member.
    pub fn remove_member(
        &mut self,
        group_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<MemberDeleted> {
        self.writable_group(group_id)?;
        if !self.delete_member(group_id, user_id, now) {
            return Err(ApiError::not_found(
                "the user is not a member of this group",
            ));
        }
        Ok(MemberDeleted {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
        })
    }

    /// Tier B `PUT /rbac_groups/{id}/members` `{user_ids}`: full replacement.
    pub fn set_members(
        &mut self,
        group_id: &str,
        user_ids: &[String],
        now: DateTime<Utc>,
    ) -> ApiResult<SetMembersResult> {
        self.writable_group(group_id)?;
        if user_ids.len() > MAX_SET_MEMBERS {
            return Err(ApiError::invalid(
                None,
                "user_ids may carry at most 10,000 ids",
            ));
        }
        let wanted: BTreeSet<&str> = user_ids.iter().map(String::as_str).collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|u| !self.users.contains(u))
            .take(20)
            .collect();
        if !missing.is_empty() {
            return Err(
                ApiError::not_found("some user_ids are not members of the organization")
                    .with_details(json!({ "user_ids": missing })),
            );
        }
        let current = self.member_ids(group_id);
        let mut result = SetMembersResult::default();
        for uid in &current {
            if wanted.contains(uid.as_str()) {
                result.unchanged += 1;
            } else {
                self.delete_member(group_id, uid, now);
                result.removed.push(uid.clone());
            }
        }
        let mut seen = BTreeSet::new();
        for uid in user_ids {
            if seen.insert(uid.as_str()) && !self.is_member(group_id, uid) {
                self.insert_member(group_id, uid, now);
                result.added.push(uid.clone());
            }
        }
        Ok(result)
    }

    /// Tier B `PUT /rbac_groups/{id}/roles` `{role_ids}`: replaces attached roles.
    pub fn set_group_roles(
        &mut self,
        group_id: &str,
        role_ids: &[String],
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroup> {
        let group = self.get_group(group_id)?;
        if group.is_scim() && !self.org.provisioning_mode.scim_manages_membership() {
            return Err(ApiError::invalid(
                Some("scim_group_not_supported"),
                "SCIM-synced groups cannot carry roles while provisioning is invite-only or JIT",
            ));
        }
        let mut roles: Vec<String> = Vec::new();
        for rid in role_ids {
            if !self.roles.contains(rid) {
                return Err(ApiError::not_found(
                    "no role with this id in this organization",
                ));
            }
            if !roles.contains(rid) {
                roles.push(rid.clone());
            }
        }
        let g = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| ApiError::not_found("no group with this id"))?;
        if g.roles.as_ref() != Some(&roles) {
            g.roles = Some(roles);
            g.updated_at = now;
            g.version = Some(g.version.unwrap_or(0) + 1);
            self.access_changed_at = Some(now);
        }
        self.get_group(group_id)
    }
}
