//! Wiring: opens the store (running migrations), loads or creates the signing key,
//! builds the directory, status, downstream client and workers, and serves HTTP
//! until SIGTERM/SIGINT. On shutdown in-flight requests finish, workers stop at a
//! safe point, and sled is flushed.
//!
//! Nothing else in the crate imports this module; `main` and the tests do.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{middleware::from_fn, web, App, HttpServer};
use anyhow::Context;

use crate::audit::recorder::{AuthFailure, FailureRecorder, FailureWriter};
use crate::auth::extract::{AuthContext, FailureHook};
use crate::auth::registry::{Source, TokenRecord, TokenRegistry};
use crate::auth::{load_or_create_key, Minter, Principal, Scope, Verifier};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::config::CoworkMode;
use crate::cowork::{ClientConfig, CoworkApi, HttpCoworkClient, Mode};
use crate::directory::Directory;
use crate::http::error::ApiError;
use crate::http::middleware::{observe, RequestIdPrefix};
use crate::http::AppState;
use crate::http::{OpFuture, Operations};
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;
use crate::reconcile::{
    outbox_worker, start_scheduler, ReconcileOptions, Reconciler, RunOptions, Trigger,
};
use crate::rules::ValidRuleTable;
use crate::scim::SchemaRegistry;
use crate::sim::{SimHandle, SimOptions};
use crate::status::Status;
use crate::store::sled_store::{SledOptions, SledStore};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// The database schema version this binary writes.
pub const SCHEMA_VERSION: u64 = 3;
const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// Validity of the tokens printed on first start.
pub const BOOTSTRAP_TOKEN_DAYS: u32 = 365;

/// Brings an opened store to [`SCHEMA_VERSION`], refusing a newer one.
pub fn migrate(store: &dyn Store, clock: &dyn crate::clock::Clock) -> Result<u64, StoreError> {
    let found = match store.get(Table::Meta, SCHEMA_VERSION_KEY)? {
        Some(b) => crate::store::codec::seq_from_key(&b, Table::Meta)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        // 0 → 1: an empty database, nothing to convert. 1 → 2: the reverse index of
        // user links by downstream member. 2 → 3: see below. Each migration commits with the version it
        // reaches, in order; none runs twice.
        let links = if found >= 1 {
            crate::reconcile::ownership::store::missing_member_links(store)?
        } else {
            Vec::new()
        };
        let now = clock.now();
        // 2 → 3: users' externalId index becomes a multi-index (chunked, resumable).
        if found >= 1 {
            crate::directory::migrate::external_id_multi_index(store, now)?;
        }
        transaction::<_, StoreError>(store, |txn| {
            if !links.is_empty() {
                crate::reconcile::ownership::store::index_member_links(txn, &links)?;
                crate::audit::append(
                    txn,
                    crate::audit::AuditDraft::new("cowork-sync", "store.migrated", None).with(
                        serde_json::json!({
                            "from": found,
                            "to": SCHEMA_VERSION,
                            "member_links_indexed": links.len(),
                        }),
                    ),
                    now,
                )?;
            }
            txn.insert(
                Table::Meta,
                SCHEMA_VERSION_KEY,
                &SCHEMA_VERSION.to_be_bytes(),
            )
            .map_err(TxFail::Store)
        })?;
    }
    Ok(SCHEMA_VERSION)
}

/// Creates the data directory readable by the daemon's user only (it holds the
/// signing key and the directory).
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Opens the sled database under the configured data directory.
pub fn open_store(
    config: &Config,
    clock: &dyn crate::clock::Clock,
) -> anyhow::Result<Arc<SledStore>> {
    private_dir(&config.storage.data_dir)?;
    let store = SledStore::open(
        &config.db_dir(),
        &SledOptions {
            cache_bytes: config.storage.cache_bytes,
        },
    )
    .with_context(|| format!("opening the database in {}", config.db_dir().display()))?;
    migrate(&store, clock).context("migrating the database")?;
    Ok(Arc::new(store))
}

