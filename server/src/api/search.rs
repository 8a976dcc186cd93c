//! The `fathom.v1.Search` service.

use std::sync::Arc;

use fathom_api::v1 as pb;
use pb::search_server::Search;
use tonic::{Request, Response, Status};

use super::ResponseStream;
use super::access::access_of;
use super::consistency_proto::consistency_from_proto;
use super::document_proto::{fields_of, hit_to_proto};
use super::documents::DocumentsApi;
use super::error::ApiError;
use super::filter_proto::filter_from_proto;
use crate::domain::{
    Access, Collection, DocumentFields, EfSearch, Filter, Fusion, InvalidRequest, KeywordQuery, Limits, SearchQuery,
    Tenant, VectorRules, Violations, search_defaults,
};
use crate::metrics::SearchKind;
use crate::store::Store;

/// Fields a hit carries when the request does not say.
const DEFAULT_HIT_FIELDS: DocumentFields = DocumentFields {
    text: true,
    metadata: true,
    vector: false,
};
/// Hits returned when the request does not say.
const DEFAULT_LIMIT: u32 = 10;
/// The largest RRF leg weight (weights are relative; any useful ratio fits).
const MAX_RRF_WEIGHT: f64 = 1e6;

/// Handlers of the Search service.
pub struct SearchApi {
    documents: DocumentsApi,
}

impl SearchApi {
    /// Handlers over `store`, enforcing `limits`.
    pub fn new(store: Store, limits: Arc<Limits>) -> Self {
        Self {
            documents: DocumentsApi::new(store, limits),
        }
    }

    async fn search(
        &self,
        access: &Access,
        request: pb::SearchRequest,
    ) -> Result<ResponseStream<pb::SearchHit>, ApiError> {
        let (collection, tenant) = self
            .documents
            .scope(access, &request.collection, &request.tenant, "")
            .await?;
        let consistency = consistency_from_proto(request.consistency.as_ref())?;
        let (mut query, example) = search_query(request, &collection, tenant, &self.documents.limits)?;
        let reader = (self.documents.store)
            .search_reader(&collection, query.text.is_some(), consistency)
            .await;
        if let Some(id) = example {
            query.vector = Some(stored_vector(&reader, &collection, &query.tenant, &id).await?);
            query.filter = Some(leaving_out(id, query.filter.take()));
        }
        let kind = SearchKind::of(query.vector.is_some(), query.text.is_some());
        let started = std::time::Instant::now();
        let hits = reader.search(collection, query).await?;
        crate::metrics::search_finished(kind, started.elapsed());
        Ok(Box::pin(futures::stream::unfold(hits, |mut hits| async move {
            let next = hits.next().await?;
            Some((
                next.map(hit_to_proto).map_err(|e| Status::from(ApiError::from(e))),
                hits,
            ))
        })))
    }
}

/// The vector of the document `id`, the example of a search by example,
/// read from the store the search runs on.
async fn stored_vector(
    reader: &Store,
    collection: &Collection,
    tenant: &Tenant,
    id: &str,
) -> Result<Vec<f32>, ApiError> {
    let vector_only = DocumentFields {
        text: false,
        metadata: false,
        vector: true,
    };
    let found = reader.get(collection, tenant, &[id.to_owned()], vector_only).await?;
    found
        .into_iter()
        .next()
        .and_then(|document| document.vector)
        .ok_or_else(|| ApiError::ExampleNotFound(id.to_owned()))
}

/// The example a search names (`example_id`), if it names one; refused
/// with a vector of its own, or if it cannot be an id.
fn example_of(id: String, vector: Option<&Vec<f32>>, limits: &Limits) -> Result<Option<String>, InvalidRequest> {
    if id.is_empty() {
        Ok(None)
    } else if vector.is_some() {
        Err(InvalidRequest::field(
            "example_id",
            "give either a vector or an example_id, whose stored vector is the query",
        ))
    } else if id.len() > limits.max_id_bytes || id.contains('\0') {
        Err(InvalidRequest::field(
            "example_id",
            format!(
                "example_id must be an id: at most {} bytes, without NUL characters",
                limits.max_id_bytes
            ),
        ))
    } else {
        Ok(Some(id))
    }
}

/// `filter` (if any), and not the document `id`: an example is not its own neighbour.
fn leaving_out(id: String, filter: Option<Filter>) -> Filter {
    let not_the_example = Filter::Not(Box::new(Filter::Ids(vec![id])));
    match filter {
        None => not_the_example,
        Some(filter) => Filter::All(vec![filter, not_the_example]),
    }
}

#[tonic::async_trait]
impl Search for SearchApi {
    type SearchStream = ResponseStream<pb::SearchHit>;

    async fn search(&self, request: Request<pb::SearchRequest>) -> Result<Response<Self::SearchStream>, Status> {
        let access = access_of(&request)?;
        Ok(Response::new(self.search(&access, request.into_inner()).await?))
    }
}

