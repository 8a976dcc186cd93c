//! `Documents.UpsertStream`: per-batch transactions, acknowledged after
//! COMMIT, resumable by stream id and document position, with bounded memory
//! per stream.
//!
//! A reader task decodes client messages into a channel that holds at most
//! `Limits::stream_buffered_bytes`; while it is full the reader stops
//! reading, and HTTP/2 flow control stops the client. The writer takes
//! batches one at a time: validate, then one transaction that places the
//! batch against the stream's committed prefix, writes and records progress,
//! and an ack after COMMIT.

use std::sync::Arc;

use fathom_api::v1 as pb;
use pb::upsert_stream_request::Request as Message;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use super::access::{audit, scope};
use super::document_proto::batch_from_proto;
use super::error::{ApiError, code_of};
use crate::domain::{
    Access, BatchPosition, Collection, ConsistencyToken, Deadline, InvalidKind, InvalidRequest, Limits,
    MIN_BUFFERED_MESSAGE_BYTES, Sequence, StreamId, StreamProgress, Tenant,
};
use crate::metrics::{self, UpsertPath};
use crate::store::{BatchOutcome, Store};

/// Acknowledgements buffered towards the client. Acks are small; the bound
/// only keeps a client that stops reading from growing server memory.
const ACK_BUFFER: usize = 16;

/// Serves one UpsertStream; the receiver yields the responses, ending with
/// an error status if the stream fails.
pub fn serve(
    access: Access,
    store: Store,
    limits: Arc<Limits>,
    stopping: CancellationToken,
    deadline: Deadline,
    inbound: Streaming<pb::UpsertStreamRequest>,
) -> mpsc::Receiver<Result<pb::UpsertStreamResponse, Status>> {
    let (acks, receiver) = mpsc::channel(ACK_BUFFER);
    // In the RPC's span, so the stream's statements and log lines belong to its trace.
    let rpc = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(status) = run(access, store, limits, stopping, deadline, inbound, &acks).await {
                let _ = acks.send(Err(status)).await;
            }
        },
        rpc,
    ));
    receiver
}

