//! Vector, keyword and hybrid search as one SQL statement per request.
//!
//! The statement is a chain of CTEs: the vector leg (an HNSW scan, with an
//! exact fallback for selective filters), the keyword leg (full text over
//! the stored tsvector), their fusion, and a final join for the requested
//! fields. One round trip, one snapshot, and rows stream out as PostgreSQL
//! produces them.

use futures::StreamExt;
use pgvector::Vector;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use tokio::sync::mpsc;

use super::documents::push_scope;
use super::sql_identifiers::table;
use super::{Store, StoreError};
use crate::domain::{Collection, Fusion, KeywordQuery, Metric, SearchHitRow, SearchQuery, VectorIndex};

/// Rows buffered between the database and the gRPC stream: enough to keep
/// both busy, small enough that a slow client holds little memory.
const HIT_BUFFER: usize = 32;

/// pgvector's distance operator for each metric.
fn distance_operator(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "<=>",
        Metric::L2 => "<->",
        Metric::InnerProduct => "<#>",
    }
}

/// The user-facing score of a distance column `d` (see `DistanceMetric`).
fn score_of(metric: Metric, d: &str) -> String {
    match metric {
        Metric::Cosine => format!("(1 - {d})"),
        Metric::L2 => d.to_owned(),
        Metric::InnerProduct => format!("(-{d})"),
    }
}

/// A larger-is-better form of distance `d`, for min-max normalisation.
fn goodness_of(metric: Metric, d: &str) -> String {
    match metric {
        Metric::Cosine => format!("(1 - {d})"),
        Metric::L2 | Metric::InnerProduct => format!("(-{d})"),
    }
}

impl Store {
    /// Runs a search and streams its hits, best first. The receiver yields
    /// at most `query.limit` rows, then ends; an error ends it early.
    pub fn search(
        &self,
        collection: std::sync::Arc<Collection>,
        query: SearchQuery,
    ) -> mpsc::Receiver<Result<SearchHitRow, StoreError>> {
        let (sender, receiver) = mpsc::channel(HIT_BUFFER);
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.stream_hits(&collection, &query, &sender).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        receiver
    }

    async fn stream_hits(
        &self,
        collection: &Collection,
        query: &SearchQuery,
        sender: &mpsc::Sender<Result<SearchHitRow, StoreError>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let uses_hnsw =
            query.vector.is_some() && !query.exact && matches!(collection.spec.index, VectorIndex::Hnsw { .. });
        if uses_hnsw {
            // Session settings, set before every search that uses the index,
            // so a pooled connection never carries another request's values.
            let scoped = query.filter.is_some() || collection.spec.multi_tenant;
            sqlx::query("SELECT set_config('hnsw.ef_search', $1, false), set_config('hnsw.iterative_scan', $2, false)")
                .bind(query.ef_search.to_string())
                .bind(if scoped { "relaxed_order" } else { "off" })
                .execute(&mut *conn)
                .await?;
        }
        let mut qb = build_search(collection, query, uses_hnsw);
        let mut rows = qb.build().fetch(&mut *conn);
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
            if sender.send(Ok(read_hit(&row, query))).await.is_err() {
                break; // The client went away.
            }
        }
        Ok(())
    }
}

/// The keyword leg: documents with any of the query's terms and none of
/// its excluded ones, ranked by how many terms they hold, then by
/// `ts_rank_cd` (normalised to [0, 1) by its flag 32), so a document with
/// every word ranks above one with some. Each term is a bound value read by
/// `websearch_to_tsquery`; the OR of the terms is built from PostgreSQL's own
/// text form of each term's tsquery, which quotes every lexeme.
fn push_text_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    t: &str,
    language: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) {
    let terms = |qb: &mut QueryBuilder<'static, Postgres>, values: &[String]| {
        qb.push("(SELECT array_agg(q) FROM unnest(")
            .push_bind(values.to_vec())
            .push("::text[]) AS term, websearch_to_tsquery(")
            .push_bind(language.to_owned())
            .push("::regconfig, term) AS q WHERE numnode(q) > 0)");
    };
    qb.push("text_terms AS MATERIALIZED (SELECT ");
    terms(qb, &keywords.any_of);
    qb.push(" AS any_of, ");
    terms(qb, &keywords.none_of);
    qb.push(
        " AS none_of), \
         text_query AS MATERIALIZED (SELECT any_of, CASE WHEN none_of IS NULL THEN any_q \
         ELSE any_q && !!none_q END AS q FROM (SELECT any_of, none_of, \
         (SELECT string_agg('(' || x::text || ')', ' | ')::tsquery FROM unnest(any_of) x) AS any_q, \
         (SELECT string_agg('(' || x::text || ')', ' | ')::tsquery FROM unnest(none_of) x) AS none_q \
         FROM text_terms) s), \
         text_leg AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank, \
         min(score) OVER () AS smin, max(score) OVER () AS smax FROM (\
         SELECT d.id, ((SELECT count(*) FROM unnest(tq.any_of) x WHERE d.body_tsv @@ x) \
         + ts_rank_cd(d.body_tsv, tq.q, 32))::float8 AS score FROM ",
    );
    qb.push(t).push(" d, text_query tq");
    push_scope(qb, &query.tenant, query.filter.as_ref());
    qb.push(" AND d.body_tsv @@ tq.q ORDER BY score DESC, d.id LIMIT ")
        .push_bind(n)
        .push(") kw)");
}

