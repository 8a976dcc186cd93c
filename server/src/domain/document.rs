//! Documents and the batches they are written in.

use std::collections::HashSet;

use super::{InvalidKind, InvalidRequest, VectorRules, Violations};

/// Configurable limits on what one request may carry. Every limit has a
/// default that suits embeddings of up to a few thousand dimensions.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most documents in one batch (stream batch or `Upsert`).
    pub max_batch_documents: usize,
    /// Most encoded bytes in one batch.
    pub max_batch_bytes: usize,
    /// Longest document id, in bytes.
    pub max_id_bytes: usize,
    /// Longest tenant, in bytes.
    pub max_tenant_bytes: usize,
    /// Longest document text, in bytes.
    pub max_text_bytes: usize,
    /// Largest metadata object, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Largest gRPC message the server decodes.
    pub max_message_bytes: usize,
    /// Most ids in one `Get`, `Delete` or id filter.
    pub max_ids: usize,
    /// Largest search `limit`.
    pub max_search_limit: u32,
    /// Largest per-leg candidate depth.
    pub max_candidates: u32,
    /// Longest search text, in bytes.
    pub max_query_text_bytes: usize,
    /// Bytes of decoded messages an UpsertStream reads ahead of the
    /// database (each message counted as at least
    /// `MIN_BUFFERED_MESSAGE_BYTES`): the rest waits in HTTP/2 flow control,
    /// so memory per stream stays bounded. Reading ahead by bytes, not by
    /// batches, lets a client pipeline thousands of small batches: left in
    /// HTTP/2's buffers, their small frames would trip its guard against
    /// small-frame floods and close the whole connection.
    pub stream_buffered_bytes: usize,
    /// How long an UpsertStream may go without a message from its client
    /// before it is ended (UNAVAILABLE, resumable): an idle stream holds a
    /// stream permit that others could use.
    pub stream_idle_timeout: std::time::Duration,
}

/// The least a buffered UpsertStream message counts against
/// [`Limits::stream_buffered_bytes`]: what HTTP/2 (h2) charges a small frame.
pub const MIN_BUFFERED_MESSAGE_BYTES: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_documents: 1000,
            max_batch_bytes: 32 * 1024 * 1024,
            max_id_bytes: 256,
            max_tenant_bytes: 256,
            max_text_bytes: 1024 * 1024,
            max_metadata_bytes: 64 * 1024,
            max_message_bytes: 64 * 1024 * 1024,
            max_ids: 10_000,
            max_search_limit: 1000,
            max_candidates: 10_000,
            max_query_text_bytes: 4096,
            stream_buffered_bytes: 64 * 1024 * 1024,
            stream_idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// The tenant a request acts for: empty in collections without tenants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// Resolves the tenant a request names against its collection: required
    /// (1 to `max_bytes`, no NUL) in multi-tenant collections, refused in others.
    pub fn for_collection(
        field: &str,
        tenant: &str,
        multi_tenant: bool,
        max_bytes: usize,
    ) -> Result<Self, InvalidRequest> {
        match (multi_tenant, tenant.is_empty()) {
            (true, true) => Err(InvalidRequest::field(
                field,
                "this collection is multi-tenant: name the tenant",
            )),
            (false, false) => Err(InvalidRequest::with_kind(
                InvalidKind::FailedPrecondition,
                field,
                "this collection has no tenants: leave the tenant empty",
            )),
            (true, false) if tenant.len() > max_bytes => Err(InvalidRequest::field(
                field,
                format!("tenant is {} bytes; the limit is {max_bytes}", tenant.len()),
            )),
            (true, false) if tenant.contains('\0') => {
                Err(InvalidRequest::field(field, "tenant contains a NUL character"))
            }
            _ => Ok(Self(tenant.to_owned())),
        }
    }

    /// The tenant as stored ("" for none).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen id that makes an UpsertStream resumable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId(String);