/// The long-lived parts of the daemon, independent of HTTP.
pub struct Core {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The schemas.
    pub registry: Arc<SchemaRegistry>,
    /// The SCIM directory.
    pub directory: Arc<Directory>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Operational status.
    pub status: Arc<Status>,
    /// The clock.
    pub clock: SharedClock,
    /// Wakes the outbox worker.
    pub changes: Arc<tokio::sync::Notify>,
    /// Records refused requests in the audit trail (rate-limited).
    pub auth_failures: FailureRecorder,
    /// Every token minted or seen, and which are revoked.
    pub tokens: Arc<TokenRegistry>,
    background: parking_lot::Mutex<Option<FailureWriter>>,
    retention_days: u32,
}

impl Core {
    /// Builds the core over an opened, migrated store.
    pub fn new(config: &Config, store: Arc<dyn Store>, clock: SharedClock) -> anyhow::Result<Self> {
        let registry = Arc::new(
            SchemaRegistry::builtin()
                .map_err(anyhow::Error::msg)
                .context("loading the embedded SCIM schemas")?,
        );
        let unknown_attributes = match config.unknown_attributes {
            crate::config::UnknownAttributes::Ignore => crate::scim::UnknownAttributes::Ignore,
            crate::config::UnknownAttributes::Reject => crate::scim::UnknownAttributes::Reject,
        };
        let directory = Arc::new(
            Directory::new(
                store.clone(),
                registry.clone(),
                clock.clone(),
                config.unknown_members,
            )
            .with_unknown_attributes(unknown_attributes),
        );
        let metrics = Arc::new(Metrics::new());
        if let Some(t) = crate::telemetry::global() {
            t.attach_metrics(&metrics);
        }
        let status = Arc::new(Status::new(
            store.clone(),
            directory.clone(),
            metrics.clone(),
            clock.clone(),
            config.reconcile.failure_threshold,
        ));
        let (auth_failures, writer) = crate::audit::recorder::channel(
            store.clone(),
            clock.clone(),
            config.audit.auth_failures_per_minute,
        );
        let tokens = Arc::new(
            TokenRegistry::load(store.clone(), clock.now())
                .context("loading the token registry")?
                .with_minted_dir(
                    crate::auth::minted::dir_in(&config.storage.data_dir),
                    clock.now(),
                ),
        );
        Ok(Self {
            store,
            registry,
            tokens,
            directory,
            metrics,
            status,
            clock,
            changes: Arc::new(tokio::sync::Notify::new()),
            auth_failures,
            background: parking_lot::Mutex::new(Some(writer)),
            retention_days: config.audit.retention_days,
        })
    }

