//! Resolution: a directory [`Snapshot`] and a [`ValidRuleTable`] → the desired Cowork
//! state (org expectations, custom roles, groups with members, users to govern) and the
//! warnings the product's multi-group semantics call for (Cowork admin reference §3.5).
//!
//! Deterministic: the output is ordered (BTreeMap/BTreeSet) and does not depend on the
//! order of users, groups, members or rules in the input. Cost: one pass over the
//! memberships to index them, one closure walk per group rule, one evaluation of each
//! distinct filter per active user; never users × rules × members.
//!
//! Pure: no I/O; imports `scim` only through the compiled filters.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Plan, PluginPreference, ProvisioningMode, RoleSpec};
use super::validate::{RuleMatcher, SpendLimit, TargetGroup, ValidRuleTable};

/// The directory as resolution needs it: lean enough for 1,000,000 users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every user (active or not). Ids are unique.
    pub users: Vec<SnapshotUser>,
    /// Every IdP group. Ids are unique.
    pub groups: Vec<SnapshotGroup>,
}

/// One directory user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotUser {
    /// SCIM `id`.
    pub id: String,
    /// SCIM `userName`.
    pub user_name: String,
    /// SCIM `active`; an inactive user gets nothing and is in no group.
    pub active: bool,
    /// The primary email: the user's key downstream.
    pub email: Option<String>,
    /// The user projected onto the attributes the rule filters read
    /// ([`ValidRuleTable::project_user`]); `{}` when no rule has a filter.
    pub attributes: Value,
}

/// One IdP group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotGroup {
    /// SCIM `id`.
    pub id: String,
    /// SCIM `externalId`.
    pub external_id: Option<String>,
    /// SCIM `displayName`.
    pub display_name: String,
    /// Ids of the users that are direct members.
    pub member_users: Vec<String>,
    /// Ids of the groups nested directly inside this one.
    pub member_groups: Vec<String>,
}

/// Whether a rule's `match.group` text names this IdP group: its id or externalId
/// exactly, or its displayName case-insensitively.
pub fn names_group(group: &SnapshotGroup, text: &str) -> bool {
    group.id == text
        || group.external_id.as_deref() == Some(text)
        || group.display_name.eq_ignore_ascii_case(text)
        || (!group.display_name.is_ascii()
            && group.display_name.to_lowercase() == text.to_lowercase())
}

/// What the org must look like for the rules to work as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgExpectations {
    /// The plan.
    pub plan: Plan,
    /// Billing currency (ISO 4217).
    pub billing_currency: String,
    /// Org-level switches as declared.
    pub features: BTreeMap<String, bool>,
    /// Connectors that must be enabled at org level.
    pub connectors: BTreeSet<String>,
    /// Plugins in the org marketplace and their org preference.
    pub plugins: BTreeMap<String, PluginPreference>,
    /// Provisioning mode.
    pub provisioning_mode: ProvisioningMode,
    /// Whether usage credits are on.
    pub usage_credits: bool,
    /// The org's connector tool default.
    pub connector_tools_default_always_allow: bool,
    /// Whether users missing downstream may be invited (R15: not under JIT or SCIM).
    pub invites_allowed: bool,
    /// Whether org roles can be set to `managed` through the API (R3: not under `*_advanced`).
    pub org_roles_writable: bool,
}

/// One downstream group as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredGroup {
    /// `external_id`.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Role keys attached.
    pub roles: BTreeSet<String>,
    /// Per-member monthly spend default; `None` = the group sets none.
    pub monthly_spend: Option<SpendLimit>,
    /// Plugin overrides.
    pub plugins: BTreeMap<String, PluginPreference>,
    /// SCIM ids of the active users who belong.
    pub members: BTreeSet<String>,
    /// Ids of the rules filling it.
    pub rules: BTreeSet<String>,
}

/// A user the daemon governs: org role `managed`, member of at least one group
/// ([`DesiredState::groups_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedUser {
    /// The downstream key (`None`: the user cannot be matched downstream, see warnings).
    pub email: Option<String>,
}

