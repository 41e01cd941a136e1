//! The Cowork admin API simulator: tier A (Anthropic's Admin API shapes, ids,
//! pagination, errors) and tier B (our extensions), with the product's rules, rate
//! limits with `retry-after`, idempotency keys, fault injection and persistence.
//! Operators use it to try rules safely; tests and benches use it in-process.
//!
//! - `cowork-sync sim` calls [`run`]; the daemon with `cowork.base_url = "sim"` and
//!   tests call [`start`] and get a [`SimHandle`] (`base_url()`, `state()`, `stop()`).
//! - [`SimApi`] is the same model behind [`CoworkApi`](crate::cowork::CoworkApi)
//!   without HTTP: an in-memory fake for executor tests.
//!
//! # Seed (first start, or `POST /_sim/reset`)
//! One Enterprise organization "Example Corp (simulated)", provisioning mode `manual`,
//! billing currency USD, usage credits on; Cowork, Claude Code, chat, web search, code
//! execution and skills on (org-wide skill sharing off, Computer Use unavailable);
//! connectors `mcpsrv_github`, `mcpsrv_jira`, `mcpsrv_slack` (enabled, with a few
//! tools each); plugins `finance-close` and `brand-kit` (org preference `available`).
//! One member, `owner@example.com`, the primary owner; one SCIM group "All Employees
//! (SCIM)"; two roles made "in the console" (no `external_id`): "Chat only" and "All
//! GA features", and the built-in roles "Owner" and "User" (`source.type:
//! "built_in"`, listed but never writable). `SimOptions::plugins` (`sim --plugins
//! NAME,...`) adds org-owned plugins of those names, at start and on reset.
//!
//! # Today's Admin API (reference §1.10)
//! - The beta Plugins API (`anthropic-beta: ce-plugins-2026-09-01`; 404 without it):
//!   `GET /plugins`, `GET /plugins/{id}`, `GET|POST|DELETE
//!   /plugins/{id}/installation_settings[/{organization|rbac_group_…}]`, `GET
//!   /plugin_marketplaces`; `limit` at most 100; its own limits (300 reads and 60
//!   writes a minute at the default `rpm`); a repeated DELETE is 404; a write that
//!   overlaps another write to the same plugin answers 503 with `x-should-retry: true`.
//!   Plugin settings and the tier-B plugin policies are one model.
//! - Spend-limit reads of every scope: `GET /spend_limits` with `anthropic-beta:
//!   spend-limit-reads-2026-09-26` and `scope_type[]`, rows grouped by scope (tier B
//!   answers the same list without the header).
//! - Renamed fields, both names sent: groups `role_ids` beside `roles`, members
//!   `rbac_group_id` beside `group_id`, roles `display_name` beside `name`, plus
//!   `source`.
//!
//! # Test hooks (not part of the Anthropic API; they need the API key too)
//! - `GET /_sim/state`: everything (snapshot, metrics, faults) as JSON.
//! - `PUT /_sim/faults` `{error_rate, rate_limit_rate, latency_ms, drop_rate, seed?}`
//!   (and `GET`): errors answer 500/529 before processing; rate limits answer 429 with
//!   `retry-after: 1`; drops process the request and then cut the answer off.
//! - `POST /_sim/users` `{email, name?, role?, seat_tier?}` or an array of them: people
//!   who signed up (a pending invite for the email is accepted).
//! - `POST /_sim/groups` `{name, source_type?, user_ids?}`: a group made outside the
//!   API (a SCIM group by default).
//! - `PUT /_sim/org` `{name?, plan?, provisioning_mode?, settings?: {...}}`.
//! - `POST /_sim/usage` `{records: [{email, date, product?, sessions?, cost_minor?,
//!   cost_lag_minutes?}]}`: usage the Analytics API and cost reports are computed
//!   from ([`analytics`]).
//! - `GET /_sim/metrics`; `POST /_sim/reset`.
//!
//! # In-process use
//! [`start`] binds an actix-web server on the address given (port 0 for an ephemeral
//! port) and spawns it on the current tokio runtime; its workers run on their own
//! threads, so it works under `#[actix_web::main]`, `#[tokio::main]` and plain
//! `#[tokio::test]` (either flavour, paused time included). Call
//! [`SimHandle::stop`] to shut it down and write the final snapshot.
//!
//! # One simulator per data directory
//! With a data directory the simulator holds an exclusive lock on `cowork-sim.lock` in
//! it until it has written its last snapshot; a second simulator on the same directory
//! refuses to start ([`SimError::Locked`]) instead of overwriting the first one's state
//! when it exits.
//!
//! Errors: [`ApiError`] is an answer in the Admin API's envelope; [`SimError`] is why
//! the simulator could not start, persist or stop (both in `error`).
//!
//! Imports `crate::clock` and the wire types of `crate::cowork`; nothing imports it but
//! `app`, `cli` and tests (`src/cowork` never imports `src/sim`).

