//! One user's effective access, and why: which rules matched (through which IdP group
//! chain, or through which filter), and for each capability, connector, plugin, spend
//! limit and admin permission, which rule, group and role gave it (Cowork admin
//! reference §3.5). [`effective_access`] is the same computation without the reasons.
//!
//! Semantics: capabilities are the union over the roles of the user's groups, but an
//! org switch that is off wins; connector tools take the most permissive mode across
//! roles, capped by the org; plugins take the most permissive group override, else the
//! org preference; spend takes the most permissive group limit (unlimited beats any
//! amount). Inactive users get nothing.
//!
//! Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use serde::Serialize;

use super::model::{AdminLevel, ConnectorMode, PluginPreference, RoleSpec};
use super::resolve::{
    names_group, plugin_overrides, spend_of, Snapshot, SnapshotGroup, SnapshotUser,
};
use super::validate::{
    blanket_covers, PluginOrigin, RuleMatcher, SpendLimit, TargetGroup, ValidRuleTable,
    COMPUTER_USE, GA_FEATURES, PREVIEW_FEATURES, SKILL_SETTINGS,
};

/// A connector's effective modes for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorAccess {
    /// The mode of tools not listed in `tools`.
    pub default: ConnectorMode,
    /// Tools some role gives their own mode.
    pub tools: BTreeMap<String, ConnectorMode>,
}

/// What one user can do, as the product resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveAccess {
    /// SCIM id.
    pub user_id: String,
    /// SCIM `active`.
    pub active: bool,
    /// Whether some enabled rule matches the user (org role `managed`).
    pub governed: bool,
    /// Downstream group keys.
    pub groups: BTreeSet<String>,
    /// Role keys, over all groups.
    pub roles: BTreeSet<String>,
    /// Feature to granted.
    pub capabilities: BTreeMap<String, bool>,
    /// Connector (every connector enabled at org level) to modes.
    pub connectors: BTreeMap<String, ConnectorAccess>,
    /// Plugin (every plugin in the org) to preference.
    pub plugins: BTreeMap<String, PluginPreference>,
    /// The monthly limit from the user's groups; `None` = no group sets one, so the
    /// seat-tier or org default applies.
    pub monthly_spend: Option<SpendLimit>,
    /// Admin area to level.
    pub admin_permissions: BTreeMap<String, AdminLevel>,
    /// Default models of the user's roles (the product leaves a choice among several open).
    pub default_models: BTreeSet<String>,
    /// Remarks (not governed, inactive, org role not writable, ...).
    pub notes: Vec<String>,
}

/// One step of an IdP group chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdpGroupRef {
    /// SCIM id.
    pub id: String,
    /// displayName.
    pub display_name: String,
}

/// How a rule reached a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MatchVia {
    /// Through IdP group membership: `path` runs from the group the rule names down to the
    /// group the user is a direct member of (one element when that is the same group).
    IdpGroup {
        /// `match.group` as written.
        matched: String,
        /// The chain of nested groups.
        path: Vec<IdpGroupRef>,
    },
    /// Through the rule's SCIM filter.
    Filter {
        /// `match.filter` as written.
        filter: String,
    },
}

/// An enabled rule that matched the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// Rule id.
    pub rule: String,
    /// Its priority.
    pub priority: i64,
    /// The downstream group it puts the user in.
    pub group: String,
    /// How it matched.
    pub via: MatchVia,
}

/// Where a value came from: a group the user is in (through `rules`), and the role of
/// that group, when a role gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Downstream group key.
    pub group: String,
    /// Role key.
    pub role: Option<String>,
    /// Ids of the rules that put the user in the group.
    pub rules: Vec<String>,
}

/// Why a value is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// One readable sentence.
    pub summary: String,
    /// The groups and roles behind the value.
    pub sources: Vec<Source>,
}

impl Reason {
    fn bare(summary: impl Into<String>) -> Self {
        Reason {
            summary: summary.into(),
            sources: Vec::new(),
        }
    }
}

/// The reasons for one connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorReason {
    /// For the default mode.
    pub default: Reason,
    /// Per tool.
    pub tools: BTreeMap<String, Reason>,
}

