//! Collections: their names and settings.

use std::fmt;

use chrono::{DateTime, Utc};

use super::InvalidRequest;

/// A valid collection name: 1 to 48 characters of `[a-z0-9_]`, starting with
/// a letter. Short enough that every index name derived from it stays within
/// PostgreSQL's 63-byte identifier limit, and plain enough to read in psql.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 48;

    /// Parses a name; `field` names the request field in the refusal.
    pub fn parse(field: &str, name: &str) -> Result<Self, InvalidRequest> {
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if name.is_empty() {
            Err(InvalidRequest::field(field, "a collection name is required"))
        } else if name.len() > Self::MAX_LEN {
            Err(InvalidRequest::field(
                field,
                format!(
                    "collection name is {} characters long; the limit is {}",
                    name.len(),
                    Self::MAX_LEN
                ),
            ))
        } else if !valid_chars || !starts_with_letter {
            Err(InvalidRequest::field(
                field,
                "collection names use lower-case ASCII letters, digits and '_', and start with a letter",
            ))
        } else {
            Ok(Self(name.to_owned()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Cosine similarity; score = 1 - cosine distance, larger is better.
    Cosine,
    /// Euclidean distance; score = distance, smaller is better.
    L2,
    /// Inner product; score = inner product, larger is better.
    InnerProduct,
}

impl Metric {
    /// The name stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::InnerProduct => "inner_product",
        }
    }

    /// Reads a name stored in the catalog.
    pub fn from_stored(name: &str) -> Option<Self> {
        match name {
            "cosine" => Some(Metric::Cosine),
            "l2" => Some(Metric::L2),
            "inner_product" => Some(Metric::InnerProduct),
            _ => None,
        }
    }

    /// Whether a larger vector score means a closer match.
    pub fn larger_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

/// Whether a collection's vector index serves its searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// Built (or there is none by design, [`VectorIndex::None`]).
    Ready,
    /// Not built: searches are exact scans until it is.
    Deferred,
    /// Being built; searches are exact until it is ready.
    Building,
}

/// The precision of the vectors an HNSW graph holds. Documents keep their
/// vectors in single precision either way, and scores come from those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPrecision {
    /// pgvector `halfvec`: half the index, a build 1.1–1.5× faster and
    /// searches about a tenth cheaper, the same recall on embeddings
    /// (docs/benchmarks.md). Components must fit in a half: |x| ≤ 65504.
    Half,
    /// pgvector `vector`, as collections created before half precision.
    Single,
}

impl IndexPrecision {
    /// The largest half-precision number: the bound on every component of
    /// a vector in a half-precision graph.
    pub const HALF_MAX: f32 = 65504.0;
    /// The largest magnitude half precision rounds to zero (2⁻²⁵; the
    /// smallest half above zero is 2⁻²⁴).
    pub const HALF_ROUNDS_TO_ZERO: f32 = 1.0 / 33_554_432.0;

    /// How the catalog stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexPrecision::Half => "half",
            IndexPrecision::Single => "single",
        }
    }

    /// Reads the catalog's form.
    pub fn from_stored(stored: &str) -> Option<Self> {
        match stored {
            "half" => Some(IndexPrecision::Half),
            "single" => Some(IndexPrecision::Single),
            _ => None,
        }
    }

    /// pgvector's largest dimension for an HNSW index of this precision.
    pub fn max_dimension(self) -> u32 {
        match self {
            IndexPrecision::Half => 4000,
            IndexPrecision::Single => 2000,
        }
    }
}

/// The vector index of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorIndex {
    /// pgvector HNSW with these parameters.
    Hnsw {
        /// Maximum connections per node.
        m: u32,
        /// Candidate list size while building.
        ef_construction: u32,
        /// The precision of the vectors in the graph.
        precision: IndexPrecision,
    },
    /// No vector index: vector search is exact.
    None,
}

