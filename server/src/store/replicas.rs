//! Read replicas: which database a read goes to, and which replicas are fit
//! to serve reads.
//!
//! Writes, DDL, key checks and catalog reads go to the primary; handlers
//! ask [`Store::reader`] for the store a pure read (Get, Count, Scroll,
//! Search) runs on, by the consistency the read asks for:
//!
//! - *eventual*: the next replica in rotation, round robin (the primary if
//!   none is);
//! - *strong*: the primary;
//! - *after a token*: a replica in rotation whose replay position has
//!   reached the token, polled until the token wait passes; then the
//!   primary. Never a replica that has not replayed the write.
//!
//! Searches with a keyword leg on collections ranked by BM25 go to the
//! primary whatever they ask ([`Store::search_reader`]).
//!
//! A probe per replica ([`Store::watch_replicas`]) reads its replay position
//! and puts it out of rotation while it fails, is not a standby, or lags
//! more than the configured bound, and back once it is healthy again. Lag
//! is measured against the primary, not the replica's own clock: the probe
//! samples the primary's WAL position each round, and a replica's lag is
//! the age of the oldest sample it has not replayed (0 if it replayed them
//! all). So a replica whose connection to the primary broke shows its lag
//! growing, though it replays nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::outages::Outages;
use super::sql_spans::sql;
use super::{CONNECT_TIMEOUT, Store, StoreError};
use crate::domain::{Collection, ConsistencyToken, KeywordRanking, ReadConsistency};

/// How a server uses its read replicas.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// A replica is out of rotation while it lags the primary by more than this.
    pub max_lag: Duration,
    /// How long a read with a token waits for a replica to replay that far
    /// before the primary serves it.
    pub token_wait: Duration,
}

/// Lag allowed unless configured otherwise.
pub const DEFAULT_REPLICA_MAX_LAG: Duration = Duration::from_secs(10);

/// Token wait unless configured otherwise: a replica with ordinary lag
/// (milliseconds) catches up well within it, and a read that waits it out
/// costs that much more than on the primary.
pub const DEFAULT_REPLICA_TOKEN_WAIT: Duration = Duration::from_millis(500);

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            max_lag: DEFAULT_REPLICA_MAX_LAG,
            token_wait: DEFAULT_REPLICA_TOKEN_WAIT,
        }
    }
}

/// Most samples of the primary's position a replica's lag is measured by:
/// while a replica replays nothing, one is added per probe, and past this
/// the newest are dropped (the oldest, which gives the lag, stays).
const MAX_PRIMARY_SAMPLES: usize = 1024;

/// The replicas of a server, and what the probes know of them.
pub(super) struct Replicas {
    members: Vec<Replica>,
    /// Where the next round-robin pick starts.
    next: AtomicUsize,
    settings: ReplicaSettings,
}

/// One replica.
struct Replica {
    /// `host:port`: the `replica` label of its metrics and logs.
    name: String,
    pool: PgPool,
    /// The probe's verdict, for the pool (as the primary's health probe does).
    outages: Arc<Outages>,
    /// Whether reads may go to it.
    in_rotation: AtomicBool,
    /// The highest replay position seen (replay only moves forward), so a
    /// token it has passed needs no query.
    replayed: AtomicU64,
    /// Positions of the primary, with when they were read, that this replica
    /// had not replayed at the last probe; oldest first.
    unreplayed: Mutex<VecDeque<(Instant, u64)>>,
}

