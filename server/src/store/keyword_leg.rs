//! The keyword leg of a search: the `text_leg` CTE, or a subquery of the
//! main query ([`TextLeg`]), with columns `id`, `score` (larger is better),
//! `rank` (1 is best), and `smin`/`smax` (the leg's lowest and highest
//! score, for relative-score fusion).
//!
//! Two rankings, chosen per collection ([`KeywordRanking`]): BM25 through
//! the collection's `bm25` index (pg_textsearch), which hands over the best
//! documents without scoring every match; and, where the extension is
//! missing, PostgreSQL's own `ts_rank` over the stored tsvector.

use sqlx::{Postgres, QueryBuilder};

use super::bm25_indexes::bm25_index_name;
use super::documents::push_scope;
use crate::domain::{Collection, KeywordQuery, KeywordRanking, SearchQuery};

/// Most documents a scoped (filtered or tenant) BM25 leg reads from the
/// index, best first, looking for its candidates among them; past that the
/// scope is selective enough that ranking its own matches exactly is
/// cheaper. A multiple of the candidates, and at least this many.
const SCOPED_BM25_SCAN_MIN: i64 = 1000;
/// The multiple of the candidates a scoped BM25 leg reads from the index.
const SCOPED_BM25_SCAN_PER_CANDIDATE: i64 = 20;

/// Where the statement reads the keyword leg from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextLeg {
    /// The CTE `text_leg`.
    Cte,
    /// A BM25 leg as a subquery in the statement's main query, pushed where
    /// it is read ([`push_text_leg`]; see [`push_bm25_leg`] for why it
    /// cannot be a CTE), with a column `found`, how many candidates it
    /// holds. `scoped`: it looked for them among the index's best
    /// documents only, so with fewer than `n` the scope may hold others,
    /// and the search is to be run again with [`KeywordScope::Exact`].
    Inline { scoped: bool },
}

/// How a BM25 leg of a scoped search finds its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeywordScope {
    /// Among the index's best documents, up to a bound.
    IndexPrefix,
    /// By ranking every matching document in scope: for a scope the index's
    /// best documents held too few of.
    Exact,
}

/// Pushes the CTEs of the keyword leg for the query's `keywords`, ranking
/// at most `n` candidates: `text_terms` and `text_query`, and `text_leg`
/// with the CTEs it needs unless the leg is [`TextLeg::Inline`].
pub(super) fn push_keyword_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
    scope: KeywordScope,
) -> TextLeg {
    let bm25_words = (collection.keyword_ranking == KeywordRanking::Bm25).then(|| bm25_words(keywords));
    push_text_query(qb, collection.spec.language.as_str(), keywords, bm25_words);
    match collection.keyword_ranking {
        KeywordRanking::TsRank => {
            qb.push(", ");
            push_ts_rank_leg(qb, t, keywords, query, n);
            TextLeg::Cte
        }
        KeywordRanking::Bm25 => {
            let scoped = is_scoped(collection, keywords, query);
            if scoped && scope == KeywordScope::Exact {
                qb.push(", ");
                push_exact_bm25_leg(qb, collection, t, keywords, query, n);
                TextLeg::Cte
            } else {
                TextLeg::Inline { scoped }
            }
        }
    }
}

/// Pushes where the keyword leg is read from: `text_leg`, or the inline
/// leg itself.
pub(super) fn push_text_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    text_leg: TextLeg,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) {
    match text_leg {
        TextLeg::Cte => {
            qb.push("text_leg");
        }
        TextLeg::Inline { .. } => push_bm25_leg(qb, collection, t, keywords, query, n),
    }
}

/// Whether a BM25 leg ranks a scope (a filter, a tenant, or the documents
/// holding a quoted phrase) rather than the whole collection.
fn is_scoped(collection: &Collection, keywords: &KeywordQuery, query: &SearchQuery) -> bool {
    query.filter.is_some() || collection.spec.multi_tenant || has_phrase(keywords)
}

