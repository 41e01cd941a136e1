//! Bearer-token authentication: the HS256 signing key file, minting tokens, and
//! verifying them with a pinned algorithm, issuer, audience and expiry.
//!
//! Expiry is checked against our [`Clock`](crate::clock::Clock), not the wall clock
//! inside jsonwebtoken, so tests control it. After a key rotation ([`keys`]) the
//! previous HS256 key is accepted until its deadline, by the same clock. Tokens never reach logs: errors say what
//! was wrong with a token, never what it was. The actix extractor lives in
//! [`extract`]; everything else here is free of actix.

pub mod extract;
pub mod keys;
pub mod minted;
pub mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// Length of a generated HS256 key.
pub(crate) const KEY_BYTES: usize = 32;

/// What a token is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Provision users and groups under `/scim/v2`.
    Scim,
    /// Operate the daemon under `/admin/v1`.
    Admin,
}

impl Scope {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scim" => Some(Scope::Scim),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// Why a request was not authenticated or not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    Missing,
    /// The token is malformed, badly signed, or has the wrong issuer or audience.
    #[error("the bearer token is not valid")]
    Invalid,
    /// The token has expired (or is not valid yet).
    #[error("the bearer token has expired")]
    Expired,
    /// The token was revoked (`token revoke`); it is refused from then on.
    #[error("the bearer token has been revoked")]
    Revoked,
    /// The token is valid but lacks the scope this route needs.
    #[error("the bearer token lacks the '{0}' scope")]
    InsufficientScope(&'static str),
}

/// Errors handling key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a usable key.
    #[error("signing key file {0} does not hold a base64 key of at least 32 bytes")]
    Malformed(PathBuf),
    /// The previous-key file is not what `token rotate-key` writes.
    #[error(
        "previous signing key file {0} does not hold {{\"key\", \"accepted_until\"}} \
         as `token rotate-key` writes it; restore it or remove it"
    )]
    Previous(PathBuf),
    /// The JWKS file is unusable.
    #[error("JWKS file {path}: {message}")]
    Jwks {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Signing failed.
    #[error("cannot sign a token: {0}")]
    Sign(String),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// A token's audience: one string (as we mint it) or a list (as many issuers do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// The claims of tokens we mint and accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
    /// Who the token is for (recorded as the actor in the audit trail).
    pub sub: String,
    /// `scim` or `admin`.
    pub scope: String,
    /// Issued at (seconds since the epoch).
    #[serde(default)]
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Not before, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id.
    #[serde(default)]
    pub jti: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject.
    pub subject: String,
    /// The scopes it carries.
    pub scopes: Vec<Scope>,
    /// The token id (for correlation and revocation; not secret).
    pub token_id: String,
    /// Issued at (seconds since the epoch).
    pub issued_at: i64,
    /// Expiry (seconds since the epoch).
    pub expires_at: i64,
}

impl Principal {
    /// Whether it carries `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Random bytes from the system source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| KeyError::Random)?;
    Ok(out)
}

/// Reads the HS256 key, creating it (mode 0600) when absent. Returns the key and
/// whether it was created now.
pub fn load_or_create_key(path: &Path) -> Result<(Vec<u8>, bool), KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((decode_key(&text, path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_bytes::<KEY_BYTES>()?;
            write_private_file(
                path,
                base64::engine::general_purpose::STANDARD
                    .encode(key)
                    .as_bytes(),
            )?;
            Ok((key.to_vec(), true))
        }
        Err(source) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads an existing HS256 key (for `token mint`, which must not create one).
pub fn load_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_key(&text, path)
}

pub(crate) fn decode_key(text: &str, path: &Path) -> Result<Vec<u8>, KeyError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError::Malformed(path.to_path_buf()))?;
    if key.len() < KEY_BYTES {
        return Err(KeyError::Malformed(path.to_path_buf()));
    }
    Ok(key)
}

fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Everything needed to mint tokens.
pub struct Minter {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl Minter {
    /// A minter for the HS256 `key`.
    pub fn new(key: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(key),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// Mints a token for `subject` with `scope`, valid for `ttl_days` from `clock`.
    pub fn mint(
        &self,
        subject: &str,
        scope: Scope,
        ttl_days: u32,
        clock: &dyn Clock,
    ) -> Result<String, KeyError> {
        Ok(self.mint_principal(subject, scope, ttl_days, clock)?.0)
    }

    /// Mints a token as [`Minter::mint`] does, with the principal it stands for (for
    /// the token registry).
    pub fn mint_principal(
        &self,
        subject: &str,
        scope: Scope,
        ttl_days: u32,
        clock: &dyn Clock,
    ) -> Result<(String, Principal), KeyError> {
        let now = clock.now().timestamp();
        let jti = hex(&random_bytes::<12>()?);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            sub: subject.into(),
            scope: scope.as_str().into(),
            iat: now,
            exp: now + i64::from(ttl_days.max(1)) * 86_400,
            nbf: None,
            jti,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok((
            token,
            Principal {
                subject: claims.sub,
                scopes: vec![scope],
                token_id: claims.jti,
                issued_at: claims.iat,
                expires_at: claims.exp,
            },
        ))
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Tokens remembered as verified at most (the cache is emptied when full).
const VERIFIED_CACHE: usize = 1024;

/// A token already verified: who it is for and when it stops being valid.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    exp: i64,
    nbf: Option<i64>,
    /// Signed by the previous key: refused from this time on.
    key_until: Option<i64>,
}

/// The HS256 keys: the current one, and the previous one with its deadline.
struct Hs256Keys {
    current: DecodingKey,
    previous: Option<(DecodingKey, i64)>,
}

impl Hs256Keys {
    fn new(current: &[u8], previous: Option<&keys::PreviousKey>) -> Self {
        Self {
            current: DecodingKey::from_secret(current),
            previous: previous.map(|p| {
                (
                    DecodingKey::from_secret(&p.key),
                    p.accepted_until.timestamp(),
                )
            }),
        }
    }
}

/// Verifies bearer tokens.
pub struct Verifier {
    hs256: parking_lot::RwLock<Hs256Keys>,
    external: HashMap<String, (Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    /// Signature and claim checks are done once per token; expiry is checked against
    /// the clock on every use.
    verified: parking_lot::Mutex<HashMap<String, Verified>>,
}

impl Verifier {
    /// A verifier for our HS256 key, plus (optionally) RS256/ES256 keys from a JWKS
    /// file, keyed by `kid`.
    pub fn new(
        hs256_key: &[u8],
        issuer: &str,
        audience: &str,
        jwks_file: Option<&Path>,
    ) -> Result<Self, KeyError> {
        let mut external = HashMap::new();
        if let Some(path) = jwks_file {
            let jwks_err = |message: String| KeyError::Jwks {
                path: path.to_path_buf(),
                message,
            };
            let text = std::fs::read_to_string(path).map_err(|e| jwks_err(e.to_string()))?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| jwks_err(e.to_string()))?;
            for jwk in &set.keys {
                let kid = jwk
                    .common
                    .key_id
                    .clone()
                    .ok_or_else(|| jwks_err("every key needs a kid".into()))?;
                let alg = match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    _ => return Err(jwks_err(format!("key {kid}: only RSA and EC keys"))),
                };
                let key = DecodingKey::from_jwk(jwk).map_err(|e| jwks_err(e.to_string()))?;
                external.insert(kid, (alg, key));
            }
        }
        Ok(Self {
            hs256: parking_lot::RwLock::new(Hs256Keys::new(hs256_key, None)),
            external,
            issuer: issuer.into(),
            audience: audience.into(),
            verified: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// Also accepts tokens signed by the `previous` HS256 key until its deadline.
    pub fn with_previous(self, previous: Option<&keys::PreviousKey>) -> Self {
        if let Some(p) = previous {
            self.hs256.write().previous = Some((
                DecodingKey::from_secret(&p.key),
                p.accepted_until.timestamp(),
            ));
        }
        self
    }

    /// Replaces the HS256 keys (after a rotation) and forgets every token verified
    /// so far, so each is checked against the new keys.
    pub fn set_hs256(&self, current: &[u8], previous: Option<&keys::PreviousKey>) {
        *self.hs256.write() = Hs256Keys::new(current, previous);
        self.verified.lock().clear();
    }

    /// Reads the key file and the previous key beside it again ([`keys`]) and uses
    /// them from now on (the daemon's SIGHUP).
    pub fn reload(&self, signing_key_file: &Path) -> Result<(), KeyError> {
        let current = load_key(signing_key_file)?;
        let previous = keys::load_previous(signing_key_file)?;
        self.set_hs256(&current, previous.as_ref());
        Ok(())
    }

    /// Verifies a token and returns who it is for.
    pub fn verify(&self, token: &str, clock: &dyn Clock) -> Result<Principal, AuthError> {
        let now = clock.now().timestamp();
        if let Some(hit) = self.verified.lock().get(token).cloned() {
            return if hit.key_until.is_some_and(|until| now >= until) {
                Err(AuthError::Invalid)
            } else if hit.exp <= now || hit.nbf.is_some_and(|nbf| nbf > now) {
                Err(AuthError::Expired)
            } else {
                Ok(hit.principal)
            };
        }
        let verified = self.verify_uncached(token, now)?;
        let principal = verified.principal.clone();
        let mut cache = self.verified.lock();
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(token.to_string(), verified);
        Ok(principal)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Verified, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        // RFC 7515 §4.1.11: a recipient that does not understand every extension a
        // `crit` header names must reject the token. We understand none.
        if header_has_crit(token) {
            return Err(AuthError::Invalid);
        }
        // The algorithm is pinned per key: HS256 only with our own keys (the current
        // one, or the previous one before its deadline), RS256/ES256 only with the
        // JWKS key named by `kid` and of that key's type.
        let (alg, candidates) = match header.alg {
            Algorithm::HS256 => {
                let keys = self.hs256.read();
                let mut candidates = vec![(keys.current.clone(), None)];
                if let Some((key, until)) = &keys.previous {
                    if now < *until {
                        candidates.push((key.clone(), Some(*until)));
                    }
                }
                (Algorithm::HS256, candidates)
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.as_deref().ok_or(AuthError::Invalid)?;
                let (alg, key) = self.external.get(kid).ok_or(AuthError::Invalid)?;
                if *alg != header.alg {
                    return Err(AuthError::Invalid);
                }
                (*alg, vec![(key.clone(), None)])
            }
            _ => return Err(AuthError::Invalid),
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against our clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let (data, key_until) = candidates
            .iter()
            .find_map(|(key, until)| {
                jsonwebtoken::decode::<Claims>(token, key, &validation)
                    .ok()
                    .map(|data| (data, *until))
            })
            .ok_or(AuthError::Invalid)?;
        let claims = data.claims;
        if claims.exp <= now || claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(AuthError::Expired);
        }
        let scopes: Vec<Scope> = claims
            .scope
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect();
        // `iat` and `jti` are required of every token (docs/operations.md): the jti is
        // what `token list` shows and `token revoke` names.
        if scopes.is_empty()
            || claims.sub.trim().is_empty()
            || claims.iat <= 0
            || claims.jti.trim().is_empty()
        {
            return Err(AuthError::Invalid);
        }
        Ok(Verified {
            principal: Principal {
                subject: claims.sub,
                scopes,
                token_id: claims.jti,
                issued_at: claims.iat,
                expires_at: claims.exp,
            },
            exp: claims.exp,
            nbf: claims.nbf,
            key_until,
        })
    }
}

/// Whether the JOSE header of `token` carries a `crit` member (jsonwebtoken's
/// header type drops unknown members, so the segment is read here).
fn header_has_crit(token: &str) -> bool {
    let Some(segment) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|h| h.contains_key("crit"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::Duration;

    fn setup() -> (Minter, Verifier, ManualClock) {
        let key = [7u8; 32];
        (
            Minter::new(&key, "cowork-sync", "cowork-sync"),
            Verifier::new(&key, "cowork-sync", "cowork-sync", None).unwrap(),
            ManualClock::at_epoch_2026(),
        )
    }

    #[test]
    fn minted_tokens_verify_with_their_scope() {
        let (minter, verifier, clock) = setup();
        let token = minter.mint("okta", Scope::Scim, 30, &clock).unwrap();
        let p = verifier.verify(&token, &clock).unwrap();
        assert_eq!(p.subject, "okta");
        assert!(p.has(Scope::Scim));
        assert!(!p.has(Scope::Admin));
    }

    #[test]
    fn expired_tokens_are_refused_by_our_clock() {
        let (minter, verifier, clock) = setup();
        let token = minter.mint("okta", Scope::Scim, 1, &clock).unwrap();
        assert!(
            verifier.verify(&token, &clock).is_ok(),
            "verified (and now remembered)"
        );
        clock.advance(Duration::days(1) + Duration::seconds(1));
        assert_eq!(verifier.verify(&token, &clock), Err(AuthError::Expired));
    }

    #[test]
    fn wrong_key_issuer_audience_or_algorithm_is_invalid() {
        let (_, verifier, clock) = setup();
        let other_key = Minter::new(&[8u8; 32], "cowork-sync", "cowork-sync");
        let t = other_key.mint("x", Scope::Admin, 1, &clock).unwrap();
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
        let other_iss = Minter::new(&[7u8; 32], "someone-else", "cowork-sync");
        let t = other_iss.mint("x", Scope::Admin, 1, &clock).unwrap();
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
        let other_aud = Minter::new(&[7u8; 32], "cowork-sync", "other");
        let t = other_aud.mint("x", Scope::Admin, 1, &clock).unwrap();
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
        // HS384 with the right key is still refused: the algorithm is pinned.
        let claims = Claims {
            iss: "cowork-sync".into(),
            aud: Audience::One("cowork-sync".into()),
            sub: "x".into(),
            scope: "admin".into(),
            iat: 0,
            exp: i64::MAX / 2,
            nbf: None,
            jti: "j".into(),
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
        assert_eq!(
            verifier.verify("not-a-token", &clock),
            Err(AuthError::Invalid)
        );
        // alg=none
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(verifier.verify(none, &clock), Err(AuthError::Invalid));
    }

    #[test]
    fn an_audience_list_containing_ours_is_accepted() {
        let (_, verifier, clock) = setup();
        let claims = serde_json::json!({
            "iss": "cowork-sync", "aud": ["other", "cowork-sync"], "sub": "x",
            "scope": "admin", "exp": clock.now().timestamp() + 60,
            "iat": clock.now().timestamp(), "jti": "j1"
        });
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(verifier.verify(&t, &clock).unwrap().subject, "x");
    }

    fn hs256(claims: &serde_json::Value, header: &serde_json::Value) -> String {
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let input = format!("{}.{}", b64(header), b64(claims));
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]),
            input.as_bytes(),
        );
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    #[test]
    fn a_crit_header_naming_an_extension_is_rejected() {
        let (_, verifier, clock) = setup();
        let now = clock.now().timestamp();
        let claims = serde_json::json!({
            "iss": "cowork-sync", "aud": "cowork-sync", "sub": "x", "scope": "admin",
            "exp": now + 60, "iat": now, "jti": "j1", "exp-ext": 1
        });
        let plain = hs256(&claims, &serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        assert!(verifier.verify(&plain, &clock).is_ok());
        let crit = hs256(
            &claims,
            &serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-ext"], "exp-ext": 1}),
        );
        assert_eq!(verifier.verify(&crit, &clock), Err(AuthError::Invalid));
    }

    #[test]
    fn tokens_without_iat_or_jti_are_refused() {
        let (_, verifier, clock) = setup();
        let now = clock.now().timestamp();
        let header = serde_json::json!({"alg": "HS256"});
        for claims in [
            serde_json::json!({"iss": "cowork-sync", "aud": "cowork-sync", "sub": "x",
                "scope": "admin", "exp": now + 60, "jti": "j1"}),
            serde_json::json!({"iss": "cowork-sync", "aud": "cowork-sync", "sub": "x",
                "scope": "admin", "exp": now + 60, "iat": now}),
        ] {
            assert_eq!(
                verifier.verify(&hs256(&claims, &header), &clock),
                Err(AuthError::Invalid),
                "{claims}"
            );
        }
    }

    #[test]
    fn the_key_file_is_created_private_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("signing.key");
        let (k1, created) = load_or_create_key(&path).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_key(&path).unwrap();
        assert!(!created);
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("bad"), "short").unwrap();
        assert!(load_key(&dir.path().join("bad")).is_err());
    }

    #[test]
    fn the_previous_key_is_accepted_until_its_deadline_by_our_clock_and_never_after() {
        let clock = ManualClock::at_epoch_2026();
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let old_minter = Minter::new(&old, "cowork-sync", "cowork-sync");
        let new_minter = Minter::new(&new, "cowork-sync", "cowork-sync");
        let before = old_minter.mint("okta", Scope::Scim, 30, &clock).unwrap();
        let verifier = Verifier::new(&old, "cowork-sync", "cowork-sync", None).unwrap();
        assert!(
            verifier.verify(&before, &clock).is_ok(),
            "remembered as verified"
        );
        let until = clock.now() + Duration::days(2);
        verifier.set_hs256(
            &new,
            Some(&keys::PreviousKey {
                key: old.to_vec(),
                accepted_until: until,
            }),
        );
        let after = new_minter.mint("okta", Scope::Scim, 30, &clock).unwrap();
        let unremembered = old_minter.mint("entra", Scope::Scim, 30, &clock).unwrap();
        assert!(verifier.verify(&before, &clock).is_ok());
        assert!(verifier.verify(&after, &clock).is_ok());
        clock.advance(Duration::days(2) - Duration::seconds(1));
        assert!(verifier.verify(&before, &clock).is_ok(), "a second before");
        assert!(verifier.verify(&unremembered, &clock).is_ok());
        clock.advance(Duration::seconds(1));
        assert_eq!(verifier.verify(&before, &clock), Err(AuthError::Invalid));
        assert_eq!(
            verifier.verify(&unremembered, &clock),
            Err(AuthError::Invalid),
            "also when remembered as verified"
        );
        let fresh_old = old_minter.mint("x", Scope::Scim, 30, &clock).unwrap();
        assert_eq!(verifier.verify(&fresh_old, &clock), Err(AuthError::Invalid));
        assert!(verifier.verify(&after, &clock).is_ok());
        // Without a previous key, the old key's tokens stop at once.
        let verifier = Verifier::new(&old, "cowork-sync", "cowork-sync", None).unwrap();
        let t = old_minter.mint("okta", Scope::Scim, 30, &clock).unwrap();
        assert!(verifier.verify(&t, &clock).is_ok());
        verifier.set_hs256(&new, None);
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
    }

    #[test]
    fn reload_reads_the_rotated_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let (old, _) = load_or_create_key(&path).unwrap();
        let clock = ManualClock::at_epoch_2026();
        let verifier = Verifier::new(&old, "cowork-sync", "cowork-sync", None).unwrap();
        let t = Minter::new(&old, "cowork-sync", "cowork-sync")
            .mint("okta", Scope::Scim, 30, &clock)
            .unwrap();
        keys::rotate(&path, Some(clock.now() + Duration::hours(1))).unwrap();
        verifier.reload(&path).unwrap();
        let new = load_key(&path).unwrap();
        let t2 = Minter::new(&new, "cowork-sync", "cowork-sync")
            .mint("okta", Scope::Scim, 30, &clock)
            .unwrap();
        assert!(verifier.verify(&t, &clock).is_ok());
        assert!(verifier.verify(&t2, &clock).is_ok());
        clock.advance(Duration::hours(1));
        assert_eq!(verifier.verify(&t, &clock), Err(AuthError::Invalid));
        assert!(verifier.verify(&t2, &clock).is_ok());
    }
}
