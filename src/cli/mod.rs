//! The `cowork-sync` command line (design §2): argument parsing, logging setup and
//! dispatch. Commands that act on a running daemon go through its admin API
//! ([`client`]); `serve`, `sim`, `token mint`, `rules validate`, `check-config` and
//! `audit verify --file` work locally.
//!
//! Exit codes: 0 ok, 1 failure, 2 usage or invalid input. Errors go to stderr as one
//! readable sentence.

// `println!`/`eprintln!` panic on a closed stream (exit 101): output goes through
// `outln!`/`errln!`, which end quietly instead.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
mod commands;
mod render;
pub mod status;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Writes to stdout; a closed pipe (`cowork-sync plan | head`) ends the program
/// quietly instead of panicking.
pub fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Writes to stderr, ignoring failure: a closed or full stderr must not turn an
/// answer into a panic (exit 101).
pub fn complain(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.flush());
}

/// `eprintln!` through [`complain`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::complain(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `println!` through [`say`].
macro_rules! outln {
    () => { $crate::cli::say(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::say(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` through [`say`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::say(format_args!($($arg)*)) };
}

pub(crate) use {errln, out, outln};

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// 1 (failure) or 2 (usage or invalid input).
    pub code: u8,
    /// One readable sentence (or several lines for validation reports).
    pub message: String,
    /// The daemon's HTTP status, when the failure is its answer.
    pub http_status: Option<u16>,
}

impl Failure {
    /// Exit 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
            http_status: None,
        }
    }

    /// Exit 2.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
            http_status: None,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::failed(format!("{e:#}"))
    }
}

/// Where a daemon-facing command finds the daemon.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The daemon's base URL.
    #[arg(long, env = "COWORK_SYNC_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin-scope bearer token.
    #[arg(long, env = "COWORK_SYNC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Parser)]
#[command(
    name = "cowork-sync",
    version,
    about = "SCIM 2.0 identity sync daemon for Claude Cowork"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        /// Configuration file (TOML); defaults apply without one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Start even though the database's audit head is behind the checkpoint in the
        /// data directory (a restored or damaged database); the acceptance is audited.
        #[arg(long)]
        accept_rollback: bool,
    },
    /// Bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the Cowork admin API simulator as its own server.
    Sim {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// Where the simulator keeps its state.
        #[arg(long, default_value = "./sim-data")]
        data_dir: PathBuf,
        /// Require this API key (otherwise any non-empty x-api-key is accepted).
        #[arg(long)]
        api_key_file: Option<PathBuf>,
        /// Turn each invite into a member at once.
        #[arg(long)]
        accept_invites: bool,
        /// Requests per minute before 429 (0 = no limit).
        #[arg(long, default_value_t = 100)]
        rpm: u32,
        /// Org-owned plugins to add (comma-separated names); the Plugins API lists them
        /// with their ids.
        #[arg(long, value_delimiter = ',')]
        plugins: Vec<String>,
    },
    /// The rule table.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show what a full reconcile would change now; nothing is applied.
    Plan {
        /// One JSON object with an `actions` array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run one full reconcile now.
    Reconcile {
        /// Plan only.
        #[arg(long)]
        dry_run: bool,
        /// Apply even a plan the safety valve refuses.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The pipeline at a glance: directory, rules, outbox, runs, held removals,
    /// drift, downstream and telemetry health.
    Status {
        /// Print the daemon's status object as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// A user's effective access and the rules and groups that gave it.
    Explain {
        /// The user's id or userName.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Removals the safety valve holds: id, target, age and reason.
    Held {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Apply removals the safety valve holds (audited with your token's subject).
    Approve {
        /// Every removal held now.
        #[arg(long)]
        all: bool,
        /// The ids to approve (`h_…`, from `cowork-sync held`).
        ids: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Exit 0 when the daemon answers /healthz (for container health checks).
    Healthcheck {
        /// The daemon's base URL (default: from the config's listen address).
        #[arg(long)]
        url: Option<String>,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Online checks before going live (config, data dir, the downstream key and its
    /// scopes, clock skew); exit 1 when one fails.
    Doctor {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Adoption and spend per downstream group, beside the rules that fill it.
    Insights {
        #[command(subcommand)]
        command: InsightsCommand,
    },
    /// Validate a configuration and exit.
    CheckConfig {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum InsightsCommand {
    /// Members, active users (1/7/30 days), share with a Cowork session, sessions per
    /// active user, and the inactive seats, per group.
    Adoption {
        /// A seat is inactive after this many days without activity (1 to 90).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=90))]
        days: u32,
        /// Print JSON (money in minor units beside its display).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Month-to-date cost per group and the spend advisor's suggested per-member limit,
    /// with every input it used.
    Spend {
        /// Print JSON (money in minor units beside its display).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a bearer JWT signed with the configured key.
    Mint {
        /// `scim` or `admin`.
        #[arg(long, value_parser = ["scim", "admin"])]
        scope: String,
        /// Who the token is for (recorded as the actor in the audit trail).
        #[arg(long)]
        subject: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        ttl: u32,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Tokens the daemon has issued or seen: jti, scope, subject, issued, expires,
    /// last used, revoked (never the token itself).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Replace the signing key with a new one, keeping the previous key accepted until
    /// a deadline (then reload the daemon with SIGHUP, or restart it).
    RotateKey {
        /// Accept tokens signed by the previous key until this time (RFC 3339).
        #[arg(long, conflicts_with = "keep_previous")]
        keep_previous_until: Option<String>,
        /// Accept tokens signed by the previous key for this many days (default 7; 0
        /// drops it: its tokens stop at the daemon's reload).
        #[arg(long)]
        keep_previous: Option<u32>,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke a token by its jti (from `token list`): refused from then on.
    Revoke {
        /// The token's jti.
        jti: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Check a rule file offline.
    Validate {
        /// The rule file.
        file: PathBuf,
    },
    /// Apply a rule file through the daemon.
    Apply {
        /// The rule file.
        file: PathBuf,
        /// Show what would change; apply nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the current rule file.
    Export {
        #[command(flatten)]
        remote: Remote,
    },
    /// List the rules and the versions of the table.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain (the daemon's, or an export file's).
    Verify {
        /// An export (JSON lines) to check offline.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print entries as JSON lines.
    Export {
        /// Only entries at or after this time: a date (2026-12-01, the start of that
        /// day UTC) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only entries after this sequence number (resume exactly where the last
        /// export ended).
        #[arg(long)]
        after: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Parses arguments and runs; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            errln!("cowork-sync: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