/// Builds the statement. The query vector is the first bind, `$1`, and is
/// referred to by that name wherever else it is needed, so it is sent once.
fn build_search(collection: &Collection, query: &SearchQuery, uses_hnsw: bool) -> QueryBuilder<'static, Postgres> {
    let spec = &collection.spec;
    let t = table(&spec.name);
    let metric = spec.metric;
    let op = distance_operator(metric);
    let n = i64::from(query.candidates);
    let mut qb = QueryBuilder::new("WITH ");
    let mut has_vector_leg = false;

    if let Some(vector) = &query.vector {
        has_vector_leg = true;
        qb.push(format_args!("ann AS MATERIALIZED (SELECT d.id, d.embedding {op} "));
        qb.push_bind(Vector::from(vector.clone()));
        qb.push("::vector AS distance FROM ").push(&t).push(" d");
        push_scope(&mut qb, &query.tenant, query.filter.as_ref());
        if uses_hnsw {
            qb.push(" ORDER BY distance LIMIT ").push_bind(n).push("), ");
        } else {
            // `+ 0` keeps the planner from the HNSW index: an exact scan.
            qb.push(format_args!(" ORDER BY (d.embedding {op} $1::vector) + 0 LIMIT "))
                .push_bind(n)
                .push("), ");
        }
        let scoped = query.filter.is_some() || spec.multi_tenant;
        if uses_hnsw && scoped {
            // A selective filter can leave the index scan short of `n` rows
            // even after iterative scanning. Then, and only then (the
            // one-time filter keeps the other branch from running), rank the
            // matching rows exactly.
            qb.push(format_args!(
                "exact AS (SELECT d.id, d.embedding {op} $1::vector AS distance FROM {t} d"
            ));
            push_scope(&mut qb, &query.tenant, query.filter.as_ref());
            qb.push(format_args!(" ORDER BY (d.embedding {op} $1::vector) + 0 LIMIT "))
                .push_bind(n)
                .push("), ");
            qb.push("vector_candidates AS (SELECT * FROM ann WHERE (SELECT count(*) FROM ann) >= ")
                .push_bind(n)
                .push(" UNION ALL SELECT * FROM exact WHERE (SELECT count(*) FROM ann) < ")
                .push_bind(n)
                .push("), ");
        } else {
            qb.push("vector_candidates AS (SELECT * FROM ann), ");
        }
        let goodness = goodness_of(metric, "distance");
        qb.push(format_args!(
            "vector_leg AS (SELECT id, distance, {score} AS score, row_number() OVER (ORDER BY distance, id) AS rank, \
             {goodness} AS g, min({goodness}) OVER () AS gmin, max({goodness}) OVER () AS gmax \
             FROM vector_candidates)",
            score = score_of(metric, "distance"),
        ));
    }

    let has_text_leg = query.text.is_some();
    if let Some(keywords) = &query.text {
        if has_vector_leg {
            qb.push(", ");
        }
        push_text_leg(&mut qb, &t, spec.language.as_str(), keywords, query, n);
    }

    // The candidates with their per-leg placings and final score.
    qb.push(", ranked AS (");
    match (has_vector_leg, has_text_leg) {
        (true, true) => {
            qb.push(
                "SELECT COALESCE(v.id, k.id) AS id, v.rank AS vector_rank, v.score AS vector_score, \
                 k.rank AS text_rank, k.score AS text_score, ",
            );
            push_fusion(&mut qb, query.fusion);
            qb.push(" AS score FROM vector_leg v FULL OUTER JOIN text_leg k ON v.id = k.id");
        }
        (true, false) => {
            qb.push(
                "SELECT id, rank AS vector_rank, score AS vector_score, NULL::int8 AS text_rank, \
                 NULL::float8 AS text_score, score FROM vector_leg",
            );
        }
        (false, _) => {
            qb.push(
                "SELECT id, NULL::int8 AS vector_rank, NULL::float8 AS vector_score, rank AS text_rank, \
                 score AS text_score, score FROM text_leg",
            );
        }
    }
    qb.push(") ");

    let include = query.include;
    qb.push(format_args!(
        "SELECT r.*, {}, {}, {} FROM ranked r",
        if include.text { "d.body" } else { "NULL::text AS body" },
        if include.metadata {
            "d.metadata"
        } else {
            "NULL::jsonb AS metadata"
        },
        if include.vector {
            "d.embedding"
        } else {
            "NULL::vector AS embedding"
        },
    ));
    if include.text || include.metadata || include.vector {
        qb.push(" JOIN ").push(&t).push(" d ON d.tenant = ");
        qb.push_bind(query.tenant.as_str().to_owned()).push(" AND d.id = r.id");
    }
    // An L2 vector search ranks by distance, smaller first; every other score is larger-is-better.
    let smaller_is_better = has_vector_leg && !has_text_leg && !metric.larger_is_better();
    if let Some(threshold) = query.score_threshold {
        qb.push(if smaller_is_better {
            " WHERE r.score <= "
        } else {
            " WHERE r.score >= "
        });
        qb.push_bind(threshold).push("::float8");
    }
    qb.push(if smaller_is_better {
        " ORDER BY r.score ASC, r.id"
    } else {
        " ORDER BY r.score DESC, r.id"
    });
    qb.push(" LIMIT ").push_bind(i64::from(query.limit));
    qb
}

