//! Configuration: defaults → TOML file → `COWORK_SYNC__SECTION__KEY` environment
//! overrides, then validated into [`Config`]. Unknown keys are an error. Every
//! secret may be given inline or as a `*_file` path; secrets are redacted in `Debug`.
//!
//! Imports nothing of ours but the `[telemetry]` section's own module
//! ([`crate::telemetry::config`]), which also reads the standard `OTEL_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of environment overrides: `COWORK_SYNC__SERVER__LISTEN=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "COWORK_SYNC__";

/// Default sled page cache in MiB (`[storage] cache_mb`).
pub const DEFAULT_CACHE_MB: u64 = 64;

/// Errors loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML (file plus overrides) is malformed or has unknown keys.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// An environment override names no known section/key shape.
    #[error("environment variable {0} must look like COWORK_SYNC__SECTION__KEY")]
    BadEnvName(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {field}: {message}")]
    Invalid {
        /// `section.key`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A secret file could not be read.
    #[error("cannot read {field} from {path}: {source}")]
    SecretFile {
        /// `section.key_file`.
        field: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A secret string: never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; only for the code that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

// ---- the file format -------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    storage: StorageSection,
    #[serde(default)]
    auth: AuthSection,
    #[serde(default)]
    cowork: CoworkSection,
    #[serde(default)]
    reconcile: ReconcileSection,
    #[serde(default)]
    lifecycle: LifecycleSection,
    #[serde(default)]
    scim: ScimSection,
    #[serde(default)]
    audit: AuditSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    telemetry: crate::telemetry::config::TelemetrySection,
    #[serde(default)]
    insights: InsightsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    body_timeout_secs: Option<u64>,
    rate_limit_per_second: Option<f64>,
    rate_limit_burst: Option<f64>,
    workers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    data_dir: Option<PathBuf>,
    cache_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    signing_key_file: Option<PathBuf>,
    issuer: Option<String>,
    audience: Option<String>,
    jwks_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoworkSection {
    base_url: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    mode: Option<String>,
    requests_per_minute: Option<u32>,
    timeout_secs: Option<u64>,
    materialize_group_spend: Option<bool>,
    sim_rpm: Option<u32>,
    sim_accept_invites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InsightsSection {
    analytics_api_key: Option<String>,
    analytics_api_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileSection {
    schedule: Option<String>,
    max_removal_ratio: Option<f64>,
    removal_floor: Option<usize>,
    removal_window: Option<String>,
    failure_threshold: Option<u32>,
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleSection {
    on_deactivate: Option<String>,
    remove_from_org_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScimSection {
    unknown_members: Option<String>,
    unknown_attributes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSection {
    retention_days: Option<u32>,
    auth_failures_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    refusals_per_minute: Option<u32>,
    format: Option<String>,
    level: Option<String>,
}

// ---- the validated configuration ------------------------------------------

/// How the daemon writes to Cowork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoworkMode {
    /// Write only what Anthropic's Admin API allows; report the rest as drift.
    Real,
    /// Write both tiers (the simulator, or a Cowork admin API with extensions).
    Extended,
}

/// What to do with group member references to ids the directory does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownMembers {
    /// Apply the rest of the request, skip the unknown ids, audit them (default).
    Skip,
    /// RFC 7644 all-or-nothing: 400 `invalidValue` naming the ids, nothing applied.
    Reject,
}

/// What SCIM writes do with attributes no schema declares (`adreses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownAttributes {
    /// Drop them, count them in a metric, note each name once in the log (default).
    Ignore,
    /// Refuse the request: 400 `invalidSyntax` (`invalidPath` for a PATCH path).
    Reject,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain and key to serve HTTPS directly.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Base URL used in `meta.location` (default: from the request's Host).
    pub public_url: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long any request may take to send its body (408 beyond).
    pub body_timeout: Duration,
    /// Sustained requests per second per bearer subject (0 = unlimited).
    pub rate_limit_per_second: f64,
    /// Burst size per bearer subject.
    pub rate_limit_burst: f64,
    /// HTTP worker threads (default: number of CPUs).
    pub workers: Option<usize>,
}

/// `[storage]`
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Data directory (sled database, signing key, simulator state).
    pub data_dir: PathBuf,
    /// sled page cache size (`[storage] cache_mb`, default [`DEFAULT_CACHE_MB`]).
    pub cache_bytes: u64,
}

/// `[auth]`
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 key for tokens this daemon mints.
    pub signing_key_file: PathBuf,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Extra RS256/ES256 keys of an external issuer.
    pub jwks_file: Option<PathBuf>,
}

/// `[cowork]`
#[derive(Debug, Clone)]
pub struct CoworkConfig {
    /// `None` = the bundled simulator in-process; else the API base URL.
    pub base_url: Option<String>,
    /// The admin API key (`x-api-key`).
    pub api_key: Option<Secret>,
    /// Where the admin API key was read from (`api_key_file`), when it was.
    pub api_key_file: Option<PathBuf>,
    /// Write mode.
    pub mode: CoworkMode,
    /// Client-side request budget (0 = unlimited).
    pub requests_per_minute: u32,
    /// Per-request timeout.
    pub timeout_secs: u64,
    /// In real mode, write group spend limits as per-user overrides.
    pub materialize_group_spend: bool,
    /// In-process simulator: its rate limit per minute (0 = none).
    pub sim_rpm: u32,
    /// In-process simulator: accept invites at once.
    pub sim_accept_invites: bool,
}

/// `[insights]`
#[derive(Debug, Clone, Default)]
pub struct InsightsConfig {
    /// The Analytics API key (`read:analytics`; separate from the admin key).
    pub analytics_api_key: Option<Secret>,
    /// Where it was read from (`analytics_api_key_file`), when it was.
    pub analytics_api_key_file: Option<PathBuf>,
}

/// `[reconcile]`
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Six-field cron expression.
    pub schedule: String,
    /// The valve holds removals beyond this share of managed memberships ...
    pub max_removal_ratio: f64,
    /// ... but never while the removals in the window are at most this many.
    pub removal_floor: usize,
    /// The sliding window the valve counts removals over.
    pub removal_window: Duration,
    /// Consecutive failed runs (or downstream calls) before `/readyz` reports the
    /// pipeline degraded.
    pub failure_threshold: u32,
    /// Whether the scheduled run is on.
    pub enabled: bool,
}

/// `[lifecycle] on_deactivate`: what a deactivated or deleted governed user loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeactivate {
    /// Their groups, then (after the grace) their organization membership.
    RemoveFromOrg,
    /// Their groups only.
    RemoveFromGroups,
}

/// `[lifecycle]`
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// What offboarding takes away.
    pub on_deactivate: OnDeactivate,
    /// Grace before the organization removal (group removal is always immediate).
    pub remove_from_org_after: Duration,
}

impl ConfigError {
    /// `field` holds a value that is out of range or inconsistent.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Whether a duration key may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// `0s` is a valid setting (no grace, no wait).
    Allowed,
    /// `0s` is refused: "must be longer than zero".
    Refused,
}

/// Reads the duration key `field`: `default` when absent, else [`parse_duration`] of
/// its text, with the error naming the field.
pub fn duration_key(
    text: Option<&str>,
    default: Duration,
    field: &'static str,
    zero: Zero,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let d = parse_duration(text).map_err(|m| ConfigError::invalid(field, m))?;
    if d.is_zero() && zero == Zero::Refused {
        return Err(ConfigError::invalid(field, "must be longer than zero"));
    }
    Ok(d)
}

/// The text of the secret file that `field` names (read whole; the caller trims or
/// splits it). The error names the field and the path, never the content.
pub fn read_secret_file(path: PathBuf, field: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
        field,
        path,
        source,
    })
}

