//! The downstream side: a client for the Cowork admin API.
//!
//! - [`types`]: the wire objects, with Anthropic's exact field names and id prefixes
//!   (`user_01…`, `rbac_group_01…`, `rbac_role_01…`, `spl_01…`, `invite_01…`).
//! - [`CoworkApi`]: everything the reconcile planner and executor need, as a trait, so
//!   the executor can run against [`HttpCoworkClient`] (reqwest) or an in-memory fake
//!   (`crate::sim::SimApi`, the simulator's model without HTTP).
//! - [`error::CoworkError`]: classified failures; only transient failures and rate
//!   limits are retried (inside the client).
//!
//! Two tiers (see `shared/reference/cowork-admin-api.md` §3): tier A is Anthropic's
//! Admin API as documented; tier B is our extension (role writes, role attachment,
//! group spend limits, plugin policies, member replacement, effective access). In
//! [`Mode::Real`] the client refuses tier-B writes with
//! [`CoworkError::NotInRealApi`], so the planner reports those differences as drift.
//!
//! Since the first edition the real API grew (reference §1.10): the beta Plugins API
//! (tier A: plugin installation settings per group and org-wide) and the beta
//! spend-limit reads; [`beta`] names every beta header in one place.
//!
//! This module sits at the bottom of the dependency graph: it imports nothing of
//! ours. The simulator (`crate::sim`) imports it, never the other way round.

pub mod analytics;
pub mod beta;
pub mod client;
pub mod error;
pub mod plugins;
pub mod ratelimit;
pub mod types;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

pub use beta::Beta;
pub use client::{ClientConfig, HttpCoworkClient};
pub use error::CoworkError;
pub use plugins::*;
pub use types::*;

/// Which tier the client may write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anthropic's Admin API as documented: tier-B writes are refused locally.
    Real,
    /// Our simulator or a compatible server: both tiers are written.
    #[default]
    Extended,
}

impl Mode {
    /// `"real"` or `"extended"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Extended => "extended",
        }
    }

    /// `Ok` in extended mode; [`CoworkError::NotInRealApi`] in real mode.
    pub fn require_extended(self, operation: &'static str) -> Result<(), CoworkError> {
        match self {
            Mode::Extended => Ok(()),
            Mode::Real => Err(CoworkError::NotInRealApi { operation }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(Mode::Real),
            "extended" => Ok(Mode::Extended),
            _ => Err(format!(
                "unknown cowork mode {s:?} (expected \"real\" or \"extended\")"
            )),
        }
    }
}

/// The `Idempotency-Key` of one logical write. Derive it from the operation (for
/// example the reconcile run id and the action), so that the client's own retries,
/// and a replay of the same action after a restart, reuse it; the server then answers
/// a repeat with the first answer instead of applying the write twice.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A key from parts (hashed with SHA-256, so parts may be long or personal: the
    /// key itself reveals nothing).
    pub fn derive<S: AsRef<str>>(parts: &[S]) -> Self {
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_ref().as_bytes()).collect();
        Self(format!("cs_{}", hash_hex(&parts, 16)))
    }

    /// A key taken verbatim (1–255 visible ASCII characters; otherwise it is hashed).
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) {
            Self(key)
        } else {
            Self::derive(&[key])
        }
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 over length-prefixed `parts` (so part boundaries matter), as hex of the
/// first `bytes` bytes.
pub(crate) fn hash_hex(parts: &[&[u8]], bytes: usize) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A create that converges: either the server made a new object, or an object with
/// the same `external_id` already existed (409 with `details.existing_id`).
#[derive(Clone, Debug, PartialEq)]
pub enum Created<T> {
    /// Newly created.
    New(T),
    /// Already there; its id.
    Existing {
        /// The id of the object that holds the `external_id`.
        id: String,
    },
}

impl<T> Created<T> {
    /// `Created::New` on success, `Created::Existing` on a 409 that names the object
    /// already holding the `external_id`.
    pub fn from_result(result: CoworkResult<T>) -> CoworkResult<Self> {
        match result {
            Ok(v) => Ok(Created::New(v)),
            Err(CoworkError::Conflict {
                existing_id: Some(id),
                ..
            }) => Ok(Created::Existing { id }),
            Err(e) => Err(e),
        }
    }
}

impl Created<RbacGroup> {
    /// The group's id either way.
    pub fn id(&self) -> &str {
        match self {
            Created::New(g) => &g.id,
            Created::Existing { id } => id,
        }
    }
}

impl Created<RbacRole> {
    /// The role's id either way.
    pub fn id(&self) -> &str {
        match self {
            Created::New(r) => &r.id,
            Created::Existing { id } => id,
        }
    }
}

/// The result of a write that converges on "already so".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server changed something.
    Applied,
    /// Nothing to do: already a member, not a member, already deleted.
    AlreadyInState,
}

