//! Where a resumable UpsertStream stands, by document position: how many
//! documents of its input are committed, the last one's id, and a digest of
//! all their ids. Positions, unlike batch numbers, do not depend on how a
//! client cuts its input, so a resumed run may use another batch size.

use sha2::{Digest, Sha256};

use super::InvalidRequest;

/// The largest position or sequence number: what PostgreSQL's `bigint` and
/// every client language's signed 64-bit integer can hold.
pub const MAX_POSITION: u64 = i64::MAX as u64;

/// SHA-256 chain over document ids in input order: `d(0)` is 32 zero bytes
/// and `d(i+1) = SHA-256(d(i) || id(i))`. Each step hashes a fixed-length
/// prefix, so no two id sequences are ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdsDigest([u8; 32]);

impl IdsDigest {
    /// The digest of a prefix read back from the store; `None` unless 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// Extends the chain over `ids`, in order.
    pub fn extend<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            let mut hasher = Sha256::new();
            hasher.update(self.0);
            hasher.update(id.as_bytes());
            self.0 = hasher.finalize().into();
        }
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The committed prefix of a resumable stream's input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamProgress {
    /// Documents of the input committed: the position the next batch starts at.
    pub committed: u64,
    /// The id of the document at `committed - 1`; empty when nothing is committed.
    pub last_id: String,
    /// Digest of the ids of the committed documents.
    pub digest: IdsDigest,
}

/// A batch's place in its stream's input, checked to fit [`MAX_POSITION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    first: u64,
    len: u64,
}

impl BatchPosition {
    /// The batch of `len` documents starting at `first`.
    pub fn new(field: &str, first: u64, len: usize) -> Result<Self, InvalidRequest> {
        let len = len as u64;
        if first.checked_add(len).is_none_or(|end| end > MAX_POSITION) {
            return Err(InvalidRequest::field(
                field,
                format!("first_position + the batch's documents must be at most {MAX_POSITION} (2^63 - 1)"),
            ));
        }
        Ok(Self { first, len })
    }

    /// Position of the batch's first document.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Position just after the batch's last document.
    pub fn end(&self) -> u64 {
        self.first + self.len
    }
}

/// A batch's number within one call, 1 to [`MAX_POSITION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sequence(u64);

impl Sequence {
    /// Parses a sequence number that must be greater than `previous`.
    pub fn parse(field: &str, sequence: u64, previous: Option<Sequence>) -> Result<Self, InvalidRequest> {
        if sequence == 0 || sequence > MAX_POSITION {
            return Err(InvalidRequest::field(
                field,
                format!("a sequence number is 1 to {MAX_POSITION} (2^63 - 1), got {sequence}"),
            ));
        }
        if let Some(previous) = previous
            && sequence <= previous.0
        {
            return Err(InvalidRequest::field(
                field,
                format!(
                    "sequence numbers must increase within a stream: got {sequence} after {}",
                    previous.0
                ),
            ));
        }
        Ok(Self(sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: &IdsDigest) -> String {
        digest.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_digest_chains_sha256_over_each_id_from_32_zero_bytes() {
        let mut digest = IdsDigest::default();
        digest.extend(["a"]);
        let mut expected = Sha256::new();
        expected.update([0u8; 32]);
        expected.update(b"a");
        assert_eq!(digest.as_bytes(), &<[u8; 32]>::from(expected.finalize()));
        digest.extend(["b"]);
        // Computed with Python's hashlib; the Python and TypeScript clients'
        // tests expect the same value, so all three agree.
        assert_eq!(
            hex(&digest),
            "abccbe9b24d2bbd3aa1360d605147a841dd051130131c6929d6004e1ae4796e8"
        );
    }

    #[test]
    fn the_digest_depends_on_how_ids_are_split_not_only_on_their_bytes() {
        let mut one = IdsDigest::default();
        one.extend(["ab"]);
        let mut two = IdsDigest::default();
        two.extend(["a", "b"]);
        assert_ne!(one, two);
    }

    #[test]
    fn positions_and_sequences_stay_within_signed_64_bits() {
        assert!(BatchPosition::new("p", MAX_POSITION - 10, 10).is_ok());
        assert!(BatchPosition::new("p", MAX_POSITION - 10, 11).is_err());
        assert!(BatchPosition::new("p", u64::MAX, 1).is_err());
        assert!(Sequence::parse("s", 1 << 63, None).is_err());
        assert!(Sequence::parse("s", 0, None).is_err());
        let five = Sequence::parse("s", 5, None).unwrap();
        assert!(Sequence::parse("s", 5, Some(five)).is_err());
        assert!(Sequence::parse("s", 6, Some(five)).is_ok());
    }
}
