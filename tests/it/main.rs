//! One integration test binary: the HTTP surface in process (through [`support::TestApp`]),
//! IdP request replays, and one black-box test of the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_api;
mod cli;
mod idp_replay;
mod scim_http;
mod smoke;
#[allow(dead_code)] // helpers shared by the test modules; not every module uses every one
mod support;
mod tls;