    /// Starts the background tasks that need no downstream: the audit writer for
    /// refused requests and, with a retention set, hourly pruning. Call once, on a
    /// runtime.
    pub fn spawn_background(&self) {
        if let Some(writer) = self.background.lock().take() {
            tokio::spawn(writer.run());
        }
        if self.retention_days > 0 {
            let store = self.store.clone();
            let clock = self.clock.clone();
            let days = i64::from(self.retention_days);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    every.tick().await;
                    let store = store.clone();
                    let clock = clock.clone();
                    // In batches of 10,000 a transaction, until nothing is past retention.
                    let pruned = tokio::task::spawn_blocking(move || {
                        let now = clock.now();
                        let mut total = 0;
                        loop {
                            let n = crate::audit::prune(
                                store.as_ref(),
                                now - chrono::Duration::days(days),
                                now,
                                10_000,
                            )?;
                            total += n;
                            if n < 10_000 {
                                return Ok::<u64, crate::store::StoreError>(total);
                            }
                        }
                    })
                    .await;
                    match pruned {
                        Ok(Ok(n)) if n > 0 => {
                            tracing::info!(removed = n, "pruned audit entries past retention")
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "audit pruning failed"),
                        _ => {}
                    }
                }
            });
        }
    }

    /// The state HTTP handlers share.
    pub fn http_state(&self, config: &Config) -> AppState {
        AppState {
            directory: self.directory.clone(),
            registry: self.registry.clone(),
            status: self.status.clone(),
            public_url: config.server.public_url.clone(),
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.body_timeout,
            refusal_log: Arc::new(crate::http::refusal_log::RefusalLog::new(
                config.log_refusals_per_minute,
            )),
            unknown_attributes: Arc::new(crate::http::unknown_log::UnknownAttributeLog::new()),
            changes: self.changes.clone(),
            clock: self.clock.clone(),
            operations: None,
            insights: None,
        }
    }

    /// The auth context for the extractors.
    pub fn auth_context(&self, config: &Config, key: &[u8]) -> anyhow::Result<AuthContext> {
        // After `token rotate-key`, the replaced key is accepted until its deadline.
        let previous = crate::auth::keys::load_previous(&config.auth.signing_key_file)?;
        let verifier = Verifier::new(
            key,
            &config.auth.issuer,
            &config.auth.audience,
            config.auth.jwks_file.as_deref(),
        )?
        .with_previous(previous.as_ref());
        let metrics = self.metrics.clone();
        let recorder = self.auth_failures.clone();
        let hook: FailureHook = Arc::new(move |err, req| {
            let reason = match err {
                crate::auth::AuthError::Missing => "missing",
                crate::auth::AuthError::Invalid => "invalid",
                crate::auth::AuthError::Expired => "expired",
                crate::auth::AuthError::Revoked => "revoked",
                crate::auth::AuthError::InsufficientScope(_) => "scope",
            };
            metrics.inc(
                "cowork_sync_auth_failures_total",
                "Refused requests by reason.",
                &[("reason", reason)],
                1.0,
            );
            recorder.record(AuthFailure {
                reason,
                route: req.match_pattern().unwrap_or_else(|| "unmatched".into()),
                method: req.method().to_string(),
                peer: req.peer_addr().map(|a| a.ip().to_string()),
                forwarded_for: req
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .map(|v| v.trim().chars().take(64).collect()),
            });
        });
        Ok(AuthContext {
            verifier,
            registry: self.tokens.clone(),
            clock: self.clock.clone(),
            limiter: KeyedLimiter::new(
                config.server.rate_limit_per_second,
                config.server.rate_limit_burst,
            ),
            on_failure: Some(hook),
        })
    }
}

/// The admin API's view of the reconciler.
pub struct ReconcileOps<C: CoworkApi + 'static> {
    reconciler: Arc<Reconciler<C>>,
}

impl<C: CoworkApi + 'static> ReconcileOps<C> {
    /// The operations the admin API calls, over `reconciler`.
    pub fn shared(reconciler: Arc<Reconciler<C>>) -> Arc<dyn crate::http::Operations> {
        Arc::new(Self { reconciler })
    }
}

