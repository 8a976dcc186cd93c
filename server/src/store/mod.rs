//! The store: every SQL statement Fathom runs lives below this module.
//!
//! Collections are rows in `fathom.collections` and tables in the
//! `fathom_data` schema. Table and index names derive from validated
//! [`CollectionName`]s and are quoted by [`sql_identifiers`] alone; every
//! value is a bound parameter.

mod api_keys;
mod automatic_indexes;
mod bm25_indexes;
mod bm25_restarts;
mod collection_aliases;
mod collections_catalog;
mod commit_tokens;
mod documents;
mod error;
mod filter_sql;
mod index_builds;
mod keyword_leg;
mod outages;
mod replicas;
mod search;
mod sql_identifiers;
mod sql_spans;
mod statement_cancel;
mod suspect_connections;
mod upsert_streams;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use api_keys::{ApiKeyRecord, KeyState, NewApiKey, UnrevokedApiKey};
pub use automatic_indexes::DEFAULT_INDEXING_THRESHOLD_BYTES;
pub use commit_tokens::Committed;
pub use documents::ScrollCursor;
pub use error::{NameHolder, StoreError};
pub use replicas::{DEFAULT_REPLICA_MAX_LAG, DEFAULT_REPLICA_TOKEN_WAIT, ReplicaSettings};
pub use search::SearchHits;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
pub use upsert_streams::BatchOutcome;

use crate::domain::{Collection, CollectionName, KeywordRanking};

/// How long connecting (or waiting for a pooled connection) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's `statement_timeout` on pooled connections, unless the
/// server is configured otherwise.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Handle to the database: a connection pool and a cache of the catalog.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The most connections `pool` may open.
    max_connections: u32,
    /// Catalog rows by name. Collections never change after creation, so an
    /// entry stays valid until the collection is dropped; a drop by another
    /// server shows up as a missing table, which evicts the entry. Keyed by
    /// collections' own names only: aliases change, so a name that is not
    /// cached is read from the database with its alias in one query
    /// ([`Store::collection`]), and every server sees a switch at once.
    catalog: Arc<RwLock<HashMap<CollectionName, Arc<Collection>>>>,
    /// When the database last failed; older connections are not reused.
    outages: Arc<outages::Outages>,
    /// How long a statement may run, unless the request's deadline is sooner.
    statement_timeout: Duration,
    /// How to connect to cancel an abandoned request's statement (outside
    /// the pool, which may be exhausted by the very requests to cancel).
    cancel_options: Arc<PgConnectOptions>,
    /// How to connect to build an index: no statement timeout.
    build_options: Arc<PgConnectOptions>,
    /// Least `maintenance_work_mem` an index build gets.
    index_build_memory_bytes: i64,
    /// When collections built automatically get their index.
    automatic_indexes: Arc<automatic_indexes::AutomaticIndexes>,
    /// How collections created from now on rank keyword searches (see
    /// [`Store::prepare_keyword_ranking`]).
    new_collection_ranking: KeywordRanking,
    /// BM25 indexes rebuilt once per PostgreSQL start, before a new
    /// connection to it is used.
    bm25_restarts: Arc<bm25_restarts::Bm25Restarts>,
    /// The read replicas reads may go to ([`Store::reader`]); `None`
    /// without replicas, and in the store of a read routed to a replica.
    replicas: Option<Arc<replicas::Replicas>>,
}

/// Least `maintenance_work_mem` for an index build unless configured: an
/// HNSW build is many times faster when its graph fits in memory (pgvector
/// warns when it does not); 100,000 × 768 needs about 400 MB.
pub const DEFAULT_INDEX_BUILD_MEMORY_BYTES: u64 = 1 << 30;

