//! The span of one RPC, named and attributed by OpenTelemetry's RPC
//! conventions (`fathom.v1.Search/Search`, `rpc.system = grpc`, …), and
//! continuing the caller's trace when the request carries a W3C
//! `traceparent`. Without an OpenTelemetry layer installed it is a plain
//! `tracing` span that log lines carry.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::INFRASTRUCTURE_SERVICES;

/// The span for `request` (for tonic's `Server::trace_fn`).
pub fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let name = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    // Probes and tools call often: their spans are at DEBUG, so a trace
    // backend is not flooded by health checks.
    let span = if INFRASTRUCTURE_SERVICES.contains(&service) {
        tracing::debug_span!(
            "grpc",
            otel.name = name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
        )
    } else {
        tracing::info_span!(
            "grpc",
            otel.name = name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            trace_id = tracing::field::Empty,
        )
    };
    if span.is_disabled() {
        return span;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    // The trace id is known only where an OpenTelemetry layer is installed;
    // log lines in this span then name it, to find the trace of a log line.
    let context = span.context();
    let trace = context.span().span_context().clone();
    if trace.is_valid() {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
    span
}

/// Reads propagation headers (`traceparent`, `tracestate`) from gRPC metadata.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
