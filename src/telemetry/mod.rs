//! OpenTelemetry: traces, metrics and the audit trail as log records, over OTLP/HTTP
//! (protobuf) to `[telemetry] otlp_endpoint`.
//!
//! - **Traces**: our `tracing` spans become OpenTelemetry spans through
//!   `tracing-opentelemetry` ([`Telemetry::layer`]); the SCIM request span takes a W3C
//!   `traceparent` from the IdP, outbox entries carry the trace context of the write
//!   that queued them, and each downstream call sends `traceparent` ([`propagation`]).
//!   Finished spans wait in a bounded queue ([`spans`]); when it is full they are
//!   dropped and counted, so exporting never blocks a request.
//! - **Metrics**: every update of the Prometheus registry is mirrored into OTel
//!   instruments of the same names ([`bridge`]), exported every `metrics_interval`.
//! - **Logs**: every audit entry, from a cursor kept in the store ([`audit_logs`]):
//!   at-least-once, resumed after a collector outage or a restart.
//!
//! Without an endpoint nothing here is built: no layer, no threads, no instruments.

pub mod audit_logs;
pub mod bridge;
pub mod config;
pub mod propagation;
pub mod spans;
pub mod work;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::Layer;

pub use config::TelemetryConfig;

/// The instrumentation scope of everything the daemon emits.
pub const SCOPE: &str = "cowork-sync";

/// Errors setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An OTLP exporter could not be built (a bad endpoint or header).
    #[error("telemetry: cannot build the OTLP {signal} exporter: {message}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// Why (never a header value).
        message: String,
    },
    /// A thread could not be started.
    #[error("telemetry: cannot start the {0} thread")]
    Thread(&'static str),
}

/// What the exporters have done, for `status`, `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct Health {
    /// Where telemetry goes (scheme, host and port only).
    pub endpoint: String,
    spans_dropped: AtomicU64,
    span_export_failures: AtomicU64,
    audit_cursor: AtomicU64,
    audit_head: AtomicU64,
    audit_failures_in_row: AtomicU64,
    audit_exported: AtomicU64,
    audit_skipped: AtomicU64,
    last_error: Mutex<Option<String>>,
    metrics: OnceLock<Arc<crate::metrics::Metrics>>,
}

/// A point-in-time copy of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthReport {
    /// Where telemetry goes (scheme, host and port).
    pub endpoint: String,
    /// The last audit sequence number the collector acknowledged.
    pub audit_cursor: u64,
    /// The newest audit sequence number.
    pub audit_head: u64,
    /// Audit entries not yet acknowledged by the collector.
    pub audit_lag: u64,
    /// Audit entries exported since start.
    pub audit_exported: u64,
    /// Audit entries pruned before they could be exported (since start).
    pub audit_skipped: u64,
    /// Failed audit exports in a row.
    pub audit_failures_in_row: u64,
    /// Spans dropped because the export queue was full (since start).
    pub spans_dropped: u64,
    /// Span export requests that failed (since start).
    pub span_export_failures: u64,
    /// The last export error, cleared by the next successful audit export.
    pub last_error: Option<String>,
}

