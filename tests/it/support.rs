//! `TestApp`: the daemon's HTTP app on an ephemeral loopback port, in this process,
//! over a memory or sled store, with a manual clock and minted tokens.

use std::sync::Arc;

use actix_web::{middleware::from_fn, App, HttpServer};
use chrono::Duration;
use cowork_sync::app::{downstream, migrate, Core, HttpParts, ReconcileOps};
use cowork_sync::auth::{Minter, Scope};
use cowork_sync::clock::{Clock, ManualClock, SharedClock};
use cowork_sync::config::Config;
use cowork_sync::cowork::HttpCoworkClient;
use cowork_sync::http::middleware::observe;
use cowork_sync::insights::check::PoolChecker;
use cowork_sync::reconcile::{ReconcileOptions, Reconciler};
use cowork_sync::sim::SimHandle;
use cowork_sync::store::memory::MemoryStore;
use cowork_sync::store::sled_store::{SledOptions, SledStore};
use cowork_sync::store::Store;
use serde_json::Value;

pub const KEY: [u8; 32] = [42u8; 32];

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    sled: bool,
    sim: bool,
}

impl TestAppBuilder {
    /// A config override, as `COWORK_SYNC__SECTION__KEY` would give it.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.env
            .push((format!("COWORK_SYNC__{key}"), value.to_string()));
        self
    }

    /// Use a sled store in a temporary directory instead of memory.
    pub fn sled(mut self) -> Self {
        self.sled = true;
        self
    }

    /// Carry the bundled simulator as the downstream, with a reconciler behind the
    /// operator API (`/admin/v1/plan`, `/reconcile`, ...). No worker runs: tests drain
    /// the outbox and reconcile explicitly, so nothing happens behind their back.
    pub fn with_sim(mut self) -> Self {
        self.sim = true;
        self
    }

    pub async fn start(self) -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = vec![(
            "COWORK_SYNC__STORAGE__DATA_DIR".to_string(),
            tmp.path().to_str().unwrap().to_string(),
        )];
        env.extend(self.env);
        let config = Config::load(None, env).unwrap();
        let store: Arc<dyn Store> = if self.sled {
            Arc::new(SledStore::open(&config.db_dir(), &SledOptions::default()).unwrap())
        } else {
            Arc::new(MemoryStore::new())
        };
        let clock = Arc::new(ManualClock::at_epoch_2026());
        migrate(store.as_ref(), clock.as_ref()).unwrap();
        let shared: SharedClock = clock.clone();
        let core = Core::new(&config, store, shared).unwrap();
        core.spawn_background();
        core.status.set_phase(cowork_sync::status::Phase::Serving);
        let mut state = core.http_state(&config);
        let (reconciler, sim, pools) = if self.sim {
            let d = downstream(&config, core.clock.clone()).await.unwrap();
            let reconciler = Arc::new(Reconciler::new(
                core.store.clone(),
                core.directory.clone(),
                d.client,
                core.clock.clone(),
                core.status.clone(),
                ReconcileOptions::from_config(&config.reconcile, &config.lifecycle, &config.cowork),
            ));
            state.operations = Some(ReconcileOps::shared(reconciler.clone()));
            let sim_url = d.sim.as_ref().map(|s| s.base_url());
            state.insights = cowork_sync::app::insights_for(&config, &core, sim_url.as_deref());
            let pools = state.insights.as_ref().map(|i| {
                let checker = Arc::new(PoolChecker::new(
                    i.clone(),
                    core.status.clone(),
                    Some(core.changes.clone()),
                ));
                reconciler.set_pool_check(checker.clone());
                checker
            });
            (Some(reconciler), d.sim, pools)
        } else {
            (None, None, None)
        };
        let parts = HttpParts::new(
            state,
            core.auth_context(&config, &KEY).unwrap(),
            core.metrics.clone(),
        );
        let auth = parts.auth();
        let server = HttpServer::new(move || {
            let parts = parts.clone();
            App::new()
                .wrap(from_fn(observe))
                .configure(move |cfg| parts.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let minter = Minter::new(&KEY, &config.auth.issuer, &config.auth.audience);
        TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            scim_token: minter
                .mint("okta", Scope::Scim, 30, clock.as_ref())
                .unwrap(),
            admin_token: minter
                .mint("operator", Scope::Admin, 30, clock.as_ref())
                .unwrap(),
            minter,
            core,
            clock,
            config,
            reconciler,
            sim,
            pools,
            auth,
            _handle: handle,
            _tmp: tmp,
        }
    }
}

/// A running app.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub scim_token: String,
    pub admin_token: String,
    pub minter: Minter,
    pub core: Core,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    /// The reconciler over the simulator (`with_sim`).
    pub reconciler: Option<Arc<Reconciler<HttpCoworkClient>>>,
    /// The in-process simulator (`with_sim`).
    pub sim: Option<SimHandle>,
    /// The pool check every full reconcile runs (`with_sim`), to run one on its own;
    /// like the daemon's, it wakes `core.changes` (the outbox worker) when it queues.
    pub pools: Option<Arc<PoolChecker>>,
    /// The auth context the server uses (its verifier, for key reloads).
    pub auth: actix_web::web::Data<cowork_sync::auth::extract::AuthContext>,
    _handle: actix_web::dev::ServerHandle,
    _tmp: tempfile::TempDir,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 7644 error body with this status and scimType.
    pub fn assert_scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status.to_string(), "{}", self.text);
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.text);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(self.header("content-type"), Some("application/scim+json"));
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: Vec::new(),
            sled: false,
            sim: false,
        }
    }

    pub async fn start() -> TestApp {
        Self::builder().start().await
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// A request with any method, body and extra headers, sent with `token`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn scim(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        self.send(
            method,
            &format!("/scim/v2{path}"),
            text.as_deref(),
            Some(&self.scim_token),
            &[],
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.scim("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.scim("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.scim("PUT", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, operations: Value) -> Resp {
        self.scim(
            "PATCH",
            path,
            Some(serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations
            })),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.scim("DELETE", path, None).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        self.send(
            method,
            &format!("/admin/v1{path}"),
            text.as_deref(),
            Some(&self.admin_token),
            &[],
        )
        .await
    }

    /// Drains the outbox through the reconciler (`with_sim`), asserting that nothing
    /// was blocked or held by the safety valve.
    pub async fn drain_clean(&self) {
        let drained = self
            .reconciler
            .as_ref()
            .expect("a TestApp with_sim")
            .drain_outbox()
            .await
            .unwrap();
        assert!(!drained.blocked && drained.held == 0, "{drained:?}");
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "active": true,
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a group with these member ids and returns its id.
    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let r = self
            .post(
                "/Groups",
                serde_json::json!({"displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }
}
