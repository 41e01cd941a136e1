//! Bounds on the request head, answered with the JSON error body like every other
//! error: a request target longer than [`MAX_URI_BYTES`] is `414 URI Too Long`, a
//! header section larger than [`MAX_HEADER_BYTES`] is `431 Request Header Fields Too
//! Large` (RFC 9110 §15.5.15, RFC 6585 §5). Both are refusals (logged at INFO under
//! `log.refusals_per_minute`), never errors of the server.
//!
//! actix-http has hard limits of its own (a head over 128 KiB, more than 96 headers,
//! an unparsable head) that it answers itself, before any of our code runs, with an
//! empty 431 or 400, and that it logs at ERROR as a "stream error". Our bounds sit well
//! below the first, so every oversized head an IdP or proxy plausibly sends gets our
//! JSON answer; for what still reaches actix's own limits, [`QuietParseErrors`] keeps
//! the client's malformed request out of the ERROR log.

use actix_web::dev::ServiceRequest;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::error::ApiError;

/// Longest request target (path and query) accepted, in bytes. The filter bound
/// (4,096 bytes) stays the one a long filter meets, even percent-encoded.
pub const MAX_URI_BYTES: usize = 16 * 1024;

/// Largest header section accepted, in bytes: each header counts its name, its value
/// and 4 bytes for `": "` and the line end, as on the wire.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The head's size against our bounds.
pub fn check_head(req: &ServiceRequest) -> Result<(), ApiError> {
    let target = req
        .uri()
        .path_and_query()
        .map_or(req.path().len(), |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong(format!(
            "the request target is {target} bytes long; the limit is {MAX_URI_BYTES}"
        )));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(format!(
            "the request headers are {headers} bytes; the limit is {MAX_HEADER_BYTES}"
        )));
    }
    Ok(())
}

/// The target actix-http logs its connection errors under.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// A tracing layer that drops actix-http's ERROR "stream error: request parse error"
/// events: a client's malformed or oversized head (already answered 400 or 431 by
/// actix) is not an error of this server, and a flood of them must not fill the log.
/// Every other event passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietParseErrors;

impl<S: Subscriber> Layer<S> for QuietParseErrors {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || meta.target() != DISPATCHER {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !is_client_parse_error(&message.0)
    }
}

/// Whether an actix dispatcher message reports a request it could not parse.
fn is_client_parse_error(message: &str) -> bool {
    message.starts_with("stream error: request parse error")
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::prelude::*;

    #[test]
    fn heads_within_the_bounds_pass_and_larger_ones_are_refused() {
        let ok = TestRequest::get()
            .uri(&format!("/scim/v2/Users?filter={}", "a".repeat(4096)))
            .insert_header(("authorization", "Bearer x".repeat(500)))
            .to_srv_request();
        assert!(check_head(&ok).is_ok());
        let long = TestRequest::get()
            .uri(&format!(
                "/scim/v2/Users?filter={}",
                "a".repeat(MAX_URI_BYTES)
            ))
            .to_srv_request();
        assert!(matches!(check_head(&long), Err(ApiError::UriTooLong(_))));
        let big = TestRequest::get()
            .uri("/scim/v2/Users")
            .insert_header(("x-big", "a".repeat(MAX_HEADER_BYTES)))
            .to_srv_request();
        assert!(matches!(
            check_head(&big),
            Err(ApiError::HeadersTooLarge(_))
        ));
        // Many small headers add up.
        let mut many = TestRequest::get().uri("/scim/v2/Users");
        for i in 0..90 {
            many = many.insert_header((format!("x-h{i}"), "v".repeat(200)));
        }
        assert!(matches!(
            check_head(&many.to_srv_request()),
            Err(ApiError::HeadersTooLarge(_))
        ));
    }

    /// Collects the messages of the events that reach it.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Collect {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }

    #[test]
    fn only_actix_parse_errors_are_kept_out_of_the_log() {
        let seen = Collect::default();
        let subscriber = tracing_subscriber::registry()
            .with(QuietParseErrors)
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: message head is too large");
            tracing::error!(target: "actix_http::h1::dispatcher", "write zero; closing");
            tracing::error!("stream error: request parse error: ours");
            tracing::info!(target: "actix_http::h1::dispatcher", "stream error: request parse error: info");
        });
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "write zero; closing",
                "stream error: request parse error: ours",
                "stream error: request parse error: info"
            ]
        );
    }
}
