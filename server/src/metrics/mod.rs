//! Prometheus metrics: the gRPC series of every RPC, recorded by a tower
//! layer ([`grpc`]); Fathom's own, here: what was committed, how streams
//! resume, how long searches take, and the database's state; and the
//! `GET /metrics` listener that serves them ([`endpoint`]).
//!
//! Each of Fathom's own is one call at the place that knows the outcome;
//! without a recorder installed (no `--metrics-listen`) each call does
//! nothing.

pub(crate) mod endpoint;
pub(crate) mod grpc;
mod process;

use std::time::Duration;

/// How a batch reached the database: the `path` label of the commit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertPath {
    /// A unary `Upsert`.
    Upsert,
    /// An `UpsertStream` without stream id.
    Stream,
    /// A resumable `UpsertStream` (with a stream id).
    ResumableStream,
}

impl UpsertPath {
    fn label(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Stream => "stream",
            Self::ResumableStream => "resumable_stream",
        }
    }
}

/// What a search ranks by: the `kind` label of `fathom_search_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Nearest vectors only.
    Vector,
    /// Full text only.
    Keyword,
    /// Both legs, fused.
    Hybrid,
}

impl SearchKind {
    /// The kind of a search with these legs.
    pub fn of(has_vector: bool, has_text: bool) -> Self {
        match (has_vector, has_text) {
            (true, true) => Self::Hybrid,
            (false, true) => Self::Keyword,
            _ => Self::Vector,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Vector => "vector",
            Self::Keyword => "keyword",
            Self::Hybrid => "hybrid",
        }
    }
}

/// A batch of `documents` was committed.
pub fn batch_committed(path: UpsertPath, documents: u64) {
    metrics::counter!("fathom_batches_committed_total", "path" => path.label()).increment(1);
    metrics::counter!("fathom_documents_committed_total", "path" => path.label()).increment(documents);
}

/// A resumable stream was opened where an earlier one left off (committed position > 0).
pub fn stream_resumed() {
    metrics::counter!("fathom_stream_resumes_total").increment(1);
}

/// A resumable stream's batch was acknowledged `already_committed`: a resent batch.
pub fn batch_already_committed() {
    metrics::counter!("fathom_batches_already_committed_total").increment(1);
}

/// A search statement ran to completion in `elapsed`.
pub fn search_finished(kind: SearchKind, elapsed: Duration) {
    metrics::histogram!("fathom_search_duration_seconds", "kind" => kind.label()).record(elapsed.as_secs_f64());
}

/// The health probe's answer: 1 if the database answered, else 0.
pub fn postgres_up(up: bool) {
    metrics::gauge!("fathom_postgres_up").set(if up { 1.0 } else { 0.0 });
}

/// The connection pool now: connections running a statement or held by a
/// request, and connections open but idle.
pub fn pool_connections(in_use: u32, idle: u32) {
    metrics::gauge!("fathom_db_pool_connections", "state" => "in_use").set(f64::from(in_use));
    metrics::gauge!("fathom_db_pool_connections", "state" => "idle").set(f64::from(idle));
}

/// A read was routed: `consistency` is what it asked for (`eventual`,
/// `strong`, `token`), `served_by` the replica (`host:port`) or `primary`.
/// Counted only on servers with read replicas.
pub fn read_routed(consistency: &'static str, served_by: &str) {
    metrics::counter!(
        "fathom_reads_routed_total",
        "consistency" => consistency,
        "served_by" => served_by.to_owned()
    )
    .increment(1);
}

/// How far a read replica lags the primary, as the last probe measured it:
/// the age of the oldest write it has not replayed.
pub fn replica_lag(replica: &str, lag: Duration) {
    metrics::gauge!("fathom_replica_lag_seconds", "replica" => replica.to_owned()).set(lag.as_secs_f64());
}

/// Whether reads may go to a read replica now: 1 in rotation, 0 out.
pub fn replica_in_rotation(replica: &str, in_rotation: bool) {
    metrics::gauge!("fathom_replica_in_rotation", "replica" => replica.to_owned()).set(if in_rotation {
        1.0
    } else {
        0.0
    });
}
