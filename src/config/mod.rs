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
    pool_check: Option<String>,
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
    /// HTTP worker threads, when set; see [`ServerConfig::http_workers`].
    pub workers: Option<usize>,
}

impl ServerConfig {
    /// HTTP worker threads: `workers` when set, else [`default_http_workers`] of the
    /// CPUs this process may use.
    pub fn http_workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            default_http_workers(std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }
}

/// One HTTP worker per CPU but one, and at least one. The CPU left over is for the
/// write path: SCIM writes run on the blocking pool, their batches' durable flushes
/// and sled's log writes on threads of their own. On two CPUs, one worker instead of
/// two served creates 15 % faster at 15 % less CPU each, and GETs 45 % faster with a
/// p99 of 0.5 ms instead of 2.6 (bench/README.md).
pub fn default_http_workers(cpus: usize) -> usize {
    cpus.saturating_sub(1).max(1)
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
    /// Six-field cron of the pooled budgets' check between full reconciles
    /// (`pool_check`, default every 15 minutes); `None` when set to `"off"`.
    pub pool_check: Option<String>,
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

mod validate;

pub use validate::validate_schedule;
use validate::{apply_env, validate};

#[cfg(test)]
mod tests;
