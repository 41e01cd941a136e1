//! `[telemetry]`: where OTLP goes and how, resolved from the file, the
//! `COWORK_SYNC__TELEMETRY__*` overrides and the standard `OTEL_*` variables.
//!
//! A key in the file (or its `COWORK_SYNC__` override) wins over the matching
//! `OTEL_EXPORTER_OTLP_*` variable; without an endpoint from either, telemetry is off.
//! Headers are the exception: `opentelemetry-otlp` adds `OTEL_EXPORTER_OTLP_HEADERS`
//! (and the per-signal `..._HEADERS`) to every export itself, over ours, whatever we pass.
//! Collector headers are secrets: they are held in [`Secret`]s and never printed.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{duration_key, read_secret_file, ConfigError, Secret, Zero};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL.
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The per-signal endpoints (`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`): full
/// URLs, used as given, each over the base endpoint for its signal.
pub const ENV_SIGNAL_ENDPOINTS: [(&str, &str); 3] = [
    ("traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ("metrics", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    ("logs", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
];
/// Where a signal goes when only other signals have an endpoint (the OTLP/HTTP default).
const DEFAULT_BASE: &str = "http://localhost:4318";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2` (values percent-encoded).
pub const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: the export timeout in milliseconds.
pub const ENV_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_SERVICE_NAME`: the `service.name` resource attribute.
pub const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_SDK_DISABLED=true` turns telemetry off whatever else is set.
pub const ENV_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// The `[telemetry]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    otlp_endpoint: Option<String>,
    headers: Option<toml::Table>,
    headers_file: Option<std::path::PathBuf>,
    timeout: Option<String>,
    service_name: Option<String>,
    service_instance_id: Option<String>,
    metrics_interval: Option<String>,
    span_queue: Option<usize>,
    audit_logs: Option<bool>,
    audit_batch: Option<usize>,
    retry_max: Option<String>,
}

/// Where and how telemetry is exported; `None` endpoint means off.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The collector's base URL (`/v1/traces`, `/v1/metrics` and `/v1/logs` are
    /// appended), or `None`: telemetry off.
    pub endpoint: Option<String>,
    /// Per-signal URLs from `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, used as given
    /// (only when `[telemetry] otlp_endpoint` is not set in the file).
    pub signal_endpoints: Vec<(String, String)>,
    /// Headers sent with every export (collector authentication). Secrets.
    pub headers: Vec<(String, Secret)>,
    /// Each export request's timeout.
    pub timeout: Duration,
    /// `service.name`.
    pub service_name: String,
    /// `service.instance.id`; `None`: a random UUID per process (unique per running instance).
    pub service_instance_id: Option<String>,
    /// How often metrics are exported.
    pub metrics_interval: Duration,
    /// Finished spans waiting for export at most; beyond it spans are dropped and counted.
    pub span_queue: usize,
    /// Whether audit entries are exported as log records.
    pub audit_logs: bool,
    /// Audit entries per log export request at most.
    pub audit_batch: usize,
    /// The longest pause between retries of a failed audit export.
    pub retry_max: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            signal_endpoints: Vec::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            service_name: "cowork-sync".into(),
            service_instance_id: None,
            metrics_interval: Duration::from_secs(30),
            span_queue: 2048,
            audit_logs: true,
            audit_batch: 256,
            retry_max: Duration::from_secs(30),
        }
    }
}

impl TelemetryConfig {
    /// Whether anything is exported.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some() || !self.signal_endpoints.is_empty()
    }

    /// The endpoint shown in status and logs: the base URL, or the first per-signal URL.
    pub fn shown_endpoint(&self) -> Option<&str> {
        self.endpoint
            .as_deref()
            .or_else(|| self.signal_endpoints.first().map(|(_, url)| url.as_str()))
    }

    /// The endpoint of one signal (`traces`, `metrics`, `logs`), per the OTLP
    /// exporter specification: its own `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` as given,
    /// else the base URL with `/v1/<signal>` appended, else (when only other signals
    /// have an endpoint) the OTLP/HTTP default `http://localhost:4318/v1/<signal>`.
    /// `None` when telemetry is off.
    pub fn signal_url(&self, signal: &str) -> Option<String> {
        if !self.enabled() {
            return None;
        }
        if let Some((_, url)) = self.signal_endpoints.iter().find(|(s, _)| s == signal) {
            return Some(url.clone());
        }
        let base = self.endpoint.as_deref().unwrap_or(DEFAULT_BASE);
        Some(format!("{}/v1/{signal}", base.trim_end_matches('/')))
    }
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Decodes `%XX` escapes (W3C Baggage octets, as `OTEL_EXPORTER_OTLP_HEADERS` uses).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `key=value,key2=value2`. The error never repeats a value.
fn parse_header_list(
    text: &str,
    field: &'static str,
) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out = Vec::new();
    for (i, pair) in text.split(',').enumerate() {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            ConfigError::invalid(field, format!("entry {} is not key=value", i + 1))
        })?;
        let value = percent_decode(value.trim()).ok_or_else(|| {
            ConfigError::invalid(field, format!("entry {} has a bad %-escape", i + 1))
        })?;
        out.push((header_name(key.trim(), field)?, Secret::new(value)));
    }
    Ok(out)
}

