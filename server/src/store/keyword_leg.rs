//! The keyword leg of a search: the `text_leg` CTE, with columns `id`,
//! `score` (larger is better), `rank` (1 is best), and `smin`/`smax` (the
//! leg's lowest and highest score, for relative-score fusion).
//!
//! Two rankings, chosen per collection ([`KeywordRanking`]): BM25 through
//! the collection's `bm25` index (pg_textsearch), which hands over the best
//! documents without scoring every match; and, where the extension is
//! missing, PostgreSQL's own `ts_rank` over the stored tsvector.

use sqlx::{Postgres, QueryBuilder};

use super::bm25_indexes::bm25_index_name;
use super::documents::push_scope;
use crate::domain::{Collection, Fusion, KeywordQuery, KeywordRanking, SearchQuery};

/// Most documents a scoped (filtered or tenant) BM25 leg reads from the
/// index, best first, looking for its candidates among them; past that the
/// scope is selective enough that ranking its own matches exactly is
/// cheaper. A multiple of the candidates, and at least this many.
const SCOPED_BM25_SCAN_MIN: i64 = 1000;
/// The multiple of the candidates a scoped BM25 leg reads from the index.
const SCOPED_BM25_SCAN_PER_CANDIDATE: i64 = 20;

/// What the final projection must still do for the keyword leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeywordScores {
    /// The leg scored its candidates.
    InLeg,
    /// The leg ranked its candidates by the index's order without scoring
    /// them; the hits returned are scored (a handful, not every candidate).
    ForHitsOnly,
}

/// Pushes `text_query` and `text_leg` (and the CTEs they need) for the
/// query's `keywords`, ranking at most `n` candidates.
pub(super) fn push_keyword_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) -> KeywordScores {
    let bm25_words = (collection.keyword_ranking == KeywordRanking::Bm25).then(|| bm25_words(keywords));
    push_text_query(qb, collection.spec.language.as_str(), keywords, bm25_words);
    qb.push(", ");
    match collection.keyword_ranking {
        KeywordRanking::TsRank => {
            push_ts_rank_leg(qb, t, keywords, query, n);
            KeywordScores::InLeg
        }
        KeywordRanking::Bm25 => push_bm25_leg(qb, collection, t, keywords, query, n),
    }
}

/// Pushes `to_bm25query(text, index)`: the query's words as one text, for
/// the collection's `bm25` index, which tokenises it with the collection's
/// text configuration. A phrase is scored as its words (the index keeps no
/// positions); the leg matches it as a phrase, and leaves out excluded
/// terms, through [`push_text_query`]'s tsqueries.
pub(super) fn push_bm25_query(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    keywords: &KeywordQuery,
) {
    qb.push("to_bm25query(")
        .push_bind(bm25_words(keywords))
        .push("::text, ")
        .push_bind(bm25_index_name(&collection.spec.name))
        .push("::text)");
}

/// The words BM25 scores: every term's, phrases' without their quotes.
fn bm25_words(keywords: &KeywordQuery) -> String {
    keywords.any_of.join(" ").replace('"', " ")
}

/// `text_query`: the terms as tsqueries. `q` matches documents with any
/// term and no excluded one; `all_q` those with every term and no excluded
/// one; `none_q` those with an excluded term (NULL if there are none).
/// Each term is a bound value read by `websearch_to_tsquery`; the OR of the
/// terms is built from PostgreSQL's own text form of each term's tsquery,
/// which quotes every lexeme. With `bm25_words`, also `lexemes_q`: any of
/// the lexemes of those words, which are the documents BM25 scores above
/// zero (its inverse document frequency is never zero), each lexeme quoted
/// by PostgreSQL as a one-lexeme tsvector's text.
fn push_text_query(
    qb: &mut QueryBuilder<'static, Postgres>,
    language: &str,
    keywords: &KeywordQuery,
    bm25_words: Option<String>,
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
    qb.push(" AS none_of, ");
    match bm25_words {
        Some(words) => {
            qb.push(
                "(SELECT string_agg(array_to_tsvector(ARRAY[l])::text, ' | ')::tsquery \
                 FROM unnest(tsvector_to_array(to_tsvector(",
            )
            .push_bind(language.to_owned())
            .push("::regconfig, ")
            .push_bind(words)
            .push("))) l)");
        }
        None => {
            qb.push("NULL::tsquery");
        }
    }
    qb.push(
        " AS lexemes_q), \
         text_query AS MATERIALIZED (SELECT any_of, none_q, lexemes_q, \
         CASE WHEN none_of IS NULL THEN any_q ELSE any_q && !!none_q END AS q, \
         CASE WHEN none_of IS NULL THEN all_q ELSE all_q && !!none_q END AS all_q \
         FROM (SELECT any_of, none_of, lexemes_q, \
         (SELECT string_agg('(' || x::text || ')', ' | ')::tsquery FROM unnest(any_of) x) AS any_q, \
         (SELECT string_agg('(' || x::text || ')', ' & ')::tsquery FROM unnest(any_of) x) AS all_q, \
         (SELECT string_agg('(' || x::text || ')', ' | ')::tsquery FROM unnest(none_of) x) AS none_q \
         FROM text_terms) s)",
    );
}