impl Store {
    /// Connects a pool of at most `max_connections` to `database_url`, with
    /// the default statement timeout.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(database_url, max_connections, DEFAULT_STATEMENT_TIMEOUT).await
    }

    /// Connects a pool of at most `max_connections` to `database_url`; a
    /// statement running longer than `statement_timeout` is cancelled.
    pub async fn connect_with(
        database_url: &str,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = database_url.parse().map_err(StoreError::Database)?;
        let cancel_options = Arc::new(options.clone().application_name("fathom-cancel"));
        let build_options = Arc::new(
            options
                .clone()
                .options([("timezone", "UTC"), ("statement_timeout", "0")])
                .application_name("fathom-index-build"),
        );
        let options = session_options(options, statement_timeout).application_name("fathom");
        // One connection first, so a wrong URL is reported as what it is
        // (refused, unknown host, bad password), not as a pool timeout.
        let address = format!("{}:{}", options.get_host(), options.get_port());
        let cannot_connect = |cause: String| StoreError::CannotConnect {
            address: address.clone(),
            cause,
        };
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Err(_) => return Err(cannot_connect(format!("no answer within {CONNECT_TIMEOUT:?}"))),
            Ok(Err(error)) => return Err(cannot_connect(error.to_string())),
            Ok(Ok(connection)) => drop(connection),
        }
        let outages = Arc::new(outages::Outages::default());
        let outdated = outages.clone();
        let bm25_restarts = Arc::new(bm25_restarts::Bm25Restarts::new(build_options.clone()));
        let restarts = bm25_restarts.clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            // Health is probed separately; pinging before every query would
            // add a round trip to every request. A connection opened before
            // the last outage the probe saw is closed instead of used.
            .test_before_acquire(false)
            // A connection that read a large row keeps a buffer of its size;
            // an idle one gives it back, so the pool holds no more than
            // what is in use.
            .after_release(|conn, _| {
                use sqlx::Connection;
                conn.shrink_buffers();
                Box::pin(async { Ok(true) })
            })
            .before_acquire(move |_, meta| {
                let usable = !outdated.predates_last(meta.age);
                Box::pin(async move { Ok(usable) })
            })
            .after_connect(move |conn, _| {
                let restarts = restarts.clone();
                Box::pin(async move { restarts.rebuild_if_restarted(conn).await })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::from)?;
        Ok(Self {
            pool,
            max_connections,
            catalog: Arc::default(),
            outages,
            statement_timeout,
            cancel_options,
            build_options,
            index_build_memory_bytes: DEFAULT_INDEX_BUILD_MEMORY_BYTES as i64,
            automatic_indexes: Arc::new(automatic_indexes::AutomaticIndexes::new(
                DEFAULT_INDEXING_THRESHOLD_BYTES,
            )),
            new_collection_ranking: KeywordRanking::TsRank,
            bm25_restarts,
            replicas: None,
        })
    }

    /// Gives index builds at least `bytes` of `maintenance_work_mem`.
    pub fn with_index_build_memory(mut self, bytes: u64) -> Self {
        self.index_build_memory_bytes = bytes.min(i64::MAX as u64) as i64;
        self
    }

    /// Records that the database failed (the health probe lost it), so no
    /// connection opened before now is used again, and requests are
    /// refused at once until [`Store::record_recovery`].
    pub fn record_outage(&self) {
        self.outages.record();
    }

    /// Records that the database answers again (the health probe reached it).
    pub fn record_recovery(&self) {
        self.outages.record_recovery();
    }

    /// The pool, unless the database is known to be down: then waiting for
    /// a connection would only wait out the connect timeout, so the
    /// request is refused at once, and the client's backoff does the waiting.
    fn reachable_pool(&self) -> Result<&PgPool, StoreError> {
        if self.outages.is_down() {
            return Err(StoreError::DatabaseDown);
        }
        Ok(&self.pool)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// How many sessions of fathom servers (their pools and health probes)
    /// are connected to the cluster of `database_url`.
    pub async fn fathom_sessions(database_url: &str) -> Result<i64, StoreError> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database_url).await?;
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('fathom', 'fathom-health')",
        )
        .fetch_one(&mut conn)
        .await?)
    }

    /// A database error as a [`StoreError`]. A pool timeout means overload
    /// when every allowed connection is open (and busy), but the database
    /// when the pool could not open the connections it may: connecting
    /// failed until the deadline.
    pub(super) fn error(&self, error: sqlx::Error) -> StoreError {
        if matches!(error, sqlx::Error::PoolTimedOut) && self.pool.size() >= self.max_connections {
            return StoreError::PoolExhausted {
                waited: CONNECT_TIMEOUT,
            };
        }
        StoreError::from(error)
    }

    /// Sets the connection pool gauges (see [`crate::metrics::pool_connections`]).
    pub fn record_pool_metrics(&self) {
        let (size, idle) = (self.pool.size(), self.pool.num_idle() as u32);
        crate::metrics::pool_connections(size.saturating_sub(idle), idle);
    }

    /// The connection pool, for tests and tools that look at what the
    /// store's own sessions hold (their prepared statements and plans).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
        self.close_replicas().await;
    }
}

/// The settings of every session fathom's requests run on, the primary's
/// and the replicas' alike.
fn session_options(options: PgConnectOptions, statement_timeout: Duration) -> PgConnectOptions {
    // Timestamps in filters without an offset are read as UTC, whatever
    // the server's default. Every COMMIT waits for the WAL flush, also
    // where the database's default does not: what fathom acknowledges
    // (a batch, a new collection, a delete) must survive a crash of
    // PostgreSQL.
    // PostgreSQL cancels a statement that runs past the timeout, so no
    // request holds a connection without bound (a client that went
    // away, a lock that is never released).
    let timeout_setting = format!("{}ms", statement_timeout.as_millis().max(1));
    // Searches at the default breadth need no setting of their own, so
    // they are one round trip; iterative scans let a filtered or
    // tenant-scoped index scan go on until it has its LIMIT of rows.
    let ef_search = crate::domain::EfSearch::DEFAULT.to_string();
    // A BM25 index scan scores as many documents as the statement's
    // LIMIT, which pg_textsearch learns when the statement is planned;
    // a cached plan is not planned again, and the scan would score its
    // default of 1000. This is where such a scan starts instead (it
    // doubles while more rows are wanted): a hybrid search's fewest
    // candidates. A placeholder where the extension is not loaded.
    let bm25_first_batch = crate::domain::MIN_HYBRID_CANDIDATES.to_string();
    options.options([
        ("timezone", "UTC"),
        ("synchronous_commit", "on"),
        ("statement_timeout", timeout_setting.as_str()),
        ("hnsw.ef_search", ef_search.as_str()),
        ("hnsw.iterative_scan", "relaxed_order"),
        ("pg_textsearch.default_limit", bm25_first_batch.as_str()),
    ])
}