impl Health {
    fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            ..Self::default()
        }
    }

    /// Mirrors the counters into the Prometheus registry from now on.
    pub fn attach_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    fn metric_inc(&self, name: &str, help: &str, by: f64) {
        if let Some(m) = self.metrics.get() {
            m.inc(name, help, &[], by);
        }
    }

    pub(crate) fn span_dropped(&self) {
        self.spans_dropped.fetch_add(1, Ordering::Relaxed);
        self.metric_inc(
            "cowork_sync_telemetry_spans_dropped_total",
            "Finished spans dropped because the OTLP export queue was full.",
            1.0,
        );
    }

    pub(crate) fn span_export_failed(&self, error: String) {
        self.span_export_failures.fetch_add(1, Ordering::Relaxed);
        self.metric_inc(
            "cowork_sync_telemetry_export_failures_total",
            "OTLP export requests that failed.",
            1.0,
        );
        *self.last_error.lock() = Some(format!("spans: {error}"));
    }

    pub(crate) fn audit_progress(&self, cursor: u64, head: u64, exported: u64) {
        self.audit_cursor.store(cursor, Ordering::Relaxed);
        self.audit_head.store(head.max(cursor), Ordering::Relaxed);
        if exported > 0 {
            self.audit_exported.fetch_add(exported, Ordering::Relaxed);
            self.audit_failures_in_row.store(0, Ordering::Relaxed);
            *self.last_error.lock() = None;
        }
        if let Some(m) = self.metrics.get() {
            m.set(
                "cowork_sync_telemetry_audit_lag",
                "Audit entries the OTLP collector has not acknowledged yet.",
                &[],
                head.saturating_sub(cursor) as f64,
            );
            m.set(
                "cowork_sync_telemetry_audit_cursor",
                "The last audit sequence number the OTLP collector acknowledged.",
                &[],
                cursor as f64,
            );
            if exported > 0 {
                m.inc(
                    "cowork_sync_telemetry_audit_records_total",
                    "Audit entries exported as OTLP log records.",
                    &[],
                    exported as f64,
                );
            }
        }
    }

    pub(crate) fn audit_skipped(&self, count: u64) {
        self.audit_skipped.fetch_add(count, Ordering::Relaxed);
        self.metric_inc(
            "cowork_sync_telemetry_audit_skipped_total",
            "Audit entries pruned by retention before they could be exported.",
            count as f64,
        );
    }

    pub(crate) fn audit_failed(&self, error: String) {
        self.audit_failures_in_row.fetch_add(1, Ordering::Relaxed);
        self.metric_inc(
            "cowork_sync_telemetry_export_failures_total",
            "OTLP export requests that failed.",
            1.0,
        );
        *self.last_error.lock() = Some(format!("audit logs: {error}"));
    }

    /// A copy of the figures.
    pub fn report(&self) -> HealthReport {
        let cursor = self.audit_cursor.load(Ordering::Relaxed);
        let head = self.audit_head.load(Ordering::Relaxed).max(cursor);
        HealthReport {
            endpoint: self.endpoint.clone(),
            audit_cursor: cursor,
            audit_head: head,
            audit_lag: head - cursor,
            audit_exported: self.audit_exported.load(Ordering::Relaxed),
            audit_skipped: self.audit_skipped.load(Ordering::Relaxed),
            audit_failures_in_row: self.audit_failures_in_row.load(Ordering::Relaxed),
            spans_dropped: self.spans_dropped.load(Ordering::Relaxed),
            span_export_failures: self.span_export_failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}

/// The collector's address without path, query or credentials (for status and logs).
pub fn display_endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

/// A random version-4 UUID: the default `service.instance.id` of one process.
fn random_instance_id() -> String {
    let mut bytes = [0u8; 16];
    let rng = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&rng, &mut bytes).is_err() {
        // Unique enough for one host: the pid (random bytes are the rule).
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::auth::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The running telemetry pipeline.
pub struct Telemetry {
    config: TelemetryConfig,
    resource: Resource,
    tracer_provider: SdkTracerProvider,
    tracer: SdkTracer,
    meter_provider: SdkMeterProvider,
    health: Arc<Health>,
    audit: Mutex<Option<audit_logs::AuditExport>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("endpoint", &self.health.endpoint)
            .finish_non_exhaustive()
    }
}

static GLOBAL: OnceLock<Arc<Telemetry>> = OnceLock::new();

/// The process's pipeline, once [`Telemetry::install`] ran.
pub fn global() -> Option<&'static Arc<Telemetry>> {
    GLOBAL.get()
}

fn headers_of(config: &TelemetryConfig) -> std::collections::HashMap<String, String> {
    config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect()
}

fn exporter_error(
    signal: &'static str,
) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> TelemetryError {
    move |e| TelemetryError::Exporter {
        signal,
        message: e.to_string(),
    }
}

/// A log exporter for the audit records (built per signal, like the others).
pub(crate) fn log_exporter(
    config: &TelemetryConfig,
    resource: &Resource,
) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    use opentelemetry_sdk::logs::LogExporter as _;
    let mut exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(config.signal_url("logs").unwrap_or_default())
        .with_timeout(config.timeout)
        .with_headers(headers_of(config))
        .build()
        .map_err(exporter_error("logs"))?;
    exporter.set_resource(resource);
    Ok(exporter)
}

