//! Starting and running the gRPC server. Tests start the same server, on
//! port 0, through [`Server::build`] and [`Server::run`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fathom_api::v1::collections_server::CollectionsServer;
use fathom_api::v1::documents_server::DocumentsServer;
use fathom_api::v1::keys_server::KeysServer;
use fathom_api::v1::search_server::SearchServer;
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use tower::{Layer, Service, ServiceBuilder};

use crate::api::{CollectionsApi, DocumentsApi, KeysApi, SearchApi};
use crate::auth::{AuthLayer, KeyRing};
use crate::domain::Limits;
use crate::health::{DrainingHealth, ServerHealth};
use crate::metrics::endpoint::MetricsEndpoint;
use crate::metrics::grpc::GrpcMetricsLayer;
use crate::store::{ReplicaSettings, Store};
use crate::transport::concurrency_limit::ConcurrencyLimitLayer;
use crate::transport::oversize::refusals_get_client_codes;
use crate::transport::rpc_methods::{RpcMethod, rpc_methods};
use crate::transport::rpc_span::rpc_span;
use crate::transport::tls::TlsSettings;

/// HTTP/2 receive window of a connection, shared by its streams.
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// HTTP/2 receive window of one stream (hyper's default).
const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;

/// The file descriptor sets of every service served: what reflection
/// describes, and where the gRPC metrics find the methods to count.
const DESCRIPTOR_SETS: [&[u8]; 2] = [fathom_api::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET];

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// PostgreSQL connection URL: the primary, where writes go.
    pub database_url: String,
    /// Read replicas (streaming standbys of `database_url`), each one
    /// server's URL: Get, Count, Scroll and Search go to one in rotation,
    /// as each read's consistency allows. Empty: every read goes to the primary.
    pub replica_urls: Vec<String>,
    /// How reads use the replicas: the lag that takes one out of rotation,
    /// how long a read with a token waits for one to catch up.
    pub replicas: ReplicaSettings,
    /// Most pooled database connections.
    pub max_connections: u32,
    /// How often the health probe asks the database (and the replica probe
    /// each replica).
    pub health_interval: Duration,
    /// Request limits.
    pub limits: Limits,
    /// On shutdown, how long requests may take to finish (upsert streams
    /// end after their batch in flight at once); then the rest are cut off.
    pub shutdown_grace: Duration,
    /// How long one SQL statement may run before PostgreSQL cancels it
    /// (less when the request's deadline comes first).
    pub statement_timeout: Duration,
    /// Most calls at work at once, server-wide: unary calls until they
    /// end, streaming calls while their handler runs; more are refused with
    /// RESOURCE_EXHAUSTED. Health and reflection are not counted.
    pub max_concurrent_requests: usize,
    /// Most streaming calls (UpsertStream, Scroll, Search) open at once,
    /// server-wide, however idle; more are refused with RESOURCE_EXHAUSTED.
    pub max_open_streams: usize,
    /// Least `maintenance_work_mem` a vector index build gets (BuildIndex).
    pub index_build_memory_bytes: u64,
    /// Bytes of vectors (documents × dimension × 4) past which a collection
    /// whose index is built automatically (the default) gets it.
    pub indexing_threshold_bytes: u64,
    /// TLS on the listener (mutual TLS if it has a client CA); `None`
    /// serves plain-text HTTP/2.
    pub tls: Option<TlsSettings>,
    /// Where to serve Prometheus metrics (`GET /metrics`); None: nowhere.
    /// Port 0 picks a free port ([`Server::metrics_addr`] tells which).
    pub metrics_listen: Option<SocketAddr>,
    /// Whether requests must present an API key.
    pub authentication: Authentication,
    /// How often the unrevoked API keys are re-read from the database (with
    /// authentication on): a revoked key is refused within about this long.
    pub key_refresh: Duration,
    /// Whether Search, Scroll and Get responses are gzip-compressed for
    /// clients that accept it (grpcio advertises gzip on every call). Off by
    /// default: next to its clients, compressing every message costs fathom
    /// more CPU and each search more time than the bytes save
    /// (docs/benchmarks.md); worth it only across a slow network. Compressed
    /// requests are accepted either way.
    pub compress_responses: bool,
}

/// Whether a server checks API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Every request may do everything: for a server only its own machine reaches.
    Off,
    /// Every request but health and reflection needs a valid key
    /// (`fathom keys create`), and gets what the key's role and bindings allow.
    ApiKeys,
}

/// Calls at work at once unless configured otherwise: enough for a large
/// fleet of clients; the pool's connections bound the statements anyway.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// Streams open at once unless configured otherwise: enough for a large
/// fleet of importers, few enough that the memory open streams may buffer
/// (up to `Limits::stream_buffered_bytes` each) stays bounded.
pub const DEFAULT_MAX_OPEN_STREAMS: usize = 256;

