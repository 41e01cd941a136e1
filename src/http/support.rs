//! Small pieces every handler uses: reading a bounded JSON body, running blocking
//! work off the async threads, the SCIM base URL of a request, request ids, and
//! SCIM JSON responses.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::{ApiError, SCIM_JSON};
use super::AppState;
use crate::scim::ScimError;

/// The request id assigned by the request-id middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request id of `req`, if the middleware set one.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Reads the whole body, refusing more than `limit` bytes (413 with an error body).
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => too_large(limit),
            actix_web::error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::RequestTimeout(
                    "the request body did not arrive in time; send it at once".into(),
                )
            }
            _ => ApiError::Scim(ScimError::InvalidSyntax(
                "the request body could not be read".into(),
            )),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the body as JSON, refusing more than `limit` bytes (413) and malformed
/// JSON (400 `invalidSyntax`). Nothing about the body's content reaches the logs.
pub async fn read_json(payload: web::Payload, limit: usize) -> Result<Value, ApiError> {
    let body = read_body(payload, limit).await?;
    if body.is_empty() {
        return Err(ScimError::InvalidSyntax("the request body is empty".into()).into());
    }
    serde_json::from_slice(&body).map_err(|e| {
        ScimError::InvalidSyntax(format!(
            "the request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
        .into()
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::Scim(ScimError::PayloadTooLarge(format!(
        "the request body is larger than {limit} bytes"
    )))
}

/// Runs blocking work (store access) on the blocking pool, inside the request's span
/// (so its log lines, and the trace context of any outbox entry it queues, are the
/// request's).
pub async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let span = tracing::Span::current();
    match web::block(move || span.in_scope(f)).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ApiError::Internal("a blocking task was cancelled".into())),
    }
}

/// The SCIM base URL for `location` and `$ref`: the configured public URL, or the
/// scheme and host the request came in on.
pub fn scim_base(req: &HttpRequest, state: &AppState) -> String {
    match &state.public_url {
        Some(url) => format!("{url}/scim/v2"),
        None => {
            let info = req.connection_info();
            format!("{}://{}/scim/v2", info.scheme(), info.host())
        }
    }
}

/// A SCIM JSON response, with an `ETag` when given.
pub fn scim_json(status: StatusCode, body: &Value, etag: Option<&str>) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.content_type(SCIM_JSON);
    if let Some(tag) = etag {
        if let Ok(v) = HeaderValue::from_str(tag) {
            builder.insert_header((header::ETAG, v));
        }
    }
    // `to_vec` writes straight into a buffer; `to_string` goes through `fmt::Display`.
    builder.body(serde_json::to_vec(body).unwrap_or_default())
}

/// The value of a header, if it is valid text.
pub fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The decoded query pairs (`+` and `%20` become spaces).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| ScimError::InvalidSyntax("the query string is malformed".into()).into())
}
