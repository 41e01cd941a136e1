//! `cowork-sync status`: the figures of `GET /admin/v1/status` as a few aligned
//! lines, the same figures the console's overview page shows. Reads the JSON only,
//! so a field a newer daemon adds is ignored and one an older daemon lacks is
//! shown as unknown.

use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| "?".into(), |n| n.to_string())
}

/// The verdict of one readiness check: `ok`, `degraded` or `fail`.
pub fn verdict(check: &Value) -> &str {
    match check.get("status").and_then(Value::as_str) {
        Some(s) => s,
        None if check["ok"].as_bool() == Some(true) => "ok",
        None => "fail",
    }
}

/// The drift the newest recorded run reported (written nowhere: tier B and org
/// settings), and that run's number.
pub fn last_drift(status: &Value) -> Option<(u64, u64)> {
    let run = status["recent_runs"].as_array()?.first()?;
    Some((
        run["run"].as_u64()?,
        run["drift_reported"].as_u64().unwrap_or(0),
    ))
}

/// Renders the status object as text, one figure a line.
pub fn render(s: &Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<14} {value}\n"));
    };
    let readiness = s["readiness"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            if s["ready"].as_bool() == Some(true) {
                "ok".into()
            } else {
                "unavailable".into()
            }
        });
    line(
        "daemon",
        format!(
            "cowork-sync {} · readiness {readiness}",
            text(&s["version"])
        ),
    );
    let d = &s["directory"];
    line(
        "directory",
        format!(
            "{} users, {} groups, {} memberships",
            count(&d["users"]),
            count(&d["groups"]),
            count(&d["memberships"])
        ),
    );
    line(
        "rules",
        match s["rules"].as_object() {
            Some(r) => format!(
                "version {} ({} rules, {} roles), applied {} by {}",
                text(&r["version"]),
                count(&r["rules"]),
                count(&r["roles"]),
                text(&r["at"]),
                text(&r["actor"])
            ),
            None => "none applied yet: `cowork-sync rules apply FILE`".into(),
        },
    );
    let o = &s["outbox"];
    line(
        "outbox",
        match o["pending"].as_u64() {
            Some(0) => "empty".into(),
            Some(n) => format!("{n} pending, oldest queued at {}", text(&o["oldest"])),
            None => "?".into(),
        },
    );
    let r = &s["reconcile"];
    let mut runs = if r["running"].as_bool() == Some(true) {
        match r["progress"].as_object() {
            Some(p) => format!(
                "running ({} {}/{})",
                text(&p["phase"]),
                count(&p["done"]),
                count(&p["total"])
            ),
            None => "running".into(),
        }
    } else {
        format!(
            "last run {}, last success {}",
            text(&r["last_run_at"]),
            text(&r["last_success_at"])
        )
    };
    if let Some(n) = r["consecutive_failures"].as_u64().filter(|n| *n > 0) {
        runs.push_str(&format!(
            "; {n} failed in a row: {}",
            text(&r["last_error"])
        ));
    }
    line("reconcile", runs);
    for run in s["recent_runs"].as_array().into_iter().flatten().take(3) {
        line(
            "",
            format!(
                "run {} {} {} ({}): {} applied, {} failed, {} held, {} drift",
                text(&run["run"]),
                text(&run["trigger"]),
                text(&run["outcome"]),
                text(&run["ended_at"]),
                count(&run["applied"]),
                count(&run["failed"]),
                count(&run["held"]),
                count(&run["drift_reported"])
            ),
        );
    }
    line(
        "held",
        match s["held_removals"].as_u64() {
            Some(0) => "no removal held".into(),
            Some(n) => {
                format!("{n} removal(s) held by the safety valve: review with `cowork-sync held`")
            }
            None => "?".into(),
        },
    );
    line(
        "drift",
        match last_drift(s) {
            Some((_, 0)) => "none in the last run".into(),
            Some((run, n)) => format!(
                "{n} difference(s) reported by run {run}, not written: see `cowork-sync plan`"
            ),
            None => "no run yet".into(),
        },
    );
    let ds = &s["downstream"];
    line(
        "downstream",
        match (ds["last_error"].as_str(), ds["last_ok_at"].as_str()) {
            (Some(e), _) => format!(
                "{} failure(s) in a row: {e}",
                count(&ds["consecutive_failures"])
            ),
            (None, Some(at)) => format!("ok, last call at {at}"),
            (None, None) => "no call yet".into(),
        },
    );
    for p in s["pools"].as_array().into_iter().flatten() {
        let currency = p["currency"].as_str().unwrap_or("");
        let minor = |v: &Value| crate::money::format_minor(v.as_u64().unwrap_or(0), currency);
        let capped = match p["capped_members"].as_u64() {
            Some(n) if n > 0 => format!(", {n} member(s) capped"),
            _ => String::new(),
        };
        line(
            "pool",
            format!(
                "{} ({}): {}, {} of {}{capped}",
                text(&p["group"]),
                text(&p["rule"]),
                text(&p["level"]),
                minor(&p["spent_minor"]),
                minor(&p["monthly_minor"]),
            ),
        );
    }
    let pc = &s["pool_check"];
    if let Some(e) = pc["last_error"].as_str() {
        line(
            "pool check",
            format!(
                "{} failure(s) in a row, caps as last checked: {e}",
                count(&pc["consecutive_failures"])
            ),
        );
    }
    line(
        "telemetry",
        match s["checks"].get("telemetry") {
            Some(c) => format!("{}: {}", verdict(c), text(&c["detail"])),
            None => match s.get("telemetry") {
                Some(t) if !t.is_null() => text(t),
                _ => "not configured".into(),
            },
        },
    );
    for (name, check) in s["checks"].as_object().into_iter().flatten() {
        if verdict(check) != "ok" && name != "telemetry" {
            line(
                "attention",
                format!("{name} {}: {}", verdict(check), text(&check["detail"])),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_text_names_every_figure_of_the_overview() {
        let s = json!({
            "version": "0.1.0", "ready": true, "readiness": "degraded",
            "checks": {"held_removals": {"status": "degraded", "ok": false, "detail": "2 held"}},
            "held_removals": 2,
            "directory": {"users": 3, "groups": 1, "memberships": 2},
            "outbox": {"pending": 0, "oldest": null},
            "rules": {"version": 4, "rules": 2, "roles": 1, "at": "2026-01-01T00:00:00Z", "actor": "operator"},
            "reconcile": {"running": false, "last_run_at": "t1", "last_success_at": "t1", "consecutive_failures": 0},
            "downstream": {"last_ok_at": "t1", "last_error": null, "consecutive_failures": 0},
            "recent_runs": [{"run": 7, "trigger": "manual", "outcome": "held", "ended_at": "t1",
                             "applied": 1, "failed": 0, "held": 2, "drift_reported": 3}],
            "pools": [{"group": "eng", "rule": "engineering", "level": "capped", "spent_minor": 10250,
                       "monthly_minor": 10000, "currency": "USD", "capped_members": 3}],
            "pool_check": {"last_ok_at": null, "last_error": "analytics: 503", "consecutive_failures": 2},
        });
        let text = render(&s);
        for want in [
            "3 users, 1 groups, 2 memberships",
            "version 4 (2 rules, 1 roles)",
            "outbox         empty",
            "run 7 manual held",
            "2 removal(s) held",
            "3 difference(s) reported by run 7",
            "ok, last call at t1",
            "telemetry      not configured",
            "held_removals degraded: 2 held",
            "eng (engineering): capped, ",
            "3 member(s) capped",
            "2 failure(s) in a row, caps as last checked: analytics: 503",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }

    #[test]
    fn an_older_daemon_without_new_fields_still_renders() {
        let text = render(&json!({"ready": false}));
        assert!(text.contains("readiness unavailable"), "{text}");
        assert!(text.contains("none applied yet"), "{text}");
    }
}
