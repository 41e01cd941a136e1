//! The simulator's model: one organization with its members, invites, groups,
//! memberships, custom roles, spend limits and plugin settings, and the product rules
//! (R1–R19) that the real service enforces. Pure and synchronous: no I/O, no clock
//! (callers pass `now`), no HTTP. The HTTP layer and the in-memory fake both call it.
//!
//! This file holds the organization, the collections and the snapshot; each resource's
//! operations live in their own file (`members`, `invites`, `groups`, `roles`,
//! `spend`, `plugins` for tier-B policies, `plugins_api` for the beta Plugins API,
//! `usage` for the usage behind the analytics), all as methods of [`SimState`].

mod groups;
mod invites;
mod members;
mod plugins;
mod plugins_api;
mod roles;
mod spend;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_usage;
mod usage;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::page::{make_id, seq_of_id, splitmix64, CursorQuery, IdQuery};
use crate::cowork::plugins::*;
use crate::cowork::types::*;

pub use super::error::{ApiError, ApiResult};
pub use groups::NewSimGroup;
pub use members::NewMember;
pub use plugins_api::plugin_api_id;
pub use usage::{UsageGroup, UsageRecord};

/// The most groups an organization may have (R6).
pub const MAX_GROUPS: usize = 100;
/// The most ids a member replacement may carry (E9).
pub const MAX_SET_MEMBERS: usize = 10_000;
/// How long an invite stays pending.
pub const INVITE_TTL_DAYS: i64 = 21;

/// Features the product treats as generally available (covered by `all_ga`).
pub const GA_FEATURES: [&str; 5] = [
    "chat",
    "cowork",
    "claude_code",
    "web_search",
    "code_execution",
];

/// The organization record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Plan.
    pub plan: Plan,
    /// Provisioning mode.
    pub provisioning_mode: ProvisioningMode,
    /// Settings.
    pub settings: OrgSettings,
}

/// A group membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRec {
    /// The member.
    pub user_id: String,
    /// When added.
    pub created_at: DateTime<Utc>,
    /// Order of addition (oldest first listing).
    pub seq: u64,
}

/// An ordered collection keyed by id, listed by creation sequence.
#[derive(Clone, Debug)]
pub struct Coll<T> {
    by_seq: BTreeMap<u64, T>,
    seq_of: HashMap<String, u64>,
}

impl<T> Default for Coll<T> {
    fn default() -> Self {
        Self {
            by_seq: BTreeMap::new(),
            seq_of: HashMap::new(),
        }
    }
}

impl<T> Coll<T> {
    fn insert(&mut self, id: String, seq: u64, value: T) {
        if let Some(old) = self.seq_of.insert(id, seq) {
            self.by_seq.remove(&old);
        }
        self.by_seq.insert(seq, value);
    }

    /// The item with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.seq_of.get(id).and_then(|s| self.by_seq.get(s))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let seq = *self.seq_of.get(id)?;
        self.by_seq.get_mut(&seq)
    }

    fn remove(&mut self, id: &str) -> Option<T> {
        let seq = self.seq_of.remove(id)?;
        self.by_seq.remove(&seq)
    }

    /// Whether the id is present.
    pub fn contains(&self, id: &str) -> bool {
        self.seq_of.contains_key(id)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// One cursor page of every item, oldest first.
    fn cursor_page(&self, q: &CursorQuery) -> ApiResult<CursorPage<T>>
    where
        T: Clone,
    {
        let start = q.start()?;
        let items = self
            .by_seq
            .range(start.range())
            .map(|(k, v)| (*k, v.clone()));
        Ok(q.finish(start, items))
    }

    /// Items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.by_seq.values()
    }

    /// Items by sequence.
    pub fn by_seq(&self) -> &BTreeMap<u64, T> {
        &self.by_seq
    }
}

/// Everything the simulator persists: the model without its indexes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version.
    pub format: u32,
    /// The organization.
    pub org: OrgRecord,
    /// Members, oldest first.
    pub users: Vec<User>,
    /// Invites, oldest first.
    pub invites: Vec<Invite>,
    /// Groups, oldest first.
    pub groups: Vec<RbacGroup>,
    /// Group id → memberships, oldest first.
    pub members: BTreeMap<String, Vec<MemberRec>>,
    /// Roles, oldest first.
    pub roles: Vec<RbacRole>,
    /// Spend-limit rows, oldest first.
    pub spend_limits: Vec<SpendLimit>,
    /// Plugin id → group overrides.
    pub plugin_overrides: BTreeMap<String, Vec<GroupOverride>>,
    /// Plugins whose org-wide setting was deleted (the marketplace default applies).
    #[serde(default)]
    pub plugin_org_unset: BTreeSet<String>,
    /// Next creation sequence.
    pub next_seq: u64,
    /// Last change that affects members' effective access.
    #[serde(default)]
    pub access_changed_at: Option<DateTime<Utc>>,
    /// Usage posted through `POST /_sim/usage`, in posting order.
    #[serde(default)]
    pub usage: Vec<UsageRecord>,
}

