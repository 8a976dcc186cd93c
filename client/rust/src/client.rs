//! The client: connection and the unary RPCs.

use std::sync::Arc;
use std::time::Duration;

use fathom_api::v1 as pb;
use pb::collections_client::CollectionsClient;
use pb::documents_client::DocumentsClient;
use pb::search_client::SearchClient;
use tokio_stream::{Stream, StreamExt};

use crate::connection::{ClientBuilder, Transport};
use crate::retry::{Backoff, RetryPolicy, idempotent};
use crate::session::Session;
use crate::{Document, Error, Filter, SearchBuilder, UpdateAliases, UpdateBuilder, UpsertStreamBuilder};

/// Largest message the client accepts (scrolls of big vectors, large gets).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A connection to a Fathom server. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) transport: Transport,
    /// Deadline of unary calls.
    timeout: Duration,
    /// Which failures are retried, and how (`docs/retries.md`).
    pub(crate) retry: RetryPolicy,
    /// The newest consistency token of this client's writes (shared by its clones).
    pub(crate) session: Arc<Session>,
    /// Whether reads that choose no consistency send the session's token.
    read_your_writes: bool,
}

impl Client {
    /// Connects to `url` (such as `http://127.0.0.1:50051`, or `https://…`
    /// for TLS with the Mozilla roots) without an API key; see
    /// [`Client::builder`] for keys, a private CA and client certificates.
    pub async fn connect(url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a connection to `url`:
    ///
    /// ```no_run
    /// # async fn demo(ca_pem: Vec<u8>) -> Result<(), fathom_client::Error> {
    /// let client = fathom_client::Client::builder("https://fathom.internal:50051")
    ///     .api_key(std::env::var("FATHOM_API_KEY").unwrap_or_default())
    ///     .ca_certificate(ca_pem)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The connection, API key included, for generated clients of other
    /// services on the same server, such as `grpc.health.v1.Health`.
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    pub(crate) fn from_transport(transport: Transport, timeout: Duration, retry: RetryPolicy) -> Self {
        Self {
            transport,
            timeout,
            retry,
            session: Arc::default(),
            read_your_writes: true,
        }
    }

    /// Reads of this client (and of clones made from it after this call)
    /// no longer send the newest consistency token of its writes: they are
    /// eventual on a server with read replicas, and may miss the client's
    /// own latest writes for as long as a replica lags. By default a
    /// client reads its writes: see [`Client::consistency_token`].
    pub fn without_read_your_writes(mut self) -> Self {
        self.read_your_writes = false;
        self
    }

    /// The newest consistency token the writes of this client and its
    /// clones were acknowledged with; `None` before the first write. Unless
    /// [`Client::without_read_your_writes`], every Get, Count, Scroll and
    /// Search that chooses no consistency of its own sends it, so a server
    /// with read replicas serves it from one that has replayed those
    /// writes, or from the primary. Another client reads these writes by
    /// sending it as a request's `consistency.after_token`.
    pub fn consistency_token(&self) -> Option<String> {
        self.session.token()
    }

    /// The consistency a read that chose none sends.
    pub(crate) fn read_consistency(&self) -> Option<pb::ReadConsistency> {
        if self.read_your_writes {
            self.session.read_consistency()
        } else {
            None
        }
    }

    /// Sets the deadline of unary calls (default 60 s). Streams have none.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy (default [`RetryPolicy::default`]; the table of
    /// what is retried is `docs/retries.md`).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub(crate) fn collections_stub(&self) -> CollectionsClient<Transport> {
        CollectionsClient::new(self.transport.clone())
    }

