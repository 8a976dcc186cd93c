//! Vector, keyword and hybrid search as one SQL statement per request.
//!
//! The statement is a chain of CTEs and subqueries: the vector leg (an HNSW
//! scan, with an exact fallback for selective filters), the keyword leg (BM25
//! or `ts_rank`, see [`super::keyword_leg`]), their fusion, and a final join
//! for the requested fields. One statement, one snapshot (a BM25 search under
//! a scope too selective for the index's best documents runs a second one,
//! whose hits alone are returned); the fields of hits past the first page of
//! bytes are read as the client reaches them (see [`SearchHits`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use pgvector::Vector;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use tracing::Instrument;

use super::collections_catalog::indexed_embedding;
use super::documents::{PAGE_BYTES, document_columns, push_scope, size_of_fields};
use super::keyword_leg::{KeywordScope, TextLeg, push_keyword_leg, push_text_leg};
use super::sql_identifiers::table;
use super::sql_spans::sql;
use super::{Store, StoreError};
use crate::domain::{
    Collection, CollectionSpec, DocumentFields, EfSearch, Fusion, IndexPrecision, Metric, SearchHitRow, SearchQuery,
    StoredDocument, Tenant, VectorIndex,
};

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

/// The distance the collection's HNSW index orders by, to `$1`: over the
/// indexed expression, so that the planner reads the index.
fn indexed_distance(spec: &CollectionSpec, op: &str) -> String {
    match spec.index.precision() {
        Some(precision @ IndexPrecision::Half) => format!(
            "{} {op} $1::halfvec({})",
            indexed_embedding("d.", spec.dimension, precision),
            spec.dimension
        ),
        _ => "distance".to_owned(),
    }
}

/// A search's hits, best first. The statement ran to completion and its
/// connection went back to the pool; the requested fields of the first
/// [`PAGE_BYTES`] of hits came with it, and those of later hits are read a
/// page at a time as the caller reaches them. So a client that stops
/// reading pins no connection and about one page of memory. A document
/// deleted between the search and the read of its fields is left out.
pub struct SearchHits {
    store: Store,
    collection: Arc<Collection>,
    tenant: Tenant,
    fields: DocumentFields,
    hits: VecDeque<RankedHit>,
}

/// A hit, and the size of its requested fields if they are still to be read.
struct RankedHit {
    row: SearchHitRow,
    pending_bytes: Option<i64>,
}

impl SearchHits {
    /// The next hit; `None` after the last, or after an error.
    pub async fn next(&mut self) -> Option<Result<SearchHitRow, StoreError>> {
        loop {
            if self.hits.front()?.pending_bytes.is_none() {
                return self.hits.pop_front().map(|hit| Ok(hit.row));
            }
            if let Err(error) = self.read_pending_fields().await {
                self.hits.clear();
                return Some(Err(error));
            }
        }
    }

    /// Reads the fields of the leading hits that lack them, one page's worth.
    async fn read_pending_fields(&mut self) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        let mut bytes = 0;
        for hit in &self.hits {
            let Some(size) = hit.pending_bytes else { break };
            if !ids.is_empty() && bytes + size > PAGE_BYTES {
                break;
            }
            bytes += size;
            ids.push(hit.row.id.clone());
        }
        let found = self
            .store
            .get(&self.collection, &self.tenant, &ids, self.fields)
            .await?;
        let mut found: HashMap<String, StoredDocument> = found.into_iter().map(|d| (d.id.clone(), d)).collect();
        let mut filled = Vec::with_capacity(ids.len());
        for _ in 0..ids.len() {
            let mut hit = self.hits.pop_front().expect("one hit per id");
            if let Some(document) = found.remove(&hit.row.id) {
                hit.row.text = document.text;
                hit.row.metadata = document.metadata;
                hit.row.vector = document.vector;
                hit.pending_bytes = None;
                filled.push(hit);
            }
        }
        for hit in filled.into_iter().rev() {
            self.hits.push_front(hit);
        }
        Ok(())
    }
}