fn report_json<T: serde::Serialize>(
    report: &T,
    text: String,
) -> Result<serde_json::Value, ApiError> {
    let mut value = serde_json::to_value(report)
        .map_err(|e| ApiError::Internal(format!("rendering a report: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("text".into(), serde_json::Value::String(text));
    }
    Ok(value)
}

impl<C: CoworkApi + 'static> Operations for ReconcileOps<C> {
    fn plan(&self, candidate: Option<ValidRuleTable>) -> OpFuture {
        let reconciler = self.reconciler.clone();
        Box::pin(async move {
            let report = match candidate {
                Some(table) => reconciler.plan_with(&table).await?,
                None => reconciler.plan().await?,
            };
            let names = reconciler
                .user_names(crate::reconcile::user_ids(&report))
                .await?;
            let text = crate::reconcile::render_plan_named(&report, &names);
            let mut value = report_json(&report, text)?;
            crate::reconcile::add_user_names(&mut value, &report, &names);
            Ok(value)
        })
    }

    fn reconcile(&self, dry_run: bool, force: bool, actor: String) -> OpFuture {
        let reconciler = self.reconciler.clone();
        Box::pin(async move {
            let report = reconciler
                .run(RunOptions {
                    dry_run,
                    force,
                    trigger: Trigger::Manual,
                    requested_by: Some(actor),
                    ..RunOptions::default()
                })
                .await?;
            let names = reconciler
                .user_names(crate::reconcile::user_ids(&report.plan))
                .await?;
            let text = crate::reconcile::render_run_named(&report, &names);
            let mut value = report_json(&report, text)?;
            if let Some(plan) = value.get_mut("plan") {
                crate::reconcile::add_user_names(plan, &report.plan, &names);
            }
            Ok(value)
        })
    }

    fn runs(&self, limit: usize) -> Result<serde_json::Value, ApiError> {
        let runs = self.reconciler.runs(limit)?;
        serde_json::to_value(runs).map_err(|e| ApiError::Internal(format!("rendering runs: {e}")))
    }

    fn held(&self) -> OpFuture {
        let reconciler = self.reconciler.clone();
        Box::pin(async move {
            let held = reconciler.held().await?;
            let names = reconciler
                .user_names(held.iter().filter_map(|h| h.scim_id.clone()).collect())
                .await?;
            let text = crate::reconcile::render_held_named(&held, reconciler.clock_now(), &names);
            let mut value = report_json(&serde_json::json!({ "held": held }), text)?;
            for (h, v) in held.iter().zip(
                value
                    .get_mut("held")
                    .and_then(serde_json::Value::as_array_mut)
                    .into_iter()
                    .flatten(),
            ) {
                if let (Some(name), Some(obj)) = (
                    h.scim_id.as_ref().and_then(|id| names.get(id)),
                    v.as_object_mut(),
                ) {
                    obj.insert("user_name".into(), serde_json::Value::String(name.clone()));
                }
            }
            Ok(value)
        })
    }

    fn approve(&self, ids: Option<Vec<String>>, actor: String) -> OpFuture {
        let reconciler = self.reconciler.clone();
        Box::pin(async move {
            let which = match ids {
                Some(ids) => crate::reconcile::Approval::Ids(ids),
                None => crate::reconcile::Approval::All,
            };
            let report = reconciler.approve(which, &actor).await?;
            let text = crate::reconcile::render_approval(&report);
            report_json(&report, text)
        })
    }

    fn downstream_access(
        &self,
        scim_id: String,
        wanted: crate::reconcile::access::Wanted,
    ) -> OpFuture {
        let reconciler = self.reconciler.clone();
        Box::pin(async move {
            let access = reconciler.downstream_access(&scim_id, wanted).await?;
            let text = crate::reconcile::access::render_downstream(&access);
            report_json(&access, text)
        })
    }
}

/// The downstream the daemon writes to: the configured Admin API, or the bundled
/// simulator started in-process.
pub struct Downstream {
    /// The client.
    pub client: HttpCoworkClient,
    /// The in-process simulator, when `cowork.base_url = "sim"`.
    pub sim: Option<SimHandle>,
}

/// Starts the simulator if configured, and builds the client. The in-process
/// simulator runs on `clock`, the daemon's clock, so its "today" (analytics
/// freshness, month-to-date cost) and timestamps move with the daemon's time (in
/// tests, the test clock); `cowork-sync sim` keeps the system clock.
pub async fn downstream(config: &Config, clock: SharedClock) -> anyhow::Result<Downstream> {
    let mode = match config.cowork.mode {
        CoworkMode::Real => Mode::Real,
        CoworkMode::Extended => Mode::Extended,
    };
    let (base_url, api_key, sim) = match &config.cowork.base_url {
        Some(url) => (
            url.clone(),
            config
                .cowork
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string())
                .unwrap_or_default(),
            None,
        ),
        None => {
            let handle = crate::sim::start(SimOptions {
                data_dir: Some(config.sim_dir()),
                accept_invites: config.cowork.sim_accept_invites,
                rpm: config.cowork.sim_rpm,
                extended: mode == Mode::Extended,
                clock,
                ..SimOptions::default()
            })
            .await
            .context("starting the bundled Cowork simulator")?;
            tracing::info!(url = %handle.base_url(), "the bundled Cowork simulator is the downstream");
            // The simulator accepts any non-empty key when it has no key file.
            (
                handle.base_url(),
                "local-simulator".to_string(),
                Some(handle),
            )
        }
    };
    let mut client_config = ClientConfig::new(base_url, api_key).with_mode(mode);
    client_config.requests_per_minute = config.cowork.requests_per_minute;
    client_config.request_timeout =
        Some(std::time::Duration::from_secs(config.cowork.timeout_secs));
    let client = HttpCoworkClient::new(client_config).context("building the Cowork client")?;
    Ok(Downstream { client, sim })
}

