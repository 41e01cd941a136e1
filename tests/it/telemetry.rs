//! OpenTelemetry against a real OTLP/HTTP receiver: an actix server in the test that
//! accepts `/v1/traces`, `/v1/metrics` and `/v1/logs`, decodes each body with the
//! OpenTelemetry proto types, and can answer 503 for a while. The daemon is the real
//! binary with `COWORK_SYNC__TELEMETRY__OTLP_ENDPOINT` pointing at it.
//!
//! The binary runs on its own clock, so waits poll the receiver's (or the daemon's)
//! state with a bounded deadline; nothing asserts a duration.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");
/// How long any one wait may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// The personal data the tests send; none of it may appear in any export.
const PERSONAL: &[&str] = &["example.com", "Ada", "Lovelace", "ada.lovelace"];

// ---------------------------------------------------------------- the receiver

/// Everything the receiver accepted, decoded.
#[derive(Default)]
struct Received {
    /// (resource attributes, span)
    spans: Vec<(Vec<KeyValue>, Span)>,
    /// (resource attributes, metric)
    metrics: Vec<(Vec<KeyValue>, Metric)>,
    /// One entry per accepted logs request: (resource attributes, records in order).
    log_requests: Vec<(Vec<KeyValue>, Vec<LogRecord>)>,
    /// Requests whose body did not decode.
    undecodable: usize,
}

#[derive(Clone, Default)]
struct Shared {
    got: Arc<Mutex<Received>>,
    /// While set, every request is answered 503 and dropped.
    unavailable: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

struct Receiver {
    base: String,
    shared: Shared,
    handle: actix_web::dev::ServerHandle,
}

fn protobuf(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(body)
}

fn refuse(shared: &Shared) -> Option<HttpResponse> {
    if shared.unavailable.load(Ordering::SeqCst) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        Some(HttpResponse::ServiceUnavailable().finish())
    } else {
        None
    }
}

async fn traces(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(r) = refuse(&shared) {
        return r;
    }
    let mut got = shared.got.lock().unwrap();
    match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(req) => {
            for rs in req.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        got.spans.push((resource.clone(), span));
                    }
                }
            }
            protobuf(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(_) => {
            got.undecodable += 1;
            HttpResponse::BadRequest().finish()
        }
    }
}

async fn metrics(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(r) = refuse(&shared) {
        return r;
    }
    let mut got = shared.got.lock().unwrap();
    match ExportMetricsServiceRequest::decode(body.as_ref()) {
        Ok(req) => {
            for rm in req.resource_metrics {
                let resource = rm.resource.map(|r| r.attributes).unwrap_or_default();
                for sm in rm.scope_metrics {
                    for m in sm.metrics {
                        got.metrics.push((resource.clone(), m));
                    }
                }
            }
            protobuf(ExportMetricsServiceResponse::default().encode_to_vec())
        }
        Err(_) => {
            got.undecodable += 1;
            HttpResponse::BadRequest().finish()
        }
    }
}

async fn logs(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(r) = refuse(&shared) {
        return r;
    }
    let mut got = shared.got.lock().unwrap();
    match ExportLogsServiceRequest::decode(body.as_ref()) {
        Ok(req) => {
            for rl in req.resource_logs {
                let resource = rl.resource.map(|r| r.attributes).unwrap_or_default();
                let records = rl
                    .scope_logs
                    .into_iter()
                    .flat_map(|sl| sl.log_records)
                    .collect();
                got.log_requests.push((resource, records));
            }
            protobuf(ExportLogsServiceResponse::default().encode_to_vec())
        }
        Err(_) => {
            got.undecodable += 1;
            HttpResponse::BadRequest().finish()
        }
    }
}

impl Receiver {
    fn start() -> Self {
        let shared = Shared::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let data = shared.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(data.clone()))
                        .app_data(web::PayloadConfig::new(32 << 20))
                        .route("/v1/traces", web::post().to(traces))
                        .route("/v1/metrics", web::post().to(metrics))
                        .route("/v1/logs", web::post().to(logs))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .unwrap();
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().unwrap();
        Self {
            base: format!("http://{addr}"),
            shared,
            handle,
        }
    }

    fn set_unavailable(&self, on: bool) {
        self.shared.unavailable.store(on, Ordering::SeqCst);
    }

    fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Polls `done` on what arrived until it holds or the deadline passes.
    fn wait_for<T>(&self, what: &str, done: impl Fn(&Received) -> Option<T>) -> T {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(t) = done(&self.shared.got.lock().unwrap()) {
                return t;
            }
            assert!(
                Instant::now() < until,
                "the receiver never got {what}; it has {}",
                self.with(summary)
            );
            std::thread::park_timeout(Duration::from_millis(25));
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.shared.got.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        std::thread::spawn(move || futures_stop(handle));
    }
}

