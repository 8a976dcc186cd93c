//! The tower layer that resolves each request's API key to an [`Access`].
//!
//! A key comes as `authorization: Bearer <key>` or `api-key: <key>`. With
//! authentication off, every request gets unrestricted access; with it on,
//! a request without a valid key is refused with UNAUTHENTICATED and one
//! whose key's role is too low with PERMISSION_DENIED, before any handler
//! runs. The key headers are removed from the request once read, so nothing
//! downstream can log them.

use std::task::{Context, Poll};

use futures::future::Either;
use tonic::body::Body;

use super::api_key::id_of;
use super::key_ring::KeyRing;
use super::rpc_roles::required_role;
use crate::domain::Access;

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
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let Some(role) = required_role(request.uri().path()) else {
            return Either::Left(self.inner.call(request));
        };
        let access = match &self.ring {
            None => Ok(Access::unrestricted()),
            Some(ring) => authenticate(ring, &request).and_then(|access| {
                if access.has_role(role) {
                    Ok(access)
                } else {
                    let path = request.uri().path();
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
            }),
        };
        let headers = request.headers_mut();
        headers.remove(http::header::AUTHORIZATION);
        headers.remove("api-key");
        match access {
            Ok(access) => {
                request.extensions_mut().insert(access);
                Either::Left(self.inner.call(request))
            }
            Err(refusal) => Either::Right(std::future::ready(Ok(refusal.into_http()))),
        }
    }
}

/// The access the request's key grants, or why it has none.
fn authenticate<B>(ring: &KeyRing, request: &http::Request<B>) -> Result<Access, tonic::Status> {
    let path = request.uri().path();
    let presented = presented_key(request.headers()).map_err(|problem| {
        tracing::warn!(target: "fathom::audit", rpc = path, outcome = "unauthenticated", problem, "refused: no key");
        tonic::Status::unauthenticated(format!(
            "{problem}: this server requires an API key, sent as `authorization: Bearer <key>` (or `api-key: \
             <key>`); an operator creates keys with `fathom keys create`"
        ))
    })?;
    ring.access(presented).ok_or_else(|| {
        // The id is the key's public part; the rest is never logged.
        let id = id_of(presented).unwrap_or("(not a fathom key)");
        tracing::warn!(target: "fathom::audit", key = id, rpc = path, outcome = "unauthenticated", "refused: key not valid");
        tonic::Status::unauthenticated(match id_of(presented) {
            Some(id) => format!("API key {id} is not valid: it was revoked or never existed"),
            None => "the API key is not valid: a fathom key looks like fathom_<id>_<secret>".to_owned(),
        })
    })
}

/// The key in `authorization: Bearer …` or else `api-key`.
fn presented_key(headers: &http::HeaderMap) -> Result<&str, &'static str> {
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