impl VectorIndex {
    /// Default HNSW `m`, as in pgvector.
    pub const DEFAULT_M: u32 = 16;
    /// Default HNSW `ef_construction`, as in pgvector.
    pub const DEFAULT_EF_CONSTRUCTION: u32 = 64;
    /// The precision of a new graph that does not say.
    pub const DEFAULT_PRECISION: IndexPrecision = IndexPrecision::Half;

    /// HNSW with pgvector's defaults, at [`Self::DEFAULT_PRECISION`].
    pub fn default_hnsw() -> Self {
        VectorIndex::Hnsw {
            m: Self::DEFAULT_M,
            ef_construction: Self::DEFAULT_EF_CONSTRUCTION,
            precision: Self::DEFAULT_PRECISION,
        }
    }

    /// The precision of the HNSW graph (`None`: no vector index).
    pub fn precision(&self) -> Option<IndexPrecision> {
        match self {
            VectorIndex::Hnsw { precision, .. } => Some(*precision),
            VectorIndex::None => None,
        }
    }

    /// Checks HNSW parameters (0 means default), as pgvector would, so that a
    /// bad value is refused with a field violation instead of a failed CREATE INDEX.
    pub fn hnsw(m: u32, ef_construction: u32, precision: IndexPrecision) -> Result<Self, InvalidRequest> {
        let m = if m == 0 { Self::DEFAULT_M } else { m };
        let ef_construction = if ef_construction == 0 {
            Self::DEFAULT_EF_CONSTRUCTION
        } else {
            ef_construction
        };
        if !(2..=100).contains(&m) {
            return Err(InvalidRequest::field(
                "index.hnsw.m",
                format!("m is {m}; it must be 2..=100"),
            ));
        }
        if !(4..=1000).contains(&ef_construction) {
            return Err(InvalidRequest::field(
                "index.hnsw.ef_construction",
                format!("ef_construction is {ef_construction}; it must be 4..=1000"),
            ));
        }
        if ef_construction < 2 * m {
            return Err(InvalidRequest::field(
                "index.hnsw.ef_construction",
                format!(
                    "ef_construction is {ef_construction}; it must be at least 2 * m = {}",
                    2 * m
                ),
            ));
        }
        Ok(VectorIndex::Hnsw {
            m,
            ef_construction,
            precision,
        })
    }
}

/// When a collection's HNSW index is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexBuild {
    /// Once the collection's vectors pass the server's indexing threshold:
    /// at the end of the UpsertStream (or after the Upsert) that passes it.
    /// Below it, searches are exact.
    Automatic,
    /// With the collection; every write maintains it.
    Immediate,
    /// Only when asked: BuildIndex, or an UpsertStream's `build_index_at_end`.
    OnRequest,
}

impl IndexBuild {
    /// The name stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexBuild::Automatic => "automatic",
            IndexBuild::Immediate => "immediate",
            IndexBuild::OnRequest => "on_request",
        }
    }

    /// Reads a name stored by [`IndexBuild::as_str`].
    pub fn from_stored(name: &str) -> Option<Self> {
        [IndexBuild::Automatic, IndexBuild::Immediate, IndexBuild::OnRequest]
            .into_iter()
            .find(|build| build.as_str() == name)
    }
}

/// A PostgreSQL text-search configuration name, such as `english`. Its
/// syntax is checked here; that the configuration exists is checked against
/// `pg_ts_config` by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLanguage(String);

impl TextLanguage {
    /// The language used when a request names none.
    pub const DEFAULT: &'static str = "english";

    /// Parses a configuration name; empty means [`TextLanguage::DEFAULT`].
    pub fn parse(field: &str, name: &str) -> Result<Self, InvalidRequest> {
        let name = if name.is_empty() { Self::DEFAULT } else { name };
        if name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidRequest::field(
                field,
                "a text language is a PostgreSQL text-search configuration name such as 'english' or 'simple'",
            ))
        }
    }

    /// The configuration name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything that defines a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpec {
    /// Its name.
    pub name: CollectionName,
    /// Number of vector components.
    pub dimension: u32,
    /// How vectors are compared.
    pub metric: Metric,
    /// The vector index.
    pub index: VectorIndex,
    /// The text-search configuration.
    pub language: TextLanguage,
    /// Whether documents belong to tenants.
    pub multi_tenant: bool,
    /// When the HNSW index is built.
    pub index_build: IndexBuild,
}

