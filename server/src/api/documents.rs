//! The `fathom.v1.Documents` service, except UpsertStream (see `upsert_stream`).

use std::sync::Arc;

use fathom_api::v1 as pb;
use pb::documents_server::Documents;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::ResponseStream;
use super::access::{access_of, audit, scope};
use super::consistency_proto::consistency_from_proto;
use super::deadline::deadline_of;
use super::document_proto::{batch_from_proto, check_ids, document_to_proto, fields_of, update_from_proto};
use super::error::ApiError;
use super::filter_proto::filter_from_proto;
use crate::domain::{Access, Collection, Deadline, DocumentFields, Filter, InvalidRequest, Limits, Tenant};
use crate::store::{Store, StoreError};

/// Handlers of the Documents service.
pub struct DocumentsApi {
    pub(super) store: Store,
    pub(super) limits: Arc<Limits>,
    /// Cancelled when the server shuts down: upsert streams then end.
    stopping: CancellationToken,
}

impl DocumentsApi {
    /// Handlers over `store`, enforcing `limits`.
    pub fn new(store: Store, limits: Arc<Limits>) -> Self {
        Self {
            store,
            limits,
            stopping: CancellationToken::new(),
        }
    }

    /// Ends open upsert streams, after the batch each is writing, once
    /// `stopping` is cancelled.
    pub fn stop_streams_on(mut self, stopping: CancellationToken) -> Self {
        self.stopping = stopping;
        self
    }

    /// The collection and tenant a request names, if `access` may touch them.
    pub(super) async fn scope(
        &self,
        access: &Access,
        collection: &str,
        tenant: &str,
        field_prefix: &str,
    ) -> Result<(Arc<Collection>, Tenant), ApiError> {
        scope(&self.store, &self.limits, access, collection, tenant, field_prefix).await
    }

    async fn upsert(
        &self,
        access: &Access,
        request: pb::UpsertRequest,
        deadline: Deadline,
    ) -> Result<pb::UpsertResponse, ApiError> {
        let encoded_bytes = request.encoded_len();
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        let batch = batch_from_proto(request.documents, encoded_bytes, &collection, &tenant, &self.limits)?;
        let written = self.store.upsert(&collection, &tenant, batch, deadline).await?;
        self.store.note_write(&collection);
        audit(
            access,
            "upsert",
            &collection.spec.name,
            Some(&tenant),
            &format!("{} written", documents(written.value)),
        );
        crate::metrics::batch_committed(crate::metrics::UpsertPath::Upsert, written.value);
        Ok(pb::UpsertResponse {
            documents_written: written.value as u32,
            consistency_token: written.token.to_string(),
        })
    }

    async fn get(&self, access: &Access, request: pb::GetRequest) -> Result<pb::GetResponse, ApiError> {
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        check_ids(&request.ids, "ids", &self.limits)?;
        let fields = fields_of(request.include, DocumentFields::ALL);
        let consistency = consistency_from_proto(request.consistency.as_ref())?;
        let reader = self.store.reader(consistency).await;
        let found = reader.get(&collection, &tenant, &request.ids, fields).await?;
        Ok(pb::GetResponse {
            documents: found.into_iter().map(document_to_proto).collect(),
        })
    }

    async fn delete(
        &self,
        access: &Access,
        request: pb::DeleteRequest,
        deadline: Deadline,
    ) -> Result<pb::DeleteResponse, ApiError> {
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        let filter = match &request.selector {
            None => self.chosen(None, None, "delete")?,
            Some(pb::delete_request::Selector::Ids(ids)) => self.chosen(Some(ids), None, "delete")?,
            Some(pb::delete_request::Selector::Filter(filter)) => self.chosen(None, Some(filter), "delete")?,
        };
        let deleted = self.store.delete(&collection, &tenant, &filter, deadline).await?;
        audit(
            access,
            "delete",
            &collection.spec.name,
            Some(&tenant),
            &format!("{} deleted", documents(deleted.value)),
        );
        Ok(pb::DeleteResponse {
            deleted: deleted.value,
            consistency_token: deleted.token.to_string(),
        })
    }

    async fn update(
        &self,
        access: &Access,
        request: pb::UpdateRequest,
        deadline: Deadline,
    ) -> Result<pb::UpdateResponse, ApiError> {
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        let filter = match &request.selector {
            None => self.chosen(None, None, "update")?,
            Some(pb::update_request::Selector::Ids(ids)) => self.chosen(Some(ids), None, "update")?,
            Some(pb::update_request::Selector::Filter(filter)) => self.chosen(None, Some(filter), "update")?,
        };
        let update = update_from_proto(request, &self.limits)?;
        let updated = self
            .store
            .update(
                &collection,
                &tenant,
                &filter,
                &update,
                self.limits.max_metadata_bytes,
                deadline,
            )
            .await
            .map_err(|error| match error {
                // One text for every chosen document: the request's field is to blame.
                StoreError::TextTooLongForIndex { .. } => {
                    ApiError::from(InvalidRequest::field("text", error.to_string()))
                }
                other => other.into(),
            })?;
        audit(
            access,
            "update",
            &collection.spec.name,
            Some(&tenant),
            &format!("{} updated", documents(updated.value)),
        );
        Ok(pb::UpdateResponse {
            updated: updated.value,
            consistency_token: updated.token.to_string(),
        })
    }