/// The BM25 leg. Unscoped, it is the index's own top `n`: the index scan
/// returns the best documents first (Block-Max WAND), scoring only what
/// can still place. Scoped by a filter or a tenant, the index's best
/// documents are read until `n` of them are in scope, up to a bound
/// ([`SCOPED_BM25_SCAN_MIN`]); if the scope leaves fewer, its own matching
/// documents are ranked exactly instead (the one-time filter keeps the other
/// branch from running), as the vector leg does. Either way the hits are
/// those of an exhaustive BM25 ranking of the documents in scope.
///
/// The index orders by BM25 but does not hand its scores to the rest of the
/// statement; a score in the select list is computed again, from the
/// document's text. So candidates are scored here only where fusion or a
/// score threshold needs every candidate's score, and otherwise ranked in
/// the index's order, with the returned hits scored at the end.
fn push_bm25_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) -> KeywordScores {
    let scores = if query.is_hybrid()
        && matches!(query.fusion, Fusion::ReciprocalRank { .. })
        && query.score_threshold.is_none()
    {
        KeywordScores::ForHitsOnly
    } else {
        KeywordScores::InLeg
    };
    let score = |qb: &mut QueryBuilder<'static, Postgres>| match scores {
        KeywordScores::InLeg => {
            qb.push("-(d.body <@> ");
            push_bm25_query(qb, collection, keywords);
            qb.push(")::float8 AS score");
        }
        KeywordScores::ForHitsOnly => {
            qb.push("NULL::float8 AS score");
        }
    };
    // The documents the leg ranks: those BM25 scores above zero (the index
    // returns no others, but a plan without it, over a small table, would
    // score every row), less excluded terms. A quoted phrase matches only
    // where its words stand together, which the index cannot tell: with
    // one, documents must match the terms as `ts_rank` would (`q`, which
    // leaves out excluded terms too), and the leg is scoped like a filter.
    // Where the index is to order the documents, the match is written so
    // that no index can serve it (`coalesce`): as an indexable `@@`, it
    // offered the planner the GIN index, and a generic plan that took it
    // scored every matching document to sort them (a hundred milliseconds
    // on the bench's corpus instead of a few).
    let has_phrase = keywords.any_of.iter().any(|term| term.starts_with('"'));
    let excluded = !keywords.none_of.is_empty();
    let push_match = |qb: &mut QueryBuilder<'static, Postgres>, indexable: bool| {
        let tsquery = if has_phrase { "q" } else { "lexemes_q" };
        if indexable {
            qb.push(format_args!(" AND d.body_tsv @@ (SELECT {tsquery} FROM text_query)"));
        } else {
            qb.push(format_args!(
                " AND coalesce(d.body_tsv @@ (SELECT {tsquery} FROM text_query), false)"
            ));
        }
        if excluded && !has_phrase {
            qb.push(" AND NOT coalesce(d.body_tsv @@ (SELECT none_q FROM text_query), false)");
        }
    };
    let scoped = query.filter.is_some() || collection.spec.multi_tenant || has_phrase;
    qb.push("text_hits AS MATERIALIZED (SELECT d.id, ");
    score(qb);
    if scoped {
        let bound = (n * SCOPED_BM25_SCAN_PER_CANDIDATE).max(SCOPED_BM25_SCAN_MIN);
        qb.push(format_args!(" FROM (SELECT * FROM {t} d ORDER BY d.body <@> "));
        push_bm25_query(qb, collection, keywords);
        qb.push(format_args!(" LIMIT {bound}) d"));
        push_scope(qb, &query.tenant, query.filter.as_ref());
        push_match(qb, false);
        qb.push(format_args!(" LIMIT {n}), "));
        // The scope's own matches, ranked exactly, only if the index's best
        // held fewer than `n` of them. `score` is not the `<@>` operator the
        // index orders by, so this ranks by scoring, not by the index.
        qb.push(format_args!("text_exact AS (SELECT d.id, -(d.body <@> "));
        push_bm25_query(qb, collection, keywords);
        qb.push(format_args!(")::float8 AS score FROM {t} d"));
        push_scope(qb, &query.tenant, query.filter.as_ref());
        push_match(qb, true);
        qb.push(format_args!(
            " AND (SELECT count(*) FROM text_hits) < {n} ORDER BY score DESC, d.id LIMIT {n}), "
        ));
    } else {
        qb.push(format_args!(" FROM {t} d"));
        push_scope(qb, &query.tenant, None);
        push_match(qb, false);
        qb.push(" ORDER BY d.body <@> ");
        push_bm25_query(qb, collection, keywords);
        qb.push(format_args!(" LIMIT {n}), "));
    }
    // The index's order is BM25's; with scores at hand, ties go by id.
    let rank = match scores {
        KeywordScores::InLeg => "row_number() OVER (ORDER BY score DESC, id)",
        KeywordScores::ForHitsOnly => "row_number() OVER ()",
    };
    qb.push(format_args!(
        "text_ranked AS (SELECT id, score, {rank} AS rank FROM text_hits"
    ));
    if scoped {
        qb.push(format_args!(
            " WHERE (SELECT count(*) FROM text_hits) >= {n} UNION ALL SELECT id, score, \
             row_number() OVER (ORDER BY score DESC, id) AS rank FROM text_exact"
        ));
    }
    qb.push(
        "), text_leg AS (SELECT id, score, rank, min(score) OVER () AS smin, max(score) OVER () AS smax \
         FROM text_ranked)",
    );
    scores
}

