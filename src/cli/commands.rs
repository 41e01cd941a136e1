//! What each subcommand does.

use std::path::Path;

use anyhow::Context;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use reqwest::Method;
use serde_json::Value;

use super::client::{block_on, AdminClient, RequestBody};
use super::{errln, out, outln};
use super::{AuditCommand, Command, Failure, InsightsCommand, Remote, RulesCommand, TokenCommand};
use crate::clock;
use crate::config::{Config, LogFormat};

fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    Config::load(path, std::env::vars()).map_err(|e| Failure::invalid(e.to_string()))
}

/// Sets up logging: the config's level (or `RUST_LOG`), text or JSON lines, to stderr;
/// with `telemetry`, spans go to its OTLP collector as well.
fn init_logging(
    level: &str,
    format: LogFormat,
    telemetry: Option<&std::sync::Arc<crate::telemetry::Telemetry>>,
) {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let targets: Targets = level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    // The level filters the log output only: the OpenTelemetry layer has its own filter,
    // so `level = "warn"` quiets the log without turning traces off.
    let registry = tracing_subscriber::registry()
        .with(crate::http::limits::QuietParseErrors)
        .with(telemetry.map(|t| t.layer()));
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(targets),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr)
                    .with_filter(targets),
            )
            .try_init(),
    };
    let _ = result;
}

