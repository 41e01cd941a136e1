//! A small client for the daemon's admin API, used by the CLI commands that act on
//! a running daemon (`rules apply|export|list`, `plan`, `reconcile`, `explain`,
//! `audit`, `status`). Turns HTTP failures into one readable sentence and the right
//! exit code; a connection failure names its cause and the fix.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::{errln, Failure, Remote};

/// How long a quick call (status, rules, audit pages) may take.
const QUICK_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a plan, reconcile or approval may take: a full read of 100 groups of
/// 10,000 members is about 12 minutes at 90 requests a minute (docs/reconcile.md),
/// and applying as many writes again as long; an hour covers both with room.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(3600);

/// An admin API client.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// Checks `--url`: an absolute `http` or `https` URL with a host. A URL without a
/// scheme (`localhost:8080`) is a usage error, not a connection failure.
pub fn check_url(url: &str) -> Result<reqwest::Url, Failure> {
    let trimmed = url.trim();
    let suggestion = || {
        format!(
            "--url '{trimmed}' has no http:// or https:// scheme; use for example http://{}",
            trimmed.trim_start_matches("//")
        )
    };
    if !trimmed.contains("://") {
        return Err(Failure::invalid(suggestion()));
    }
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| Failure::invalid(format!("--url '{trimmed}' is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(parsed),
        "http" | "https" => Err(Failure::invalid(format!("--url '{trimmed}' names no host"))),
        other => Err(Failure::invalid(format!(
            "--url '{trimmed}' uses the scheme '{other}'; the daemon speaks http:// or https://"
        ))),
    }
}

/// The token as given, without the whitespace and newline a file or `$(cat ...)`
/// leaves around it; `None` when nothing is left.
pub fn clean_token(token: Option<&str>) -> Option<String> {
    token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// One sentence for a request that got no answer: the cause, and what to do.
pub fn connection_failure(base: &str, e: &reqwest::Error) -> Failure {
    let host = reqwest::Url::parse(base)
        .ok()
        .map(|u| {
            let host = u.host_str().unwrap_or("").to_string();
            match u.port_or_known_default() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .unwrap_or_else(|| base.to_string());
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let message = if e.is_timeout() {
        format!(
            "no answer from {host} within the CLI's timeout: the daemon is busy or unreachable; \
             check `cowork-sync status` and the daemon's log"
        )
    } else if lower.contains("connection refused") {
        format!(
            "connection refused at {host}: is `cowork-sync serve` running? \
             (set --url or COWORK_SYNC_URL to where it listens)"
        )
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        format!("cannot resolve the host of {base}: check --url or COWORK_SYNC_URL")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!(
            "TLS with {host} failed ({chain}): the daemon's certificate is not trusted here, \
             or it serves plain http (then use http://)"
        )
    } else if lower.contains("connection reset")
        || lower.contains("connection closed")
        || lower.contains("incomplete message")
    {
        format!(
            "{host} closed the connection ({chain}): if the daemon serves HTTPS, use https:// in --url"
        )
    } else {
        format!("cannot reach the daemon at {base}: {chain}")
    };
    Failure::failed(message)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl AdminClient {
    /// A client for `remote`: a usage error when the URL has no scheme.
    pub fn new(remote: &Remote) -> Result<Self, Failure> {
        check_url(&remote.url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: remote.url.trim().trim_end_matches('/').to_string(),
            token: clean_token(remote.token.as_deref()),
            http,
        })
    }

    /// Sends a quick request and returns the JSON body of a 2xx answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> Result<Value, Failure> {
        self.send(method, path, body, QUICK_TIMEOUT).await
    }

    /// Sends a request that may run as long as a full reconcile.
    pub async fn call_long(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> Result<Value, Failure> {
        self.send(method, path, body, LONG_TIMEOUT).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        let Some(token) = &self.token else {
            return Err(Failure::invalid(
                "an admin token is required: pass --token or set COWORK_SYNC_TOKEN",
            ));
        };
        if token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return Err(Failure::invalid(
                "the token holds spaces or characters a header cannot carry: pass the token alone, on one line",
            ));
        }
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .timeout(timeout)
            .bearer_auth(token);
        match body {
            Some(RequestBody::Json(v)) => request = request.json(&v),
            Some(RequestBody::Text(t)) => {
                request = request.header("content-type", "application/toml").body(t)
            }
            None => {}
        }
        let response = request
            .send()
            .await
            .map_err(|e| connection_failure(&self.base, &e))?;
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
        let hint = match status.as_u16() {
            401 => " (check the token: it may have expired, been revoked, or come from another daemon's key)",
            403 => " (this command needs a token minted with --scope admin)",
            _ => "",
        };
        let message = format!("the daemon answered {}: {detail}{hint}", status.as_u16());
        let mut failure = match status.as_u16() {
            400 | 404 | 422 => Failure::invalid(message),
            _ => Failure::failed(message),
        };
        failure.http_status = Some(status.as_u16());
        Err(failure)
    }
}

/// Where a running reconcile is, as one progress line: its phase, the steps done of
/// the total, and an estimate of the time left from the pace so far in the phase.
#[derive(Debug, Default)]
pub struct ProgressLine {
    phase: String,
    started: Option<(Instant, u64)>,
}

impl ProgressLine {
    /// The line for a `reconcile.progress` object seen at `now`.
    pub fn update(&mut self, progress: &Value, now: Instant) -> String {
        let phase = progress["phase"].as_str().unwrap_or("working").to_string();
        let done = progress["done"].as_u64().unwrap_or(0);
        let total = progress["total"].as_u64().unwrap_or(0);
        if phase != self.phase {
            self.phase = phase.clone();
            self.started = Some((now, done));
        }
        let mut line = if total > 0 {
            format!(
                "  {phase}: {done}/{total} ({}%)",
                done.saturating_mul(100) / total.max(1)
            )
        } else {
            format!("  {phase}: {done}")
        };
        if let Some((since, first)) = self.started {
            let elapsed = now.saturating_duration_since(since).as_secs_f64();
            let moved = done.saturating_sub(first);
            if total > done && moved > 0 && elapsed >= 1.0 {
                let left = (total - done) as f64 * elapsed / moved as f64;
                line.push_str(&format!(", about {} left", human_duration(left)));
            }
        }
        line
    }
}

/// `45s`, `3m 10s`, `1h 05m`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
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
                        errln!("cowork-sync: a reconcile is already running; waiting for it to finish, then starting this one...");
                        announced = true;
                    }
                    self.wait_until_idle().await?;
                }
                other => return other,
            }
        }
    }

    async fn wait_until_idle(&self) -> Result<(), Failure> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut line = ProgressLine::default();
        let mut last = String::new();
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
            if let Some(p) = status
                .pointer("/reconcile/progress")
                .filter(|p| !p.is_null())
            {
                let text = format!("{} (the run in progress)", line.update(p, Instant::now()));
                if text != last {
                    errln!("{text}");
                    last = text;
                }
            }
        }
    }

    /// Sends a long-running request while printing the daemon's reconcile progress
    /// (from `/admin/v1/status`) to stderr every two seconds.
    pub async fn call_with_progress(&self, method: Method, path: &str) -> Result<Value, Failure> {
        let call = self.call_long(method, path, None);
        tokio::pin!(call);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        let mut line = ProgressLine::default();
        let mut last = String::new();
        loop {
            tokio::select! {
                result = &mut call => return result,
                _ = tick.tick() => {
                    if let Ok(status) = self.call(Method::GET, "/admin/v1/status", None).await {
                        if let Some(p) = status.pointer("/reconcile/progress").filter(|p| !p.is_null()) {
                            let text = line.update(p, Instant::now());
                            if text != last {
                                errln!("{text}");
                                last = text;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_scheme_is_a_usage_error() {
        let f = check_url("localhost:8080").unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.contains("http://localhost:8080"), "{}", f.message);
        assert_eq!(check_url("127.0.0.1:8080").unwrap_err().code, 2);
        assert_eq!(check_url("ftp://h/").unwrap_err().code, 2);
        assert!(check_url("https://sync.example.com/").is_ok());
        assert!(check_url(" http://127.0.0.1:8080 ").is_ok());
    }

    #[test]
    fn a_token_loses_the_newline_a_file_leaves() {
        assert_eq!(clean_token(Some("abc.def\n")).as_deref(), Some("abc.def"));
        assert_eq!(clean_token(Some("  \n")), None);
        assert_eq!(clean_token(None), None);
    }

    #[test]
    fn progress_shows_the_total_and_an_estimate_from_the_pace() {
        let mut line = ProgressLine::default();
        let t0 = Instant::now();
        let p = |done: u64| serde_json::json!({"phase": "applying", "done": done, "total": 100});
        assert_eq!(line.update(&p(0), t0), "  applying: 0/100 (0%)");
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            line.update(&p(20), later),
            "  applying: 20/100 (20%), about 40s left"
        );
        assert_eq!(human_duration(3725.0), "1h 02m");
        assert_eq!(human_duration(190.0), "3m 10s");
    }
}
