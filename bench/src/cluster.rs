//! The throw-away PostgreSQL the benchmark runs against: started fresh with
//! the settings below, stopped and deleted when the benchmark ends, however
//! it ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fathom_embedded_postgres::{Durability, EmbeddedPostgres};

/// The database fathom and the in-process store use.
const DATABASE: &str = "bench";

/// Settings beyond PostgreSQL's defaults, with the reason for each. Durability
/// stays at the defaults (fsync, synchronous_commit and full_page_writes on):
/// fathom acknowledges a batch after a durable COMMIT, and the ceilings
/// commit the same way.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "shared_buffers",
        "2GB",
        "the query collection (heap, TOAST, HNSW and GIN indexes) fits in PostgreSQL's cache",
    ),
    (
        "maintenance_work_mem",
        "2GB",
        "the HNSW index is built in memory, as pgvector advises",
    ),
    (
        "max_wal_size",
        "16GB",
        "no checkpoint is forced inside a timed run; the bench checkpoints between runs",
    ),
    ("checkpoint_timeout", "1h", "likewise"),
    (
        "autovacuum",
        "off",
        "no background vacuum lands in a timed run; the bench runs VACUUM ANALYZE before the queries",
    ),
];

/// A running cluster in a scratch directory. Dropping it stops the cluster
/// and deletes the directory (unless kept).
pub struct Cluster {
    postgres: EmbeddedPostgres,
    work_dir: PathBuf,
    keep: bool,
}

impl Cluster {
    /// Clears `work_dir` (stopping a cluster a killed run left there),
    /// initialises a cluster under it, and starts it on a free port.
    pub fn start(install_dir: &Path, work_dir: &Path, keep: bool) -> anyhow::Result<Self> {
        let home = work_dir.join("cluster");
        if home.join("pgdata").is_dir() {
            EmbeddedPostgres::new(install_dir, &home, 0, Durability::Durable)?.stop(false)?;
        }
        if work_dir.exists() {
            std::fs::remove_dir_all(work_dir).with_context(|| format!("clearing {}", work_dir.display()))?;
        }
        std::fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
        let postgres = EmbeddedPostgres::new(install_dir, &home, free_port()?, Durability::Durable)?
            .with_settings(SETTINGS.iter().map(|(name, value, _)| (*name, *value)));
        let cluster = Self {
            postgres,
            work_dir: std::path::absolute(work_dir)?,
            keep,
        };
        cluster.postgres.start(DATABASE)?;
        Ok(cluster)
    }

    /// The URL of the benchmark database.
    pub fn url(&self) -> String {
        self.postgres.url(DATABASE)
    }

    /// The scratch directory: the cluster's user can read files put here.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.postgres.stop(true) {
            eprintln!("fathom-bench: stopping PostgreSQL: {error}");
        }
        if !self.keep
            && let Err(error) = std::fs::remove_dir_all(&self.work_dir)
        {
            eprintln!("fathom-bench: deleting {}: {error}", self.work_dir.display());
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
