//! `cowork-sync doctor`: the checks to run before going live, each a pass, warn or
//! fail line with the fix (design §2). Online: it calls the downstream API with the
//! configured key, and only in ways that change nothing.
//!
//! - **config**: the file loads and validates (the caller did that; a failure never
//!   gets here).
//! - **data dir**: exists (or can be created), is writable, and is not readable by
//!   others; the signing key is not readable by others (warnings).
//! - **downstream key**: the API answers with this key (401 is a failure), and it
//!   holds the scopes the configured mode needs ([`Needs`], [`required_scopes`]),
//!   each named when missing; a scope the mode does not use is not probed. Reads
//!   are probed with `limit=1` lists; writes with requests on ids that do not exist
//!   (an update of a member `user_doctor_probe`, deletes of a group, a spend limit,
//!   a plugin setting or a role that are not there, an empty plugin policy for a
//!   plugin that is not there): the API checks scopes first, so a 403 means the
//!   scope is missing and a 404 or 400 means it is there, and nothing is changed.
//!   A beta (the Plugins API, the spend-limit reads) answering 404 with its header
//!   is "not available to this organization": a warning (plugin settings are then
//!   reported as drift, group spend not checked).
//! - **key files**: the admin and analytics key files are not accessible to group
//!   or others (warnings).
//! - **analytics key**: checked when configured, with one read of the Analytics API
//!   through the daemon's own Analytics client (401 and 403 fail, naming
//!   `read:analytics`).
//! - **clock skew**: the server's `date` header against this machine's clock.
//!
//! The key is sent only to the configured base URL and never printed.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::config::Config;
use crate::cowork::analytics::{AnalyticsClient, AnalyticsConfig};
use crate::cowork::client::ANTHROPIC_VERSION;
use crate::cowork::{Beta, CoworkError, Mode};

/// The largest clock difference accepted against the server (tokens and schedules
/// tolerate less than this).
pub const MAX_SKEW_SECS: i64 = 60;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Works, but should be fixed.
    Warn,
    /// Going live would fail.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The outcome.
    pub verdict: Verdict,
    /// What was checked.
    pub name: String,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is not a pass.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Pass,
            name: name.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Warn,
            name: name.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Fail,
            name: name.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `PASS name: detail` (and `  fix: ...` below a warning or failure).
    pub fn render(&self) -> String {
        let tag = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        let mut line = format!("{tag} {}: {}", self.name, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(&format!("\n     fix: {fix}"));
        }
        line
    }
}

/// Whether any check failed (the command then exits 1).
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.verdict == Verdict::Fail)
}

/// Every check, in order.
pub async fn run(config: &Config, now: DateTime<Utc>) -> Vec<Check> {
    let mut checks = vec![Check::pass(
        "config",
        format!(
            "valid (mode {}, downstream {})",
            mode(config),
            config
                .cowork
                .base_url
                .as_deref()
                .unwrap_or("the bundled simulator")
        ),
    )];
    checks.extend(data_dir(config));
    match (&config.cowork.base_url, &config.cowork.api_key) {
        (Some(base), Some(key)) => {
            checks.extend(downstream(base, key.expose(), Needs::of(config), now).await);
        }
        _ => checks.push(Check::pass(
            "downstream",
            "the bundled simulator runs in-process; no key to check",
        )),
    }
    checks.extend(key_files(config));
    checks.push(match (&config.insights.analytics_api_key, &config.cowork.base_url) {
        (None, _) => Check::pass(
            "analytics key",
            "not configured ([insights] analytics_api_key_file); insights use the cost and usage the downstream serves",
        ),
        (Some(_), None) => Check::pass(
            "analytics key",
            "configured; the bundled simulator serves analytics without one, so it is checked only against a real downstream",
        ),
        (Some(key), Some(base)) => analytics(base, key.expose()).await,
    });
    checks
}

fn mode(config: &Config) -> Mode {
    match config.cowork.mode {
        crate::config::CoworkMode::Real => Mode::Real,
        crate::config::CoworkMode::Extended => Mode::Extended,
    }
}

#[cfg(unix)]
fn others_can_read(path: &Path) -> Option<bool> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    Some(mode & 0o077 != 0)
}

#[cfg(not(unix))]
fn others_can_read(_: &Path) -> Option<bool> {
    None
}