impl StreamId {
    /// Parses a stream id: 1 to 128 characters of `[A-Za-z0-9._:-]`.
    pub fn parse(field: &str, id: &str) -> Result<Self, InvalidRequest> {
        let valid = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(InvalidRequest::field(
                field,
                "a stream id is 1 to 128 characters of ASCII letters, digits, '-', '_', '.' and ':'",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated batch of documents, held column by column: the shape the
/// store binds as arrays, so nothing is copied between decoding and sending.
#[derive(Debug, Default)]
pub struct DocumentBatch {
    /// Document ids, distinct.
    pub ids: Vec<String>,
    /// Vectors, each of the collection's dimension and finite.
    pub vectors: Vec<Vec<f32>>,
    /// Texts.
    pub texts: Vec<String>,
    /// Metadata objects as JSON text.
    pub metadata: Vec<String>,
}

impl DocumentBatch {
    /// Removes the first `n` documents (those a stream committed already).
    pub fn drop_first(&mut self, n: usize) {
        self.ids.drain(..n);
        self.vectors.drain(..n);
        self.texts.drain(..n);
        self.metadata.drain(..n);
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Checks documents one by one and gathers the valid ones into a batch,
/// recording every violation with the document's index.
pub struct DocumentBatchBuilder<'a> {
    vector_rules: VectorRules,
    limits: &'a Limits,
    batch: DocumentBatch,
    seen: HashSet<String>,
    violations: Violations,
}

impl<'a> DocumentBatchBuilder<'a> {
    /// Starts a batch of `count` documents for a collection whose vectors
    /// follow `vector_rules`. The count and encoded size are checked here,
    /// before any document is.
    pub fn new(vector_rules: VectorRules, count: usize, encoded_bytes: usize, limits: &'a Limits) -> Self {
        let mut violations = Violations::default();
        if count == 0 {
            violations.add("documents", "a batch needs at least one document");
        } else if count > limits.max_batch_documents {
            violations.add_kind(
                InvalidKind::ResourceExhausted,
                "documents",
                format!(
                    "batch has {count} documents; the limit is {}",
                    limits.max_batch_documents
                ),
            );
        }
        if encoded_bytes > limits.max_batch_bytes {
            violations.add_kind(
                InvalidKind::ResourceExhausted,
                "documents",
                format!(
                    "batch is {encoded_bytes} bytes; the limit is {}",
                    limits.max_batch_bytes
                ),
            );
        }
        let capacity = count.min(limits.max_batch_documents);
        Self {
            vector_rules,
            limits,
            batch: DocumentBatch {
                ids: Vec::with_capacity(capacity),
                vectors: Vec::with_capacity(capacity),
                texts: Vec::with_capacity(capacity),
                metadata: Vec::with_capacity(capacity),
            },
            seen: HashSet::with_capacity(capacity),
            violations,
        }
    }

    /// Checks one document; `index` is its position in the request. The
    /// metadata arrives already rendered as JSON text, or refused.
    pub fn push(
        &mut self,
        index: usize,
        id: String,
        vector: Vec<f32>,
        text: String,
        metadata: Result<String, InvalidRequest>,
    ) {
        let at = |field: &str| format!("documents[{index}].{field}");
        let limits = self.limits;
        if id.is_empty() {
            self.violations.add(at("id"), "an id is required");
        } else if id.len() > limits.max_id_bytes {
            self.violations.add(
                at("id"),
                format!("id is {} bytes; the limit is {}", id.len(), limits.max_id_bytes),
            );
        } else if id.contains('\0') {
            self.violations.add(at("id"), "id contains a NUL character");
        } else if !self.seen.insert(id.clone()) {
            self.violations
                .add(at("id"), format!("id {id:?} appears more than once in this batch"));
        }
        if let Err(problem) = self.vector_rules.check(&vector) {
            self.violations.add(at("vector"), problem);
        }
        check_text(&text, &at("text"), limits, &mut self.violations);
        let metadata = check_metadata(metadata, &at("metadata"), limits, &mut self.violations);
        if self.violations.is_empty() {
            self.batch.ids.push(id);
            self.batch.vectors.push(vector);
            self.batch.texts.push(text);
            self.batch.metadata.push(metadata.unwrap_or_default());
        }
    }

    /// Refuses the batch for a reason found outside [`Self::push`].
    pub fn reject(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.add(field, description);
    }

    /// The batch, or every violation found.
    pub fn finish(self) -> Result<DocumentBatch, InvalidRequest> {
        let batch = self.batch;
        self.violations.finish(|| batch)
    }
}

/// Checks a document's text: at most `Limits::max_text_bytes`, no NUL.
pub(super) fn check_text(text: &str, field: &str, limits: &Limits, violations: &mut Violations) {
    if text.len() > limits.max_text_bytes {
        violations.add_kind(
            InvalidKind::ResourceExhausted,
            field,
            format!("text is {} bytes; the limit is {}", text.len(), limits.max_text_bytes),
        );
    } else if text.contains('\0') {
        violations.add(field, "text contains a NUL character");
    }
}

/// Checks a document's metadata, already rendered as JSON text (or refused
/// while it was, with fields relative to the metadata): at most
/// `Limits::max_metadata_bytes`. Returns the JSON if it is valid.
pub(super) fn check_metadata(
    metadata: Result<String, InvalidRequest>,
    field: &str,
    limits: &Limits,
    violations: &mut Violations,
) -> Option<String> {
    let json = violations.take(metadata.map_err(|invalid| prefix(invalid, field)))?;
    if json.len() > limits.max_metadata_bytes {
        violations.add_kind(
            InvalidKind::ResourceExhausted,
            field,
            format!(
                "metadata is {} bytes as JSON; the limit is {}",
                json.len(),
                limits.max_metadata_bytes
            ),
        );
        return None;
    }
    Some(json)
}

/// Puts a path in front of every violation's field (`documents[3].metadata` + `.a.b`).
fn prefix(mut invalid: InvalidRequest, path: &str) -> InvalidRequest {
    for v in &mut invalid.violations {
        v.field = if v.field.is_empty() {
            path.to_owned()
        } else {
            format!("{path}.{}", v.field)
        };
    }
    invalid
}

/// Which optional fields a read returns; the id always comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentFields {
    /// Return the text.
    pub text: bool,
    /// Return the metadata.
    pub metadata: bool,
    /// Return the vector.
    pub vector: bool,
}

impl DocumentFields {
    /// Every field.
    pub const ALL: Self = Self {
        text: true,
        metadata: true,
        vector: true,
    };
}

/// A document as read back from the store; unrequested fields are empty.
#[derive(Debug, Clone, Default)]
pub struct StoredDocument {
    /// The id.
    pub id: String,
    /// The tenant ("" for none).
    pub tenant: String,
    /// The vector, if requested.
    pub vector: Option<Vec<f32>>,
    /// The text, if requested.
    pub text: Option<String>,
    /// The metadata, if requested.
    pub metadata: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(docs: Vec<(&str, Vec<f32>)>) -> Result<DocumentBatch, InvalidRequest> {
        let limits = Limits::default();
        let rules = VectorRules {
            dimension: 2,
            metric: crate::domain::Metric::Cosine,
            half_precision: false,
        };
        let mut builder = DocumentBatchBuilder::new(rules, docs.len(), 0, &limits);
        for (i, (id, v)) in docs.into_iter().enumerate() {
            builder.push(i, id.to_owned(), v, String::new(), Ok("{}".to_owned()));
        }
        builder.finish()
    }

    #[test]
    fn a_bad_vector_is_reported_with_its_index() {
        let err = batch_of(vec![("a", vec![1.0, 2.0]), ("b", vec![f32::NAN, 1.0])]).unwrap_err();
        assert_eq!(err.violations[0].field, "documents[1].vector");
        assert!(err.violations[0].description.contains("finite"));
    }

    #[test]
    fn duplicate_ids_in_one_batch_are_refused() {
        let err = batch_of(vec![("a", vec![1.0, 2.0]), ("a", vec![1.0, 2.0])]).unwrap_err();
        assert_eq!(err.violations[0].field, "documents[1].id");
    }

    #[test]
    fn a_tenant_is_required_exactly_where_the_collection_has_tenants() {
        assert!(Tenant::for_collection("tenant", "", true, 256).is_err());
        assert_eq!(
            Tenant::for_collection("tenant", "acme", false, 256).unwrap_err().kind,
            InvalidKind::FailedPrecondition
        );
        assert_eq!(
            Tenant::for_collection("tenant", "acme", true, 256).unwrap().as_str(),
            "acme"
        );
    }
}
