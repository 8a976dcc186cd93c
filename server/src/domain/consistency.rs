//! How fresh a read must be: the consistency tokens writes return, and the
//! choice a read makes with one (or without).

use std::fmt;

use super::InvalidRequest;

/// A position in PostgreSQL's write-ahead log, reached by a write's commit:
/// what its acknowledgement carries, and what a read that must see the
/// write waits for a replica to replay. Written as PostgreSQL writes a
/// `pg_lsn` (`16/B374D848`), so the store binds it as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsistencyToken(u64);

impl ConsistencyToken {
    /// The token of WAL position `lsn` (as a 64-bit integer).
    pub fn from_lsn(lsn: u64) -> Self {
        Self(lsn)
    }

    /// The WAL position, as a 64-bit integer.
    pub fn lsn(self) -> u64 {
        self.0
    }

    /// Parses a token a write returned; `field` names it in the refusal.
    pub fn parse(field: &str, text: &str) -> Result<Self, InvalidRequest> {
        let refuse = || {
            InvalidRequest::field(
                field,
                format!(
                    "{field} must be the consistency_token of a write's acknowledgement, such as \"0/16B3748\"; got \
                     {:?}",
                    text.chars().take(40).collect::<String>()
                ),
            )
        };
        let (high, low) = text.split_once('/').ok_or_else(refuse)?;
        let half = |part: &str| {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(part, 16).ok()
        };
        match (half(high), half(low)) {
            (Some(high), Some(low)) => Ok(Self((u64::from(high) << 32) | u64::from(low))),
            _ => Err(refuse()),
        }
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// What a read asks of the server that has read replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadConsistency {
    /// Any replica in rotation (the primary when none is).
    #[default]
    Eventual,
    /// The primary.
    Strong,
    /// A replica that has replayed at least this far, or the primary.
    AtLeast(ConsistencyToken),
}

impl ReadConsistency {
    /// The label of this choice in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Eventual => "eventual",
            Self::Strong => "strong",
            Self::AtLeast(_) => "token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_the_lsn_postgresql_prints() {
        for text in ["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            assert_eq!(ConsistencyToken::parse("t", text).unwrap().to_string(), text);
        }
        assert_eq!(
            ConsistencyToken::parse("t", "16/b374d848").unwrap().lsn(),
            0x16_B374_D848
        );
    }

    #[test]
    fn later_positions_compare_greater() {
        let earlier = ConsistencyToken::parse("t", "0/FFFFFFFF").unwrap();
        let later = ConsistencyToken::parse("t", "1/0").unwrap();
        assert!(earlier < later);
    }

    #[test]
    fn anything_but_two_hex_halves_is_refused_naming_the_field() {
        for text in ["", "0", "0/", "/0", "x/0", "0/0/0", "123456789/0", "+1/0", " 0/0"] {
            let refused = ConsistencyToken::parse("consistency.after_token", text).unwrap_err();
            assert_eq!(refused.violations[0].field, "consistency.after_token", "{text:?}");
        }
    }
}
