//! Cross-cutting request handling: a request id on every request (accepted from a
//! sane `X-Request-Id` or generated) carried in the tracing span and echoed in the
//! response, per-route request counts and latency for `/metrics`, each SCIM request
//! in the provisioning log ([`super::reqlog`]), and the bounds on the request head
//! ([`super::limits`]) before anything else runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;
use futures_util::StreamExt;
use tracing::Instrument;

use super::refusal_log::Decision;
use super::reqlog::{id_from_location, scim_target, Caller, LoggedRequest, RequestLog};
use super::support::RequestId;
use crate::metrics::Metrics;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

fn accept_inbound(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A process-unique request id.
pub fn new_request_id(prefix: &str) -> String {
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Wraps one request: id, span, metrics, response header.
pub async fn observe<B: MessageBody>(
    mut req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<Arc<Metrics>>>()
        .map(|m| m.get_ref().clone());
    let prefix = req
        .app_data::<actix_web::web::Data<RequestIdPrefix>>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| "req".into());
    let rid = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| accept_inbound(v))
        .map(str::to_string)
        .unwrap_or_else(|| new_request_id(&prefix));
    req.extensions_mut().insert(RequestId(rid.clone()));
    let state = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .cloned();
    let within = state.as_ref().map(|state| state.body_timeout);
    if let Some(within) = within.filter(|_| has_body(&req)) {
        let payload = req.take_payload();
        req.set_payload(body_deadline(payload, within));
    }
    let route = route_label(req.path());
    let method = req.method().to_string();
    let logged = req
        .app_data::<actix_web::web::Data<RequestLog>>()
        .map(|l| l.clone().into_inner())
        .zip(
            req.app_data::<actix_web::web::Data<super::AppState>>()
                .map(|s| s.clock.clone()),
        )
        .and_then(|l| scim_target(req.path()).map(|t| (l, t)));
    let span = request_span(&req, &rid, &method, &route);
    let result = match super::limits::check_head(&req) {
        Ok(()) => next.call(req).instrument(span.clone()).await,
        Err(refused) => Err(refused.into()),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    if let Some(m) = metrics {
        m.observe_request(&route, &method, status, elapsed);
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    let _enter = span.enter();
    if status >= 500 {
        tracing::warn!(status, ms = elapsed * 1000.0, "request failed");
    } else if status >= 400 {
        let decision = state.as_ref().map_or(
            Decision::Log {
                suppressed_before: 0,
            },
            |s| s.refusal_log.decide(s.clock.now()),
        );
        match decision {
            Decision::Log { suppressed_before } => {
                if suppressed_before > 0 {
                    summarise(suppressed_before);
                }
                tracing::info!(status, ms = elapsed * 1000.0, "request refused");
            }
            Decision::Summarise { suppressed_before } => summarise(suppressed_before),
            Decision::Suppress => {}
        }
    } else {
        tracing::debug!(status, ms = elapsed * 1000.0, "request done");
    }
    if let (Some(((log, clock), (resource, id))), Ok(res)) = (logged, &result) {
        let created = res
            .headers()
            .get(actix_web::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(id_from_location);
        log.record(LoggedRequest {
            at: clock.now(),
            request_id: rid.clone(),
            client: res
                .request()
                .extensions()
                .get::<Caller>()
                .map(|c| c.0.clone()),
            method: method.clone(),
            resource,
            id: id.or(created),
            status,
            micros: started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64,
        });
    }
    result.map(|mut res| {
        if let Ok(v) = HeaderValue::from_str(&rid) {
            res.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID), v);
        }
        res
    })
}

/// The request's span: our fields (id, method, route) plus, for OpenTelemetry, the
/// HTTP server conventions (`{method} {route}`, kind server, `http.request.method`,
/// `http.route`, `url.path` with anything personal redacted, `url.scheme`, the status),
/// the IdP's `traceparent` as parent, and the trace and span ids for the log lines.
fn request_span(req: &ServiceRequest, rid: &str, method: &str, route: &str) -> tracing::Span {
    if !crate::telemetry::propagation::enabled() {
        return tracing::info_span!("request", id = %rid, method = %method, route = %route);
    }
    let span = tracing::info_span!(
        "request",
        id = %rid,
        method = %method,
        route = %route,
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        url.path = %crate::telemetry::propagation::redact_path(req.path()),
        url.scheme = %req.connection_info().scheme(),
        network.protocol.version = %protocol_version(req.version()),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    crate::telemetry::propagation::accept_parent(&span, |name| {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    });
    crate::telemetry::propagation::record_ids(&span);
    span
}

fn protocol_version(v: actix_web::http::Version) -> &'static str {
    match v {
        actix_web::http::Version::HTTP_10 => "1.0",
        actix_web::http::Version::HTTP_2 => "2",
        actix_web::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The one line standing for the refusals a minute's budget left out.
fn summarise(suppressed: u64) {
    tracing::info!(
        suppressed,
        "refused requests beyond log.refusals_per_minute were not logged one by one (counted in cowork_sync_http_requests_total)"
    );
}

/// Whether the request announces a body (a length above zero, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let chunked = headers.contains_key(actix_web::http::header::TRANSFER_ENCODING);
    let length = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .map(|v| v.to_str().map(str::trim).unwrap_or("?"));
    chunked || length.is_some_and(|l| l != "0")
}

/// The body stream, ending in a `TimedOut` error once `within` has passed since the
/// request head arrived: a client that stalls its body holds nothing for longer,
/// whether or not it is authenticated. Handlers answer 408 (see `support::read_body`).
fn body_deadline(payload: Payload, within: std::time::Duration) -> Payload {
    let deadline = tokio::time::Instant::now() + within;
    let stream = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(item)) => Some((item, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                ))),
                None,
            )),
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