/// The data directory and the signing key.
pub fn data_dir(config: &Config) -> Vec<Check> {
    let dir = &config.storage.data_dir;
    let mut out = Vec::new();
    if !dir.exists() {
        out.push(Check::warn(
            "data dir",
            format!("{} does not exist yet", dir.display()),
            "it is created (0700) on first start; check that the parent is writable",
        ));
        return out;
    }
    let probe = dir.join(".doctor-probe");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            match others_can_read(dir) {
                Some(true) => out.push(Check::warn(
                    "data dir",
                    format!("{} is accessible to other users", dir.display()),
                    format!("chmod 700 {}", dir.display()),
                )),
                _ => out.push(Check::pass(
                    "data dir",
                    format!("{} is writable and private", dir.display()),
                )),
            }
        }
        Err(e) => out.push(Check::fail(
            "data dir",
            format!("{} is not writable ({})", dir.display(), e.kind()),
            "give the daemon's user write access to the data directory",
        )),
    }
    let key = &config.auth.signing_key_file;
    if key.exists() {
        match others_can_read(key) {
            Some(true) => out.push(Check::warn(
                "signing key",
                format!("{} is readable by other users", key.display()),
                format!("chmod 600 {}", key.display()),
            )),
            _ => out.push(Check::pass(
                "signing key",
                format!("{} is private", key.display()),
            )),
        }
    }
    out
}

/// The secret files the config names (`cowork.api_key_file`,
/// `insights.analytics_api_key_file`): a warning for each that group or others can
/// read or write.
pub fn key_files(config: &Config) -> Vec<Check> {
    let files = [
        ("downstream key file", config.cowork.api_key_file.as_deref()),
        (
            "analytics key file",
            config.insights.analytics_api_key_file.as_deref(),
        ),
    ];
    files
        .into_iter()
        .filter_map(|(name, path)| Some((name, path?)))
        .map(|(name, path)| match others_can_read(path) {
            Some(true) => Check::warn(
                name,
                format!("{} is accessible to group or others", path.display()),
                format!(
                    "chmod 600 {} (and keep it owned by the daemon's user)",
                    path.display()
                ),
            ),
            _ => Check::pass(name, format!("{} is private", path.display())),
        })
        .collect()
}

/// The Analytics API key (`read:analytics`, separate from the admin key): one
/// `limit=1` read of `/analytics/users` through the [`AnalyticsClient`] the daemon
/// uses (no retry, so exactly one request). A 401 or 403 fails; a 400 means the key
/// passed (the API checks it before the parameters); a 404 is a warning (the
/// Analytics API is off for the org, or the server does not serve it).
pub async fn analytics(base_url: &str, key: &str) -> Check {
    const NAME: &str = "analytics key";
    let config = AnalyticsConfig {
        max_attempts: 1,
        request_timeout: Some(Duration::from_secs(15)),
        ..AnalyticsConfig::new(base_url, key)
    };
    let client = match AnalyticsClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("no Analytics client ({e})"),
                "check cowork.base_url and insights.analytics_api_key_file",
            )
        }
    };
    match client.probe().await {
        Ok(()) | Err(CoworkError::InvalidRequest { .. }) => {
            Check::pass(NAME, "the Analytics API accepts the key")
        }
        Err(CoworkError::Unauthorized { status: 403, .. }) => Check::fail(
            NAME,
            "the key lacks read:analytics (403)",
            "create an Analytics API key (read:analytics) at claude.ai/analytics/api-keys; admin keys are not analytics keys",
        ),
        Err(CoworkError::Unauthorized { status, .. }) => Check::fail(
            NAME,
            format!("the Analytics API refuses the key ({status}); it needs read:analytics"),
            "create an Analytics API key at claude.ai/analytics/api-keys and set insights.analytics_api_key_file",
        ),
        Err(CoworkError::NotFound { .. }) => Check::warn(
            NAME,
            "the Analytics API answered 404",
            "turn Analytics API access on in claude.ai (it has an on/off toggle), or remove the key",
        ),
        Err(CoworkError::RateLimited { .. }) => {
            Check::warn(NAME, "rate limited while probing", "run doctor again in a minute")
        }
        Err(CoworkError::Transient {
            status: None,
            reason,
            ..
        }) => Check::fail(
            NAME,
            format!("{base_url} cannot be reached ({reason})"),
            "check cowork.base_url, DNS, proxies and the firewall",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("the Analytics API answered with an error: {e}"),
            "run doctor again later",
        ),
    }
}

