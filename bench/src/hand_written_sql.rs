//! Search as someone would write it by hand against fathom's table with
//! sqlx and pgvector, without fathom: the baselines of the matched-recall
//! and hybrid comparisons, and the exact results recall is measured
//! against. Every value is a bound parameter.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgConnectOptions, PgPoolOptions, PgTypeInfo};
use sqlx::{Executor, PgPool, Postgres};

use crate::database::Table;

/// Hits per search.
pub const LIMIT: i64 = 10;
/// The `k` of reciprocal rank fusion: a hit's score is the sum of
/// `1 / (k + rank)` over the legs that found it.
pub const RRF_K: u32 = 60;

/// A query vector, bound in pgvector's binary form (what the `pgvector`
/// crate sends).
struct VectorParam(Vec<u8>);

impl sqlx::Type<Postgres> for VectorParam {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("vector")
    }
}

impl sqlx::Encode<'_, Postgres> for VectorParam {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }
}

fn vector_param(vector: &[f32]) -> VectorParam {
    VectorParam(crate::copy_file::vector_binary(vector))
}

/// A pool whose every connection searches with one `hnsw.ef_search`.
#[derive(Clone)]
pub struct HandWrittenSql {
    pool: PgPool,
    table: Table,
    bm25_index: String,
}

impl HandWrittenSql {
    /// `connections` connections to `url`, each of which runs
    /// `SET hnsw.ef_search = ef_search` once, when it connects. A pool per
    /// value keeps the statement timed the bare one. Each also sets what
    /// fathom's pooled connections set for BM25 scans under a cached plan
    /// (`pg_textsearch.default_limit`), so both statements score alike.
    pub async fn connect(url: &str, table: &Table, connections: u32, ef_search: u32) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // Integers, formatted: SET takes no bound parameters.
                    conn.execute(
                        format!(
                            "SET hnsw.ef_search = {ef_search}; SET pg_textsearch.default_limit = {}",
                            fathom_server::domain::MIN_HYBRID_CANDIDATES
                        )
                        .as_str(),
                    )
                    .await
                    .map(drop)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            table: table.clone(),
            bm25_index: table.bm25_index(),
        })
    }

    fn vector_sql(&self) -> String {
        format!(
            "SELECT id FROM {} ORDER BY embedding <=> $1 LIMIT {LIMIT}",
            self.table.sql()
        )
    }

    /// The 10 nearest documents by the HNSW index.
    pub async fn vector_ids(&self, vector: &[f32]) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(&self.vector_sql())
            .bind(vector_param(vector))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The exact 10 nearest documents: `+ 0` keeps the planner from the
    /// index, so every distance is computed.
    pub async fn exact_ids(&self, vector: &[f32]) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM {} ORDER BY (embedding <=> $1) + 0 LIMIT {LIMIT}",
            self.table.sql()
        ))
        .bind(vector_param(vector))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether PostgreSQL plans [`Self::vector_ids`]'s statement as a scan of
    /// the index `index` (the planner may prefer a sequential scan).
    pub async fn plans_index_scan(&self, vector: &[f32], index: &str) -> anyhow::Result<bool> {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", self.vector_sql()))
            .bind(vector_param(vector))
            .fetch_all(&self.pool)
            .await?;
        Ok(plan
            .iter()
            .any(|line| line.contains("Index Scan") && line.contains(index)))
    }

    /// One statement of hybrid search as a pgvector + pg_textsearch user
    /// writes it: a vector leg (HNSW, `candidates` deep) and a keyword leg
    /// that is the BM25 index's best `candidates` for `text` (`ORDER BY body
    /// <@> to_bm25query(text, index) LIMIT candidates`, ranked in the
    /// index's order), fused by reciprocal rank ([`RRF_K`]) over a FULL
    /// OUTER JOIN; the 10 best ids.
    pub async fn hybrid_ids(&self, vector: &[f32], text: &str, candidates: u32) -> anyhow::Result<Vec<String>> {
        let sql = hybrid_sql(&self.table, &self.bm25_index, candidates);
        Ok(sqlx::query_scalar(&sql)
            .bind(vector_param(vector))
            .bind(text)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The statement of [`HandWrittenSql::hybrid_ids`] with legs
/// `candidates` deep: the vector is `$1`, the text `$2`, the BM25 index is
/// `bm25_index`. The depth is a literal, as the vector search's LIMIT is:
/// bound, it hides the LIMIT from the prepared statement's generic plan,
/// and PostgreSQL plans the statement afresh on every call.
fn hybrid_sql(table: &Table, bm25_index: &str, candidates: u32) -> String {
    let t = table.sql();
    format!(
        "WITH vector_leg AS (SELECT id, row_number() OVER (ORDER BY distance) AS rank FROM \
           (SELECT id, embedding <=> $1 AS distance FROM {t} ORDER BY embedding <=> $1 LIMIT {candidates}) v), \
         keyword_leg AS (SELECT id, row_number() OVER () AS rank FROM \
           (SELECT id FROM {t} ORDER BY body <@> to_bm25query($2, '{bm25_index}') LIMIT {candidates}) k) \
         SELECT COALESCE(v.id, k.id) AS id FROM vector_leg v FULL OUTER JOIN keyword_leg k ON v.id = k.id \
         ORDER BY COALESCE(1.0 / ({RRF_K} + v.rank), 0) + COALESCE(1.0 / ({RRF_K} + k.rank), 0) DESC \
         LIMIT {LIMIT}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyword_leg_is_the_bm25_index_top_candidates() {
        let sql = hybrid_sql(&Table::of("docs"), "fathom_data.\"docs:bm25\"", 50);
        assert!(
            sql.contains("ORDER BY body <@> to_bm25query($2, 'fathom_data.\"docs:bm25\"') LIMIT 50"),
            "{sql}"
        );
        assert_eq!(sql.matches("LIMIT 50").count(), 2, "{sql}");
    }
}
