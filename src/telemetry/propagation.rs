//! W3C Trace Context across process and queue boundaries: `traceparent` (and
//! `tracestate`) taken from the IdP's request, kept on outbox entries, and sent on
//! each downstream call.
//!
//! Every function is a no-op (one atomic load) until telemetry is installed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and outbox field) carrying the trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor-specific companion header.
pub const TRACESTATE: &str = "tracestate";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns propagation on (done by [`super::Telemetry::install`]).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are exported (and context is worth propagating).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The two trace context fields of a request or queue entry.
#[derive(Default)]
struct Carried {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Carried {
    fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            traceparent: header(TRACEPARENT).map(str::to_string),
            tracestate: header(TRACESTATE).map(str::to_string),
        }
    }
}

impl Extractor for Carried {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

/// Makes `span` a child of the trace context that `header` reads from a request
/// (`traceparent`, `tracestate`), when there is a valid one.
pub fn accept_parent<'a>(span: &tracing::Span, header: impl Fn(&str) -> Option<&'a str>) {
    if !enabled() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Carried::read(header));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The headers that carry `span`'s context to the next hop (empty when off).
pub fn headers_of(span: &tracing::Span) -> Vec<(&'static str, String)> {
    if !enabled() {
        return Vec::new();
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut fields = Fields::default();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    let mut out = Vec::new();
    for name in [TRACEPARENT, TRACESTATE] {
        if let Some(v) = fields.0.remove(name).filter(|v| !v.is_empty()) {
            out.push((name, v));
        }
    }
    out
}

/// Records `span`'s OpenTelemetry ids in its `trace_id` and `span_id` fields (declared
/// `Empty` where the span is made), so every text or JSON log line inside it names the
/// trace and span a collector holds. Call after the span's parent is set: it starts
/// the OpenTelemetry span.
pub fn record_ids(span: &tracing::Span) {
    if !enabled() {
        return;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
}

/// The current span's `traceparent`, to keep with queued work.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    headers_of(&tracing::Span::current())
        .into_iter()
        .find(|(k, _)| *k == TRACEPARENT)
        .map(|(_, v)| v)
}

thread_local! {
    static QUEUED_AS: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `traceparent` standing for the current context of the work it
/// queues (a combined write commits other requests' creates on the leader's thread).
pub fn queued_as<T>(traceparent: Option<String>, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let before = QUEUED_AS.with(|q| q.replace(Some(traceparent)));
    let out = f();
    QUEUED_AS.with(|q| *q.borrow_mut() = before);
    out
}

/// The trace context to keep with work queued now: the one [`queued_as`] set, else
/// the current span's.
pub fn traceparent_for_queue() -> Option<String> {
    if !enabled() {
        return None;
    }
    QUEUED_AS
        .with(|q| q.borrow().clone())
        .unwrap_or_else(current_traceparent)
}

/// Continues the trace of queued work: `span` becomes a child of the first valid
/// `traceparent` and links to the others (one drain may serve several requests).
pub fn continue_from<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    if !enabled() {
        return;
    }
    let propagator = TraceContextPropagator::new();
    let mut parented = false;
    for tp in traceparents {
        let cx = propagator.extract(&Carried {
            traceparent: Some(tp.to_string()),
            tracestate: None,
        });
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            continue;
        }
        if parented {
            span.add_link(sc);
        } else {
            let _ = span.set_parent(cx);
            parented = true;
        }
    }
}

/// `path` with every segment that looks like an email or a name replaced by `{redacted}`:
/// ids may appear in span attributes, personal data may not.
pub fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.contains('@') || seg.contains('%') || seg.contains(' ') {
                "{redacted}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_ids_and_lose_emails() {
        assert_eq!(
            redact_path("/scim/v2/Users/0190-abc"),
            "/scim/v2/Users/0190-abc"
        );
        assert_eq!(
            redact_path("/scim/v2/Users/ada%40example.com"),
            "/scim/v2/Users/{redacted}"
        );
        assert_eq!(redact_path("/v1/x/ada@example.com/y"), "/v1/x/{redacted}/y");
    }

    #[test]
    fn everything_is_a_no_op_while_telemetry_is_off() {
        // The unit tests never install a pipeline.
        assert!(!enabled());
        assert_eq!(current_traceparent(), None);
        assert!(headers_of(&tracing::Span::none()).is_empty());
    }
}
