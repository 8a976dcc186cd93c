//! Builders shared by the test modules.

use fathom_api::v1 as pb;
use fathom_server::domain::{Collection, CollectionName, KeywordQuery, SearchQuery, Tenant};
use fathom_server::store::Store;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A CreateCollectionRequest with HNSW defaults and English text, whose
/// index is built with the collection (`IndexBuild::Immediate`), so that
/// searches use the graph from the first document: the tests of search
/// behaviour test the HNSW index, however few documents they write. The
/// default, `Automatic`, has tests of its own (tests/integration/automatic_index.rs).
pub fn collection_request(name: &str, dimension: u32, metric: pb::DistanceMetric) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dimension,
        metric: metric as i32,
        index: None,
        text_language: String::new(),
        multi_tenant: false,
        defer_index: false,
        index_build: pb::IndexBuild::Immediate as i32,
    }
}

/// A CreateCollection request with an HNSW index of default m and
/// ef_construction at `precision` (an `IndexPrecision` value, or any number).
pub fn hnsw_request(
    name: &str,
    dimension: u32,
    metric: pb::DistanceMetric,
    precision: i32,
) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        index: Some(pb::IndexSettings {
            kind: Some(pb::index_settings::Kind::Hnsw(pb::HnswIndex {
                precision,
                ..Default::default()
            })),
        }),
        ..collection_request(name, dimension, metric)
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

/// Deterministic pseudo-random 64-bit words (xorshift), so tests need no RNG crate.
fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    })
}