fn push_fusion(qb: &mut QueryBuilder<'static, Postgres>, fusion: Fusion) {
    match fusion {
        Fusion::ReciprocalRank {
            k,
            vector_weight,
            text_weight,
        } => {
            qb.push("COALESCE(").push_bind(vector_weight).push("::float8 / (");
            qb.push_bind(k).push("::float8 + v.rank), 0) + COALESCE(");
            qb.push_bind(text_weight).push("::float8 / (");
            qb.push_bind(k).push("::float8 + k.rank), 0)");
        }
        Fusion::RelativeScore { alpha } => {
            qb.push("COALESCE(").push_bind(alpha);
            qb.push("::float8 * CASE WHEN v.gmax = v.gmin THEN 1 ELSE (v.g - v.gmin) / (v.gmax - v.gmin) END, 0) + COALESCE(");
            qb.push_bind(1.0 - alpha);
            qb.push("::float8 * CASE WHEN k.smax = k.smin THEN 1 ELSE (k.score - k.smin) / (k.smax - k.smin) END, 0)");
        }
    }
}

fn read_hit(row: &PgRow, query: &SearchQuery) -> SearchHitRow {
    let leg = |rank: &str, score: &str| -> Option<(u32, f64)> {
        let rank: Option<i64> = row.get(rank);
        let score: Option<f64> = row.get(score);
        rank.zip(score).map(|(r, s)| (r as u32, s))
    };
    SearchHitRow {
        id: row.get("id"),
        tenant: query.tenant.as_str().to_owned(),
        score: row.get("score"),
        vector_leg: leg("vector_rank", "vector_score"),
        text_leg: leg("text_rank", "text_score"),
        text: query.include.text.then(|| row.get("body")),
        metadata: query
            .include
            .metadata
            .then(|| row.get::<Json<serde_json::Value>, _>("metadata").0),
        vector: query.include.vector.then(|| row.get::<Vector, _>("embedding").to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CollectionName, CollectionSpec, DocumentFields, Filter, Tenant, TextLanguage};

    fn collection(multi_tenant: bool) -> Collection {
        Collection {
            id: 1,
            spec: CollectionSpec {
                name: CollectionName::parse("name", "docs").unwrap(),
                dimension: 3,
                metric: Metric::Cosine,
                index: VectorIndex::default_hnsw(),
                language: TextLanguage::parse("text_language", "").unwrap(),
                multi_tenant,
            },
            created_at: chrono::Utc::now(),
        }
    }

    fn query(filter: Option<Filter>, text: Option<&str>) -> SearchQuery {
        SearchQuery {
            tenant: Tenant::for_collection("tenant", "", false, 10).unwrap(),
            vector: Some(vec![1.0, 0.0, 0.0]),
            text: text.map(KeywordQuery::parse),
            fusion: Fusion::default(),
            candidates: 10,
            filter,
            limit: 10,
            score_threshold: None,
            include: DocumentFields::ALL,
            ef_search: 200,
            exact: false,
        }
    }

    #[test]
    fn only_scoped_searches_carry_the_exact_fallback() {
        let plain = build_search(&collection(false), &query(None, None), true).into_sql();
        assert!(!plain.contains("exact AS"), "{plain}");
        let filtered = build_search(&collection(false), &query(Some(Filter::All(vec![])), None), true).into_sql();
        assert!(
            filtered.contains("exact AS") && filtered.contains("UNION ALL"),
            "{filtered}"
        );
        let tenants = build_search(&collection(true), &query(None, None), true).into_sql();
        assert!(tenants.contains("exact AS"), "{tenants}");
    }

    #[test]
    fn hybrid_searches_are_one_statement_with_both_legs() {
        let sql = build_search(&collection(false), &query(None, Some("fox")), true).into_sql();
        assert!(sql.contains("vector_leg AS") && sql.contains("text_leg AS") && sql.contains("FULL OUTER JOIN"));
        assert_eq!(
            sql.matches("$1::vector").count(),
            1,
            "the vector is bound once, as $1: {sql}"
        );
    }
}
