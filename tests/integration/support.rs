//! Builders shared by the test modules.

use fathom_api::v1 as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A CreateCollectionRequest with HNSW defaults and English text.
pub fn collection_request(name: &str, dimension: u32, metric: pb::DistanceMetric) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dimension,
        metric: metric as i32,
        index: None,
        text_language: String::new(),
        multi_tenant: false,
    }
}

/// The field names of a status's BadRequest violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts a status's code and that one violation names `field`.
pub fn assert_violation(status: &Status, code: Code, field: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let fields = violated_fields(status);
    assert!(
        fields.iter().any(|f| f == field),
        "expected a violation of {field}, got {fields:?} ({status:?})"
    );
}

/// A document with a deterministic vector of `dimension` components.
pub fn document(id: &str, dimension: usize, seed: u64) -> pb::Document {
    pb::Document {
        id: id.into(),
        vector: pseudo_random_vector(dimension, seed),
        text: format!("document {id}"),
        ..Default::default()
    }
}

/// Deterministic pseudo-random components in [-1, 1) (xorshift), so tests need no RNG crate.
pub fn pseudo_random_vector(dimension: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dimension)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One open UpsertStream: send with `batch`, read with `next`.
pub struct UpsertSession {
    pub sender: tokio::sync::mpsc::Sender<pb::UpsertStreamRequest>,
    pub responses: tonic::Streaming<pb::UpsertStreamResponse>,
    pub opened: pb::StreamOpened,
}

impl UpsertSession {
    /// Opens a stream on `collection` with an optional stream id.
    pub async fn open(
        client: &mut pb::documents_client::DocumentsClient<tonic::transport::Channel>,
        collection: &str,
        tenant: &str,
        stream_id: &str,
    ) -> Result<Self, Status> {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let open = pb::OpenStream {
            collection: collection.into(),
            tenant: tenant.into(),
            stream_id: stream_id.into(),
        };
        sender
            .send(pb::UpsertStreamRequest {
                request: Some(pb::upsert_stream_request::Request::Open(open)),
            })
            .await
            .unwrap();
        let mut responses = client
            .upsert_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await?
            .into_inner();
        match responses.message().await?.and_then(|r| r.response) {
            Some(pb::upsert_stream_response::Response::Opened(opened)) => Ok(Self {
                sender,
                responses,
                opened,
            }),
            other => panic!("expected opened, got {other:?}"),
        }
    }

    /// Sends one batch.
    pub async fn send(&self, sequence: u64, documents: Vec<pb::Document>) {
        let batch = pb::UpsertBatch { sequence, documents };
        let request = pb::UpsertStreamRequest {
            request: Some(pb::upsert_stream_request::Request::Batch(batch)),
        };
        self.sender.send(request).await.expect("the stream is open");
    }

    /// The next ack, or the status that ended the stream (None: ended cleanly).
    pub async fn next_ack(&mut self) -> Result<Option<pb::BatchAck>, Status> {
        match self.responses.message().await? {
            None => Ok(None),
            Some(pb::UpsertStreamResponse {
                response: Some(pb::upsert_stream_response::Response::Ack(ack)),
            }) => Ok(Some(ack)),
            Some(other) => panic!("expected an ack, got {other:?}"),
        }
    }
}