impl Outcome {
    /// `Applied` on success, `AlreadyInState` when `already` recognises the error.
    pub fn from_result<T>(
        result: CoworkResult<T>,
        already: impl Fn(&CoworkError) -> bool,
    ) -> CoworkResult<Self> {
        match result {
            Ok(_) => Ok(Outcome::Applied),
            Err(e) if already(&e) => Ok(Outcome::AlreadyInState),
            Err(e) => Err(e),
        }
    }
}

/// Calls made by a client since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCounts {
    /// Read requests (each page counts).
    pub reads: u64,
    /// Write requests (each logical write once, however often it was retried).
    pub writes: u64,
    /// Extra attempts after a transient failure or a 429.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
}

/// Atomic [`CallCounts`].
#[derive(Debug, Default)]
pub struct CallCounter {
    reads: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
}

impl CallCounter {
    /// Counts a read.
    pub fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a write.
    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a retry.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a 429.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
        }
    }
}

/// Result of a downstream call.
pub type CoworkResult<T> = Result<T, CoworkError>;

/// The Cowork admin API as the reconcile planner and executor use it.
///
/// List methods follow every page until the server says there are no more. Every
/// write takes an [`IdempotencyKey`]. Methods marked *tier B* write only in
/// [`Mode::Extended`]; in [`Mode::Real`] they fail with
/// [`CoworkError::NotInRealApi`] without calling the server.
///
/// The futures are `Send`, so callers can spawn them; callers are generic over the
/// implementation (`async fn run<C: CoworkApi>(client: &C)`).
pub trait CoworkApi: Send + Sync {
    /// The write mode.
    fn mode(&self) -> Mode;

    /// Calls made so far.
    fn call_counts(&self) -> CallCounts;

    /// The server's `request-id` for the latest write it accepted since the last
    /// call, taken (so an audit entry can name the request that made a change).
    /// Meaningful while writes are not concurrent: the executor applies actions one
    /// at a time under the reconciler's apply lock. `None` when unknown.
    fn take_write_request_id(&self) -> Option<String> {
        None
    }

    /// E1 `GET /me`: organization, plan, provisioning mode, settings, capabilities
    /// (only `id` and `name` against the real API).
    fn get_me(&self) -> impl Future<Output = CoworkResult<Organization>> + Send;

    /// E2: every member (ID pagination, newest first).
    fn list_users(&self) -> impl Future<Output = CoworkResult<Vec<User>>> + Send;

    /// E3: one member.
    fn get_user(&self, user_id: &str) -> impl Future<Output = CoworkResult<User>> + Send;