/// Whether a term is a quoted phrase.
fn has_phrase(keywords: &KeywordQuery) -> bool {
    keywords.any_of.iter().any(|term| term.starts_with('"'))
}

/// Pushes `to_bm25query(text, index)`: the query's words as one text, for
/// the collection's `bm25` index, which tokenises it with the collection's
/// text configuration. A phrase is scored as its words (the index keeps no
/// positions); the leg matches it as a phrase, and leaves out excluded
/// terms, through [`push_text_query`]'s tsqueries.
fn push_bm25_query(qb: &mut QueryBuilder<'static, Postgres>, collection: &Collection, keywords: &KeywordQuery) {
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

/// Pushes `(SELECT d.body <@> … WHERE d.id = {row}.id)`: the BM25 score of
/// the document of row `row`, computed from its text, negative as `<@>`
/// returns it.
fn push_exact_score(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    row: &str,
) {
    qb.push("(SELECT d.body <@> ");
    push_bm25_query(qb, collection, keywords);
    qb.push(format_args!(" FROM {t} d WHERE d.tenant = "))
        .push_bind(query.tenant.as_str().to_owned())
        .push(format_args!(" AND d.id = {row}.id)"));
}

/// A quoted phrase matches only where its words stand together, which the
/// index cannot tell: with one, documents must match the terms as
/// `ts_rank` would (`q`, which leaves out excluded terms too). Where the
/// bm25 index orders the documents, the match is written so that no index
/// can serve it (`coalesce`): as an indexable `@@`, it offered the planner
/// the GIN index, and a generic plan that took it scored every matching
/// document to sort them (a hundred milliseconds on the bench's corpus
/// instead of a few). Where the leg ranks the scope exactly, the match is
/// the GIN index's way to the scope's documents with a word of the query.
fn push_match(qb: &mut QueryBuilder<'static, Postgres>, keywords: &KeywordQuery, indexable: bool) {
    let has_phrase = has_phrase(keywords);
    let tsquery = if has_phrase { "q" } else { "lexemes_q" };
    if indexable {
        qb.push(format_args!(" AND d.body_tsv @@ (SELECT {tsquery} FROM text_query)"));
    } else if has_phrase {
        qb.push(" AND coalesce(d.body_tsv @@ (SELECT q FROM text_query), false)");
    }
    if !keywords.none_of.is_empty() && !has_phrase {
        qb.push(" AND NOT coalesce(d.body_tsv @@ (SELECT none_q FROM text_query), false)");
    }
}

/// The BM25 leg, as a subquery: the index's own top `n` (the index scan
/// returns the best documents first, Block-Max WAND, scoring only what can
/// still place), less documents with an excluded term. Scoped by a filter,
/// a tenant or a phrase, the index's best documents are read until `n` of
/// them are in scope, up to a bound ([`SCOPED_BM25_SCAN_MIN`]); if the
/// scope leaves fewer, the caller runs the search again with the scope's
/// own matches ranked exactly ([`push_exact_bm25_leg`]), as the vector
/// leg falls back to an exact scan. Either way the hits are those of an
/// exhaustive BM25 ranking of the documents in scope.
///
/// Scores come from the index scan itself: pg_textsearch keeps the score
/// of the row it returned last for `bm25_get_current_score()`, read in the
/// scan's own projection. A `<@>` anywhere else computes the score again
/// from the document's text (tokenised anew: about 40 µs a row on the
/// bench's corpus, ten times what the index scan costs a row), and so does
/// the ORDER BY's own `<@>`, unless pg_textsearch's planner hook swaps it
/// for the cached score, which it does only in a statement's main query:
/// not in a CTE, and a CTE holding a volatile function (as
/// `bm25_get_current_score` is) is never folded into the main query. So
/// this leg is a subquery, pushed where the statement reads it (a scoped
/// scan of 1,000 documents: 2 ms so, 56 ms in a CTE).
///
/// The cached score is the row's own only where the plan reads the index;
/// a plan without it (a sort, over a small table) leaves the last score of
/// an earlier scan there, the same for every row. So the first and the
/// last row are scored from their text too: rows come best first in either
/// plan, so if both agree, every row between holds its own score (to the
/// index's single precision); otherwise every row is scored from its text.
/// Rows scoring zero (no word of the query, which only a plan without the
/// index returns) are left out. `OFFSET 0` keeps the planner from folding
/// the two end rows' scores into the expressions that read them, which
/// would compute each more than once.
fn push_bm25_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) {
    qb.push(
        "(SELECT id, score, rank, min(score) OVER () AS smin, max(score) OVER () AS smax, \
         count(*) OVER () AS found FROM (\
         SELECT id, score, rank() OVER (ORDER BY score DESC) AS rank FROM (\
         SELECT id, -bm25 AS score FROM (\
         SELECT id, CASE WHEN bool_and(exact IS NULL OR abs(cached - exact) <= 1e-5 * (1 + abs(exact))) OVER () \
         THEN cached ELSE coalesce(exact, ",
    );
    push_exact_score(qb, collection, t, keywords, query, "text_ends");
    qb.push(
        ") END AS bm25 FROM (\
         SELECT id, cached, CASE WHEN place = 1 OR place = placed THEN ",
    );
    push_exact_score(qb, collection, t, keywords, query, "text_placed");
    qb.push(
        " END AS exact FROM (\
         SELECT id, cached, row_number() OVER () AS place, count(*) OVER () AS placed FROM (",
    );
    if is_scoped(collection, keywords, query) {
        let bound = (n * SCOPED_BM25_SCAN_PER_CANDIDATE).max(SCOPED_BM25_SCAN_MIN);
        qb.push(format_args!(
            "SELECT d.id, d.cached FROM (SELECT d.*, bm25_get_current_score() AS cached FROM {t} d \
             ORDER BY d.body <@> "
        ));
        push_bm25_query(qb, collection, keywords);
        qb.push(format_args!(" LIMIT {bound}) d"));
        push_scope(qb, &query.tenant, query.filter.as_ref());
        push_match(qb, keywords, false);
    } else {
        qb.push(format_args!(
            "SELECT d.id, bm25_get_current_score() AS cached FROM {t} d"
        ));
        push_scope(qb, &query.tenant, None);
        push_match(qb, keywords, false);
        qb.push(" ORDER BY d.body <@> ");
        push_bm25_query(qb, collection, keywords);
    }
    qb.push(format_args!(
        " LIMIT {n}) text_scan) text_placed OFFSET 0) text_ends) text_checked WHERE bm25 < 0) text_scored) text_ranked)"
    ));
}

/// The BM25 leg of a scoped search whose scope the index's best documents
/// held too few of (see [`push_bm25_leg`]), as the CTE `text_leg`: the
/// scope's own matching documents, each scored from its text, best first.
fn push_exact_bm25_leg(
    qb: &mut QueryBuilder<'static, Postgres>,
    collection: &Collection,
    t: &str,
    keywords: &KeywordQuery,
    query: &SearchQuery,
    n: i64,
) {
    qb.push("text_exact AS (SELECT d.id, -(d.body <@> ");
    push_bm25_query(qb, collection, keywords);
    qb.push(format_args!(")::float8 AS score FROM {t} d"));
    push_scope(qb, &query.tenant, query.filter.as_ref());
    push_match(qb, keywords, true);
    qb.push(format_args!(
        " ORDER BY score DESC, d.id LIMIT {n}), \
         text_leg AS (SELECT id, score, rank() OVER (ORDER BY score DESC) AS rank, \
         min(score) OVER () AS smin, max(score) OVER () AS smax FROM text_exact WHERE score > 0)"
    ));
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
         text_leg AS (SELECT id, score, rank() OVER (ORDER BY score DESC) AS rank, \
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