/// The metrics and log label of a path: the route pattern, worked out from the path
/// itself (cheaper than asking the router again), with ids replaced by `{id}` so the
/// number of labels stays bounded.
pub fn route_label(path: &str) -> String {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["scim", "v2"] => "/scim/v2".into(),
        ["scim", "v2", ".search"] => "/scim/v2/.search".into(),
        ["scim", "v2", "Users" | "Groups", ".search"] => "/scim/v2/{endpoint}/.search".into(),
        ["scim", "v2", "Users" | "Groups"] => "/scim/v2/{endpoint}".into(),
        ["scim", "v2", "Users" | "Groups", _] => "/scim/v2/{endpoint}/{id}".into(),
        ["scim", "v2", d @ ("ServiceProviderConfig" | "ResourceTypes" | "Schemas")] => {
            format!("/scim/v2/{d}")
        }
        ["scim", "v2", d @ ("ResourceTypes" | "Schemas"), _] => format!("/scim/v2/{d}/{{id}}"),
        ["admin", "v1", "users", _, "effective-access"] => {
            "/admin/v1/users/{id}/effective-access".into()
        }
        ["admin", "v1", rest @ ..]
            if rest.len() <= 2
                && rest
                    .iter()
                    .all(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '-')) =>
        {
            format!("/admin/v1/{}", rest.join("/"))
        }
        ["healthz"] | ["readyz"] | ["metrics"] => path.to_string(),
        _ => "unmatched".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_follow_the_routes_and_hide_ids() {
        assert_eq!(route_label("/scim/v2/Users"), "/scim/v2/{endpoint}");
        assert_eq!(
            route_label("/scim/v2/Users/0123-abc"),
            "/scim/v2/{endpoint}/{id}"
        );
        assert_eq!(
            route_label("/scim/v2/Groups/.search"),
            "/scim/v2/{endpoint}/.search"
        );
        assert_eq!(
            route_label("/scim/v2/Schemas/urn:x"),
            "/scim/v2/Schemas/{id}"
        );
        assert_eq!(
            route_label("/admin/v1/rules/versions"),
            "/admin/v1/rules/versions"
        );
        assert_eq!(
            route_label("/admin/v1/users/u1/effective-access"),
            "/admin/v1/users/{id}/effective-access"
        );
        assert_eq!(route_label("/healthz"), "/healthz");
        assert_eq!(route_label("/etc/passwd"), "unmatched");
        assert_eq!(route_label("/admin/v1/Users/../x"), "unmatched");
    }
}

/// A per-process prefix for generated request ids.
#[derive(Debug, Clone)]
pub struct RequestIdPrefix(pub String);
