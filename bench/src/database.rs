//! The SQL the benchmark runs itself, beside fathom's store: resetting a
//! collection's table between runs, the COPY ceiling, dropping and
//! rebuilding the HNSW index, and preparing the query collection.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use crate::copy_file;

/// A collection's table, as fathom names it (`fathom_data.name`).
#[derive(Debug, Clone)]
pub struct Table {
    sql: String,
    collection: String,
}

impl Table {
    /// The table of collection `collection` (a fixed, plain name).
    pub fn of(collection: &str) -> Self {
        Self {
            sql: format!("fathom_data.\"{collection}\""),
            collection: collection.to_owned(),
        }
    }

    /// The qualified, quoted name.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The qualified, quoted name of the collection's BM25 index, which
    /// fathom creates with the collection where pg_textsearch is loaded.
    pub fn bm25_index(&self) -> String {
        format!("fathom_data.\"{}:bm25\"", self.collection)
    }
}

/// An index's name and the statement that creates it.
#[derive(Debug, Clone)]
pub struct IndexDefinition {
    /// The index name, in the table's schema.
    pub name: String,
    /// Its `CREATE INDEX …`, as PostgreSQL reports it.
    pub create: String,
}

/// Versions of the software under test.
#[derive(Debug, Clone)]
pub struct Versions {
    /// `server_version`.
    pub postgres: String,
    /// The installed `vector` extension.
    pub pgvector: String,
}

/// A small pool of superuser connections to the benchmark database.
pub struct Database {
    pool: PgPool,
}

impl Database {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .context("connecting to the benchmark database")?;
        Ok(Self { pool })
    }

    /// PostgreSQL's and pgvector's versions.
    pub async fn versions(&self) -> anyhow::Result<Versions> {
        let row = sqlx::query(
            "SELECT current_setting('server_version'), \
             (SELECT extversion FROM pg_extension WHERE extname = 'vector')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Versions {
            postgres: row.try_get(0)?,
            pgvector: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
        })
    }

    /// Empties `table` and checkpoints, so the next run starts from an empty
    /// table with no dirty pages or WAL of the last one left to flush.
    ///
    /// The collection's BM25 index is dropped and created again: pg_textsearch
    /// 1.0.0 keeps per-index state in every session that used the index, and
    /// after a TRUNCATE in another session those sessions' inserts fail
    /// ("could not read blocks 1..1"); a new index is a new object to them.
    pub async fn reset(&self, table: &Table) -> anyhow::Result<()> {
        let bm25 = table.bm25_index();
        let definition: Option<String> = sqlx::query_scalar("SELECT pg_get_indexdef(to_regclass($1))")
            .bind(&bm25)
            .fetch_one(&self.pool)
            .await?;
        if definition.is_some() {
            sqlx::query(&format!("DROP INDEX {bm25}")).execute(&self.pool).await?;
        }
        sqlx::query(&format!("TRUNCATE {}", table.sql()))
            .execute(&self.pool)
            .await?;
        if let Some(definition) = definition {
            sqlx::query(&definition).execute(&self.pool).await?;
        }
        self.checkpoint().await
    }

    /// Flushes dirty pages now rather than inside a timed run.
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        sqlx::query("CHECKPOINT").execute(&self.pool).await?;
        Ok(())
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &Table) -> anyhow::Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", table.sql()))
            .fetch_one(&self.pool)
            .await?;
        Ok(count as u64)
    }

    /// The HNSW index of `table`, as fathom created it.
    pub async fn hnsw_index(&self, table: &Table) -> anyhow::Result<IndexDefinition> {
        let row = sqlx::query(
            "SELECT i.relname::text, pg_get_indexdef(i.oid) \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam \
             WHERE x.indrelid = $1::regclass AND a.amname = 'hnsw'",
        )
        .bind(table.sql())
        .fetch_optional(&self.pool)
        .await?
        .with_context(|| format!("{} has no HNSW index", table.sql()))?;
        Ok(IndexDefinition {
            name: row.try_get(0)?,
            create: row.try_get(1)?,
        })
    }

    /// Drops an index of the `fathom_data` schema.
    pub async fn drop_index(&self, index: &IndexDefinition) -> anyhow::Result<()> {
        sqlx::query(&format!("DROP INDEX fathom_data.\"{}\"", index.name))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates an index from its definition; returns how long it took.
    pub async fn create_index(&self, index: &IndexDefinition) -> anyhow::Result<Duration> {
        let started = Instant::now();
        sqlx::query(&index.create).execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    /// Server-side `COPY table FROM 'file' (FORMAT BINARY)`; returns the rows copied.
    pub async fn copy_from_file(&self, table: &Table, file: &Path) -> anyhow::Result<u64> {
        let path = file.to_str().context("the COPY file's path is not UTF-8")?;
        let done = sqlx::query(&format!(
            "COPY {} ({}) FROM '{}' (FORMAT BINARY)",
            table.sql(),
            copy_file::COLUMNS,
            path.replace('\'', "''")
        ))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Makes `table` ready for queries: visibility map and statistics
    /// (VACUUM ANALYZE), then its heap, TOAST and indexes loaded into
    /// shared buffers (pg_prewarm).
    pub async fn prepare_for_queries(&self, table: &Table) -> anyhow::Result<()> {
        sqlx::query(&format!("VACUUM (ANALYZE) {}", table.sql()))
            .execute(&self.pool)
            .await?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "SELECT pg_prewarm(r) FROM ( \
               SELECT $1::regclass AS r \
               UNION ALL SELECT reltoastrelid::regclass FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0 \
               UNION ALL SELECT indexrelid::regclass FROM pg_index WHERE indrelid = $1::regclass) relations",
        )
        .bind(table.sql())
        .execute(&self.pool)
        .await?;
        self.checkpoint().await
    }

    /// Bytes of `table` with TOAST, and of its indexes.
    pub async fn sizes(&self, table: &Table) -> anyhow::Result<(u64, u64)> {
        let (table_bytes, index_bytes): (i64, i64) =
            sqlx::query_as("SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)")
                .bind(table.sql())
                .fetch_one(&self.pool)
                .await?;
        Ok((table_bytes as u64, index_bytes as u64))
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
