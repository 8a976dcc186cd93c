//! API keys in `fathom.api_keys`: created, listed and revoked by
//! `fathom keys` and the Keys service, read by every server's key ring.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::{KeyGrant, KeyId, Role};

/// A key to store: its id, the SHA-256 of its whole text, and its grant.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key's public id.
    pub id: KeyId,
    /// SHA-256 of the key's text (the key itself is never stored).
    pub secret_sha256: [u8; 32],
    /// What the key may touch.
    pub grant: KeyGrant,
    /// What the key is for, as its creator described it.
    pub description: String,
}

/// A stored key, without its secret.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// The key's public id.
    pub id: KeyId,
    /// What the key may touch.
    pub grant: KeyGrant,
    /// What the key is for.
    pub description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether a key is accepted at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Neither revoked nor expired.
    Active,
    /// Past its expiry, not revoked.
    Expired,
    /// Revoked (expired or not).
    Revoked,
}

impl ApiKeyRecord {
    /// Whether the key is accepted at `now`.
    pub fn state_at(&self, now: DateTime<Utc>) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.grant.is_expired_at(now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

/// A key that is not revoked: what the key ring holds (expired ones too,
/// so that it can tell their holders why they are refused).
#[derive(Debug, Clone)]
pub struct UnrevokedApiKey {
    /// SHA-256 of the key's text.
    pub secret_sha256: [u8; 32],
    /// The key's public id.
    pub id: KeyId,
    /// What the key may touch.
    pub grant: KeyGrant,
}

type KeyRow = (
    String,
    String,
    Option<String>,
    Option<Vec<String>>,
    Option<DateTime<Utc>>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// secret_sha256, id, role, tenant, collections, expires_at.
type UnrevokedKeyRow = (
    Vec<u8>,
    String,
    String,
    Option<String>,
    Option<Vec<String>>,
    Option<DateTime<Utc>>,
);

const KEY_COLUMNS: &str = "id, role, tenant, collections, expires_at, description, created_at, revoked_at";

impl Store {
    /// Stores a new key.
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let collections: Option<Vec<String>> = key.grant.collections.as_ref().map(|c| c.iter().cloned().collect());
        let row: KeyRow = sqlx::query_as(&format!(
            "INSERT INTO fathom.api_keys (id, secret_sha256, role, tenant, collections, expires_at, description) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
        ))
        .bind(key.id.as_str())
        .bind(&key.secret_sha256[..])
        .bind(key.grant.role.as_str())
        .bind(&key.grant.tenant)
        .bind(&collections)
        .bind(key.grant.expires_at)
        .bind(&key.description)
        .fetch_one(self.reachable_pool()?)
        .await
        .map_err(|e| self.error(e))?;
        record(row)
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM fathom.api_keys ORDER BY created_at, id"
        ))
        .fetch_all(self.reachable_pool()?)
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter().map(record).collect()
    }

    /// The key `id`, if there is one.
    pub async fn api_key(&self, id: &KeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM fathom.api_keys WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reachable_pool()?)
            .await
            .map_err(|e| self.error(e))?;
        row.map(record).transpose()
    }

    /// Revokes the key `id` (a key revoked before keeps its first
    /// revocation time); `None` if there is no such key.
    pub async fn revoke_api_key(&self, id: &KeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "UPDATE fathom.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING {KEY_COLUMNS}"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reachable_pool()?)
        .await
        .map_err(|e| self.error(e))?;
        row.map(record).transpose()
    }

    /// The keys that are not revoked, expired ones included.
    pub async fn unrevoked_api_keys(&self) -> Result<Vec<UnrevokedApiKey>, StoreError> {
        let rows: Vec<UnrevokedKeyRow> = sqlx::query_as(
            "SELECT secret_sha256, id, role, tenant, collections, expires_at FROM fathom.api_keys \
             WHERE revoked_at IS NULL",
        )
        .fetch_all(self.reachable_pool()?)
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|(hash, id, role, tenant, collections, expires_at)| {
                let secret_sha256 = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(format!("api key {id}: secret_sha256 is not 32 bytes")))?;
                Ok(UnrevokedApiKey {
                    secret_sha256,
                    grant: grant(&id, &role, tenant, collections, expires_at)?,
                    id: KeyId::new(id),
                })
            })
            .collect()
    }
}

fn record(
    (id, role, tenant, collections, expires_at, description, created_at, revoked_at): KeyRow,
) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        grant: grant(&id, &role, tenant, collections, expires_at)?,
        id: KeyId::new(id),
        description,
        created_at,
        revoked_at,
    })
}

fn grant(
    id: &str,
    role: &str,
    tenant: Option<String>,
    collections: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<KeyGrant, StoreError> {
    let role = Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("api key {id}: unknown role {role:?}")))?;
    Ok(KeyGrant {
        role,
        tenant,
        collections: collections.map(|c| c.into_iter().collect()),
        expires_at,
    })
}