    pub(crate) fn documents_stub(&self) -> DocumentsClient<Transport> {
        DocumentsClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn search_stub(&self) -> SearchClient<Transport> {
        SearchClient::new(self.transport.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Starts a CreateCollection: cosine metric, HNSW, English by default.
    pub fn create_collection(&self, name: impl Into<String>, dimension: u32) -> CreateCollection {
        CreateCollection {
            client: self.clone(),
            request: pb::CreateCollectionRequest {
                name: name.into(),
                dimension,
                metric: pb::DistanceMetric::Cosine as i32,
                ..Default::default()
            },
        }
    }

    /// One collection's settings.
    pub async fn get_collection(&self, name: &str) -> Result<pb::Collection, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::GetCollectionRequest { name: name.into() });
            let response = self.collections_stub().get_collection(request).await?.into_inner();
            response
                .collection
                .ok_or_else(|| Error::Protocol("GetCollection returned no collection".into()))
        })
        .await
    }

    /// Every collection, by name.
    pub async fn list_collections(&self) -> Result<Vec<pb::Collection>, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::ListCollectionsRequest {});
            Ok(self
                .collections_stub()
                .list_collections(request)
                .await?
                .into_inner()
                .collections)
        })
        .await
    }

    /// Drops a collection and all its documents (named by an alias, the
    /// collection it points at), and deletes its aliases.
    pub async fn delete_collection(&self, name: &str) -> Result<(), Error> {
        let request = self.request(pb::DeleteCollectionRequest { name: name.into() });
        let response = self.collections_stub().delete_collection(request).await?.into_inner();
        self.session.observe(&response.consistency_token);
        Ok(())
    }

    /// Document count and sizes.
    pub async fn collection_stats(&self, name: &str) -> Result<pb::GetCollectionStatsResponse, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::GetCollectionStatsRequest { name: name.into() });
            Ok(self
                .collections_stub()
                .get_collection_stats(request)
                .await?
                .into_inner())
        })
        .await
    }

    /// Builds a collection's deferred vector index (see
    /// [`CreateCollection::defer_index`]) in bulk, and returns once it is
    /// ready, with the collection and the seconds spent building. No
    /// deadline: a build over millions of vectors takes minutes. Searches
    /// are exact meanwhile; a build goes on if this call is dropped.
    pub async fn build_index(&self, name: &str) -> Result<pb::BuildIndexResponse, Error> {
        idempotent(self.retry, || async {
            let request = tonic::Request::new(pb::BuildIndexRequest { name: name.into() });
            Ok(self.collections_stub().build_index(request).await?.into_inner())
        })
        .await
    }

    /// Starts an UpdateAliases: alias changes applied in order, all or none.
    pub fn update_aliases(&self) -> UpdateAliases {
        UpdateAliases::new(self.clone())
    }

    /// The aliases, by name: all of them, or those of one collection (named
    /// by its own name or an alias).
    pub async fn list_aliases(&self, collection: Option<&str>) -> Result<Vec<pb::Alias>, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::ListAliasesRequest {
                collection: collection.unwrap_or_default().into(),
            });
            Ok(self
                .collections_stub()
                .list_aliases(request)
                .await?
                .into_inner()
                .aliases)
        })
        .await
    }

    /// Writes one batch in one transaction. Upserts by id are idempotent,
    /// so this is retried as the table says (`docs/retries.md`).
    pub async fn upsert(&self, collection: &str, tenant: &str, documents: Vec<Document>) -> Result<u32, Error> {
        let documents: Vec<pb::Document> = documents.into_iter().map(Into::into).collect();
        idempotent(self.retry, || async {
            let request = self.request(pb::UpsertRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                documents: documents.clone(),
            });
            let response = self.documents_stub().upsert(request).await?.into_inner();
            self.session.observe(&response.consistency_token);
            Ok(response.documents_written)
        })
        .await
    }

    /// Streams documents in: see [`UpsertStreamBuilder`].
    pub fn upsert_stream<'a, S>(&self, collection: impl Into<String>, documents: S) -> UpsertStreamBuilder<'a>
    where
        S: Stream<Item = Document> + Send + 'a,
    {
        self.try_upsert_stream(collection, documents.map(Ok))
    }

    /// Streams documents from a source that can fail, such as a file being
    /// parsed: at the first error nothing more is sent (not even the batch
    /// being filled), the batches in flight are acknowledged, and the
    /// upsert fails with that error. See [`UpsertStreamBuilder`].
    pub fn try_upsert_stream<'a, S>(&self, collection: impl Into<String>, documents: S) -> UpsertStreamBuilder<'a>
    where
        S: Stream<Item = Result<Document, Error>> + Send + 'a,
    {
        UpsertStreamBuilder::new(self.clone(), collection.into(), Box::pin(documents))
    }

    /// Streams documents from any iterator in: the same as
    /// [`upsert_stream`](Self::upsert_stream) over `futures::stream::iter`.
    pub fn upsert_iter<'a, I>(&self, collection: impl Into<String>, documents: I) -> UpsertStreamBuilder<'a>
    where
        I: IntoIterator<Item = Document>,
        I::IntoIter: Send + 'a,
    {
        self.upsert_stream(collection, futures::stream::iter(documents))
    }

    /// The documents with these ids (all fields), in the order asked; missing ids are skipped.
    pub async fn get(&self, collection: &str, tenant: &str, ids: &[String]) -> Result<Vec<pb::Document>, Error> {
        idempotent(self.retry, || async {
            let request = self.request(pb::GetRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                ids: ids.to_vec(),
                include: None,
                consistency: self.read_consistency(),
            });
            Ok(self.documents_stub().get(request).await?.into_inner().documents)
        })
        .await
    }

    /// Deletes documents matching `filter`; returns how many went.
    pub async fn delete(&self, collection: &str, tenant: &str, filter: Filter) -> Result<u64, Error> {
        let selector = pb::delete_request::Selector::Filter(filter.into_proto());
        idempotent(self.retry, || async {
            let request = self.request(pb::DeleteRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                selector: Some(selector.clone()),
            });
            let response = self.documents_stub().delete(request).await?.into_inner();
            self.session.observe(&response.consistency_token);
            Ok(response.deleted)
        })
        .await
    }

    /// Starts an update of the text or metadata of the documents `filter`
    /// chooses (by id with [`Filter::ids`]), without resending their
    /// vectors: see [`UpdateBuilder`].
    pub fn update(&self, collection: &str, tenant: &str, filter: Filter) -> UpdateBuilder {
        UpdateBuilder::new(self.clone(), collection, tenant, filter)
    }

    /// Counts documents matching `filter` (all, with `None`).
    pub async fn count(&self, collection: &str, tenant: &str, filter: Option<Filter>) -> Result<u64, Error> {
        let filter = filter.map(Filter::into_proto);
        idempotent(self.retry, || async {
            let request = self.request(pb::CountRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                filter: filter.clone(),
                consistency: self.read_consistency(),
            });
            Ok(self.documents_stub().count(request).await?.into_inner().count)
        })
        .await
    }

    /// Streams every document matching `request.filter`, in id order. The
    /// stream resumes by itself after a failure the retry table retries
    /// (UNAVAILABLE, a busy server), from the last id it yielded, so each
    /// document comes exactly once. Without a `consistency` of its own, the
    /// request reads this client's writes (see [`Client::consistency_token`]).
    pub fn scroll(
        &self,
        mut request: pb::ScrollRequest,
    ) -> impl Stream<Item = Result<pb::Document, Error>> + Send + 'static {
        if request.consistency.is_none() {
            request.consistency = self.read_consistency();
        }
        let client = self.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut request = request;
            let mut backoff = Backoff::with_attempts(client.retry, client.retry.max_stream_attempts);
            loop {
                let outcome = async {
                    let mut stream = client.documents_stub().scroll(request.clone()).await?.into_inner();
                    while let Some(item) = stream.next().await {
                        let document = item?
                            .document
                            .ok_or_else(|| Error::Protocol("empty scroll item".into()))?;
                        request.after_id.clone_from(&document.id);
                        if request.limit > 0 {
                            request.limit -= 1;
                        }
                        backoff.progressed();
                        if sender.send(Ok(document)).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok::<(), Error>(())
                }
                .await;
                match outcome {
                    Err(error) => match backoff.next_pause(&error) {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => {
                            let _ = sender.send(Err(error)).await;
                            return;
                        }
                    },
                    Ok(()) => return,
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver)
    }

    /// Starts a search: see [`SearchBuilder`].
    pub fn search(&self, collection: impl Into<String>) -> SearchBuilder {
        SearchBuilder::new(self.clone(), collection.into())
    }
}