impl Telemetry {
    /// Builds the pipeline for `config`; `None` when telemetry is off.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Arc<Self>>, TelemetryError> {
        let Some(endpoint) = config.shown_endpoint() else {
            return Ok(None);
        };
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new(
                    "service.instance.id",
                    config
                        .service_instance_id
                        .clone()
                        .unwrap_or_else(random_instance_id),
                ),
            ])
            .build();
        let health = Arc::new(Health::new(display_endpoint(endpoint)));

        let span_exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.signal_url("traces").unwrap_or_default())
            .with_timeout(config.timeout)
            .with_headers(headers_of(config))
            .build()
            .map_err(exporter_error("traces"))?;
        let processor =
            spans::QueuedSpans::start(span_exporter, &resource, config.span_queue, health.clone())?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_processor(processor)
            .build();
        let tracer = tracer_provider.tracer(SCOPE);

        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.signal_url("metrics").unwrap_or_default())
            .with_timeout(config.timeout)
            .with_headers(headers_of(config))
            .build()
            .map_err(exporter_error("metrics"))?;
        let reader = PeriodicReader::builder(metric_exporter)
            .with_interval(config.metrics_interval)
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(reader)
            .build();
        Ok(Some(Arc::new(Self {
            config: config.clone(),
            resource,
            tracer_provider,
            tracer,
            meter_provider,
            health,
            audit: Mutex::new(None),
        })))
    }

    /// Makes this the process's pipeline ([`global`]) and turns on trace context
    /// propagation. Once per process; a second call changes nothing.
    pub fn install(self: &Arc<Self>) {
        if GLOBAL.set(self.clone()).is_ok() {
            propagation::enable();
        }
    }

    /// The tracing layer that turns our spans (INFO and above, whatever the log
    /// level) into OpenTelemetry spans. Events are left to the log output, except
    /// warnings and errors (kept as span events).
    #[allow(clippy::type_complexity)]
    pub fn layer<S>(
        &self,
    ) -> Filtered<
        tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>,
        tracing_subscriber::filter::FilterFn<fn(&tracing::Metadata<'_>) -> bool>,
        S,
    >
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let keep: fn(&tracing::Metadata<'_>) -> bool = |m| {
            if m.is_span() {
                m.target().starts_with("cowork_sync") && *m.level() <= tracing::Level::INFO
            } else {
                *m.level() <= tracing::Level::WARN
            }
        };
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(keep))
    }

    /// What the exporters have done.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// Mirrors `metrics` into OTel instruments and the exporters' own counters into
    /// `metrics`.
    pub fn attach_metrics(&self, metrics: &Arc<crate::metrics::Metrics>) {
        use opentelemetry::metrics::MeterProvider as _;
        self.health.attach_metrics(metrics.clone());
        metrics.set_sink(Arc::new(bridge::OtelSink::new(
            self.meter_provider.meter(SCOPE),
        )));
    }

    /// Starts exporting the audit trail of `store` from its cursor (once).
    pub fn start_audit_export(
        &self,
        store: Arc<dyn crate::store::Store>,
        clock: crate::clock::SharedClock,
    ) -> Result<(), TelemetryError> {
        if !self.config.audit_logs {
            return Ok(());
        }
        let mut slot = self.audit.lock();
        if slot.is_some() {
            return Ok(());
        }
        let exporter = log_exporter(&self.config, &self.resource)?;
        *slot = Some(audit_logs::AuditExport::start(
            store,
            exporter,
            &self.config,
            self.health.clone(),
            clock,
        )?);
        Ok(())
    }

    /// Stops the audit export (after one last attempt within the export timeout) and
    /// flushes spans and metrics. Call before the store closes.
    pub fn stop_audit_export(&self) {
        if let Some(export) = self.audit.lock().take() {
            export.stop();
        }
    }

    /// Flushes and stops every exporter (bounded by the export timeout).
    pub fn shutdown(&self) {
        self.stop_audit_export();
        let timeout = self.config.timeout.max(Duration::from_secs(1));
        if let Err(e) = self.tracer_provider.shutdown_with_timeout(timeout) {
            tracing::debug!(error = %e, "telemetry: span shutdown");
        }
        if let Err(e) = self.meter_provider.shutdown_with_timeout(timeout) {
            tracing::debug!(error = %e, "telemetry: metric shutdown");
        }
    }
}

/// Refreshes the gauges that are otherwise read at scrape time, every `every`, so
/// OTLP sees them without a Prometheus scrape.
pub fn spawn_gauge_refresh(status: Arc<crate::status::Status>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let status = status.clone();
            let _ = tokio::task::spawn_blocking(move || status.refresh_gauges()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_shown_has_no_credentials_path_or_query() {
        assert_eq!(
            display_endpoint("https://user:pw@otel.example.com:4318/base?token=x"),
            "https://otel.example.com:4318"
        );
        assert_eq!(
            display_endpoint("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318"
        );
    }

    #[test]
    fn instance_ids_are_random_v4_uuids() {
        let a = random_instance_id();
        let b = random_instance_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn lag_is_head_minus_cursor_and_a_success_clears_the_error() {
        let h = Health::new("http://x".into());
        h.audit_progress(0, 10, 0);
        h.audit_failed("connection refused".into());
        let r = h.report();
        assert_eq!((r.audit_lag, r.audit_failures_in_row), (10, 1));
        assert!(r.last_error.is_some());
        h.audit_progress(10, 10, 10);
        let r = h.report();
        assert_eq!(
            (r.audit_lag, r.audit_exported, r.audit_failures_in_row),
            (0, 10, 0)
        );
        assert_eq!(r.last_error, None);
    }
}
