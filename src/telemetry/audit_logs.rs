//! Every audit entry as an OTLP log record, at least once, in sequence order.
//!
//! A cursor in the store (`telemetry/audit_cursor` in the meta table) names the last
//! sequence number the collector acknowledged. One thread reads the entries after
//! it, exports them in one request, and moves the cursor only when the collector
//! answered 2xx. A collector outage holds the cursor (retries back off up to
//! `retry_max`); a restart resumes from it. Nothing is dropped: the audit trail is
//! the queue. Records may repeat after a crash between an export and the cursor's
//! write; `cowork_sync.audit.seq` tells a SIEM which it has.
//!
//! Records carry ids and names of actions, never emails or names: an actor or
//! target that looks like an email is replaced by a pseudonym (`sha256:` and 16 hex
//! digits of its digest). Held removals, refused plans, drift reports and pooled
//! budgets' warnings, spends, caps and clears are also named as events (`event_name`).
//!
//! Entries pruned by retention before the export reached them cannot be sent: the
//! export skips them with one warning (a log line, the metric
//! `cowork_sync_telemetry_audit_skipped_total`, and a `cowork_sync.audit_gap` record
//! naming the missing sequence numbers).

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use serde_json::Value;

use super::{Health, TelemetryConfig, TelemetryError, SCOPE};
use crate::audit::AuditEntry;
use crate::store::codec::{seq_from_key, tx_put_u64};
use crate::store::{transaction, Store, StoreError, Table};

/// Where the cursor lives in [`Table::Meta`].
pub const CURSOR_KEY: &[u8] = b"telemetry/audit_cursor";

/// How often the thread looks for new entries while caught up.
const POLL: Duration = Duration::from_millis(250);
/// The first pause after a failed export.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// The last sequence number the collector acknowledged (0: none yet).
pub fn cursor(store: &dyn Store) -> Result<u64, StoreError> {
    match store.get(Table::Meta, CURSOR_KEY)? {
        Some(bytes) => seq_from_key(&bytes, Table::Meta),
        None => Ok(0),
    }
}

/// Moves the cursor to `seq`.
pub fn set_cursor(store: &dyn Store, seq: u64) -> Result<(), StoreError> {
    transaction::<_, StoreError>(store, |txn| {
        tx_put_u64(txn, Table::Meta, CURSOR_KEY, seq)?;
        Ok(())
    })
}

/// A pseudonym for anything that looks like personal data; ids pass unchanged.
pub fn private(value: &str) -> String {
    if value.contains('@') || value.contains(' ') {
        let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
        let hex = crate::auth::hex(digest.as_ref());
        format!("sha256:{}", &hex[..16])
    } else {
        value.to_string()
    }
}

/// What the entry tells about how the action ended.
pub fn outcome(entry: &AuditEntry) -> String {
    if let Some(o) = entry.details.get("outcome").and_then(Value::as_str) {
        return o.to_string();
    }
    let a = entry.action.as_str();
    if a.ends_with(".failed") || a.ends_with(".failure") || a.starts_with("auth.failure") {
        "failure".into()
    } else if a.ends_with(".held") || a.ends_with(".refused") {
        "held".into()
    } else {
        "success".into()
    }
}

/// The event name: the three the issue names get their own, the rest are audit records.
pub fn event_name(entry: &AuditEntry) -> &'static str {
    match entry.action.as_str() {
        "reconcile.held" => "cowork_sync.removals_held",
        "reconcile.drift" => "cowork_sync.drift",
        "reconcile.run" if outcome(entry) == "refused" => "cowork_sync.plan_refused",
        "pool.warned" => "cowork_sync.pool_warned",
        "pool.spent" => "cowork_sync.pool_spent",
        "pool.capped" => "cowork_sync.pool_capped",
        "pool.cleared" => "cowork_sync.pool_cleared",
        _ => "cowork_sync.audit",
    }
}

