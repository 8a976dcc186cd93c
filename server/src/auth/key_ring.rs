//! The active API keys, as this server last read them from the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Active keys by the SHA-256 of their text, and the store they are read
/// from. Cheap to clone; clones share.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Arc<ActiveKeys>>>,
    store: Store,
    /// Taken by every read of the keys, so at most one runs at a time;
    /// holds how many have begun.
    reads: Arc<tokio::sync::Mutex<u64>>,
    /// How many reads have begun, readable without waiting for `reads`.
    reads_begun: Arc<AtomicU64>,
}

impl KeyRing {
    /// An empty ring over the keys in `store`; [`KeyRing::load`] fills it.
    pub fn new(store: Store) -> Self {
        Self {
            keys: Arc::default(),
            store,
            reads: Arc::default(),
            reads_begun: Arc::default(),
        }
    }

    /// Reads the active keys from the database, replacing what the ring held;
    /// returns how many there are.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let mut begun = self.reads.lock().await;
        self.read_keys(&mut begun).await
    }

    /// [`KeyRing::load`], holding the read lock: `begun` counts the reads.
    async fn read_keys(&self, begun: &mut u64) -> Result<usize, StoreError> {
        *begun += 1;
        self.reads_begun.store(*begun, Ordering::SeqCst);
        let keys: ActiveKeys = self
            .store
            .active_api_keys()
            .await?
            .into_iter()
            .map(|key| (key.secret_sha256, (key.id, key.grant)))
            .collect();
        let count = keys.len();
        *self.keys.write().expect("key ring lock") = Arc::new(keys);
        Ok(count)
    }

    /// What the key `text` grants, if it is active as last read.
    pub fn access(&self, text: &str) -> Option<Access> {
        let keys = self.keys.read().expect("key ring lock").clone();
        keys.get(&hash_key(text))
            .map(|(id, grant)| Access::through_key(id.clone(), grant.clone()))
    }

    /// What the key `text` grants, reading the keys again if it is not among
    /// those last read: a key created a moment ago works at once. Misses
    /// share reads: one that began after the miss answers it, and at most
    /// one read runs at a time, so a flood of unknown keys costs the
    /// database one query at a time, not one per request.
    pub async fn access_or_reload(&self, text: &str) -> Result<Option<Access>, StoreError> {
        if let Some(access) = self.access(text) {
            return Ok(Some(access));
        }
        let before_the_miss = self.reads_begun.load(Ordering::SeqCst);
        let mut begun = self.reads.lock().await;
        // A read begun since the miss has finished (the lock is ours): it
        // saw every key created before this request; otherwise read now.
        if *begun == before_the_miss {
            self.read_keys(&mut begun).await?;
        }
        Ok(self.access(text))
    }

    /// Re-reads the keys every `interval` until `stop`. While the database
    /// cannot be read the ring keeps what it last read (requests that need
    /// the database fail on their own then).
    pub async fn refresh_every(self, interval: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.load().await {
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

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// A store on a database of its own, migrated (`make test` sets the URL).
    async fn fresh_store() -> Store {
        let admin = std::env::var("FATHOM_TEST_DATABASE_URL").expect("FATHOM_TEST_DATABASE_URL (make test sets it)");
        let name = format!("fathom_key_ring_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let store = Store::connect(&format!("{base}/{name}"), 4).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn misses_while_a_read_of_the_keys_runs_share_one_read_after_it() {
        let store = fresh_store().await;
        let ring = KeyRing::new(store.clone());
        ring.load().await.unwrap();
        // Hold the keys' table, so the next read waits in the database.
        let mut locker = store.pool().acquire().await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE fathom.api_keys IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await
            .unwrap();
        let unknown = |i: usize| format!("fathom_{i:012}_{}", "s".repeat(32));
        let first = tokio::spawn({
            let ring = ring.clone();
            let key = unknown(0);
            async move { ring.access_or_reload(&key).await }
        });
        while ring.reads_begun.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // The first miss's read holds the lock; 49 more misses arrive.
        let later: Vec<_> = (1..50)
            .map(|i| {
                let ring = ring.clone();
                let key = unknown(i);
                tokio::spawn(async move { ring.access_or_reload(&key).await })
            })
            .collect();
        // On this single-threaded runtime, each of them runs until it waits
        // for the read lock before this task goes on.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        sqlx::query("ROLLBACK").execute(&mut *locker).await.unwrap();
        drop(locker);
        assert!(first.await.unwrap().unwrap().is_none());
        for miss in later {
            assert!(miss.await.unwrap().unwrap().is_none(), "an unknown key grants nothing");
        }
        assert_eq!(
            *ring.reads.lock().await,
            3,
            "the load, the first miss's read, and one read shared by the 49 misses after it"
        );
    }
}