fn futures_stop(handle: actix_web::dev::ServerHandle) {
    runtime().block_on(handle.stop(false));
}

// ---------------------------------------------------------------- proto helpers

/// What arrived, in a line or two (for failure messages).
fn summary(got: &Received) -> String {
    let spans: Vec<String> = got
        .spans
        .iter()
        .map(|(_, s)| {
            format!(
                "{} [{} {}<-{}]",
                s.name,
                &hex(&s.trace_id)[..8],
                hex(&s.span_id),
                hex(&s.parent_span_id)
            )
        })
        .collect();
    format!(
        "spans {spans:?}; {} metrics; {} log requests; {} undecodable",
        got.metrics.len(),
        got.log_requests.len(),
        got.undecodable
    )
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every string an export carries where personal data could hide.
fn all_strings(got: &Received) -> Vec<String> {
    let mut out = Vec::new();
    let kvs = |out: &mut Vec<String>, attrs: &[KeyValue]| {
        for kv in attrs {
            out.push(format!(
                "{} = {}",
                kv.key,
                kv.value.as_ref().map(text).unwrap_or_default()
            ));
        }
    };
    for (resource, span) in &got.spans {
        kvs(&mut out, resource);
        out.push(span.name.clone());
        kvs(&mut out, &span.attributes);
        for event in &span.events {
            out.push(event.name.clone());
            kvs(&mut out, &event.attributes);
        }
        if let Some(status) = &span.status {
            out.push(status.message.clone());
        }
    }
    for (resource, metric) in &got.metrics {
        kvs(&mut out, resource);
        out.push(metric.name.clone());
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        match &metric.data {
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .for_each(|p| kvs(&mut out, &p.attributes)),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .for_each(|p| kvs(&mut out, &p.attributes)),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .for_each(|p| kvs(&mut out, &p.attributes)),
            _ => {}
        }
    }
    for (resource, records) in &got.log_requests {
        kvs(&mut out, resource);
        for r in records {
            out.push(r.event_name.clone());
            out.push(r.body.as_ref().map(text).unwrap_or_default());
            kvs(&mut out, &r.attributes);
        }
    }
    out
}

fn assert_nothing_personal(got: &Received) {
    for s in all_strings(got) {
        for p in PERSONAL {
            assert!(!s.contains(p), "personal data ({p}) in an export: {s}");
        }
    }
}

fn assert_resource(resource: &[KeyValue], signal: &str) {
    assert_eq!(
        attr(resource, "service.name").as_deref(),
        Some("cowork-sync"),
        "{signal}: {resource:?}"
    );
    assert_eq!(
        attr(resource, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "{signal}"
    );
    let instance = attr(resource, "service.instance.id").unwrap_or_default();
    assert_eq!(
        instance.len(),
        36,
        "{signal}: service.instance.id {instance:?}"
    );
}

// ---------------------------------------------------------------- the daemon

struct Daemon {
    child: Child,
    base: String,
    /// Every stderr line, as the daemon writes them.
    lines: Arc<Mutex<Vec<String>>>,
}

fn start(data: &Path, receiver: &Receiver) -> Daemon {
    start_at(data, receiver, "info")
}

/// The daemon with log level `level` (which filters the log, never the traces).
fn start_at(data: &Path, receiver: &Receiver, level: &str) -> Daemon {
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data)
        .env("COWORK_SYNC__LOG__LEVEL", level)
        .env("COWORK_SYNC__TELEMETRY__OTLP_ENDPOINT", &receiver.base)
        .env("COWORK_SYNC__TELEMETRY__METRICS_INTERVAL", "1s")
        .env("COWORK_SYNC__TELEMETRY__RETRY_MAX", "1s")
        .env("COWORK_SYNC__TELEMETRY__TIMEOUT", "5s")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env_remove("OTEL_SDK_DISABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut line = String::new();
    let base = loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        let all = lines.lock().unwrap().join("");
        assert!(n > 0, "the daemon exited before listening:\n{all}");
        lines.lock().unwrap().push(line.clone());
        if let Some(at) = line.find("serving SCIM at ") {
            break line[at + "serving SCIM at ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches("/scim/v2")
                .to_string();
        }
    };
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in reader.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    Daemon { child, base, lines }
}

fn stop(mut daemon: Daemon) {
    let status = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = daemon.child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
}

fn mint(data: &Path, scope: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "mint", "--scope", scope, "--subject", "otel-test"])
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn call(
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    runtime().block_on(async {
        let mut req = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .bearer_auth(token);
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
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn create_user(daemon: &Daemon, token: &str, n: usize) -> String {
    let (status, body) = call(
        "POST",
        &format!("{}/scim/v2/Users", daemon.base),
        token,
        &[],
        Some(json!({
            "userName": format!("ada.lovelace{n}@example.com"),
            "displayName": "Ada Lovelace",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": format!("ada.lovelace{n}@example.com"), "primary": true}],
            "active": true,
        })),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// The daemon's telemetry figures (`GET /admin/v1/status`, `telemetry`).
fn telemetry_status(daemon: &Daemon, admin: &str) -> Value {
    let (status, body) = call(
        "GET",
        &format!("{}/admin/v1/status", daemon.base),
        admin,
        &[],
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["telemetry"].clone()
}

/// Polls the daemon's status until `done` holds.
fn wait_status(daemon: &Daemon, admin: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + DEADLINE;
    loop {
        let t = telemetry_status(daemon, admin);
        if done(&t) {
            return t;
        }
        assert!(
            Instant::now() < until,
            "the daemon never reported {what}: {t}"
        );
        std::thread::park_timeout(Duration::from_millis(25));
    }
}

/// Polls the daemon's stderr until a line satisfies `done`, and returns it.
fn wait_line(daemon: &Daemon, what: &str, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(l) = daemon.lines.lock().unwrap().iter().find(|l| done(l)) {
            return l.clone();
        }
        assert!(Instant::now() < until, "the daemon never logged {what}");
        std::thread::park_timeout(Duration::from_millis(25));
    }
}

/// Polls the daemon's status until its outbox is empty.
fn wait_outbox_empty(daemon: &Daemon, admin: &str) {
    let until = Instant::now() + DEADLINE;
    loop {
        let (_, body) = call(
            "GET",
            &format!("{}/admin/v1/status", daemon.base),
            admin,
            &[],
            None,
        );
        if body["outbox"]["pending"] == 0 {
            return;
        }
        assert!(Instant::now() < until, "the outbox never drained: {body}");
        std::thread::park_timeout(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------- traces and metrics

const IDP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const IDP_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_scim_write_is_one_trace_from_the_idp_to_the_downstream_call_and_metrics_arrive() {
    let receiver = Receiver::start();
    let data = tempfile::tempdir().unwrap();
    let daemon = start(data.path(), &receiver);
    let token = mint(data.path(), "scim");
    let admin = mint(data.path(), "admin");
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rules.example.toml");
    let rules = std::fs::read_to_string(rules).unwrap();
    let (status, body) = runtime().block_on(async {
        let res = reqwest::Client::new()
            .put(format!("{}/admin/v1/rules", daemon.base))
            .bearer_auth(&admin)
            .header("content-type", "application/toml")
            .body(rules)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    });
    assert!(status < 300, "{status} {body}");
    let user = create_user(&daemon, &token, 1);
    // The rule change runs a full reconcile first; the group's own drain comes after.
    wait_outbox_empty(&daemon, &admin);

    // The IdP's create, inside the IdP's own trace.
    let traceparent = format!("00-{IDP_TRACE}-{IDP_SPAN}-01");
    let (status, group) = call(
        "POST",
        &format!("{}/scim/v2/Groups", daemon.base),
        &token,
        &[("traceparent", &traceparent)],
        Some(json!({"displayName": "Cowork Pilot", "members": [{"value": user}]})),
    );
    assert_eq!(status, 201, "{group}");

    // The drain's downstream calls, in the IdP's trace.
    let trace = receiver.wait_for("a downstream call in the IdP's trace", |got| {
        let spans: Vec<Span> = got
            .spans
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == IDP_TRACE)
            .map(|(_, s)| s.clone())
            .collect();
        spans
            .iter()
            .any(|s| s.kind == SpanKind::Client as i32)
            .then_some(spans)
    });
    let by_id: HashMap<String, &Span> = trace.iter().map(|s| (hex(&s.span_id), s)).collect();
    let names: Vec<String> = trace.iter().map(|s| s.name.clone()).collect();
    // The request span is the root here, the child of the IdP's span.
    let server = trace
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span: {names:?}"));
    assert_eq!(hex(&server.parent_span_id), IDP_SPAN, "{names:?}");
    assert!(server.name.starts_with("POST /scim/v2/"), "{}", server.name);
    assert!(attr(&server.attributes, "http.route").is_some());
    assert_eq!(
        attr(&server.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attr(&server.attributes, "http.response.status_code").as_deref(),
        Some("201")
    );
    // Every other span's parent is in the trace: nothing dangles.
    for s in &trace {
        if s.span_id != server.span_id {
            assert!(
                by_id.contains_key(&hex(&s.parent_span_id)),
                "{} has a parent outside the trace: {names:?}",
                s.name
            );
        }
    }
    let ancestors = |s: &Span| -> Vec<String> {
        let mut out = Vec::new();
        let mut at = hex(&s.parent_span_id);
        while let Some(p) = by_id.get(&at) {
            out.push(p.name.clone());
            at = hex(&p.parent_span_id);
        }
        out
    };
    let write = trace
        .iter()
        .find(|s| s.name.starts_with("directory "))
        .unwrap_or_else(|| panic!("no directory write span: {names:?}"));
    assert!(
        ancestors(write).contains(&server.name),
        "the write is under the request: {names:?}"
    );
    let drain = trace
        .iter()
        .find(|s| s.name == "outbox drain")
        .unwrap_or_else(|| panic!("no outbox drain span: {names:?}"));
    assert!(
        ancestors(drain).contains(&write.name),
        "the drain continues the write's trace: {:?}",
        ancestors(drain)
    );
    let client = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert!(
        ancestors(client).contains(&drain.name),
        "the downstream call is under the drain: {:?}",
        ancestors(client)
    );
    assert!(attr(&client.attributes, "http.request.method").is_some());
    assert!(attr(&client.attributes, "http.response.status_code").is_some());
    assert!(attr(&client.attributes, "server.address").is_some());

    // Text log lines name the trace and span they belong to.
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let (status, _) = call(
        "GET",
        &format!("{}/scim/v2/Users", daemon.base),
        "not-a-token",
        &[(
            "traceparent",
            &format!("00-{other_trace}-b7ad6b7169203331-01"),
        )],
        None,
    );
    assert_eq!(status, 401);
    let line = wait_line(&daemon, "the refusal's log line", |l| {
        l.contains("request refused") && l.contains(other_trace)
    });
    let refused = receiver.wait_for("the refused request's span", |got| {
        got.spans
            .iter()
            .find(|(_, s)| hex(&s.trace_id) == other_trace)
            .map(|(_, s)| s.clone())
    });
    assert!(
        line.contains(&format!("span_id={}", hex(&refused.span_id))),
        "{line}"
    );

    // A request without a traceparent starts a trace of its own.
    let own = receiver.wait_for("the user create's server span", |got| {
        let write = got
            .spans
            .iter()
            .find(|(_, s)| s.name == "directory create User")?;
        got.spans
            .iter()
            .find(|(_, s)| s.span_id == write.1.parent_span_id)
            .map(|(_, s)| s.clone())
    });
    assert_eq!(own.kind, SpanKind::Server as i32);
    assert_ne!(hex(&own.trace_id), IDP_TRACE);
    assert!(own.parent_span_id.is_empty(), "a root span");

    // Metrics under their Prometheus names, with the request latency as a histogram.
    receiver.wait_for("the Prometheus metrics", |got| {
        let names: BTreeSet<&str> = got.metrics.iter().map(|(_, m)| m.name.as_str()).collect();
        (names.contains("cowork_sync_http_requests_total")
            && names.contains("cowork_sync_http_request_duration_seconds")
            && names.contains("cowork_sync_telemetry_audit_lag"))
        .then_some(())
    });
    receiver.with(|got| {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let latency = got
            .metrics
            .iter()
            .find(|(_, m)| m.name == "cowork_sync_http_request_duration_seconds")
            .unwrap();
        assert_eq!(latency.1.unit, "s");
        assert!(matches!(latency.1.data, Some(Data::Histogram(_))));
        let requests = got
            .metrics
            .iter()
            .find(|(_, m)| m.name == "cowork_sync_http_requests_total")
            .unwrap();
        assert!(
            matches!(&requests.1.data, Some(Data::Sum(s)) if s.is_monotonic),
            "a counter is a monotonic sum"
        );
        for (resource, _) in &got.spans {
            assert_resource(resource, "traces");
        }
        for (resource, _) in &got.metrics {
            assert_resource(resource, "metrics");
        }
        assert_eq!(got.undecodable, 0);
    });
    // The audit records come too, under the same resource; the rule change's first
    // run found the whole org to build, which is reported as drift.
    let drift = receiver.wait_for("the drift event", |got| {
        got.log_requests
            .iter()
            .flat_map(|(_, records)| records)
            .find(|r| r.event_name == "cowork_sync.drift")
            .cloned()
    });
    assert_eq!(
        attr(&drift.attributes, "cowork_sync.audit.action").as_deref(),
        Some("reconcile.drift")
    );
    assert!(attr(&drift.attributes, "cowork_sync.audit.detail.differences").is_some());
    stop(daemon);
    receiver.with(|got| {
        for (resource, _) in &got.log_requests {
            assert_resource(resource, "logs");
        }
        let instances: BTreeSet<String> = got
            .spans
            .iter()
            .map(|(r, _)| r)
            .chain(got.metrics.iter().map(|(r, _)| r))
            .chain(got.log_requests.iter().map(|(r, _)| r))
            .filter_map(|r| attr(r, "service.instance.id"))
            .collect();
        assert_eq!(
            instances.len(),
            1,
            "one process, one instance id: {instances:?}"
        );
        assert_nothing_personal(got);
    });
}

// ---------------------------------------------------------------- audit records

/// The audit records received, by sequence number (the last copy of each), and the
/// sequence numbers in the order they arrived.
fn audit_records(got: &Received) -> (BTreeMap<u64, LogRecord>, Vec<u64>) {
    let mut by_seq = BTreeMap::new();
    let mut order = Vec::new();
    for (_, records) in &got.log_requests {
        for r in records {
            let seq: u64 = attr(&r.attributes, "cowork_sync.audit.seq")
                .and_then(|s| s.parse().ok())
                .expect("every record has its sequence number");
            order.push(seq);
            by_seq.insert(seq, r.clone());
        }
    }
    (by_seq, order)
}

/// Waits until the daemon reports the collector has every entry, and returns its head.
fn wait_caught_up(daemon: &Daemon, admin: &str) -> u64 {
    let t = wait_status(daemon, admin, "an audit lag of zero", |t| {
        t["audit_lag"] == 0 && t["audit_head"].as_u64().unwrap_or(0) > 0
    });
    t["audit_head"].as_u64().unwrap()
}

fn assert_complete_and_in_order(got: &Received, head: u64) {
    let (by_seq, order) = audit_records(got);
    let missing: Vec<u64> = (1..=head).filter(|s| !by_seq.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "gaps in the exported trail: {missing:?}"
    );
    // Within one request the records are in sequence; a request may repeat what an
    // earlier one carried (at least once) but never skips back past what is new.
    for (_, records) in &got.log_requests {
        let seqs: Vec<u64> = records
            .iter()
            .map(|r| {
                attr(&r.attributes, "cowork_sync.audit.seq")
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    let mut high = 0;
    for seq in &order {
        assert!(
            *seq <= high + 1,
            "seq {seq} arrived before {}: {order:?}",
            high + 1
        );
        high = high.max(*seq);
    }
    // Each record is complete: its chain links to the one before.
    for (seq, r) in &by_seq {
        for key in [
            "cowork_sync.audit.hash",
            "cowork_sync.audit.prev_hash",
            "cowork_sync.audit.action",
            "cowork_sync.audit.actor",
            "cowork_sync.audit.outcome",
        ] {
            assert!(attr(&r.attributes, key).is_some(), "seq {seq} lacks {key}");
        }
        assert!(r.time_unix_nano > 0, "seq {seq} has no timestamp");
        if let Some(prev) = by_seq.get(&(seq - 1)) {
            assert_eq!(
                attr(&r.attributes, "cowork_sync.audit.prev_hash"),
                attr(&prev.attributes, "cowork_sync.audit.hash"),
                "seq {seq} does not follow {}",
                seq - 1
            );
        }
    }
}

#[test]
fn audit_records_arrive_complete_and_in_order_across_an_outage_and_a_restart() {
    let receiver = Receiver::start();
    let data = tempfile::tempdir().unwrap();
    // At log level warn (but the startup line the test waits for): the level quiets
    // the log, not the telemetry.
    let daemon = start_at(data.path(), &receiver, "warn,cowork_sync::app=info");
    let token = mint(data.path(), "scim");
    let admin = mint(data.path(), "admin");
    create_user(&daemon, &token, 1);
    receiver.wait_for("the create's spans at log level warn", |got| {
        got.spans
            .iter()
            .any(|(_, s)| s.name == "directory create User")
            .then_some(())
    });
    let head = wait_caught_up(&daemon, &admin);
    receiver.with(|got| assert_complete_and_in_order(got, head));

    // The collector goes away: records wait behind the cursor, the lag shows it.
    receiver.set_unavailable(true);
    let refused = receiver.refused();
    for n in 2..5 {
        create_user(&daemon, &token, n);
    }
    let t = wait_status(&daemon, &admin, "a failing export", |t| {
        t["audit_failures_in_row"].as_u64().unwrap_or(0) >= 1 && t["audit_lag"].as_u64() > Some(0)
    });
    assert!(t["last_error"].is_string(), "{t}");
    assert!(receiver.refused() > refused);
    // `status` names the lag.
    let out = Command::new(BIN)
        .arg("status")
        .env("COWORK_SYNC_URL", &daemon.base)
        .env("COWORK_SYNC_TOKEN", &admin)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let line = printed
        .lines()
        .find(|l| l.starts_with("telemetry"))
        .unwrap_or_else(|| panic!("no telemetry line in\n{printed}"));
    assert!(
        line.contains("degraded") && line.contains("audit export lag"),
        "{line}"
    );
    // It comes back: everything arrives.
    receiver.set_unavailable(false);
    let head = wait_caught_up(&daemon, &admin);
    receiver.with(|got| assert_complete_and_in_order(got, head));

    // Down again, and the daemon stops before it could export the newest entries.
    receiver.set_unavailable(true);
    for n in 5..8 {
        create_user(&daemon, &token, n);
    }
    wait_status(&daemon, &admin, "a failing export", |t| {
        t["audit_failures_in_row"].as_u64().unwrap_or(0) >= 1 && t["audit_lag"].as_u64() > Some(0)
    });
    let before = receiver.with(|got| audit_records(got).0.len() as u64);
    stop(daemon);
    receiver.set_unavailable(false);
    // The next start resumes from the cursor.
    let daemon = start(data.path(), &receiver);
    create_user(&daemon, &token, 8);
    let head = wait_caught_up(&daemon, &admin);
    assert!(head > before, "the restart exported what waited");
    receiver.with(|got| {
        assert_complete_and_in_order(got, head);
        assert_nothing_personal(got);
    });
    stop(daemon);
}

// ---------------------------------------------------------------- named events

#[actix_web::test]
async fn held_removals_and_drift_are_audited_under_the_actions_the_export_names_as_events() {
    let app = crate::support::TestApp::builder()
        .config("RECONCILE__REMOVAL_FLOOR", "0")
        .with_sim()
        .start()
        .await;
    crate::console::one_held_removal(&app).await;
    let entries = cowork_sync::audit::list(app.core.store.as_ref(), None, 0, usize::MAX).unwrap();
    let events: BTreeSet<&str> = entries
        .iter()
        .map(cowork_sync::telemetry::audit_logs::event_name)
        .collect();
    assert!(events.contains("cowork_sync.removals_held"), "{events:?}");
    assert!(events.contains("cowork_sync.drift"), "{events:?}");
}
