//! The actix-web extractors that gate routes by scope: [`ScimCaller`] for
//! `/scim/v2`, [`AdminCaller`] for `/admin/v1`. They verify the bearer token, check
//! the scope, refuse revoked tokens (the [`TokenRegistry`]), and apply the per-caller
//! request budget. How a [`Rejection`] becomes a
//! response is decided in `http::error`, the one place that maps errors to HTTP.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::registry::TokenRegistry;
use super::{AuthError, Principal, Scope, Verifier};
use crate::clock::SharedClock;
use crate::ratelimit::KeyedLimiter;

/// Called on every refused request (the app records rate-limited audit entries).
pub type FailureHook = Arc<dyn Fn(&AuthError, &HttpRequest) + Send + Sync>;

/// What the extractors need, registered as `web::Data<AuthContext>`.
pub struct AuthContext {
    /// Token verification.
    pub verifier: Verifier,
    /// Every token minted or seen; refuses revoked ones.
    pub registry: Arc<TokenRegistry>,
    /// The clock for expiry and budgets.
    pub clock: SharedClock,
    /// Requests per caller.
    pub limiter: KeyedLimiter,
    /// Observer of refused requests.
    pub on_failure: Option<FailureHook>,
}

/// Why a request did not get through the gate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Authentication or authorization failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller is over its request budget.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would be accepted.
        retry_after_secs: u64,
    },
    /// More than one `Authorization` header: which one counts would be a guess
    /// (RFC 6750 §3.1 `invalid_request`).
    #[error("the request carries more than one Authorization header; send exactly one")]
    DuplicateAuthorization,
    /// The server was wired without an auth context (a programming error).
    #[error("authentication is not configured")]
    Unconfigured,
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(token.trim())
    } else {
        None
    }
}

fn gate(req: &HttpRequest, scope: Scope) -> Result<Principal, Rejection> {
    if req
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION)
        .nth(1)
        .is_some()
    {
        return Err(Rejection::DuplicateAuthorization);
    }
    authorize(req, bearer(req), scope)
}

/// Checks a token presented with `req` (a bearer header, or the console's sign-in
/// form) for `scope`, with the same verification, budget and failure hook as every
/// route.
pub fn authorize(
    req: &HttpRequest,
    token: Option<&str>,
    scope: Scope,
) -> Result<Principal, Rejection> {
    let ctx = req
        .app_data::<web::Data<AuthContext>>()
        .ok_or(Rejection::Unconfigured)?;
    let outcome = token
        .ok_or(AuthError::Missing)
        .and_then(|token| ctx.verifier.verify(token, ctx.clock.as_ref()))
        .and_then(|p| {
            ctx.registry.observe(&p, ctx.clock.now())?;
            Ok(p)
        })
        .and_then(|p| {
            if p.has(scope) {
                Ok(p)
            } else {
                Err(AuthError::InsufficientScope(scope.as_str()))
            }
        });
    match outcome {
        Ok(principal) => {
            ctx.limiter
                .check(&principal.subject, ctx.clock.as_ref())
                .map_err(|retry_after_secs| Rejection::RateLimited { retry_after_secs })?;
            Ok(principal)
        }
        Err(e) => {
            if let Some(hook) = &ctx.on_failure {
                hook(&e, req);
            }
            Err(Rejection::Auth(e))
        }
    }
}

/// A caller holding the `scim` scope.
#[derive(Debug, Clone)]
pub struct ScimCaller(pub Principal);

/// A caller holding the `admin` scope.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Principal);

impl FromRequest for ScimCaller {
    type Error = Rejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = gate(req, Scope::Scim);
        if let Ok(p) = &caller {
            // The provisioning log names the IdP client of each request.
            req.extensions_mut()
                .insert(crate::http::reqlog::Caller(p.subject.clone()));
        }
        ready(caller.map(ScimCaller))
    }
}

impl FromRequest for AdminCaller {
    type Error = Rejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(gate(req, Scope::Admin).map(AdminCaller))
    }
}