/// One user's access with the reasons for every value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The rules that matched, highest priority first.
    pub matches: Vec<RuleMatch>,
    /// The resulting access.
    pub access: EffectiveAccess,
    /// Per feature.
    pub capabilities: BTreeMap<String, Reason>,
    /// Per connector.
    pub connectors: BTreeMap<String, ConnectorReason>,
    /// Per plugin.
    pub plugins: BTreeMap<String, Reason>,
    /// For the monthly spend limit.
    pub spend: Reason,
    /// Per admin area.
    pub admin_permissions: BTreeMap<String, Reason>,
    /// The org's billing currency: `access.monthly_spend` is in its minor units.
    pub currency: String,
}

/// Every feature a role can grant that the table knows of: the known product features
/// and any other name the file uses (not the org-only skills settings or Computer Use).
pub fn capability_names(table: &ValidRuleTable) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = GA_FEATURES
        .iter()
        .chain(PREVIEW_FEATURES)
        .map(|s| s.to_string())
        .collect();
    out.extend(table.org().features.keys().cloned());
    for role in table.roles().values() {
        out.extend(role.capabilities.features.keys().cloned());
    }
    out.retain(|f| !SKILL_SETTINGS.contains(&f.as_str()) && f != COMPUTER_USE);
    out
}

/// One user's effective access; `None` if the snapshot has no such user.
pub fn effective_access(
    table: &ValidRuleTable,
    snapshot: &Snapshot,
    user_id: &str,
) -> Option<EffectiveAccess> {
    explain(table, snapshot, user_id).map(|e| e.access)
}

/// One user's effective access and why; `None` if the snapshot has no such user.
pub fn explain(table: &ValidRuleTable, snapshot: &Snapshot, user_id: &str) -> Option<Explanation> {
    let user = snapshot.users.iter().find(|u| u.id == user_id)?;
    let matches = if user.active {
        match_user(table, snapshot, user)
    } else {
        Vec::new()
    };
    Some(evaluate(table, user, matches))
}

/// The enabled rules matching one user, by walking up from the user's direct groups.
fn match_user(table: &ValidRuleTable, snap: &Snapshot, user: &SnapshotUser) -> Vec<RuleMatch> {
    let by_id: HashMap<&str, &SnapshotGroup> =
        snap.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for g in &snap.groups {
        for child in &g.member_groups {
            if by_id.contains_key(child.as_str()) {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(g.id.as_str());
            }
        }
    }
    for list in parents.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    let mut direct: Vec<&str> = snap
        .groups
        .iter()
        .filter(|g| g.member_users.contains(&user.id))
        .map(|g| g.id.as_str())
        .collect();
    direct.sort_unstable();
    direct.dedup();
    // Breadth-first upwards: for each ancestor, the next group down towards the user and
    // its distance, so the explanation shows a shortest chain.
    let mut down: HashMap<&str, (Option<&str>, usize)> = HashMap::new();
    let mut queue = VecDeque::new();
    for g in &direct {
        down.insert(g, (None, 0));
        queue.push_back(*g);
    }
    while let Some(g) = queue.pop_front() {
        let dist = down.get(g).map_or(0, |d| d.1);
        for p in parents.get(g).into_iter().flatten() {
            if !down.contains_key(p) {
                down.insert(p, (Some(g), dist + 1));
                queue.push_back(p);
            }
        }
    }

    let mut out = Vec::new();
    for rule in table.rules().iter().filter(|r| r.enabled) {
        let via = match &rule.matcher {
            RuleMatcher::Group(name) => {
                let root = snap
                    .groups
                    .iter()
                    .filter(|g| names_group(g, name))
                    .filter_map(|g| down.get(g.id.as_str()).map(|d| (d.1, g.id.as_str())))
                    .min();
                let Some((_, root)) = root else {
                    continue;
                };
                let mut path = Vec::new();
                let mut at = Some(root);
                while let Some(id) = at {
                    if let Some(g) = by_id.get(id) {
                        path.push(IdpGroupRef {
                            id: g.id.clone(),
                            display_name: g.display_name.clone(),
                        });
                    }
                    at = down.get(id).and_then(|d| d.0);
                }
                MatchVia::IdpGroup {
                    matched: name.clone(),
                    path,
                }
            }
            RuleMatcher::Filter { text, filter } => {
                if !filter.matches(&user.attributes) {
                    continue;
                }
                MatchVia::Filter {
                    filter: text.clone(),
                }
            }
        };
        out.push(RuleMatch {
            rule: rule.id.clone(),
            priority: rule.priority,
            group: rule.group_key.clone(),
            via,
        });
    }
    out
}

