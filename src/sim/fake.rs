//! [`SimApi`]: the simulator's model behind [`CoworkApi`] without HTTP, as an
//! in-memory fake for executor and planner tests. Same rules, same ids, same
//! convergence as [`HttpCoworkClient`](crate::cowork::HttpCoworkClient) (already a
//! member, not a member, 409 with the existing id), no network, no rate limits.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::page::{CursorQuery, IdQuery};
use super::state::{ApiError, SimState};
use super::{Sim, SimOptions};
use crate::cowork::plugins::*;
use crate::cowork::types::*;
use crate::cowork::{
    CallCounter, CallCounts, CoworkApi, CoworkError, CoworkResult, Created, IdempotencyKey, Mode,
    Outcome,
};

/// The in-memory fake.
#[derive(Debug)]
pub struct SimApi {
    sim: Arc<Sim>,
    mode: Mode,
    counts: CallCounter,
}

impl SimApi {
    /// A fake over a fresh seeded simulator (extension tier on).
    pub fn new(mode: Mode) -> anyhow::Result<Self> {
        let sim = Sim::new(&SimOptions::for_tests())?;
        Ok(Self::over(Arc::new(sim), mode))
    }

    /// A fake over an existing simulator core (for example a running
    /// [`SimHandle`](super::SimHandle)'s, to share state with HTTP clients).
    pub fn over(sim: Arc<Sim>, mode: Mode) -> Self {
        Self {
            sim,
            mode,
            counts: CallCounter::default(),
        }
    }

    /// The simulator core (model, clock).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    fn now(&self) -> DateTime<Utc> {
        self.sim.clock().now()
    }

    fn read<T>(&self, f: impl FnOnce(&SimState) -> Result<T, ApiError>) -> CoworkResult<T> {
        self.counts.read();
        f(&self.sim.state()).map_err(CoworkError::from)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut SimState, DateTime<Utc>) -> Result<T, ApiError>,
    ) -> CoworkResult<T> {
        self.counts.write();
        let now = self.now();
        let result = f(&mut self.sim.state(), now).map_err(CoworkError::from);
        if result.is_ok() {
            self.sim.changed();
        }
        result
    }

    fn all_by_cursor<T>(
        &self,
        binding: &str,
        page: impl Fn(&SimState, &CursorQuery) -> Result<CursorPage<T>, ApiError>,
    ) -> CoworkResult<Vec<T>> {
        let mut out = Vec::new();
        let mut q = CursorQuery::first(1000, binding);
        loop {
            let p = self.read(|s| page(s, &q))?;
            out.extend(p.data);
            match p.next_page {
                Some(next) => q.page = Some(next),
                None => return Ok(out),
            }
        }
    }

    fn all_by_id<T>(
        &self,
        page: impl Fn(&SimState, &IdQuery) -> Result<IdPage<T>, ApiError>,
    ) -> CoworkResult<Vec<T>> {
        let mut out = Vec::new();
        let mut q = IdQuery::first(1000);
        loop {
            let p = self.read(|s| page(s, &q))?;
            out.extend(p.data);
            if !p.has_more {
                return Ok(out);
            }
            q.after_id = p.last_id;
        }
    }

    fn extended(&self) -> bool {
        self.mode == Mode::Extended
    }
}

impl CoworkApi for SimApi {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn call_counts(&self) -> CallCounts {
        self.counts.snapshot()
    }

    async fn get_me(&self) -> CoworkResult<Organization> {
        let extended = self.extended();
        self.read(|s| Ok(s.me(extended)))
    }

    async fn list_users(&self) -> CoworkResult<Vec<User>> {
        self.all_by_id(|s, q| s.list_users(q, None, &[]))
    }

    async fn get_user(&self, user_id: &str) -> CoworkResult<User> {
        self.read(|s| s.get_user(user_id))
    }

    async fn set_user_role(
        &self,
        user_id: &str,
        role: OrgRole,
        _key: &IdempotencyKey,
    ) -> CoworkResult<User> {
        self.write(|s, now| s.set_user_role(user_id, &role, now))
    }

    async fn list_invites(&self) -> CoworkResult<Vec<Invite>> {
        let now = self.now();
        self.all_by_id(|s, q| s.list_invites(q, now))
    }

