//! API keys over the `fathom.v1.Keys` service: create, list, revoke. Every
//! call needs an admin key; an admin key bound to a tenant or collections,
//! or expiring, manages only keys no wider than itself.

use std::time::{Duration, SystemTime};

use fathom_api::v1 as pb;
use pb::keys_client::KeysClient;

use crate::retry::idempotent;
use crate::{Client, Error};

impl Client {
    pub(crate) fn keys_stub(&self) -> KeysClient<crate::Transport> {
        KeysClient::new(self.transport.clone())
    }

    /// Starts a CreateKey of a key with `role` for what `description`
    /// says (1 to 256 characters). Not retried: a retry after a lost
    /// answer would create a second key.
    ///
    /// ```no_run
    /// # async fn demo(client: fathom_client::Client) -> Result<(), fathom_client::Error> {
    /// use fathom_client::proto::KeyRole;
    /// let created = client
    ///     .create_key(KeyRole::Write, "acme ingest")
    ///     .tenant("acme")
    ///     .expires_in(std::time::Duration::from_secs(30 * 86_400))
    ///     .send()
    ///     .await?;
    /// println!("{}", created.key); // shown once; only its hash is kept
    /// # Ok(()) }
    /// ```
    pub fn create_key(&self, role: pb::KeyRole, description: impl Into<String>) -> CreateKey {
        CreateKey {
            client: self.clone(),
            request: pb::CreateKeyRequest {
                role: role as i32,
                description: description.into(),
                ..Default::default()
            },
        }
    }

    /// The keys this client's key may manage, revoked and expired ones
    /// too, oldest first; never their secrets.
    pub async fn list_keys(&self) -> Result<Vec<pb::ApiKey>, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::ListKeysRequest {});
            Ok(self.keys_stub().list_keys(request).await?.into_inner().keys)
        })
        .await
    }

    /// Revokes the key `id` (12 hex digits, as [`Client::list_keys`] shows
    /// it): servers refuse it from then on. Revoking a revoked key succeeds
    /// and changes nothing, so this is retried. Fails with NOT_FOUND for an
    /// unknown id, or one this client's key may not manage.
    pub async fn revoke_key(&self, id: &str) -> Result<pb::ApiKey, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::RevokeKeyRequest { id: id.into() });
            self.keys_stub()
                .revoke_key(request)
                .await?
                .into_inner()
                .api_key
                .ok_or_else(|| Error::Protocol("RevokeKey returned no key".into()))
        })
        .await
    }
}

/// A CreateKey request being built.
#[derive(Debug, Clone)]
pub struct CreateKey {
    client: Client,
    request: pb::CreateKeyRequest,
}

impl CreateKey {
    /// Binds the key to one tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.request.tenant = Some(tenant.into());
        self
    }

    /// Binds the key to a collection (call again for more).
    pub fn collection(mut self, name: impl Into<String>) -> Self {
        self.request.collections.push(name.into());
        self
    }

    /// Makes the key expire at `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.request.expire_time = Some(at.into());
        self
    }

    /// Makes the key expire `after` from now (this machine's clock).
    pub fn expires_in(self, after: Duration) -> Self {
        self.expires_at(SystemTime::now() + after)
    }

    /// Creates the key: its text (`key`, returned only now) and its record
    /// (`api_key`).
    pub async fn send(self) -> Result<pb::CreateKeyResponse, Error> {
        let request = self.client.request(self.request);
        let created = self.client.keys_stub().create_key(request).await?.into_inner();
        if created.api_key.is_none() {
            return Err(Error::Protocol("CreateKey returned no key record".into()));
        }
        Ok(created)
    }
}
