//! BM25 ranking through pg_textsearch: the extension, and one `bm25` index
//! per collection over its text, with the collection's text configuration.
//!
//! pg_textsearch must be in `shared_preload_libraries` (the embedded
//! cluster preloads it). Where its library is loaded, Fathom creates the
//! extension at start-up and the `bm25` index of every collection that has
//! none; new collections get theirs when created. Where it is not, keyword
//! searches rank by `ts_rank`, and start-up says so once. Which ranking a
//! collection has is read from PostgreSQL's catalog with its row (a valid
//! `bm25` index or not), never stored, so it is true on every fathom.

use sqlx::{Connection, PgConnection};
use tracing::Instrument;

use super::sql_identifiers::{index, quote_literal, table};
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{Collection, CollectionName, KeywordRanking};

/// The extension, as `CREATE EXTENSION` and `pg_extension` name it.
pub(super) const EXTENSION: &str = "pg_textsearch";

/// `fathom_data."name:bm25"`, the collection's BM25 index, as
/// `to_bm25query` and `to_regclass` read it.
pub(super) fn bm25_index_name(name: &CollectionName) -> String {
    format!("fathom_data.{}", index(name, "bm25"))
}

/// The SQL expression, over a catalog row's `name`, that is true when the
/// collection has a valid BM25 index.
pub(super) const HAS_BM25_INDEX: &str = "EXISTS (SELECT 1 FROM pg_index i \
     WHERE i.indexrelid = to_regclass(format('fathom_data.%I', name || ':bm25')) AND i.indisvalid)";

/// `CREATE INDEX IF NOT EXISTS … USING bm25 (body)` for the collection, with
/// its text configuration: the same lexemes as its `body_tsv`.
pub(super) fn bm25_index_ddl(collection: &Collection) -> String {
    let spec = &collection.spec;
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} USING bm25 (body) WITH (text_config = {})",
        index(&spec.name, "bm25"),
        table(&spec.name),
        quote_literal(spec.language.as_str()),
    )
}

impl Store {
    /// Makes BM25 ranking available where pg_textsearch's library is
    /// loaded: creates the extension if needed, rebuilds the `bm25` indexes
    /// if PostgreSQL restarted since they were last rebuilt (see
    /// [`super::bm25_restarts`]), and builds the `bm25` index of
    /// every collection without one (each on a connection without
    /// statement timeout: over a large collection the build takes a while).
    /// Returns the ranking collections created from now on get, and logs
    /// it once.
    pub async fn prepare_keyword_ranking(&mut self) -> Result<KeywordRanking, StoreError> {
        let ranking = match self.enable_extension().await {
            Ok(Some(version)) => {
                tracing::info!(%version, "keyword ranking: BM25 (pg_textsearch)");
                KeywordRanking::Bm25
            }
            Ok(None) => {
                tracing::warn!(
                    "keyword ranking: ts_rank, because pg_textsearch is not loaded in this database's cluster \
                     (shared_preload_libraries); BM25 needs it, see docs/design.md"
                );
                KeywordRanking::TsRank
            }
            Err(error) => {
                tracing::warn!(%error, "keyword ranking: ts_rank, because creating the pg_textsearch extension failed");
                KeywordRanking::TsRank
            }
        };
        self.new_collection_ranking = ranking;
        // Before building missing indexes, which are then built for this
        // start of PostgreSQL already.
        let mut conn = self.reachable_pool()?.acquire().await.map_err(|e| self.error(e))?;
        self.bm25_restarts
            .rebuild_if_restarted(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        drop(conn);
        if ranking == KeywordRanking::Bm25 {
            self.create_missing_bm25_indexes().await?;
        }
        Ok(ranking)
    }

    /// The installed extension's version, after creating it if its library
    /// is loaded; `None` if it cannot be had.
    async fn enable_extension(&self) -> Result<Option<String>, StoreError> {
        let (installed, loaded): (Option<String>, bool) = sqlx::query_as(
            "SELECT (SELECT extversion FROM pg_extension WHERE extname = $1), \
             current_setting('pg_textsearch.library_version', true) IS NOT NULL \
             AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
        )
        .bind(EXTENSION)
        .fetch_one(self.reachable_pool()?)
        .instrument(sql("SELECT", "pg_textsearch installed"))
        .await
        .map_err(|e| self.error(e))?;
        if installed.is_some() || !loaded {
            return Ok(installed);
        }
        // IF NOT EXISTS: another fathom may be starting too.
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_textsearch")
            .execute(self.reachable_pool()?)
            .instrument(sql("CREATE", "create extension pg_textsearch"))
            .await
            .map_err(|e| self.error(e))?;
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = $1")
            .bind(EXTENSION)
            .fetch_optional(self.reachable_pool()?)
            .await
            .map_err(|e| self.error(e))
    }

    /// Builds the `bm25` index of each collection that has none (created
    /// before the extension was there).
    async fn create_missing_bm25_indexes(&self) -> Result<(), StoreError> {
        let collections = self.list_collections().await?;
        let missing: Vec<_> = collections
            .into_iter()
            .filter(|c| c.keyword_ranking != KeywordRanking::Bm25)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut conn = PgConnection::connect_with(&self.build_options).await?;
        for collection in &missing {
            tracing::info!(collection = %collection.spec.name, "building the collection's BM25 index");
            sqlx::query(&bm25_index_ddl(collection))
                .execute(&mut conn)
                .instrument(sql("CREATE", "create bm25 index"))
                .await?;
            self.forget(&collection.spec.name);
        }
        let _ = conn.close().await;
        Ok(())
    }
}