/// The `ts_rank` leg: documents with any of the query's terms and none of
/// its excluded ones, ranked by how many terms they hold, then by
/// `ts_rank` divided by 1 + the log of the document's length (flag 1) and
/// normalised to [0, 1) (flag 32), so a document with every word ranks above
/// one with some. The length normalisation is chosen by measurement (nDCG@10
/// in docs/benchmarks.md): without it, long documents that repeat a common
/// word outrank the short one about the query. `ts_rank`, not `ts_rank_cd`: the
/// cover-density rank costs about half as much again as matching itself
/// on every matching row, and for queries of a few words the count of words
/// held already does what proximity would.
///
/// Ranking reads every matching row, so the leg is built in two tiers:
/// `text_all`, the documents holding every term (their AND, which the GIN
/// index intersects), and `text_rest`, the others. Every document of the
/// first tier outranks every document of the second, so when the first
/// already has `n` rows the second cannot place and does not run (a
/// one-time filter on the first's count). Common words are where that pays:
/// two words each in 5 % of a corpus match about 10 % of it, and both about
/// 0.25 %. When the second runs, the first holds every document with all
/// the terms, so the second leaves those out by id (a hashed lookup instead
/// of testing each row against the AND again). The order is the same as
/// ranking all matches at once.
fn push_ts_rank_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) {
    qb.push(
        "text_all AS MATERIALIZED (SELECT d.id, \
         (coalesce(array_length(tq.any_of, 1), 0) + ts_rank(d.body_tsv, tq.q, 33))::float8 AS score FROM ",
    );
    qb.push(t).push(" d, text_query tq");
    push_scope(qb, &query.tenant, query.filter.as_ref());
    qb.push(format_args!(
        " AND d.body_tsv @@ tq.all_q ORDER BY score DESC, d.id LIMIT {n}), \
         text_rest AS (SELECT d.id, ("
    ));
    push_rest_words_held(qb, keywords.any_of.len());
    qb.push(" + ts_rank(d.body_tsv, tq.q, 33))::float8 AS score FROM ");
    qb.push(t).push(" d, text_query tq");
    push_scope(qb, &query.tenant, query.filter.as_ref());
    qb.push(format_args!(
        " AND (SELECT count(*) FROM text_all) < {n} \
         AND d.body_tsv @@ tq.q AND d.id NOT IN (SELECT id FROM text_all) ORDER BY score DESC, d.id LIMIT {n}), \
         text_leg AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank, \
         min(score) OVER () AS smin, max(score) OVER () AS smax FROM (\
         SELECT * FROM text_all UNION ALL SELECT * FROM text_rest ORDER BY score DESC, id LIMIT {n}) kw)"
    ));
}

/// How many of the query's `terms` terms a row of `text_rest` holds. It
/// holds at least one and not all, so with two terms or fewer that is 1,
/// known without two `@@` tests of array elements per matching row.
/// Otherwise one sum of `@@` tests inline (`tq.any_of[i]` is NULL where a
/// term was all stop words); inline, not a subquery over
/// `unnest(tq.any_of)`, which ran once per matching row and cost about as
/// much as the match itself.
fn push_rest_words_held(qb: &mut QueryBuilder<'static, Postgres>, terms: usize) {
    if terms <= 2 {
        qb.push("1");
        return;
    }
    for i in 1..=terms {
        if i > 1 {
            qb.push(" + ");
        }
        qb.push(format_args!("coalesce((d.body_tsv @@ tq.any_of[{i}])::int, 0)"));
    }
}