/// Validates a search against its collection, filling in defaults. A
/// search by example comes back without its vector, and with the example's
/// id: its vector is read from the store once the whole request is valid.
fn search_query(
    request: pb::SearchRequest,
    collection: &Collection,
    tenant: Tenant,
    limits: &Limits,
) -> Result<(SearchQuery, Option<String>), InvalidRequest> {
    let mut violations = Violations::default();
    let vector = (!request.vector.is_empty()).then_some(request.vector);
    if let Some(vector) = &vector
        && let Err(problem) = VectorRules::of(&collection.spec).check(vector)
    {
        violations.add("vector", problem);
    }
    let example = violations
        .take(example_of(request.example_id, vector.as_ref(), limits))
        .flatten();
    // Any text is a valid query; NUL is the one character PostgreSQL text cannot hold.
    let text = request.text.map(|t| t.replace('\0', ""));
    if let Some(text) = &text
        && text.len() > limits.max_query_text_bytes
    {
        violations.add(
            "text",
            format!(
                "text is {} bytes; the limit is {}",
                text.len(),
                limits.max_query_text_bytes
            ),
        );
    }
    let has_vector_leg = vector.is_some() || example.is_some();
    if !has_vector_leg && text.is_none() {
        violations.add(
            "vector",
            "give a query vector (or an example_id), a query text, or both",
        );
    }
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        n if n > limits.max_search_limit => {
            violations.add(
                "limit",
                format!("limit is {n}; the maximum is {}", limits.max_search_limit),
            );
            n
        }
        n => n,
    };
    let offset = request.offset;
    let deepest = u64::from(offset) + u64::from(limit);
    if offset > 0 && deepest > u64::from(limits.max_search_limit) {
        violations.add(
            "offset",
            format!(
                "offset + limit is {deepest}; at most {} hits are ranked (offset {offset}, limit {limit})",
                limits.max_search_limit
            ),
        );
    }
    let hybrid = has_vector_leg && text.is_some();
    let candidates = match request.candidates {
        0 => search_defaults(offset.saturating_add(limit), hybrid)
            .candidates
            .min(limits.max_candidates),
        n if offset > 0 && u64::from(n) < deepest => {
            violations.add(
                "candidates",
                format!(
                    "candidates is {n}, fewer than offset + limit ({deepest}): the page would be cut short; give at \
                     least {deepest}"
                ),
            );
            n
        }
        n if n > limits.max_candidates => {
            violations.add(
                "candidates",
                format!("candidates is {n}; the maximum is {}", limits.max_candidates),
            );
            n
        }
        n => n,
    };
    let params = request.params.unwrap_or_default();
    let ef_search = match params.ef_search {
        0 => Some(EfSearch::for_candidates(candidates)),
        n => violations.take(EfSearch::parse("params.ef_search", n)),
    };
    let fusion = violations.take(fusion_of(request.fusion));
    if let Some(threshold) = request.score_threshold
        && !threshold.is_finite()
    {
        violations.add("score_threshold", "score_threshold must be a finite number");
    }
    let filter = request
        .filter
        .as_ref()
        .and_then(|f| violations.take(filter_from_proto(f, "filter", limits.max_ids)));
    violations.finish(|| {
        let query = SearchQuery {
            tenant,
            vector,
            text: text.as_deref().map(KeywordQuery::parse),
            fusion: fusion.unwrap_or_default(),
            candidates,
            filter,
            limit,
            offset,
            score_threshold: request.score_threshold,
            include: fields_of(request.include, DEFAULT_HIT_FIELDS),
            ef_search: ef_search.expect("ef_search is present when nothing was refused"),
            exact: params.exact,
        };
        (query, example)
    })
}

fn fusion_of(fusion: Option<pb::Fusion>) -> Result<Fusion, InvalidRequest> {
    let Fusion::ReciprocalRank {
        k: default_k,
        vector_weight: default_weight,
        ..
    } = Fusion::default()
    else {
        unreachable!("the default fusion is reciprocal rank")
    };
    match fusion.and_then(|f| f.method) {
        None => Ok(Fusion::default()),
        Some(pb::fusion::Method::Rrf(rrf)) => {
            let k = rrf.k.unwrap_or(default_k);
            let vector_weight = rrf.vector_weight.unwrap_or(default_weight);
            let text_weight = rrf.text_weight.unwrap_or(default_weight);
            if !(k.is_finite() && k > 0.0) {
                return Err(InvalidRequest::field("fusion.rrf.k", "k must be a finite number > 0"));
            }
            for (name, weight) in [("vector_weight", vector_weight), ("text_weight", text_weight)] {
                // Bounded so that no sum of weighted terms can overflow.
                if !(0.0..=MAX_RRF_WEIGHT).contains(&weight) {
                    return Err(InvalidRequest::field(
                        format!("fusion.rrf.{name}"),
                        format!("{name} is {weight}; weights are 0 to {MAX_RRF_WEIGHT}"),
                    ));
                }
            }
            Ok(Fusion::ReciprocalRank {
                k,
                vector_weight,
                text_weight,
            })
        }
        Some(pb::fusion::Method::RelativeScore(rsf)) => {
            let alpha = rsf.alpha.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&alpha) {
                return Err(InvalidRequest::field(
                    "fusion.relative_score.alpha",
                    "alpha must be in 0..=1",
                ));
            }
            Ok(Fusion::RelativeScore { alpha })
        }
    }
}
