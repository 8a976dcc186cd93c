//! Search requests and the rows they produce.

use std::fmt;

use super::{DocumentFields, Filter, InvalidRequest, KeywordQuery, Tenant};

/// How a hybrid search combines its two legs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: Σ weight / (k + rank).
    ReciprocalRank {
        /// The k constant.
        k: f64,
        /// Weight of the vector leg.
        vector_weight: f64,
        /// Weight of the keyword leg.
        text_weight: f64,
    },
    /// Relative score fusion: alpha · norm(vector) + (1 - alpha) · norm(text).
    RelativeScore {
        /// Weight of the vector leg, 0..=1.
        alpha: f64,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::ReciprocalRank {
            k: 60.0,
            vector_weight: 1.0,
            text_weight: 1.0,
        }
    }
}

/// How many candidates an HNSW scan keeps as it walks the graph
/// (pgvector's `hnsw.ef_search`): 1 to [`EfSearch::MAX`]. Wider finds more
/// of the true nearest neighbours, at the cost of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EfSearch(u32);

impl EfSearch {
    /// The breadth of a search that sets none, unless it asks for more
    /// candidates. pgvector's own default (40) gives recall@10 of about 0.79
    /// on `make bench`'s embedding-like 100,000 × 768 data; this is the
    /// lowest value of the bench's sweep that reaches 0.95 there
    /// (docs/benchmarks.md).
    pub const DEFAULT: EfSearch = EfSearch(100);

    /// pgvector's largest `hnsw.ef_search`.
    pub const MAX: EfSearch = EfSearch(1000);

    /// Parses a requested breadth; `field` names the request field in the
    /// refusal.
    pub fn parse(field: &str, ef_search: u32) -> Result<Self, InvalidRequest> {
        if ef_search == 0 {
            Err(InvalidRequest::field(field, "ef_search is 0; the least is 1"))
        } else if ef_search > Self::MAX.0 {
            Err(InvalidRequest::field(
                field,
                format!("ef_search is {ef_search}; the maximum is {}", Self::MAX.0),
            ))
        } else {
            Ok(Self(ef_search))
        }
    }

    /// The breadth of a leg of `candidates` that sets none: [`Self::DEFAULT`],
    /// or the candidates if more (up to [`Self::MAX`]), as pgvector needs
    /// `ef_search ≥ LIMIT` for a full answer in one scan.
    pub fn for_candidates(candidates: u32) -> Self {
        Self(candidates.clamp(Self::DEFAULT.0, Self::MAX.0))
    }

    /// The breadth as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for EfSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Candidates per leg of a hybrid search, per hit asked for: enough that a
/// document in both legs' top `limit` is in both legs' candidates.
const HYBRID_CANDIDATES_PER_HIT: u32 = 5;

/// Fewest candidates per leg of a hybrid search that sets none.
pub const MIN_HYBRID_CANDIDATES: u32 = 50;

/// What a search that leaves `candidates` and `params.ef_search` unset gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchDefaults {
    /// Candidates per leg.
    pub candidates: u32,
    /// HNSW search breadth.
    pub ef_search: EfSearch,
}

/// The defaults for a search of `limit` hits: a vector search ranks exactly
/// `limit` candidates; a hybrid one `5 × limit` per leg (at least 50).
/// `ef_search` follows the candidates (see [`EfSearch::for_candidates`]).
pub fn search_defaults(limit: u32, hybrid: bool) -> SearchDefaults {
    let candidates = if hybrid {
        limit
            .saturating_mul(HYBRID_CANDIDATES_PER_HIT)
            .max(MIN_HYBRID_CANDIDATES)
    } else {
        limit
    };
    SearchDefaults {
        candidates,
        ef_search: EfSearch::for_candidates(candidates),
    }
}

/// A validated search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// The tenant searched.
    pub tenant: Tenant,
    /// The query vector, if there is a vector leg.
    pub vector: Option<Vec<f32>>,
    /// The query text's terms, if there is a keyword leg.
    pub text: Option<KeywordQuery>,
    /// How the legs are fused when both are present.
    pub fusion: Fusion,
    /// Candidates per leg.
    pub candidates: u32,
    /// Only matching documents are ranked.
    pub filter: Option<Filter>,
    /// Most hits returned.
    pub limit: u32,
    /// Best hits skipped before the `limit` returned (paging).
    pub offset: u32,
    /// Hits scoring worse than this are dropped.
    pub score_threshold: Option<f64>,
    /// Fields returned with each hit.
    pub include: DocumentFields,
    /// HNSW search breadth.
    pub ef_search: EfSearch,
    /// Skip the vector index.
    pub exact: bool,
}

impl SearchQuery {
    /// A search of `tenant` for the `limit` best hits of `vector`, `text`
    /// or both (then fused by reciprocal rank), with what a request that
    /// sets nothing else gets: no filter or score threshold, text and
    /// metadata with each hit, and [`search_defaults`].
    pub fn new(tenant: Tenant, vector: Option<Vec<f32>>, text: Option<KeywordQuery>, limit: u32) -> Self {
        let defaults = search_defaults(limit, vector.is_some() && text.is_some());
        Self {
            tenant,
            vector,
            text,
            fusion: Fusion::default(),
            candidates: defaults.candidates,
            filter: None,
            limit,
            offset: 0,
            score_threshold: None,
            include: DocumentFields {
                text: true,
                metadata: true,
                vector: false,
            },
            ef_search: defaults.ef_search,
            exact: false,
        }
    }

    /// Whether both legs run, so their results are fused.
    pub fn is_hybrid(&self) -> bool {
        self.vector.is_some() && self.text.is_some()
    }
}

/// One hit as the store produces it.
#[derive(Debug, Clone)]
pub struct SearchHitRow {
    /// The document id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The final score.
    pub score: f64,
    /// The vector leg's rank and score, if it found the document.
    pub vector_leg: Option<(u32, f64)>,
    /// The keyword leg's rank and score, if it found the document.
    pub text_leg: Option<(u32, f64)>,
    /// The text, if included.
    pub text: Option<String>,
    /// The metadata, if included.
    pub metadata: Option<serde_json::Value>,
    /// The vector, if included.
    pub vector: Option<Vec<f32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_search_ranks_limit_candidates_at_the_default_breadth() {
        assert_eq!(
            search_defaults(10, false),
            SearchDefaults {
                candidates: 10,
                ef_search: EfSearch::DEFAULT
            }
        );
    }

    #[test]
    fn breadth_follows_the_candidates_past_the_default_up_to_pgvectors_maximum() {
        assert_eq!(search_defaults(500, false).ef_search.get(), 500);
        assert_eq!(search_defaults(1000, true).ef_search, EfSearch::MAX);
    }

    #[test]
    fn a_breadth_is_one_to_pgvectors_maximum() {
        assert_eq!(EfSearch::parse("ef_search", 1).map(EfSearch::get), Ok(1));
        assert_eq!(EfSearch::parse("ef_search", 1000), Ok(EfSearch::MAX));
        for refused in [0, 1001, u32::MAX] {
            let refusal = EfSearch::parse("params.ef_search", refused).unwrap_err();
            assert_eq!(refusal.violations[0].field, "params.ef_search");
        }
    }

    #[test]
    fn a_hybrid_search_ranks_five_candidates_per_hit_and_at_least_fifty() {
        assert_eq!(search_defaults(10, true).candidates, 50);
        assert_eq!(search_defaults(20, true).candidates, 100);
    }
}
