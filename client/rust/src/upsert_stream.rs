//! Streaming ingestion: batching, a bounded window of batches in flight,
//! and resume after a broken connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fathom_api::v1 as pb;
use pb::upsert_stream_request::Request;
use pb::upsert_stream_response::Response;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};

use crate::{Client, Document, Error};

/// What an upsert stream did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    /// Documents written (acknowledged after COMMIT) by this call.
    pub documents: u64,
    /// Batches written by this call.
    pub batches: u64,
    /// Documents skipped because an earlier run of the same stream id had
    /// committed their batches already.
    pub skipped_documents: u64,
    /// Times the connection was re-established.
    pub reconnects: u32,
    /// Wall time.
    pub elapsed: Duration,
}

/// Called after every acknowledged batch with the running summary.
pub type ProgressFn = Arc<dyn Fn(&UpsertSummary) + Send + Sync>;

/// An upsert stream being configured; [`send`](Self::send) runs it.
///
/// Documents are cut into batches of at most `batch_documents` and
/// `batch_bytes` (encoded), and at most `in_flight` batches are unacknowledged
/// at once, so memory stays bounded however long the source is. With a
/// `stream_id`, a broken connection (or a killed process, run again on the
/// same input with the same batch settings) resumes after the last committed
/// batch and writes nothing twice.
pub struct UpsertStreamBuilder<S> {
    client: Client,
    collection: String,
    documents: S,
    tenant: String,
    stream_id: Option<String>,
    batch_documents: usize,
    batch_bytes: usize,
    in_flight: usize,
    max_reconnects: u32,
    progress: Option<ProgressFn>,
}

impl<S: Stream<Item = Document> + Unpin + Send> UpsertStreamBuilder<S> {
    pub(crate) fn new(client: Client, collection: String, documents: S) -> Self {
        Self {
            client,
            collection,
            documents,
            tenant: String::new(),
            stream_id: None,
            batch_documents: 500,
            batch_bytes: 8 * 1024 * 1024,
            in_flight: 4,
            max_reconnects: 10,
            progress: None,
        }
    }

    /// The tenant (multi-tenant collections).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Makes the stream resumable under this id.
    pub fn stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// Most documents per batch (default 500; the server's limit is 1000 by default).
    pub fn batch_documents(mut self, n: usize) -> Self {
        self.batch_documents = n.max(1);
        self
    }

    /// Most encoded bytes per batch (default 8 MiB; the server's limit is 32 MiB by default).
    pub fn batch_bytes(mut self, n: usize) -> Self {
        self.batch_bytes = n.max(1);
        self
    }

