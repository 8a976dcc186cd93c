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
/// The collection's text-search configuration (fathom's default).
const LANGUAGE: &str = "english";
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
}

impl HandWrittenSql {
    /// `connections` connections to `url`, each of which runs
    /// `SET hnsw.ef_search = ef_search` once, when it connects. A pool per
    /// value keeps the statement timed the bare one.
    pub async fn connect(url: &str, table: &Table, connections: u32, ef_search: u32) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // An integer, formatted: SET takes no bound parameters.
                    conn.execute(format!("SET hnsw.ef_search = {ef_search}").as_str())
                        .await
                        .map(drop)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            table: table.clone(),
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

    /// One statement of hybrid search: a vector leg (HNSW, `candidates`
    /// deep), a keyword leg over the stored `body_tsv` matching any of
    /// `words` (each word a bound value, the tsqueries OR-ed with `||`),
    /// ranked by `ts_rank_cd`, `candidates` deep, fused by reciprocal rank
    /// ([`RRF_K`]) over a FULL OUTER JOIN; the 10 best ids.
    pub async fn hybrid_ids(&self, vector: &[f32], words: &[String], candidates: u32) -> anyhow::Result<Vec<String>> {
        let sql = hybrid_sql(&self.table, words.len(), candidates);
        let mut query = sqlx::query_scalar(&sql).bind(vector_param(vector));
        for word in words {
            query = query.bind(word);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The statement of [`HandWrittenSql::hybrid_ids`] for `words` words and
/// legs `candidates` deep: the vector is `$1`, the words `$2…`. The depth is
/// a literal, as the vector search's LIMIT is: bound, it hides the LIMIT
/// from the prepared statement's generic plan, and PostgreSQL plans the
/// statement afresh on every call.
fn hybrid_sql(table: &Table, words: usize, candidates: u32) -> String {
    let t = table.sql();
    let tsquery = if words == 0 {
        "''::tsquery".to_owned()
    } else {
        (0..words)
            .map(|i| format!("websearch_to_tsquery('{LANGUAGE}', ${})", i + 2))
            .collect::<Vec<_>>()
            .join(" || ")
    };
    format!(
        "WITH q AS MATERIALIZED (SELECT {tsquery} AS q), \
         vector_leg AS (SELECT id, row_number() OVER (ORDER BY distance) AS rank FROM \
           (SELECT id, embedding <=> $1 AS distance FROM {t} ORDER BY embedding <=> $1 LIMIT {candidates}) v), \
         keyword_leg AS (SELECT id, row_number() OVER (ORDER BY score DESC) AS rank FROM \
           (SELECT id, ts_rank_cd(body_tsv, q.q) AS score FROM {t}, q WHERE body_tsv @@ q.q \
            ORDER BY ts_rank_cd(body_tsv, q.q) DESC LIMIT {candidates}) k) \
         SELECT COALESCE(v.id, k.id) AS id FROM vector_leg v FULL OUTER JOIN keyword_leg k ON v.id = k.id \
         ORDER BY COALESCE(1.0 / ({RRF_K} + v.rank), 0) + COALESCE(1.0 / ({RRF_K} + k.rank), 0) DESC \
         LIMIT {LIMIT}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyword_leg_binds_every_word() {
        let sql = hybrid_sql(&Table::of("docs"), 2, 50);
        assert!(
            sql.contains("websearch_to_tsquery('english', $2) || websearch_to_tsquery('english', $3)"),
            "{sql}"
        );
        assert_eq!(sql.matches("LIMIT 50").count(), 2, "{sql}");
    }
}