/// Most calls one HTTP/2 connection may have open at once (its
/// SETTINGS_MAX_CONCURRENT_STREAMS): a client past it waits for one of its
/// own calls to end, so one connection cannot hold every stream permit.
const MAX_CALLS_PER_CONNECTION: u32 = 128;

impl Config {
    /// A config with default limits for `database_url`, listening on `listen`.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            replica_urls: Vec::new(),
            replicas: ReplicaSettings::default(),
            max_connections: 16,
            health_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            statement_timeout: crate::store::DEFAULT_STATEMENT_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_open_streams: DEFAULT_MAX_OPEN_STREAMS,
            index_build_memory_bytes: crate::store::DEFAULT_INDEX_BUILD_MEMORY_BYTES,
            indexing_threshold_bytes: crate::store::DEFAULT_INDEXING_THRESHOLD_BYTES,
            authentication: Authentication::Off,
            key_refresh: crate::auth::DEFAULT_KEY_REFRESH,
            compress_responses: false,
            limits: Limits::default(),
            metrics_listen: None,
            tls: None,
        }
    }
}

/// A server bound to its port, connected to its database, with migrations applied.
pub struct Server {
    listener: TcpListener,
    store: Store,
    config: Config,
    metrics: Option<MetricsEndpoint>,
}

impl Server {
    /// Connects to the database, applies migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut store = Store::connect_with(&config.database_url, config.max_connections, config.statement_timeout)
            .await?
            .with_index_build_memory(config.index_build_memory_bytes)
            .with_indexing_threshold(config.indexing_threshold_bytes)
            .with_replicas(&config.replica_urls, config.replicas.clone())?;
        store.migrate().await?;
        store.prepare_keyword_ranking().await?;
        let listener = TcpListener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(MetricsEndpoint::bind(addr).await?),
            None => None,
        };
        // Healthy replicas serve reads from the first request on (probed
        // once the metrics recorder, if any, is there to count them).
        store.probe_replicas().await;
        Ok(Self {
            listener,
            store,
            config,
            metrics,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The address `GET /metrics` is served on, if `Config::metrics_listen` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::local_addr)
    }

    /// Serves until `shutdown` completes; then upsert streams end (with
    /// UNAVAILABLE) after the batch they are writing, other requests get
    /// `Config::shutdown_grace` to finish, and the database pool closes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Server {
            listener,
            store,
            config,
            metrics,
        } = self;
        // Stops what runs beside the gRPC server (the key refresh, the
        // metrics listener) once the server has stopped.
        let background = CancellationToken::new();
        let database = config.database_url.parse::<PgConnectOptions>()?;
        let (health, health_service) = ServerHealth::start(database, store.clone(), config.health_interval).await;
        let (auth, ring) = authentication(&config, &store, background.clone()).await?;
        tokio::spawn(store.clone().watch_replicas(config.health_interval, background.clone()));
        if let Some(endpoint) = metrics {
            tracing::info!(address = %endpoint.local_addr(), "fathom is serving metrics at /metrics");
            let pool = store.clone();
            tokio::spawn(endpoint.serve(move || pool.record_pool_metrics(), background.clone()));
        }
        let layers = layers(auth, config.max_concurrent_requests, config.max_open_streams)?;
        // Cancelled on shutdown: the server stops accepting, and upsert
        // streams end after their batch in flight.
        let stopping = CancellationToken::new();
        let routes = services(
            health_service,
            &store,
            ring,
            &config.limits,
            config.compress_responses,
            stopping.clone(),
        )?;
        let served = grpc_server(&config, listener.local_addr()?)?
            .layer(layers)
            .add_routes(routes)
            // Without TCP_NODELAY, Nagle's algorithm holds a small response
            // until the client's delayed ACK: ~40 ms on every request.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stopping.clone().cancelled_owned(),
            );
        tokio::pin!(served);
        let served = serve_until_shutdown(served.as_mut(), shutdown, health, &stopping, config.shutdown_grace).await;
        background.cancel();
        // A request cut off may still hold a connection; do not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
        served?;
        Ok(())
    }
}

/// The authentication layer `config` asks for, and with API keys its key
/// ring: the keys are read now, and re-read until `stop` is cancelled.
async fn authentication(
    config: &Config,
    store: &Store,
    stop: CancellationToken,
) -> anyhow::Result<(AuthLayer, Option<KeyRing>)> {
    match config.authentication {
        Authentication::Off => {
            tracing::info!("authentication is off: every client may do everything");
            Ok((AuthLayer::disabled(), None))
        }
        Authentication::ApiKeys => {
            let ring = KeyRing::new(store.clone());
            let keys = ring.load().await?;
            if keys == 0 {
                tracing::warn!(
                    "authentication is on but every API key is revoked, or none exists: create one with `fathom keys \
                     create`"
                );
            } else {
                tracing::info!(unrevoked_keys = keys, "authentication is on: API keys required");
            }
            tokio::spawn(ring.clone().refresh_every(config.key_refresh, stop));
            Ok((AuthLayer::with_keys(ring.clone()), Some(ring)))
        }
    }
}