/// The insights service, when an Analytics client can be built (an Analytics key,
/// or the bundled simulator at `sim_url`).
pub fn insights_for(
    config: &Config,
    core: &Core,
    sim_url: Option<&str>,
) -> Option<Arc<crate::insights::service::Insights>> {
    crate::insights::service::client_for(config, sim_url).map(|client| {
        Arc::new(crate::insights::service::Insights::new(
            client,
            core.store.clone(),
            core.directory.clone(),
            core.clock.clone(),
        ))
    })
}

/// Everything an actix `App` needs, cloneable into each worker.
#[derive(Clone)]
pub struct HttpParts {
    state: web::Data<AppState>,
    auth: web::Data<AuthContext>,
    metrics: web::Data<Arc<Metrics>>,
    prefix: web::Data<RequestIdPrefix>,
    requests: web::Data<crate::http::reqlog::RequestLog>,
    sessions: web::Data<crate::ui::Sessions>,
}

impl HttpParts {
    /// The auth context every worker shares (for reloading the signing keys).
    pub fn auth(&self) -> web::Data<AuthContext> {
        self.auth.clone()
    }

    /// Bundles the parts.
    pub fn new(state: AppState, auth: AuthContext, metrics: Arc<Metrics>) -> Self {
        let random = crate::auth::random_bytes::<3>().unwrap_or([0, 0, 0]);
        Self {
            state: web::Data::new(state),
            auth: web::Data::new(auth),
            metrics: web::Data::new(metrics),
            prefix: web::Data::new(RequestIdPrefix(crate::auth::hex(&random))),
            requests: web::Data::new(crate::http::reqlog::RequestLog::new()),
            sessions: web::Data::new(crate::ui::Sessions::new()),
        }
    }

    /// Registers the app data and every route.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone())
            .app_data(self.auth.clone())
            .app_data(self.metrics.clone())
            .app_data(self.prefix.clone())
            .app_data(self.requests.clone())
            .app_data(self.sessions.clone())
            .configure(crate::http::routes);
    }
}

/// Options of `serve` beyond the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Start even though the store's audit head is behind the checkpoint in the data
    /// directory (audited as `store.rollback_accepted`).
    pub accept_rollback: bool,
}

/// Refuses to mint a new signing key over a data directory that already holds data:
/// every token the IdPs hold would stop working without a word.
fn refuse_missing_key(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    let key = &config.auth.signing_key_file;
    if key.exists() {
        return Ok(());
    }
    let has_data = crate::audit::checkpoint::store_head(store)?.is_some()
        || crate::audit::checkpoint::path_in(&config.storage.data_dir).exists();
    if has_data {
        anyhow::bail!(
            "the signing key {} is missing but the data directory {} holds a database: \
             a new key would silently invalidate every token the IdPs and operators hold. \
             Restore the key file from your backup (or point auth.signing_key_file at it); \
             to replace it on purpose, create a new key yourself \
             (`openssl rand -base64 32 > {}`, mode 0600), start, and mint new tokens",
            key.display(),
            config.storage.data_dir.display(),
            key.display()
        );
    }
    Ok(())
}

/// Writes the audit head checkpoint when the head moved: flushes the store first,
/// so the checkpoint never names an entry that is not on disk.
fn checkpoint_head(
    sled: &SledStore,
    path: &Path,
    last: &mut Option<crate::audit::ChainPoint>,
) -> anyhow::Result<()> {
    let head = crate::audit::checkpoint::store_head(sled)?;
    if head.is_none() || head == *last {
        return Ok(());
    }
    sled.flush()?;
    if let Some(h) = &head {
        crate::audit::checkpoint::write(path, h)?;
    }
    *last = head;
    Ok(())
}