/// Parses a duration such as `90s`, `15m`, `1h`, `7d` or `1h30m` (`0s` is zero).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("'{text}' is not a duration such as \"30s\", \"15m\", \"1h\" or \"7d\"");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `[audit]`
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Entries older than this are pruned behind a checkpoint (0 = keep forever).
    pub retention_days: u32,
    /// Authentication failures recorded per minute at most (0: none are recorded,
    /// only counted in metrics).
    pub auth_failures_per_minute: u32,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[cowork]`
    pub cowork: CoworkConfig,
    /// `[reconcile]`
    pub reconcile: ReconcileConfig,
    /// `[lifecycle]`
    pub lifecycle: LifecycleConfig,
    /// `[insights]`
    pub insights: InsightsConfig,
    /// `[scim] unknown_members`
    pub unknown_members: UnknownMembers,
    /// `[scim] unknown_attributes`
    pub unknown_attributes: UnknownAttributes,
    /// `[audit]`
    pub audit: AuditConfig,
    /// `[log] format`
    pub log_format: LogFormat,
    /// `[log] refusals_per_minute`: refused requests logged one by one per minute at
    /// most; the rest are counted in a summary line.
    pub log_refusals_per_minute: u32,
    /// `[log] level` (a tracing filter such as `info,cowork_sync=debug`).
    pub log_level: String,
    /// `[telemetry]`
    pub telemetry: crate::telemetry::config::TelemetryConfig,
}

impl Config {
    /// Loads defaults, then `file` (if any), then environment overrides from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        apply_env(&mut table, env.iter().cloned())?;
        let mut file: FileConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        let telemetry = std::mem::take(&mut file.telemetry).resolve(&env)?;
        Ok(Config {
            telemetry,
            ..validate(file)?
        })
    }

    /// The configuration with every default and no file.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load(None, std::iter::empty())
    }

    /// Where the sled database lives.
    pub fn db_dir(&self) -> PathBuf {
        self.storage.data_dir.join("db")
    }

    /// Where the in-process simulator keeps its state.
    pub fn sim_dir(&self) -> PathBuf {
        self.storage.data_dir.join("sim")
    }
}

fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(2, "__");
        let (Some(section), Some(key)) = (parts.next(), parts.next()) else {
            return Err(ConfigError::BadEnvName(name));
        };
        if section.is_empty() || key.is_empty() || key.contains("__") {
            return Err(ConfigError::BadEnvName(name));
        }
        let value = parse_env_value(&raw);
        let section_table = table
            .entry(section.to_ascii_lowercase())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match section_table {
            toml::Value::Table(t) => {
                t.insert(key.to_ascii_lowercase(), value);
            }
            _ => {
                return Err(ConfigError::Parse(format!(
                    "[{}] is not a table",
                    section.to_ascii_lowercase()
                )))
            }
        }
    }
    Ok(())
}

/// An override is read as a TOML value when it is one (`0.5`, `true`, `"x"`),
/// otherwise as a plain string (`0.0.0.0:8080`).
fn parse_env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn read_secret(
    inline: Option<String>,
    file: Option<PathBuf>,
    field: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            field,
            message: "give the secret inline or as a file, not both".into(),
        }),
        (Some(s), None) => Ok(Some(Secret::new(s))),
        (None, Some(path)) => Ok(Some(Secret::new(read_secret_file(path, field)?.trim()))),
        (None, None) => Ok(None),
    }
}

/// Validates a six-field cron expression the way the scheduler will read it.
pub fn validate_schedule(schedule: &str) -> Result<(), String> {
    let fields = schedule.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "expected six fields (sec min hour day month weekday), found {fields}"
        ));
    }
    tokio_cron_scheduler::Job::new_async(schedule, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn validate(file: FileConfig) -> Result<Config, ConfigError> {
    let s = file.server;
    let listen_text = s.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text
        .parse::<SocketAddr>()
        .map_err(|e| ConfigError::Invalid {
            field: "server.listen",
            message: format!("'{listen_text}' is not an address:port ({e})"),
        })?;
    let tls = match (s.tls_cert_file, s.tls_key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(ConfigError::Invalid {
                field: "server.tls_cert_file",
                message: "tls_cert_file and tls_key_file go together".into(),
            })
        }
    };
    let max_body_bytes = s.max_body_bytes.unwrap_or(1024 * 1024);
    if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
        return Err(ConfigError::Invalid {
            field: "server.max_body_bytes",
            message: "must be between 1 KiB and 64 MiB".into(),
        });
    }
    let body_timeout_secs = s.body_timeout_secs.unwrap_or(10);
    if !(1..=600).contains(&body_timeout_secs) {
        return Err(ConfigError::Invalid {
            field: "server.body_timeout_secs",
            message: "must be between 1 and 600 seconds".into(),
        });
    }
    let rate = s.rate_limit_per_second.unwrap_or(2000.0);
    let burst = s.rate_limit_burst.unwrap_or(rate * 2.0);
    if rate < 0.0 || burst < 0.0 || !rate.is_finite() || !burst.is_finite() {
        return Err(ConfigError::Invalid {
            field: "server.rate_limit_per_second",
            message: "must be zero (unlimited) or positive".into(),
        });
    }
    if let Some(url) = &s.public_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                field: "server.public_url",
                message: "must start with http:// or https://".into(),
            });
        }
    }

    let data_dir = file
        .storage
        .data_dir
        .unwrap_or_else(|| PathBuf::from("./data"));
    // sled's resident memory settles near three times its nominal cache; 64 MiB keeps a
    // directory of 1,000,000 users under 1 GiB (bench/README.md).
    let cache_mb = file.storage.cache_mb.unwrap_or(DEFAULT_CACHE_MB);
    if !(16..=65536).contains(&cache_mb) {
        return Err(ConfigError::Invalid {
            field: "storage.cache_mb",
            message: "must be between 16 and 65536".into(),
        });
    }

    let a = file.auth;
    let auth = AuthConfig {
        signing_key_file: a
            .signing_key_file
            .unwrap_or_else(|| data_dir.join("signing.key")),
        issuer: non_empty(a.issuer, "cowork-sync", "auth.issuer")?,
        audience: non_empty(a.audience, "cowork-sync", "auth.audience")?,
        jwks_file: a.jwks_file,
    };

    let c = file.cowork;
    let base_url = match c.base_url.as_deref().unwrap_or("sim") {
        "sim" => None,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Some(url.trim_end_matches('/').to_string())
        }
        other => {
            return Err(ConfigError::Invalid {
                field: "cowork.base_url",
                message: format!("'{other}' is neither \"sim\" nor an http(s) URL"),
            })
        }
    };
    let api_key_file = c.api_key_file.clone();
    let api_key = read_secret(c.api_key, c.api_key_file, "cowork.api_key_file")?;
    if base_url.is_some() && api_key.is_none() {
        return Err(ConfigError::Invalid {
            field: "cowork.api_key_file",
            message: "a real downstream needs an API key".into(),
        });
    }
    let mode = match c.mode.as_deref().unwrap_or("extended") {
        "real" => CoworkMode::Real,
        "extended" => CoworkMode::Extended,
        other => {
            return Err(ConfigError::Invalid {
                field: "cowork.mode",
                message: format!("'{other}' is neither \"real\" nor \"extended\""),
            })
        }
    };
    let cowork = CoworkConfig {
        base_url,
        api_key,
        api_key_file,
        mode,
        requests_per_minute: c.requests_per_minute.unwrap_or(90),
        timeout_secs: c.timeout_secs.unwrap_or(30).clamp(1, 600),
        materialize_group_spend: c.materialize_group_spend.unwrap_or(false),
        sim_rpm: c.sim_rpm.unwrap_or(0),
        sim_accept_invites: c.sim_accept_invites.unwrap_or(true),
    };

    let r = file.reconcile;
    let schedule = r.schedule.unwrap_or_else(|| "0 */10 * * * *".into());
    validate_schedule(&schedule).map_err(|message| ConfigError::Invalid {
        field: "reconcile.schedule",
        message,
    })?;
    let max_removal_ratio = r.max_removal_ratio.unwrap_or(0.2);
    if !(0.0..=1.0).contains(&max_removal_ratio) {
        return Err(ConfigError::Invalid {
            field: "reconcile.max_removal_ratio",
            message: "must be between 0 and 1".into(),
        });
    }
    let removal_window = duration_key(
        r.removal_window.as_deref(),
        Duration::from_secs(3600),
        "reconcile.removal_window",
        Zero::Refused,
    )?;
    let reconcile = ReconcileConfig {
        schedule,
        max_removal_ratio,
        removal_floor: r.removal_floor.unwrap_or(10),
        removal_window,
        failure_threshold: r.failure_threshold.unwrap_or(3).max(1),
        enabled: r.enabled.unwrap_or(true),
    };

    let i = file.insights;
    let insights = InsightsConfig {
        analytics_api_key_file: i.analytics_api_key_file.clone(),
        analytics_api_key: read_secret(
            i.analytics_api_key,
            i.analytics_api_key_file,
            "insights.analytics_api_key_file",
        )?,
    };

    let l = file.lifecycle;
    let on_deactivate = match l.on_deactivate.as_deref().unwrap_or("remove_from_org") {
        "remove_from_org" => OnDeactivate::RemoveFromOrg,
        "remove_from_groups" => OnDeactivate::RemoveFromGroups,
        other => {
            return Err(ConfigError::Invalid {
                field: "lifecycle.on_deactivate",
                message: format!(
                    "'{other}' is neither \"remove_from_org\" nor \"remove_from_groups\""
                ),
            })
        }
    };
    let lifecycle = LifecycleConfig {
        on_deactivate,
        remove_from_org_after: duration_key(
            l.remove_from_org_after.as_deref(),
            Duration::ZERO,
            "lifecycle.remove_from_org_after",
            Zero::Allowed,
        )?,
    };

    let unknown_members = match file.scim.unknown_members.as_deref().unwrap_or("skip") {
        "skip" => UnknownMembers::Skip,
        "reject" => UnknownMembers::Reject,
        other => {
            return Err(ConfigError::Invalid {
                field: "scim.unknown_members",
                message: format!("'{other}' is neither \"skip\" nor \"reject\""),
            })
        }
    };

    let unknown_attributes = match file.scim.unknown_attributes.as_deref().unwrap_or("ignore") {
        "ignore" => UnknownAttributes::Ignore,
        "reject" => UnknownAttributes::Reject,
        other => {
            return Err(ConfigError::Invalid {
                field: "scim.unknown_attributes",
                message: format!("'{other}' is neither \"ignore\" nor \"reject\""),
            })
        }
    };

    let log_format = match file.log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::Invalid {
                field: "log.format",
                message: format!("'{other}' is neither \"text\" nor \"json\""),
            })
        }
    };

    Ok(Config {
        server: ServerConfig {
            listen,
            tls,
            public_url: s.public_url.map(|u| u.trim_end_matches('/').to_string()),
            max_body_bytes,
            body_timeout: Duration::from_secs(body_timeout_secs),
            rate_limit_per_second: rate,
            rate_limit_burst: burst.max(1.0),
            workers: s.workers.filter(|w| *w > 0),
        },
        storage: StorageConfig {
            data_dir,
            cache_bytes: cache_mb * 1024 * 1024,
        },
        auth,
        cowork,
        reconcile,
        lifecycle,
        insights,
        unknown_members,
        unknown_attributes,
        audit: AuditConfig {
            retention_days: file.audit.retention_days.unwrap_or(0),
            auth_failures_per_minute: file.audit.auth_failures_per_minute.unwrap_or(60),
        },
        log_format,
        log_refusals_per_minute: file.log.refusals_per_minute.unwrap_or(60),
        log_level: {
            let level = file.log.level.unwrap_or_else(|| "info".into());
            level
                .parse::<tracing_subscriber::filter::Targets>()
                .map_err(|e| ConfigError::Invalid {
                    field: "log.level",
                    message: format!("'{level}' is not a level or filter such as \"info,cowork_sync=debug\" ({e})"),
                })?;
            level
        },
        telemetry: Default::default(),
    })
}

fn non_empty(v: Option<String>, default: &str, field: &'static str) -> Result<String, ConfigError> {
    let v = v.unwrap_or_else(|| default.into());
    if v.trim().is_empty() {
        return Err(ConfigError::Invalid {
            field,
            message: "must not be empty".into(),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_contract() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(c.auth.signing_key_file, PathBuf::from("./data/signing.key"));
        assert_eq!(c.auth.issuer, "cowork-sync");
        assert!(c.cowork.base_url.is_none());
        assert_eq!(c.cowork.mode, CoworkMode::Extended);
        assert_eq!(c.reconcile.schedule, "0 */10 * * * *");
        assert_eq!(c.reconcile.max_removal_ratio, 0.2);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[reconcile]\nmax_removal_ratio = 0.1\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("COWORK_SYNC__SERVER__LISTEN", "0.0.0.0:8081"),
                ("COWORK_SYNC__RECONCILE__MAX_REMOVAL_RATIO", "0.5"),
                ("COWORK_SYNC_URL", "http://ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(c.reconcile.max_removal_ratio, 0.5);
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::load(None, env(&[("COWORK_SYNC__SERVER__NOPE", "1")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = Config::load(None, env(&[("COWORK_SYNC__NOSECTION", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::BadEnvName(_)));
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "sk-ant-api01-secret\n").unwrap();
        let c = Config::load(
            None,
            env(&[
                ("COWORK_SYNC__COWORK__BASE_URL", "https://api.example.com/"),
                ("COWORK_SYNC__COWORK__API_KEY_FILE", key.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.cowork.api_key.as_ref().unwrap().expose(),
            "sk-ant-api01-secret"
        );
        assert_eq!(
            c.cowork.base_url.as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(c.cowork.api_key_file.as_deref(), Some(key.as_path()));
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn the_analytics_key_is_optional_and_read_from_its_file() {
        let c = Config::defaults().unwrap();
        assert!(c.insights.analytics_api_key.is_none());
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("analytics");
        std::fs::write(&key, "sk-ant-analytics-secret\n").unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!(
                "[insights]\nanalytics_api_key_file = {:?}\n",
                key.to_str().unwrap()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            c.insights.analytics_api_key.as_ref().unwrap().expose(),
            "sk-ant-analytics-secret"
        );
        assert_eq!(
            c.insights.analytics_api_key_file.as_deref(),
            Some(key.as_path())
        );
        assert!(!format!("{c:?}").contains("secret"));
        let missing = Config::load(
            None,
            env(&[(
                "COWORK_SYNC__INSIGHTS__ANALYTICS_API_KEY_FILE",
                "/nonexistent/k",
            )]),
        )
        .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("insights.analytics_api_key_file"),
            "{missing}"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (k, v, field) in [
            ("COWORK_SYNC__SERVER__LISTEN", "nope", "server.listen"),
            (
                "COWORK_SYNC__RECONCILE__SCHEDULE",
                "*/5 * * * *",
                "reconcile.schedule",
            ),
            (
                "COWORK_SYNC__RECONCILE__MAX_REMOVAL_RATIO",
                "2",
                "reconcile.max_removal_ratio",
            ),
            ("COWORK_SYNC__COWORK__MODE", "fast", "cowork.mode"),
            (
                "COWORK_SYNC__LOG__LEVEL",
                "info,cowork_sync=shout",
                "log.level",
            ),
            (
                "COWORK_SYNC__COWORK__BASE_URL",
                "https://x.example.com",
                "cowork.api_key_file",
            ),
        ] {
            let err = Config::load(None, env(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(field), "{k}: {err}");
        }
    }

    #[test]
    fn duration_keys_default_when_absent_and_name_the_field_when_wrong() {
        let d = Duration::from_secs(5);
        assert_eq!(duration_key(None, d, "a.b", Zero::Refused).unwrap(), d);
        assert_eq!(
            duration_key(Some("0s"), d, "a.b", Zero::Allowed).unwrap(),
            Duration::ZERO
        );
        let e = duration_key(Some("0s"), d, "a.b", Zero::Refused).unwrap_err();
        assert!(
            e.to_string().contains("a.b: must be longer than zero"),
            "{e}"
        );
        let e = duration_key(Some("soon"), d, "a.b", Zero::Allowed).unwrap_err();
        assert!(e.to_string().contains("a.b"), "{e}");
    }

    #[test]
    fn durations_read_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "10", "1w", "h", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifecycle_and_the_valve_window_have_defaults_and_are_validated() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.lifecycle.on_deactivate, OnDeactivate::RemoveFromOrg);
        assert_eq!(c.lifecycle.remove_from_org_after, Duration::ZERO);
        assert_eq!(c.reconcile.removal_floor, 10);
        assert_eq!(c.reconcile.removal_window, Duration::from_secs(3600));
        let c = Config::load(
            None,
            env(&[
                (
                    "COWORK_SYNC__LIFECYCLE__ON_DEACTIVATE",
                    "remove_from_groups",
                ),
                ("COWORK_SYNC__LIFECYCLE__REMOVE_FROM_ORG_AFTER", "1d"),
                ("COWORK_SYNC__RECONCILE__REMOVAL_FLOOR", "0"),
                ("COWORK_SYNC__RECONCILE__REMOVAL_WINDOW", "15m"),
            ]),
        )
        .unwrap();
        assert_eq!(c.lifecycle.on_deactivate, OnDeactivate::RemoveFromGroups);
        assert_eq!(
            c.lifecycle.remove_from_org_after,
            Duration::from_secs(86_400)
        );
        assert_eq!(c.reconcile.removal_floor, 0);
        assert_eq!(c.reconcile.removal_window, Duration::from_secs(900));
        for (key, value, field) in [
            (
                "COWORK_SYNC__LIFECYCLE__ON_DEACTIVATE",
                "delete",
                "lifecycle.on_deactivate",
            ),
            (
                "COWORK_SYNC__LIFECYCLE__REMOVE_FROM_ORG_AFTER",
                "soon",
                "lifecycle.remove_from_org_after",
            ),
            (
                "COWORK_SYNC__RECONCILE__REMOVAL_WINDOW",
                "0s",
                "reconcile.removal_window",
            ),
        ] {
            let err = Config::load(None, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