fn evaluate(table: &ValidRuleTable, user: &SnapshotUser, matches: Vec<RuleMatch>) -> Explanation {
    let org = table.org();
    let mut via: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &matches {
        via.entry(m.group.clone()).or_default().push(m.rule.clone());
    }
    let groups: Vec<&TargetGroup> = via.keys().filter_map(|k| table.groups().get(k)).collect();
    let governed = !groups.is_empty();
    let pairs: Vec<(&TargetGroup, &str, &RoleSpec)> = groups
        .iter()
        .flat_map(|g| {
            g.roles
                .iter()
                .filter_map(move |k| table.roles().get(k).map(|r| (*g, k.as_str(), r)))
        })
        .collect();
    let source = |g: &TargetGroup, role: Option<&str>| Source {
        group: g.key.clone(),
        role: role.map(str::to_string),
        rules: via.get(&g.key).cloned().unwrap_or_default(),
    };
    let nobody = if !user.active {
        Some("the user is inactive in the IdP: no groups, no access")
    } else if !governed {
        Some("no enabled rule matches the user: custom roles do not apply, the user's built-in org role does")
    } else {
        None
    };

    // Capabilities: union over roles; an org switch that is off wins.
    let mut capabilities = BTreeMap::new();
    let mut cap_reasons = BTreeMap::new();
    for f in capability_names(table) {
        let grants: Vec<Source> = pairs
            .iter()
            .filter(|(_, _, r)| {
                r.capabilities.features.get(&f) == Some(&true)
                    || r.capabilities.all.is_some_and(|b| blanket_covers(b, &f))
            })
            .map(|(g, k, _)| source(g, Some(k)))
            .collect();
        let (granted, summary) = if let Some(why) = nobody {
            (false, why.to_string())
        } else if org.features.get(&f) == Some(&false) {
            (
                false,
                format!("off at org level (org.features.{f} = false), which wins over any role"),
            )
        } else if grants.is_empty() {
            (false, "no role of the user's groups grants it".to_string())
        } else {
            (
                true,
                "granted by the roles below (union over roles)".to_string(),
            )
        };
        capabilities.insert(f.clone(), granted);
        cap_reasons.insert(
            f,
            Reason {
                summary,
                sources: if nobody.is_some() { Vec::new() } else { grants },
            },
        );
    }

    // Connectors: most permissive mode across roles, capped by the org.
    let cap = if org.connector_tools_default_always_allow {
        ConnectorMode::AlwaysAllow
    } else {
        ConnectorMode::NeedsApproval
    };
    let mut connectors = BTreeMap::new();
    let mut conn_reasons = BTreeMap::new();
    for c in &org.connectors {
        let specs: Vec<_> = pairs
            .iter()
            .filter_map(|(g, k, r)| r.connectors.get(c).map(|s| (*g, *k, s)))
            .collect();
        let mut tool_names: BTreeSet<&String> = BTreeSet::new();
        for (_, _, s) in &specs {
            tool_names.extend(s.tools().map(|(t, _)| t));
        }
        let decide = |mode_of: &dyn Fn(&super::model::ConnectorSpec) -> ConnectorMode| {
            let best = specs
                .iter()
                .map(|(_, _, s)| mode_of(s))
                .max()
                .unwrap_or(ConnectorMode::Deny);
            let sources: Vec<Source> = specs
                .iter()
                .filter(|(_, _, s)| best > ConnectorMode::Deny && mode_of(s) == best)
                .map(|(g, k, _)| source(g, Some(k)))
                .collect();
            let mode = if nobody.is_some() {
                ConnectorMode::Deny
            } else {
                best.min(cap)
            };
            let summary = match nobody {
                Some(why) => why.to_string(),
                None if best == ConnectorMode::Deny => {
                    "no role of the user's groups allows it".to_string()
                }
                None if mode < best => format!(
                    "{} from the roles below, capped at {} by org.connector_tools_default_always_allow = false",
                    best.as_str(),
                    mode.as_str()
                ),
                None => format!(
                    "{} from the roles below (most permissive across roles)",
                    best.as_str()
                ),
            };
            (
                mode,
                Reason {
                    summary,
                    sources: if nobody.is_some() {
                        Vec::new()
                    } else {
                        sources
                    },
                },
            )
        };
        let (default, default_reason) = decide(&|s| s.default_mode());
        let mut tools = BTreeMap::new();
        let mut tool_reasons = BTreeMap::new();
        for t in tool_names {
            let (mode, reason) = decide(&|s| s.tool_mode(t));
            tools.insert(t.clone(), mode);
            tool_reasons.insert(t.clone(), reason);
        }
        connectors.insert(c.clone(), ConnectorAccess { default, tools });
        conn_reasons.insert(
            c.clone(),
            ConnectorReason {
                default: default_reason,
                tools: tool_reasons,
            },
        );
    }

    // Plugins: most permissive group override, else the org preference.
    let mut plugins = BTreeMap::new();
    let mut plugin_reasons = BTreeMap::new();
    if user.active {
        let overrides = plugin_overrides(&groups);
        for (id, org_pref) in &org.plugins.0 {
            let (pref, reason) = match overrides.get(id) {
                Some((best, disagree)) => {
                    let sources = groups
                        .iter()
                        .filter_map(|g| {
                            let (p, origin) = g.plugins.get(id)?;
                            (p == best).then(|| match origin {
                                PluginOrigin::Rule => source(g, None),
                                PluginOrigin::Role(k) => source(g, Some(k)),
                            })
                        })
                        .collect();
                    let summary = if *disagree {
                        format!(
                            "{}: the user's groups disagree, the most permissive applies",
                            best.as_str()
                        )
                    } else {
                        format!("{}: group override", best.as_str())
                    };
                    (*best, Reason { summary, sources })
                }
                None => (
                    *org_pref,
                    Reason::bare(format!(
                        "{}: the org preference (no group of the user overrides it)",
                        org_pref.as_str()
                    )),
                ),
            };
            plugins.insert(id.clone(), pref);
            plugin_reasons.insert(id.clone(), reason);
        }
    }

    // Spend: most permissive group limit.
    let (monthly_spend, disagree) = spend_of(&groups);
    let spend = match (nobody, monthly_spend) {
        (Some(why), _) => Reason::bare(why),
        (None, None) => {
            Reason::bare("no group of the user sets a limit: the seat-tier or org default applies")
        }
        (None, Some(limit)) => Reason {
            summary: if disagree {
                format!(
                    "{}: the user's groups set different limits, the most permissive applies",
                    limit.money(&org.billing_currency)
                )
            } else {
                format!("{}: group limit", limit.money(&org.billing_currency))
            },
            sources: groups
                .iter()
                .filter(|g| g.monthly_spend == Some(limit))
                .map(|g| source(g, None))
                .collect(),
        },
    };

    // Admin permissions: the highest level across roles.
    let mut admin_permissions = BTreeMap::new();
    let mut admin_reasons = BTreeMap::new();
    let areas: BTreeSet<&String> = pairs
        .iter()
        .flat_map(|(_, _, r)| r.admin_permissions.keys())
        .collect();
    for area in areas {
        let best = pairs
            .iter()
            .filter_map(|(_, _, r)| r.admin_permissions.get(area))
            .max()
            .copied()
            .unwrap_or(AdminLevel::None);
        admin_permissions.insert(area.clone(), best);
        admin_reasons.insert(
            area.clone(),
            Reason {
                summary: format!("{}: the highest level across roles", best.as_str()),
                sources: pairs
                    .iter()
                    .filter(|(_, _, r)| r.admin_permissions.get(area) == Some(&best))
                    .map(|(g, k, _)| source(g, Some(k)))
                    .collect(),
            },
        );
    }

    let mut notes = Vec::new();
    if let Some(why) = nobody {
        notes.push(why.to_string());
    } else if org.provisioning_mode.is_advanced() {
        notes.push(format!(
            "custom roles apply only to org role `managed`, which {} provisioning does not let the daemon set (R3)",
            org.provisioning_mode.as_str()
        ));
    } else {
        notes.push("org role set to `managed` so that custom roles apply".to_string());
    }

    let access = EffectiveAccess {
        user_id: user.id.clone(),
        active: user.active,
        governed,
        groups: via.keys().cloned().collect(),
        roles: pairs.iter().map(|(_, k, _)| k.to_string()).collect(),
        capabilities,
        connectors,
        plugins,
        monthly_spend,
        admin_permissions,
        default_models: pairs
            .iter()
            .filter_map(|(_, _, r)| r.default_model.clone())
            .collect(),
        notes,
    };
    Explanation {
        matches,
        access,
        capabilities: cap_reasons,
        connectors: conn_reasons,
        plugins: plugin_reasons,
        spend,
        admin_permissions: admin_reasons,
        currency: org.billing_currency.clone(),
    }
}