mod access;
pub mod analytics;
pub mod error;
pub mod fake;
pub mod faults;
mod http;
pub mod page;
pub mod persist;
pub mod state;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;

pub use error::{ApiError, SimError};
pub use fake::SimApi;
pub use faults::FaultConfig;
pub use state::{NewMember, NewSimGroup, SimState, Snapshot};

use crate::clock::{self, SharedClock};
use faults::{Faults, Throttle};
use persist::{DirLock, Persister};

/// How to run the simulator.
#[derive(Clone)]
pub struct SimOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where the snapshot lives; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// A file holding the one accepted API key; without it (and without `api_key`)
    /// any non-empty key is accepted.
    pub api_key_file: Option<PathBuf>,
    /// The accepted API key, given directly (tests).
    pub api_key: Option<String>,
    /// Turn each invite into a member at once.
    pub accept_invites: bool,
    /// Org-owned plugins to add (by name) if missing, at start and on reset
    /// (`sim --plugins`); the Plugins API lists them with their ids.
    pub plugins: Vec<String>,
    /// Requests a minute for the admin endpoints (default 100; 0 = no limit). The
    /// spend endpoints get 60 % of it and invite creation 12× it an hour, as
    /// documented (60/min and 1,200/h at 100).
    pub rpm: u32,
    /// Overrides the spend endpoints' limit.
    pub spend_rpm: Option<u32>,
    /// Offer the extension tier (tier B). Off, the simulator behaves like the real
    /// Admin API: extension endpoints answer 404, only user spend limits are
    /// writable, and `Idempotency-Key` is ignored (a repeated request applies again).
    pub extended: bool,
    /// Every third page of a cursor list is short while `has_more` stays true.
    pub short_pages: bool,
    /// Seed of the fault generator.
    pub fault_seed: u64,
    /// actix-web worker threads.
    pub workers: usize,
    /// Largest interval between snapshot writes.
    pub snapshot_interval: Duration,
    /// The simulator's clock (timestamps, rate-limit refill, idempotency expiry).
    pub clock: SharedClock,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            api_key_file: None,
            api_key: None,
            accept_invites: false,
            plugins: Vec::new(),
            rpm: 100,
            spend_rpm: None,
            extended: true,
            short_pages: true,
            fault_seed: 0x00C0_FFEE,
            workers: 2,
            snapshot_interval: Duration::from_millis(500),
            clock: clock::system(),
        }
    }
}

impl SimOptions {
    /// In-memory, ephemeral port, no rate limit, no page quirks: for tests.
    pub fn for_tests() -> Self {
        Self {
            rpm: 0,
            short_pages: false,
            ..Self::default()
        }
    }
}

impl fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOptions")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("api_key_file", &self.api_key_file)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("accept_invites", &self.accept_invites)
            .field("plugins", &self.plugins)
            .field("rpm", &self.rpm)
            .field("spend_rpm", &self.spend_rpm)
            .field("extended", &self.extended)
            .field("short_pages", &self.short_pages)
            .field("fault_seed", &self.fault_seed)
            .field("workers", &self.workers)
            .field("snapshot_interval", &self.snapshot_interval)
            .finish_non_exhaustive()
    }
}

/// Counters of what the simulator received.
#[derive(Debug, Default)]
pub struct SimMetrics {
    reads: AtomicU64,
    writes: AtomicU64,
    writes_applied: AtomicU64,
    writes_rejected: AtomicU64,
    replays: AtomicU64,
    rate_limited: AtomicU64,
    injected_errors: AtomicU64,
    injected_rate_limits: AtomicU64,
    dropped: AtomicU64,
}