impl CollectionSpec {
    /// The largest dimension of pgvector's `vector` type.
    pub const MAX_DIMENSION: u32 = 16000;

    /// Checks the dimension against the type's and the index's limits.
    pub fn check_dimension(dimension: u32, index: &VectorIndex) -> Result<u32, InvalidRequest> {
        if dimension == 0 || dimension > Self::MAX_DIMENSION {
            return Err(InvalidRequest::field(
                "dimension",
                format!("dimension is {dimension}; it must be 1..={}", Self::MAX_DIMENSION),
            ));
        }
        if let VectorIndex::Hnsw { precision, .. } = index
            && dimension > precision.max_dimension()
        {
            return Err(InvalidRequest::field(
                "dimension",
                format!(
                    "dimension {dimension} is above the limit of an HNSW index at {} precision, {}; {}",
                    precision.as_str(),
                    precision.max_dimension(),
                    match precision {
                        IndexPrecision::Single => "choose half precision (up to 4000), or index.none for exact search",
                        IndexPrecision::Half => "choose index.none for exact search",
                    }
                ),
            ));
        }
        Ok(dimension)
    }
}

/// A collection as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Its identity in the catalog: a collection dropped and created again
    /// under the same name has another.
    pub id: i64,
    /// Its settings.
    pub spec: CollectionSpec,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// How its keyword searches rank documents.
    pub keyword_ranking: KeywordRanking,
}

/// How a collection's keyword searches rank the documents that match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordRanking {
    /// BM25, through the collection's `bm25` index (the pg_textsearch
    /// extension): the best documents come from the index, scored with the
    /// collection's statistics (inverse document frequency over all of its
    /// tenants, document length).
    Bm25,
    /// PostgreSQL's own `ts_rank`, where pg_textsearch is not installed:
    /// documents with more of the query's terms first, then `ts_rank`.
    TsRank,
}

impl KeywordRanking {
    /// The name GetCollection and the logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordRanking::Bm25 => "bm25",
            KeywordRanking::TsRank => "ts_rank",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_reject_sql_and_accept_plain_names() {
        assert!(CollectionName::parse("name", "docs_2024").is_ok());
        for bad in ["", "x\"; drop table y; --", "Docs", "1docs", "a-b", &"a".repeat(49)] {
            assert!(CollectionName::parse("name", bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn hnsw_parameters_follow_pgvector_limits() {
        let half = IndexPrecision::Half;
        assert_eq!(VectorIndex::hnsw(0, 0, half).unwrap(), VectorIndex::default_hnsw());
        assert!(VectorIndex::hnsw(1, 64, half).is_err());
        assert!(VectorIndex::hnsw(32, 40, half).is_err());
    }

    #[test]
    fn hnsw_dimension_limits_follow_the_precision() {
        let index = |precision| VectorIndex::hnsw(0, 0, precision).unwrap();
        assert!(CollectionSpec::check_dimension(4000, &index(IndexPrecision::Half)).is_ok());
        let error = CollectionSpec::check_dimension(4001, &index(IndexPrecision::Half)).unwrap_err();
        assert!(format!("{error:?}").contains("4000"), "{error:?}");
        assert!(CollectionSpec::check_dimension(2000, &index(IndexPrecision::Single)).is_ok());
        let error = CollectionSpec::check_dimension(2001, &index(IndexPrecision::Single)).unwrap_err();
        assert!(format!("{error:?}").contains("half precision"), "{error:?}");
        assert!(CollectionSpec::check_dimension(16000, &VectorIndex::None).is_ok());
    }
}