/// What the configured mode calls downstream, and so which scopes the key needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Real mode (tier A and the betas) or extended mode (tier B too).
    pub mode: Mode,
    /// Real mode writes per-user spend overrides (`cowork.materialize_group_spend`).
    pub user_spend_writes: bool,
}

impl From<Mode> for Needs {
    fn from(mode: Mode) -> Self {
        Needs {
            mode,
            user_spend_writes: false,
        }
    }
}

impl Needs {
    /// What the configuration needs.
    pub fn of(config: &Config) -> Self {
        Needs {
            mode: mode(config),
            user_spend_writes: config.cowork.materialize_group_spend,
        }
    }
}

/// One probe: method, path, body, the scope it shows, and the beta it needs.
struct Probe {
    scope: &'static str,
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    beta: Option<Beta>,
}

/// The probes of the scopes `needs` calls for, in order (the first is a plain read,
/// so reachability and the key are known before any write is probed). Both modes
/// read members, invites and roles (`read:members`), change members
/// (`write:members`), read and write groups, and read group spend limits (the
/// spend-limit reads beta; tier B serves the same list). Real mode also reads the
/// effective limits and uses the beta Plugins API (`read:plugins`, `write:plugins`);
/// it writes spend limits only when it materializes group spend. Extended mode
/// writes group spend limits, custom roles (`write:rbac_roles`) and plugin policies.
fn probes(needs: Needs) -> Vec<Probe> {
    let p = |scope, method, path, body, beta| Probe {
        scope,
        method,
        path,
        body,
        beta,
    };
    let mut out = vec![
        p("read:members", Method::GET, "/users?limit=1", None, None),
        p(
            "write:members",
            Method::POST,
            "/users/user_doctor_probe",
            Some(r#"{"role":"user"}"#),
            None,
        ),
        p(
            "read:rbac_groups",
            Method::GET,
            "/rbac_groups?limit=1",
            None,
            None,
        ),
        p(
            "write:rbac_groups",
            Method::DELETE,
            "/rbac_groups/rbac_group_doctor_probe",
            None,
            None,
        ),
        p(
            "read:spend_limits",
            Method::GET,
            "/spend_limits?scope_type%5B%5D=rbac_group&limit=1",
            None,
            Some(Beta::SpendLimitReads),
        ),
    ];
    let spend_write = p(
        "write:spend_limits",
        Method::DELETE,
        "/spend_limits/spl_doctor_probe",
        None,
        None,
    );
    match needs.mode {
        Mode::Real => {
            out.push(p(
                "read:spend_limits",
                Method::GET,
                "/spend_limits/effective?limit=1",
                None,
                None,
            ));
            if needs.user_spend_writes {
                out.push(spend_write);
            }
            out.push(p(
                "read:plugins",
                Method::GET,
                "/plugins?limit=1",
                None,
                Some(Beta::Plugins),
            ));
            out.push(p(
                "write:plugins",
                Method::DELETE,
                "/plugins/plugin_doctor_probe/installation_settings/organization",
                None,
                Some(Beta::Plugins),
            ));
        }
        Mode::Extended => {
            out.push(spend_write);
            out.push(p(
                "write:rbac_roles",
                Method::DELETE,
                "/rbac_roles/rbac_role_doctor_probe",
                None,
                None,
            ));
            out.push(p(
                "read:plugin_policies",
                Method::GET,
                "/plugin_policies?limit=1",
                None,
                None,
            ));
            out.push(p(
                "write:plugin_policies",
                Method::PUT,
                "/plugin_policies/plugin_doctor_probe",
                Some(r#"{"group_overrides":[]}"#),
                None,
            ));
        }
    }
    out
}

/// The scopes `needs` calls for, each once, in probe order.
pub fn required_scopes(needs: Needs) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in probes(needs) {
        if !out.contains(&p.scope) {
            out.push(p.scope);
        }
    }
    out
}

/// The downstream key: reachable, the scopes the daemon needs, the clock skew.
pub async fn downstream(
    base_url: &str,
    key: &str,
    needs: impl Into<Needs>,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let needs = needs.into();
    let mut out = Vec::new();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "downstream",
                format!("no HTTP client ({e})"),
                "check the TLS setup",
            ));
            return out;
        }
    };
    let base = format!("{}/v1/organizations", base_url.trim_end_matches('/'));
    // Missing scopes with the beta of the probe that showed them.
    let mut missing: Vec<(&'static str, Option<Beta>)> = Vec::new();
    let mut unavailable: Vec<Beta> = Vec::new();
    let mut server_date: Option<DateTime<Utc>> = None;
    for probe in probes(needs) {
        let mut req = http
            .request(probe.method.clone(), format!("{base}{}", probe.path))
            .header("x-api-key", key)
            .header("anthropic-version", ANTHROPIC_VERSION);
        if let Some(b) = probe.beta {
            req = req.header(crate::cowork::beta::HEADER, b.header_value());
        }
        if let Some(body) = probe.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                out.push(Check::fail(
                    "downstream",
                    format!("{base_url} cannot be reached ({})", transport(&e)),
                    "check cowork.base_url, DNS, proxies and the firewall",
                ));
                return out;
            }
        };
        if server_date.is_none() {
            server_date = resp
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.with_timezone(&Utc));
        }
        match resp.status().as_u16() {
            401 => {
                out.push(Check::fail(
                    "downstream key",
                    "the API refuses the key (401)",
                    "create a claude.ai Enterprise key (sk-ant-api01-…) and set cowork.api_key_file",
                ));
                return out;
            }
            403 => missing.push((probe.scope, probe.beta)),
            404 if probe.method == Method::GET => {
                if let Some(b) = probe.beta {
                    if !unavailable.contains(&b) {
                        unavailable.push(b);
                    }
                }
            }
            429 => {
                out.push(Check::warn(
                    "downstream key",
                    "rate limited while probing; some scopes were not checked",
                    "run doctor again in a minute",
                ));
                break;
            }
            s if s >= 500 => {
                out.push(Check::warn(
                    "downstream",
                    format!("the API answered {s} to a probe"),
                    "run doctor again later",
                ));
                break;
            }
            _ => {}
        }
    }
    // A beta the org does not have cannot show its scopes; another probe of the
    // same scope still can.
    missing.retain(|(_, beta)| beta.is_none_or(|b| !unavailable.contains(&b)));
    let mut missing_scopes: Vec<&'static str> = Vec::new();
    for (scope, _) in missing {
        if !missing_scopes.contains(&scope) {
            missing_scopes.push(scope);
        }
    }
    let missing = missing_scopes;
    let mode = needs.mode;
    out.insert(
        0,
        Check::pass("downstream", format!("{base_url} answers with this key")),
    );
    if missing.is_empty() {
        out.push(Check::pass(
            "downstream scopes",
            format!(
                "the key holds every scope {mode} mode needs ({})",
                required_scopes(needs).join(", ")
            ),
        ));
    } else {
        out.push(Check::fail(
            "downstream scopes",
            format!("the key lacks {}", missing.join(", ")),
            format!(
                "create a key with {} (group scopes need a key created for all linked organizations; write:plugins acts only in the org that created the key)",
                missing.join(", ")
            ),
        ));
    }
    if unavailable.contains(&Beta::SpendLimitReads) {
        out.push(Check::warn(
            "spend-limit reads",
            "the beta spend-limit reads are not available to this organization (404 with its beta header)",
            "group spend limits are then not checked against the rules (the plan notes it); nothing to do unless you expected the API",
        ));
    }
    if unavailable.contains(&Beta::Plugins) {
        out.push(Check::warn(
            "plugins API",
            "the beta Plugins API is not available to this organization (404 with its beta header)",
            "plugin settings per group are then reported as drift with their console steps; nothing to do unless you expected the API",
        ));
    }
    match server_date {
        Some(date) => {
            let skew = (now - date).num_seconds();
            if skew.abs() > MAX_SKEW_SECS {
                out.push(Check::fail(
                    "clock skew",
                    format!("this machine's clock is {skew} s off the server's"),
                    "synchronize the clock (NTP)",
                ));
            } else {
                out.push(Check::pass(
                    "clock skew",
                    format!("{skew} s against the server's date header"),
                ));
            }
        }
        None => out.push(Check::warn(
            "clock skew",
            "the server sent no date header",
            "check the clock by other means (NTP)",
        )),
    }
    out
}

fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_pass_warn_or_fail_and_carry_the_fix() {
        let c = Check::fail(
            "downstream scopes",
            "the key lacks write:plugins",
            "make one",
        );
        assert_eq!(
            c.render(),
            "FAIL downstream scopes: the key lacks write:plugins\n     fix: make one"
        );
        assert!(failed(&[Check::pass("a", "b"), c]));
        assert!(!failed(&[Check::warn("a", "b", "c")]));
    }
}
