//! The `fathom.v1.Collections` service.

use fathom_api::v1 as pb;
use pb::collections_server::Collections;
use tonic::{Request, Response, Status};

use super::access::{access_of, audit, resolve};
use super::alias_proto::{alias_actions, alias_to_proto};
use super::deadline::deadline_of;
use super::error::ApiError;
use super::timestamp_proto::timestamp_to_proto;
use crate::domain::{
    Collection, CollectionName, CollectionSpec, IndexBuild, IndexPrecision, IndexState, InvalidRequest, KeywordRanking,
    Metric, TextLanguage, VectorIndex, Violations,
};
use crate::store::Store;

/// Handlers of the Collections service.
pub struct CollectionsApi {
    store: Store,
}

impl CollectionsApi {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl Collections for CollectionsApi {
    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CreateCollectionResponse>, Status> {
        let access = access_of(&request)?;
        let deadline = deadline_of(request.metadata());
        let spec = collection_spec(request.into_inner())?;
        access.check_collection(&spec.name).map_err(ApiError::from)?;
        access
            .check_every_tenant("creating a collection")
            .map_err(ApiError::from)?;
        let created = self
            .store
            .create_collection(spec, deadline)
            .await
            .map_err(ApiError::from)?;
        audit(&access, "create_collection", &created.value.spec.name, None, "created");
        Ok(Response::new(pb::CreateCollectionResponse {
            collection: Some(self.collection_to_proto(&created.value).await?),
            consistency_token: created.token.to_string(),
        }))
    }

    async fn get_collection(
        &self,
        request: Request<pb::GetCollectionRequest>,
    ) -> Result<Response<pb::GetCollectionResponse>, Status> {
        let access = access_of(&request)?;
        let found = resolve(&self.store, &access, "name", &request.get_ref().name).await?;
        Ok(Response::new(pb::GetCollectionResponse {
            collection: Some(self.collection_to_proto(&found).await?),
        }))
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let access = access_of(&request)?;
        let mut visible = self.store.list_collections().await.map_err(ApiError::from)?;
        visible.retain(|c| access.sees_collection(&c.spec.name));
        let states = self.store.index_states(&visible).await.map_err(ApiError::from)?;
        let collections = visible
            .iter()
            .zip(states)
            .map(|(collection, state)| collection_to_proto(collection, state))
            .collect();
        Ok(Response::new(pb::ListCollectionsResponse { collections }))
    }

    async fn delete_collection(
        &self,
        request: Request<pb::DeleteCollectionRequest>,
    ) -> Result<Response<pb::DeleteCollectionResponse>, Status> {
        let access = access_of(&request)?;
        let collection = resolve(&self.store, &access, "name", &request.get_ref().name).await?;
        access
            .check_every_tenant("deleting a collection")
            .map_err(ApiError::from)?;
        let name = &collection.spec.name;
        let deleted = self
            .store
            .delete_collection(name, deadline_of(request.metadata()))
            .await
            .map_err(ApiError::from)?;
        audit(&access, "delete_collection", name, None, "deleted");
        Ok(Response::new(pb::DeleteCollectionResponse {
            consistency_token: deleted.token.to_string(),
        }))
    }