/// A CreateCollection request being built.
#[derive(Debug, Clone)]
pub struct CreateCollection {
    client: Client,
    request: pb::CreateCollectionRequest,
}

impl CreateCollection {
    /// The distance metric (default cosine).
    pub fn metric(mut self, metric: pb::DistanceMetric) -> Self {
        self.request.metric = metric as i32;
        self
    }

    /// HNSW parameters (0 for a default); keeps a precision set before.
    pub fn hnsw(self, m: u32, ef_construction: u32) -> Self {
        self.update_hnsw(|hnsw| {
            hnsw.m = m;
            hnsw.ef_construction = ef_construction;
        })
    }

    /// The precision of the vectors in the HNSW graph (default half: see
    /// [`pb::IndexPrecision`]); keeps HNSW parameters set before.
    pub fn index_precision(self, precision: pb::IndexPrecision) -> Self {
        self.update_hnsw(|hnsw| hnsw.precision = precision as i32)
    }

    /// Asks for an HNSW index: the settings asked for so far (defaults if
    /// none), changed by `change`.
    fn update_hnsw(mut self, change: impl FnOnce(&mut pb::HnswIndex)) -> Self {
        let mut hnsw = match self.request.index.take().and_then(|i| i.kind) {
            Some(pb::index_settings::Kind::Hnsw(hnsw)) => hnsw,
            _ => pb::HnswIndex::default(),
        };
        change(&mut hnsw);
        self.request.index = Some(pb::IndexSettings {
            kind: Some(pb::index_settings::Kind::Hnsw(hnsw)),
        });
        self
    }

