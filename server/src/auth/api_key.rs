//! The text of an API key: `fathom_<id>_<secret>`, where the id (12 hex
//! digits) is public and the secret is 256 random bits as 64 hex digits.
//! Only the SHA-256 of the whole text is stored.

use sha2::{Digest, Sha256};

use crate::domain::{KeyId, KeySpec};
use crate::store::{ApiKeyRecord, NewApiKey, Store, StoreError};

/// Every key starts with this, so a leaked key is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "fathom_";

/// A key just made: its text is shown once and never stored.
pub struct GeneratedKey {
    /// The public id.
    pub id: KeyId,
    /// The whole key, to hand to the client.
    pub text: String,
    /// What is stored.
    pub secret_sha256: [u8; 32],
}

impl GeneratedKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut id)?;
        getrandom::getrandom(&mut secret)?;
        let id = hex(&id);
        let text = format!("{KEY_PREFIX}{id}_{}", hex(&secret));
        Ok(Self {
            secret_sha256: hash_key(&text),
            id: KeyId::new(id),
            text,
        })
    }
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A key made and stored: its text, to show once, and its record.
pub struct IssuedKey {
    /// The whole key, to hand to the client; never stored.
    pub text: String,
    /// The key as stored.
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueKeyError {
    /// The operating system's random source failed.
    #[error("cannot read random bytes for the key: {0}")]
    Random(getrandom::Error),
    /// The key could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a key as `spec` says and stores its hash: the one way keys are
/// made, by `fathom keys create` and by the CreateKey RPC.
pub async fn issue_key(store: &Store, spec: KeySpec) -> Result<IssuedKey, IssueKeyError> {
    let key = GeneratedKey::generate().map_err(IssueKeyError::Random)?;
    let record = store
        .create_api_key(&NewApiKey {
            id: key.id.clone(),
            secret_sha256: key.secret_sha256,
            grant: spec.grant,
            description: spec.description,
        })
        .await?;
    Ok(IssuedKey { text: key.text, record })
}

/// The SHA-256 of a key's text, as stored and looked up.
pub fn hash_key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// How many characters a key has: the prefix, 12 hex digits of id, `_`, 64 of secret.
pub const KEY_CHARACTERS: usize = KEY_PREFIX.len() + 12 + 1 + 64;

/// The public id in a key's text, if it has the shape of a Fathom key
/// (safe to log: the id is not secret).
pub fn id_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_digits(id, 12) && hex_digits(secret, 64)).then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_has_its_id_inside_and_hashes_to_what_is_stored() {
        let key = GeneratedKey::generate().unwrap();
        assert_eq!(id_of(&key.text), Some(key.id.as_str()));
        assert_eq!(hash_key(&key.text), key.secret_sha256);
        assert_eq!(key.text.len(), KEY_CHARACTERS);
        assert!(!format!("{key:?}").contains(&key.text[20..]));
        let other = GeneratedKey::generate().unwrap();
        assert_ne!(key.text, other.text);
    }

    #[test]
    fn text_that_is_not_a_key_has_no_id() {
        assert_eq!(id_of("Bearer x"), None);
        assert_eq!(id_of("fathom_0123456789ab_short"), None);
    }
}
