//! Parsing a rule file's TOML into its sections: syntax errors with their position,
//! misplaced keys, and serde errors turned into [`RuleError`]s with a subject.

use super::*;

pub(super) struct Parsed {
    pub(super) org: Option<OrgSpec>,
    pub(super) roles: BTreeMap<String, RoleSpec>,
    pub(super) broken_roles: BTreeSet<String>,
    pub(super) rules: Vec<(usize, RuleSpec)>,
    pub(super) errors: Vec<RuleError>,
}

pub(super) fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        org: None,
        roles: BTreeMap::new(),
        broken_roles: BTreeSet::new(),
        rules: Vec::new(),
        errors: Vec::new(),
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            p.errors.push(RuleError::new(
                Subject::File,
                "",
                ErrorCode::Syntax,
                syntax_message(text, &e),
            ));
            return p;
        }
    };
    for (key, value) in table {
        match key.as_str() {
            "org" => match section::<OrgSpec>(value, &Subject::Org, "") {
                Ok(org) => p.org = Some(org),
                Err(e) => p.errors.push(e),
            },
            "roles" => match value {
                toml::Value::Table(roles) => {
                    for (role_key, raw) in roles {
                        let subject = Subject::Role(role_key.clone());
                        let raw = strip_misplaced(raw, &subject, &mut p.errors);
                        match section::<RoleSpec>(raw, &subject, "") {
                            Ok(role) => {
                                p.roles.insert(role_key, role);
                            }
                            Err(e) => {
                                p.errors.push(e);
                                p.broken_roles.insert(role_key);
                            }
                        }
                    }
                }
                _ => p.errors.push(RuleError::new(
                    Subject::File,
                    "roles",
                    ErrorCode::InvalidValue,
                    "must be a table of [roles.<key>] tables",
                )),
            },
            "rules" => match value {
                toml::Value::Array(rules) => {
                    for (i, raw) in rules.into_iter().enumerate() {
                        let pos = i + 1;
                        let subject = match raw.get("id").and_then(toml::Value::as_str) {
                            Some(id) if !id.is_empty() => Subject::Rule(id.to_string()),
                            _ => Subject::RuleAt(pos),
                        };
                        let raw = strip_misplaced(raw, &subject, &mut p.errors);
                        match section::<RuleSpec>(raw, &subject, "") {
                            Ok(rule) => p.rules.push((pos, rule)),
                            Err(e) => p.errors.push(e),
                        }
                    }
                }
                _ => p.errors.push(RuleError::new(
                    Subject::File,
                    "rules",
                    ErrorCode::InvalidValue,
                    "must be an array of [[rules]] tables",
                )),
            },
            other => p.errors.push(RuleError::new(
                Subject::File,
                other,
                ErrorCode::UnknownField,
                "unknown key, expected `org`, `roles` or `rules`",
            )),
        }
    }
    if p.org.is_none() && !p.errors.iter().any(|e| e.subject == Subject::Org) {
        p.errors.push(RuleError::new(
            Subject::File,
            "org",
            ErrorCode::MissingField,
            "the [org] table is required",
        ));
    }
    p
}

pub(super) fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(
                "invalid TOML at line {line}, column {column}: {}",
                e.message()
            )
        }
        None => format!("invalid TOML: {}", e.message()),
    }
}

/// Keys that users put on a role or rule but that belong elsewhere in the product: they
/// get the product's error instead of a plain "unknown key", and are removed so the rest
/// of the entry is still checked.
pub(super) fn strip_misplaced(
    raw: toml::Value,
    subject: &Subject,
    errors: &mut Vec<RuleError>,
) -> toml::Value {
    let toml::Value::Table(mut table) = raw else {
        return raw;
    };
    let is_rule = matches!(subject, Subject::Rule(_) | Subject::RuleAt(_));
    for key in SKILL_SETTINGS {
        if table.remove(*key).is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                *key,
                ErrorCode::OrgLevelSetting,
                "skills settings are org-level only; set them in [org] features",
            ));
        }
    }
    if is_rule {
        if table.remove("connectors").is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                "connectors",
                ErrorCode::ConnectorScopeRequiresRole,
                "connector permissions attach to roles, not to groups; put them in a role",
            ));
        }
        if table.remove("capabilities").is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                "capabilities",
                ErrorCode::UnknownField,
                "capabilities attach to roles, not to groups; put them in a role",
            ));
        }
    }
    toml::Value::Table(table)
}

pub(super) fn section<T: DeserializeOwned>(
    value: toml::Value,
    subject: &Subject,
    prefix: &str,
) -> Result<T, RuleError> {
    value
        .try_into::<T>()
        .map_err(|e| serde_error(subject, prefix, &e))
}

pub(super) fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

pub(super) fn serde_error(subject: &Subject, prefix: &str, e: &toml::de::Error) -> RuleError {
    let message = e.message().trim().to_string();
    let rendered = e.to_string();
    let path = rendered
        .lines()
        .find_map(|l| l.strip_prefix("in `").and_then(|r| r.strip_suffix('`')))
        .unwrap_or("");
    let at = join_path(prefix, path);
    let named = |rest: &str| -> Option<(String, String)> {
        let rest = rest.strip_prefix('`')?;
        let (name, tail) = rest.split_once('`')?;
        Some((
            name.to_string(),
            tail.trim_start_matches(',').trim().to_string(),
        ))
    };
    if let Some((name, tail)) = message.strip_prefix("unknown field ").and_then(named) {
        let text = if tail.is_empty() || tail == "there are no fields" {
            "unknown key".to_string()
        } else {
            format!("unknown key, {tail}")
        };
        return RuleError::new(
            subject.clone(),
            join_path(&at, &name),
            ErrorCode::UnknownField,
            text,
        );
    }
    if let Some((name, _)) = message.strip_prefix("missing field ").and_then(named) {
        return RuleError::new(
            subject.clone(),
            join_path(&at, &name),
            ErrorCode::MissingField,
            "is required",
        );
    }
    RuleError::new(subject.clone(), at, ErrorCode::InvalidValue, message)
}
