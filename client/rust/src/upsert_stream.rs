//! Streaming ingestion: batching, a bounded window of batches in flight,
//! and exact resume by document position.
//!
//! Every batch says where its first document sits in the input. On a
//! resumable stream the server keeps the committed prefix of the input
//! (how many documents, the last id, a digest of all ids), so a reconnect
//! resends only what is past it, and a new run with the same stream id
//! skips exactly the committed documents however it cuts its batches, after
//! checking their ids against the digest.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fathom_api::v1 as pb;
use pb::upsert_stream_request::Request;
use pb::upsert_stream_response::Response;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};

use crate::resume::{IdsDigest, mismatch};
use crate::retry::Backoff;
use crate::{Client, Document, Error};

/// What an upsert stream did (so far, when carried by an [`UpsertError`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    /// Documents of the input committed: on a resumable stream, the
    /// committed prefix under the stream id (earlier runs included); on
    /// others, the documents this call wrote. On an error, what was
    /// acknowledged; batches in flight at the failure may have committed too.
    pub committed_documents: u64,
    /// Documents written by this call: acknowledged after COMMIT, or found
    /// committed after a reconnect (their acknowledgement was lost).
    pub documents: u64,
    /// Batches this call wrote (or found committed after a reconnect).
    pub batches: u64,
    /// Documents not sent because an earlier run with the same stream id had
    /// committed them.
    pub skipped_documents: u64,
    /// Batches the server acknowledged as committed earlier instead of
    /// writing them (another connection wrote under the same stream id).
    pub already_committed_batches: u64,
    /// Times the connection was re-established.
    pub reconnects: u32,
    /// Wall time.
    pub elapsed: Duration,
}

/// An upsert stream that failed, with what it had done until then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct UpsertError {
    /// Why it stopped.
    #[source]
    pub error: Error,
    /// What was acknowledged before: `committed_documents` of the input are
    /// stored (at least; batches in flight may have committed too).
    pub summary: UpsertSummary,
}

impl From<UpsertError> for Error {
    fn from(failed: UpsertError) -> Self {
        failed.error
    }
}

/// Called after every acknowledged batch with the running summary.
pub type ProgressFn = Arc<dyn Fn(&UpsertSummary) + Send + Sync>;

type DocumentSource<'a> = Pin<Box<dyn Stream<Item = Result<Document, Error>> + Send + 'a>>;

/// An upsert stream being configured; [`send`](Self::send) runs it.
///
/// Documents are cut into batches of at most `batch_documents` and
/// `batch_bytes` (encoded), and at most `in_flight` batches are unacknowledged
/// at once, so memory stays bounded however long the source is.
///
/// With a `stream_id` the stream is resumable: a broken connection is
/// reopened and only what is not committed is resent; and a new run with the
/// same stream id and the same input (any batch size) skips the documents an
/// earlier run committed and writes the rest, each document once. A stream id
/// belongs to one input: a run on other data is refused with
/// [`Error::ResumeMismatch`] before anything is sent.
pub struct UpsertStreamBuilder<'a> {
    client: Client,
    collection: String,
    documents: DocumentSource<'a>,
    tenant: String,
    stream_id: Option<String>,
    build_index_at_end: bool,
    batch_documents: usize,
    batch_bytes: usize,
    in_flight: usize,
    max_reconnects: Option<u32>,
    progress: Option<ProgressFn>,
}

impl<'a> UpsertStreamBuilder<'a> {
    pub(crate) fn new(client: Client, collection: String, documents: DocumentSource<'a>) -> Self {
        Self {
            client,
            collection,
            documents,
            tenant: String::new(),
            stream_id: None,
            build_index_at_end: false,
            batch_documents: 500,
            batch_bytes: 8 * 1024 * 1024,
            in_flight: 4,
            max_reconnects: None,
            progress: None,
        }
    }

