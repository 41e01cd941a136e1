//! One integration test binary: the HTTP surface in process (through [`support::TestApp`]),
//! IdP request replays, the Cowork client and the reconciler against the simulator, and
//! black-box tests of the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_api;
mod admin_reconcile;
mod cli;
mod cli_papercuts;
mod cli_remote;
mod console;
mod console_browser;
mod cowork_client;
mod doctor;
mod doctor_scopes;
mod hardening;
mod idp_replay;
mod insights_client;
mod insights_http;
mod interop;
mod offboarding;
mod plugins_api;
mod pools;
mod reconcile;
mod scim_http;
mod smoke;
#[allow(dead_code)] // helpers shared by the test modules; not every module uses every one
mod support;
mod telemetry;
mod tls;
mod tokens;
