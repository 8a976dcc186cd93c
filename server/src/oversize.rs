//! A tower layer that reports oversized messages as RESOURCE_EXHAUSTED.
//!
//! tonic refuses a request message above the decoding limit with
//! OUT_OF_RANGE; gRPC's convention (and what clients retry-or-shrink on) is
//! RESOURCE_EXHAUSTED. The refusal is a trailers-only response, so the
//! status sits in the response headers, where this layer rewrites it. The
//! message, which names the limit, is kept.

use http::HeaderValue;

/// Rewrites `grpc-status: 11` (OUT_OF_RANGE) for an oversized message to 8
/// (RESOURCE_EXHAUSTED); every other response passes unchanged.
pub fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers.get("grpc-status").is_some_and(|status| status == "11");
    let oversized = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| message.contains("too%20large") || message.contains("too large"));
    if out_of_range && oversized {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
    response
}