fn time_of(at: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// Fills `record` from `entry`: body = the action; attributes = the entry's
/// position in the chain, who, on what, how it ended, and its numeric facts.
pub fn fill(record: &mut SdkLogRecord, entry: &AuditEntry) {
    record.set_event_name(event_name(entry));
    if let Some(t) = time_of(&entry.at) {
        record.set_timestamp(t);
    }
    let outcome = outcome(entry);
    let (severity, text) = match outcome.as_str() {
        "failure" | "failed" => (Severity::Warn, "WARN"),
        _ => (Severity::Info, "INFO"),
    };
    record.set_severity_number(severity);
    record.set_severity_text(text);
    record.set_body(AnyValue::String(entry.action.clone().into()));
    record.add_attribute("cowork_sync.audit.seq", entry.seq as i64);
    record.add_attribute("cowork_sync.audit.hash", entry.hash.clone());
    record.add_attribute("cowork_sync.audit.prev_hash", entry.prev_hash.clone());
    record.add_attribute("cowork_sync.audit.action", entry.action.clone());
    record.add_attribute("cowork_sync.audit.actor", private(&entry.actor));
    if let Some(target) = &entry.target {
        record.add_attribute("cowork_sync.audit.target", private(target));
    }
    record.add_attribute("cowork_sync.audit.outcome", outcome);
    if let Some(details) = entry.details.as_object() {
        for (k, v) in details {
            let key = format!("cowork_sync.audit.detail.{k}");
            match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => {
                    record.add_attribute(key, n.as_i64().unwrap_or(i64::MAX));
                }
                Value::Number(n) => record.add_attribute(key, n.as_f64().unwrap_or(0.0)),
                Value::Bool(b) => record.add_attribute(key, *b),
                // Ids and words the daemon chose, never values from the IdP.
                Value::String(s) if matches!(k.as_str(), "request_id" | "trigger") => {
                    record.add_attribute(key, private(s));
                }
                _ => {}
            }
        }
    }
}

/// Audit entries that were pruned (retention) before the export reached them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first missing sequence number.
    pub first: u64,
    /// The last missing sequence number.
    pub last: u64,
}

impl Gap {
    /// How many entries are missing.
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// The warning record that stands for the missing entries (event
    /// `cowork_sync.audit_gap`), so the SIEM sees the gap where it is.
    pub fn fill(&self, record: &mut SdkLogRecord) {
        record.set_event_name("cowork_sync.audit_gap");
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(AnyValue::String("audit.gap".into()));
        record.add_attribute("cowork_sync.audit.gap.first_seq", self.first as i64);
        record.add_attribute("cowork_sync.audit.gap.last_seq", self.last as i64);
        record.add_attribute("cowork_sync.audit.gap.count", self.count() as i64);
    }
}

/// The entries between the cursor and the first entry still stored, if any.
pub fn gap_before(cursor: u64, entries: &[AuditEntry]) -> Option<Gap> {
    let first = entries.first()?.seq;
    (first > cursor.saturating_add(1)).then(|| Gap {
        first: cursor + 1,
        last: first - 1,
    })
}

/// The running export thread.
pub struct AuditExport {
    stop: Sender<()>,
    worker: Option<std::thread::JoinHandle<()>>,
}

struct Worker<E: LogExporter> {
    store: Arc<dyn Store>,
    exporter: E,
    logger: SdkLogger,
    scope: InstrumentationScope,
    batch: usize,
    retry_max: Duration,
    health: Arc<Health>,
    clock: crate::clock::SharedClock,
}

