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

use crate::auth::extract::AuthContext;
use crate::auth::registry::{Source, TokenRecord};
use crate::auth::{load_or_create_key, Minter, Principal, Scope};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::middleware::observe;
use crate::reconcile::{outbox_worker, start_scheduler, ReconcileOptions, Reconciler};
use crate::sim::SimHandle;
use crate::status::Status;
use crate::store::sled_store::SledStore;
use crate::store::Store;

mod database;
mod parts;

pub use database::{migrate, open_store, SCHEMA_VERSION};
pub use parts::{downstream, insights_for, Core, Downstream, HttpParts, ReconcileOps};

/// Validity of the tokens printed on first start.
pub const BOOTSTRAP_TOKEN_DAYS: u32 = 365;

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
    // Pooled budgets: checked by every full reconcile and on `[insights] pool_check`.
    let mut pool_schedule = None;
    if let Some(insights) = &state.insights {
        let checker = Arc::new(crate::insights::check::PoolChecker::new(
            insights.clone(),
            core.status.clone(),
            Some(core.changes.clone()),
        ));
        reconciler.set_pool_check(checker.clone());
        if let Some(schedule) = &config.insights.pool_check {
            pool_schedule = Some(
                crate::insights::check::start_pool_schedule(checker, schedule)
                    .await
                    .map_err(|e| anyhow::anyhow!("starting the pool check schedule: {e}"))?,
            );
        }
    }
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
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(observe))
            .configure(|cfg| factory_parts.configure(cfg))
    })
    .shutdown_timeout(30)
    // SIGTERM and SIGINT both drain in-flight requests (actix would force SIGINT).
    .disable_signals()
    .workers(config.server.http_workers());
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
    if let Some(s) = pool_schedule.as_mut() {
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
