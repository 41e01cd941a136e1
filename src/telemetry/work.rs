//! The spans of the daemon's own work, beyond requests: the outbox drain (which
//! continues the traces of the writes that queued its entries), a reconcile run (a
//! trace of its own unless an operator's request started it), the run's phases, and
//! each downstream call (HTTP client conventions; the query, which may name an
//! email, is left out of `url.full`).
//!
//! The roots of work (drain, run) record their trace and span ids as fields, so log
//! lines inside them carry the ids, as a request's do.
//!
//! Each is `Span::none()` while telemetry is off, so the event path pays nothing.

use super::propagation::{continue_from, enabled, record_ids};
use crate::outbox::OutboxEntry;
use crate::reconcile::Trigger;

/// The span of one drain of `entries`: child of the first entry's trace, linked to
/// the others'.
pub fn drain_span(entries: &[OutboxEntry]) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let first = entries.first().map_or(0, |e| e.seq);
    let span = tracing::info_span!(
        "outbox.drain",
        otel.name = "outbox drain",
        cowork_sync.outbox.entries = entries.len(),
        cowork_sync.outbox.first_seq = first,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    continue_from(&span, entries.iter().filter_map(|e| e.trace.as_deref()));
    record_ids(&span);
    span
}

/// The span of one reconcile run: the root of its own trace when the schedule, the
/// start or the outbox started it.
pub fn run_span(trigger: &Trigger) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let trigger = format!("{trigger:?}").to_ascii_lowercase();
    let span = match trigger.as_str() {
        "manual" => tracing::info_span!(
            "reconcile.run",
            otel.name = "reconcile run",
            cowork_sync.reconcile.trigger = %trigger,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        ),
        _ => tracing::info_span!(
            parent: None,
            "reconcile.run",
            otel.name = "reconcile run",
            cowork_sync.reconcile.trigger = %trigger,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        ),
    };
    record_ids(&span);
    span
}

/// The span of one phase of a run (`read`, `plan`, `apply`, `record`).
pub fn phase_span(phase: &'static str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "reconcile.phase",
        otel.name = %format!("reconcile {phase}"),
        cowork_sync.reconcile.phase = phase,
    )
}

/// The span of one attempt of a downstream call.
pub fn client_span(
    method: &str,
    base: &str,
    path: &str,
    op: &'static str,
    attempt: u32,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let url = format!("{base}{path}");
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url.as_str()));
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse().unwrap_or(0)),
        _ => (authority, if scheme == "http" { 80 } else { 443 }),
    };
    let span = tracing::info_span!(
        "cowork.call",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        server.address = %host,
        server.port = port,
        url.full = %super::propagation::redact_path(&url),
        cowork_sync.downstream.operation = op,
        http.response.status_code = tracing::field::Empty,
        http.request.resend_count = tracing::field::Empty,
    );
    if attempt > 1 {
        span.record("http.request.resend_count", attempt - 1);
    }
    span
}

/// Records a downstream response's status on the current call span (4xx and 5xx
/// are errors for a client).
pub fn client_status(status: u16) {
    if !enabled() {
        return;
    }
    let span = tracing::Span::current();
    span.record("http.response.status_code", status);
    if status >= 400 {
        span.record("otel.status_code", "error");
    }
}