impl<E: LogExporter> Worker<E> {
    /// Exports the next batch. `Ok(n)`: n entries acknowledged (0: caught up).
    fn pass(&self) -> Result<usize, String> {
        let from = cursor(self.store.as_ref()).map_err(|e| e.to_string())?;
        let head = crate::audit::checkpoint::store_head(self.store.as_ref())
            .map_err(|e| e.to_string())?
            .map_or(0, |h| h.seq);
        let entries = crate::audit::list(self.store.as_ref(), None, from, self.batch)
            .map_err(|e| e.to_string())?;
        // The lag counts what waits even while the collector refuses it.
        self.health.audit_progress(from, head, 0);
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(0);
        };
        // The OTLP encoder requires an observed time (the SDK's `emit` would set it).
        let observed = SystemTime::from(self.clock.now());
        let gap = gap_before(from, &entries);
        let mut records: Vec<SdkLogRecord> = Vec::with_capacity(entries.len() + 1);
        if let Some(gap) = gap {
            let mut r = self.logger.create_log_record();
            gap.fill(&mut r);
            r.set_observed_timestamp(observed);
            records.push(r);
        }
        for e in &entries {
            let mut r = self.logger.create_log_record();
            fill(&mut r, e);
            r.set_observed_timestamp(observed);
            records.push(r);
        }
        let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &self.scope)).collect();
        futures_executor::block_on(self.exporter.export(LogBatch::new(&pairs)))
            .map_err(|e| e.to_string())?;
        set_cursor(self.store.as_ref(), last).map_err(|e| e.to_string())?;
        if let Some(gap) = gap {
            // Once: the cursor is past the gap now.
            tracing::warn!(
                first_seq = gap.first,
                last_seq = gap.last,
                skipped = gap.count(),
                "telemetry: audit entries were pruned before they were exported; the collector's copy has a gap (the trail of record still verifies from its checkpoint)"
            );
            self.health.audit_skipped(gap.count());
        }
        self.health.audit_progress(last, head, entries.len() as u64);
        Ok(entries.len())
    }

    /// [`Self::pass`], with a panic in it (the exporter is outside code) reported as a
    /// failed pass: the cursor has not moved, so the next pass retries the batch and
    /// the thread keeps exporting.
    fn guarded_pass(&self) -> Result<usize, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pass()))
            .unwrap_or_else(|_| Err("the export pass panicked; the batch is retried".into()))
    }

    fn run(self, stop: Receiver<()>) {
        let mut retry: Option<Duration> = None;
        loop {
            let pause = match self.guarded_pass() {
                Ok(n) if n >= self.batch => {
                    retry = None;
                    Duration::ZERO
                }
                Ok(_) => {
                    retry = None;
                    POLL
                }
                Err(e) => {
                    let next = retry.map_or(FIRST_RETRY, |r| (r * 2).min(self.retry_max));
                    if retry.is_none() {
                        tracing::warn!(
                            error = %e,
                            "telemetry: exporting audit records failed; they stay queued behind the cursor"
                        );
                    }
                    self.health.audit_failed(e);
                    retry = Some(next);
                    next
                }
            };
            match stop.recv_timeout(pause) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // One last pass for what the shutdown itself audited, unless the collector
        // is failing (then the cursor keeps it for the next start).
        if retry.is_none() {
            let _ = self.guarded_pass();
        }
        let _ = self.exporter.shutdown();
    }
}