/// A copy of [`SimMetrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// API reads received (after authentication).
    pub reads: u64,
    /// API writes received (after authentication), each attempt counted.
    pub writes: u64,
    /// Writes that changed state or answered 2xx (not replays).
    pub writes_applied: u64,
    /// Writes refused with a 4xx by the product rules.
    pub writes_rejected: u64,
    /// Writes answered from the idempotency store.
    pub replays: u64,
    /// 429s from the rate limiter.
    pub rate_limited: u64,
    /// Injected 500/529s.
    pub injected_errors: u64,
    /// Injected 429s.
    pub injected_rate_limits: u64,
    /// Answers cut off after processing.
    pub dropped: u64,
}

impl SimMetrics {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            reads: get(&self.reads),
            writes: get(&self.writes),
            writes_applied: get(&self.writes_applied),
            writes_rejected: get(&self.writes_rejected),
            replays: get(&self.replays),
            rate_limited: get(&self.rate_limited),
            injected_errors: get(&self.injected_errors),
            injected_rate_limits: get(&self.injected_rate_limits),
            dropped: get(&self.dropped),
        }
    }

    fn reset(&self) {
        for c in [
            &self.reads,
            &self.writes,
            &self.writes_applied,
            &self.writes_rejected,
            &self.replays,
            &self.rate_limited,
            &self.injected_errors,
            &self.injected_rate_limits,
            &self.dropped,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// The running simulator's shared core: model, faults, limits, metrics.
pub struct Sim {
    state: Mutex<SimState>,
    faults: Mutex<Faults>,
    throttle: Mutex<Throttle>,
    metrics: SimMetrics,
    clock: SharedClock,
    api_key: Option<String>,
    accept_invites: bool,
    extended: bool,
    short_pages: bool,
    rpm: u32,
    spend_rpm: Option<u32>,
    fault_seed: u64,
    request_seq: AtomicU64,
    persister: Option<Arc<Persister>>,
    plugins: Vec<String>,
    /// Plugins with a write in progress (the Plugins API's 503 to concurrent writes).
    plugin_writes: Mutex<std::collections::HashSet<String>>,
    /// Held until [`SimHandle::stop`] has written the last snapshot (or the core is
    /// dropped): one simulator per data directory.
    dir_lock: Mutex<Option<DirLock>>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("extended", &self.extended)
            .field("rpm", &self.rpm)
            .field("metrics", &self.metrics.snapshot())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A simulator core from options (loads the snapshot when there is one; does not
    /// listen). Reads the key file.
    pub fn new(options: &SimOptions) -> Result<Self, SimError> {
        let api_key = match (&options.api_key, &options.api_key_file) {
            (Some(k), _) => Some(k.trim().to_owned()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| SimError::KeyFile {
                    path: path.clone(),
                    source,
                })?;
                Some(text.trim().to_owned())
            }
            (None, None) => None,
        };
        if api_key.as_deref() == Some("") {
            return Err(SimError::EmptyKey);
        }
        let now = options.clock.now();
        let (state, persister, lock) = match &options.data_dir {
            Some(dir) => {
                let lock = DirLock::acquire(dir)?;
                let state = match persist::load(dir)? {
                    Some(snap) => SimState::from_snapshot(snap),
                    None => SimState::seeded(now),
                };
                let persister = Persister::new(dir.clone(), options.snapshot_interval);
                persister.mark_dirty();
                (state, Some(persister), Some(lock))
            }
            None => (SimState::seeded(now), None, None),
        };
        let mut state = state;
        state.seed_plugins(&options.plugins);
        Ok(Self {
            state: Mutex::new(state),
            faults: Mutex::new(Faults::new(options.fault_seed)),
            throttle: Mutex::new(Throttle::new(options.rpm, options.spend_rpm)),
            metrics: SimMetrics::default(),
            clock: options.clock.clone(),
            api_key,
            accept_invites: options.accept_invites,
            extended: options.extended,
            short_pages: options.short_pages,
            rpm: options.rpm,
            spend_rpm: options.spend_rpm,
            fault_seed: options.fault_seed,
            request_seq: AtomicU64::new(1),
            persister,
            plugins: options.plugins.clone(),
            plugin_writes: Mutex::new(std::collections::HashSet::new()),
            dir_lock: Mutex::new(lock),
        })
    }

    /// Locks the model. Do not hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock()
    }

    /// What was received so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Sets fault injection.
    pub fn set_faults(&self, config: FaultConfig) {
        self.faults.lock().set(config);
    }

    /// The current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        self.faults.lock().config().clone()
    }

    /// The simulator's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Whether the extension tier is on.
    pub fn extended(&self) -> bool {
        self.extended
    }

    /// Back to the seed: model, stored answers, faults, limits and metrics.
    pub fn reset(&self) {
        let mut state = SimState::seeded(self.clock.now());
        state.seed_plugins(&self.plugins);
        *self.state.lock() = state;
        *self.faults.lock() = Faults::new(self.fault_seed);
        *self.throttle.lock() = Throttle::new(self.rpm, self.spend_rpm);
        self.metrics.reset();
        self.changed();
    }

    /// Notes a state change for the snapshot writer.
    fn changed(&self) {
        if let Some(p) = &self.persister {
            p.mark_dirty();
        }
    }

    fn encode_snapshot(&self) -> Result<Vec<u8>, SimError> {
        let snapshot = self.state.lock().snapshot();
        serde_json::to_vec(&snapshot).map_err(SimError::SnapshotEncode)
    }

    fn next_request_id(&self) -> String {
        page::make_id("req", self.request_seq.fetch_add(1, Ordering::Relaxed))
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    server: actix_web::dev::ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    persist_task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the simulator listens and one command that lists its groups, as
    /// `serve` and `sim` print it on start.
    pub fn announcement(&self) -> String {
        format!(
            "The Cowork simulator listens on {base} (it accepts any non-empty x-api-key{}).\n\
             List its groups: curl -s -H 'x-api-key: local' {base}/v1/organizations/rbac_groups\n",
            if self.sim.api_key.is_some() {
                "; this one requires the key of its --api-key-file"
            } else {
                ""
            },
            base = self.base_url()
        )
    }

    /// The shared core (model, metrics, faults).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Locks the model. Do not hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.sim.state()
    }

    /// What was received so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.sim.metrics()
    }

    /// Stops the server (in-flight requests finish) and writes the final snapshot.
    pub async fn stop(mut self) -> Result<(), SimError> {
        self.server.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await
                .map_err(|e| SimError::Server(e.to_string()))?
                .map_err(|e| SimError::Server(e.to_string()))?;
        }
        if let Some(p) = &self.sim.persister {
            p.stop();
            if let Some(task) = self.persist_task.take() {
                let _ = task.await;
            }
            p.mark_dirty();
            let sim = self.sim.clone();
            p.flush(move || sim.encode_snapshot()).await?;
        }
        // The last write is done: another simulator may take the directory now, even
        // while a worker thread still holds the core.
        drop(self.sim.dir_lock.lock().take());
        Ok(())
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            // Sends the stop command now; nobody waits for it.
            drop(self.server.stop(false));
            if let Some(p) = &self.sim.persister {
                p.stop();
            }
        }
    }
}

