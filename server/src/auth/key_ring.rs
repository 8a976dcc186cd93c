//! The API keys that are not revoked, as this server last read them from
//! the database. Expiry is checked against the clock at every lookup, so a
//! key read before it expired is refused from its expiry on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::api_key::hash_key;
use crate::domain::{Access, KeyGrant, KeyId};
use crate::store::{Store, StoreError};

/// How often a server re-reads the keys unless configured otherwise: a key
/// revoked on one server is refused by every server within about this long.
pub const DEFAULT_KEY_REFRESH: Duration = Duration::from_millis(250);

/// The unrevoked keys as last read: id and grant by the SHA-256 of the key's text.
type UnrevokedKeys = HashMap<[u8; 32], (KeyId, KeyGrant)>;

/// What a key's text is, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// A valid key, and what it grants.
    Granted(Access),
    /// A key past its expiry (it is not revoked).
    Expired {
        /// The key's public id.
        id: KeyId,
        /// When it expired.
        at: DateTime<Utc>,
    },
    /// Not a key this server knows: revoked, or never created (or created
    /// since the ring was read).
    Unknown,
}

/// Unrevoked keys by the SHA-256 of their text, and the store they are read
/// from. Cheap to clone; clones share.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Arc<UnrevokedKeys>>>,
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

    /// Reads the unrevoked keys from the database, replacing what the ring
    /// held; returns how many there are (expired ones included).
    pub async fn load(&self) -> Result<usize, StoreError> {
        let mut begun = self.reads.lock().await;
        self.read_keys(&mut begun).await
    }

    /// [`KeyRing::load`], holding the read lock: `begun` counts the reads.
    async fn read_keys(&self, begun: &mut u64) -> Result<usize, StoreError> {
        *begun += 1;
        self.reads_begun.store(*begun, Ordering::SeqCst);
        let keys: UnrevokedKeys = self
            .store
            .unrevoked_api_keys()
            .await?
            .into_iter()
            .map(|key| (key.secret_sha256, (key.id, key.grant)))
            .collect();
        let count = keys.len();
        *self.keys.write().expect("key ring lock") = Arc::new(keys);
        Ok(count)
    }

    /// What the key `text` is as last read, with its expiry compared to the
    /// clock now.
    pub fn lookup(&self, text: &str) -> KeyLookup {
        self.lookup_at(text, Utc::now())
    }

    /// What the key `text` is as last read, at the time `now`.
    fn lookup_at(&self, text: &str, now: DateTime<Utc>) -> KeyLookup {
        let keys = self.keys.read().expect("key ring lock").clone();
        match keys.get(&hash_key(text)) {
            None => KeyLookup::Unknown,
            Some((id, grant)) => match grant.expires_at {
                Some(at) if grant.is_expired_at(now) => KeyLookup::Expired { id: id.clone(), at },
                _ => KeyLookup::Granted(Access::through_key(id.clone(), grant.clone())),
            },
        }
    }

    /// What the key `text` is, reading the keys again if it is not among
    /// those last read: a key created a moment ago works at once. Misses
    /// share reads: one that began after the miss answers it, and at most
    /// one read runs at a time, so a flood of unknown keys costs the
    /// database one query at a time, not one per request.
    pub async fn lookup_or_reload(&self, text: &str) -> Result<KeyLookup, StoreError> {
        let found = self.lookup(text);
        if found != KeyLookup::Unknown {
            return Ok(found);
        }
        let before_the_miss = self.reads_begun.load(Ordering::SeqCst);
        let mut begun = self.reads.lock().await;
        // A read begun since the miss has finished (the lock is ours): it
        // saw every key created before this request; otherwise read now.
        if *begun == before_the_miss {
            self.read_keys(&mut begun).await?;
        }
        Ok(self.lookup(text))
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
    use crate::auth::GeneratedKey;
    use crate::domain::Role;
    use crate::store::NewApiKey;

    /// A store on a database of its own, migrated (`make test` sets the URL).
    async fn fresh_store() -> Store {
        let admin = std::env::var("FATHOM_TEST_DATABASE_URL").expect("FATHOM_TEST_DATABASE_URL (make test sets it)");
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "fathom_key_ring_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
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
    async fn a_key_read_before_its_expiry_is_refused_from_its_expiry_on() {
        let store = fresh_store().await;
        let key = GeneratedKey::generate().unwrap();
        // Whole microseconds, as PostgreSQL stores them.
        let expires_at = chrono::SubsecRound::trunc_subsecs(Utc::now() + chrono::TimeDelta::hours(1), 6);
        let grant = KeyGrant {
            role: Role::Read,
            tenant: None,
            collections: None,
            expires_at: Some(expires_at),
        };
        store
            .create_api_key(&NewApiKey {
                id: key.id.clone(),
                secret_sha256: key.secret_sha256,
                grant: grant.clone(),
                description: "expiring".into(),
            })
            .await
            .unwrap();
        let ring = KeyRing::new(store);
        assert_eq!(ring.load().await.unwrap(), 1);
        assert_eq!(
            ring.lookup(&key.text),
            KeyLookup::Granted(Access::through_key(key.id.clone(), grant))
        );
        // Nothing is read again: the cached key is compared with the clock.
        let later = expires_at + chrono::TimeDelta::milliseconds(1);
        assert_eq!(
            ring.lookup_at(&key.text, later),
            KeyLookup::Expired {
                id: key.id,
                at: expires_at
            }
        );
        let just_before = expires_at - chrono::TimeDelta::milliseconds(1);
        assert!(matches!(ring.lookup_at(&key.text, just_before), KeyLookup::Granted(_)));
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
            async move { ring.lookup_or_reload(&key).await }
        });
        while ring.reads_begun.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // The first miss's read holds the lock; 49 more misses arrive.
        let later: Vec<_> = (1..50)
            .map(|i| {
                let ring = ring.clone();
                let key = unknown(i);
                tokio::spawn(async move { ring.lookup_or_reload(&key).await })
            })
            .collect();
        // On this single-threaded runtime, each of them runs until it waits
        // for the read lock before this task goes on.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        sqlx::query("ROLLBACK").execute(&mut *locker).await.unwrap();
        drop(locker);
        assert_eq!(first.await.unwrap().unwrap(), KeyLookup::Unknown);
        for miss in later {
            assert_eq!(
                miss.await.unwrap().unwrap(),
                KeyLookup::Unknown,
                "an unknown key grants nothing"
            );
        }
        assert_eq!(
            *ring.reads.lock().await,
            3,
            "the load, the first miss's read, and one read shared by the 49 misses after it"
        );
    }
}
