//! The Cowork admin API client against the in-process simulator (every resource,
//! both pagination styles, the product rules, idempotency, faults) and against a
//! scripted local HTTP mock (headers, retries, 429, timeouts, odd pages).
//!
//! Tests that retry run with paused tokio time and a client without reqwest timeouts
//! (see `cowork::client`), so backoff and `retry-after` never really wait.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use cowork_sync::clock::ManualClock;
use cowork_sync::cowork::*;
use cowork_sync::sim::{self, FaultConfig, NewMember, SimHandle, SimOptions};
use parking_lot::Mutex;
use serde_json::{json, Value};

pub(crate) const KEY: &str = "sk-ant-api01-test-key";

fn member(email: &str) -> NewMember {
    NewMember {
        email: email.into(),
        name: None,
        role: None,
        seat_tier: None,
    }
}

pub(crate) async fn start_sim(options: SimOptions) -> SimHandle {
    sim::start(SimOptions {
        api_key: Some(KEY.into()),
        ..options
    })
    .await
    .unwrap()
}

pub(crate) fn client_for(url: &str, mode: Mode) -> HttpCoworkClient {
    HttpCoworkClient::new(ClientConfig::new(url, KEY).with_mode(mode).without_limits()).unwrap()
}

fn key(parts: &[&str]) -> IdempotencyKey {
    IdempotencyKey::derive(parts)
}

fn add_users(h: &SimHandle, n: usize, prefix: &str) -> Vec<String> {
    let mut state = h.state();
    let now = h.sim().clock().now();
    (0..n)
        .map(|i| {
            state
                .sim_add_member(&member(&format!("{prefix}{i}@example.com")), now)
                .unwrap()
                .id
        })
        .collect()
}

fn scim_group_id(h: &SimHandle) -> String {
    h.state()
        .groups()
        .iter()
        .find(|g| g.is_scim())
        .unwrap()
        .id
        .clone()
}

mod mock_server;
mod mock_spend_reads;
mod mock_transport;
mod sim_resources;
mod sim_server;

pub(crate) use mock_server::{error_json, group_json, mock, user_json, Mock, Reply};
