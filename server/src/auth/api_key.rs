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

/// What keeps `text` from having the shape of a Fathom key, in words; `None`
/// if it has it ([`id_of`] finds an id). Never quotes the secret part.
pub fn shape_problem(text: &str) -> Option<String> {
    let not_hex = |s: &str| s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit());
    if let Some(space) = text.chars().find(|c| c.is_whitespace()) {
        return Some(format!(
            "it contains whitespace ({space:?}); give the key alone, as `fathom keys create` printed it"
        ));
    }
    let Some(rest) = text.strip_prefix(KEY_PREFIX) else {
        return Some(format!("it does not start with `{KEY_PREFIX}`"));
    };
    let Some((id, secret)) = rest.split_once('_') else {
        return Some(format!("it has no `_` after the id that follows `{KEY_PREFIX}`"));
    };
    if id.chars().count() != 12 {
        return Some(format!(
            "its id (between `{KEY_PREFIX}` and the next `_`) has {} characters, not 12",
            id.chars().count()
        ));
    }
    if let Some((_, c)) = not_hex(id) {
        return Some(format!("its id {id} has {c:?}, which is not a hex digit"));
    }
    if secret.chars().count() != 64 {
        return Some(format!(
            "its secret (after the id and `_`) has {} characters, not 64",
            secret.chars().count()
        ));
    }
    if let Some((at, _)) = not_hex(secret) {
        return Some(format!(
            "its secret has a character that is not a hex digit, at position {} of 64",
            secret[..at].chars().count() + 1
        ));
    }
    None
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

    #[test]
    fn the_shape_problem_of_a_malformed_key_names_the_part_that_is_wrong() {
        let key = GeneratedKey::generate().unwrap().text;
        assert_eq!(shape_problem(&key), None);
        let problem = |text: &str| shape_problem(text).unwrap();
        assert_eq!(
            problem("Bearer x"),
            "it contains whitespace (' '); give the key alone, as `fathom keys create` printed it"
        );
        assert_eq!(problem("sk_0123"), "it does not start with `fathom_`");
        assert_eq!(
            problem("fathom_0123456789ab"),
            "it has no `_` after the id that follows `fathom_`"
        );
        assert_eq!(
            problem("fathom_abc_def"),
            "its id (between `fathom_` and the next `_`) has 3 characters, not 12"
        );
        let bad_id = format!("fathom_0123456789aG_{}", &key[20..]);
        assert_eq!(
            problem(&bad_id),
            "its id 0123456789aG has 'G', which is not a hex digit"
        );
        assert_eq!(
            problem(&key[..key.len() - 1]),
            "its secret (after the id and `_`) has 63 characters, not 64"
        );
        let bad_secret = format!("{}z{}", &key[..20], &key[21..]);
        let said = problem(&bad_secret);
        assert_eq!(
            said,
            "its secret has a character that is not a hex digit, at position 1 of 64"
        );
        assert!(!said.contains(&key[21..]));
    }
}
