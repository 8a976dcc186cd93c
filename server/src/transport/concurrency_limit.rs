//! Server-wide limits on calls in progress, as a tower layer: one budget
//! for the work being done, one for the streams being held open.
//!
//! A unary call holds a request permit from when it arrives until its
//! response ends. A streaming call (UpsertStream, Scroll, Search) holds a
//! stream permit for as long as it is open, and a request permit only while
//! its handler runs (a search's statement, a stream's opening): a stream
//! that sits idle, or whose client never reads, then holds no part of the
//! budget that unary calls need, so it cannot starve them. Idle upsert
//! streams are also ended after `Limits::stream_idle_timeout`, and HTTP/2
//! caps the streams of one connection, so one client cannot hold every
//! stream permit either.
//!
//! Past a limit a call is refused at once with RESOURCE_EXHAUSTED and
//! retry advice, rather than queued: a queue would only move the wait to
//! where the client cannot see it, and would stall health checks behind
//! the load. Health and reflection are never limited, so probes keep
//! telling the truth under load.
//!
//! [`busy`] is the one shape of every "busy, retry" refusal of the server
//! (these limits', and the database pool's).

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};

use super::is_infrastructure;
use super::observed_body::{FrameObserver, ObservedBody};

/// One budget of permits, and the flag that sets its size.
#[derive(Clone)]
struct Budget {
    permits: Arc<Semaphore>,
    limit: usize,
    /// What it limits, for the refusal: "requests in progress".
    counts: &'static str,
    /// The `fathom serve` flag that sets `limit`.
    flag: &'static str,
}

impl Budget {
    fn new(limit: usize, counts: &'static str, flag: &'static str) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            counts,
            flag,
        }
    }

    /// A permit, or the refusal to send instead.
    fn try_take(&self, path: &str) -> Result<OwnedSemaphorePermit, tonic::Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!(
                limit = self.limit,
                path,
                counts = self.counts,
                "call refused: limit reached"
            );
            busy(format!(
                "the server is at its limit of {} {} ({}); retry with backoff",
                self.limit, self.counts, self.flag
            ))
        })
    }
}

/// Layer admitting at most `max_requests` calls at work and `max_streams`
/// streaming calls open at once, across all connections.
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    requests: Budget,
    streams: Budget,
    /// Paths of the methods that stream (see [`super::rpc_methods`]).
    streaming: Arc<HashSet<String>>,
}

impl ConcurrencyLimitLayer {
    /// At most `max_requests` calls at work and `max_streams` streaming
    /// calls open (each at least 1); `streaming` holds the paths of the
    /// methods that stream.
    pub fn new(max_requests: usize, max_streams: usize, streaming: HashSet<String>) -> Self {
        Self {
            requests: Budget::new(max_requests, "requests in progress", "--max-concurrent-requests"),
            streams: Budget::new(max_streams, "open streams", "--max-open-streams"),
            streaming: Arc::new(streaming),
        }
    }
}

impl<S> tower::Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// See [`ConcurrencyLimitLayer`].
#[derive(Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    limits: ConcurrencyLimitLayer,
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
        let refused = |status: tonic::Status| -> Self::Future { Box::pin(std::future::ready(Ok(status.into_http()))) };
        let stream = if self.limits.streaming.contains(path) {
            match self.limits.streams.try_take(path) {
                Ok(permit) => Some(permit),
                Err(refusal) => return refused(refusal),
            }
        } else {
            None
        };
        let work = match self.limits.requests.try_take(path) {
            Ok(permit) => permit,
            Err(refusal) => return refused(refusal),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A stream's handler has done its work: from here on the stream
            // holds only its stream permit.
            let held = match stream {
                Some(stream) => {
                    drop(work);
                    stream
                }
                None => work,
            };
            Ok(response.map(|body| ObservedBody::wrap(body, HeldPermit { _permit: held })))
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

/// Returns its call's permit when the response body ends or is dropped.
struct HeldPermit {
    _permit: OwnedSemaphorePermit,
}

impl FrameObserver for HeldPermit {}
