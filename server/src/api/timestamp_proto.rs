//! `google.protobuf.Timestamp` to and from `chrono`.

use chrono::{DateTime, Utc};

use crate::domain::InvalidRequest;

/// The time a request's timestamp (`field`) names, refused when protobuf's
/// rules or chrono's range do not allow it.
pub fn timestamp_from_proto(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, InvalidRequest> {
    // chrono would read nanos of 10^9 and more as a leap second;
    // protobuf's Timestamp allows 0 to 999,999,999.
    u32::try_from(t.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| {
            InvalidRequest::field(
                field,
                format!(
                    "timestamp {}s {}ns is out of range: nanos must be 0 to 999999999, seconds within years -262143 \
                     to 262142",
                    t.seconds, t.nanos
                ),
            )
        })
}

/// `time` as a protobuf timestamp.
pub fn timestamp_to_proto(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}
