//! Deferred vector indexes: their state, and their bulk build.
//!
//! pgvector inserts into an HNSW graph one row at a time; PostgreSQL builds
//! an index over a loaded table in bulk, with parallel maintenance workers,
//! many times faster. A collection created with its index deferred has
//! none; [`Store::build_index`] builds it with `CREATE INDEX CONCURRENTLY`,
//! so writes and (exact) searches go on during the build. The state is read
//! from PostgreSQL's catalog each time, never stored, so it is true on every
//! replica and after a crash: no index is DEFERRED, an invalid one being
//! built is BUILDING, an invalid one nobody builds (a build that died) is
//! DEFERRED again.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tracing::Instrument;

use super::collections_catalog::hnsw_index_ddl;
use super::sql_identifiers::index;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{Collection, IndexState, VectorIndex};

/// First key of the advisory locks that serialise builds of one collection
/// (the second is the collection's id), across every fathom on the database.
const BUILD_LOCK_CLASS: i32 = 0x6661_7468; // "fath"

/// The qualified, quoted name of a collection's HNSW index, as `to_regclass` reads it.
fn hnsw_index_name(collection: &Collection) -> String {
    format!("fathom_data.{}", index(&collection.spec.name, "hnsw"))
}

impl Store {
    /// Whether the collection's vector index is built, deferred or being built.
    pub async fn index_state(&self, collection: &Collection) -> Result<IndexState, StoreError> {
        let states = self.index_states(std::slice::from_ref(collection)).await?;
        Ok(states.into_iter().next().expect("one state per collection"))
    }

    /// Where each collection's vector index stands, in their order, read in
    /// one statement however many collections there are.
    pub async fn index_states(&self, collections: &[Collection]) -> Result<Vec<IndexState>, StoreError> {
        let indexed: Vec<&Collection> = collections
            .iter()
            .filter(|c| c.spec.index != VectorIndex::None)
            .collect();
        let names: Vec<String> = indexed.iter().map(|c| hnsw_index_name(c)).collect();
        let found: Vec<(Option<bool>, bool)> = if names.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
                 WHERE p.index_relid = i.indexrelid) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS n(name, place) \
                 LEFT JOIN pg_index i ON i.indexrelid = to_regclass(n.name) ORDER BY n.place",
            )
            .bind(&names)
            .fetch_all(self.reachable_pool()?)
            .instrument(sql("SELECT", "index states"))
            .await
            .map_err(|e| self.error(e))?
        };
        let mut found = found.into_iter();
        Ok(collections
            .iter()
            .map(|collection| {
                if collection.spec.index == VectorIndex::None {
                    return IndexState::Ready;
                }
                match found.next() {
                    Some((Some(true), _)) => IndexState::Ready,
                    Some((Some(false), true)) => IndexState::Building,
                    _ => IndexState::Deferred,
                }
            })
            .collect())
    }

    /// Builds the collection's deferred vector index and returns how long
    /// this call spent building (zero if it was ready). The build runs on a
    /// connection of its own, without statement timeout, with at least
    /// `index_build_memory` of `maintenance_work_mem`; it goes on if the
    /// caller goes away. A second caller, on any server, waits for the
    /// first's build and finds the index ready.
    pub async fn build_index(&self, collection: &Collection) -> Result<Duration, StoreError> {
        if collection.spec.index == VectorIndex::None {
            return Ok(Duration::ZERO);
        }
        let store = self.clone();
        let collection_name = collection.spec.name.clone();
        let collection = collection.clone();
        tokio::spawn(async move { store.run_index_build(&collection).await }.in_current_span())
            .await
            .map_err(|e| StoreError::TaskFailed(format!("index build of {}: {e}", collection_name)))?
    }

    async fn run_index_build(&self, collection: &Collection) -> Result<Duration, StoreError> {
        let mut conn = PgConnection::connect_with(&self.build_options).await?;
        let built = self.build_on(&mut conn, collection).await;
        let _ = conn.close().await;
        built
    }

    async fn build_on(&self, conn: &mut PgConnection, collection: &Collection) -> Result<Duration, StoreError> {
        sqlx::query(
            "SELECT set_config('maintenance_work_mem', \
             (GREATEST(pg_size_bytes(current_setting('maintenance_work_mem')), $1) / 1024)::text || 'kB', false)",
        )
        .bind(self.index_build_memory_bytes)
        .execute(&mut *conn)
        .instrument(sql("SET", "index build memory"))
        .await?;
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(BUILD_LOCK_CLASS)
            .bind(collection.id as i32)
            .execute(&mut *conn)
            .instrument(sql("SELECT", "index build lock"))
            .await?;
        let state = self.index_state(collection).await?;
        let started = Instant::now();
        if state != IndexState::Ready
            && let Some(ddl) = hnsw_index_ddl(collection, "CONCURRENTLY")
        {
            tracing::info!(collection = %collection.spec.name, "building the vector index");
            let name = index(&collection.spec.name, "hnsw");
            // A build that died leaves an invalid index behind.
            sqlx::query(&format!("DROP INDEX CONCURRENTLY IF EXISTS fathom_data.{name}"))
                .persistent(false)
                .execute(&mut *conn)
                .instrument(sql("DROP", "drop invalid index"))
                .await?;
            sqlx::query(&ddl)
                .persistent(false)
                .execute(&mut *conn)
                .instrument(sql("CREATE", "build vector index"))
                .await
                .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
            tracing::info!(collection = %collection.spec.name, seconds = started.elapsed().as_secs_f64(), "vector index ready");
        }
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(BUILD_LOCK_CLASS)
            .bind(collection.id as i32)
            .execute(&mut *conn)
            .instrument(sql("SELECT", "index build unlock"))
            .await?;
        Ok(if state == IndexState::Ready {
            Duration::ZERO
        } else {
            started.elapsed()
        })
    }
}
