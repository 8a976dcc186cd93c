//! API keys in `fathom.api_keys`: created, listed and revoked by
//! `fathom keys`, read by every server's key ring.

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

/// A key that may be used now: what the key ring holds.
#[derive(Debug, Clone)]
pub struct ActiveApiKey {
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
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// secret_sha256, id, role, tenant, collections.
type ActiveKeyRow = (Vec<u8>, String, String, Option<String>, Option<Vec<String>>);

const KEY_COLUMNS: &str = "id, role, tenant, collections, description, created_at, revoked_at";

impl Store {
    /// Stores a new key.
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let collections: Option<Vec<String>> = key.grant.collections.as_ref().map(|c| c.iter().cloned().collect());
        let row: KeyRow = sqlx::query_as(&format!(
            "INSERT INTO fathom.api_keys (id, secret_sha256, role, tenant, collections, description) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
        ))
        .bind(key.id.as_str())
        .bind(&key.secret_sha256[..])
        .bind(key.grant.role.as_str())
        .bind(&key.grant.tenant)
        .bind(&collections)
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

    /// The keys that are not revoked.
    pub async fn active_api_keys(&self) -> Result<Vec<ActiveApiKey>, StoreError> {
        let rows: Vec<ActiveKeyRow> = sqlx::query_as(
            "SELECT secret_sha256, id, role, tenant, collections FROM fathom.api_keys WHERE revoked_at IS NULL",
        )
        .fetch_all(self.reachable_pool()?)
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|(hash, id, role, tenant, collections)| {
                let secret_sha256 = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(format!("api key {id}: secret_sha256 is not 32 bytes")))?;
                Ok(ActiveApiKey {
                    secret_sha256,
                    grant: grant(&id, &role, tenant, collections)?,
                    id: KeyId::new(id),
                })
            })
            .collect()
    }
}

fn record(
    (id, role, tenant, collections, description, created_at, revoked_at): KeyRow,
) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        grant: grant(&id, &role, tenant, collections)?,
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
) -> Result<KeyGrant, StoreError> {
    let role = Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("api key {id}: unknown role {role:?}")))?;
    Ok(KeyGrant {
        role,
        tenant,
        collections: collections.map(|c| c.into_iter().collect()),
    })
}
