//! Invites (`/invites`): creation under the provisioning mode's rules, expiry,
//! withdrawal.

use chrono::Duration;

use chrono::{DateTime, Utc};

use super::*;

impl SimState {
    // ---------------------------------------------------------------- invites

    /// `GET /invites` (ID pagination, newest first).
    pub fn list_invites(&self, q: &IdQuery, now: DateTime<Utc>) -> ApiResult<IdPage<Invite>> {
        let mut page = q.page(self.invites.by_seq(), |_| true, |i| &i.id)?;
        for i in &mut page.data {
            Self::age_invite(i, now);
        }
        Ok(page)
    }

    fn age_invite(invite: &mut Invite, now: DateTime<Utc>) {
        if invite.status == InviteStatus::Pending && invite.expires_at <= now {
            invite.status = InviteStatus::Expired;
        }
    }

    /// `GET /invites/{id}`.
    pub fn get_invite(&self, id: &str, now: DateTime<Utc>) -> ApiResult<Invite> {
        let mut invite = self
            .invites
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no invite with this id"))?;
        Self::age_invite(&mut invite, now);
        Ok(invite)
    }

    /// `POST /invites`. With `accept`, the invitee joins at once.
    pub fn create_invite(
        &mut self,
        req: &InviteRequest,
        accept: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<Invite> {
        if !self.org.provisioning_mode.allows_invites() {
            return Err(ApiError::invalid(
                Some("provisioning_mode"),
                "invites are not available when members are provisioned by JIT or SCIM",
            ));
        }
        if req.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if !req.role.is_assignable() {
            return Err(ApiError::invalid(
                None,
                "role must be \"user\" or \"managed\"",
            ));
        }
        let email = req.email.trim();
        if !email.contains('@') || email.len() > 320 {
            return Err(ApiError::invalid(None, "email must be an email address"));
        }
        if self.user_by_email(email).is_some() {
            return Err(ApiError::invalid(
                Some("member_exists"),
                "a member with this email already exists",
            ));
        }
        let pending = self.invites.iter().any(|i| {
            i.status == InviteStatus::Pending
                && i.expires_at > now
                && email_key(&i.email) == email_key(email)
        });
        if pending {
            return Err(ApiError::invalid(
                Some("invite_exists"),
                "a pending invite for this email already exists",
            ));
        }
        if !req.rbac_group_ids.is_empty() {
            self.require_enterprise()?;
        }
        for gid in &req.rbac_group_ids {
            let group = self
                .groups
                .get(gid)
                .ok_or_else(|| ApiError::not_found("no group with this id"))?;
            if group.is_scim() {
                return Err(ApiError::scim());
            }
        }
        let (id, seq) = self.new_id("invite");
        let invite = Invite {
            id: id.clone(),
            email: email.to_owned(),
            role: req.role.clone(),
            status: InviteStatus::Pending,
            invited_at: now,
            expires_at: now + Duration::days(INVITE_TTL_DAYS),
            rbac_group_ids: req.rbac_group_ids.clone(),
        };
        self.invites.insert(id.clone(), seq, invite);
        if accept {
            let member = NewMember {
                email: email.to_owned(),
                name: None,
                role: None,
                seat_tier: None,
            };
            self.sim_add_member(&member, now)?;
        }
        self.get_invite(&id, now)
    }

    /// `DELETE /invites/{id}` (pending invites only).
    pub fn delete_invite(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let invite = self.get_invite(id, now)?;
        if invite.status != InviteStatus::Pending {
            return Err(ApiError::invalid(
                None,
                "only a pending invite can be withdrawn",
            ));
        }
        self.invites.remove(id);
        Ok(Deleted {
            kind: "invite_deleted".into(),
            id: id.to_owned(),
        })
    }
}