impl AuditExport {
    /// Starts exporting `store`'s audit trail with `exporter`.
    pub fn start<E: LogExporter + 'static>(
        store: Arc<dyn Store>,
        exporter: E,
        config: &TelemetryConfig,
        health: Arc<Health>,
        clock: crate::clock::SharedClock,
    ) -> Result<Self, TelemetryError> {
        let provider = SdkLoggerProvider::builder().build();
        let worker = Worker {
            store,
            exporter,
            logger: provider.logger(SCOPE),
            scope: InstrumentationScope::builder(SCOPE)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            batch: config.audit_batch,
            retry_max: config.retry_max,
            health,
            clock,
        };
        let (stop, stop_rx) = channel();
        let handle = std::thread::Builder::new()
            .name("otel-audit".into())
            .spawn(move || worker.run(stop_rx))
            .map_err(|_| TelemetryError::Thread("audit export"))?;
        Ok(Self {
            stop,
            worker: Some(handle),
        })
    }

    /// Stops the thread after its last pass.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, actor: &str, target: Option<&str>, details: Value) -> AuditEntry {
        AuditEntry {
            seq: 7,
            at: "2026-03-01T10:00:00.000Z".into(),
            actor: actor.into(),
            action: action.into(),
            target: target.map(Into::into),
            details,
            prev_hash: "p".into(),
            hash: "h".into(),
        }
    }

    fn attributes(e: &AuditEntry) -> Vec<(String, String)> {
        let provider = SdkLoggerProvider::builder().build();
        let mut r = provider.logger("t").create_log_record();
        fill(&mut r, e);
        r.attributes_iter()
            .map(|(k, v)| (k.to_string(), format!("{v:?}")))
            .collect()
    }

    #[test]
    fn records_name_the_entry_and_never_an_email() {
        let e = entry(
            "scim.user.create",
            "ada@example.com",
            Some("0190-u1"),
            json!({"attributes": ["userName", "emails"], "request_id": "req-1", "count": 2,
                   "userName": "ada@example.com"}),
        );
        let attrs = attributes(&e);
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        assert!(get("cowork_sync.audit.seq").unwrap().contains('7'));
        assert!(get("cowork_sync.audit.hash").unwrap().contains('h'));
        assert!(get("cowork_sync.audit.target").unwrap().contains("0190-u1"));
        assert!(get("cowork_sync.audit.actor").unwrap().contains("sha256:"));
        assert!(get("cowork_sync.audit.outcome")
            .unwrap()
            .contains("success"));
        assert!(get("cowork_sync.audit.detail.count").is_some());
        assert!(get("cowork_sync.audit.detail.attributes").is_none());
        for (k, v) in &attrs {
            assert!(!v.contains("example.com"), "{k} = {v}");
        }
    }

    #[test]
    fn held_removals_refused_plans_and_drift_are_named_events() {
        assert_eq!(
            event_name(&entry("reconcile.held", "reconciler", None, json!({}))),
            "cowork_sync.removals_held"
        );
        assert_eq!(
            event_name(&entry("reconcile.drift", "reconciler", None, json!({}))),
            "cowork_sync.drift"
        );
        let refused = entry(
            "reconcile.run",
            "reconciler",
            None,
            json!({"outcome": "refused"}),
        );
        assert_eq!(event_name(&refused), "cowork_sync.plan_refused");
        assert_eq!(
            event_name(&entry("pool.warned", "insights", None, json!({}))),
            "cowork_sync.pool_warned"
        );
        assert_eq!(
            event_name(&entry("pool.cleared", "insights", None, json!({}))),
            "cowork_sync.pool_cleared"
        );
        assert_eq!(outcome(&refused), "refused");
        assert_eq!(
            event_name(&entry(
                "reconcile.run",
                "reconciler",
                None,
                json!({"outcome": "ok"})
            )),
            "cowork_sync.audit"
        );
        assert_eq!(
            outcome(&entry("auth.failure", "anonymous", None, json!({}))),
            "failure"
        );
    }

    /// One exported record: its event name and `cowork_sync.audit.seq`.
    type Exported = (String, Option<i64>);

    /// Collects each exported record.
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<parking_lot::Mutex<Vec<Exported>>>);

    impl LogExporter for Collect {
        async fn export(&self, batch: LogBatch<'_>) -> opentelemetry_sdk::error::OTelSdkResult {
            let mut got = self.0.lock();
            for (r, _) in batch.iter() {
                let seq = r.attributes_iter().find_map(|(k, v)| match v {
                    AnyValue::Int(i) if k.as_str() == "cowork_sync.audit.seq" => Some(*i),
                    _ => None,
                });
                got.push((r.event_name().unwrap_or("").to_string(), seq));
            }
            Ok(())
        }
    }

    fn worker(store: Arc<dyn Store>, exporter: Collect) -> (Worker<Collect>, Arc<Health>) {
        let health = Arc::new(Health::new("http://x".into()));
        let provider = SdkLoggerProvider::builder().build();
        let clock = crate::clock::ManualClock::at_epoch_2026();
        let w = Worker {
            store,
            exporter,
            logger: provider.logger(SCOPE),
            scope: InstrumentationScope::builder(SCOPE).build(),
            batch: 100,
            retry_max: Duration::from_secs(1),
            health: health.clone(),
            clock: Arc::new(clock),
        };
        (w, health)
    }

    fn write(store: &dyn Store, at: chrono::DateTime<chrono::Utc>, n: usize) {
        for i in 0..n {
            transaction::<_, StoreError>(store, |txn| {
                crate::audit::append(
                    txn,
                    crate::audit::AuditDraft::new(
                        "okta",
                        "scim.user.create",
                        Some(&format!("u{i}")),
                    ),
                    at + chrono::Duration::minutes(i as i64),
                )
                .map_err(crate::store::TxFail::Store)?;
                Ok(())
            })
            .unwrap();
        }
    }

    #[test]
    fn entries_pruned_before_export_are_skipped_with_one_gap_record() {
        use crate::clock::Clock as _;
        let store: Arc<dyn Store> = Arc::new(crate::store::memory::MemoryStore::new());
        let start = crate::clock::ManualClock::at_epoch_2026().now();
        write(store.as_ref(), start, 6);
        // Retention removes 1..=3 before telemetry ever ran; the prune itself is seq 7.
        let removed = crate::audit::prune(
            store.as_ref(),
            start + chrono::Duration::minutes(3),
            start + chrono::Duration::hours(1),
            100,
        )
        .unwrap();
        assert_eq!(removed, 3);
        let got = Collect::default();
        let (w, health) = worker(store.clone(), got.clone());
        assert_eq!(w.pass().unwrap(), 4);
        let records = got.0.lock().clone();
        assert_eq!(records[0], ("cowork_sync.audit_gap".to_string(), None));
        let seqs: Vec<Option<i64>> = records[1..].iter().map(|r| r.1).collect();
        assert_eq!(seqs, vec![Some(4), Some(5), Some(6), Some(7)]);
        assert_eq!(health.report().audit_skipped, 3);
        assert_eq!(cursor(store.as_ref()).unwrap(), 7);
        // Nothing new, no second warning; new entries follow without a gap.
        assert_eq!(w.pass().unwrap(), 0);
        write(store.as_ref(), start + chrono::Duration::hours(2), 1);
        assert_eq!(w.pass().unwrap(), 1);
        let records = got.0.lock().clone();
        assert_eq!(records.len(), 6);
        assert_eq!(records[5].1, Some(8));
        assert_eq!(health.report().audit_skipped, 3);
    }

    /// Panics on its first export, then collects.
    #[derive(Debug, Default)]
    struct PanicsOnce(std::sync::atomic::AtomicBool, Collect);

    impl LogExporter for PanicsOnce {
        async fn export(&self, batch: LogBatch<'_>) -> opentelemetry_sdk::error::OTelSdkResult {
            if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("exporter bug");
            }
            self.1.export(batch).await
        }
    }

    #[test]
    fn a_panicking_exporter_fails_the_pass_and_the_next_pass_exports_the_batch() {
        use crate::clock::Clock as _;
        let store: Arc<dyn Store> = Arc::new(crate::store::memory::MemoryStore::new());
        write(
            store.as_ref(),
            crate::clock::ManualClock::at_epoch_2026().now(),
            2,
        );
        let (w, _) = worker(store.clone(), Collect::default());
        let got = Collect::default();
        let w = Worker {
            exporter: PanicsOnce(Default::default(), got.clone()),
            store: w.store,
            logger: w.logger,
            scope: w.scope,
            batch: w.batch,
            retry_max: w.retry_max,
            health: w.health,
            clock: w.clock,
        };
        let e = w.guarded_pass().unwrap_err();
        assert!(e.contains("panicked"), "{e}");
        assert_eq!(cursor(store.as_ref()).unwrap(), 0, "nothing acknowledged");
        assert_eq!(w.guarded_pass().unwrap(), 2);
        assert_eq!(got.0.lock().len(), 2);
        assert_eq!(cursor(store.as_ref()).unwrap(), 2);
    }

    #[test]
    fn no_gap_when_the_next_entry_follows_the_cursor() {
        let e = |seq| AuditEntry {
            seq,
            ..entry("a", "b", None, json!({}))
        };
        assert_eq!(gap_before(0, &[e(1)]), None);
        assert_eq!(gap_before(5, &[e(6), e(7)]), None);
        assert_eq!(gap_before(5, &[]), None);
        assert_eq!(gap_before(5, &[e(9)]), Some(Gap { first: 6, last: 8 }));
    }

    #[test]
    fn the_cursor_survives_in_the_store() {
        let store = crate::store::memory::MemoryStore::new();
        assert_eq!(cursor(&store).unwrap(), 0);
        set_cursor(&store, 42).unwrap();
        assert_eq!(cursor(&store).unwrap(), 42);
    }
}