impl Store {
    /// Runs a search to completion; its hits come best first, at most
    /// `query.limit` of them.
    pub async fn search(&self, collection: Arc<Collection>, query: SearchQuery) -> Result<SearchHits, StoreError> {
        let uses_hnsw =
            query.vector.is_some() && !query.exact && matches!(collection.spec.index, VectorIndex::Hnsw { .. });
        let run = async |scope: KeywordScope| {
            let (statement, text_leg) = build_statement(&collection, &query, uses_hnsw, scope);
            let rows = run_search(statement, self.reachable_pool()?)
                .await
                .map_err(|e| self.missing_table_is_not_found(&collection.spec.name, e))?;
            Ok::<_, StoreError>((rows, text_leg))
        };
        let (mut rows, text_leg) = run(KeywordScope::IndexPrefix).await?;
        if text_leg == (TextLeg::Inline { scoped: true }) {
            // The scope held fewer than the candidates among the index's
            // best documents: it may hold others further down, so its own
            // matches are ranked exactly, in a statement of their own.
            let found = rows.first().and_then(|row| row.get::<Option<i64>, _>("text_found"));
            if found.is_none_or(|found| found < i64::from(query.candidates)) {
                rows = run(KeywordScope::Exact).await?.0;
            }
        }
        let hits = rows
            .iter()
            .map(|row| RankedHit {
                row: read_hit(row, &query),
                pending_bytes: row.get::<bool, _>("pending").then(|| row.get("size")),
            })
            .collect();
        Ok(SearchHits {
            store: self.clone(),
            collection,
            tenant: query.tenant,
            fields: query.include,
            hits,
        })
    }
}

/// The statement of a search whose scoped BM25 leg reads the index.
#[cfg(test)]
fn build_search(collection: &Collection, query: &SearchQuery, uses_hnsw: bool) -> QueryBuilder<'static, Postgres> {
    build_statement(collection, query, uses_hnsw, KeywordScope::IndexPrefix).0
}

async fn run_search(
    mut statement: QueryBuilder<'static, Postgres>,
    pool: &sqlx::PgPool,
) -> Result<Vec<PgRow>, sqlx::Error> {
    statement
        .build()
        .fetch_all(pool)
        .instrument(sql("SELECT", "search"))
        .await
}

