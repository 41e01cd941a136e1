//! cowork-sync: a SCIM 2.0 identity sync daemon for Claude Cowork.
//!
//! Okta and Entra ID push Users and Groups to the SCIM service provider ([`http`],
//! [`scim`]); the directory keeps them durably in sled ([`store`], [`directory`]); a
//! rule table ([`rules`]) maps them onto Cowork groups, custom roles, spend limits and
//! plugins; the planner and executor ([`reconcile`]) push the result to the Cowork
//! admin API ([`cowork`]), or to the bundled simulator ([`sim`]); every change lands in a hash-chained audit trail ([`audit`]). Traces, metrics and
//! the audit trail go to an OpenTelemetry collector when one is configured ([`telemetry`]). Operators use the
//! CLI ([`cli`]) and the console under `/ui/` ([`ui`]).

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cowork;
pub mod directory;
pub mod doctor;
pub mod http;
pub mod insights;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod ratelimit;
pub mod reconcile;
pub mod rules;
pub mod ruleset;
pub mod scim;
pub mod sim;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod ui;
