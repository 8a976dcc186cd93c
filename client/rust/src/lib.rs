//! Rust client for [Fathom](https://github.com/), the gRPC vector search
//! server on PostgreSQL + pgvector.
//!
//! ```no_run
//! use fathom_client::{Client, Document, filter::field};
//! use futures::StreamExt;
//!
//! # async fn demo() -> Result<(), fathom_client::Error> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! client.create_collection("docs", 3).send().await?;
//! let docs = vec![Document::new("a", vec![1.0, 0.0, 0.0]).text("hello world")];
//! let summary = client.upsert_stream("docs", futures::stream::iter(docs)).send().await?;
//! println!("{} documents in {:?}", summary.documents, summary.elapsed);
//! let mut hits = client.search("docs").vector(vec![1.0, 0.0, 0.0]).text("hello")
//!     .filter(field("lang").eq("en").or(field("lang").exists().not()))
//!     .limit(5).send().await?;
//! while let Some(hit) = hits.next().await {
//!     let hit = hit?;
//!     println!("{} {:.4}", hit.id, hit.score);
//! }
//! # Ok(()) }
//! ```
//!
//! Every generated message and stub is re-exported as [`proto`], so
//! applications need no second crate.

mod aliases;
mod client;
mod connection;
mod document;
mod error;
pub mod filter;
mod keys;
mod resume;
pub mod retry;
mod search;
mod session;
mod update;
mod upsert_stream;

pub use aliases::UpdateAliases;
pub use client::{Client, CreateCollection};
pub use connection::{CallCredentials, ClientBuilder, Transport};
pub use document::{Document, json_to_struct};
pub use error::{Error, FieldViolation};
pub use fathom_api::struct_json::struct_to_json;
pub use fathom_api::v1 as proto;
pub use filter::Filter;
pub use keys::CreateKey;
pub use retry::RetryPolicy;
pub use search::{HitStream, SearchBuilder};
pub use update::UpdateBuilder;
pub use upsert_stream::{UpsertError, UpsertStreamBuilder, UpsertSummary};