    async fn create_invite(
        &self,
        invite: &InviteRequest,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Invite> {
        let accept = self.sim.accept_invites;
        self.write(|s, now| s.create_invite(invite, accept, now))
    }

    async fn list_groups(&self) -> CoworkResult<Vec<RbacGroup>> {
        self.all_by_cursor("/rbac_groups", |s, q| s.list_groups(q))
    }

    async fn get_group(&self, group_id: &str) -> CoworkResult<RbacGroup> {
        self.read(|s| s.get_group(group_id))
    }

    async fn create_group(
        &self,
        group: &NewGroup,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacGroup>> {
        let body = if self.extended() {
            group.clone()
        } else {
            NewGroup {
                name: group.name.clone(),
                ..NewGroup::default()
            }
        };
        Created::from_result(self.write(|s, now| s.create_group(&body, now)))
    }

    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
        _key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        if !self.extended() && update.name.is_none() {
            return Err(CoworkError::NotInRealApi {
                operation: "update_group_description",
            });
        }
        let update = if self.extended() {
            update.clone()
        } else {
            GroupUpdate {
                name: update.name.clone(),
                description: None,
            }
        };
        self.write(|s, now| s.update_group(group_id, &update, None, now))
    }

    async fn delete_group(&self, group_id: &str, _key: &IdempotencyKey) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.delete_group(group_id, now)),
            CoworkError::is_not_found,
        )
    }

    async fn list_group_members(&self, group_id: &str) -> CoworkResult<Vec<RbacGroupMember>> {
        let binding = format!("/rbac_groups/{group_id}/members");
        self.all_by_cursor(&binding, |s, q| s.list_members(group_id, q))
    }

    async fn add_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.add_member(group_id, user_id, now)),
            CoworkError::is_already_member,
        )
    }

    async fn remove_user(&self, user_id: &str, _key: &IdempotencyKey) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.delete_user(user_id, now)),
            CoworkError::is_not_found,
        )
    }

    async fn withdraw_invite(
        &self,
        invite_id: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        Outcome::from_result(self.write(|s, now| s.delete_invite(invite_id, now)), |e| {
            e.is_not_found() || matches!(e, CoworkError::InvalidRequest { .. })
        })
    }

    async fn remove_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.remove_member(group_id, user_id, now)),
            CoworkError::is_not_found,
        )
    }

    async fn set_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        _key: &IdempotencyKey,
    ) -> CoworkResult<SetMembersResult> {
        self.mode.require_extended("set_group_members")?;
        self.write(|s, now| s.set_members(group_id, user_ids, now))
    }

    async fn list_roles(&self) -> CoworkResult<Vec<RbacRole>> {
        self.all_by_cursor("/rbac_roles", |s, q| s.list_roles(q))
    }

    async fn list_role_permissions(&self, role_id: &str) -> CoworkResult<Vec<RolePermission>> {
        let binding = format!("/rbac_roles/{role_id}/permissions");
        self.all_by_cursor(&binding, |s, q| s.list_permissions(role_id, q))
    }

    async fn create_role(
        &self,
        spec: &RoleSpec,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacRole>> {
        self.mode.require_extended("create_role")?;
        Created::from_result(self.write(|s, now| s.create_role(spec, now)))
    }

    async fn update_role(
        &self,
        role_id: &str,
        spec: &RoleSpec,
        _key: &IdempotencyKey,
    ) -> CoworkResult<RbacRole> {
        self.mode.require_extended("update_role")?;
        self.write(|s, now| s.update_role(role_id, spec, None, now))
    }

    async fn delete_role(&self, role_id: &str, _key: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.mode.require_extended("delete_role")?;
        Outcome::from_result(
            self.write(|s, now| s.delete_role(role_id, now)),
            CoworkError::is_not_found,
        )
    }

    async fn set_group_roles(
        &self,
        group_id: &str,
        role_ids: &[String],
        _key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        self.mode.require_extended("set_group_roles")?;
        self.write(|s, now| s.set_group_roles(group_id, role_ids, now))
    }

    async fn list_effective_spend(&self) -> CoworkResult<Vec<SpendSummary>> {
        self.all_by_cursor("/spend_limits/effective", |s, q| {
            s.list_effective_spend(q, &[], &[])
        })
    }

    async fn list_spend_limits(&self, filter: &SpendLimitFilter) -> CoworkResult<Vec<SpendLimit>> {
        let binding = format!("/spend_limits?{filter:?}");
        self.all_by_cursor(&binding, |s, q| {
            let types: Vec<&str> = filter.scope_type.as_deref().into_iter().collect();
            s.list_spend_limits(q, &types, filter.rbac_group_id.as_deref())
        })
    }

    async fn upsert_user_spend_limit(
        &self,
        user_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        let req = SpendLimitRequest {
            scope: SpendScope::User {
                user_id: user_id.to_owned(),
            },
            period: Some(Period::Monthly),
            amount: amount_minor.map(|a| a.to_string()),
            currency: self.extended().then(|| currency.to_owned()),
        };
        let extended = self.extended();
        self.write(|s, now| s.upsert_spend_limit(&req, extended, now))
    }

    async fn upsert_group_spend_limit(
        &self,
        group_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        self.mode.require_extended("upsert_group_spend_limit")?;
        let req = SpendLimitRequest {
            scope: SpendScope::RbacGroup {
                rbac_group_id: group_id.to_owned(),
            },
            period: Some(Period::Monthly),
            amount: amount_minor.map(|a| a.to_string()),
            currency: Some(currency.to_owned()),
        };
        self.write(|s, now| s.upsert_spend_limit(&req, true, now))
    }

    async fn delete_spend_limit(
        &self,
        spend_limit_id: &str,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.delete_spend_limit(spend_limit_id, now)),
            CoworkError::is_not_found,
        )
    }

    async fn list_plugin_policies(&self) -> CoworkResult<Vec<PluginPolicy>> {
        self.all_by_cursor("/plugin_policies", |s, q| s.list_plugin_policies(q))
    }

    async fn list_plugins(&self) -> CoworkResult<Vec<Plugin>> {
        self.all_by_cursor("/plugins", |s, q| s.list_plugins(q, None, None))
    }

    async fn list_plugin_settings(&self, plugin_id: &str) -> CoworkResult<Vec<PluginSetting>> {
        let binding = format!("/plugins/{plugin_id}/installation_settings");
        self.all_by_cursor(&binding, |s, q| s.list_plugin_settings(plugin_id, None, q))
    }

    async fn set_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        _key: &IdempotencyKey,
    ) -> CoworkResult<PluginSetting> {
        self.write(|s, now| s.set_plugin_setting(plugin_id, target, preference, now))
    }

    async fn delete_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        _key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        Outcome::from_result(
            self.write(|s, now| s.delete_plugin_setting(plugin_id, target, now)),
            CoworkError::is_not_found,
        )
    }

    async fn put_plugin_policy(
        &self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        _key: &IdempotencyKey,
    ) -> CoworkResult<PluginPolicy> {
        self.mode.require_extended("put_plugin_policy")?;
        self.write(|s, now| s.put_plugin_policy(plugin_id, update, now))
    }

    async fn get_effective_access(&self, user_id: &str) -> CoworkResult<EffectiveAccess> {
        let now = self.now();
        self.read(|s| s.effective_access(user_id, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_converges_like_the_http_client() {
        let api = SimApi::new(Mode::Extended).unwrap();
        let key = IdempotencyKey::new("k");
        let user = api
            .sim()
            .state()
            .sim_add_member(
                &super::super::NewMember {
                    email: "a@example.com".into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                },
                api.now(),
            )
            .unwrap();
        let new = NewGroup {
            name: "Eng".into(),
            external_id: Some("okta:eng".into()),
            ..NewGroup::default()
        };
        let first = api.create_group(&new, &key).await.unwrap();
        let again = api.create_group(&new, &key).await.unwrap();
        assert_eq!(
            again,
            Created::Existing {
                id: first.id().to_owned()
            }
        );
        let g = first.id().to_owned();
        assert_eq!(
            api.add_group_member(&g, &user.id, &key).await.unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            api.add_group_member(&g, &user.id, &key).await.unwrap(),
            Outcome::AlreadyInState
        );
        assert_eq!(api.list_group_members(&g).await.unwrap().len(), 1);
        assert_eq!(
            api.remove_group_member(&g, &user.id, &key).await.unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            api.remove_group_member(&g, &user.id, &key).await.unwrap(),
            Outcome::AlreadyInState
        );
        assert_eq!(api.call_counts().writes, 6);
        let real = SimApi::over(api.sim().clone(), Mode::Real);
        let err = real
            .create_role(&RoleSpec::default(), &key)
            .await
            .unwrap_err();
        assert!(matches!(err, CoworkError::NotInRealApi { .. }));
    }

    #[tokio::test]
    async fn the_fake_serves_the_plugins_api_like_the_simulator() {
        let fake = SimApi::new(Mode::Real).unwrap();
        let plugin = fake
            .list_plugins()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.name == "finance-close")
            .unwrap();
        let k = IdempotencyKey::new("k");
        fake.set_plugin_setting(
            &plugin.id,
            &PluginTarget::Organization,
            InstallationPreference::Required,
            &k,
        )
        .await
        .unwrap();
        let org = fake.list_plugin_settings(&plugin.id).await.unwrap();
        assert_eq!(
            org[0].installation_preference,
            InstallationPreference::Required
        );
        let once = fake
            .delete_plugin_setting(&plugin.id, &PluginTarget::Organization, &k)
            .await
            .unwrap();
        let twice = fake
            .delete_plugin_setting(&plugin.id, &PluginTarget::Organization, &k)
            .await
            .unwrap();
        assert_eq!((once, twice), (Outcome::Applied, Outcome::AlreadyInState));
    }
}