/// How often the audit head checkpoint follows the store.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the signing key, creating it on first start, and prints one SCIM and one
/// admin token when it was created. Returns the key and the minted tokens'
/// principals (for the token registry).
fn bootstrap_key(
    config: &Config,
    clock: &SharedClock,
) -> anyhow::Result<(Vec<u8>, Vec<Principal>)> {
    let (key, created) = load_or_create_key(&config.auth.signing_key_file)
        .context("loading the token signing key")?;
    let mut minted = Vec::new();
    if created {
        let minter = Minter::new(&key, &config.auth.issuer, &config.auth.audience);
        let (scim, scim_p) =
            minter.mint_principal("idp", Scope::Scim, BOOTSTRAP_TOKEN_DAYS, clock.as_ref())?;
        let (admin, admin_p) = minter.mint_principal(
            "operator",
            Scope::Admin,
            BOOTSTRAP_TOKEN_DAYS,
            clock.as_ref(),
        )?;
        minted = vec![scim_p, admin_p];
        // A closed stdout must not stop the daemon; the key exists either way.
        let _ = writeln!(
            std::io::stdout(),
            "Created the token signing key at {}.\n\
             These tokens are shown once; mint more with `cowork-sync token mint`.\n\n\
             SCIM token (give it to Okta or Entra; valid {BOOTSTRAP_TOKEN_DAYS} days):\n{scim}\n\n\
             Admin token (for the CLI and /admin/v1; valid {BOOTSTRAP_TOKEN_DAYS} days):\n{admin}\n",
            config.auth.signing_key_file.display()
        );
    }
    Ok((key, minted))
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("opening {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("opening {}", key.display()))?,
    ))
    .with_context(|| format!("reading the private key from {}", key.display()))?
    .with_context(|| format!("no private key in {}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS configuration")
}

/// Waits for SIGTERM or SIGINT (Ctrl-C), then stops the server gracefully: no new
/// connections, in-flight requests finish (up to the shutdown timeout). The handlers
/// are installed when this is called, not when the future first runs, so a signal
/// sent right after the "serving" line is never lost.
/// On SIGHUP, reads the signing key and the previous key beside it again
/// (`token rotate-key`); a failed reload keeps the keys in use and is logged.
async fn reload_keys_on_sighup(auth: web::Data<AuthContext>, key_file: PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; restart to pick up a rotated signing key");
            return;
        };
        while hup.recv().await.is_some() {
            let path = key_file.clone();
            let auth = auth.clone();
            match tokio::task::spawn_blocking(move || auth.verifier.reload(&path)).await {
                Ok(Ok(())) => tracing::info!("SIGHUP: signing keys reloaded"),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "SIGHUP: reloading the signing keys failed; the keys in use stay")
                }
                Err(_) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (auth, key_file);
    }
}

fn stop_on_signal(
    handle: actix_web::dev::ServerHandle,
    status: Arc<Status>,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            match signals {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
                        _ = int.recv() => tracing::info!("SIGINT: shutting down gracefully"),
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for signals; stop with Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        // Readiness fails from here on, so a load balancer stops sending new requests
        // while in-flight ones drain.
        status.set_phase(crate::status::Phase::ShuttingDown);
        handle.stop(true).await;
    }
}

/// Runs the daemon until a shutdown signal.
pub async fn serve(config: Config, clock: SharedClock) -> anyhow::Result<()> {
    serve_with(config, clock, ServeOptions::default()).await
}