    /// E3: sets a member's org role (`user` or `managed` only).
    fn set_user_role(
        &self,
        user_id: &str,
        role: OrgRole,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<User>> + Send;

    /// E3: removes a member from the organization (frees the seat); an unknown member
    /// is already in state. The API refuses admin roles and SCIM-managed membership.
    fn remove_user(
        &self,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E4: withdraws a pending invite; one that is gone, or no longer pending
    /// (accepted or expired), is already in state.
    fn withdraw_invite(
        &self,
        invite_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E4: every invite (ID pagination).
    fn list_invites(&self) -> impl Future<Output = CoworkResult<Vec<Invite>>> + Send;

    /// E4: invites someone, optionally into groups.
    fn create_invite(
        &self,
        invite: &InviteRequest,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Invite>> + Send;

    /// E5: every group, SCIM groups included (cursor pagination).
    fn list_groups(&self) -> impl Future<Output = CoworkResult<Vec<RbacGroup>>> + Send;

    /// E7: one group.
    fn get_group(&self, group_id: &str) -> impl Future<Output = CoworkResult<RbacGroup>> + Send;

    /// E6: creates a group. With an `external_id` (tier B) a repeat converges on the
    /// existing group. In real mode only `name` is sent.
    fn create_group(
        &self,
        group: &NewGroup,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Created<RbacGroup>>> + Send;

    /// E7: renames a group (and, tier B, changes its description).
    fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<RbacGroup>> + Send;

    /// E7: renames a group.
    fn rename_group(
        &self,
        group_id: &str,
        name: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<RbacGroup>> + Send {
        async move {
            let update = GroupUpdate {
                name: Some(name.to_owned()),
                description: None,
            };
            self.update_group(group_id, &update, key).await
        }
    }

    /// E7: deletes a group; an unknown group is already in state.
    fn delete_group(
        &self,
        group_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E8: every member of a group (cursor pagination, oldest first).
    fn list_group_members(
        &self,
        group_id: &str,
    ) -> impl Future<Output = CoworkResult<Vec<RbacGroupMember>>> + Send;

    /// E8: adds a member; "already a member" is already in state.
    fn add_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E8: removes a member; "not a member" (404) is already in state.
    fn remove_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E9 (tier B): replaces a group's members (at most 10,000).
    fn set_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<SetMembersResult>> + Send;

    /// E11: every custom role (cursor pagination).
    fn list_roles(&self) -> impl Future<Output = CoworkResult<Vec<RbacRole>>> + Send;

    /// E11: a role's permission rows (cursor pagination).
    fn list_role_permissions(
        &self,
        role_id: &str,
    ) -> impl Future<Output = CoworkResult<Vec<RolePermission>>> + Send;

    /// E12 (tier B): creates a role; a repeat with the same `external_id` converges.
    fn create_role(
        &self,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Created<RbacRole>>> + Send;

    /// E12 (tier B): replaces a role's definition.
    fn update_role(
        &self,
        role_id: &str,
        spec: &RoleSpec,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<RbacRole>> + Send;

    /// E12 (tier B): deletes a role (it is detached from every group).
    fn delete_role(
        &self,
        role_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// E10 (tier B): replaces the roles attached to a group.
    fn set_group_roles(
        &self,
        group_id: &str,
        role_ids: &[String],
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<RbacGroup>> + Send;

    /// E13: every member's effective spend limit rows.
    fn list_effective_spend(&self) -> impl Future<Output = CoworkResult<Vec<SpendSummary>>> + Send;

    /// Configured spend-limit rows of every scope: the beta spend-limit reads
    /// (`anthropic-beta: spend-limit-reads-2026-09-26`), or tier B's E14.
    fn list_spend_limits(
        &self,
        filter: &SpendLimitFilter,
    ) -> impl Future<Output = CoworkResult<Vec<SpendLimit>>> + Send;

    /// E13: sets a member's monthly override (`None` = explicitly unlimited), in minor
    /// units of `currency` (which must be the billing currency).
    fn upsert_user_spend_limit(
        &self,
        user_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<SpendLimit>> + Send;

    /// E14 (tier B): sets a group's monthly per-member default.
    fn upsert_group_spend_limit(
        &self,
        group_id: &str,
        amount_minor: Option<u64>,
        currency: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<SpendLimit>> + Send;

    /// E13: deletes a spend-limit row; an unknown row is already in state.
    fn delete_spend_limit(
        &self,
        spend_limit_id: &str,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send;

    /// Beta Plugins API: the organization's plugins with their ids (names map to ids
    /// here). Fails with [`CoworkError::BetaUnavailable`] where the API is not offered.
    fn list_plugins(&self) -> impl Future<Output = CoworkResult<Vec<Plugin>>> + Send {
        async {
            Err(CoworkError::BetaUnavailable {
                feature: Beta::Plugins.label(),
            })
        }
    }

    /// Beta Plugins API: a plugin's installation settings, org-wide and per group.
    fn list_plugin_settings(
        &self,
        plugin_id: &str,
    ) -> impl Future<Output = CoworkResult<Vec<PluginSetting>>> + Send {
        let _ = plugin_id;
        async {
            Err(CoworkError::BetaUnavailable {
                feature: Beta::Plugins.label(),
            })
        }
    }

    /// Beta Plugins API (tier A): sets one installation setting (the same value again
    /// is a no-op). Writes to one plugin go one at a time.
    fn set_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<PluginSetting>> + Send {
        let _ = (plugin_id, target, preference, key);
        async {
            Err(CoworkError::BetaUnavailable {
                feature: Beta::Plugins.label(),
            })
        }
    }

    /// Beta Plugins API (tier A): deletes one installation setting; a setting that is
    /// not there (404, a repeated delete) is already in state.
    fn delete_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<Outcome>> + Send {
        let _ = (plugin_id, target, key);
        async {
            Err(CoworkError::BetaUnavailable {
                feature: Beta::Plugins.label(),
            })
        }
    }

    /// E16 (tier B read): every plugin policy.
    fn list_plugin_policies(&self) -> impl Future<Output = CoworkResult<Vec<PluginPolicy>>> + Send;

    /// E16 (tier B): replaces a plugin's overrides (and optionally its org preference).
    fn put_plugin_policy(
        &self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        key: &IdempotencyKey,
    ) -> impl Future<Output = CoworkResult<PluginPolicy>> + Send;

    /// E17 (tier B read): a member's effective access as the server resolves it.
    fn get_effective_access(
        &self,
        user_id: &str,
    ) -> impl Future<Output = CoworkResult<EffectiveAccess>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_and_distinct() {
        let a = IdempotencyKey::derive(&["run-1", "add", "g", "u"]);
        let b = IdempotencyKey::derive(&["run-1", "add", "g", "u"]);
        let c = IdempotencyKey::derive(&["run-1", "add", "gu", ""]);
        assert_eq!(a, b);
        assert_ne!(a, c, "part boundaries matter");
        assert!(a.as_str().starts_with("cs_") && a.as_str().len() == 35);
        assert_eq!(IdempotencyKey::new("abc").as_str(), "abc");
        assert!(IdempotencyKey::new("has space").as_str().starts_with("cs_"));
    }

    #[test]
    fn real_mode_refuses_tier_b_operations() {
        assert!(Mode::Extended.require_extended("create_role").is_ok());
        let err = Mode::Real.require_extended("create_role").unwrap_err();
        assert!(matches!(
            err,
            CoworkError::NotInRealApi {
                operation: "create_role"
            }
        ));
        assert_eq!("real".parse::<Mode>().unwrap(), Mode::Real);
        assert!("fake".parse::<Mode>().is_err());
    }
}
