//! What each subcommand does.

use std::path::Path;

use anyhow::Context;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use super::{AuditCommand, Command, Failure, RulesCommand, TokenCommand};
use crate::auth::{load_key, Minter, Scope};
use crate::clock;
use crate::config::{Config, LogFormat};

fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    Config::load(path, std::env::vars()).map_err(|e| Failure::invalid(e.to_string()))
}

/// Sets up logging: the config's level (or `RUST_LOG`), text or JSON lines, to stderr.
fn init_logging(level: &str, format: LogFormat) {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let targets: Targets = level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(targets);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    let _ = result;
}

pub(super) fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve { config } => {
            let config = load_config(config.as_deref())?;
            init_logging(&config.log_level, config.log_format);
            actix_web::rt::System::new()
                .block_on(crate::app::serve(config, clock::system()))
                .map_err(Failure::from)
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
            let scope = Scope::parse(&scope)
                .ok_or_else(|| Failure::invalid("--scope must be scim or admin"))?;
            let key = load_key(&config.auth.signing_key_file).map_err(|e| {
                Failure::failed(format!(
                    "{e}; start the daemon once to create the key, or set auth.signing_key_file"
                ))
            })?;
            let subject = subject.unwrap_or_else(|| match scope {
                Scope::Scim => "idp".into(),
                Scope::Admin => "operator".into(),
            });
            if ttl == 0 {
                return Err(Failure::invalid("--ttl must be at least 1 day"));
            }
            let token = Minter::new(&key, &config.auth.issuer, &config.auth.audience)
                .mint(&subject, scope, ttl, clock::system().as_ref())
                .map_err(|e| Failure::failed(e.to_string()))?;
            println!("{token}");
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = load_config(config.as_deref())?;
            println!(
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
            super::client::block_on(async move {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(5))
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
        Command::Sim { .. } => Err(Failure::failed(
            "the simulator is not built into this binary yet",
        )),
        Command::Rules { command } => match command {
            RulesCommand::Validate { .. }
            | RulesCommand::Apply { .. }
            | RulesCommand::Export { .. }
            | RulesCommand::List { .. } => Err(Failure::failed("rules are not available yet")),
        },
        Command::Plan { .. } | Command::Reconcile { .. } | Command::Explain { .. } => {
            Err(Failure::failed("reconciliation is not available yet"))
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify { .. } | AuditCommand::Export { .. } => {
                Err(Failure::failed("audit commands are not available yet"))
            }
        },
    }
}
