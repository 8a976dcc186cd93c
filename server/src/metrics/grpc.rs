//! The conventional gRPC server metrics (the series and labels of
//! go-grpc-prometheus), as a tower layer:
//!
//! - `grpc_server_started_total{grpc_type,grpc_service,grpc_method}`
//! - `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`
//! - `grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}` (histogram)
//! - `grpc_server_msg_received_total` and `grpc_server_msg_sent_total`
//!
//! A request is handled when its response body ends, so a stream counts
//! for as long as it is open. Its code is the `grpc-status` of the response
//! headers (an error before any message) or of the trailers; a response
//! dropped before its status was sent (the client went away) counts as
//! `Canceled`, go-grpc-prometheus's spelling.
//!
//! The methods are read once from the services' file descriptor sets, with
//! their label sets and metric handles, so the hot path allocates nothing;
//! requests for paths no service defines are not counted, so a client
//! cannot create series at will.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Frame;
use metrics::{Counter, Histogram};
use tonic::body::Body;
use tonic::{Code, Status};

use crate::transport::observed_body::{FrameObserver, ObservedBody};
use crate::transport::rpc_methods::rpc_methods;

/// go-grpc-prometheus's names of the codes, indexed by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// Layer recording the gRPC series for every method of the services in
/// the given file descriptor sets.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    methods: Arc<HashMap<String, Arc<MethodMetrics>>>,
}

impl GrpcMetricsLayer {
    /// Metrics for every method the encoded `FileDescriptorSet`s declare
    /// (as generated for reflection). Metric handles are taken from the
    /// recorder installed now, so install it first.
    pub fn new(descriptor_sets: &[&[u8]]) -> anyhow::Result<Self> {
        let methods = rpc_methods(descriptor_sets)?
            .into_iter()
            .map(|method| {
                let metrics = MethodMetrics::new(
                    &method.service,
                    &method.name,
                    method.client_streaming,
                    method.server_streaming,
                );
                (method.path(), Arc::new(metrics))
            })
            .collect();
        Ok(Self {
            methods: Arc::new(methods),
        })
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            methods: self.methods.clone(),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    methods: Arc<HashMap<String, Arc<MethodMetrics>>>,
}

impl<S> tower::Service<http::Request<Body>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(method) = self.methods.get(request.uri().path()).cloned() else {
            return Box::pin(self.inner.call(request));
        };
        let started = Instant::now();
        method.started.increment(1);
        let request = if method.client_streaming {
            let received = method.msg_received.clone();
            request.map(|body| {
                ObservedBody::wrap(
                    body,
                    RequestMessages {
                        received,
                        framing: MessageFraming::default(),
                    },
                )
            })
        } else {
            method.msg_received.increment(1);
            request
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    method.handled(Code::Unknown, started);
                    return Err(error);
                }
            };
            let code = response
                .headers()
                .get("grpc-status")
                .map(|v| Code::from_bytes(v.as_bytes()));
            Ok(response.map(|body| {
                ObservedBody::wrap(
                    body,
                    ResponseStatus {
                        framing: method.server_streaming.then(MessageFraming::default),
                        method,
                        started,
                        code,
                        finished: false,
                    },
                )
            }))
        })
    }
}

