//! Fathom: a gRPC vector search server on PostgreSQL + pgvector.
//!
//! Layers, top to bottom: [`api`] (gRPC handlers: proto in, proto out),
//! [`domain`] (valid values), [`store`] (all SQL). [`server`] wires them into
//! a tonic server with health and reflection, behind the `transport` layers
//! (and TLS, if configured).
//! The database Fathom runs itself when none is given is crate
//! `fathom-embedded-postgres`.

pub mod api;
pub mod auth;
pub mod domain;
pub mod health;
mod metrics;
pub mod server;
pub mod store;
mod transport;

pub use server::{Authentication, Config, Server};
pub use transport::tls::{TlsError, TlsSettings};
