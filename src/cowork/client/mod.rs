//! [`HttpCoworkClient`]: the reqwest implementation of [`CoworkApi`].
//!
//! One pooled `reqwest::Client`; `x-api-key`, `anthropic-version: 2023-06-01` on every
//! request, `content-type: application/json` with every body, `Idempotency-Key` on
//! every write. Client-side token buckets keep it under the documented limits; 429
//! (honouring `retry-after`) and transient failures are retried with exponential
//! backoff and jitter, a bounded number of times. The `request-id` of each answer is
//! logged at debug; the key never is.
//!
//! Beta endpoints (the Plugins API, spend-limit reads) live in `beta_calls`: their
//! `anthropic-beta` headers come from [`super::beta`], the one place that names them,
//! and a 404 with the header marks the feature unavailable to the organization, once.
//!
//! Time: waits use `tokio::time`. Tests that pause tokio time should also turn the
//! reqwest timeouts off (`connect_timeout`/`request_timeout = None`): with paused time
//! the runtime jumps to the next timer while it waits for the network, and a request
//! timeout would then fire at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

mod beta_calls;
mod wire;

use wire::{encode, seg};

use super::beta::BetaFeatures;
use super::error::CoworkError;
use super::plugins::*;
use super::ratelimit::{Backoff, Jitter, TokenBucket};
use super::types::*;
use super::{
    CallCounter, CallCounts, CoworkApi, CoworkResult, Created, IdempotencyKey, Mode, Outcome,
};

mod config;
mod transport;

pub(crate) use config::http_client;
pub use config::{ClientConfig, ANTHROPIC_VERSION};
use transport::{Call, Limit, CONNECT_FAILED};

/// The reqwest client for the Cowork admin API (tier A and tier B).
#[derive(Debug)]
pub struct HttpCoworkClient {
    http: reqwest::Client,
    base: String,
    mode: Mode,
    admin: TokenBucket,
    spend: TokenBucket,
    invites: TokenBucket,
    plugin_reads: TokenBucket,
    plugin_writes: TokenBucket,
    /// Beta features found unavailable to the organization.
    betas: BetaFeatures,
    /// One write at a time per plugin (the Plugins API answers 503 otherwise).
    plugin_locks: parking_lot::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>,
    >,
    max_attempts: u32,
    backoff: Backoff,
    jitter: Jitter,
    page_size: u32,
    counts: CallCounter,
    /// The `request-id` of the latest write the server accepted, until taken.
    last_write: parking_lot::Mutex<Option<String>>,
}

impl HttpCoworkClient {
    /// Builds a client. Fails on an unusable base URL or key.
    pub fn new(config: ClientConfig) -> Result<Self, CoworkError> {
        let (http, base_url) = config::http_client(
            &config.base_url,
            &config.api_key,
            "API key",
            config.connect_timeout,
            config.request_timeout,
        )?;
        Ok(Self {
            http,
            base: format!("{base_url}/v1/organizations"),
            mode: config.mode,
            admin: TokenBucket::per_minute(config.requests_per_minute),
            spend: TokenBucket::per_minute(config.spend_requests_per_minute),
            invites: TokenBucket::new(config.invites_per_hour, Duration::from_secs(3600)),
            plugin_reads: TokenBucket::per_minute(config.plugin_reads_per_minute),
            plugin_writes: TokenBucket::per_minute(config.plugin_writes_per_minute),
            betas: BetaFeatures::default(),
            plugin_locks: parking_lot::Mutex::new(std::collections::HashMap::new()),
            max_attempts: config.max_attempts.max(1),
            backoff: config.backoff,
            jitter: Jitter::from_entropy(),
            page_size: config.page_size.clamp(1, 1000),
            counts: CallCounter::default(),
            last_write: parking_lot::Mutex::new(None),
        })
    }
}

impl CoworkApi for HttpCoworkClient {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn call_counts(&self) -> CallCounts {
        self.counts.snapshot()
    }

    fn take_write_request_id(&self) -> Option<String> {
        self.last_write.lock().take()
    }

    async fn get_me(&self) -> CoworkResult<Organization> {
        self.fetch(&Call::get("get_me", "/me".into(), Limit::Admin))
            .await
    }

    async fn list_users(&self) -> CoworkResult<Vec<User>> {
        self.list_by_id("list_users", "/users").await
    }

    async fn get_user(&self, user_id: &str) -> CoworkResult<User> {
        let path = format!("/users/{}", seg(user_id));
        self.fetch(&Call::get("get_user", path, Limit::Admin)).await
    }

