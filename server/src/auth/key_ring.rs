//! The active API keys, as this server last read them from the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api_key::hash_key;
use crate::domain::{Access, KeyGrant, KeyId};
use crate::store::{Store, StoreError};

/// How often a server re-reads the keys unless configured otherwise: a key
/// revoked on one server is refused by every server within about this long.
pub const DEFAULT_KEY_REFRESH: Duration = Duration::from_millis(250);

/// The active keys as last read: id and grant by the SHA-256 of the key's text.
type ActiveKeys = HashMap<[u8; 32], (KeyId, KeyGrant)>;

/// Active keys by the SHA-256 of their text. Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<Arc<ActiveKeys>>>,
}

impl KeyRing {
    /// Reads the active keys from the database, replacing what the ring held;
    /// returns how many there are.
    pub async fn load(&self, store: &Store) -> Result<usize, StoreError> {
        let keys: ActiveKeys = store
            .active_api_keys()
            .await?
            .into_iter()
            .map(|key| (key.secret_sha256, (key.id, key.grant)))
            .collect();
        let count = keys.len();
        *self.keys.write().expect("key ring lock") = Arc::new(keys);
        Ok(count)
    }

    /// What the key `text` grants, if it is active.
    pub fn access(&self, text: &str) -> Option<Access> {
        let keys = self.keys.read().expect("key ring lock").clone();
        keys.get(&hash_key(text))
            .map(|(id, grant)| Access::through_key(id.clone(), grant.clone()))
    }

    /// Re-reads the keys every `interval` until `stop`. While the database
    /// cannot be read the ring keeps what it last read (requests that need
    /// the database fail on their own then).
    pub async fn refresh_every(self, store: Store, interval: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.load(&store).await {
                Ok(_) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "cannot re-read API keys; using the ones read last");
                }
                Err(_) => {}
            }
        }
    }
}
