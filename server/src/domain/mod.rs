//! Domain values: parsed, valid forms of what requests carry. Holding one of
//! these means its rules were checked; the constructors are the only place
//! they are.

mod access;
mod alias;
mod collection;
mod consistency;
mod deadline;
mod document;
mod document_update;
mod filter;
mod invalid;
mod key_spec;
mod keyword_query;
mod search;
mod stream_progress;
mod vector_rules;

pub use access::{Access, AccessDenied, KeyGrant, KeyId, Role, show_time};
pub use alias::{Alias, AliasAction, AliasActions, AliasChange, AliasKind, UncheckedAliasAction};
pub use collection::{
    Collection, CollectionName, CollectionSpec, IndexBuild, IndexPrecision, IndexState, KeywordRanking, Metric,
    TextLanguage, VectorIndex,
};
pub use consistency::{ConsistencyToken, ReadConsistency};
pub use deadline::Deadline;
pub use document::{
    DocumentBatch, DocumentBatchBuilder, DocumentFields, Limits, MIN_BUFFERED_MESSAGE_BYTES, StoredDocument, StreamId,
    Tenant,
};
pub use document_update::{DocumentUpdate, MAX_DELETED_METADATA_KEYS, MetadataChange, MetadataToSet};
pub use filter::{
    Bound, CmpOp, Condition, Filter, MAX_FILTER_DEPTH, MAX_FILTER_KEY_BYTES, MAX_FILTER_NODES, MAX_FILTER_OPERANDS,
    MAX_FILTER_VALUES, Scalar,
};
pub use invalid::{FieldViolation, InvalidKind, InvalidRequest, Violations};
pub use key_spec::{KeyRequest, KeySpec, MAX_KEY_COLLECTIONS, MAX_KEY_DESCRIPTION_CHARS};
pub use keyword_query::KeywordQuery;
pub use search::{EfSearch, Fusion, MIN_HYBRID_CANDIDATES, SearchDefaults, SearchHitRow, SearchQuery, search_defaults};
pub use stream_progress::{BatchPosition, IdsDigest, MAX_POSITION, Sequence, StreamProgress};
pub use vector_rules::{MAX_SQUARED_NORM, VectorRules};
