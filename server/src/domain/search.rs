//! Search requests and the rows they produce.

use super::{DocumentFields, Filter, KeywordQuery, Tenant};

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
    /// Hits scoring worse than this are dropped.
    pub score_threshold: Option<f64>,
    /// Fields returned with each hit.
    pub include: DocumentFields,
    /// HNSW search breadth.
    pub ef_search: u32,
    /// Skip the vector index.
    pub exact: bool,
}

impl SearchQuery {
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