    /// Most unacknowledged batches (default 4).
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }

    /// How often to reconnect after UNAVAILABLE before giving up (default 10).
    pub fn max_reconnects(mut self, n: u32) -> Self {
        self.max_reconnects = n;
        self
    }

    /// Calls `progress` after every acknowledged batch.
    pub fn on_progress(mut self, progress: impl Fn(&UpsertSummary) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Streams every document in; returns when all are acknowledged.
    ///
    /// A refused batch stops the stream: nothing new is sent, the batches
    /// already in flight are acknowledged, then [`Error::BatchRejected`]
    /// names the refused documents. Every other batch sent is stored. A
    /// refused batch is never written, not even when the stream id is
    /// resumed later: correct those documents and write them again.
    pub async fn send(mut self) -> Result<UpsertSummary, Error> {
        let started = Instant::now();
        let mut state = State {
            window: VecDeque::with_capacity(self.in_flight),
            next_sequence: None,
            pending: None,
            source_done: false,
            rejection: None,
            summary: UpsertSummary::default(),
        };
        loop {
            match self.run_connection(&mut state).await {
                Ok(()) => break,
                Err(error) if error.is_retryable() && state.summary.reconnects < self.max_reconnects => {
                    tracing::warn!(%error, "upsert stream broke; reconnecting");
                    tokio::time::sleep(crate::retry::backoff(state.summary.reconnects)).await;
                    state.summary.reconnects += 1;
                }
                Err(error) => return Err(error),
            }
        }
        state.summary.elapsed = started.elapsed();
        Ok(state.summary)
    }

    async fn run_connection(&mut self, state: &mut State) -> Result<(), Error> {
        let (requests, outgoing) = mpsc::channel(self.in_flight + 1);
        let open = pb::OpenStream {
            collection: self.collection.clone(),
            tenant: self.tenant.clone(),
            stream_id: self.stream_id.clone().unwrap_or_default(),
        };
        let _ = requests
            .send(pb::UpsertStreamRequest {
                request: Some(Request::Open(open)),
            })
            .await;
        let mut responses = self
            .client
            .documents_stub()
            .upsert_stream(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        let opened = match responses.message().await?.and_then(|r| r.response) {
            Some(Response::Opened(opened)) => opened,
            other => return Err(Error::Protocol(format!("expected `opened`, got {other:?}"))),
        };
        match state.next_sequence {
            None => {
                // A stream id an earlier run committed batches under: skip
                // those batches of the (same) input without sending them.
                for _ in 1..opened.next_sequence {
                    let Some(skipped) = self.cut_batch(state).await else {
                        break;
                    };
                    state.summary.skipped_documents += skipped.len() as u64;
                }
                state.next_sequence = Some(opened.next_sequence.max(1));
            }
            Some(_) => {
                // Batches committed before the connection broke, acks lost.
                while state
                    .window
                    .front()
                    .is_some_and(|(sequence, _)| *sequence < opened.next_sequence)
                {
                    let (_, batch) = state.window.pop_front().expect("checked");
                    state.summary.documents += batch.len() as u64;
                    state.summary.batches += 1;
                }
            }
        }
        for (sequence, documents) in &state.window {
            send_batch(&requests, *sequence, documents.clone()).await?;
        }
        let mut requests = Some(requests);
        loop {
            while state.window.len() < self.in_flight && !state.source_done && state.rejection.is_none() {
                let Some(documents) = self.cut_batch(state).await else {
                    break;
                };
                let sequence = state.next_sequence.expect("set on open");
                state.next_sequence = Some(sequence + 1);
                if let Some(sender) = &requests {
                    send_batch(sender, sequence, documents.clone()).await?;
                }
                state.window.push_back((sequence, documents));
            }
            if state.window.is_empty()
                && let Some(rejection) = state.rejection.take()
            {
                return Err(rejection);
            }
            if state.window.is_empty() && state.source_done {
                requests = None; // Half-close: the server ends the stream.
                let _ = &requests;
                while responses.message().await?.is_some() {}
                return Ok(());
            }
            let ack = match responses.message().await?.and_then(|r| r.response) {
                Some(Response::Ack(ack)) => ack,
                None => {
                    return Err(Error::Protocol(
                        "the server ended the stream with batches unacknowledged".into(),
                    ));
                }
                Some(other) => return Err(Error::Protocol(format!("expected an ack, got {other:?}"))),
            };
            let Some((sequence, documents)) = state.window.pop_front() else {
                return Err(Error::Protocol(format!("ack {} for no batch", ack.sequence)));
            };
            if ack.sequence != sequence {
                return Err(Error::Protocol(format!(
                    "ack {} where {sequence} was due",
                    ack.sequence
                )));
            }
            if let Some(rejection) = ack.rejection {
                // Stop sending; the batches already in flight still get
                // their acks, so when this returns every sent batch is either
                // committed or refused. A refused batch is never retried,
                // not even by resuming the stream id.
                state
                    .rejection
                    .get_or_insert_with(|| rejected(sequence, rejection, &documents));
                if state.window.is_empty() {
                    return Err(state.rejection.take().expect("just set"));
                }
                continue;
            }
            state.summary.documents += if ack.already_committed {
                documents.len() as u64
            } else {
                u64::from(ack.documents_written)
            };
            state.summary.batches += 1;
            if let Some(progress) = &self.progress {
                progress(&state.summary);
            }
        }
    }

    /// The next batch from the source, or None when it is exhausted.
    async fn cut_batch(&mut self, state: &mut State) -> Option<Vec<pb::Document>> {
        let mut batch = Vec::with_capacity(self.batch_documents.min(1024));
        let mut bytes = 0;
        while batch.len() < self.batch_documents {
            let document = match state.pending.take() {
                Some(document) => document,
                None => match self.documents.next().await {
                    Some(document) => pb::Document::from(document),
                    None => {
                        state.source_done = true;
                        break;
                    }
                },
            };
            let size = document.encoded_len() + 8;
            if !batch.is_empty() && bytes + size > self.batch_bytes {
                state.pending = Some(document);
                break;
            }
            bytes += size;
            batch.push(document);
        }
        (!batch.is_empty()).then_some(batch)
    }
}

/// Progress across connections.
struct State {
    /// Sent, unacknowledged batches, oldest first; resent after a reconnect.
    window: VecDeque<(u64, Vec<pb::Document>)>,
    /// The sequence number of the next new batch (None before the first open).
    next_sequence: Option<u64>,
    /// A document read from the source that did not fit the last batch.
    pending: Option<pb::Document>,
    source_done: bool,
    /// The first refusal; once set, no new batch is sent.
    rejection: Option<Error>,
    summary: UpsertSummary,
}

/// The error for a refused batch, naming the refused documents by id.
fn rejected(sequence: u64, rejection: pb::BatchRejection, documents: &[pb::Document]) -> Error {
    let mut document_ids: Vec<String> = rejection
        .violations
        .iter()
        .filter_map(|v| {
            v.field
                .strip_prefix("documents[")?
                .split(']')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .filter_map(|index| documents.get(index).map(|d| d.id.clone()))
        .collect();
    document_ids.dedup();
    Error::BatchRejected {
        sequence,
        code: tonic::Code::from_i32(rejection.code),
        message: rejection.message,
        violations: rejection
            .violations
            .into_iter()
            .map(|v| crate::FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
        document_ids,
    }
}

async fn send_batch(
    requests: &mpsc::Sender<pb::UpsertStreamRequest>,
    sequence: u64,
    documents: Vec<pb::Document>,
) -> Result<(), Error> {
    let request = pb::UpsertStreamRequest {
        request: Some(Request::Batch(pb::UpsertBatch { sequence, documents })),
    };
    requests.send(request).await.map_err(|_| Error::Status {
        code: tonic::Code::Unavailable,
        message: "the stream closed".into(),
        violations: vec![],
    })
}
