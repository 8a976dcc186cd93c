//! `fathom serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use fathom_embedded_postgres::EmbeddedPostgres;
use fathom_server::{Authentication, Config, Server, TlsSettings};

use crate::database::{DatabaseArgs, EMBEDDED_DATABASE};

/// Options of `fathom serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to serve gRPC on.
    #[arg(long, env = "FATHOM_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// The database (DATABASE_URL, or the embedded PostgreSQL, which fathom
    /// initialises once, starts, and stops on exit).
    #[command(flatten)]
    database: DatabaseArgs,
    /// Require an API key of every request (`fathom keys create`); health
    /// and reflection stay open. Required to listen beyond loopback, unless
    /// --insecure-no-auth.
    #[arg(long, env = "FATHOM_AUTH")]
    auth: bool,
    /// Listen beyond loopback without authentication: anyone who reaches the
    /// port may read, write and drop every collection. Only behind a network
    /// policy that admits trusted clients alone. (With --auth, keys are checked.)
    #[arg(long, env = "FATHOM_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    /// A read replica: a streaming standby of the database (one server's
    /// URL, such as `fathom postgres start --replica-of` makes). Repeat for
    /// several. Get, Count, Scroll and Search go to a replica in rotation
    /// (round robin) unless they ask for strong consistency or carry a
    /// consistency token a replica has not replayed; everything else goes
    /// to the primary. Env: comma-separated.
    #[arg(
        long = "replica-url",
        env = "FATHOM_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "URL"
    )]
    replica_urls: Vec<String>,
    /// A replica that lags the primary by more than this many seconds (the
    /// age of the oldest write it has not replayed), or fails its probe, is
    /// out of rotation until it is healthy again.
    #[arg(long, env = "FATHOM_REPLICA_MAX_LAG_SECONDS", default_value_t = fathom_server::store::DEFAULT_REPLICA_MAX_LAG.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    replica_max_lag_seconds: u64,
    /// How long a read with a consistency token waits for a replica to
    /// replay that far before the primary serves it, in milliseconds.
    #[arg(long, env = "FATHOM_REPLICA_TOKEN_WAIT_MS", default_value_t = fathom_server::store::DEFAULT_REPLICA_TOKEN_WAIT.as_millis() as u64)]
    replica_token_wait_ms: u64,
    /// Most pooled database connections (to the primary, and to each replica).
    #[arg(long, env = "FATHOM_MAX_CONNECTIONS", default_value_t = 16)]
    max_connections: u32,
    /// Most documents in one batch.
    #[arg(long, env = "FATHOM_MAX_BATCH_DOCUMENTS", default_value_t = 1000)]
    max_batch_documents: usize,
    /// Most bytes in one batch.
    #[arg(long, env = "FATHOM_MAX_BATCH_BYTES", default_value_t = 32 * 1024 * 1024)]
    max_batch_bytes: usize,
    /// Largest gRPC message accepted, in bytes.
    #[arg(long, env = "FATHOM_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Longest document text, in bytes.
    #[arg(long, env = "FATHOM_MAX_TEXT_BYTES", default_value_t = 1024 * 1024)]
    max_text_bytes: usize,
    /// On SIGTERM or Ctrl-C: upsert streams end (UNAVAILABLE) after the batch
    /// they are writing; other requests get this many seconds to finish
    /// before they are cut off.
    #[arg(long, env = "FATHOM_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    shutdown_grace_seconds: u64,
    /// PostgreSQL cancels any statement of fathom's that runs longer than
    /// this many seconds; the request gets DEADLINE_EXCEEDED and writes nothing.
    #[arg(long, env = "FATHOM_STATEMENT_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    statement_timeout_seconds: u64,
    /// Most calls at work at once: unary calls until they end, streaming
    /// calls while their handler runs (a search's statement); more get
    /// RESOURCE_EXHAUSTED. Health checks are not counted.
    #[arg(long, env = "FATHOM_MAX_CONCURRENT_REQUESTS", default_value_t = fathom_server::DEFAULT_MAX_CONCURRENT_REQUESTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_concurrent_requests: usize,
    /// Most streaming calls (UpsertStream, Scroll, Search) open at once,
    /// however idle; more get RESOURCE_EXHAUSTED. Open streams never take
    /// the budget of --max-concurrent-requests from unary calls.
    #[arg(long, env = "FATHOM_MAX_OPEN_STREAMS", default_value_t = fathom_server::DEFAULT_MAX_OPEN_STREAMS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_open_streams: usize,
    /// An UpsertStream that sends no message for this many seconds is
    /// ended with UNAVAILABLE; what it committed stays, and it resumes by
    /// its stream_id (the SDKs do so on their own).
    #[arg(long, env = "FATHOM_STREAM_IDLE_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    stream_idle_timeout_seconds: u64,
    /// Least `maintenance_work_mem`, in MiB, that building a deferred vector
    /// index (BuildIndex) gets; the database's own setting if higher. An
    /// HNSW build is fastest when its graph fits (100,000 × 768: ~400 MiB).
    #[arg(long, env = "FATHOM_INDEX_BUILD_MEMORY_MB", default_value_t = 1024)]
    index_build_memory_mb: u64,
    /// A collection whose index is built automatically (the default) gets
    /// its HNSW index once its vectors take this many KiB (documents ×
    /// dimension × 4 bytes; 16384 KiB is 5,462 documents of 768
    /// dimensions): at the end of the UpsertStream that passes it, so a
    /// bulk load is indexed once, in bulk. Below it, searches are exact.
    #[arg(long, env = "FATHOM_INDEXING_THRESHOLD_KB", default_value_t = fathom_server::DEFAULT_INDEXING_THRESHOLD_BYTES / 1024)]
    indexing_threshold_kb: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (such as
    /// 0.0.0.0:9464). Unset: no metrics endpoint.
    #[arg(long, env = "FATHOM_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Gzip the responses of Search, Scroll and Get for clients that accept
    /// it: for clients across a slow network. Off by default, since next to
    /// its clients compressing every message costs more than it saves.
    /// Compressed requests are accepted either way.
    #[arg(long, env = "FATHOM_COMPRESS_RESPONSES")]
    compress_responses: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "FATHOM_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "FATHOM_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: refuse clients without a certificate signed by this CA (PEM).
    #[arg(long, env = "FATHOM_TLS_CLIENT_CA", value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

/// Serves until Ctrl-C or SIGTERM; stops the embedded PostgreSQL, if any, after.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.auth && !args.insecure_no_auth && !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve {} without authentication: anyone who reaches it could read, write and drop every \
             collection. Pass --auth (and create a key with `fathom keys create --role admin`), or \
             --insecure-no-auth if a network policy admits only trusted clients",
            args.listen
        );
    }
    // Bad TLS files fail before a PostgreSQL is started for nothing.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSettings::load(cert, key, args.tls_client_ca.as_deref())?),
        _ => None,
    };
    // Before anything else: a second `fathom serve` must fail here, not
    // after adopting (and, on exit, stopping) the first one's PostgreSQL.
    std::net::TcpListener::bind(args.listen).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e} (is another fathom serving there?)",
            args.listen
        )
    })?;
    let (database_url, embedded) = match &args.database.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let pg = args.database.embedded()?;
            if pg.is_running() {
                refuse_if_served(&pg, &args).await?;
            }
            let starting = pg.clone();
            tokio::task::spawn_blocking(move || starting.start("fathom")).await??;
            tracing::info!(port = pg.port(), data_dir = %args.database.data_dir.display(), "embedded PostgreSQL is running");
            (pg.url(EMBEDDED_DATABASE), Some(pg))
        }
    };
    let mut config = Config::new(args.listen, database_url);
    config.max_connections = args.max_connections;
    config.replica_urls = args.replica_urls;
    config.replicas.max_lag = std::time::Duration::from_secs(args.replica_max_lag_seconds);
    config.replicas.token_wait = std::time::Duration::from_millis(args.replica_token_wait_ms);
    config.limits.max_batch_documents = args.max_batch_documents;
    config.limits.max_batch_bytes = args.max_batch_bytes;
    config.limits.max_message_bytes = args.max_message_bytes;
    config.limits.max_text_bytes = args.max_text_bytes;
    config.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace_seconds);
    config.statement_timeout = std::time::Duration::from_secs(args.statement_timeout_seconds);
    config.max_concurrent_requests = args.max_concurrent_requests;
    config.max_open_streams = args.max_open_streams;
    config.limits.stream_idle_timeout = std::time::Duration::from_secs(args.stream_idle_timeout_seconds);
    config.index_build_memory_bytes = args.index_build_memory_mb.saturating_mul(1024 * 1024);
    config.indexing_threshold_bytes = args.indexing_threshold_kb.saturating_mul(1024);
    if args.auth {
        config.authentication = Authentication::ApiKeys;
    }
    config.metrics_listen = args.metrics_listen;
    config.compress_responses = args.compress_responses;
    config.tls = tls;
    let served = match Server::build(config).await {
        Ok(server) => server.run(shutdown_signal()).await,
        Err(error) => Err(error),
    };
    if let Some(pg) = embedded {
        tracing::info!("stopping embedded PostgreSQL");
        tokio::task::spawn_blocking(move || pg.stop(true)).await??;
    }
    served
}

/// An embedded cluster already running is adopted if it was left behind (a
/// killed fathom), but not if another fathom is serving from it: this one
/// would stop it on exit.
async fn refuse_if_served(pg: &EmbeddedPostgres, args: &ServeArgs) -> anyhow::Result<()> {
    let sessions = fathom_server::store::Store::fathom_sessions(&pg.url("postgres"))
        .await
        .unwrap_or(0);
    if sessions > 0 {
        anyhow::bail!(
            "the embedded PostgreSQL in {} is already running on port {}, used by another fathom ({sessions} \
             connections): stop that fathom first, or give this one its own --data-dir and --postgres-port, or \
             DATABASE_URL",
            args.database.data_dir.display(),
            pg.port()
        );
    }
    tracing::warn!(port = pg.port(), data_dir = %args.database.data_dir.display(), "adopting an embedded PostgreSQL left running");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