impl Replicas {
    /// Pools for `urls` (connected lazily; nothing is in rotation until
    /// [`Store::probe_replicas`] finds it healthy), with the primary's
    /// session settings `session`.
    pub(super) fn new(
        urls: &[String],
        settings: ReplicaSettings,
        max_connections: u32,
        session: impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> Result<Self, StoreError> {
        let members = urls
            .iter()
            .map(|url| {
                let options: PgConnectOptions = url.parse().map_err(StoreError::Database)?;
                let name = format!("{}:{}", options.get_host(), options.get_port());
                let outages = Arc::new(Outages::default());
                let outdated = outages.clone();
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .test_before_acquire(false)
                    .before_acquire(move |_, meta| {
                        let usable = !outdated.predates_last(meta.age);
                        Box::pin(async move { Ok(usable) })
                    })
                    .connect_lazy_with(session(options).application_name("fathom-replica"));
                Ok(Replica {
                    name,
                    pool,
                    outages,
                    in_rotation: AtomicBool::new(false),
                    replayed: AtomicU64::new(0),
                    unreplayed: Mutex::new(VecDeque::new()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            members,
            next: AtomicUsize::new(0),
            settings,
        })
    }

    /// The replicas in rotation, from the next round-robin start.
    fn in_rotation(&self) -> impl Iterator<Item = &Replica> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.members.len();
        (0..count)
            .map(move |i| &self.members[(start + i) % count])
            .filter(|replica| replica.in_rotation.load(Ordering::Relaxed))
    }

    /// A replica in rotation that has replayed `token`, polling their replay
    /// positions until the token wait passes; `None` then.
    async fn replayed(&self, token: ConsistencyToken) -> Option<&Replica> {
        let deadline = Instant::now() + self.settings.token_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let candidates: Vec<&Replica> = self.in_rotation().collect();
            if candidates.is_empty() {
                return None;
            }
            if let Some(replica) = candidates
                .iter()
                .find(|r| r.replayed.load(Ordering::Relaxed) >= token.lsn())
            {
                return Some(replica);
            }
            for replica in &candidates {
                // Bounded by the wait: a busy pool must not hold the read longer.
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(Ok(position)) = tokio::time::timeout(left, replay_position(&replica.pool)).await {
                    replica.replayed.fetch_max(position, Ordering::Relaxed);
                    if position >= token.lsn() {
                        return Some(replica);
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Where the WAL `pool`'s server has replayed to; 0 if it is not a standby.
async fn replay_position(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let lsn: Option<i64> = sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8")
        .fetch_one(pool)
        .instrument(sql("SELECT", "replica replay position"))
        .await?;
    Ok(lsn.unwrap_or(0) as u64)
}

/// What a probe of a replica found.
enum Probe {
    /// A standby, replayed to this position.
    Standby(u64),
    /// A server that is not in recovery: promoted, or not a replica at all.
    NotAStandby,
}

async fn probe(pool: &PgPool) -> Result<Probe, sqlx::Error> {
    let (in_recovery, replayed): (bool, Option<i64>) =
        sqlx::query_as("SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8")
            .fetch_one(pool)
            .instrument(sql("SELECT", "probe replica"))
            .await?;
    Ok(match (in_recovery, replayed) {
        (true, Some(lsn)) => Probe::Standby(lsn as u64),
        _ => Probe::NotAStandby,
    })
}

impl Replica {
    /// Takes the probe's findings: the primary at `primary` (if it
    /// answered) at `now`, and this replica's answer. Logs a change of
    /// rotation and records the metrics.
    fn update(&self, now: Instant, primary: Option<u64>, found: Result<Probe, sqlx::Error>, max_lag: Duration) {
        let verdict = match found {
            Err(error) => {
                self.outages.record();
                Err(format!("it does not answer: {error}"))
            }
            Ok(Probe::NotAStandby) => {
                self.outages.record_recovery();
                Err("it is not a standby (promoted, or a primary): its data may not follow the primary's".to_owned())
            }
            Ok(Probe::Standby(replayed)) => {
                self.outages.record_recovery();
                self.replayed.fetch_max(replayed, Ordering::Relaxed);
                let lag = self.lag(now, primary, replayed);
                crate::metrics::replica_lag(&self.name, lag);
                if lag > max_lag {
                    Err(format!("it lags the primary by {lag:?}, more than {max_lag:?}"))
                } else {
                    Ok(())
                }
            }
        };
        let was = self.in_rotation.swap(verdict.is_ok(), Ordering::Relaxed);
        crate::metrics::replica_in_rotation(&self.name, verdict.is_ok());
        match (was, verdict) {
            (false, Ok(())) => tracing::info!(replica = %self.name, "replica in rotation: reads may go to it"),
            (true, Err(why)) => tracing::warn!(replica = %self.name, why, "replica out of rotation"),
            _ => {}
        }
    }

    /// How long ago the primary was at the oldest position this replica has
    /// not replayed; zero if it has replayed every sample.
    fn lag(&self, now: Instant, primary: Option<u64>, replayed: u64) -> Duration {
        let mut unreplayed = self.unreplayed.lock().expect("not poisoned");
        if let Some(position) = primary
            && unreplayed.back().is_none_or(|&(_, last)| position > last)
        {
            if unreplayed.len() >= MAX_PRIMARY_SAMPLES {
                unreplayed.pop_back();
            }
            unreplayed.push_back((now, position));
        }
        while unreplayed.front().is_some_and(|&(_, position)| position <= replayed) {
            unreplayed.pop_front();
        }
        unreplayed.front().map_or(Duration::ZERO, |&(at, _)| now - at)
    }
}

impl Store {
    /// Reads go to these replicas (streaming standbys of this store's
    /// database), as `settings` say; see [`Store::reader`]. None is in
    /// rotation until a probe ([`Store::probe_replicas`]) finds it healthy.
    pub fn with_replicas(mut self, urls: &[String], settings: ReplicaSettings) -> Result<Self, StoreError> {
        if urls.is_empty() {
            self.replicas = None;
            return Ok(self);
        }
        let timeout = self.statement_timeout;
        let replicas = Replicas::new(urls, settings, self.max_connections, |options| {
            super::session_options(options, timeout)
        })?;
        self.replicas = Some(Arc::new(replicas));
        Ok(self)
    }

    /// The store a read asking for `consistency` runs on: the primary's, or
    /// a replica's (see the module's documentation). Counted by consistency
    /// and by who serves it when the server has replicas.
    pub async fn reader(&self, consistency: ReadConsistency) -> Store {
        let Some(replicas) = &self.replicas else {
            return self.clone();
        };
        let replica = match consistency {
            ReadConsistency::Strong => None,
            ReadConsistency::Eventual => replicas.in_rotation().next(),
            ReadConsistency::AtLeast(token) => replicas.replayed(token).await,
        };
        crate::metrics::read_routed(consistency.label(), replica.map_or("primary", |r| r.name.as_str()));
        match replica {
            None => self.clone(),
            Some(replica) => Store {
                pool: replica.pool.clone(),
                outages: replica.outages.clone(),
                replicas: None,
                ..self.clone()
            },
        }
    }

    /// The store a search runs on: as [`Store::reader`] says, except that a
    /// search with a keyword leg on a collection ranked by BM25 runs on the
    /// primary. pg_textsearch (1.0.0) keeps a BM25 index's recent postings
    /// in the primary's shared memory, not in the WAL, so a standby's copy
    /// of the index is incomplete (empty until the first spill: reading it
    /// fails).
    pub async fn search_reader(&self, collection: &Collection, has_text: bool, consistency: ReadConsistency) -> Store {
        if self.replicas.is_some() && has_text && collection.keyword_ranking == KeywordRanking::Bm25 {
            crate::metrics::read_routed(consistency.label(), "primary");
            return self.clone();
        }
        self.reader(consistency).await
    }

    /// Probes every replica once: puts the healthy ones in rotation and
    /// takes the others out, logging each change.
    pub async fn probe_replicas(&self) {
        let Some(replicas) = &self.replicas else {
            return;
        };
        let primary: Option<i64> = match self.reachable_pool() {
            Ok(pool) => sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8")
                .fetch_one(pool)
                .instrument(sql("SELECT", "primary position"))
                .await
                .ok(),
            Err(_) => None,
        };
        let now = Instant::now();
        // At once, so one replica that does not answer delays no other's verdict.
        let probes = replicas.members.iter().map(|replica| async move {
            let found = match tokio::time::timeout(CONNECT_TIMEOUT, probe(&replica.pool)).await {
                Ok(found) => found,
                Err(_) => Err(sqlx::Error::PoolTimedOut),
            };
            replica.update(now, primary.map(|p| p as u64), found, replicas.settings.max_lag);
        });
        futures::future::join_all(probes).await;
    }

    /// Probes the replicas every `interval` until `stop` is cancelled.
    pub async fn watch_replicas(self, interval: Duration, stop: CancellationToken) {
        if self.replicas.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => self.probe_replicas().await,
            }
        }
    }

    /// Closes the replicas' connections.
    pub(super) async fn close_replicas(&self) {
        if let Some(replicas) = &self.replicas {
            for replica in &replicas.members {
                replica.pool.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> Replica {
        Replica {
            name: "r:1".to_owned(),
            pool: PgPoolOptions::new()
                .connect_lazy("postgres://127.0.0.1:1/none")
                .unwrap(),
            outages: Arc::default(),
            in_rotation: AtomicBool::new(false),
            replayed: AtomicU64::new(0),
            unreplayed: Mutex::default(),
        }
    }

    #[tokio::test]
    async fn lag_is_the_age_of_the_oldest_primary_position_not_replayed() {
        let replica = replica();
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(replica.lag(at(0), Some(100), 100), Duration::ZERO, "caught up");
        assert_eq!(replica.lag(at(1), Some(200), 100), Duration::ZERO, "just sampled");
        assert_eq!(replica.lag(at(3), Some(300), 150), Duration::from_secs(2));
        assert_eq!(
            replica.lag(at(4), None, 250),
            Duration::from_secs(1),
            "the primary did not answer"
        );
        assert_eq!(
            replica.lag(at(9), Some(300), 250),
            Duration::from_secs(6),
            "no progress"
        );
        assert_eq!(replica.lag(at(10), Some(300), 300), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_replica_that_fails_or_lags_leaves_the_rotation_and_returns_when_healthy() {
        let replica = replica();
        let start = Instant::now();
        let max_lag = Duration::from_secs(10);
        replica.update(start, Some(10), Ok(Probe::Standby(10)), max_lag);
        assert!(replica.in_rotation.load(Ordering::Relaxed));
        replica.update(start, Some(20), Err(sqlx::Error::PoolTimedOut), max_lag);
        assert!(!replica.in_rotation.load(Ordering::Relaxed));
        assert!(replica.outages.is_down());
        replica.update(
            start + Duration::from_secs(1),
            Some(20),
            Ok(Probe::Standby(10)),
            max_lag,
        );
        assert!(replica.in_rotation.load(Ordering::Relaxed), "1 s behind");
        replica.update(
            start + Duration::from_secs(12),
            Some(30),
            Ok(Probe::Standby(10)),
            max_lag,
        );
        assert!(!replica.in_rotation.load(Ordering::Relaxed), "12 s behind");
        replica.update(
            start + Duration::from_secs(13),
            Some(30),
            Ok(Probe::Standby(30)),
            max_lag,
        );
        assert!(replica.in_rotation.load(Ordering::Relaxed), "caught up");
        replica.update(
            start + Duration::from_secs(14),
            Some(30),
            Ok(Probe::NotAStandby),
            max_lag,
        );
        assert!(!replica.in_rotation.load(Ordering::Relaxed));
    }
}