/// A stored answer to an idempotent write.
#[derive(Clone, Debug)]
pub struct IdemRecord {
    /// Hash of method, path and body.
    pub fingerprint: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's body.
    pub body: Vec<u8>,
    /// When the record is forgotten (24 h after the first answer).
    pub expires_at: DateTime<Utc>,
}

/// The simulated organization and its rules.
#[derive(Clone, Debug)]
pub struct SimState {
    org: OrgRecord,
    users: Coll<User>,
    emails: HashMap<String, String>,
    invites: Coll<Invite>,
    groups: Coll<RbacGroup>,
    group_ext: HashMap<String, String>,
    members: HashMap<String, Coll<MemberRec>>,
    user_groups: HashMap<String, BTreeSet<String>>,
    roles: Coll<RbacRole>,
    role_ext: HashMap<String, String>,
    spend: Coll<SpendLimit>,
    spend_key: HashMap<(SpendScope, String), String>,
    plugin_overrides: BTreeMap<String, Vec<GroupOverride>>,
    plugin_org_unset: BTreeSet<String>,
    idempotency: HashMap<String, IdemRecord>,
    next_seq: u64,
    access_changed_at: Option<DateTime<Utc>>,
    usage: Vec<UsageRecord>,
}

/// Lowercases an email and drops a `+tag` in the local part, so lookups are
/// case-insensitive and tolerant of tag variants (as the real `email` filter is).
pub fn email_key(email: &str) -> String {
    let lower = email.trim().to_ascii_lowercase();
    match lower.split_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => lower,
    }
}

fn check_name(name: &str, what: &str) -> ApiResult<()> {
    let len = name.trim().chars().count();
    if len == 0 || name.chars().count() > 255 {
        return Err(ApiError::invalid(
            None,
            &format!("{what} must be 1 to 255 characters"),
        ));
    }
    Ok(())
}

fn check_version(current: Option<u64>, if_match: Option<u64>) -> ApiResult<()> {
    match if_match {
        Some(v) if Some(v) != current => Err(ApiError::conflict(
            "version_mismatch",
            "If-Match does not match the current version",
        )),
        _ => Ok(()),
    }
}