fn write_reason(f: &mut fmt::Formatter<'_>, indent: &str, what: &str, r: &Reason) -> fmt::Result {
    writeln!(f, "{indent}{what}: {}", r.summary)?;
    for s in &r.sources {
        write!(f, "{indent}  - group {}", s.group)?;
        if let Some(role) = &s.role {
            write!(f, ", role {role}")?;
        }
        writeln!(f, " (rules: {})", s.rules.join(", "))?;
    }
    Ok(())
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.access;
        writeln!(
            f,
            "user {} ({}, {})",
            a.user_id,
            if a.active { "active" } else { "inactive" },
            if a.governed {
                "governed"
            } else {
                "not governed"
            }
        )?;
        writeln!(f, "matched rules:")?;
        if self.matches.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for m in &self.matches {
            write!(
                f,
                "  {} (priority {}) -> group {}, ",
                m.rule, m.priority, m.group
            )?;
            match &m.via {
                MatchVia::IdpGroup { matched, path } => {
                    let chain = path
                        .iter()
                        .map(|g| format!("{:?} [{}]", g.display_name, g.id))
                        .collect::<Vec<_>>()
                        .join(" > ");
                    writeln!(f, "via IdP group {matched:?}: {chain}")?;
                }
                MatchVia::Filter { filter } => writeln!(f, "via filter {filter}")?,
            }
        }
        let list = |s: &BTreeSet<String>| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        writeln!(f, "groups: {}", list(&a.groups))?;
        writeln!(f, "roles: {}", list(&a.roles))?;
        writeln!(f, "capabilities:")?;
        for (name, r) in &self.capabilities {
            let on = a.capabilities.get(name).copied().unwrap_or(false);
            write_reason(f, "  ", &format!("{name} = {on}"), r)?;
        }
        writeln!(f, "connectors:")?;
        for (id, r) in &self.connectors {
            let Some(c) = a.connectors.get(id) else {
                continue;
            };
            write_reason(
                f,
                "  ",
                &format!("{id} = {}", c.default.as_str()),
                &r.default,
            )?;
            for (tool, tr) in &r.tools {
                let mode = c.tools.get(tool).copied().unwrap_or(c.default);
                write_reason(f, "    ", &format!("tool {tool} = {}", mode.as_str()), tr)?;
            }
        }
        writeln!(f, "plugins:")?;
        for (id, r) in &self.plugins {
            write_reason(f, "  ", id, r)?;
        }
        // A limit's reason starts with the limit itself (`$500.00: group limit`).
        let what = match a.monthly_spend {
            Some(_) => "monthly spend",
            None => "monthly spend = default",
        };
        write_reason(f, "", what, &self.spend)?;
        if !self.admin_permissions.is_empty() {
            writeln!(f, "admin permissions:")?;
            for (area, r) in &self.admin_permissions {
                write_reason(f, "  ", area, r)?;
            }
        }
        if !a.default_models.is_empty() {
            writeln!(f, "default models: {}", list(&a.default_models))?;
        }
        for n in &a.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