/// Runs the daemon until a shutdown signal, with `options`.
pub async fn serve_with(
    config: Config,
    clock: SharedClock,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let sled = open_store(&config, clock.as_ref())?;
    let store: Arc<dyn Store> = sled.clone();
    let checkpoint_path = crate::audit::checkpoint::path_in(&config.storage.data_dir);
    if let crate::audit::checkpoint::StartCheck::RollbackAccepted {
        checkpoint_seq,
        store_seq,
    } = crate::audit::checkpoint::check_at_start(
        store.as_ref(),
        &checkpoint_path,
        options.accept_rollback,
        clock.now(),
    )? {
        tracing::warn!(
            checkpoint_seq,
            store_seq,
            "starting from an audit head behind the checkpoint (--accept-rollback); audited"
        );
    }
    refuse_missing_key(&config, store.as_ref())?;
    let (key, minted) = bootstrap_key(&config, &clock)?;
    let mut last_checkpoint = None;
    checkpoint_head(&sled, &checkpoint_path, &mut last_checkpoint)
        .context("writing the audit head checkpoint")?;
    let checkpointer = {
        let sled = sled.clone();
        let path = checkpoint_path.clone();
        let mut last = last_checkpoint.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            loop {
                every.tick().await;
                let (sled2, path2) = (sled.clone(), path.clone());
                let mut seen = last.clone();
                let done = tokio::task::spawn_blocking(move || {
                    checkpoint_head(&sled2, &path2, &mut seen).map(|()| seen)
                })
                .await;
                match done {
                    Ok(Ok(seen)) => last = seen,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "writing the audit head checkpoint failed")
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let core = Core::new(&config, store, clock)?;
    for principal in &minted {
        core.tokens
            .register(
                TokenRecord::of(principal, Source::Bootstrap, core.clock.now()),
                core.clock.now(),
            )
            .context("recording the first-start tokens")?;
    }
    core.spawn_background();
    let telemetry = crate::telemetry::global();
    if let Some(t) = telemetry {
        core.status.set_telemetry(t.health().clone());
        t.start_audit_export(core.store.clone(), core.clock.clone())?;
        crate::telemetry::spawn_gauge_refresh(core.status.clone(), t.config().metrics_interval);
    }
    let downstream = downstream(&config, core.clock.clone()).await?;
    if let Some(sim) = &downstream.sim {
        // A closed stdout must not stop the daemon.
        let _ = writeln!(std::io::stdout(), "{}", sim.announcement().trim_end());
    }
    let sim_url = downstream.sim.as_ref().map(SimHandle::base_url);
    let reconciler = Arc::new(Reconciler::new(
        core.store.clone(),
        core.directory.clone(),
        downstream.client,
        core.clock.clone(),
        core.status.clone(),
        ReconcileOptions::from_config(&config.reconcile, &config.lifecycle, &config.cowork),
    ));
    // The outbox worker resumes whatever a previous run left queued.
    let (stop_workers, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(outbox_worker(
        reconciler.clone(),
        core.changes.clone(),
        stop_rx,
    ));
    let mut scheduler = if config.reconcile.enabled {
        Some(
            start_scheduler(reconciler.clone(), &config.reconcile.schedule)
                .await
                .context("starting the reconcile schedule")?,
        )
    } else {
        None
    };
    let mut state = core.http_state(&config);
    state.operations = Some(ReconcileOps::shared(reconciler.clone()));
    state.insights = insights_for(&config, &core, sim_url.as_deref());
    let parts = HttpParts::new(
        state,
        core.auth_context(&config, &key)?,
        core.metrics.clone(),
    );
    let reloader = tokio::spawn(reload_keys_on_sighup(
        parts.auth(),
        config.auth.signing_key_file.clone(),
    ));
    let factory_parts = parts.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(observe))
            .configure(|cfg| factory_parts.configure(cfg))
    })
    .shutdown_timeout(30)
    // SIGTERM and SIGINT both drain in-flight requests (actix would force SIGINT).
    .disable_signals();
    if let Some(workers) = config.server.workers {
        server = server.workers(workers);
    }
    let server = match &config.server.tls {
        Some((cert, key)) => server
            .bind_rustls_0_23(config.server.listen, tls_config(cert, key)?)
            .with_context(|| format!("binding {}", config.server.listen))?,
        None => server
            .bind(config.server.listen)
            .with_context(|| format!("binding {}", config.server.listen))?,
    };
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let addrs = server.addrs();
    let server = server.run();
    core.status.set_phase(crate::status::Phase::Serving);
    tokio::spawn(stop_on_signal(server.handle(), core.status.clone()));
    // The sockets are listening and signals handled from here on; the black-box test
    // waits for this line.
    for addr in addrs {
        tracing::info!(listen = %addr, "cowork-sync serving SCIM at {scheme}://{addr}/scim/v2");
    }
    server.await.context("running the HTTP server")?;
    tracing::info!(
        "shutting down: stopping workers, recording pending audit entries, flushing the database"
    );
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
    // The worker stops between outbox entries; what it has not acknowledged stays
    // queued for the next start.
    let _ = stop_workers.send(true);
    let _ = worker.await;
    core.auth_failures.flush().await;
    if let Some(t) = telemetry {
        // Its last pass exports what the shutdown audited; the cursor keeps the rest.
        let t = t.clone();
        let _ = tokio::task::spawn_blocking(move || t.stop_audit_export()).await;
    }
    if let Some(sim) = downstream.sim {
        sim.stop().await.context("stopping the simulator")?;
    }
    sled.flush().context("flushing the database at shutdown")?;
    checkpointer.abort();
    let _ = checkpointer.await;
    reloader.abort();
    let _ = reloader.await;
    checkpoint_head(&sled, &checkpoint_path, &mut None)
        .context("writing the audit head checkpoint at shutdown")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    /// A database at schema `version` holding `rows` and one audit entry.
    fn old_database(
        store: &MemoryStore,
        clock: &ManualClock,
        version: u64,
        rows: &[(Table, &[u8], &[u8])],
    ) {
        transaction::<_, StoreError>(store, |txn| {
            txn.insert(Table::Meta, SCHEMA_VERSION_KEY, &version.to_be_bytes())
                .map_err(TxFail::Store)?;
            for (table, key, value) in rows {
                txn.insert(*table, key, value).map_err(TxFail::Store)?;
            }
            crate::audit::append(
                txn,
                crate::audit::AuditDraft::new("test", "test", None),
                clock.now(),
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_version_1_database_gets_the_member_link_index_once_and_audited() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        // A version-1 database: a user link written before the reverse index existed.
        let link =
            serde_json::json!({"scim_id": "u1", "email": "a@example.com", "user_id": "user_1"});
        let link = link.to_string();
        old_database(
            &store,
            &clock,
            1,
            &[(Table::Downstream, b"u\x00u1", link.as_bytes())],
        );
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            crate::reconcile::ownership::store::linked_to(&store, "user_1").unwrap(),
            Some("u1".to_string())
        );
        let entries = crate::audit::list(&store, None, 0, 10).unwrap();
        assert_eq!(entries.last().unwrap().action, "store.migrated");
        // Again: nothing to do.
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(crate::audit::list(&store, None, 0, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_version_2_database_gets_a_multi_valued_external_id_index_once() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        // A version-2 database: externalId → id, the old unique form.
        old_database(
            &store,
            &clock,
            2,
            &[
                (Table::UserExternalIdIdx, b"ext-1", b"u1"),
                (Table::UserExternalIdIdx, b"ext-2", b"u2"),
            ],
        );
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        let entries =
            crate::store::collect_prefix(&store, Table::UserExternalIdIdx, b"", 10).unwrap();
        assert_eq!(
            entries,
            vec![
                (b"ext-1\x00u1".to_vec(), Vec::new()),
                (b"ext-2\x00u2".to_vec(), Vec::new())
            ]
        );
        assert_eq!(
            crate::directory::users_by_external_id(&store, "ext-2").unwrap(),
            vec!["u2".to_string()]
        );
        let audited = crate::audit::list(&store, None, 0, 10).unwrap();
        assert_eq!(audited.last().unwrap().action, "store.migrated");
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(crate::audit::list(&store, None, 0, 10).unwrap().len(), 2);
    }
}