    /// The documents a Delete or Update chooses (`verb` says which): by
    /// its ids or by its filter, exactly one of them.
    fn chosen(
        &self,
        ids: Option<&pb::IdCondition>,
        filter: Option<&pb::Filter>,
        verb: &str,
    ) -> Result<Filter, InvalidRequest> {
        match (ids, filter) {
            (Some(ids), _) => {
                check_ids(&ids.ids, "ids.ids", &self.limits)?;
                Ok(Filter::Ids(ids.ids.clone()))
            }
            (None, Some(filter)) => filter_from_proto(filter, "filter", self.limits.max_ids),
            (None, None) => Err(InvalidRequest::field(
                "selector",
                format!("choose what to {verb}: ids or filter"),
            )),
        }
    }

    async fn count(&self, access: &Access, request: pb::CountRequest) -> Result<pb::CountResponse, ApiError> {
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        let filter = request
            .filter
            .as_ref()
            .map(|f| filter_from_proto(f, "filter", self.limits.max_ids))
            .transpose()?;
        let consistency = consistency_from_proto(request.consistency.as_ref())?;
        let reader = self.store.reader(consistency).await;
        let count = reader.count(&collection, &tenant, filter.as_ref()).await?;
        Ok(pb::CountResponse { count })
    }

    async fn scroll(
        &self,
        access: &Access,
        request: pb::ScrollRequest,
    ) -> Result<ResponseStream<pb::ScrollResponse>, ApiError> {
        let (collection, tenant) = self.scope(access, &request.collection, &request.tenant, "").await?;
        let filter = request
            .filter
            .as_ref()
            .map(|f| filter_from_proto(f, "filter", self.limits.max_ids))
            .transpose()?;
        if request.after_id.contains('\0') || request.after_id.len() > self.limits.max_id_bytes {
            return Err(InvalidRequest::field(
                "after_id",
                format!(
                    "after_id must be an id: at most {} bytes, without NUL characters",
                    self.limits.max_id_bytes
                ),
            )
            .into());
        }
        let fields = fields_of(request.include, DocumentFields::ALL);
        let consistency = consistency_from_proto(request.consistency.as_ref())?;
        let reader = self.store.reader(consistency).await;
        let cursor = reader.scroll(collection, tenant, filter, request.after_id, fields, request.limit);
        Ok(Box::pin(futures::stream::unfold(cursor, |mut cursor| async move {
            let next = cursor.next().await?;
            let message = next
                .map(|document| pb::ScrollResponse {
                    document: Some(document_to_proto(document)),
                })
                .map_err(|error| Status::from(ApiError::from(error)));
            Some((message, cursor))
        })))
    }
}

#[tonic::async_trait]
impl Documents for DocumentsApi {
    type UpsertStreamStream = ResponseStream<pb::UpsertStreamResponse>;
    type ScrollStream = ResponseStream<pb::ScrollResponse>;

    async fn upsert_stream(
        &self,
        request: Request<Streaming<pb::UpsertStreamRequest>>,
    ) -> Result<Response<Self::UpsertStreamStream>, Status> {
        let deadline = deadline_of(request.metadata());
        let access = access_of(&request)?;
        let acks = super::upsert_stream::serve(
            access,
            self.store.clone(),
            self.limits.clone(),
            self.stopping.clone(),
            deadline,
            request.into_inner(),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(acks))))
    }

    async fn upsert(&self, request: Request<pb::UpsertRequest>) -> Result<Response<pb::UpsertResponse>, Status> {
        let deadline = deadline_of(request.metadata());
        let access = access_of(&request)?;
        Ok(Response::new(
            self.upsert(&access, request.into_inner(), deadline).await?,
        ))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let access = access_of(&request)?;
        Ok(Response::new(self.get(&access, request.into_inner()).await?))
    }

    async fn delete(&self, request: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        let deadline = deadline_of(request.metadata());
        let access = access_of(&request)?;
        Ok(Response::new(
            self.delete(&access, request.into_inner(), deadline).await?,
        ))
    }

    async fn update(&self, request: Request<pb::UpdateRequest>) -> Result<Response<pb::UpdateResponse>, Status> {
        let deadline = deadline_of(request.metadata());
        let access = access_of(&request)?;
        Ok(Response::new(
            self.update(&access, request.into_inner(), deadline).await?,
        ))
    }

    async fn count(&self, request: Request<pb::CountRequest>) -> Result<Response<pb::CountResponse>, Status> {
        let access = access_of(&request)?;
        Ok(Response::new(self.count(&access, request.into_inner()).await?))
    }

    async fn scroll(&self, request: Request<pb::ScrollRequest>) -> Result<Response<Self::ScrollStream>, Status> {
        let access = access_of(&request)?;
        Ok(Response::new(self.scroll(&access, request.into_inner()).await?))
    }
}

/// "1 document", "2 documents": the count in an audit line.
fn documents(n: u64) -> String {
    if n == 1 {
        "1 document".to_owned()
    } else {
        format!("{n} documents")
    }
}
