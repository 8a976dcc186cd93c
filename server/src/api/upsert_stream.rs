//! `Documents.UpsertStream`: per-batch transactions, acknowledged after
//! COMMIT, resumable by stream id, with bounded memory per stream.
//!
//! A reader task decodes client messages into a channel that holds at most
//! `Limits::stream_buffered_batches` batches; while it is full the reader
//! stops reading, and HTTP/2 flow control stops the client. The writer takes
//! batches one at a time: validate, BEGIN, record progress, write, COMMIT, ack.

use std::sync::Arc;

use fathom_api::v1 as pb;
use pb::upsert_stream_request::Request as Message;
use prost::Message as _;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::documents::batch_from_proto;
use crate::domain::{Collection, CollectionName, InvalidRequest, Limits, StreamId, Tenant};
use crate::error::{ApiError, code_of};
use crate::store::Store;

/// Acknowledgements buffered towards the client. Acks are small; the bound
/// only keeps a client that stops reading from growing server memory.
const ACK_BUFFER: usize = 16;

/// Serves one UpsertStream; the receiver yields the responses, ending with
/// an error status if the stream fails.
pub fn serve(
    store: Store,
    limits: Arc<Limits>,
    inbound: Streaming<pb::UpsertStreamRequest>,
) -> mpsc::Receiver<Result<pb::UpsertStreamResponse, Status>> {
    let (acks, receiver) = mpsc::channel(ACK_BUFFER);
    tokio::spawn(async move {
        if let Err(status) = run(store, limits, inbound, &acks).await {
            let _ = acks.send(Err(status)).await;
        }
    });
    receiver
}

async fn run(
    store: Store,
    limits: Arc<Limits>,
    mut inbound: Streaming<pb::UpsertStreamRequest>,
    acks: &mpsc::Sender<Result<pb::UpsertStreamResponse, Status>>,
) -> Result<(), Status> {
    let open = match inbound.message().await?.and_then(|m| m.request) {
        Some(Message::Open(open)) => open,
        Some(Message::Batch(_)) | None => {
            return Err(ApiError::from(InvalidRequest::field(
                "open",
                "the first message of a stream must be open",
            ))
            .into());
        }
    };
    let mut session = Session::open(store, limits.clone(), open).await?;
    let opened = pb::StreamOpened {
        stream_id: session
            .stream_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default(),
        next_sequence: session.last_committed + 1,
    };
    if acks
        .send(Ok(response(pb::upsert_stream_response::Response::Opened(opened))))
        .await
        .is_err()
    {
        return Ok(());
    }

    let (batches, mut pending) = mpsc::channel(limits.stream_buffered_batches.max(1));
    let reader = tokio::spawn(async move {
        loop {
            let next = inbound
                .message()
                .await
                .map_err(oversized_is_resource_exhausted)
                .transpose();
            let end = !matches!(next, Some(Ok(_)));
            if let Some(next) = next
                && batches.send(next).await.is_err()
            {
                break;
            }
            if end {
                break;
            }
        }
    });
    let outcome = async {
        while let Some(message) = pending.recv().await {
            let batch = match message?.request {
                Some(Message::Batch(batch)) => batch,
                Some(Message::Open(_)) => {
                    return Err(
                        ApiError::from(InvalidRequest::field("open", "open may only be the first message")).into(),
                    );
                }
                None => return Err(ApiError::from(InvalidRequest::field("request", "set open or batch")).into()),
            };
            let ack = session.write(batch).await?;
            if acks
                .send(Ok(response(pb::upsert_stream_response::Response::Ack(ack))))
                .await
                .is_err()
            {
                break; // The client went away; what is committed stays committed.
            }
        }
        Ok(())
    }
    .await;
    reader.abort();
    outcome
}

/// tonic refuses a message above the decoding limit with OUT_OF_RANGE; gRPC
/// calls that RESOURCE_EXHAUSTED, which is what clients look for. The message
/// (which names the limit) stays.
fn oversized_is_resource_exhausted(status: Status) -> Status {
    if status.code() == tonic::Code::OutOfRange && status.message().contains("message length too large") {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}

fn response(response: pb::upsert_stream_response::Response) -> pb::UpsertStreamResponse {
    pb::UpsertStreamResponse {
        response: Some(response),
    }
}

/// The state of one open stream.
struct Session {
    store: Store,
    limits: Arc<Limits>,
    collection: Arc<Collection>,
    tenant: Tenant,
    stream_id: Option<StreamId>,
    /// Highest sequence number known committed for this stream.
    last_committed: u64,
}

impl Session {
    async fn open(store: Store, limits: Arc<Limits>, open: pb::OpenStream) -> Result<Self, ApiError> {
        let name = CollectionName::parse("open.collection", &open.collection)?;
        let collection = store.collection(&name).await?;
        let tenant = Tenant::for_collection(
            "open.tenant",
            &open.tenant,
            collection.spec.multi_tenant,
            limits.max_tenant_bytes,
        )?;
        let stream_id = (!open.stream_id.is_empty())
            .then(|| StreamId::parse("open.stream_id", &open.stream_id))
            .transpose()?;
        let last_committed = match &stream_id {
            Some(id) => store.open_upsert_stream(&collection, id, &tenant).await?.last_sequence,
            None => 0,
        };
        tracing::debug!(collection = %name, stream_id = ?stream_id, last_committed, "upsert stream opened");
        Ok(Self {
            store,
            limits,
            collection,
            tenant,
            stream_id,
            last_committed,
        })
    }

    /// Handles one batch: an ack after COMMIT, an ack that refuses it, or an
    /// error that ends the stream (the database failed).
    async fn write(&mut self, batch: pb::UpsertBatch) -> Result<pb::BatchAck, ApiError> {
        let sequence = batch.sequence;
        if sequence == 0 {
            return Ok(rejected(
                sequence,
                InvalidRequest::field("batch.sequence", "sequence numbers start at 1"),
            ));
        }
        if sequence <= self.last_committed {
            return Ok(already_committed(sequence));
        }
        let encoded_bytes = batch.encoded_len();
        let documents = match batch_from_proto(
            batch.documents,
            encoded_bytes,
            &self.collection,
            &self.tenant,
            &self.limits,
        ) {
            Ok(documents) => documents,
            Err(invalid) => return Ok(rejected(sequence, invalid)),
        };
        let mut tx = self.store.begin_batch().await?;
        if let Some(stream_id) = &self.stream_id
            && !self
                .store
                .advance_upsert_stream(&mut tx, &self.collection, stream_id, sequence)
                .await?
        {
            // Another connection with this stream id committed it first.
            tx.rollback().await.map_err(crate::store::StoreError::from)?;
            return Ok(already_committed(sequence));
        }
        let written = self
            .store
            .upsert_batch(&mut tx, &self.collection, &self.tenant, documents)
            .await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.last_committed = sequence;
        Ok(pb::BatchAck {
            sequence,
            documents_written: written as u32,
            already_committed: false,
            rejection: None,
        })
    }
}

fn already_committed(sequence: u64) -> pb::BatchAck {
    pb::BatchAck {
        sequence,
        documents_written: 0,
        already_committed: true,
        rejection: None,
    }
}

fn rejected(sequence: u64, invalid: InvalidRequest) -> pb::BatchAck {
    let rejection = pb::BatchRejection {
        code: code_of(invalid.kind) as i32,
        message: invalid.to_string(),
        violations: invalid
            .violations
            .into_iter()
            .map(|v| pb::FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
    };
    pb::BatchAck {
        sequence,
        documents_written: 0,
        already_committed: false,
        rejection: Some(rejection),
    }
}
