//! From the parsed file and the environment to a checked [`Config`]: environment
//! overrides, secrets, schedules and every field's validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    duration_key, read_secret_file, AuditConfig, AuthConfig, Config, ConfigError, CoworkConfig,
    CoworkMode, FileConfig, InsightsConfig, LifecycleConfig, LogFormat, OnDeactivate,
    ReconcileConfig, Secret, ServerConfig, StorageConfig, UnknownAttributes, UnknownMembers, Zero,
    DEFAULT_CACHE_MB, ENV_PREFIX,
};

pub(super) fn apply_env(
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

pub(super) fn validate(file: FileConfig) -> Result<Config, ConfigError> {
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
    let pool_check = match i.pool_check.as_deref().map(str::trim) {
        Some("off") => None,
        other => {
            let schedule = other.unwrap_or("0 */15 * * * *").to_string();
            validate_schedule(&schedule).map_err(|message| ConfigError::Invalid {
                field: "insights.pool_check",
                message,
            })?;
            Some(schedule)
        }
    };
    let insights = InsightsConfig {
        pool_check,
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