impl SimState {
    /// The first-start organization (documented in the module docs of `sim`).
    pub fn seeded(now: DateTime<Utc>) -> Self {
        let tools = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let settings = OrgSettings {
            cowork_enabled: true,
            claude_code_enabled: true,
            chat_enabled: true,
            web_search_enabled: true,
            code_execution_enabled: true,
            skills_enabled: true,
            user_skill_creation_enabled: true,
            skill_sharing_enabled: true,
            org_wide_skill_sharing_enabled: false,
            connector_tools_default_always_allow: true,
            usage_credits_enabled: true,
            computer_use_available: false,
            billing_currency: "USD".into(),
            connectors: vec![
                OrgConnector {
                    id: "mcpsrv_github".into(),
                    name: "GitHub".into(),
                    enabled: true,
                    tools: tools(&["search_code", "create_issue", "create_pull_request"]),
                },
                OrgConnector {
                    id: "mcpsrv_jira".into(),
                    name: "Jira".into(),
                    enabled: true,
                    tools: tools(&["search_issues", "create_issue", "transition_issue"]),
                },
                OrgConnector {
                    id: "mcpsrv_slack".into(),
                    name: "Slack".into(),
                    enabled: true,
                    tools: tools(&["search_messages", "post_message"]),
                },
                OrgConnector {
                    id: "mcpsrv_drive".into(),
                    name: "Google Drive".into(),
                    enabled: true,
                    tools: tools(&["search_files", "read_file"]),
                },
            ],
            plugins: vec![
                OrgPlugin {
                    id: "finance-close".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Finance close".into(),
                    org_preference: Preference::Available,
                },
                OrgPlugin {
                    id: "brand-kit".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Brand kit".into(),
                    org_preference: Preference::Available,
                },
                OrgPlugin {
                    id: "security-review".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Security review".into(),
                    org_preference: Preference::Available,
                },
            ],
        };
        let org_bits = splitmix64(0x5EED_0001);
        let org_bits2 = splitmix64(0x5EED_0002);
        let org = OrgRecord {
            id: format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                org_bits >> 32,
                (org_bits >> 16) & 0xffff,
                org_bits & 0xfff,
                (org_bits2 >> 48) & 0xfff,
                org_bits2 & 0xffff_ffff_ffff
            ),
            name: "Example Corp (simulated)".into(),
            plan: Plan::Enterprise,
            provisioning_mode: ProvisioningMode::Manual,
            settings,
        };
        let mut state = Self::empty(org);
        let owner = NewMember {
            email: "owner@example.com".into(),
            name: Some("Primary Owner".into()),
            role: Some(OrgRole::PrimaryOwner),
            seat_tier: None,
        };
        // The seed is fixed and valid, so these cannot fail; errors are ignored.
        let _ = state.sim_add_member(&owner, now);
        let _ = state.sim_add_group(
            &NewSimGroup {
                name: "All Employees (SCIM)".into(),
                source_type: Some(SourceType::Scim),
                user_ids: Vec::new(),
            },
            now,
        );
        for (name, caps) in [
            ("Chat only", json!({"chat": true})),
            ("All GA features", json!({"all": "all_ga"})),
        ] {
            let spec = RoleSpec {
                name: name.into(),
                description: Some("Created in the admin console".into()),
                capabilities: serde_json::from_value(caps).unwrap_or_default(),
                ..RoleSpec::default()
            };
            let _ = state.create_role(&spec, now);
        }
        for name in ["Owner", "User"] {
            state.add_built_in_role(name, now);
        }
        state.access_changed_at = None;
        state
    }

    fn empty(org: OrgRecord) -> Self {
        Self {
            org,
            users: Coll::default(),
            emails: HashMap::new(),
            invites: Coll::default(),
            groups: Coll::default(),
            group_ext: HashMap::new(),
            members: HashMap::new(),
            user_groups: HashMap::new(),
            roles: Coll::default(),
            role_ext: HashMap::new(),
            spend: Coll::default(),
            spend_key: HashMap::new(),
            plugin_overrides: BTreeMap::new(),
            plugin_org_unset: BTreeSet::new(),
            idempotency: HashMap::new(),
            next_seq: 1,
            access_changed_at: None,
            usage: Vec::new(),
        }
    }

    /// Rebuilds the model (and its indexes) from a snapshot.
    pub fn from_snapshot(snap: Snapshot) -> Self {
        let mut s = Self::empty(snap.org);
        s.next_seq = snap.next_seq.max(1);
        for u in snap.users {
            let seq = s.restore_seq(&u.id);
            s.emails.insert(email_key(&u.email), u.id.clone());
            s.users.insert(u.id.clone(), seq, u);
        }
        for i in snap.invites {
            let seq = s.restore_seq(&i.id);
            s.invites.insert(i.id.clone(), seq, i);
        }
        for g in snap.groups {
            let seq = s.restore_seq(&g.id);
            if let Some(ext) = &g.external_id {
                s.group_ext.insert(ext.clone(), g.id.clone());
            }
            s.members.entry(g.id.clone()).or_default();
            s.groups.insert(g.id.clone(), seq, g);
        }
        for (gid, recs) in snap.members {
            if !s.groups.contains(&gid) {
                continue;
            }
            for m in recs {
                s.user_groups
                    .entry(m.user_id.clone())
                    .or_default()
                    .insert(gid.clone());
                s.next_seq = s.next_seq.max(m.seq + 1);
                s.members
                    .entry(gid.clone())
                    .or_default()
                    .insert(m.user_id.clone(), m.seq, m);
            }
        }
        for r in snap.roles {
            let seq = s.restore_seq(&r.id);
            if let Some(ext) = &r.external_id {
                s.role_ext.insert(ext.clone(), r.id.clone());
            }
            s.roles.insert(r.id.clone(), seq, r);
        }
        for l in snap.spend_limits {
            let seq = s.restore_seq(&l.id);
            s.spend_key
                .insert((l.scope.clone(), l.period.to_string()), l.id.clone());
            s.spend.insert(l.id.clone(), seq, l);
        }
        s.plugin_overrides = snap.plugin_overrides;
        s.plugin_org_unset = snap.plugin_org_unset;
        s.access_changed_at = snap.access_changed_at;
        s.usage = snap.usage;
        s
    }

    fn restore_seq(&mut self, id: &str) -> u64 {
        match seq_of_id(id) {
            Some(seq) => {
                self.next_seq = self.next_seq.max(seq + 1);
                seq
            }
            None => self.bump_seq(),
        }
    }

    /// The persistent part of the model.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format: 1,
            org: self.org.clone(),
            users: self.users.iter().cloned().collect(),
            invites: self.invites.iter().cloned().collect(),
            groups: self.groups.iter().cloned().collect(),
            members: self
                .groups
                .iter()
                .map(|g| {
                    let recs = self
                        .members
                        .get(&g.id)
                        .map(|c| c.iter().cloned().collect())
                        .unwrap_or_default();
                    (g.id.clone(), recs)
                })
                .collect(),
            roles: self.roles.iter().cloned().collect(),
            spend_limits: self.spend.iter().cloned().collect(),
            plugin_overrides: self.plugin_overrides.clone(),
            plugin_org_unset: self.plugin_org_unset.clone(),
            next_seq: self.next_seq,
            access_changed_at: self.access_changed_at,
            usage: self.usage.clone(),
        }
    }

    fn bump_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn new_id(&mut self, prefix: &str) -> (String, u64) {
        let seq = self.bump_seq();
        (make_id(prefix, seq), seq)
    }

    fn touch_access(&mut self, now: DateTime<Utc>) {
        self.access_changed_at = Some(now);
    }

    fn require_enterprise(&self) -> ApiResult<()> {
        if self.org.plan == Plan::Team {
            return Err(ApiError::plan());
        }
        Ok(())
    }

    // ---------------------------------------------------------------- organization

    /// The organization record.
    pub fn org(&self) -> &OrgRecord {
        &self.org
    }

    /// The organization record, for the simulator's own hooks.
    pub fn org_mut(&mut self) -> &mut OrgRecord {
        &mut self.org
    }

    /// `GET /me`.
    pub fn me(&self, extended: bool) -> Organization {
        Organization {
            id: self.org.id.clone(),
            name: self.org.name.clone(),
            plan: Some(self.org.plan.clone()),
            provisioning_mode: Some(self.org.provisioning_mode.clone()),
            settings: Some(self.org.settings.clone()),
            capabilities: ApiCapabilities {
                extended_api: extended,
                plugin_policies: extended,
                group_spend_limits_writable: extended,
            },
        }
    }

    /// Applies a partial update of the organization (`PUT /_sim/org`): any of `name`,
    /// `plan`, `provisioning_mode`, and `settings` (merged key by key).
    pub fn patch_org(&mut self, patch: &Value, now: DateTime<Utc>) -> ApiResult<Organization> {
        let mut current = serde_json::to_value(&self.org)
            .map_err(|_| ApiError::invalid(None, "organization could not be encoded"))?;
        let Some(patch) = patch.as_object() else {
            return Err(ApiError::invalid(None, "body must be a JSON object"));
        };
        for (key, value) in patch {
            match key.as_str() {
                "name" | "plan" | "provisioning_mode" => current[key] = value.clone(),
                "settings" => {
                    let Some(fields) = value.as_object() else {
                        return Err(ApiError::invalid(None, "settings must be an object"));
                    };
                    for (k, v) in fields {
                        current["settings"][k] = v.clone();
                    }
                }
                _ => {
                    return Err(ApiError::invalid(
                        None,
                        &format!("unknown organization field {key}"),
                    ))
                }
            }
        }
        self.org = serde_json::from_value(current)
            .map_err(|_| ApiError::invalid(None, "organization fields have the wrong types"))?;
        self.touch_access(now);
        Ok(self.me(true))
    }

    /// When the last access-relevant change happened.
    pub fn access_changed_at(&self) -> Option<DateTime<Utc>> {
        self.access_changed_at
    }

    // ---------------------------------------------------------------- idempotency

    /// The stored answer for an idempotency key, if still fresh.
    pub fn idempotent_answer(&self, key: &str, now: DateTime<Utc>) -> Option<&IdemRecord> {
        self.idempotency.get(key).filter(|r| r.expires_at > now)
    }

    /// Stores an answer for 24 hours (expired records are swept now and then).
    pub fn remember_answer(&mut self, key: String, record: IdemRecord, now: DateTime<Utc>) {
        if self.idempotency.len() % 4096 == 4095 {
            self.idempotency.retain(|_, r| r.expires_at > now);
        }
        self.idempotency.insert(key, record);
    }

    /// Forgets every stored answer.
    pub fn clear_idempotency(&mut self) {
        self.idempotency.clear();
    }
}