/// One method's label set and metric handles.
struct MethodMetrics {
    labels: [(&'static str, String); 3],
    client_streaming: bool,
    server_streaming: bool,
    started: Counter,
    handling: Histogram,
    msg_received: Counter,
    msg_sent: Counter,
    /// By code number; registered on first use, so only codes that happened have series.
    handled: [OnceLock<Counter>; 17],
}

impl MethodMetrics {
    fn new(service: &str, method: &str, client_streaming: bool, server_streaming: bool) -> Self {
        let grpc_type = match (client_streaming, server_streaming) {
            (false, false) => "unary",
            (true, false) => "client_stream",
            (false, true) => "server_stream",
            (true, true) => "bidi_stream",
        };
        let labels = [
            ("grpc_type", grpc_type.to_owned()),
            ("grpc_service", service.to_owned()),
            ("grpc_method", method.to_owned()),
        ];
        Self {
            started: metrics::counter!("grpc_server_started_total", &labels),
            handling: metrics::histogram!("grpc_server_handling_seconds", &labels),
            msg_received: metrics::counter!("grpc_server_msg_received_total", &labels),
            msg_sent: metrics::counter!("grpc_server_msg_sent_total", &labels),
            handled: std::array::from_fn(|_| OnceLock::new()),
            labels,
            client_streaming,
            server_streaming,
        }
    }

    /// Records the end of a request started at `started`.
    fn handled(&self, code: Code, started: Instant) {
        self.handling.record(started.elapsed().as_secs_f64());
        let index = (code as usize).min(CODE_NAMES.len() - 1);
        self.handled[index]
            .get_or_init(|| {
                let [grpc_type, service, method] = self.labels.clone();
                metrics::counter!(
                    "grpc_server_handled_total",
                    &[grpc_type, service, method, ("grpc_code", CODE_NAMES[index].to_owned())]
                )
            })
            .increment(1);
    }
}

/// Records its request as handled when the response body ends or is dropped.
struct ResponseStatus {
    method: Arc<MethodMetrics>,
    started: Instant,
    /// Set from the headers or trailers once the status is known.
    code: Option<Code>,
    /// Counts the messages sent, for streaming responses.
    framing: Option<MessageFraming>,
    finished: bool,
}

impl ResponseStatus {
    fn finish(&mut self, code: Code) {
        if !self.finished {
            self.finished = true;
            if code == Code::Ok && self.framing.is_none() {
                self.method.msg_sent.increment(1);
            }
            self.method.handled(code, self.started);
        }
    }
}

impl FrameObserver for ResponseStatus {
    fn observe(&mut self, frame: Option<&Result<Frame<Bytes>, Status>>) {
        match frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(framing)) = (frame.data_ref(), self.framing.as_mut()) {
                    self.method.msg_sent.increment(framing.messages_starting_in(data));
                } else if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    self.code = Some(Code::from_bytes(status.as_bytes()));
                }
            }
            Some(Err(status)) => self.code = Some(status.code()),
            None => {
                let code = self.code.unwrap_or(Code::Unknown);
                self.finish(code);
            }
        }
    }
}

impl Drop for ResponseStatus {
    fn drop(&mut self) {
        // Dropped before a status was sent: the client cancelled, or the
        // connection went away.
        let code = self.code.unwrap_or(Code::Cancelled);
        self.finish(code);
    }
}

/// Counts the messages a streaming request body carries.
struct RequestMessages {
    received: Counter,
    framing: MessageFraming,
}

impl FrameObserver for RequestMessages {
    fn observe(&mut self, frame: Option<&Result<Frame<Bytes>, Status>>) {
        if let Some(Ok(frame)) = frame
            && let Some(data) = frame.data_ref()
        {
            self.received.increment(self.framing.messages_starting_in(data));
        }
    }
}

/// Where a byte stream of length-prefixed gRPC messages stands (a 5-byte
/// prefix: compressed flag and big-endian length), to count messages
/// however they are split into frames.
#[derive(Debug, Default)]
struct MessageFraming {
    prefix: [u8; 5],
    prefix_read: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
}

impl MessageFraming {
    /// How many messages begin in `chunk`, the next bytes of the stream.
    fn messages_starting_in(&mut self, mut chunk: &[u8]) -> u64 {
        let mut started = 0;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skipped = self.remaining.min(chunk.len() as u64);
                chunk = &chunk[skipped as usize..];
                self.remaining -= skipped;
                continue;
            }
            let taken = (self.prefix.len() - self.prefix_read).min(chunk.len());
            self.prefix[self.prefix_read..self.prefix_read + taken].copy_from_slice(&chunk[..taken]);
            self.prefix_read += taken;
            chunk = &chunk[taken..];
            if self.prefix_read == self.prefix.len() {
                started += 1;
                self.prefix_read = 0;
                let [_, length @ ..] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes(length));
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::MessageFraming;

    fn message(length: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7, length as usize));
        bytes
    }

    #[test]
    fn counts_messages_however_the_stream_is_split() {
        let stream: Vec<u8> = [message(3), message(0), message(300), message(1)].concat();
        for chunk_size in [1, 2, 4, 5, 6, 7, 100, stream.len()] {
            let mut framing = MessageFraming::default();
            let counted: u64 = stream.chunks(chunk_size).map(|c| framing.messages_starting_in(c)).sum();
            assert_eq!(counted, 4, "chunks of {chunk_size}");
        }
    }
}