fn header_name(key: &str, field: &'static str) -> Result<String, ConfigError> {
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b));
    if ok {
        Ok(key.to_ascii_lowercase())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("'{key}' is not an HTTP header name"),
        ))
    }
}

impl TelemetrySection {
    /// Validates the section against the environment the daemon was started with.
    pub fn resolve(self, env: &[(String, String)]) -> Result<TelemetryConfig, ConfigError> {
        let defaults = TelemetryConfig::default();
        let endpoint = match self
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or_else(|| env_value(env, ENV_ENDPOINT))
        {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_string())
            }
            Some(_) => {
                return Err(ConfigError::invalid(
                    "telemetry.otlp_endpoint",
                    "must be an http:// or https:// URL (OTLP over HTTP)",
                ))
            }
            None => None,
        };
        // The file's endpoint wins over every OTEL_* endpoint; otherwise each signal's
        // own variable wins over the base one.
        let mut signal_endpoints = Vec::new();
        if self
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .is_empty()
        {
            for (signal, var) in ENV_SIGNAL_ENDPOINTS {
                match env_value(env, var) {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        signal_endpoints.push((signal.to_string(), url.to_string()));
                    }
                    Some(_) => {
                        return Err(ConfigError::invalid(
                            "telemetry.otlp_endpoint",
                            format!("{var} must be an http:// or https:// URL (OTLP over HTTP)"),
                        ))
                    }
                    None => {}
                }
            }
        }
        let disabled =
            env_value(env, ENV_SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let headers = match (self.headers, self.headers_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "telemetry.headers_file",
                    "give the headers inline or as a file, not both",
                ))
            }
            (Some(table), None) => {
                let mut out = Vec::new();
                for (k, v) in table {
                    let toml::Value::String(v) = v else {
                        return Err(ConfigError::invalid(
                            "telemetry.headers",
                            format!("the value of '{k}' must be a string"),
                        ));
                    };
                    out.push((header_name(&k, "telemetry.headers")?, Secret::new(v)));
                }
                out
            }
            (None, Some(path)) => {
                let text = read_secret_file(path, "telemetry.headers_file")?;
                parse_header_list(&text.replace('\n', ","), "telemetry.headers_file")?
            }
            (None, None) => match env_value(env, ENV_HEADERS) {
                Some(text) => parse_header_list(text, "OTEL_EXPORTER_OTLP_HEADERS")?,
                None => Vec::new(),
            },
        };
        let timeout = match (self.timeout.as_deref(), env_value(env, ENV_TIMEOUT)) {
            (Some(t), _) => duration_key(
                Some(t),
                defaults.timeout,
                "telemetry.timeout",
                Zero::Refused,
            )?,
            (None, Some(ms)) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::invalid(
                        "telemetry.timeout",
                        "OTEL_EXPORTER_OTLP_TIMEOUT must be a positive number of milliseconds",
                    ))
                }
            },
            (None, None) => defaults.timeout,
        };
        let service_name = self
            .service_name
            .or_else(|| env_value(env, ENV_SERVICE_NAME).map(str::to_string))
            .unwrap_or(defaults.service_name);
        if service_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "telemetry.service_name",
                "must not be empty",
            ));
        }
        let span_queue = self.span_queue.unwrap_or(defaults.span_queue);
        if !(16..=1_000_000).contains(&span_queue) {
            return Err(ConfigError::invalid(
                "telemetry.span_queue",
                "must be between 16 and 1000000",
            ));
        }
        let audit_batch = self.audit_batch.unwrap_or(defaults.audit_batch);
        if !(1..=10_000).contains(&audit_batch) {
            return Err(ConfigError::invalid(
                "telemetry.audit_batch",
                "must be between 1 and 10000",
            ));
        }
        Ok(TelemetryConfig {
            endpoint: endpoint.filter(|_| !disabled),
            signal_endpoints: if disabled {
                Vec::new()
            } else {
                signal_endpoints
            },
            headers,
            timeout,
            service_name,
            service_instance_id: self.service_instance_id.filter(|s| !s.trim().is_empty()),
            metrics_interval: duration_key(
                self.metrics_interval.as_deref(),
                defaults.metrics_interval,
                "telemetry.metrics_interval",
                Zero::Refused,
            )?,
            span_queue,
            audit_logs: self.audit_logs.unwrap_or(defaults.audit_logs),
            audit_batch,
            retry_max: duration_key(
                self.retry_max.as_deref(),
                defaults.retry_max,
                "telemetry.retry_max",
                Zero::Refused,
            )?,
        })
    }
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

    fn section(text: &str) -> Result<TelemetrySection, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn off_without_an_endpoint() {
        let c = TelemetrySection::default().resolve(&[]).unwrap();
        assert!(!c.enabled());
        assert_eq!(c.signal_url("traces"), None);
    }

    #[test]
    fn a_signal_endpoint_variable_is_used_as_given_over_the_base() {
        let c = TelemetrySection::default()
            .resolve(&env(&[
                (ENV_ENDPOINT, "http://collector:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "https://traces.example.com/otlp/spans",
                ),
            ]))
            .unwrap();
        assert_eq!(
            c.signal_url("traces").as_deref(),
            Some("https://traces.example.com/otlp/spans")
        );
        assert_eq!(
            c.signal_url("metrics").as_deref(),
            Some("http://collector:4318/v1/metrics")
        );
    }

    #[test]
    fn signal_endpoints_alone_turn_telemetry_on_and_the_rest_go_to_the_default() {
        let c = TelemetrySection::default()
            .resolve(&env(&[(
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:4318/v1/logs",
            )]))
            .unwrap();
        assert!(c.enabled());
        assert_eq!(c.shown_endpoint(), Some("http://logs:4318/v1/logs"));
        assert_eq!(
            c.signal_url("logs").as_deref(),
            Some("http://logs:4318/v1/logs")
        );
        assert_eq!(
            c.signal_url("traces").as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
    }

    #[test]
    fn the_file_endpoint_wins_over_signal_variables_and_bad_ones_are_refused() {
        let c = section("otlp_endpoint = \"http://file:4318\"")
            .unwrap()
            .resolve(&env(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://env:4318/t",
            )]))
            .unwrap();
        assert_eq!(
            c.signal_url("traces").as_deref(),
            Some("http://file:4318/v1/traces")
        );
        let e = TelemetrySection::default()
            .resolve(&env(&[(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "collector:4318",
            )]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"), "{e}");
        let off = TelemetrySection::default()
            .resolve(&env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4318/t"),
                (ENV_SDK_DISABLED, "true"),
            ]))
            .unwrap();
        assert!(!off.enabled());
    }

    #[test]
    fn the_standard_variables_fill_what_the_file_leaves_out() {
        let c = TelemetrySection::default()
            .resolve(&env(&[
                (ENV_ENDPOINT, "http://collector:4318/"),
                (
                    ENV_HEADERS,
                    "Authorization=Bearer%20abc, x-scope = tenant-1",
                ),
                (ENV_TIMEOUT, "2500"),
                (ENV_SERVICE_NAME, "sync-eu"),
            ]))
            .unwrap();
        assert_eq!(
            c.signal_url("logs").as_deref(),
            Some("http://collector:4318/v1/logs")
        );
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].0, "authorization");
        assert_eq!(c.headers[0].1.expose(), "Bearer abc");
        assert_eq!(c.headers[1].0, "x-scope");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.service_name, "sync-eu");
    }

    #[test]
    fn the_file_wins_over_the_standard_variables() {
        let s = section(
            "otlp_endpoint = \"https://otel.example.com\"\ntimeout = \"3s\"\n\
             headers = { \"X-Api-Key\" = \"k\" }\n",
        )
        .unwrap();
        let c = s
            .resolve(&env(&[
                (ENV_ENDPOINT, "http://other:4318"),
                (ENV_HEADERS, "a=b"),
                (ENV_TIMEOUT, "100"),
            ]))
            .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("https://otel.example.com"));
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers[0].0, "x-api-key");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_never_show_a_header_value() {
        assert!(section("otlp_endpont = \"http://x\"").is_err());
        let bad = |text: &str, vars: &[(&str, &str)]| {
            section(text)
                .unwrap()
                .resolve(&env(vars))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("otlp_endpoint = \"grpc://x:4317\"", &[]).contains("telemetry.otlp_endpoint"));
        assert!(bad("timeout = \"0s\"", &[]).contains("telemetry.timeout"));
        assert!(bad("", &[(ENV_TIMEOUT, "soon")]).contains("OTEL_EXPORTER_OTLP_TIMEOUT"));
        let e = bad("", &[(ENV_HEADERS, "authorization:supersecret")]);
        assert!(e.contains("OTEL_EXPORTER_OTLP_HEADERS") && !e.contains("supersecret"));
        let e = bad("headers = { \"bad name\" = \"supersecret\" }", &[]);
        assert!(!e.contains("supersecret"));
        let c = section("headers = { authorization = \"supersecret\" }")
            .unwrap()
            .resolve(&[])
            .unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    #[test]
    fn the_sdk_switch_turns_everything_off() {
        let c = section("otlp_endpoint = \"http://x:4318\"")
            .unwrap()
            .resolve(&env(&[(ENV_SDK_DISABLED, "true")]))
            .unwrap();
        assert!(!c.enabled());
    }
}