/// The tower layers around every service, outermost first. The gRPC
/// metrics are outermost, so they count the codes clients get, refusals
/// included.
fn layers(
    auth: AuthLayer,
    max_concurrent_requests: usize,
    max_open_streams: usize,
) -> anyhow::Result<
    impl Layer<
        Routes,
        Service: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible, Future: Send>
                     + Clone
                     + Send
                     + 'static,
    > + Clone,
> {
    let streaming = rpc_methods(&DESCRIPTOR_SETS)?
        .into_iter()
        .filter(RpcMethod::streams)
        .map(|method| method.path())
        .collect();
    Ok(ServiceBuilder::new()
        .layer(GrpcMetricsLayer::new(&DESCRIPTOR_SETS)?)
        .map_response(refusals_get_client_codes::<Body>)
        .layer(auth)
        .layer(ConcurrencyLimitLayer::new(
            max_concurrent_requests,
            max_open_streams,
            streaming,
        )))
}

/// The services a server answers: Fathom's four, health, and reflection
/// (both versions: tools still ask for v1alpha). Upsert streams end when
/// `stopping` is cancelled; `ring` (with authentication on) is read again
/// when the Keys service revokes a key.
fn services(
    health: HealthServer<DrainingHealth>,
    store: &Store,
    ring: Option<KeyRing>,
    limits: &Limits,
    compress_responses: bool,
    stopping: CancellationToken,
) -> anyhow::Result<Routes> {
    let limits = Arc::new(limits.clone());
    let max_message = limits.max_message_bytes;
    let keys = KeysServer::new(KeysApi::new(store.clone(), limits.max_tenant_bytes, ring));
    let reflection = || {
        DESCRIPTOR_SETS.into_iter().fold(
            tonic_reflection::server::Builder::configure(),
            tonic_reflection::server::Builder::register_encoded_file_descriptor_set,
        )
    };
    let mut documents =
        DocumentsServer::new(DocumentsApi::new(store.clone(), limits.clone()).stop_streams_on(stopping))
            .max_decoding_message_size(max_message)
            .accept_compressed(CompressionEncoding::Gzip);
    let mut search = SearchServer::new(SearchApi::new(store.clone(), limits))
        .max_decoding_message_size(max_message)
        .accept_compressed(CompressionEncoding::Gzip);
    if compress_responses {
        documents = documents.send_compressed(CompressionEncoding::Gzip);
        search = search.send_compressed(CompressionEncoding::Gzip);
    }
    Ok(Routes::new(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(CollectionsServer::new(CollectionsApi::new(store.clone())))
        .add_service(documents)
        .add_service(search)
        .add_service(keys))
}

/// tonic's server for `config`, with TLS if it is configured; logs the
/// address it serves on and how.
fn grpc_server(config: &Config, address: SocketAddr) -> anyhow::Result<tonic::transport::Server> {
    let mut server = tonic::transport::Server::builder()
        // h2 closes a connection whose unread small DATA frames cost more
        // than half its connection window (GOAWAY too_many_data_frames).
        // hyper's 1 MiB window lets a client pipelining small batches
        // trip that before the stream's reader catches up; per-stream
        // windows stay at 1 MiB, so memory per stream does not grow.
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .max_concurrent_streams(MAX_CALLS_PER_CONNECTION)
        .trace_fn(rpc_span);
    let tls = match &config.tls {
        Some(tls) => {
            server = server.tls_config(tls.server_tls_config())?;
            if tls.requires_client_certificates() {
                "mutual TLS (client certificates required)"
            } else {
                "TLS"
            }
        }
        None => "off (plain-text HTTP/2)",
    };
    tracing::info!(%address, tls, "fathom is serving gRPC");
    Ok(server)
}

/// Waits until `served` ends, or `shutdown` completes. Then health turns
/// NOT_SERVING and its watches end, `stopping` is cancelled, and the
/// requests still open get `grace` to finish; past it, this stops waiting
/// for them.
async fn serve_until_shutdown(
    mut served: impl Future<Output = Result<(), tonic::transport::Error>> + Unpin,
    shutdown: impl Future<Output = ()>,
    health: ServerHealth,
    stopping: &CancellationToken,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    tokio::select! {
        served = &mut served => {
            health.drain().await;
            served
        }
        () = shutdown => {
            tracing::info!(?grace, "shutting down: streams end after their batch in flight");
            // First, so that no probe or load balancer sends new work.
            health.drain().await;
            stopping.cancel();
            match tokio::time::timeout(grace, &mut served).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!(?grace, "requests still open after the shutdown grace; cutting them off");
                    Ok(())
                }
            }
        }
    }
}
