//! BM25 indexes rebuilt once per PostgreSQL start.
//!
//! pg_textsearch 1.0.0 keeps a bm25 index's corpus statistics (how many
//! documents, how long) in shared memory and does not recover them when
//! PostgreSQL restarts, after a clean shutdown as after a crash: the
//! index's scans then return no documents, or only those written since
//! (1,000 matching documents before a fast shutdown, 0 after, in a trial
//! on this machine; fixed upstream after 1.0.0). `REINDEX` recomputes
//! them. So every new pooled connection reads when its PostgreSQL started,
//! and the first to see a start the indexes were not rebuilt for rebuilds
//! them all before it is used: no search reaches an index with lost
//! statistics. `fathom.bm25_rebuilt` records the start they were rebuilt
//! for, so that one fathom of several rebuilds, once.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tracing::Instrument;

use super::bm25_indexes::{EXTENSION, bm25_index_name};
use super::sql_spans::sql;
use crate::domain::CollectionName;

/// Key of the advisory lock under which one fathom at a time rebuilds.
const REBUILD_LOCK: i64 = 0x6661_7468_626d_3235; // "fathbm25"

/// What the pool's connections share: the PostgreSQL start the indexes are
/// known to be rebuilt for, and how to connect to rebuild them.
pub(super) struct Bm25Restarts {
    /// No statement timeout: a rebuild of a large collection takes a while.
    build_options: Arc<PgConnectOptions>,
    rebuilt_for: Mutex<Option<DateTime<Utc>>>,
    /// One rebuild at a time in this process.
    rebuilding: tokio::sync::Mutex<()>,
}

impl Bm25Restarts {
    pub(super) fn new(build_options: Arc<PgConnectOptions>) -> Self {
        Self {
            build_options,
            rebuilt_for: Mutex::new(None),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    /// Makes sure the bm25 indexes of the database `conn` is connected to
    /// were rebuilt since its PostgreSQL started, rebuilding them if not.
    /// A failed rebuild is logged and tried again by the next connection;
    /// it does not keep vector search and writes from the database.
    pub(super) async fn rebuild_if_restarted(self: &Arc<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let started: DateTime<Utc> = sqlx::query_scalar("SELECT pg_postmaster_start_time()")
            .fetch_one(conn)
            .instrument(sql("SELECT", "postgres start time"))
            .await?;
        if self.is_rebuilt_for(started) {
            return Ok(());
        }
        let restarts = Arc::clone(self);
        // Spawned: a caller that stops waiting (the pool's acquire timeout
        // is shorter than a rebuild of a large collection) must not abort
        // the rebuild, or it would never finish.
        let rebuild = tokio::spawn(async move {
            let _one_at_a_time = restarts.rebuilding.lock().await;
            if restarts.is_rebuilt_for(started) {
                return Ok(());
            }
            let rebuilt_for = rebuild_for_this_start(&restarts.build_options).await?;
            *restarts.rebuilt_for.lock().expect("not poisoned") = rebuilt_for;
            Ok::<_, sqlx::Error>(())
        });
        match rebuild.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "rebuilding BM25 indexes after a PostgreSQL restart failed"),
            Err(error) => tracing::error!(%error, "rebuilding BM25 indexes after a PostgreSQL restart failed"),
        }
        Ok(())
    }

    fn is_rebuilt_for(&self, started: DateTime<Utc>) -> bool {
        *self.rebuilt_for.lock().expect("not poisoned") == Some(started)
    }
}

/// Rebuilds every collection's bm25 index unless `fathom.bm25_rebuilt`
/// says it was done since PostgreSQL started; returns that start, or
/// `None` before the migrations have run (start-up asks again after them).
async fn rebuild_for_this_start(options: &PgConnectOptions) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let (migrated, extension): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('fathom.bm25_rebuilt') IS NOT NULL, \
         EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)",
    )
    .bind(EXTENSION)
    .fetch_one(&mut conn)
    .await?;
    if !migrated {
        let _ = conn.close().await;
        return Ok(None);
    }
    // Held until the connection closes: another fathom waits here, then
    // finds the row written.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(REBUILD_LOCK)
        .execute(&mut conn)
        .await?;
    let (started, rebuilt): (DateTime<Utc>, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT pg_postmaster_start_time(), (SELECT postmaster_started FROM fathom.bm25_rebuilt)")
            .fetch_one(&mut conn)
            .await?;
    if rebuilt != Some(started) {
        if extension {
            rebuild_all(&mut conn).await?;
        }
        sqlx::query(
            "INSERT INTO fathom.bm25_rebuilt (postmaster_started) VALUES ($1) \
             ON CONFLICT (only_row) DO UPDATE SET postmaster_started = excluded.postmaster_started",
        )
        .bind(started)
        .execute(&mut conn)
        .await?;
    }
    let _ = conn.close().await;
    Ok(Some(started))
}

/// `REINDEX` of every collection's bm25 index.
async fn rebuild_all(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM fathom.collections \
         WHERE to_regclass(format('fathom_data.%I', name || ':bm25')) IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    for name in names {
        let Ok(name) = CollectionName::parse("name", &name) else {
            tracing::warn!(%name, "a catalog row with an invalid collection name; its BM25 index is not rebuilt");
            continue;
        };
        tracing::info!(collection = %name, "rebuilding the BM25 index after a PostgreSQL restart");
        sqlx::query(&format!("REINDEX INDEX {}", bm25_index_name(&name)))
            .execute(&mut *conn)
            .instrument(sql("REINDEX", "rebuild bm25 index"))
            .await?;
    }
    Ok(())
}
