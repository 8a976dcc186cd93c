//! The `fathom.v1.Keys` service: API keys created, listed and revoked over
//! gRPC. The auth layer lets only admin keys in; here, a key bound to a
//! tenant or collections, or expiring, manages only keys within its own
//! grant ([`Access::check_may_grant`]).

use chrono::{DateTime, Utc};
use fathom_api::v1 as pb;
use pb::keys_server::Keys;
use tonic::{Request, Response, Status};

use super::access::access_of;
use super::error::ApiError;
use super::timestamp_proto::{timestamp_from_proto, timestamp_to_proto};
use crate::auth::{KeyRing, issue_key};
use crate::domain::{Access, KeyId, KeyRequest, KeySpec, Role, Violations};
use crate::store::{ApiKeyRecord, KeyState, Store};

/// Handlers of the Keys service.
pub struct KeysApi {
    store: Store,
    max_tenant_bytes: usize,
    /// This server's key ring (with authentication on), read again after a
    /// revocation so that this server refuses the key at once.
    ring: Option<KeyRing>,
}

impl KeysApi {
    /// Handlers over `store`; tenants of keys are limited to
    /// `max_tenant_bytes`, as tenants of requests are.
    pub(crate) fn new(store: Store, max_tenant_bytes: usize, ring: Option<KeyRing>) -> Self {
        Self {
            store,
            max_tenant_bytes,
            ring,
        }
    }
}

#[tonic::async_trait]
impl Keys for KeysApi {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let access = access_of(&request)?;
        let now = Utc::now();
        let spec = key_spec(request.get_ref(), now, self.max_tenant_bytes)?;
        access.check_may_grant(&spec.grant).map_err(ApiError::from)?;
        let issued = issue_key(&self.store, spec).await.map_err(ApiError::from)?;
        audit_key(&access, "create_key", &issued.record);
        Ok(Response::new(pb::CreateKeyResponse {
            key: issued.text,
            api_key: Some(key_to_proto(&issued.record, now)),
        }))
    }

    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        let access = access_of(&request)?;
        let now = Utc::now();
        let keys = self.store.list_api_keys().await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListKeysResponse {
            keys: keys
                .iter()
                .filter(|key| access.manages(&key.grant))
                .map(|key| key_to_proto(key, now))
                .collect(),
        }))
    }

    async fn revoke_key(
        &self,
        request: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::RevokeKeyResponse>, Status> {
        let access = access_of(&request)?;
        let id = KeyId::parse("id", &request.get_ref().id).map_err(ApiError::from)?;
        // A key outside the caller's grant is as absent as an unknown one,
        // so a narrowed admin cannot tell which other keys exist.
        let managed = self.store.api_key(&id).await.map_err(ApiError::from)?;
        if !managed.is_some_and(|key| access.manages(&key.grant)) {
            return Err(key_not_found(&access, &id).into());
        }
        let revoked = self
            .store
            .revoke_api_key(&id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| key_not_found(&access, &id))?;
        if let Some(ring) = &self.ring
            && let Err(error) = ring.load().await
        {
            // The periodic refresh will see the revocation once the database is back.
            tracing::warn!(%error, key = %id, "cannot re-read the API keys after a revocation");
        }
        audit_key(&access, "revoke_key", &revoked);
        Ok(Response::new(pb::RevokeKeyResponse {
            api_key: Some(key_to_proto(&revoked, Utc::now())),
        }))
    }
}

/// A CreateKeyRequest as a key spec, with every problem reported at once.
fn key_spec(request: &pb::CreateKeyRequest, now: DateTime<Utc>, max_tenant_bytes: usize) -> Result<KeySpec, ApiError> {
    let mut violations = Violations::default();
    let expires_at = request
        .expire_time
        .as_ref()
        .and_then(|t| violations.take(timestamp_from_proto("expire_time", t)));
    let role = match pb::KeyRole::try_from(request.role) {
        Ok(pb::KeyRole::Read) => Some(Role::Read),
        Ok(pb::KeyRole::Write) => Some(Role::Write),
        Ok(pb::KeyRole::Admin) => Some(Role::Admin),
        Ok(pb::KeyRole::Unspecified) | Err(_) => None,
    };
    let spec = violations.take(KeySpec::parse(
        &KeyRequest {
            role,
            tenant: request.tenant.as_deref(),
            collections: &request.collections,
            description: &request.description,
            expires_at,
        },
        now,
        max_tenant_bytes,
    ));
    Ok(violations.finish(|| spec.expect("a spec when nothing was refused"))?)
}

/// The refusal of a key `access` cannot revoke: unknown, or not its to manage.
fn key_not_found(access: &Access, id: &KeyId) -> ApiError {
    let whose = match access.key() {
        Some(key) if !access.manages_every_key() => format!(", or it is outside what key {key} may manage"),
        _ => String::new(),
    };
    ApiError::KeyNotFound(format!("key {id} does not exist{whose} (ListKeys shows the ids)"))
}

/// Records a key's creation or revocation in the audit log (target
/// `fathom::audit`): who, and the key's id and grant, never its secret.
fn audit_key(access: &Access, action: &str, key: &ApiKeyRecord) {
    let collections = key
        .grant
        .collections
        .as_ref()
        .map(|c| c.iter().cloned().collect::<Vec<_>>().join(","));
    tracing::info!(
        target: "fathom::audit",
        key = %access.who(),
        role = %access.role(),
        action,
        subject = %key.id,
        subject_role = %key.grant.role,
        subject_tenant = key.grant.tenant.as_deref().unwrap_or("*"),
        subject_collections = collections.as_deref().unwrap_or("*"),
        "audit"
    );
}

/// A stored key as its proto message, its state as of `now`.
fn key_to_proto(key: &ApiKeyRecord, now: DateTime<Utc>) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        role: match key.grant.role {
            Role::Read => pb::KeyRole::Read,
            Role::Write => pb::KeyRole::Write,
            Role::Admin => pb::KeyRole::Admin,
        } as i32,
        tenant: key.grant.tenant.clone(),
        collections: key.grant.collections.iter().flatten().cloned().collect(),
        description: key.description.clone(),
        create_time: Some(timestamp_to_proto(key.created_at)),
        expire_time: key.grant.expires_at.map(timestamp_to_proto),
        revoke_time: key.revoked_at.map(timestamp_to_proto),
        state: match key.state_at(now) {
            KeyState::Active => pb::KeyState::Active,
            KeyState::Expired => pb::KeyState::Expired,
            KeyState::Revoked => pb::KeyState::Revoked,
        } as i32,
    }
}
