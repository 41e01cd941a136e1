//! A small client for the daemon's admin API, used by the CLI commands that act on
//! a running daemon (`rules apply|export|list`, `plan`, `reconcile`, `explain`,
//! `audit`). Turns HTTP failures into one readable sentence and the right exit code.

use reqwest::Method;
use serde_json::Value;

use super::{Failure, Remote};

/// An admin API client.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for `remote`.
    pub fn new(remote: &Remote) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: remote.url.trim_end_matches('/').to_string(),
            token: remote.token.clone(),
            http,
        })
    }

    /// Sends a request and returns the JSON body of a 2xx answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> Result<Value, Failure> {
        let Some(token) = &self.token else {
            return Err(Failure::invalid(
                "an admin token is required: pass --token or set COWORK_SYNC_TOKEN",
            ));
        };
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(token);
        match body {
            Some(RequestBody::Json(v)) => request = request.json(&v),
            Some(RequestBody::Text(t)) => {
                request = request.header("content-type", "application/toml").body(t)
            }
            None => {}
        }
        let response = request.send().await.map_err(|e| {
            Failure::failed(format!("cannot reach the daemon at {}: {e}", self.base))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::failed(format!("reading the daemon's answer failed: {e}")))?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(json);
        }
        let detail = json
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| status.to_string());
        let message = format!("the daemon answered {}: {detail}", status.as_u16());
        let mut failure = match status.as_u16() {
            400 | 404 | 422 => Failure::invalid(message),
            _ => Failure::failed(message),
        };
        failure.http_status = Some(status.as_u16());
        Err(failure)
    }
}

impl AdminClient {
    /// Starts a reconcile, first waiting for one already running to finish, and
    /// prints progress while it runs.
    pub async fn reconcile(&self, path: &str) -> Result<Value, Failure> {
        let mut announced = false;
        loop {
            match self.call_with_progress(Method::POST, path).await {
                Err(f) if f.http_status == Some(409) => {
                    if !announced {
                        eprintln!("cowork-sync: a reconcile is already running; waiting for it to finish...");
                        announced = true;
                    }
                    self.wait_until_idle().await?;
                }
                other => return other,
            }
        }
    }

    async fn wait_until_idle(&self) -> Result<(), Failure> {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let status = self.call(Method::GET, "/admin/v1/status", None).await?;
            if status
                .pointer("/reconcile/running")
                .and_then(Value::as_bool)
                != Some(true)
            {
                return Ok(());
            }
        }
    }

    /// Sends a long-running request while printing the daemon's reconcile progress
    /// (from `/admin/v1/status`) to stderr every two seconds.
    pub async fn call_with_progress(&self, method: Method, path: &str) -> Result<Value, Failure> {
        let call = self.call(method, path, None);
        tokio::pin!(call);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.tick().await;
        let mut last = String::new();
        loop {
            tokio::select! {
                result = &mut call => return result,
                _ = tick.tick() => {
                    if let Ok(status) = self.call(Method::GET, "/admin/v1/status", None).await {
                        if let Some(p) = status.pointer("/reconcile/progress").filter(|p| !p.is_null()) {
                            let line = format!(
                                "  {}: {}/{}",
                                p["phase"].as_str().unwrap_or("working"),
                                p["done"],
                                p["total"]
                            );
                            if line != last {
                                eprintln!("{line}");
                                last = line;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A request body.
pub enum RequestBody {
    /// JSON.
    Json(Value),
    /// Raw text (a TOML rule file).
    Text(String),
}

/// Runs a future on a small runtime (the CLI is otherwise synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start a runtime: {e}")))?;
    Ok(runtime.block_on(f))
}
