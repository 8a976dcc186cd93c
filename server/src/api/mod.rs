//! gRPC handlers. Each converts its request into domain values, calls the
//! store, and converts the result back; nothing else happens here. What a
//! handler fails with becomes a `tonic::Status` in one place, [`error`].

mod access;
mod alias_proto;
mod collections;
mod consistency_proto;
mod deadline;
mod document_proto;
mod documents;
mod error;
mod filter_proto;
mod keys;
mod metadata_json;
mod search;
mod timestamp_proto;
mod upsert_stream;

pub use collections::CollectionsApi;
pub use documents::DocumentsApi;
pub use keys::KeysApi;
pub use search::SearchApi;

use std::pin::Pin;

use futures::Stream;
use tonic::Status;

/// A stream of responses, as tonic's server-streaming RPCs return them.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