    async fn get_collection_stats(
        &self,
        request: Request<pb::GetCollectionStatsRequest>,
    ) -> Result<Response<pb::GetCollectionStatsResponse>, Status> {
        let access = access_of(&request)?;
        let collection = resolve(&self.store, &access, "name", &request.get_ref().name).await?;
        access
            .check_every_tenant("a collection's stats")
            .map_err(ApiError::from)?;
        let stats = self.store.collection_stats(&collection).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::GetCollectionStatsResponse {
            name: collection.spec.name.to_string(),
            document_count: stats.document_count,
            table_bytes: stats.table_bytes,
            index_bytes: stats.index_bytes,
            total_bytes: stats.table_bytes + stats.index_bytes,
        }))
    }

    async fn build_index(
        &self,
        request: Request<pb::BuildIndexRequest>,
    ) -> Result<Response<pb::BuildIndexResponse>, Status> {
        let access = access_of(&request)?;
        let collection = resolve(&self.store, &access, "name", &request.get_ref().name).await?;
        access
            .check_every_tenant("building a collection's index")
            .map_err(ApiError::from)?;
        let spent = self.store.build_index(&collection).await.map_err(ApiError::from)?;
        audit(
            &access,
            "build_index",
            &collection.spec.name,
            None,
            &format!("built in {spent:?}"),
        );
        Ok(Response::new(pb::BuildIndexResponse {
            collection: Some(self.collection_to_proto(&collection).await?),
            build_seconds: spent.as_secs_f64(),
        }))
    }

    async fn update_aliases(
        &self,
        request: Request<pb::UpdateAliasesRequest>,
    ) -> Result<Response<pb::UpdateAliasesResponse>, Status> {
        let access = access_of(&request)?;
        let deadline = deadline_of(request.metadata());
        let actions = alias_actions(&request.get_ref().actions)?;
        access.check_every_tenant("changing aliases").map_err(ApiError::from)?;
        let may_touch = |collection: &CollectionName| access.check_collection(collection);
        let aliases = self
            .store
            .update_aliases(&actions, &may_touch, deadline)
            .await
            .map_err(ApiError::from)?;
        for action in actions.iter() {
            let effect = match action.change.target() {
                Some(target) => format!("alias {} points at {target}", action.change.alias()),
                None => format!("alias {} deleted", action.change.alias()),
            };
            let collection = action.change.target().unwrap_or(action.change.alias());
            audit(&access, "update_aliases", collection, None, &effect);
        }
        Ok(Response::new(pb::UpdateAliasesResponse {
            aliases: aliases.value.iter().map(alias_to_proto).collect(),
            consistency_token: aliases.token.to_string(),
        }))
    }

    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let access = access_of(&request)?;
        let named = &request.get_ref().collection;
        let collection = match named.is_empty() {
            true => None,
            false => Some(resolve(&self.store, &access, "collection", named).await?),
        };
        let mut aliases = self
            .store
            .list_aliases(collection.as_ref().map(|c| &c.spec.name))
            .await
            .map_err(ApiError::from)?;
        aliases.retain(|a| access.sees_collection(&a.collection));
        Ok(Response::new(pb::ListAliasesResponse {
            aliases: aliases.iter().map(alias_to_proto).collect(),
        }))
    }
}

impl CollectionsApi {
    /// A stored collection, with its index state read now, as its proto message.
    async fn collection_to_proto(&self, collection: &Collection) -> Result<pb::Collection, Status> {
        let state = self.store.index_state(collection).await.map_err(ApiError::from)?;
        Ok(collection_to_proto(collection, state))
    }
}

/// A CreateCollectionRequest as a spec, with every problem reported at once.
fn collection_spec(request: pb::CreateCollectionRequest) -> Result<CollectionSpec, ApiError> {
    let mut violations = Violations::default();
    let name = violations.take(CollectionName::parse("name", &request.name));
    let metric = violations.take(match pb::DistanceMetric::try_from(request.metric) {
        Ok(pb::DistanceMetric::Cosine) => Ok(Metric::Cosine),
        Ok(pb::DistanceMetric::L2) => Ok(Metric::L2),
        Ok(pb::DistanceMetric::InnerProduct) => Ok(Metric::InnerProduct),
        _ => Err(InvalidRequest::field(
            "metric",
            "choose a metric: COSINE, L2 or INNER_PRODUCT",
        )),
    });
    let index = violations.take(match request.index.and_then(|i| i.kind) {
        None => Ok(VectorIndex::default_hnsw()),
        Some(pb::index_settings::Kind::Hnsw(h)) => {
            precision_of(h.precision).and_then(|precision| VectorIndex::hnsw(h.m, h.ef_construction, precision))
        }
        Some(pb::index_settings::Kind::None(_)) => Ok(VectorIndex::None),
    });
    let dimension = index.and_then(|index| violations.take(CollectionSpec::check_dimension(request.dimension, &index)));
    if request.defer_index && index == Some(VectorIndex::None) {
        violations.add(
            "defer_index",
            "defer_index defers building an HNSW index; this collection has none (index: none)",
        );
    }
    let index_build = violations.take(index_build_of(request.index_build, request.defer_index));
    let language = violations.take(TextLanguage::parse("text_language", &request.text_language));
    let spec = match (name, metric, index, dimension, language, index_build) {
        (Some(name), Some(metric), Some(index), Some(dimension), Some(language), Some(index_build)) => {
            Some(CollectionSpec {
                name,
                dimension,
                metric,
                index,
                language,
                multi_tenant: request.multi_tenant,
                index_build,
            })
        }
        _ => None,
    };
    Ok(violations.finish(|| spec.expect("every part is present when nothing was refused"))?)
}

