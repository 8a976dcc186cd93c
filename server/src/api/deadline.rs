//! The client's deadline, from gRPC's `grpc-timeout` request header.

use std::time::Duration;

use tonic::metadata::MetadataMap;

use crate::domain::Deadline;

/// The deadline a request carries; none when the header is absent or not
/// in gRPC's form (up to 8 digits and a unit: H, M, S, m, u, n), which is
/// how tonic, which enforces the header itself, reads it too.
pub fn deadline_of(metadata: &MetadataMap) -> Deadline {
    metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(Deadline::NONE, Deadline::after)
}

fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match &value[digits.len()..] {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse_grpc_timeout("500m"), Some(Duration::from_millis(500)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn refuses_what_is_not_grpc_timeout() {
        for value in ["", "S", "10", "10s", "123456789S", "-1S", "1.5S", "ü"] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }
}