async fn run(
    access: Access,
    store: Store,
    limits: Arc<Limits>,
    stopping: CancellationToken,
    deadline: Deadline,
    mut inbound: Streaming<pb::UpsertStreamRequest>,
    acks: &mpsc::Sender<Result<pb::UpsertStreamResponse, Status>>,
) -> Result<(), Status> {
    let idle_timeout = limits.stream_idle_timeout;
    let first = tokio::time::timeout(idle_timeout, inbound.message())
        .await
        .map_err(|_| idle_status(idle_timeout))?;
    let open = match first.map_err(decoding_status)?.and_then(|m| m.request) {
        Some(Message::Open(open)) => open,
        Some(Message::Batch(_)) | None => {
            return Err(ApiError::from(InvalidRequest::field(
                "open",
                "the first message of a stream must be open",
            ))
            .into());
        }
    };
    let build_index_at_end = open.build_index_at_end;
    let (mut session, progress) = Session::open(&access, store, limits.clone(), deadline, open).await?;
    let opened_at = session.committed;
    #[allow(deprecated)] // next_sequence stays set for clients built before positions.
    let opened = pb::StreamOpened {
        stream_id: session
            .stream_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default(),
        next_sequence: 1,
        committed_documents: progress.committed,
        last_id: progress.last_id,
        ids_digest: progress.digest.as_bytes().to_vec(),
    };
    if acks
        .send(Ok(response(pb::upsert_stream_response::Response::Opened(opened))))
        .await
        .is_err()
    {
        return Ok(());
    }

    let read_ahead = ReadAhead::new(limits.stream_buffered_bytes);
    let (batches, mut pending) = mpsc::channel(read_ahead.most_messages());
    let reader = tokio::spawn(async move {
        loop {
            let next = inbound.message().await.map_err(decoding_status).transpose();
            let end = !matches!(next, Some(Ok(_)));
            if let Some(next) = next {
                let held = read_ahead.hold(next.as_ref().map_or(0, |m| m.encoded_len())).await;
                if batches.send((next, held)).await.is_err() {
                    break;
                }
            }
            if end {
                break;
            }
        }
    });
    let deadline_passed = async {
        match deadline.instant() {
            Some(instant) => tokio::time::sleep_until(instant.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline_passed);
    let outcome = async {
        loop {
            let message = tokio::select! {
                biased;
                () = stopping.cancelled() => {
                    return Err(Status::unavailable(
                        "the server is shutting down; every acknowledged batch is stored (reconnect to resume)",
                    ));
                }
                () = &mut deadline_passed => {
                    return Err(Status::deadline_exceeded(
                        "the call's deadline (grpc-timeout) passed; every acknowledged batch is stored (open a new \
                         call to resume)",
                    ));
                }
                message = pending.recv() => message,
                () = tokio::time::sleep(idle_timeout) => return Err(idle_status(idle_timeout)),
            };
            let Some((message, held)) = message else { break };
            drop(held);
            let batch = match message?.request {
                Some(Message::Batch(batch)) => batch,
                Some(Message::Open(_)) => {
                    return Err(
                        ApiError::from(InvalidRequest::field("open", "open may only be the first message")).into(),
                    );
                }
                None => return Err(ApiError::from(InvalidRequest::field("request", "set open or batch")).into()),
            };
            // A client that goes away mid-batch gets nothing from the rest of
            // it: dropping the write rolls it back and cancels its statement.
            let ack = tokio::select! {
                ack = session.write(batch) => ack?,
                () = acks.closed() => return Ok(()),
            };
            if acks
                .send(Ok(response(pb::upsert_stream_response::Response::Ack(ack))))
                .await
                .is_err()
            {
                return Ok(()); // The client went away; what is committed stays committed.
            }
        }
        // The client ended the stream and every batch is acknowledged: a
        // bulk load is over, and its index is built now, in bulk. (A stream
        // that breaks is usually resumed, and leaves it to the end of that.)
        if build_index_at_end {
            session
                .store
                .build_index(&session.collection)
                .await
                .map_err(ApiError::from)?;
        } else if let Err(error) = session.store.build_index_if_due(&session.collection).await {
            // Every batch is committed and acknowledged: the call succeeded,
            // and the next write that ends past the threshold builds it.
            tracing::warn!(
                collection = %session.collection.spec.name,
                %error,
                "could not build the vector index at the end of the stream"
            );
        }
        Ok(())
    }
    .await;
    reader.abort();
    let ending = match &outcome {
        Ok(()) => "ended".to_owned(),
        Err(status) => format!("ended with {:?}", status.code()),
    };
    audit(
        &access,
        "upsert_stream",
        &session.collection.spec.name,
        Some(&session.tenant),
        &format!(
            "{ending}; stream id {:?}; committed documents {opened_at} at open, {} at end",
            session.stream_id.as_ref().map_or("", |id| id.as_str()),
            session.committed
        ),
    );
    outcome
}

/// How a stream that sent nothing for `idle_timeout` ends: UNAVAILABLE, as
/// a connection closed for idleness would, so clients resume it as they
/// would after a dropped connection.
fn idle_status(idle_timeout: std::time::Duration) -> Status {
    Status::unavailable(format!(
        "the stream sent no message for {} s, the server's idle limit (--stream-idle-timeout-seconds); every \
         acknowledged batch is stored (open the stream again with the same stream_id to resume)",
        idle_timeout.as_secs_f64()
    ))
}

/// The byte budget of a stream's read-ahead: each buffered message holds
/// permits for its size until the writer takes it.
struct ReadAhead {
    budget: Arc<tokio::sync::Semaphore>,
    bytes: usize,
}

impl ReadAhead {
    fn new(bytes: usize) -> Self {
        let bytes = bytes.clamp(MIN_BUFFERED_MESSAGE_BYTES, u32::MAX as usize);
        Self {
            budget: Arc::new(tokio::sync::Semaphore::new(bytes)),
            bytes,
        }
    }

    /// How many messages can be buffered at once; bounds the channel.
    fn most_messages(&self) -> usize {
        self.bytes / MIN_BUFFERED_MESSAGE_BYTES
    }

    /// Waits until a message of `encoded_bytes` fits the budget. A message
    /// larger than the whole budget waits for an empty buffer.
    async fn hold(&self, encoded_bytes: usize) -> tokio::sync::OwnedSemaphorePermit {
        let cost = encoded_bytes.clamp(MIN_BUFFERED_MESSAGE_BYTES, self.bytes);
        self.budget
            .clone()
            .acquire_many_owned(cost as u32)
            .await
            .expect("the read-ahead budget is never closed")
    }
}

/// tonic refuses a message above the decoding limit with OUT_OF_RANGE, and
/// one it cannot decode (invalid UTF-8, nesting past the recursion limit)
/// with INTERNAL; gRPC calls these RESOURCE_EXHAUSTED and INVALID_ARGUMENT,
/// which is what clients look for. The message stays.
fn decoding_status(status: Status) -> Status {
    match status.code() {
        tonic::Code::OutOfRange if status.message().contains("message length too large") => {
            Status::resource_exhausted(status.message().to_owned())
        }
        tonic::Code::Internal if status.message().contains(crate::transport::oversize::UNDECODABLE) => {
            Status::invalid_argument(status.message().to_owned())
        }
        _ => status,
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
    /// The last accepted sequence number of this call.
    previous: Option<Sequence>,
    /// What acks report as `committed_documents`: the stream's committed
    /// documents as last seen, or, without stream id, the documents written
    /// by this call.
    committed: u64,
    /// When the client stops waiting for the call.
    deadline: Deadline,
}

impl Session {
    async fn open(
        access: &Access,
        store: Store,
        limits: Arc<Limits>,
        deadline: Deadline,
        open: pb::OpenStream,
    ) -> Result<(Self, StreamProgress), ApiError> {
        let (collection, tenant) = scope(&store, &limits, access, &open.collection, &open.tenant, "open.").await?;
        let stream_id = (!open.stream_id.is_empty())
            .then(|| StreamId::parse("open.stream_id", &open.stream_id))
            .transpose()?;
        let progress = match &stream_id {
            Some(id) => store.open_upsert_stream(&collection, id, &tenant).await?,
            None => StreamProgress::default(),
        };
        tracing::debug!(collection = %collection.spec.name, stream_id = ?stream_id, committed = progress.committed, "upsert stream opened");
        if progress.committed > 0 {
            metrics::stream_resumed();
        }
        let session = Self {
            store,
            limits,
            collection,
            tenant,
            stream_id,
            previous: None,
            committed: progress.committed,
            deadline,
        };
        Ok((session, progress))
    }

    /// Handles one batch: an ack after COMMIT, an ack that refuses it, or an
    /// error that ends the stream (the database failed, the collection is gone).
    async fn write(&mut self, batch: pb::UpsertBatch) -> Result<pb::BatchAck, ApiError> {
        let sequence = batch.sequence;
        let committed = self.committed;
        let refuse = |invalid| {
            Ok(pb::BatchAck {
                committed_documents: committed,
                ..rejected(sequence, invalid)
            })
        };
        match Sequence::parse("batch.sequence", sequence, self.previous) {
            Ok(parsed) => self.previous = Some(parsed),
            Err(invalid) => return refuse(invalid),
        }
        let position = match (&self.stream_id, batch.first_position) {
            (None, _) => None,
            (Some(_), None) => {
                return refuse(InvalidRequest::field(
                    "batch.first_position",
                    "a resumable stream's batches must say where they start in the input",
                ));
            }
            (Some(_), Some(first)) => match BatchPosition::new("batch.first_position", first, batch.documents.len()) {
                Ok(position) => Some(position),
                Err(invalid) => return refuse(invalid),
            },
        };
        let encoded_bytes = batch.encoded_len();
        let documents = match batch_from_proto(
            batch.documents,
            encoded_bytes,
            &self.collection,
            &self.tenant,
            &self.limits,
        ) {
            Ok(documents) => documents,
            Err(invalid) => return refuse(invalid),
        };
        let (Some(stream_id), Some(position)) = (&self.stream_id, position) else {
            let written = match self
                .store
                .upsert(&self.collection, &self.tenant, documents, self.deadline)
                .await
            {
                Ok(written) => written,
                Err(error) => return error.as_refusal().map_or(Err(error.into()), refuse),
            };
            metrics::batch_committed(UpsertPath::Stream, written.value);
            self.committed += written.value;
            return Ok(ack(sequence, written.value, self.committed, written.token));
        };
        let outcome = match self
            .store
            .write_stream_batch(
                &self.collection,
                &self.tenant,
                stream_id,
                position,
                documents,
                self.deadline,
            )
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => return error.as_refusal().map_or(Err(error.into()), refuse),
        };
        self.committed = outcome.value.committed();
        let token = outcome.token;
        Ok(match outcome.value {
            BatchOutcome::Written { written, committed } => {
                metrics::batch_committed(UpsertPath::ResumableStream, written);
                ack(sequence, written, committed, token)
            }
            BatchOutcome::AlreadyCommitted { committed } => {
                metrics::batch_already_committed();
                pb::BatchAck {
                    already_committed: true,
                    ..ack(sequence, 0, committed, token)
                }
            }
            BatchOutcome::Gap { committed } => rejected_at(
                sequence,
                committed,
                format!(
                    "the batch starts at position {}, but only {committed} documents of the stream's input are \
                     committed: send the documents from position {committed} first (a batch before this one \
                     was refused or lost)",
                    position.first()
                ),
            ),
            BatchOutcome::Mismatch { committed, last_id } => rejected_at(
                sequence,
                committed,
                format!(
                    "the document at position {} of this batch's input is not the one committed there \
                     (id {last_id:?}): this stream id holds other data; use a new stream id",
                    committed - 1
                ),
            ),
        })
    }
}

fn ack(sequence: u64, written: u64, committed: u64, token: ConsistencyToken) -> pb::BatchAck {
    pb::BatchAck {
        sequence,
        documents_written: written as u32,
        already_committed: false,
        rejection: None,
        committed_documents: committed,
        consistency_token: token.to_string(),
    }
}

/// A refusal of a batch that does not continue the stream's committed prefix.
fn rejected_at(sequence: u64, committed: u64, description: String) -> pb::BatchAck {
    pb::BatchAck {
        committed_documents: committed,
        ..rejected(
            sequence,
            InvalidRequest::with_kind(InvalidKind::FailedPrecondition, "batch.first_position", description),
        )
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
        committed_documents: 0,
        consistency_token: String::new(),
    }
}
