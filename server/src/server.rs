//! Starting and running the gRPC server. Tests start the same server, on
//! port 0, through [`Server::build`] and [`Server::run`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fathom_api::v1::collections_server::CollectionsServer;
use fathom_api::v1::documents_server::DocumentsServer;
use fathom_api::v1::search_server::SearchServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use crate::api::{CollectionsApi, DocumentsApi, SearchApi};
use crate::auth::{AuthLayer, KeyRing};
use crate::domain::Limits;
use crate::health::probe_database;
use crate::metrics::endpoint::MetricsEndpoint;
use crate::metrics::grpc::GrpcMetricsLayer;
use crate::store::Store;
use crate::transport::concurrency_limit::ConcurrencyLimitLayer;
use crate::transport::tls::TlsSettings;

/// HTTP/2 receive window of a connection, shared by its streams.
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// HTTP/2 receive window of one stream (hyper's default).
const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Most pooled database connections.
    pub max_connections: u32,
    /// How often the health probe asks the database.
    pub health_interval: Duration,
    /// Request limits.
    pub limits: Limits,
    /// On shutdown, how long requests may take to finish (upsert streams
    /// end after their batch in flight at once); then the rest are cut off.
    pub shutdown_grace: Duration,
    /// How long one SQL statement may run before PostgreSQL cancels it
    /// (less when the request's deadline comes first).
    pub statement_timeout: Duration,
    /// Most requests in progress at once, server-wide (an open stream counts
    /// until it ends); more are refused with RESOURCE_EXHAUSTED. Health and
    /// reflection are not counted.
    pub max_concurrent_requests: usize,
    /// Least `maintenance_work_mem` a vector index build gets (BuildIndex).
    pub index_build_memory_bytes: u64,
    /// TLS on the listener (mutual TLS if it has a client CA); `None`
    /// serves plain-text HTTP/2.
    pub tls: Option<TlsSettings>,
    /// Where to serve Prometheus metrics (`GET /metrics`); None: nowhere.
    /// Port 0 picks a free port ([`Server::metrics_addr`] tells which).
    pub metrics_listen: Option<SocketAddr>,
    /// Whether requests must present an API key.
    pub authentication: Authentication,
    /// How often the active API keys are re-read from the database (with
    /// authentication on): a revoked key is refused within about this long.
    pub key_refresh: Duration,
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

/// Requests in progress at once unless configured otherwise: enough for a
/// large fleet of clients, few enough that the memory open streams may
/// buffer (up to `Limits::stream_buffered_bytes` each) stays bounded.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

impl Config {
    /// A config with default limits for `database_url`, listening on `listen`.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            max_connections: 16,
            health_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            statement_timeout: crate::store::DEFAULT_STATEMENT_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            index_build_memory_bytes: crate::store::DEFAULT_INDEX_BUILD_MEMORY_BYTES,
            authentication: Authentication::Off,
            key_refresh: crate::auth::DEFAULT_KEY_REFRESH,
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
            .with_index_build_memory(config.index_build_memory_bytes);
        store.migrate().await?;
        store.prepare_keyword_ranking().await?;
        let listener = TcpListener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(MetricsEndpoint::bind(addr).await?),
            None => None,
        };
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
        let limits = Arc::new(config.limits.clone());
        let max_message = limits.max_message_bytes;

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // Until the first probe answers, nothing is known to work.
        for service in crate::health::SERVICES {
            health_reporter
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let probe_stop = CancellationToken::new();
        // Named, so `fathom serve` can tell a cluster some fathom is serving from.
        let probe_options = config
            .database_url
            .parse::<sqlx::postgres::PgConnectOptions>()?
            .application_name("fathom-health");
        let probe = tokio::spawn(probe_database(
            probe_options,
            health_reporter,
            store.clone(),
            config.health_interval,
            probe_stop.clone(),
        ));

        let auth = match config.authentication {
            Authentication::Off => {
                tracing::info!("authentication is off: every client may do everything");
                AuthLayer::disabled()
            }
            Authentication::ApiKeys => {
                let ring = KeyRing::default();
                let keys = ring.load(&store).await?;
                if keys == 0 {
                    tracing::warn!(
                        "authentication is on but no API key is active: create one with `fathom keys create`"
                    );
                } else {
                    tracing::info!(active_keys = keys, "authentication is on: API keys required");
                }
                tokio::spawn(
                    ring.clone()
                        .refresh_every(store.clone(), config.key_refresh, probe_stop.clone()),
                );
                AuthLayer::with_keys(ring)
            }
        };
        let metrics_stop = CancellationToken::new();
        if let Some(endpoint) = metrics {
            tracing::info!(address = %endpoint.local_addr(), "fathom is serving metrics at /metrics");
            let pool = store.clone();
            tokio::spawn(endpoint.serve(move || pool.record_pool_metrics(), metrics_stop.clone()));
        }
        let grpc_metrics =
            GrpcMetricsLayer::new(&[fathom_api::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET])?;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(fathom_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(fathom_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let collections = CollectionsServer::new(CollectionsApi::new(store.clone()));
        let stopping = CancellationToken::new();
        let documents =
            DocumentsServer::new(DocumentsApi::new(store.clone(), limits.clone()).stop_streams_on(stopping.clone()))
                .max_decoding_message_size(max_message)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip);
        let search = SearchServer::new(SearchApi::new(store.clone(), limits.clone()))
            .max_decoding_message_size(max_message)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);

        let mut builder = tonic::transport::Server::builder();
        let address = listener.local_addr()?;
        match &config.tls {
            Some(tls) => {
                builder = builder.tls_config(tls.server_tls_config())?;
                let mode = if tls.requires_client_certificates() {
                    "mutual TLS (client certificates required)"
                } else {
                    "TLS"
                };
                tracing::info!(%address, tls = mode, "fathom is serving gRPC");
            }
            None => tracing::info!(%address, tls = "off (plain-text HTTP/2)", "fathom is serving gRPC"),
        }
        let served = builder
            // h2 closes a connection whose unread small DATA frames cost more
            // than half its connection window (GOAWAY too_many_data_frames).
            // hyper's 1 MiB window lets a client pipelining small batches
            // trip that before the stream's reader catches up; per-stream
            // windows stay at 1 MiB, so memory per stream does not grow.
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .trace_fn(crate::transport::rpc_span::rpc_span)
            // Outermost, so it counts the codes clients get, refusals included.
            .layer(grpc_metrics)
            .layer(tower::util::MapResponseLayer::new(
                crate::transport::oversize::refusals_get_client_codes,
            ))
            .layer(auth)
            .layer(ConcurrencyLimitLayer::new(config.max_concurrent_requests))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(collections)
            .add_service(documents)
            .add_service(search)
            // Without TCP_NODELAY, Nagle's algorithm holds a small response
            // until the client's delayed ACK: ~40 ms on every request.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stopping.clone().cancelled_owned(),
            );
        tokio::pin!(served);
        let served = tokio::select! {
            served = &mut served => served,
            () = shutdown => {
                let grace = config.shutdown_grace;
                tracing::info!(?grace, "shutting down: streams end after their batch in flight");
                stopping.cancel();
                match tokio::time::timeout(grace, &mut served).await {
                    Ok(served) => served,
                    Err(_) => {
                        tracing::warn!(?grace, "requests still open after the shutdown grace; cutting them off");
                        Ok(())
                    }
                }
            }
        };
        probe_stop.cancel();
        metrics_stop.cancel();
        let _ = probe.await;
        // A request cut off may still hold a connection; do not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
        served?;
        Ok(())
    }
}
