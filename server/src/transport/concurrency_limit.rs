//! A server-wide limit on requests in progress, as a tower layer.
//!
//! Each request holds a permit from when it arrives until its response
//! body ends, so an open stream (an UpsertStream, a Search being read)
//! counts for as long as it is open. Past the limit a request is refused at
//! once with RESOURCE_EXHAUSTED and retry advice, rather than queued: a
//! queue would only move the wait to where the client cannot see it, and
//! would stall health checks behind the load. Health and reflection are
//! never limited, so probes keep telling the truth under load.
//!
//! [`busy`] is the one shape of every "busy, retry" refusal of the server
//! (this limit's, and the database pool's).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};

use super::is_infrastructure;
use super::observed_body::{FrameObserver, ObservedBody};

/// Layer admitting at most `limit` requests at once across all connections.
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ConcurrencyLimitLayer {
    /// At most `limit` requests in progress (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            permits: self.permits.clone(),
            limit: self.limit,
        }
    }
}

/// See [`ConcurrencyLimitLayer`].
#[derive(Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for ConcurrencyLimit<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path();
        // A probe or a tool must always get through.
        if is_infrastructure(path) {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!(limit = self.limit, path, "request refused: concurrency limit reached");
            let refusal = busy(format!(
                "the server is at its limit of {} requests in progress (--max-concurrent-requests); retry with \
                 backoff",
                self.limit
            ));
            return Box::pin(std::future::ready(Ok(refusal.into_http())));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| ObservedBody::wrap(body, HeldPermit { _permit: permit })))
        })
    }
}

/// A refusal because the server is busy: RESOURCE_EXHAUSTED with a
/// `google.rpc.RetryInfo` detail, the mark the clients retry on (the retry
/// table in docs/retries.md). The server's other RESOURCE_EXHAUSTED refusals (a
/// batch, a text or a message too large) carry none: retrying them cannot
/// succeed. The detail names no delay; the clients back off by their table.
pub(crate) fn busy(message: String) -> tonic::Status {
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(None),
    )
}

/// Returns its request's permit when the response body ends or is dropped.
struct HeldPermit {
    _permit: OwnedSemaphorePermit,
}

impl FrameObserver for HeldPermit {}
