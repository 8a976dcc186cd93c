//! A tower layer that gives request messages tonic cannot take the codes
//! gRPC clients look for.
//!
//! tonic refuses a request message above the decoding limit with
//! OUT_OF_RANGE, and one it cannot decode (a string that is not UTF-8,
//! nesting past prost's recursion limit) with INTERNAL, as if the server had
//! failed. gRPC's conventions are RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
//! Either refusal is a trailers-only response, so the status sits in the
//! response headers, where this layer rewrites it. The message, which says
//! what was wrong, is kept.

use http::HeaderValue;

/// The start of tonic's message for a request it could not decode.
pub const UNDECODABLE: &str = "failed to decode Protobuf message";

/// Rewrites `grpc-status: 11` (OUT_OF_RANGE) for an oversized message to 8
/// (RESOURCE_EXHAUSTED), and 13 (INTERNAL) for an undecodable one to 3
/// (INVALID_ARGUMENT); every other response passes unchanged.
pub fn refusals_get_client_codes<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let status = headers.get("grpc-status").cloned();
    let message = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .map(|message| message.replace("%20", " "))
        .unwrap_or_default();
    if status.as_ref().is_some_and(|s| s == "11") && message.contains("too large") {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    } else if status.as_ref().is_some_and(|s| s == "13") && message.contains(UNDECODABLE) {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
    }
    response
}
