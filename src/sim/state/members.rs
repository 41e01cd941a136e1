//! Members of the organization (`/users`): listing, lookup, org roles, removal, and
//! the simulator's own sign-up hook (`POST /_sim/users`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::*;

/// New members created through the simulator's own hook (`POST /_sim/users`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMember {
    /// Email.
    pub email: String,
    /// Display name (defaults to the email's local part).
    #[serde(default)]
    pub name: Option<String>,
    /// Org role (defaults to `user`; any role, admin roles included).
    #[serde(default)]
    pub role: Option<OrgRole>,
    /// Seat tier.
    #[serde(default)]
    pub seat_tier: Option<String>,
}

impl SimState {
    // ---------------------------------------------------------------- members

    /// Members (for in-process inspection).
    pub fn users(&self) -> &Coll<User> {
        &self.users
    }

    /// `GET /users` (ID pagination, newest first; `email` and `roles` filters).
    pub fn list_users(
        &self,
        q: &IdQuery,
        email: Option<&str>,
        roles: &[OrgRole],
    ) -> ApiResult<IdPage<User>> {
        let email = email.map(email_key);
        q.page(
            self.users.by_seq(),
            |u| {
                email.as_ref().is_none_or(|e| email_key(&u.email) == *e)
                    && (roles.is_empty() || roles.contains(&u.role))
            },
            |u| &u.id,
        )
    }

    /// `GET /users/{id}`.
    pub fn get_user(&self, id: &str) -> ApiResult<User> {
        self.users
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no member with this id"))
    }

    /// The user with this email, if any.
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.emails
            .get(&email_key(email))
            .and_then(|id| self.users.get(id))
    }

    /// `POST /users/{id}` `{role}`.
    pub fn set_user_role(
        &mut self,
        id: &str,
        role: &OrgRole,
        now: DateTime<Utc>,
    ) -> ApiResult<User> {
        let current = self.get_user(id)?;
        if role.is_admin() || current.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if !role.is_assignable() {
            return Err(ApiError::invalid(
                None,
                "role must be \"user\" or \"managed\"",
            ));
        }
        if self.org.provisioning_mode.idp_manages_roles() {
            return Err(ApiError::invalid(
                Some("idp_manages_roles"),
                "roles are managed by the identity provider (advanced provisioning)",
            ));
        }
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("no member with this id"))?;
        if user.role != *role {
            user.role = role.clone();
            self.access_changed_at = Some(now);
        }
        self.get_user(id)
    }

    /// `DELETE /users/{id}`.
    pub fn delete_user(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let user = self.get_user(id)?;
        if user.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if self.org.provisioning_mode.scim_manages_membership() {
            return Err(ApiError::invalid(
                Some("scim_managed_resource"),
                "membership is managed by SCIM",
            ));
        }
        self.users.remove(id);
        self.emails.remove(&email_key(&user.email));
        for gid in self.user_groups.remove(id).unwrap_or_default() {
            if let Some(members) = self.members.get_mut(&gid) {
                members.remove(id);
            }
        }
        let scope = SpendScope::User {
            user_id: id.to_owned(),
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
        self.touch_access(now);
        Ok(Deleted {
            kind: "user_deleted".into(),
            id: id.to_owned(),
        })
    }

    /// `POST /_sim/users`: someone signed up (or was provisioned). A pending invite
    /// for the same email is accepted: its role and groups apply.
    pub fn sim_add_member(&mut self, new: &NewMember, now: DateTime<Utc>) -> ApiResult<User> {
        let email = new.email.trim();
        if !email.contains('@') {
            return Err(ApiError::invalid(None, "email must be an email address"));
        }
        if self.user_by_email(email).is_some() {
            return Err(ApiError::conflict(
                "member_exists",
                "a member with this email already exists",
            ));
        }
        let invite = self
            .invites
            .iter()
            .find(|i| i.status == InviteStatus::Pending && email_key(&i.email) == email_key(email))
            .cloned();
        let role = new
            .role
            .clone()
            .or_else(|| invite.as_ref().map(|i| i.role.clone()))
            .unwrap_or(OrgRole::User);
        let (id, seq) = self.new_id("user");
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
        let user = User {
            id: id.clone(),
            email: email.to_owned(),
            name,
            role,
            added_at: now,
            seat_tier: new.seat_tier.clone(),
        };
        self.emails.insert(email_key(email), id.clone());
        self.users.insert(id.clone(), seq, user.clone());
        if let Some(invite) = invite {
            if let Some(i) = self.invites.get_mut(&invite.id) {
                i.status = InviteStatus::Accepted;
            }
            for gid in &invite.rbac_group_ids {
                if self.groups.contains(gid) {
                    self.insert_member(gid, &id, now);
                }
            }
        }
        self.touch_access(now);
        Ok(user)
    }

    /// Adds several members at once, all or none: every email is checked (format,
    /// not a member yet, not repeated in the batch) before any is added.
    pub fn sim_add_members(
        &mut self,
        news: &[NewMember],
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<User>> {
        let mut batch = BTreeSet::new();
        for (i, new) in news.iter().enumerate() {
            let key = email_key(&new.email);
            if !new.email.contains('@') {
                return Err(ApiError::invalid(
                    None,
                    &format!("[{i}].email must be an email address"),
                ));
            }
            if self.emails.contains_key(&key) || !batch.insert(key) {
                return Err(ApiError::conflict(
                    "member_exists",
                    &format!("[{i}].email belongs to an existing or earlier member"),
                ));
            }
        }
        news.iter()
            .map(|new| self.sim_add_member(new, now))
            .collect()
    }
}
