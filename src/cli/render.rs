//! Text renderings the CLI builds from the daemon's JSON: aligned tables, the rule
//! list, and rule-file warnings named by rule, role and field. Pure formatting over
//! `serde_json::Value`; money goes through [`crate::money::format_minor`].

use serde_json::Value;

/// Rows under headers, each column as wide as its widest cell (counted in
/// characters), two spaces apart; no trailing spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A spend amount from the rule file (minor units, or `"unlimited"`) as money.
pub fn amount(v: &Value, currency: &str) -> String {
    match v.as_u64() {
        Some(n) => crate::money::format_minor(n, currency),
        None => text(v),
    }
}

/// The versions of the rule table (`GET /admin/v1/rules/versions`), newest first as
/// the daemon lists them.
pub fn versions(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                text(&v["version"]),
                text(&v["at"]),
                text(&v["actor"]),
                text(&v["rules"]),
                text(&v["roles"]),
                text(&v["summary"]),
            ]
        })
        .collect();
    table(
        &["version", "applied at", "by", "rules", "roles", "summary"],
        &rows,
    )
}

/// The rules of the current table (`GET /admin/v1/rules`) as an aligned table in
/// file order, disabled rules marked, spend as money in the billing currency.
pub fn rules(current: &Value) -> String {
    let currency = current
        .pointer("/table/org/billing_currency")
        .and_then(Value::as_str)
        .unwrap_or("");
    let list: Vec<&Value> = current
        .pointer("/table/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let disabled = list
        .iter()
        .filter(|r| r["enabled"].as_bool() == Some(false))
        .count();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let matched = match (r.pointer("/match/group"), r.pointer("/match/filter")) {
                (Some(g), _) => format!("group {}", text(g)),
                (None, Some(f)) => format!("filter {}", text(f)),
                (None, None) => String::new(),
            };
            let roles = r["roles"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into());
            let spend = r
                .pointer("/spend/monthly")
                .map(|m| amount(m, currency))
                .unwrap_or_else(|| "-".into());
            vec![
                text(&r["id"]),
                r.get("priority").map(text).unwrap_or_else(|| "0".into()),
                if r["enabled"].as_bool() == Some(false) {
                    "DISABLED".into()
                } else {
                    "enabled".into()
                },
                text(&r["group"]["key"]),
                roles,
                spend,
                matched,
            ]
        })
        .collect();
    let mut out = format!(
        "rules of version {} ({} rule{}{}):\n",
        text(&current["version"]),
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        if disabled > 0 {
            format!(", {disabled} DISABLED: they match nobody")
        } else {
            String::new()
        }
    );
    out.push_str(&table(
        &[
            "rule", "priority", "state", "group", "roles", "spend", "match",
        ],
        &rows,
    ));
    out
}

/// One rule-file warning from the daemon's JSON (`subject`, `field`, `message`,
/// and for a role the `rules` that attach it), worded as `rules validate` words it.
pub fn warning(w: &Value) -> String {
    let name = text(&w["subject"]["name"]);
    let mut subject = match w["subject"]["kind"].as_str() {
        Some("file") => "rule file".to_string(),
        Some("org") => "org".to_string(),
        Some("role") => format!("role {name:?}"),
        Some("rule") => format!("rule {name:?}"),
        Some("rule_at") => format!("rule #{name}"),
        _ => String::new(),
    };
    let rules: Vec<String> = w["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{:?}", text(r)))
        .collect();
    if !rules.is_empty() {
        subject.push_str(&format!(
            " (used by rule{} {})",
            if rules.len() == 1 { "" } else { "s" },
            rules.join(", ")
        ));
    }
    let field = text(&w["field"]);
    let message = text(&w["message"]);
    match (subject.is_empty(), field.is_empty()) {
        (true, _) => message,
        (false, true) => format!("{subject}: {message}"),
        (false, false) => format!("{subject}: field {field:?}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_aligns_every_column_to_its_widest_cell() {
        let t = table(
            &["a", "bb"],
            &[
                vec!["long cell".into(), "x".into()],
                vec!["é".into(), "y".into()],
            ],
        );
        assert_eq!(t, "a          bb\nlong cell  x\né          y\n");
    }

    #[test]
    fn rules_list_marks_disabled_rules_and_shows_spend_as_money() {
        let current = json!({
            "version": 3,
            "table": {
                "org": {"billing_currency": "USD"},
                "rules": [
                    {"id": "pilot", "priority": 100, "match": {"group": "Cowork Pilot"},
                     "group": {"key": "cowork-pilot", "name": "Cowork pilot"},
                     "roles": ["cowork-pilot"], "spend": {"monthly": 50000}},
                    {"id": "old", "enabled": false, "match": {"filter": "title eq \"x\""},
                     "group": {"key": "legacy", "name": "Legacy"}},
                ]
            }
        });
        let text = rules(&current);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "rules of version 3 (2 rules, 1 DISABLED: they match nobody):"
        );
        assert!(
            lines[1].starts_with("rule   priority  state     group"),
            "{text}"
        );
        assert!(
            lines[2].contains("enabled") && lines[2].contains("$500.00"),
            "{text}"
        );
        assert!(
            lines[3].contains("DISABLED") && lines[3].contains("filter title eq"),
            "{text}"
        );
        let col = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(
            col(lines[2], "enabled"),
            col(lines[3], "DISABLED"),
            "{text}"
        );
        assert_eq!(col(lines[1], "group"), col(lines[3], "legacy"), "{text}");
    }

    #[test]
    fn a_role_warning_names_the_role_its_rules_and_the_field() {
        let w = json!({
            "subject": {"kind": "role", "name": "cowork-pilot"},
            "field": "capabilities.web_search",
            "code": "feature_disabled_at_org",
            "message": "`web_search` is off at org level",
            "rules": ["pilot", "finance"]
        });
        assert_eq!(
            warning(&w),
            "role \"cowork-pilot\" (used by rules \"pilot\", \"finance\"): field \"capabilities.web_search\": `web_search` is off at org level"
        );
        let w = json!({"subject": {"kind": "rule", "name": "pilot"}, "field": "", "message": "m"});
        assert_eq!(warning(&w), "rule \"pilot\": m");
    }
}