    /// No vector index: exact search only.
    pub fn no_index(mut self) -> Self {
        self.request.index = Some(pb::IndexSettings {
            kind: Some(pb::index_settings::Kind::None(pb::NoIndex {})),
        });
        self
    }

    /// The text-search configuration (default `english`).
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.request.text_language = language.into();
        self
    }

    /// Makes the collection multi-tenant.
    pub fn multi_tenant(mut self, multi_tenant: bool) -> Self {
        self.request.multi_tenant = multi_tenant;
        self
    }

    /// Creates the collection without its HNSW index until
    /// [`Client::build_index`] (or a stream with
    /// [`UpsertStreamBuilder::build_index_at_end`](crate::UpsertStreamBuilder::build_index_at_end))
    /// builds it in bulk: the same as
    /// [`index_build`](Self::index_build)`(IndexBuild::OnRequest)`. The
    /// default, [`IndexBuild::Automatic`](pb::IndexBuild::Automatic), needs
    /// no flag for a fast bulk load.
    pub fn defer_index(mut self, defer: bool) -> Self {
        self.request.defer_index = defer;
        self
    }

    /// When the HNSW index is built. The default,
    /// [`IndexBuild::Automatic`](pb::IndexBuild::Automatic): once the
    /// collection's vectors pass the server's indexing threshold, at the end
    /// of the stream that passes it (searches are exact below it), so a bulk
    /// load is indexed once, in bulk. `Immediate`: with the collection,
    /// maintained by every write. `OnRequest`: by [`Client::build_index`].
    pub fn index_build(mut self, build: pb::IndexBuild) -> Self {
        self.request.index_build = build as i32;
        self
    }

    /// Creates the collection, or returns the existing one of that name
    /// if its dimension, metric and tenancy are the ones asked for (its
    /// index and language are left as they are). Safe to run on every start
    /// of a program, and concurrently.
    ///
    /// Fails with [`Error::Status`] ALREADY_EXISTS if the existing
    /// collection differs in dimension, metric or tenancy.
    pub async fn get_or_create(self) -> Result<pb::Collection, Error> {
        let client = self.client.clone();
        let wanted = self.request.clone();
        match self.send().await {
            Err(Error::Status {
                code: tonic::Code::AlreadyExists,
                ..
            }) => {}
            created => return created,
        }
        let existing = client.get_collection(&wanted.name).await?;
        if (existing.dimension, existing.metric, existing.multi_tenant)
            != (wanted.dimension, wanted.metric, wanted.multi_tenant)
        {
            return Err(Error::Status {
                code: tonic::Code::AlreadyExists,
                message: format!(
                    "collection {} exists with dimension {}, metric {}, {}; asked for dimension {}, metric {}, {}",
                    existing.name,
                    existing.dimension,
                    metric_name(existing.metric()),
                    tenancy(existing.multi_tenant),
                    wanted.dimension,
                    metric_name(wanted.metric()),
                    tenancy(wanted.multi_tenant)
                ),
                violations: Vec::new(),
                busy: false,
            });
        }
        Ok(existing)
    }

    /// Creates the collection.
    pub async fn send(self) -> Result<pb::Collection, Error> {
        let request = self.client.request(self.request);
        let response = self
            .client
            .collections_stub()
            .create_collection(request)
            .await?
            .into_inner();
        self.client.session.observe(&response.consistency_token);
        response
            .collection
            .ok_or_else(|| Error::Protocol("CreateCollection returned no collection".into()))
    }
}

/// A metric as the SDKs and the CLI's tables spell it (`cosine`, not the
/// proto's `DISTANCE_METRIC_COSINE`).
fn metric_name(metric: pb::DistanceMetric) -> &'static str {
    match metric {
        pb::DistanceMetric::Cosine => "cosine",
        pb::DistanceMetric::L2 => "l2",
        pb::DistanceMetric::InnerProduct => "inner_product",
        pb::DistanceMetric::Unspecified => "unspecified",
    }
}

/// "multi-tenant" or "single-tenant".
fn tenancy(multi_tenant: bool) -> &'static str {
    if multi_tenant { "multi-tenant" } else { "single-tenant" }
}
