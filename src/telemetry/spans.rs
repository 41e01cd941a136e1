//! The span processor: finished spans go into a bounded queue and one thread
//! exports them in batches. A full queue drops the span and counts it
//! (`cowork_sync_telemetry_spans_dropped_total`): a slow or absent collector never
//! holds up the request that ended the span.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;

use super::{Health, TelemetryError};

/// Spans per export request at most.
const BATCH: usize = 512;
/// How long a finished span waits for companions before it is exported.
const DELAY: Duration = Duration::from_secs(1);

enum Msg {
    Span(Box<SpanData>),
    Flush(SyncSender<()>),
    Stop(SyncSender<()>),
}

/// A bounded, dropping, batching span processor.
#[derive(Debug)]
pub struct QueuedSpans {
    tx: SyncSender<Msg>,
    health: Arc<Health>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl QueuedSpans {
    /// Starts the export thread for `exporter`, with room for `queue` spans.
    pub fn start<E: SpanExporter + 'static>(
        mut exporter: E,
        resource: &Resource,
        queue: usize,
        health: Arc<Health>,
    ) -> Result<Self, TelemetryError> {
        exporter.set_resource(resource);
        let (tx, rx) = sync_channel(queue);
        let h = health.clone();
        let worker = std::thread::Builder::new()
            .name("otel-spans".into())
            .spawn(move || run(exporter, rx, h))
            .map_err(|_| TelemetryError::Thread("span export"))?;
        Ok(Self {
            tx,
            health,
            worker: Mutex::new(Some(worker)),
        })
    }

    fn control(
        &self,
        make: impl FnOnce(SyncSender<()>) -> Msg,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (ack, done) = sync_channel(1);
        self.tx
            .send(make(ack))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        done.recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, health: &Health) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    if let Err(e) = futures_executor::block_on(exporter.export(spans)) {
        health.span_export_failed(e.to_string());
    }
}

fn run<E: SpanExporter>(mut exporter: E, rx: Receiver<Msg>, health: Arc<Health>) {
    let mut batch: Vec<SpanData> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Span(span)) => {
                batch.push(*span);
                if batch.len() >= BATCH {
                    export(&exporter, &mut batch, &health);
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + DELAY);
                }
            }
            Ok(Msg::Flush(ack)) => {
                export(&exporter, &mut batch, &health);
                deadline = None;
                let _ = ack.send(());
            }
            Ok(Msg::Stop(ack)) => {
                export(&exporter, &mut batch, &health);
                let _ = exporter.shutdown();
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                export(&exporter, &mut batch, &health);
                deadline = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                export(&exporter, &mut batch, &health);
                let _ = exporter.shutdown();
                return;
            }
        }
    }
}

impl SpanProcessor for QueuedSpans {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.tx.try_send(Msg::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.health.span_dropped()
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Msg::Flush, Duration::from_secs(10))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let Some(worker) = self.worker.lock().take() else {
            return Ok(());
        };
        let result = self.control(Msg::Stop, timeout);
        if result.is_ok() {
            let _ = worker.join();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An exporter that blocks until released, then counts what it got.
    #[derive(Debug, Clone)]
    struct Gate {
        open: Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>,
        got: Arc<AtomicUsize>,
    }

    impl SpanExporter for Gate {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock();
            while !*open {
                cv.wait(&mut open);
            }
            self.got.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn span(n: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::from(n) + 1),
                SpanId::from(n + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "t".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn a_stuck_collector_costs_dropped_spans_not_a_blocked_caller() {
        let gate = Gate {
            open: Arc::new((parking_lot::Mutex::new(false), parking_lot::Condvar::new())),
            got: Arc::new(AtomicUsize::new(0)),
        };
        let health = Arc::new(Health::new("http://x".into()));
        let p = QueuedSpans::start(
            gate.clone(),
            &Resource::builder_empty().build(),
            16,
            health.clone(),
        )
        .unwrap();
        // The exporter holds the first batch; the queue takes 16 more, the rest drop.
        for n in 0..600 {
            p.on_end(span(n));
        }
        assert!(health.report().spans_dropped > 0);
        let kept = 600 - health.report().spans_dropped as usize;
        {
            let (lock, cv) = &*gate.open;
            *lock.lock() = true;
            cv.notify_all();
        }
        p.shutdown_with_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(gate.got.load(Ordering::SeqCst), kept);
    }
}