/// Starts the simulator on the current tokio runtime and returns once it listens.
pub async fn start(options: SimOptions) -> Result<SimHandle, SimError> {
    let sim = Arc::new(Sim::new(&options)?);
    let bind = |source| SimError::Bind {
        addr: options.listen,
        source,
    };
    let listener = TcpListener::bind(options.listen).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let data = web::Data::from(sim.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(http::MAX_BODY))
            .default_service(web::to(http::dispatch))
    })
    .workers(options.workers.max(1))
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .map_err(bind)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let persist_task = sim.persister.clone().map(|p| {
        let core = sim.clone();
        tokio::spawn(p.run(move || core.encode_snapshot()))
    });
    tracing::info!(addr = %addr, extended = options.extended, rpm = options.rpm, "cowork simulator listening");
    Ok(SimHandle {
        addr,
        sim,
        server: handle,
        task: Some(task),
        persist_task,
    })
}

/// Runs the simulator until Ctrl-C or SIGTERM, then stops it cleanly
/// (`cowork-sync sim`).
pub async fn run(options: SimOptions) -> Result<(), SimError> {
    let handle = start(options).await?;
    tracing::info!(base_url = %handle.base_url(), "cowork simulator ready");
    // A closed stdout must not stop the simulator.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), handle.announcement().as_bytes());
    wait_for_shutdown().await;
    tracing::info!("cowork simulator stopping");
    handle.stop().await
}

#[cfg(unix)]
async fn wait_for_shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
