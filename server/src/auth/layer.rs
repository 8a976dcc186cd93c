//! The tower layer that resolves each request's API key to an [`Access`].
//!
//! A key comes as `authorization: Bearer <key>` or `api-key: <key>`. With
//! authentication off, every request gets unrestricted access; with it on,
//! a request without a valid key (unknown, revoked or expired) is refused
//! with UNAUTHENTICATED and one whose key's role is too low with
//! PERMISSION_DENIED, before any handler runs. The key headers are removed
//! from the request once read, so nothing downstream can log them.

use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, Either};
use tonic::body::Body;

use super::api_key::{KEY_CHARACTERS, id_of, shape_problem};
use super::key_ring::{KeyLookup, KeyRing};
use super::rpc_roles::required_role;
use crate::domain::{Access, KeyId, Role, show_time};

/// Layer authenticating requests against `ring`, or letting every request
/// through unrestricted when there is none (authentication off).
#[derive(Clone)]
pub struct AuthLayer {
    ring: Option<KeyRing>,
}

impl AuthLayer {
    /// Checks every request's key against `ring`.
    pub fn with_keys(ring: KeyRing) -> Self {
        Self { ring: Some(ring) }
    }

    /// Authentication off: every request may do everything.
    pub fn disabled() -> Self {
        Self { ring: None }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            ring: self.ring.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    ring: Option<KeyRing>,
}

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for Authenticate<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let Some(role) = required_role(request.uri().path()) else {
            return Either::Left(self.inner.call(request));
        };
        let presented = self.ring.is_some().then(|| presented_key(&request).map(str::to_owned));
        let headers = request.headers_mut();
        headers.remove(http::header::AUTHORIZATION);
        headers.remove("api-key");
        let (Some(ring), Some(presented)) = (&self.ring, presented) else {
            request.extensions_mut().insert(Access::unrestricted());
            return Either::Left(self.inner.call(request));
        };
        let path = request.uri().path().to_owned();
        let refuse = |refusal: tonic::Status| Either::Right(refused(refusal));
        let key = match presented {
            Ok(key) => key,
            Err(refusal) => return refuse(refusal),
        };
        match ring.lookup(&key) {
            KeyLookup::Granted(access) => {
                return match authorize(access, role, &path) {
                    Ok(access) => {
                        request.extensions_mut().insert(access);
                        Either::Left(self.inner.call(request))
                    }
                    Err(refusal) => refuse(refusal),
                };
            }
            KeyLookup::Expired { id, at } => return refuse(expired(&id, at, &path)),
            KeyLookup::Unknown => {}
        }
        let Some(id) = id_of(&key).map(str::to_owned) else {
            tracing::warn!(target: "fathom::audit", key = "(not a fathom key)", rpc = path, outcome = "unauthenticated", "refused: key not valid");
            let problem = shape_problem(&key).unwrap_or_default();
            return refuse(tonic::Status::unauthenticated(format!(
                "the API key is not a fathom key: {problem} (a key is `fathom_`, a 12-hex-digit id, `_` and a \
                 64-hex-digit secret, {KEY_CHARACTERS} characters, as `fathom keys create` prints it)"
            )));
        };
        // Perhaps a key created since the ring was read: read it again.
        let ring = ring.clone();
        let inner = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, inner);
        Either::Right(Box::pin(async move {
            let access = match ring.lookup_or_reload(&key).await {
                Ok(KeyLookup::Granted(access)) => authorize(access, role, &path),
                Ok(KeyLookup::Expired { id, at }) => Err(expired(&id, at, &path)),
                Ok(KeyLookup::Unknown) => {
                    // The id is the key's public part; the rest is never logged.
                    tracing::warn!(target: "fathom::audit", key = id, rpc = path, outcome = "unauthenticated", "refused: key not valid");
                    Err(tonic::Status::unauthenticated(format!(
                        "API key {id} is not valid: it was revoked or never existed"
                    )))
                }
                Err(error) => {
                    tracing::warn!(%error, key = id, "cannot read the API keys to check an unknown key");
                    Err(tonic::Status::unavailable(
                        "the API key could not be checked: the database is unavailable; retry with backoff",
                    ))
                }
            };
            match access {
                Ok(access) => {
                    request.extensions_mut().insert(access);
                    inner.call(request).await
                }
                Err(refusal) => Ok(refusal.into_http()),
            }
        }))
    }
}

/// A refusal as a ready response future.
fn refused<E: Send + 'static>(refusal: tonic::Status) -> BoxFuture<'static, Result<http::Response<Body>, E>> {
    Box::pin(std::future::ready(Ok(refusal.into_http())))
}

/// The refusal of a key that expired `at`. Only a request presenting the
/// whole key (its secret too) hears that it expired; a wrong secret is
/// unknown, like any other.
fn expired(id: &KeyId, at: DateTime<Utc>, path: &str) -> tonic::Status {
    tracing::warn!(target: "fathom::audit", key = %id, rpc = path, outcome = "unauthenticated", expired_at = %show_time(at), "refused: key expired");
    tonic::Status::unauthenticated(format!(
        "API key {id} expired at {}: ask an administrator for a new key",
        show_time(at)
    ))
}

/// `access`, if its role suffices for `path`, which needs `role`.
fn authorize(access: Access, role: Role, path: &str) -> Result<Access, tonic::Status> {
    if access.has_role(role) {
        return Ok(access);
    }
    tracing::warn!(
        target: "fathom::audit",
        key = %access.who(),
        role = %access.role(),
        rpc = path,
        outcome = "permission_denied",
        "refused: role too low"
    );
    Err(tonic::Status::permission_denied(format!(
        "{} has role {}; {path} needs role {role}",
        access.who(),
        access.role()
    )))
}

/// The key the request presents, or why it presents none.
fn presented_key<B>(request: &http::Request<B>) -> Result<&str, tonic::Status> {
    key_in_headers(request.headers()).map_err(|problem| {
        let path = request.uri().path();
        tracing::warn!(target: "fathom::audit", rpc = path, outcome = "unauthenticated", problem, "refused: no key");
        tonic::Status::unauthenticated(format!(
            "{problem}: this server requires an API key, sent as `authorization: Bearer <key>` (or `api-key: \
             <key>`); an operator creates keys with `fathom keys create`"
        ))
    })
}

/// The key in `authorization: Bearer …` or else `api-key`.
fn key_in_headers(headers: &http::HeaderMap) -> Result<&str, &'static str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| "the authorization header is not text")?;
        let (scheme, key) = value
            .split_once(' ')
            .ok_or("the authorization header is not `Bearer <key>`")?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err("the authorization header is not `Bearer <key>`");
        }
        return Ok(key.trim());
    }
    match headers.get("api-key") {
        Some(value) => value
            .to_str()
            .map(str::trim)
            .map_err(|_| "the api-key header is not text"),
        None => Err("no API key was sent"),
    }
}
