//! The daemon's long-lived parts: the [`Core`] (store, directory, rules, status,
//! downstream and reconciler), the operations the admin API runs on it, the
//! downstream client or in-process simulator, and the HTTP state built from them.

use std::sync::Arc;

use actix_web::web;
use anyhow::Context;

use crate::audit::recorder::{AuthFailure, FailureRecorder, FailureWriter};
use crate::auth::extract::{AuthContext, FailureHook};
use crate::auth::registry::TokenRegistry;
use crate::auth::Verifier;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::config::CoworkMode;
use crate::cowork::{ClientConfig, CoworkApi, HttpCoworkClient, Mode};
use crate::directory::Directory;
use crate::http::error::ApiError;
use crate::http::middleware::RequestIdPrefix;
use crate::http::AppState;
use crate::http::{OpFuture, Operations};
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;
use crate::reconcile::{Reconciler, RunOptions, Trigger};
use crate::rules::ValidRuleTable;
use crate::scim::SchemaRegistry;
use crate::sim::{SimHandle, SimOptions};
use crate::status::Status;
use crate::store::Store;

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