    async fn set_user_role(
        &self,
        user_id: &str,
        role: OrgRole,
        key: &IdempotencyKey,
    ) -> CoworkResult<User> {
        let body = encode(&UserRoleUpdate { role })?;
        let path = format!("/users/{}", seg(user_id));
        let call = Call::write(
            "set_user_role",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn remove_user(&self, user_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        let path = format!("/users/{}", seg(user_id));
        let call = Call::write("remove_user", Method::DELETE, path, None, key, Limit::Admin);
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn withdraw_invite(
        &self,
        invite_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/invites/{}", seg(invite_id));
        let call = Call::write(
            "withdraw_invite",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, |e| {
            e.is_not_found() || matches!(e, CoworkError::InvalidRequest { .. })
        })
    }

    async fn list_invites(&self) -> CoworkResult<Vec<Invite>> {
        self.list_by_id("list_invites", "/invites").await
    }

    async fn create_invite(
        &self,
        invite: &InviteRequest,
        key: &IdempotencyKey,
    ) -> CoworkResult<Invite> {
        let body = encode(invite)?;
        let call = Call::write(
            "create_invite",
            Method::POST,
            "/invites".into(),
            Some(body),
            key,
            Limit::Invite,
        );
        self.fetch(&call).await
    }

    async fn list_groups(&self) -> CoworkResult<Vec<RbacGroup>> {
        self.list_by_cursor("list_groups", "/rbac_groups", Limit::Admin, &[])
            .await
    }

    async fn get_group(&self, group_id: &str) -> CoworkResult<RbacGroup> {
        let path = format!("/rbac_groups/{}", seg(group_id));
        self.fetch(&Call::get("get_group", path, Limit::Admin))
            .await
    }

    async fn create_group(
        &self,
        group: &NewGroup,
        key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacGroup>> {
        let (body, not_idempotent) = match self.mode {
            // `external_id` makes a repeated create a 409 naming the group.
            Mode::Extended => (encode(group)?, false),
            // Names are not unique and no idempotency key is documented: a repeated
            // create makes a second group. The executor finds a lost create instead.
            Mode::Real => (encode(&json!({ "name": group.name }))?, true),
        };
        let mut call = Call::write(
            "create_group",
            Method::POST,
            "/rbac_groups".into(),
            Some(body),
            key,
            Limit::Admin,
        );
        if not_idempotent {
            call = call.not_idempotent();
        }
        Created::from_result(self.fetch(&call).await)
    }

    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        let body = match self.mode {
            Mode::Extended => encode(update)?,
            Mode::Real => {
                let Some(name) = &update.name else {
                    return Err(CoworkError::NotInRealApi {
                        operation: "update_group_description",
                    });
                };
                encode(&json!({ "name": name }))?
            }
        };
        let path = format!("/rbac_groups/{}", seg(group_id));
        let call = Call::write(
            "update_group",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn delete_group(&self, group_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        let path = format!("/rbac_groups/{}", seg(group_id));
        let call = Call::write(
            "delete_group",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn list_group_members(&self, group_id: &str) -> CoworkResult<Vec<RbacGroupMember>> {
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        self.list_by_cursor("list_group_members", &path, Limit::Admin, &[])
            .await
    }

    async fn add_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let body = encode(&AddMember {
            user_id: user_id.to_owned(),
        })?;
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        let call = Call::write(
            "add_group_member",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_already_member)
    }

    async fn remove_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/rbac_groups/{}/members/{}", seg(group_id), seg(user_id));
        let call = Call::write(
            "remove_group_member",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Admin,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn set_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        key: &IdempotencyKey,
    ) -> CoworkResult<SetMembersResult> {
        self.mode.require_extended("set_group_members")?;
        let body = encode(&SetMembers {
            user_ids: user_ids.to_vec(),
        })?;
        let path = format!("/rbac_groups/{}/members", seg(group_id));
        let call = Call::write(
            "set_group_members",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn list_roles(&self) -> CoworkResult<Vec<RbacRole>> {
        self.list_by_cursor("list_roles", "/rbac_roles", Limit::Admin, &[])
            .await
    }

    async fn list_role_permissions(&self, role_id: &str) -> CoworkResult<Vec<RolePermission>> {
        let path = format!("/rbac_roles/{}/permissions", seg(role_id));
        self.list_by_cursor("list_role_permissions", &path, Limit::Admin, &[])
            .await
    }

    async fn create_role(
        &self,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacRole>> {
        self.mode.require_extended("create_role")?;
        let body = encode(spec)?;
        let call = Call::write(
            "create_role",
            Method::POST,
            "/rbac_roles".into(),
            Some(body),
            key,
            Limit::Admin,
        );
        Created::from_result(self.fetch(&call).await)
    }

    async fn update_role(
        &self,
        role_id: &str,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacRole> {
        self.mode.require_extended("update_role")?;
        let body = encode(spec)?;
        let path = format!("/rbac_roles/{}", seg(role_id));
        let call = Call::write(
            "update_role",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn delete_role(&self, role_id: &str, key: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.mode.require_extended("delete_role")?;
        let path = format!("/rbac_roles/{}", seg(role_id));
        let call = Call::write("delete_role", Method::DELETE, path, None, key, Limit::Admin);
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn set_group_roles(
        &self,
        group_id: &str,
        role_ids: &[String],
        key: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        self.mode.require_extended("set_group_roles")?;
        let body = encode(&SetRoles {
            role_ids: role_ids.to_vec(),
        })?;
        let path = format!("/rbac_groups/{}/roles", seg(group_id));
        let call = Call::write(
            "set_group_roles",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn list_effective_spend(&self) -> CoworkResult<Vec<SpendSummary>> {
        self.list_by_cursor(
            "list_effective_spend",
            "/spend_limits/effective",
            Limit::Spend,
            &[],
        )
        .await
    }

    async fn list_spend_limits(&self, filter: &SpendLimitFilter) -> CoworkResult<Vec<SpendLimit>> {
        self.read_spend_limits(filter).await
    }

    async fn list_plugins(&self) -> CoworkResult<Vec<Plugin>> {
        self.read_plugins().await
    }

    async fn list_plugin_settings(&self, plugin_id: &str) -> CoworkResult<Vec<PluginSetting>> {
        self.read_plugin_settings(plugin_id).await
    }

    async fn set_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        key: &IdempotencyKey,
    ) -> CoworkResult<PluginSetting> {
        self.write_plugin_setting(plugin_id, target, preference, key)
            .await
    }

    async fn delete_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        self.remove_plugin_setting(plugin_id, target, key).await
    }

    async fn upsert_user_spend_limit(
        &self,
        user_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        let scope = SpendScope::User {
            user_id: user_id.to_owned(),
        };
        let body = self.spend_body(scope, amount_minor, currency)?;
        let call = Call::write(
            "upsert_user_spend_limit",
            Method::POST,
            "/spend_limits".into(),
            Some(body),
            key,
            Limit::Spend,
        );
        self.fetch(&call).await
    }

    async fn upsert_group_spend_limit(
        &self,
        group_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        self.mode.require_extended("upsert_group_spend_limit")?;
        let scope = SpendScope::RbacGroup {
            rbac_group_id: group_id.to_owned(),
        };
        let body = self.spend_body(scope, amount_minor, currency)?;
        let call = Call::write(
            "upsert_group_spend_limit",
            Method::POST,
            "/spend_limits".into(),
            Some(body),
            key,
            Limit::Spend,
        );
        self.fetch(&call).await
    }

    async fn delete_spend_limit(
        &self,
        spend_limit_id: &str,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        let path = format!("/spend_limits/{}", seg(spend_limit_id));
        let call = Call::write(
            "delete_spend_limit",
            Method::DELETE,
            path,
            None,
            key,
            Limit::Spend,
        );
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }

    async fn list_plugin_policies(&self) -> CoworkResult<Vec<PluginPolicy>> {
        self.list_by_cursor(
            "list_plugin_policies",
            "/plugin_policies",
            Limit::Admin,
            &[],
        )
        .await
    }

    async fn put_plugin_policy(
        &self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        key: &IdempotencyKey,
    ) -> CoworkResult<PluginPolicy> {
        self.mode.require_extended("put_plugin_policy")?;
        let body = encode(update)?;
        let path = format!("/plugin_policies/{}", seg(plugin_id));
        let call = Call::write(
            "put_plugin_policy",
            Method::PUT,
            path,
            Some(body),
            key,
            Limit::Admin,
        );
        self.fetch(&call).await
    }

    async fn get_effective_access(&self, user_id: &str) -> CoworkResult<EffectiveAccess> {
        let path = format!("/users/{}/effective_access", seg(user_id));
        self.fetch(&Call::get("get_effective_access", path, Limit::Admin))
            .await
    }
}

#[cfg(test)]
mod tests;