/// Why a resolution warning was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionWarningCode {
    /// Users are in several groups with different monthly limits; the most permissive applies.
    MultiGroupSpendConflict,
    /// Users are in several groups with different preferences for one plugin; the most
    /// permissive applies.
    PluginPreferenceConflict,
    /// A rule's `match.group` names no IdP group.
    RuleGroupNotFound,
    /// An enabled rule matches no active user.
    RuleMatchedNobody,
    /// Governed users without a primary email cannot be matched downstream.
    UserWithoutEmail,
}

/// A finding of resolution. Names users by SCIM id, never by email or name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolutionWarning {
    /// The reason.
    pub code: ResolutionWarningCode,
    /// One readable sentence (with at most ten user ids).
    pub message: String,
    /// Rules concerned.
    pub rules: Vec<String>,
    /// Downstream group keys concerned.
    pub groups: Vec<String>,
    /// SCIM ids of every user concerned.
    pub user_ids: Vec<String>,
}

impl std::fmt::Display for ResolutionWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The Cowork state the rules ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredState {
    /// Org-level expectations.
    pub org: OrgExpectations,
    /// Custom roles by key.
    pub roles: BTreeMap<String, RoleSpec>,
    /// Downstream groups by key.
    pub groups: BTreeMap<String, DesiredGroup>,
    /// Users to set to org role `managed`, by SCIM id.
    pub managed_users: BTreeMap<String, ManagedUser>,
    /// Findings (multi-group conflicts, rules that match nobody, ...).
    pub warnings: Vec<ResolutionWarning>,
}

impl DesiredState {
    /// Keys of the downstream groups a user belongs to (e.g. for an invite's groups).
    pub fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.groups
            .values()
            .filter(move |g| g.members.contains(user_id))
            .map(|g| g.key.as_str())
    }
}

const MAX_IDS_IN_MESSAGE: usize = 10;

pub(crate) fn id_list(ids: &[String]) -> String {
    let shown = ids
        .iter()
        .take(MAX_IDS_IN_MESSAGE)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > MAX_IDS_IN_MESSAGE {
        format!("{shown} (+{} more)", ids.len() - MAX_IDS_IN_MESSAGE)
    } else {
        shown
    }
}

/// A dense set of user indices.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn and(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, w)| {
            let mut w = *w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + bit)
            })
        })
    }
}

/// FNV-1a: the index hashes a million short ids; SipHash's DoS resistance buys nothing
/// here (the ids come from the directory, and a collision only costs time).
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// The snapshot indexed by position, users and groups sorted by id.
struct Index<'a> {
    users: Vec<&'a SnapshotUser>,
    groups: Vec<&'a SnapshotGroup>,
    /// Per group: nested group positions.
    children: Vec<Vec<usize>>,
    /// Per group: direct user positions.
    direct: Vec<Vec<usize>>,
    active: Bits,
}

