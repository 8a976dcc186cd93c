//! Fathom: a gRPC vector search server on PostgreSQL + pgvector.
//!
//! Layers, top to bottom: `api` (gRPC handlers: proto in, proto out),
//! [`domain`] (valid values), [`store`] (all SQL). [`Server`] wires them into
//! a tonic server with [`health`] and reflection, behind the `transport`
//! layers (TLS, the concurrency limit, the RPC span), [`auth`] and `metrics`.
//! The database Fathom runs itself when none is given is crate
//! `fathom-embedded-postgres`.
//!
//! Modules are private unless the command line, the benchmark or the tests
//! use them: what they need of the rest is re-exported here.

mod api;
pub mod auth;
pub mod domain;
pub mod embedding;
pub mod health;
mod metrics;
mod server;
pub mod store;
mod transport;

pub use server::{Authentication, Config, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_OPEN_STREAMS, Server};
pub use store::DEFAULT_INDEXING_THRESHOLD_BYTES;
pub use transport::tls::{TlsError, TlsSettings};
