//! What every request passes between the socket and a handler, other than
//! authentication ([`crate::auth`]) and the gRPC metrics layer
//! ([`crate::metrics`]): TLS on the listener, the server-wide concurrency
//! limit, the rewrite of tonic's refusal codes, the span of each RPC, and the
//! body wrapper through which layers watch a response until it ends.

pub(crate) mod concurrency_limit;
pub(crate) mod observed_body;
pub(crate) mod oversize;
pub(crate) mod rpc_span;
pub(crate) mod tls;
