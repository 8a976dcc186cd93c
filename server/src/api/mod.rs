//! gRPC handlers. Each converts its request into domain values, calls the
//! store, and converts the result back; nothing else happens here.

mod collections;
mod deadline;
mod documents;
mod filter_proto;
mod metadata_json;
mod search;
mod upsert_stream;

pub use collections::CollectionsApi;
pub use documents::DocumentsApi;
pub use search::SearchApi;