/// Deterministic pseudo-random components in [-1, 1).
pub fn pseudo_random_vector(dimension: usize, seed: u64) -> Vec<f32> {
    xorshift(seed)
        .take(dimension)
        .map(|word| ((word >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
        .collect()
}

/// Deterministic components with every bit of the mantissa in play, both
/// signs, magnitudes from about 1e-8 to 1e7: floats whose decimal forms are
/// long, for round trips that must keep every bit.
pub fn awkward_vector(dimension: usize, seed: u64) -> Vec<f32> {
    xorshift(seed)
        .take(dimension)
        .map(|word| {
            let exponent = 100 + (word >> 40) as u32 % 50;
            f32::from_bits((word as u32 & 0x807F_FFFF) | (exponent << 23))
        })
        .collect()
}

/// Components of a deterministic unit vector near a fixed random 8-d
/// subspace, plus 5 % noise: the way real embeddings lie near a
/// low-dimensional manifold. Uniform random vectors are almost equidistant,
/// which makes "nearest" meaningless and recall a poor guide.
pub fn embedding_like_vector(dimension: usize, seed: u64) -> Vec<f32> {
    const LATENT: u64 = 8;
    let latent = pseudo_random_vector(LATENT as usize, seed);
    let noise = pseudo_random_vector(dimension, seed ^ 0x5EED_0000_0000);
    let mut vector: Vec<f32> = noise.iter().map(|n| 0.05 * n).collect();
    for (k, weight) in latent.iter().enumerate() {
        let basis = pseudo_random_vector(dimension, 0xBA5E_0000 + k as u64);
        for (component, b) in vector.iter_mut().zip(basis) {
            *component += weight * b;
        }
    }
    let norm = vector.iter().map(|c| c * c).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    vector.iter().map(|c| c / norm).collect()
}

/// A server with one empty cosine collection of `dimension`.
pub async fn server_with_collection(name: &str, dimension: usize) -> fathom_tests::TestServer {
    let config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    configured_server_with_collection(config, name, dimension).await
}

/// A server as `config` says, with one empty cosine collection of `dimension`.
pub async fn configured_server_with_collection(
    config: fathom_server::Config,
    name: &str,
    dimension: usize,
) -> fathom_tests::TestServer {
    let server = fathom_tests::TestServer::start_with(config).await;
    server
        .collections()
        .await
        .create_collection(collection_request(name, dimension as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    server
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
        let open = pb::OpenStream {
            collection: collection.into(),
            tenant: tenant.into(),
            stream_id: stream_id.into(),
            build_index_at_end: false,
        };
        Self::open_with(client, open).await
    }

    /// Opens a stream as `open` says.
    pub async fn open_with(
        client: &mut pb::documents_client::DocumentsClient<tonic::transport::Channel>,
        open: pb::OpenStream,
    ) -> Result<Self, Status> {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
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

    /// Sends one batch of a stream without id (no input position).
    pub async fn send(&self, sequence: u64, documents: Vec<pb::Document>) {
        self.send_batch(sequence, None, documents).await;
    }

    /// Sends one batch of a resumable stream, starting at input position `first`.
    pub async fn send_at(&self, sequence: u64, first: u64, documents: Vec<pb::Document>) {
        self.send_batch(sequence, Some(first), documents).await;
    }

    /// Sends one batch of a resumable stream; false if the stream has ended
    /// (the server closed it), whose status `next_ack` then reads.
    pub async fn try_send_at(&self, sequence: u64, first: u64, documents: Vec<pb::Document>) -> bool {
        self.try_send_batch(sequence, Some(first), documents).await
    }

    async fn send_batch(&self, sequence: u64, first_position: Option<u64>, documents: Vec<pb::Document>) {
        assert!(
            self.try_send_batch(sequence, first_position, documents).await,
            "the stream is open"
        );
    }

    async fn try_send_batch(&self, sequence: u64, first_position: Option<u64>, documents: Vec<pb::Document>) -> bool {
        let batch = pb::UpsertBatch {
            sequence,
            documents,
            first_position,
        };
        let request = pb::UpsertStreamRequest {
            request: Some(pb::upsert_stream_request::Request::Batch(batch)),
        };
        self.sender.send(request).await.is_ok()
    }

    /// Half-closes the stream and reads the remaining acks until it ends.
    pub async fn finish(self) -> Result<Vec<pb::BatchAck>, Status> {
        let Self {
            sender, mut responses, ..
        } = self;
        drop(sender);
        let mut acks = Vec::new();
        while let Some(response) = responses.message().await? {
            if let Some(pb::upsert_stream_response::Response::Ack(ack)) = response.response {
                acks.push(ack);
            }
        }
        Ok(acks)
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

/// The collection as GetCollection returns it.
pub async fn get_collection(server: &fathom_tests::TestServer, name: &str) -> pb::Collection {
    server
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .collection
        .expect("GetCollection returns the collection")
}

/// A metadata Struct from a JSON object.
pub fn metadata(json: serde_json::Value) -> Option<prost_types::Struct> {
    Some(fathom_api::struct_json::json_to_struct(json).expect("metadata must be a JSON object"))
}

/// The documents of `collection` (no tenant), by the Count RPC.
pub async fn count(server: &fathom_tests::TestServer, collection: &str) -> u64 {
    let request = pb::CountRequest {
        collection: collection.into(),
        ..Default::default()
    };
    server
        .documents()
        .await
        .count(request)
        .await
        .unwrap()
        .into_inner()
        .count
}

/// Writes documents with unary Upserts of at most 1000.
pub async fn upsert_all(server: &fathom_tests::TestServer, collection: &str, documents: Vec<pb::Document>) {
    let mut client = server.documents().await;
    let mut documents = documents.into_iter().peekable();
    while documents.peek().is_some() {
        let chunk: Vec<pb::Document> = documents.by_ref().take(1000).collect();
        let request = pb::UpsertRequest {
            collection: collection.into(),
            tenant: String::new(),
            documents: chunk,
        };
        client.upsert(request).await.unwrap();
    }
}

/// The store-level query of a search for the 10 nearest to `vector` (and,
/// if given, `text`: a hybrid search), with the server's defaults for the
/// rest: what `Store::search` is given for such a request.
pub fn store_query(vector: Vec<f32>, text: Option<&str>) -> SearchQuery {
    let tenant = Tenant::for_collection("tenant", "", false, 0).unwrap();
    SearchQuery::new(tenant, Some(vector), text.map(KeywordQuery::parse), 10)
}

/// A store on `server`'s database with a pool of one connection, so a test
/// can look at the very session its searches ran on; and `collection` from
/// its catalog.
pub async fn single_connection_store(
    server: &fathom_tests::TestServer,
    collection: &str,
) -> (Store, std::sync::Arc<Collection>) {
    let store = Store::connect(&server.database_url, 1).await.unwrap();
    let collection = store
        .collection(&CollectionName::parse("collection", collection).unwrap())
        .await
        .unwrap();
    (store, collection)
}

/// Runs a search and collects its hits.
pub async fn search(
    server: &fathom_tests::TestServer,
    request: pb::SearchRequest,
) -> Result<Vec<pb::SearchHit>, Status> {
    let mut stream = server.search().await.search(request).await?.into_inner();
    let mut hits = Vec::new();
    while let Some(hit) = stream.message().await? {
        hits.push(hit);
    }
    Ok(hits)
}

/// Filter builders.
pub mod filter {
    use fathom_api::v1 as pb;
    use pb::field_condition::Condition;

    pub fn field(key: &str, condition: Condition) -> pb::Filter {
        pb::Filter {
            node: Some(pb::filter::Node::Field(pb::FieldCondition {
                key: key.into(),
                condition: Some(condition),
            })),
        }
    }
    pub fn string(s: &str) -> pb::Scalar {
        pb::Scalar {
            kind: Some(pb::scalar::Kind::StringValue(s.into())),
        }
    }
    pub fn number(n: f64) -> pb::Scalar {
        pb::Scalar {
            kind: Some(pb::scalar::Kind::NumberValue(n)),
        }
    }
    pub fn boolean(b: bool) -> pb::Scalar {
        pb::Scalar {
            kind: Some(pb::scalar::Kind::BoolValue(b)),
        }
    }
    pub fn bound(n: f64) -> pb::Bound {
        pb::Bound {
            value: Some(pb::bound::Value::Number(n)),
        }
    }
    pub fn instant(rfc3339: &str) -> pb::Bound {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
        pb::Bound {
            value: Some(pb::bound::Value::Timestamp(prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            })),
        }
    }
    pub fn all(filters: Vec<pb::Filter>) -> pb::Filter {
        pb::Filter {
            node: Some(pb::filter::Node::All(pb::FilterList { filters })),
        }
    }
    pub fn any(filters: Vec<pb::Filter>) -> pb::Filter {
        pb::Filter {
            node: Some(pb::filter::Node::Any(pb::FilterList { filters })),
        }
    }
    pub fn not(filter: pb::Filter) -> pb::Filter {
        pb::Filter {
            node: Some(pb::filter::Node::Not(Box::new(filter))),
        }
    }
    pub fn ids(ids: &[&str]) -> pb::Filter {
        pb::Filter {
            node: Some(pb::filter::Node::Ids(pb::IdCondition {
                ids: ids.iter().map(|s| s.to_string()).collect(),
            })),
        }
    }
}
