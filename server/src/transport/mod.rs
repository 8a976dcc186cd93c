//! What every request passes between the socket and a handler, other than
//! authentication ([`crate::auth`]) and the gRPC metrics layer
//! ([`crate::metrics`]): TLS on the listener, the server-wide concurrency
//! limit, the rewrite of tonic's refusal codes, the span of each RPC, and the
//! body wrapper through which layers watch a response until it ends.

pub(crate) mod concurrency_limit;
pub(crate) mod observed_body;
pub(crate) mod oversize;
pub(crate) mod rpc_methods;
pub(crate) mod rpc_span;
pub(crate) mod tls;

/// The services probes and tools call, rather than clients of the data:
/// gRPC health and both versions of reflection. Authentication lets them
/// through without a key, the concurrency limit does not count them, and
/// their spans are at DEBUG; each place says why.
pub(crate) const INFRASTRUCTURE_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Whether `path` (`/package.Service/Method`) calls one of the
/// [`INFRASTRUCTURE_SERVICES`].
pub(crate) fn is_infrastructure(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|name| name.split_once('/'))
        .is_some_and(|(service, _)| INFRASTRUCTURE_SERVICES.contains(&service))
}

#[cfg(test)]
mod tests {
    use super::is_infrastructure;

    #[test]
    fn health_and_reflection_calls_are_infrastructure_and_nothing_else_is() {
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(is_infrastructure(path), "{path}");
        }
        for path in [
            "/fathom.v1.Search/Search",
            "/grpc.health.v1.HealthCheck/Check",
            "/grpc.health.v1.Health",
            "grpc.health.v1.Health/Check",
        ] {
            assert!(!is_infrastructure(path), "{path}");
        }
    }
}