pub(super) fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve {
            config,
            accept_rollback,
        } => {
            let config = load_config(config.as_deref())?;
            let telemetry = crate::telemetry::Telemetry::start(&config.telemetry)
                .map_err(|e| Failure::invalid(e.to_string()))?;
            if let Some(t) = &telemetry {
                t.install();
            }
            init_logging(&config.log_level, config.log_format, telemetry.as_ref());
            let served = actix_web::rt::System::new()
                .block_on(crate::app::serve_with(
                    config,
                    clock::system(),
                    crate::app::ServeOptions { accept_rollback },
                ))
                .map_err(Failure::from);
            if let Some(t) = telemetry {
                t.shutdown();
            }
            served
        }
        Command::Token {
            command:
                TokenCommand::Mint {
                    scope,
                    subject,
                    ttl,
                    config,
                },
        } => {
            let config = load_config(config.as_deref())?;
            super::tokens::mint(&config, &scope, subject, ttl)
        }
        Command::Token {
            command:
                TokenCommand::RotateKey {
                    keep_previous_until,
                    keep_previous,
                    config,
                },
        } => {
            let config = load_config(config.as_deref())?;
            super::tokens::rotate_key(&config, keep_previous_until.as_deref(), keep_previous)
        }
        Command::Token {
            command: TokenCommand::List { json, remote },
        } => remote_call(&remote, |c| async move {
            let body = c.call(Method::GET, "/admin/v1/tokens", None).await?;
            if json {
                print_report(&body, true);
            } else {
                outln!("{}", super::tokens::render_list(&body));
            }
            Ok(())
        }),
        Command::Token {
            command: TokenCommand::Revoke { jti, json, remote },
        } => {
            let jti = jti.trim().to_string();
            if jti.is_empty() {
                return Err(Failure::invalid(
                    "name the jti to revoke (from `cowork-sync token list`)",
                ));
            }
            remote_call(&remote, |c| async move {
                let path = format!("/admin/v1/tokens/{}", encode_segment(&jti));
                let body = c.call(Method::DELETE, &path, None).await?;
                if json {
                    print_report(&body, true);
                } else {
                    outln!("{}", super::tokens::render_revoke(&body));
                }
                Ok(())
            })
        }
        Command::Doctor { config } => {
            let config = load_config(config.as_deref())?;
            let now = clock::system().now();
            let checks = super::client::block_on(crate::doctor::run(&config, now))?;
            for c in &checks {
                outln!("{}", c.render());
            }
            if crate::doctor::failed(&checks) {
                Err(Failure::failed("doctor: at least one check failed"))
            } else {
                Ok(())
            }
        }
        Command::CheckConfig { config } => {
            let config = load_config(config.as_deref())?;
            outln!(
                "configuration is valid: listen {}, data in {}, downstream {}",
                config.server.listen,
                config.storage.data_dir.display(),
                config
                    .cowork
                    .base_url
                    .as_deref()
                    .unwrap_or("the bundled simulator")
            );
            Ok(())
        }
        Command::Healthcheck { url, config } => {
            let url = match url {
                Some(u) => u,
                None => {
                    let config = load_config(config.as_deref())?;
                    let scheme = if config.server.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    let addr = config.server.listen;
                    let host = if addr.ip().is_unspecified() {
                        format!("127.0.0.1:{}", addr.port())
                    } else {
                        addr.to_string()
                    };
                    format!("{scheme}://{host}")
                }
            };
            let target = format!("{}/healthz", url.trim_end_matches('/'));
            // The probe sends no credentials and reads only /healthz. On loopback (a
            // container probing itself) it accepts the daemon's certificate as is, so a
            // self-signed certificate does not make a healthy daemon look dead.
            let loopback = reqwest::Url::parse(&target)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .is_some_and(|h| {
                    h == "localhost"
                        || h.trim_matches(|c| c == '[' || c == ']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
            block_on(async move {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(5))
                    .danger_accept_invalid_certs(loopback)
                    .build()
                    .context("building an HTTP client")?;
                let response = client
                    .get(&target)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {target}"))?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "{target} answered {}",
                    response.status()
                );
                Ok(())
            })?
            .map_err(Failure::from)
        }
        Command::Sim {
            listen,
            data_dir,
            api_key_file,
            accept_invites,
            rpm,
            plugins,
        } => {
            let listen: std::net::SocketAddr = listen.parse().map_err(|e| {
                Failure::invalid(format!("--listen '{listen}' is not an address:port ({e})"))
            })?;
            init_logging("info", LogFormat::Text, None);
            let options = crate::sim::SimOptions {
                listen,
                data_dir: Some(data_dir),
                api_key_file,
                accept_invites,
                rpm,
                plugins,
                ..crate::sim::SimOptions::default()
            };
            actix_web::rt::System::new()
                .block_on(crate::sim::run(options))
                .map_err(|e| Failure::from(anyhow::Error::from(e)))
        }
        Command::Rules { command } => rules(command),
        Command::Plan { json, remote } => remote_call(&remote, |c| async move {
            let report = c.call_long(Method::GET, "/admin/v1/plan", None).await?;
            print_report(&report, json);
            Ok(())
        }),
        Command::Reconcile {
            dry_run,
            force,
            remote,
        } => remote_call(&remote, |c| async move {
            let path = format!("/admin/v1/reconcile?dry_run={dry_run}&force={force}");
            errln!("cowork-sync: reconciling (this can take minutes at the Admin API's 100 requests a minute)...");
            let report = c.reconcile(&path).await?;
            print_report(&report, false);
            match report.get("outcome").and_then(Value::as_str) {
                Some("refused") => Err(Failure::failed(
                    "the plan was refused by the safety valve; review it with `cowork-sync plan` and rerun with --force if it is intended",
                )),
                Some("held") => {
                    errln!("cowork-sync: everything else was applied; the safety valve holds some removals: review them with `cowork-sync held`, apply them with `cowork-sync approve`");
                    Ok(())
                }
                Some("failed") => Err(Failure::failed("the reconcile run failed; see the errors above")),
                _ => Ok(()),
            }
        }),
        Command::Explain { user, json, remote } => remote_call(&remote, |c| async move {
            let path = format!("/admin/v1/users/{}/effective-access", encode_segment(&user));
            let report = c.call(Method::GET, &path, None).await?;
            print_report(&report, json);
            Ok(())
        }),
        Command::Insights {
            command: InsightsCommand::Adoption { days, json, remote },
        } => remote_call(&remote, |c| async move {
            let path = format!("/admin/v1/insights/adoption?days={days}");
            let report = c.call(Method::GET, &path, None).await?;
            print_report(&report, json);
            Ok(())
        }),
        Command::Insights {
            command: InsightsCommand::Spend { json, remote },
        } => remote_call(&remote, |c| async move {
            let report = c
                .call(Method::GET, "/admin/v1/insights/spend", None)
                .await?;
            print_report(&report, json);
            Ok(())
        }),
        Command::Held { json, remote } => remote_call(&remote, |c| async move {
            let report = c.call(Method::GET, "/admin/v1/held", None).await?;
            print_report(&report, json);
            Ok(())
        }),
        Command::Approve {
            all,
            ids,
            json,
            remote,
        } => {
            let body = match (all, ids.is_empty()) {
                (true, true) => serde_json::json!({ "all": true }),
                (false, false) => serde_json::json!({ "ids": ids }),
                (true, false) => {
                    return Err(Failure::invalid(
                        "name held removals or pass --all, not both",
                    ))
                }
                (false, true) => {
                    return Err(Failure::invalid(
                        "name the held removals to approve (ids from `cowork-sync held`), or pass --all",
                    ))
                }
            };
            remote_call(&remote, |c| async move {
                let report = c
                    .call(
                        Method::POST,
                        "/admin/v1/held/approve",
                        Some(RequestBody::Json(body)),
                    )
                    .await?;
                print_report(&report, json);
                let unknown = report
                    .get("unknown")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let failed = report.get("failed").and_then(Value::as_u64).unwrap_or(0);
                if unknown > 0 {
                    Err(Failure::invalid("some ids name no held removal"))
                } else if failed > 0 {
                    Err(Failure::failed("some approved removals failed; see above"))
                } else {
                    Ok(())
                }
            })
        }
        Command::Audit { command } => audit(command),
        Command::Status { json, remote } => remote_call(&remote, |c| async move {
            let status = c.call(Method::GET, "/admin/v1/status", None).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                out!("{}", super::status::render(&status));
            }
            Ok(())
        }),
    }
}

