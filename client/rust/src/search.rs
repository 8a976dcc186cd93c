//! The search builder.

use std::pin::Pin;

use fathom_api::v1 as pb;
use tokio_stream::{Stream, StreamExt};

use crate::retry::idempotent;
use crate::{Client, Error, Filter};

/// Hits as they arrive from the server, best first.
pub type HitStream = Pin<Box<dyn Stream<Item = Result<pb::SearchHit, Error>> + Send>>;

/// A search being built: a vector, a text, or both (hybrid).
#[derive(Debug, Clone)]
pub struct SearchBuilder {
    client: Client,
    request: pb::SearchRequest,
}

impl SearchBuilder {
    pub(crate) fn new(client: Client, collection: String) -> Self {
        Self {
            client,
            request: pb::SearchRequest {
                collection,
                ..Default::default()
            },
        }
    }

    /// The query vector.
    pub fn vector(mut self, vector: Vec<f32>) -> Self {
        self.request.vector = vector;
        self
    }

    /// The query text (web-search syntax; any text is accepted).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.request.text = Some(text.into());
        self
    }

    /// The tenant (multi-tenant collections).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.request.tenant = tenant.into();
        self
    }

    /// Only documents matching the filter are ranked.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.request.filter = Some(filter.into_proto());
        self
    }

    /// Most hits (default 10, at most 1000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.request.limit = limit;
        self
    }

    /// Search by example: the query vector is the stored vector of the
    /// document `id`, which is left out of the hits. Not with [`Self::vector`]:
    /// the server refuses both.
    pub fn example(mut self, id: impl Into<String>) -> Self {
        self.request.example_id = id.into();
        self
    }

    /// Skips the `offset` best hits before the `limit` returned (paging);
    /// set [`Self::candidates`] to at least `offset + limit` for pages that
    /// neither repeat nor skip a hit.
    pub fn offset(mut self, offset: u32) -> Self {
        self.request.offset = offset;
        self
    }

    /// Candidates per leg before fusion.
    pub fn candidates(mut self, candidates: u32) -> Self {
        self.request.candidates = candidates;
        self
    }

    /// Reciprocal rank fusion with these parameters.
    pub fn rrf(mut self, k: f64, vector_weight: f64, text_weight: f64) -> Self {
        let rrf = pb::ReciprocalRankFusion {
            k: Some(k),
            vector_weight: Some(vector_weight),
            text_weight: Some(text_weight),
        };
        self.request.fusion = Some(pb::Fusion {
            method: Some(pb::fusion::Method::Rrf(rrf)),
        });
        self
    }

    /// Relative score fusion: alpha · vector + (1 − alpha) · text, each min-max normalised.
    pub fn relative_score(mut self, alpha: f64) -> Self {
        let rsf = pb::RelativeScoreFusion { alpha: Some(alpha) };
        self.request.fusion = Some(pb::Fusion {
            method: Some(pb::fusion::Method::RelativeScore(rsf)),
        });
        self
    }

    /// Drops hits scoring worse than `threshold`.
    pub fn score_threshold(mut self, threshold: f64) -> Self {
        self.request.score_threshold = Some(threshold);
        self
    }

    /// Which fields each hit carries (default text and metadata).
    pub fn include(mut self, text: bool, metadata: bool, vector: bool) -> Self {
        self.request.include = Some(pb::Include { text, metadata, vector });
        self
    }

    /// HNSW search breadth, and whether to skip the index.
    pub fn params(mut self, ef_search: u32, exact: bool) -> Self {
        self.request.params = Some(pb::VectorSearchParams { ef_search, exact });
        self
    }

    /// How fresh the documents searched must be on a server with read
    /// replicas. Unset: after the newest write of this client (see
    /// [`Client::consistency_token`]), or eventual with
    /// [`Client::without_read_your_writes`].
    pub fn consistency(mut self, consistency: pb::read_consistency::Choice) -> Self {
        self.request.consistency = Some(pb::ReadConsistency {
            choice: Some(consistency),
        });
        self
    }

    /// The request as built.
    pub fn into_request(self) -> pb::SearchRequest {
        self.request
    }

    /// Runs the search. Until its first hit it is retried as the retry
    /// table says (`docs/retries.md`): an error before any hit (a busy pool,
    /// the database gone) fails the call as a whole. The hits then stream as
    /// the server produces them; once one is yielded, none is taken back.
    pub async fn send(self) -> Result<HitStream, Error> {
        let client = self.client;
        let mut request = self.request;
        if request.consistency.is_none() {
            request.consistency = client.read_consistency();
        }
        let (first, rest) = idempotent(client.retry, || async {
            let mut hits = client.search_stub().search(request.clone()).await?.into_inner();
            let first = hits.message().await?;
            Ok((first, hits))
        })
        .await?;
        let hits = tokio_stream::iter(first.map(Ok)).chain(rest.map(|hit| hit.map_err(Error::from)));
        Ok(Box::pin(hits))
    }
}