impl<'a> Index<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let mut users: Vec<&SnapshotUser> = snap.users.iter().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        let mut groups: Vec<&SnapshotGroup> = snap.groups.iter().collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        let user_ix: FnvMap<&str, usize> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.as_str(), i))
            .collect();
        let group_ix: FnvMap<&str, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.as_str(), i))
            .collect();
        let children = groups
            .iter()
            .map(|g| {
                g.member_groups
                    .iter()
                    .filter_map(|id| group_ix.get(id.as_str()).copied())
                    .collect()
            })
            .collect();
        let direct = groups
            .iter()
            .map(|g| {
                g.member_users
                    .iter()
                    .filter_map(|id| user_ix.get(id.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut active = Bits::new(users.len());
        for (i, u) in users.iter().enumerate() {
            if u.active {
                active.set(i);
            }
        }
        Index {
            users,
            groups,
            children,
            direct,
            active,
        }
    }

    /// Users in the named groups or in any group nested inside them (cycle-safe).
    fn closure(&self, roots: &[usize]) -> Bits {
        let mut bits = Bits::new(self.users.len());
        let mut seen = vec![false; self.groups.len()];
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(g) = stack.pop() {
            if std::mem::replace(&mut seen[g], true) {
                continue;
            }
            for &u in &self.direct[g] {
                bits.set(u);
            }
            stack.extend(self.children[g].iter().filter(|c| !seen[**c]));
        }
        bits
    }
}

/// Resolves the rule table against the directory.
pub fn resolve(table: &ValidRuleTable, snapshot: &Snapshot) -> DesiredState {
    let ix = Index::new(snapshot);
    let org = table.org();
    let mut warnings = Vec::new();

    // Each enabled rule's matched users, each distinct filter evaluated once per user.
    let mut hits: BTreeMap<&str, Bits> = BTreeMap::new();
    let mut filter_hits: HashMap<&str, Bits> = HashMap::new();
    for rule in table.rules().iter().filter(|r| r.enabled) {
        let mut bits = match &rule.matcher {
            RuleMatcher::Group(name) => {
                let roots: Vec<usize> = ix
                    .groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| names_group(g, name))
                    .map(|(i, _)| i)
                    .collect();
                if roots.is_empty() {
                    warnings.push(ResolutionWarning {
                        code: ResolutionWarningCode::RuleGroupNotFound,
                        message: format!(
                            "rule {:?}: match.group names no IdP group (by id, externalId or displayName)",
                            rule.id
                        ),
                        rules: vec![rule.id.clone()],
                        groups: vec![rule.group_key.clone()],
                        user_ids: Vec::new(),
                    });
                }
                ix.closure(&roots)
            }
            RuleMatcher::Filter { text, filter } => filter_hits
                .entry(text.as_str())
                .or_insert_with(|| {
                    let mut bits = Bits::new(ix.users.len());
                    for i in ix.active.iter() {
                        if filter.matches(&ix.users[i].attributes) {
                            bits.set(i);
                        }
                    }
                    bits
                })
                .clone(),
        };
        bits.and(&ix.active);
        if bits.is_empty() {
            warnings.push(ResolutionWarning {
                code: ResolutionWarningCode::RuleMatchedNobody,
                message: format!("rule {:?} matches no active user", rule.id),
                rules: vec![rule.id.clone()],
                groups: vec![rule.group_key.clone()],
                user_ids: Vec::new(),
            });
        }
        hits.insert(rule.id.as_str(), bits);
    }

    // Downstream groups: the union of their rules' users.
    let targets: Vec<&TargetGroup> = table.groups().values().collect();
    let mut user_groups: Vec<Vec<usize>> = vec![Vec::new(); ix.users.len()];
    let mut groups = BTreeMap::new();
    for (gi, tg) in targets.iter().enumerate() {
        let mut bits = Bits::new(ix.users.len());
        for rule in &tg.rules {
            if let Some(b) = hits.get(rule.as_str()) {
                bits.or(b);
            }
        }
        let mut members = Vec::new();
        for u in bits.iter() {
            user_groups[u].push(gi);
            members.push(ix.users[u].id.clone());
        }
        groups.insert(
            tg.key.clone(),
            DesiredGroup {
                key: tg.key.clone(),
                name: tg.name.clone(),
                description: tg.description.clone(),
                roles: tg.roles.clone(),
                monthly_spend: tg.monthly_spend,
                plugins: tg
                    .plugins
                    .iter()
                    .map(|(k, (p, _))| (k.clone(), *p))
                    .collect(),
                members: members.into_iter().collect(),
                rules: tg.rules.clone(),
            },
        );
    }

    // Governed users, and the multi-group conflicts per distinct set of groups.
    let mut managed_users = BTreeMap::new();
    let mut no_email = Vec::new();
    let mut by_set: BTreeMap<&[usize], Vec<usize>> = BTreeMap::new();
    for (u, gs) in user_groups.iter().enumerate() {
        if gs.is_empty() {
            continue;
        }
        let user = ix.users[u];
        if user.email.is_none() {
            no_email.push(user.id.clone());
        }
        managed_users.insert(
            user.id.clone(),
            ManagedUser {
                email: user.email.clone(),
            },
        );
        if gs.len() > 1 {
            by_set.entry(gs.as_slice()).or_default().push(u);
        }
    }
    for (set, users) in by_set {
        let set: Vec<&TargetGroup> = set.iter().map(|g| targets[*g]).collect();
        let ids: Vec<String> = users.iter().map(|u| ix.users[*u].id.clone()).collect();
        warnings.extend(conflicts(&set, &ids, &org.billing_currency));
    }
    if !no_email.is_empty() {
        warnings.push(ResolutionWarning {
            code: ResolutionWarningCode::UserWithoutEmail,
            message: format!(
                "{} governed user(s) have no primary email and cannot be matched downstream: {}",
                no_email.len(),
                id_list(&no_email)
            ),
            rules: Vec::new(),
            groups: Vec::new(),
            user_ids: no_email,
        });
    }

    DesiredState {
        org: OrgExpectations {
            plan: org.plan,
            billing_currency: org.billing_currency.clone(),
            features: org.features.clone(),
            connectors: org.connectors.clone(),
            plugins: org.plugins.0.clone(),
            provisioning_mode: org.provisioning_mode,
            usage_credits: org.usage_credits,
            connector_tools_default_always_allow: org.connector_tools_default_always_allow,
            invites_allowed: org.provisioning_mode.allows_invites(),
            org_roles_writable: !org.provisioning_mode.is_advanced(),
        },
        roles: table.roles().clone(),
        groups,
        managed_users,
        warnings,
    }
}

/// The most permissive monthly limit among groups that set one (unlimited beats any
/// amount, a larger amount beats a smaller), and whether they disagree.
pub(crate) fn spend_of(groups: &[&TargetGroup]) -> (Option<SpendLimit>, bool) {
    let limits: BTreeSet<SpendLimit> = groups.iter().filter_map(|g| g.monthly_spend).collect();
    (limits.last().copied(), limits.len() > 1)
}

/// Per plugin with at least one group override: the most permissive override and whether
/// the groups disagree.
pub(crate) fn plugin_overrides(
    groups: &[&TargetGroup],
) -> BTreeMap<String, (PluginPreference, bool)> {
    let mut seen: BTreeMap<String, BTreeSet<PluginPreference>> = BTreeMap::new();
    for g in groups {
        for (id, (pref, _)) in &g.plugins {
            seen.entry(id.clone()).or_default().insert(*pref);
        }
    }
    seen.into_iter()
        .filter_map(|(id, prefs)| {
            let max = prefs.last().copied()?;
            Some((id, (max, prefs.len() > 1)))
        })
        .collect()
}

fn conflicts(set: &[&TargetGroup], user_ids: &[String], currency: &str) -> Vec<ResolutionWarning> {
    let mut out = Vec::new();
    let keys: Vec<String> = set.iter().map(|g| g.key.clone()).collect();
    let (spend, disagree) = spend_of(set);
    if let (Some(chosen), true) = (spend, disagree) {
        let values = set
            .iter()
            .filter_map(|g| {
                g.monthly_spend
                    .map(|s| format!("{}: {}", g.key, s.money(currency)))
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push(ResolutionWarning {
            code: ResolutionWarningCode::MultiGroupSpendConflict,
            message: format!(
                "users {} are in groups with different monthly spend limits ({values}); the most permissive ({}) applies",
                id_list(user_ids),
                chosen.money(currency)
            ),
            rules: Vec::new(),
            groups: keys.clone(),
            user_ids: user_ids.to_vec(),
        });
    }
    for (plugin, (chosen, disagree)) in plugin_overrides(set) {
        if !disagree {
            continue;
        }
        let values = set
            .iter()
            .filter_map(|g| {
                g.plugins
                    .get(&plugin)
                    .map(|(p, _)| format!("{}: {}", g.key, p.as_str()))
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push(ResolutionWarning {
            code: ResolutionWarningCode::PluginPreferenceConflict,
            message: format!(
                "users {} are in groups with different preferences for plugin {plugin:?} ({values}); the most permissive ({}) applies",
                id_list(user_ids),
                chosen.as_str()
            ),
            rules: Vec::new(),
            groups: keys.clone(),
            user_ids: user_ids.to_vec(),
        });
    }
    out
}