    /// The tenant (multi-tenant collections).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Once every document is acknowledged, has the server build the
    /// collection's deferred vector index before the stream ends, so the
    /// load is searchable when [`run`](Self::run) returns.
    pub fn build_index_at_end(mut self, build: bool) -> Self {
        self.build_index_at_end = build;
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

    /// How many reconnects in a row, without an acknowledgement between
    /// them, before giving up (default: the client's
    /// [`RetryPolicy::max_stream_attempts`](crate::RetryPolicy) less one,
    /// 9). Pauses and the time budget are the client's policy's.
    pub fn max_reconnects(mut self, n: u32) -> Self {
        self.max_reconnects = Some(n);
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
    /// already in flight are acknowledged (on a resumable stream, refused as
    /// well, since the committed part of an input is always a prefix), then
    /// [`Error::BatchRejected`] names the refused documents. An error from
    /// the source stops it the same way, and the batch being filled is not
    /// sent. Only a stream with a `stream_id` reconnects after a broken
    /// connection (a stream without one could write a batch twice).
    pub async fn send(mut self) -> Result<UpsertSummary, UpsertError> {
        let started = Instant::now();
        let mut state = State::new(self.in_flight);
        let policy = self.client.retry;
        let attempts = self
            .max_reconnects
            .map_or(policy.max_stream_attempts, |n| n.saturating_add(1));
        let mut backoff = Backoff::with_attempts(policy, attempts);
        loop {
            let acknowledged = state.summary.batches + state.summary.already_committed_batches;
            let outcome = self.run_connection(&mut state).await;
            if state.summary.batches + state.summary.already_committed_batches > acknowledged {
                backoff.progressed();
            }
            // Only a resumable stream reconnects: without a stream id, a
            // batch in flight could be written twice.
            let pause = match &outcome {
                Err(error) if self.stream_id.is_some() => backoff.next_pause(error),
                _ => None,
            };
            match outcome {
                Ok(()) => break,
                Err(error) if pause.is_some() => {
                    tracing::warn!(%error, "upsert stream broke; reconnecting");
                    tokio::time::sleep(pause.unwrap_or_default()).await;
                    state.summary.reconnects += 1;
                }
                Err(error) => {
                    state.summary.elapsed = started.elapsed();
                    return Err(UpsertError {
                        error,
                        summary: state.summary,
                    });
                }
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
            build_index_at_end: self.build_index_at_end,
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
        if state.opened {
            state.settle_after_reconnect(opened.committed_documents)?;
        } else {
            self.skip_committed(state, &opened).await?;
            state.opened = true;
        }
        let mut call = Call {
            requests: Some(requests),
            next_sequence: 1,
        };
        for batch in &mut state.window {
            batch.resent = true;
            call.send(batch).await?;
        }
        loop {
            while state.window.len() < self.in_flight && state.accepts_input() {
                let Some(documents) = self.cut_batch(state).await else {
                    break;
                };
                let first_position = state.position;
                state.position += documents.len() as u64;
                state.window.push_back(SentBatch {
                    sequence: 0,
                    first_position,
                    documents,
                    resent: false,
                });
                call.send(state.window.back_mut().expect("just pushed")).await?;
            }
            if state.window.is_empty() {
                if let Some(stop) = state.stop.take() {
                    return Err(stop);
                }
                if state.source_done {
                    call.requests = None; // Half-close: the server ends the stream.
                    while responses.message().await?.is_some() {}
                    return Ok(());
                }
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
            self.client.session.observe(&ack.consistency_token);
            state.acknowledge(ack)?;
            if let Some(progress) = &self.progress {
                progress(&state.summary);
            }
        }
    }

    /// On the first open of a resumable stream: reads past the documents an
    /// earlier run committed, checking that they are the same documents.
    async fn skip_committed(&mut self, state: &mut State, opened: &pb::StreamOpened) -> Result<(), Error> {
        let committed = opened.committed_documents;
        if self.stream_id.is_none() || committed == 0 {
            return Ok(());
        }
        let stream_id = self.stream_id.as_deref().unwrap_or_default();
        let mut digest = IdsDigest::default();
        let mut last_id = String::new();
        for read in 0..committed {
            match self.documents.next().await {
                Some(Ok(document)) => {
                    digest.push(&document.0.id);
                    last_id = document.0.id;
                }
                Some(Err(error)) => return Err(error),
                None => return Err(Error::ResumeMismatch(mismatch(stream_id, committed, Some(read)))),
            }
        }
        if !digest.matches(&opened.ids_digest) || last_id != opened.last_id {
            return Err(Error::ResumeMismatch(mismatch(stream_id, committed, None)));
        }
        state.position = committed;
        state.committed = committed;
        state.summary.skipped_documents = committed;
        state.summary.committed_documents = committed;
        Ok(())
    }

    /// The next batch from the source, or None when it is exhausted or failed.
    async fn cut_batch(&mut self, state: &mut State) -> Option<Vec<pb::Document>> {
        let mut batch = Vec::with_capacity(self.batch_documents.min(1024));
        let mut bytes = 0;
        while batch.len() < self.batch_documents {
            let document = match state.pending.take() {
                Some(document) => document,
                None => match self.documents.next().await {
                    Some(Ok(document)) => pb::Document::from(document),
                    Some(Err(error)) => {
                        // The batch being filled is dropped unsent: the
                        // input is wrong at this point.
                        state.stop = Some(error);
                        return None;
                    }
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

/// A batch sent and not yet acknowledged.
struct SentBatch {
    /// Its number in the current call (renumbered when resent).
    sequence: u64,
    /// Position of its first document in the input.
    first_position: u64,
    documents: Vec<pb::Document>,
    /// Whether it was sent again after a reconnect.
    resent: bool,
}

impl SentBatch {
    fn end(&self) -> u64 {
        self.first_position + self.documents.len() as u64
    }
}

/// Progress across connections.
struct State {
    /// Sent, unacknowledged batches, oldest first; resent after a reconnect.
    window: VecDeque<SentBatch>,
    /// Input position of the next document to cut.
    position: u64,
    /// Documents of the input known committed (acknowledged).
    committed: u64,
    /// Whether a first `opened` arrived (and committed documents were skipped).
    opened: bool,
    /// A document read from the source that did not fit the last batch.
    pending: Option<pb::Document>,
    source_done: bool,
    /// The first refusal or source error; once set, no new batch is sent.
    stop: Option<Error>,
    summary: UpsertSummary,
}

impl State {
    fn new(in_flight: usize) -> Self {
        Self {
            window: VecDeque::with_capacity(in_flight),
            position: 0,
            committed: 0,
            opened: false,
            pending: None,
            source_done: false,
            stop: None,
            summary: UpsertSummary::default(),
        }
    }

    fn accepts_input(&self) -> bool {
        !self.source_done && self.stop.is_none()
    }

    /// After a reconnect, the server has `committed` documents: the window's
    /// batches below that were committed, their acks lost with the connection.
    fn settle_after_reconnect(&mut self, committed: u64) -> Result<(), Error> {
        if committed < self.committed {
            return Err(Error::Protocol(format!(
                "the server reports {committed} documents committed after {} were acknowledged",
                self.committed
            )));
        }
        while self.window.front().is_some_and(|batch| batch.end() <= committed) {
            self.window.pop_front();
            self.summary.batches += 1;
        }
        self.summary.documents += committed - self.committed;
        self.committed = committed;
        self.summary.committed_documents = committed;
        Ok(())
    }

    /// Matches an ack to the oldest batch in flight.
    fn acknowledge(&mut self, ack: pb::BatchAck) -> Result<(), Error> {
        let Some(batch) = self.window.pop_front() else {
            return Err(Error::Protocol(format!("ack {} for no batch", ack.sequence)));
        };
        if ack.sequence != batch.sequence {
            return Err(Error::Protocol(format!(
                "ack {} where {} was due",
                ack.sequence, batch.sequence
            )));
        }
        if let Some(rejection) = ack.rejection {
            // Stop sending; the batches already in flight still get their
            // acks, so when the stream ends every sent batch is either
            // committed or refused.
            if self.stop.is_none() {
                self.stop = Some(rejected(&batch, rejection));
            }
            return Ok(());
        }
        if ack.already_committed && batch.resent {
            // Sent before the connection broke and committed by then, though
            // not yet when the stream was reopened: this call wrote it.
            self.summary.batches += 1;
            self.summary.documents += batch.end().saturating_sub(batch.first_position.max(self.committed));
        } else if ack.already_committed {
            self.summary.already_committed_batches += 1;
        } else {
            self.summary.batches += 1;
            self.summary.documents += u64::from(ack.documents_written);
        }
        self.committed = self.committed.max(ack.committed_documents);
        self.summary.committed_documents = self.committed;
        Ok(())
    }
}

/// The sending half of one call.
struct Call {
    /// None once half-closed.
    requests: Option<mpsc::Sender<pb::UpsertStreamRequest>>,
    next_sequence: u64,
}

impl Call {
    /// Numbers `batch` for this call and sends it.
    async fn send(&mut self, batch: &mut SentBatch) -> Result<(), Error> {
        batch.sequence = self.next_sequence;
        self.next_sequence += 1;
        let request = pb::UpsertStreamRequest {
            request: Some(Request::Batch(pb::UpsertBatch {
                sequence: batch.sequence,
                documents: batch.documents.clone(),
                first_position: Some(batch.first_position),
            })),
        };
        let sent = match &self.requests {
            Some(requests) => requests.send(request).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(Error::Status {
                code: tonic::Code::Unavailable,
                message: "the stream closed".into(),
                violations: vec![],
                busy: false,
            })
        }
    }
}

/// The error for a refused batch, naming the refused documents by id and
/// their input positions.
fn rejected(batch: &SentBatch, rejection: pb::BatchRejection) -> Error {
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
        .filter_map(|index| batch.documents.get(index).map(|d| d.id.clone()))
        .collect();
    document_ids.dedup();
    Error::BatchRejected {
        sequence: batch.sequence,
        first_position: batch.first_position,
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
