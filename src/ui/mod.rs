//! The operator console under `/ui/`: server-rendered HTML (maud templates, checked
//! at compile time and escaped by default) that works without JavaScript, over the
//! same functions the operator API calls (`http::admin`'s reports and the
//! reconciler's [`Operations`](crate::http::Operations)).
//!
//! Security: sign-in exchanges an admin-scope token for a session cookie
//! ([`session`]); every form carries a CSRF token and every POST checks it and the
//! `Origin`; every answer carries a strict Content-Security-Policy (no script, no
//! third-party anything), `X-Frame-Options: DENY`, `no-store` and `Referrer-Policy: same-origin`.
//! HTML errors are mapped here, for the console's routes only; the JSON APIs keep
//! `http::error`.

pub mod chart;
mod layout;
mod pages;
mod pages_data;
mod pages_insights;
mod pages_tokens;
pub mod session;

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use maud::Markup;

pub use session::Sessions;
use session::{Lookup, Session, COOKIE};

use crate::clock::SharedClock;
use crate::http::error::ApiError;
use crate::http::AppState;

/// The console's Content-Security-Policy: nothing but our own stylesheet and forms.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Registers the console's routes under the current scope (`/ui`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(MAX_FORM_BYTES))
        .route("", web::get().to(to_console))
        .route("/", web::get().to(pages::overview))
        .route("/console.css", web::get().to(layout::stylesheet))
        .route("/sign-in", web::get().to(pages::sign_in_form))
        .route("/sign-in", web::post().to(pages::sign_in))
        .route("/sign-out", web::post().to(pages::sign_out))
        .route("/held", web::get().to(pages::held))
        .route("/held/approve", web::post().to(pages::approve))
        .route("/runs", web::get().to(pages::runs))
        .route("/plan", web::get().to(pages::plan))
        .route("/user", web::get().to(pages_data::user))
        .route("/log", web::get().to(pages_data::log))
        .route("/audit", web::get().to(pages_data::audit))
        .route("/rules", web::get().to(pages_data::rules))
        .route("/tokens", web::get().to(pages_tokens::tokens))
        .route("/tokens/revoke", web::post().to(pages_tokens::revoke))
        .route(
            "/tokens/end-session",
            web::post().to(pages_tokens::end_session),
        )
        .route("/insights", web::get().to(pages_insights::insights));
}

/// `GET /` and `GET /ui`: to the console.
pub async fn to_console() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

/// Adds the console's security headers to a response.
fn secure(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null`
        // on our own forms, and the origin check refuses them.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// A rendered page.
fn html(status: StatusCode, page: Markup) -> HttpResponse {
    secure(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(page.into_string()),
    )
}

/// Whether the request came over TLS (directly or through a proxy that says so).
fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Sets a cookie with the console's attributes: `HttpOnly`, `SameSite=Strict`,
/// path `/ui`, `Secure` over TLS, and a lifetime (0 deletes it). Values are hex
/// tokens we made, so they need no quoting.
fn set_cookie(
    response: &mut HttpResponse,
    req: &HttpRequest,
    name: &str,
    value: &str,
    max_age: i64,
) {
    let secure = if over_tls(req) { "; Secure" } else { "" };
    let line = format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.max(0)
    );
    if let Ok(v) = header::HeaderValue::from_str(&line) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The value of a request cookie.
fn read_cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// Why a console request did not get a page.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or the session expired): to the sign-in page.
    SignIn,
    /// A form without a valid CSRF token or from another origin.
    Forbidden(String),
    /// An error from the layers below, shown as a page.
    Api(ApiError),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::Api(e)
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiError::SignIn => f.write_str("sign in to use the console"),
            UiError::Forbidden(m) => f.write_str(m),
            UiError::Api(e) => e.fmt(f),
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignIn => StatusCode::SEE_OTHER,
            UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::Api(e) => ResponseError::status_code(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = ResponseError::status_code(self);
        match self {
            UiError::SignIn => secure(
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/ui/sign-in"))
                    .finish(),
            ),
            UiError::Forbidden(m) => html(status, layout::error_page(status, m)),
            UiError::Api(e) => {
                let detail = if status.is_server_error() {
                    // The cause goes to the log once, here.
                    tracing::error!(error = %e, status = status.as_u16(), "console page failed");
                    "the daemon could not build this page; the cause is in its log".to_string()
                } else {
                    e.to_string()
                };
                html(status, layout::error_page(status, &detail))
            }
        }
    }
}

/// A signed-in operator: the extractor of every console page but sign-in.
#[derive(Debug, Clone)]
pub struct Operator(pub Session);

fn now(req: &HttpRequest) -> Option<chrono::DateTime<chrono::Utc>> {
    req.app_data::<web::Data<AppState>>()
        .map(|s| s.clock.clone())
        .map(|c: SharedClock| c.now())
}

/// Whether the token a session was opened with has been revoked.
fn token_revoked(req: &HttpRequest, token_id: &str) -> bool {
    req.app_data::<web::Data<crate::auth::extract::AuthContext>>()
        .is_some_and(|ctx| ctx.registry.is_revoked(token_id))
}

impl FromRequest for Operator {
    type Error = UiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = (|| {
            let sessions = req.app_data::<web::Data<Sessions>>()?;
            let cookie = read_cookie(req, COOKIE)?;
            match sessions.find(&cookie, now(req)?) {
                Lookup::Live(s) if token_revoked(req, &s.token_id) => {
                    // Revocation closes these sessions at once; this catches any
                    // opened in the moment before it.
                    sessions.close(&cookie);
                    tracing::info!(session = %s.handle, "console session ended: its token is revoked");
                    None
                }
                Lookup::Live(s) => Some(s),
                Lookup::Expired(s) => {
                    tracing::info!(session = %s.handle, "console session expired");
                    None
                }
                Lookup::Unknown => None,
            }
        })();
        ready(found.map(Operator).ok_or(UiError::SignIn))
    }
}

/// A POSTed form's fields.
pub type Fields = Vec<(String, String)>;

/// The first value of a form field.
fn field<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A POST from another origin is refused even with a valid token (defence in depth
/// beside `SameSite=Strict`).
fn same_origin(req: &HttpRequest) -> Result<(), UiError> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let info = req.connection_info();
    let expected = format!("{}://{}", info.scheme(), info.host());
    if origin == expected {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "this form was sent from another site; open the console and try again".into(),
        ))
    }
}

/// Checks a session form: same origin and the session's CSRF token.
fn check_form(req: &HttpRequest, op: &Operator, form: &Fields) -> Result<(), UiError> {
    same_origin(req)?;
    match field(form, "csrf") {
        Some(t) if session::same_secret(t, &op.0.csrf) => Ok(()),
        _ => Err(UiError::Forbidden(
            "the form's security token is missing or stale; reload the page and try again".into(),
        )),
    }
}