/// Builds the statement. The query vector is the first bind, `$1`, and is
/// referred to by that name wherever else it is needed, so it is sent once.
///
/// Every LIMIT is a literal: a `u32` the request validated, formatted by
/// Rust, never request text. PostgreSQL's generic plan of a prepared
/// statement cannot see a bound `LIMIT $n`, assumes a tenth of the table
/// and sorts a sequential scan instead of reading the HNSW index, so with
/// binds every search was planned afresh; with literals the cached generic
/// plan serves (docs/benchmarks.md has the cost of planning).
///
/// Returns it with where it reads its keyword leg from: a scoped BM25 leg
/// read from the index ([`TextLeg::Inline`] `{ scoped: true }`) reports how
/// many candidates it found, in column `text_found`.
fn build_statement(
    collection: &Collection,
    query: &SearchQuery,
    uses_hnsw: bool,
    scope: KeywordScope,
) -> (QueryBuilder<'static, Postgres>, TextLeg) {
    let spec = &collection.spec;
    let t = table(&spec.name);
    let metric = spec.metric;
    let op = distance_operator(metric);
    let n = i64::from(query.candidates);
    let mut qb = QueryBuilder::new("WITH ");
    let mut has_vector_leg = false;
    // A hybrid search's vector leg ranks its candidates (five times the
    // hits) by the half-precision graph's own distance, for RRF needs only
    // their order: a single-precision distance of every candidate reads
    // each stored vector a second time. The hits returned are scored in
    // single precision (`vector_score`), as a vector search's are.
    let ranks_by_graph = query.text.is_some() && uses_hnsw && spec.index.precision() == Some(IndexPrecision::Half);

    if let Some(vector) = &query.vector {
        has_vector_leg = true;
        // With `ranks_by_graph`, the graph's own distance, computed once per
        // candidate (the ORDER BY is the same expression).
        let (embedding, query_cast) = if ranks_by_graph {
            (
                indexed_embedding("d.", spec.dimension, IndexPrecision::Half),
                format!("::vector::halfvec({})", spec.dimension),
            )
        } else {
            ("d.embedding".to_owned(), "::vector".to_owned())
        };
        qb.push(format_args!("ann AS MATERIALIZED (SELECT d.id, {embedding} {op} "));
        qb.push_bind(Vector::from(vector.clone()));
        qb.push(format_args!("{query_cast} AS distance FROM {t} d"));
        push_scope(&mut qb, &query.tenant, query.filter.as_ref());
        if uses_hnsw {
            push_breadth(&mut qb, query.ef_search);
            // Ordered by the indexed expression, so the HNSW index serves;
            // unless the leg ranks by the graph's distance, the distance
            // ranked by (`vector_leg`) and reported is the single-precision one.
            let order = if ranks_by_graph {
                "distance".to_owned()
            } else {
                indexed_distance(spec, op)
            };
            qb.push(format_args!(" ORDER BY {order} LIMIT {n}), "));
        } else {
            // `+ 0` keeps the planner from the HNSW index: an exact scan.
            qb.push(format_args!(" ORDER BY (d.embedding {op} $1::vector) + 0 LIMIT {n}), "));
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
            qb.push(format_args!(" ORDER BY (d.embedding {op} $1::vector) + 0 LIMIT {n}), "));
            qb.push(format_args!(
                "vector_candidates AS (SELECT * FROM ann WHERE (SELECT count(*) FROM ann) >= {n} \
                 UNION ALL SELECT * FROM exact WHERE (SELECT count(*) FROM ann) < {n}), "
            ));
        } else {
            qb.push("vector_candidates AS (SELECT * FROM ann), ");
        }
        let goodness = goodness_of(metric, "distance");
        qb.push(format_args!(
            "vector_leg AS (SELECT id, distance, {score} AS score, rank() OVER (ORDER BY distance) AS rank, \
             {goodness} AS g, min({goodness}) OVER () AS gmin, max({goodness}) OVER () AS gmax \
             FROM vector_candidates)",
            score = score_of(metric, "distance"),
        ));
    }

    let has_text_leg = query.text.is_some();
    let mut text_leg = TextLeg::Cte;
    if let Some(keywords) = &query.text {
        if has_vector_leg {
            qb.push(", ");
        }
        text_leg = push_keyword_leg(&mut qb, collection, &t, keywords, query, n, scope);
    }
    qb.push(" ");

    // The candidates with their per-leg placings and final score: a
    // subquery of the main query (see `TextLeg::Inline`), pushed where the
    // main query reads it.
    let push_ranked = |qb: &mut QueryBuilder<'static, Postgres>| {
        let push_text = |qb: &mut QueryBuilder<'static, Postgres>| {
            if let Some(keywords) = &query.text {
                push_text_leg(qb, text_leg, collection, &t, keywords, query, n);
            }
        };
        // How many candidates the keyword leg found, where it counts them.
        let push_found = |qb: &mut QueryBuilder<'static, Postgres>, found: &str| {
            if matches!(text_leg, TextLeg::Inline { .. }) {
                qb.push(format_args!("{found} AS text_found"));
            } else {
                qb.push("NULL::int8 AS text_found");
            }
        };
        qb.push("(");
        match (has_vector_leg, has_text_leg) {
            (true, true) => {
                qb.push(
                    "SELECT COALESCE(v.id, k.id) AS id, v.rank AS vector_rank, v.score AS vector_score, \
                     k.rank AS text_rank, k.score AS text_score, ",
                );
                push_fusion(qb, query.fusion);
                qb.push(" AS score, ");
                push_found(qb, "max(k.found) OVER ()");
                qb.push(" FROM vector_leg v FULL OUTER JOIN ");
                push_text(qb);
                qb.push(" k ON v.id = k.id");
            }
            (true, false) => {
                qb.push(
                    "SELECT id, rank AS vector_rank, score AS vector_score, NULL::int8 AS text_rank, \
                     NULL::float8 AS text_score, score, NULL::int8 AS text_found FROM vector_leg",
                );
            }
            (false, _) => {
                qb.push(
                    "SELECT id, NULL::int8 AS vector_rank, NULL::float8 AS vector_score, rank AS text_rank, \
                     score AS text_score, score, ",
                );
                push_found(qb, "found");
                qb.push(" FROM ");
                push_text(qb);
                qb.push(" k");
            }
        }
        qb.push(")");
    };

    // The best hits with their fields, then the fields of those past the
    // first PAGE_BYTES left out (`pending`), to be read as the client reads.
    let include = query.include;
    // An L2 vector search ranks by distance, smaller first; every other score is larger-is-better.
    let smaller_is_better = has_vector_leg && !has_text_leg && !metric.larger_is_better();
    let order = |alias: &str| {
        if smaller_is_better {
            format!(" ORDER BY {alias}.score ASC, {alias}.id")
        } else {
            format!(" ORDER BY {alias}.score DESC, {alias}.id")
        }
    };
    qb.push(
        "SELECT h.id, h.vector_rank, h.vector_score, h.text_rank, h.text_score, h.score, h.text_found, h.size, \
         h.before >= ",
    )
    .push_bind(PAGE_BYTES)
    .push(" AS pending, CASE WHEN h.before < ")
    .push_bind(PAGE_BYTES)
    .push(" THEN h.body END AS body, CASE WHEN h.before < ")
    .push_bind(PAGE_BYTES)
    .push(" THEN h.metadata END AS metadata, CASE WHEN h.before < ")
    .push_bind(PAGE_BYTES)
    .push(format_args!(
        " THEN h.embedding END AS embedding FROM (SELECT p.*, sum(p.size) OVER ({} ROWS UNBOUNDED PRECEDING) \
         - p.size AS before FROM (",
        order("p").trim_start()
    ));
    // Only the `limit` best are joined for their fields: a hybrid search
    // ranks up to twice its candidates (100 for 10 hits), and reading the
    // fields of all of them would read documents that are then dropped.
    let fields_requested = include.text || include.metadata || include.vector;
    let leg_columns = if ranks_by_graph {
        format!(
            "r.id, r.vector_rank, CASE WHEN r.vector_rank IS NOT NULL THEN {} END AS vector_score, \
             r.text_rank, r.text_score, r.score, r.text_found",
            score_of(metric, &format!("(d.embedding {op} $1::vector)"))
        )
    } else {
        "r.*".to_owned()
    };
    qb.push(format_args!(
        "SELECT {leg_columns}, {}, {} AS size",
        document_columns(include),
        if fields_requested {
            size_of_fields(include)
        } else {
            "0::int8".to_owned()
        },
    ));
    qb.push(" FROM (SELECT * FROM ");
    push_ranked(&mut qb);
    qb.push(" r");
    if let Some(threshold) = query.score_threshold {
        qb.push(if smaller_is_better {
            " WHERE r.score <= "
        } else {
            " WHERE r.score >= "
        });
        qb.push_bind(threshold).push("::float8");
    }
    qb.push(order("r"));
    qb.push(format_args!(" LIMIT {} OFFSET {}) r", query.limit, query.offset));
    if fields_requested || ranks_by_graph {
        qb.push(" JOIN ").push(&t).push(" d ON d.tenant = ");
        qb.push_bind(query.tenant.as_str().to_owned()).push(" AND d.id = r.id");
    }
    qb.push(") p) h").push(order("h"));
    (qb, text_leg)
}

