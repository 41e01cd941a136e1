//! Building the [`ValidRuleTable`] from a checked rule file: compiled rules, their
//! target groups and the attribute projection the rules need.

use super::*;

pub(super) fn build(
    file: RuleFile,
    filters: BTreeMap<String, Arc<ValidFilter>>,
    warnings: Vec<RuleWarning>,
) -> ValidRuleTable {
    let mut rules: Vec<CompiledRule> = file
        .rules
        .iter()
        .filter_map(|r| {
            let matcher = match (&r.matcher.group, &r.matcher.filter) {
                (Some(g), None) => RuleMatcher::Group(g.clone()),
                (None, Some(text)) => RuleMatcher::Filter {
                    text: text.clone(),
                    filter: filters.get(&r.id)?.clone(),
                },
                _ => return None,
            };
            Some(CompiledRule {
                id: r.id.clone(),
                priority: r.priority,
                enabled: r.enabled,
                matcher,
                group_key: r.group.key.clone(),
            })
        })
        .collect();
    rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));

    let mut groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    for r in file.rules.iter().filter(|r| r.enabled) {
        let group = groups
            .entry(r.group.key.clone())
            .or_insert_with(|| target_group(&file, r));
        group.rules.insert(r.id.clone());
    }

    let (filter_attributes, projection) = projection(filters.values().map(Arc::as_ref));
    ValidRuleTable {
        file,
        rules,
        groups,
        filter_attributes,
        projection,
        warnings,
    }
}

pub(super) fn target_group(file: &RuleFile, r: &RuleSpec) -> TargetGroup {
    let roles: BTreeSet<String> = r.roles.iter().cloned().collect();
    let mut plugins: BTreeMap<String, (PluginPreference, PluginOrigin)> = BTreeMap::new();
    for key in &roles {
        let Some(role) = file.roles.get(key) else {
            continue;
        };
        for (id, pref) in &role.plugins {
            let entry = plugins
                .entry(id.clone())
                .or_insert((*pref, PluginOrigin::Role(key.clone())));
            if *pref > entry.0 {
                *entry = (*pref, PluginOrigin::Role(key.clone()));
            }
        }
    }
    for (id, pref) in &r.plugins {
        plugins.insert(id.clone(), (*pref, PluginOrigin::Rule));
    }
    TargetGroup {
        key: r.group.key.clone(),
        name: r.group.name.clone(),
        description: r.group.description.clone(),
        roles,
        monthly_spend: r.spend.as_ref().and_then(spend_limit),
        pool: r.pool.as_ref().and_then(pool_spec),
        plugins,
        rules: BTreeSet::new(),
    }
}

/// The attribute paths the filters read, and the top-level attributes to project.
/// [`ValidFilter::mentions`] answers for top-level attribute names and extension URNs;
/// an extension attribute counts when its filter mentions both its name and its URN.
pub(super) fn projection<'a>(
    filters: impl Iterator<Item = &'a ValidFilter>,
) -> (BTreeSet<String>, Vec<AttrPath>) {
    let mut paths = BTreeSet::new();
    let mut attrs: Vec<AttrPath> = Vec::new();
    let Ok(registry) = registry() else {
        return (paths, Vec::new());
    };
    let kind = ResourceKind::User;
    for f in filters {
        for schema in [registry.core(kind), registry.common()] {
            for attr in schema.attributes.iter().filter(|a| f.mentions(&a.name)) {
                paths.insert(attr.name.clone());
                attrs.push(AttrPath::new(&attr.name, None));
            }
        }
        for ext in registry.extensions(kind) {
            if !f.mentions(&ext.id) {
                continue;
            }
            let named: Vec<&str> = ext
                .attributes
                .iter()
                .filter(|a| f.mentions(&a.name))
                .map(|a| a.name.as_str())
                .collect();
            // The whole extension object when the filter names no attribute of it.
            let named = if named.is_empty() { vec![""] } else { named };
            for attr in named {
                paths.insert(if attr.is_empty() {
                    ext.id.clone()
                } else {
                    format!("{}:{attr}", ext.id)
                });
                attrs.push(AttrPath {
                    urn: Some(ext.id.clone()),
                    attr: attr.to_string(),
                    sub: None,
                });
            }
        }
    }
    attrs.sort_by_key(ToString::to_string);
    attrs.dedup();
    (paths, attrs)
}