/// When a new collection's index is built: `index_build`, with
/// `defer_index` its older spelling of ON_REQUEST.
fn index_build_of(index_build: i32, defer_index: bool) -> Result<IndexBuild, InvalidRequest> {
    let asked = match pb::IndexBuild::try_from(index_build) {
        Ok(pb::IndexBuild::Unspecified) => None,
        Ok(pb::IndexBuild::Automatic) => Some(IndexBuild::Automatic),
        Ok(pb::IndexBuild::Immediate) => Some(IndexBuild::Immediate),
        Ok(pb::IndexBuild::OnRequest) => Some(IndexBuild::OnRequest),
        Err(_) => {
            return Err(InvalidRequest::field(
                "index_build",
                format!("index_build is {index_build}; choose AUTOMATIC (1), IMMEDIATE (2) or ON_REQUEST (3)"),
            ));
        }
    };
    match (asked, defer_index) {
        (None, false) => Ok(IndexBuild::Automatic),
        (None | Some(IndexBuild::OnRequest), true) => Ok(IndexBuild::OnRequest),
        (Some(build), false) => Ok(build),
        (Some(build), true) => Err(InvalidRequest::field(
            "index_build",
            format!(
                "index_build is {}, but defer_index asks for ON_REQUEST; set one of them",
                proto_index_build(build).as_str_name()
            ),
        )),
    }
}

/// An index build as its proto value.
fn proto_index_build(build: IndexBuild) -> pb::IndexBuild {
    match build {
        IndexBuild::Automatic => pb::IndexBuild::Automatic,
        IndexBuild::Immediate => pb::IndexBuild::Immediate,
        IndexBuild::OnRequest => pb::IndexBuild::OnRequest,
    }
}

/// The precision an HnswIndex asks for; unspecified is the default.
fn precision_of(precision: i32) -> Result<IndexPrecision, InvalidRequest> {
    match pb::IndexPrecision::try_from(precision) {
        Ok(pb::IndexPrecision::Unspecified) => Ok(VectorIndex::DEFAULT_PRECISION),
        Ok(pb::IndexPrecision::Half) => Ok(IndexPrecision::Half),
        Ok(pb::IndexPrecision::Single) => Ok(IndexPrecision::Single),
        Err(_) => Err(InvalidRequest::field(
            "index.hnsw.precision",
            format!("precision is {precision}; choose HALF (1) or SINGLE (2)"),
        )),
    }
}

/// A stored collection in `state` as its proto message.
pub fn collection_to_proto(collection: &Collection, state: IndexState) -> pb::Collection {
    let spec = &collection.spec;
    let metric = match spec.metric {
        Metric::Cosine => pb::DistanceMetric::Cosine,
        Metric::L2 => pb::DistanceMetric::L2,
        Metric::InnerProduct => pb::DistanceMetric::InnerProduct,
    };
    let kind = match spec.index {
        VectorIndex::Hnsw {
            m,
            ef_construction,
            precision,
        } => pb::index_settings::Kind::Hnsw(pb::HnswIndex {
            m,
            ef_construction,
            precision: match precision {
                IndexPrecision::Half => pb::IndexPrecision::Half,
                IndexPrecision::Single => pb::IndexPrecision::Single,
            } as i32,
        }),
        VectorIndex::None => pb::index_settings::Kind::None(pb::NoIndex {}),
    };
    pb::Collection {
        name: spec.name.to_string(),
        dimension: spec.dimension,
        metric: metric as i32,
        index: Some(pb::IndexSettings { kind: Some(kind) }),
        text_language: spec.language.as_str().to_owned(),
        multi_tenant: spec.multi_tenant,
        create_time: Some(timestamp_to_proto(collection.created_at)),
        index_state: match state {
            IndexState::Ready => pb::IndexState::Ready,
            IndexState::Deferred => pb::IndexState::Deferred,
            IndexState::Building => pb::IndexState::Building,
        } as i32,
        keyword_ranking: match collection.keyword_ranking {
            KeywordRanking::Bm25 => pb::KeywordRanking::Bm25,
            KeywordRanking::TsRank => pb::KeywordRanking::TsRank,
        } as i32,
        index_build: proto_index_build(spec.index_build) as i32,
    }
}