/// Prints an operator report: its `text` rendering, or the JSON.
fn print_report(report: &Value, as_json: bool) {
    match report.get("text").and_then(Value::as_str) {
        Some(text) if !as_json => outln!("{text}"),
        _ => outln!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        ),
    }
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Runs a future against the daemon's admin API.
fn remote_call<F, Fut>(remote: &Remote, f: F) -> Result<(), Failure>
where
    F: FnOnce(AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let client = AdminClient::new(remote)?;
    block_on(f(client))?
}

fn rules(command: RulesCommand) -> Result<(), Failure> {
    match command {
        RulesCommand::Validate { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?;
            match crate::rules::load_rule_file(&text) {
                Ok(table) => {
                    for w in table.warnings() {
                        errln!("warning: {w}");
                    }
                    outln!(
                        "{} is valid: {} rule(s), {} custom role(s), {} downstream group(s)",
                        file.display(),
                        table.rules().len(),
                        table.roles().len(),
                        table.groups().len()
                    );
                    Ok(())
                }
                Err(errors) => Err(Failure::invalid(format!(
                    "{} is invalid ({} error{}):\n{}",
                    file.display(),
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    errors
                        .iter()
                        .map(|e| format!("  {e}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ))),
            }
        }
        RulesCommand::Apply {
            file,
            dry_run,
            remote,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?;
            remote_call(&remote, |c| async move {
                let path = format!("/admin/v1/rules?dry_run={dry_run}");
                let answer = c
                    .call(Method::PUT, &path, Some(RequestBody::Text(text)))
                    .await?;
                for w in answer["warnings"].as_array().into_iter().flatten() {
                    errln!("warning: {}", super::render::warning(w));
                }
                let summary = answer["summary"].as_str().unwrap_or("");
                if dry_run {
                    outln!("dry run: the rule table would change: {summary}");
                    if let Some(text) = answer.pointer("/plan/text").and_then(Value::as_str) {
                        outln!("\n{text}");
                    }
                } else if answer["changed"].as_bool() == Some(true) {
                    outln!("applied as version {}: {summary}", answer["version"]);
                } else {
                    outln!(
                        "unchanged: version {} already has this table",
                        answer["version"]
                    );
                }
                Ok(())
            })
        }
        RulesCommand::Export { remote } => remote_call(&remote, |c| async move {
            let answer = c.call(Method::GET, "/admin/v1/rules", None).await?;
            out!("{}", answer["toml"].as_str().unwrap_or_default());
            Ok(())
        }),
        RulesCommand::List { remote } => remote_call(&remote, |c| async move {
            let versions = c
                .call(Method::GET, "/admin/v1/rules/versions", None)
                .await?;
            out!("{}", super::render::versions(&versions));
            match c.call(Method::GET, "/admin/v1/rules", None).await {
                Ok(current) => out!("\n{}", super::render::rules(&current)),
                Err(f) if f.http_status == Some(404) => {
                    outln!("\nno rule table applied yet: `cowork-sync rules apply FILE`")
                }
                Err(f) => return Err(f),
            }
            Ok(())
        }),
    }
}

fn audit(command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify {
            file: Some(file), ..
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?;
            let entries: Vec<Result<crate::audit::AuditEntry, String>> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("line {} is not an audit entry: {e}", i + 1))
                })
                .collect();
            // An export may start mid-chain: its first entry's link is the anchor.
            let start = match entries.first() {
                Some(Ok(first)) if first.seq > 1 => Some(crate::audit::ChainPoint {
                    seq: first.seq - 1,
                    hash: first.prev_hash.clone(),
                    at: None,
                }),
                _ => None,
            };
            report_verification(crate::audit::verify_chain(entries, start.as_ref(), None))
        }
        AuditCommand::Verify { file: None, remote } => remote_call(&remote, |c| async move {
            let v = c.call(Method::GET, "/admin/v1/audit/verify", None).await?;
            let verification: crate::audit::Verification = crate::audit::Verification {
                ok: v["ok"].as_bool().unwrap_or(false),
                checked: v["checked"].as_u64().unwrap_or(0),
                first_bad_seq: v["first_bad_seq"].as_u64(),
                reason: v["reason"].as_str().map(str::to_string),
                head: None,
            };
            report_verification(verification)
        }),
        AuditCommand::Export {
            since,
            after,
            remote,
        } => {
            // Sent as RFC 3339 whatever form was given, so an older daemon that
            // reads only RFC 3339 understands a plain date too.
            let since = match &since {
                Some(s) => Some(crate::audit::timestamp(
                    crate::audit::parse_since(s).ok_or_else(|| {
                        Failure::invalid(format!(
                            "--since '{s}' is neither of the accepted forms: {}",
                            crate::audit::SINCE_FORMS
                        ))
                    })?,
                )),
                None => None,
            };
            remote_call(&remote, |c| async move {
                let mut after = after.unwrap_or(0);
                loop {
                    let mut path = format!("/admin/v1/audit?after={after}&limit=10000");
                    if let Some(s) = &since {
                        path.push_str(&format!("&since={}", encode_segment(s)));
                    }
                    let page = c.call(Method::GET, &path, None).await?;
                    for e in page["entries"].as_array().into_iter().flatten() {
                        outln!("{e}");
                    }
                    match page["next_after"].as_u64() {
                        Some(next) => after = next,
                        None => break,
                    }
                }
                Ok(())
            })
        }
    }
}

fn report_verification(v: crate::audit::Verification) -> Result<(), Failure> {
    if v.ok {
        outln!("audit trail intact: {} entries verified", v.checked);
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "audit trail broken at sequence {}: {} ({} entries verified before it)",
            v.first_bad_seq.unwrap_or(0),
            v.reason.unwrap_or_default(),
            v.checked
        )))
    }
}
