//! Checking, before a resumed stream sends anything, that the input's first
//! documents are the ones committed under the stream id.

use sha2::{Digest, Sha256};

/// The server's digest of a stream's committed ids: a SHA-256 chain from 32
/// zero bytes, `d(i+1) = SHA-256(d(i) || id(i))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IdsDigest([u8; 32]);

impl IdsDigest {
    /// Extends the chain by one id.
    pub(crate) fn push(&mut self, id: &str) {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(id.as_bytes());
        self.0 = hasher.finalize().into();
    }

    /// Whether `bytes` is this digest.
    pub(crate) fn matches(&self, bytes: &[u8]) -> bool {
        self.0.as_slice() == bytes
    }
}

/// Why the input cannot resume the stream id: it is not the input whose
/// first `committed` documents were committed under it.
pub(crate) fn mismatch(stream_id: &str, committed: u64, input_documents: Option<u64>) -> String {
    let what = match input_documents {
        Some(n) => format!("this input has only {n} documents"),
        None => format!("the ids of the first {committed} documents of this input are not the committed ones"),
    };
    format!(
        "stream id {stream_id:?} has {committed} documents committed, but {what}: a stream id belongs to one \
         input; resume with that input, or use a new stream id for other data"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_servers_sha256_chain() {
        let mut digest = IdsDigest::default();
        digest.push("a");
        digest.push("b");
        let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
        // The same vector as the server's and the Python and TypeScript clients' tests.
        assert_eq!(hex, "abccbe9b24d2bbd3aa1360d605147a841dd051130131c6929d6004e1ae4796e8");
    }
}