/// Sets `hnsw.ef_search` for this statement alone, before its HNSW scan
/// starts: `set_config(…, true)` lasts until the end of the statement's
/// implicit transaction, and, written as a condition that reads no column,
/// PostgreSQL evaluates it once, as a one-time filter in front of the scan,
/// before the scan's first row (pgvector reads the setting there). So a
/// request's own breadth costs no round trip of its own and no pooled
/// connection carries it to the next request. The value is a validated
/// number, bound.
fn push_breadth(qb: &mut QueryBuilder<'static, Postgres>, ef_search: EfSearch) {
    qb.push(" AND (SELECT set_config('hnsw.ef_search', ")
        .push_bind(ef_search.get().to_string())
        .push(", true)) IS NOT NULL");
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
        text: row.get("body"),
        metadata: row.get::<Option<Json<serde_json::Value>>, _>("metadata").map(|m| m.0),
        vector: row.get::<Option<Vector>, _>("embedding").map(|v| v.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CollectionName, CollectionSpec, DocumentFields, EfSearch, Filter, IndexBuild, KeywordQuery, KeywordRanking,
        Tenant, TextLanguage,
    };

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
                index_build: IndexBuild::Automatic,
            },
            created_at: chrono::Utc::now(),
            keyword_ranking: KeywordRanking::TsRank,
        }
    }

    fn bm25_collection(multi_tenant: bool) -> Collection {
        Collection {
            keyword_ranking: KeywordRanking::Bm25,
            ..collection(multi_tenant)
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
            offset: 0,
            score_threshold: None,
            include: DocumentFields::ALL,
            ef_search: EfSearch::parse("ef_search", 200).unwrap(),
            exact: false,
        }
    }

    #[test]
    fn an_hnsw_scan_sets_its_own_breadth_in_its_statement_and_an_exact_one_none() {
        let hnsw = build_search(&collection(false), &query(None, None), true).into_sql();
        assert!(
            hnsw.contains(
                "WHERE d.tenant = $2 AND (SELECT set_config('hnsw.ef_search', $3, true)) IS NOT NULL ORDER BY"
            ),
            "{hnsw}"
        );
        let exact = build_search(&collection(false), &query(None, None), false).into_sql();
        assert!(!exact.contains("hnsw.ef_search"), "{exact}");
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
    fn the_keyword_leg_ranks_the_other_matches_only_if_those_with_every_term_leave_room() {
        let sql = build_search(&collection(false), &query(None, Some("vector database")), true).into_sql();
        assert!(sql.contains("d.body_tsv @@ tq.all_q ORDER BY"), "{sql}");
        assert!(
            sql.contains(
                "(SELECT count(*) FROM text_all) < 10 AND d.body_tsv @@ tq.q AND d.id NOT IN (SELECT id FROM text_all)"
            ),
            "{sql}"
        );
    }

    #[test]
    fn the_other_matches_of_two_words_hold_one_and_of_more_are_counted() {
        let two = build_search(&collection(false), &query(None, Some("vector database")), true).into_sql();
        assert!(
            two.contains("text_rest AS (SELECT d.id, (1 + ts_rank(") && !two.contains("tq.any_of[1]"),
            "{two}"
        );
        let three = build_search(&collection(false), &query(None, Some("vector database engine")), true).into_sql();
        assert!(
            three.contains("coalesce((d.body_tsv @@ tq.any_of[3])::int, 0) + ts_rank("),
            "{three}"
        );
    }

    #[test]
    fn a_half_precision_graph_is_searched_by_its_expression_and_ranked_in_single_precision() {
        let mut half = collection(false);
        let sql = build_search(&half, &query(None, None), true).into_sql();
        assert!(
            sql.contains("d.embedding <=> $1::vector AS distance")
                && sql.contains("ORDER BY (d.embedding::halfvec(3)) <=> $1::halfvec(3) LIMIT 10"),
            "{sql}"
        );
        half.spec.index = VectorIndex::hnsw(16, 64, IndexPrecision::Single).unwrap();
        let sql = build_search(&half, &query(None, None), true).into_sql();
        assert!(
            sql.contains("ORDER BY distance LIMIT 10") && !sql.contains("halfvec"),
            "{sql}"
        );
    }

    #[test]
    fn hybrid_searches_are_one_statement_with_both_legs() {
        let sql = build_search(&collection(false), &query(None, Some("fox")), true).into_sql();
        assert!(sql.contains("vector_leg AS") && sql.contains("text_leg AS") && sql.contains("FULL OUTER JOIN"));
        let vector_binds = sql.match_indices("::vector").filter(|(at, _)| {
            let bind = sql[..*at].rsplit('$').next().unwrap_or_default();
            bind.chars().all(|c| c.is_ascii_digit()) && bind != "1"
        });
        assert_eq!(vector_binds.count(), 0, "the vector is bound once, as $1: {sql}");
    }

    #[test]
    fn a_hybrid_vector_leg_over_a_half_precision_graph_ranks_by_its_distance_and_scores_hits_in_single_precision() {
        let hybrid = build_search(&collection(false), &query(None, Some("fox")), true).into_sql();
        assert!(
            hybrid.contains("SELECT d.id, (d.embedding::halfvec(3)) <=> $1::vector::halfvec(3) AS distance FROM")
                && hybrid.contains("IS NOT NULL ORDER BY distance LIMIT 10)")
                && hybrid.contains(
                    "CASE WHEN r.vector_rank IS NOT NULL THEN (1 - (d.embedding <=> $1::vector)) END AS vector_score"
                ),
            "{hybrid}"
        );
        let vector = build_search(&collection(false), &query(None, None), true).into_sql();
        assert!(
            vector.contains("SELECT d.id, d.embedding <=> $1::vector AS distance FROM")
                && !vector.contains("::vector::halfvec"),
            "{vector}"
        );
        let mut single = collection(false);
        single.spec.index = VectorIndex::hnsw(16, 64, IndexPrecision::Single).unwrap();
        let hybrid = build_search(&single, &query(None, Some("fox")), true).into_sql();
        assert!(
            !hybrid.contains("halfvec") && hybrid.contains("SELECT r.*, "),
            "{hybrid}"
        );
    }

    #[test]
    fn only_the_hits_returned_are_joined_for_their_fields() {
        let sql = build_search(&collection(false), &query(None, Some("fox")), true).into_sql();
        assert!(
            sql.contains("k ON v.id = k.id) r ORDER BY r.score DESC, r.id LIMIT 10 OFFSET 0) r JOIN"),
            "{sql}"
        );
    }

    #[test]
    fn an_unscoped_bm25_leg_is_the_index_top_n_in_the_main_query_scored_by_the_scan_and_checked_at_both_ends() {
        let sql = build_search(&bm25_collection(false), &query(None, Some("vector database")), true).into_sql();
        assert!(
            sql.contains(
                "SELECT d.id, bm25_get_current_score() AS cached FROM fathom_data.\"docs\" d WHERE d.tenant = "
            ) && sql.contains("ORDER BY d.body <@> to_bm25query(")
                && sql.contains("CASE WHEN place = 1 OR place = placed THEN (SELECT d.body <@> to_bm25query(")
                && sql.contains("FULL OUTER JOIN (SELECT id, score, rank")
                && !sql.contains("text_leg")
                && !sql.contains("text_exact")
                && !sql.contains("lexemes_q FROM text_query"),
            "{sql}"
        );
        let keyword_only = build_search(
            &bm25_collection(false),
            &SearchQuery {
                vector: None,
                ..query(None, Some("vector database"))
            },
            false,
        )
        .into_sql();
        assert!(
            keyword_only.contains("score AS text_score, score, found AS text_found FROM (SELECT id, score, rank")
                && !keyword_only.contains(" AS MATERIALIZED (SELECT d.id"),
            "{keyword_only}"
        );
    }

    #[test]
    fn a_scoped_bm25_leg_reads_a_bounded_prefix_of_the_index_and_its_fallback_ranks_the_scope_exactly() {
        for collection in [bm25_collection(true), bm25_collection(false)] {
            let filter = (!collection.spec.multi_tenant).then(|| Filter::All(vec![]));
            let search = query(filter, Some("vector database"));
            let (prefix, leg) = build_statement(&collection, &search, true, KeywordScope::IndexPrefix);
            let prefix = prefix.into_sql();
            assert_eq!(leg, TextLeg::Inline { scoped: true });
            assert!(
                prefix.contains(
                    "SELECT d.id, d.cached FROM (SELECT d.*, bm25_get_current_score() AS cached \
                     FROM fathom_data.\"docs\" d ORDER BY d.body <@> to_bm25query("
                ) && prefix.contains("LIMIT 1000) d WHERE d.tenant = ")
                    && prefix.contains("max(k.found) OVER () AS text_found")
                    && !prefix.contains("text_exact"),
                "{prefix}"
            );
            let (exact, leg) = build_statement(&collection, &search, true, KeywordScope::Exact);
            let exact = exact.into_sql();
            assert_eq!(leg, TextLeg::Cte);
            assert!(
                exact.contains("text_exact AS (SELECT d.id, -(d.body <@> to_bm25query(")
                    && exact.contains("AND d.body_tsv @@ (SELECT lexemes_q FROM text_query)")
                    && !exact.contains("bm25_get_current_score"),
                "{exact}"
            );
        }
    }

    #[test]
    fn excluded_terms_are_filtered_out_of_the_bm25_leg() {
        let sql = build_search(&bm25_collection(false), &query(None, Some("vector -chroma")), true).into_sql();
        assert!(
            sql.contains("AND NOT coalesce(d.body_tsv @@ (SELECT none_q FROM text_query), false)"),
            "{sql}"
        );
    }
}
