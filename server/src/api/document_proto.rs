//! Conversions between proto documents and domain values, in one place
//! for every handler.

use fathom_api::v1 as pb;

use super::metadata_json::{json_to_struct, struct_to_json};
use crate::domain::{
    Collection, DocumentBatch, DocumentBatchBuilder, DocumentFields, DocumentUpdate, InvalidRequest, Limits,
    MetadataToSet, SearchHitRow, StoredDocument, Tenant, VectorRules,
};

/// Validates a batch of proto documents for `collection`, moving their
/// vectors and texts into the batch without copying.
pub(super) fn batch_from_proto(
    documents: Vec<pb::Document>,
    encoded_bytes: usize,
    collection: &Collection,
    tenant: &Tenant,
    limits: &Limits,
) -> Result<DocumentBatch, InvalidRequest> {
    let mut builder = DocumentBatchBuilder::new(
        VectorRules::of(&collection.spec),
        documents.len(),
        encoded_bytes,
        limits,
    );
    for (index, document) in documents.into_iter().enumerate() {
        if !document.tenant.is_empty() && document.tenant != tenant.as_str() {
            builder.reject(
                format!("documents[{index}].tenant"),
                "a document's tenant must be empty or equal to the request's tenant",
            );
        }
        let metadata = struct_to_json(document.metadata.as_ref());
        builder.push(index, document.id, document.vector, document.text, metadata);
    }
    builder.finish()
}

/// Validates what an Update changes (its selector is read apart).
pub(super) fn update_from_proto(request: pb::UpdateRequest, limits: &Limits) -> Result<DocumentUpdate, InvalidRequest> {
    let set_metadata = request.set_metadata.map(|object| MetadataToSet {
        json: struct_to_json(Some(&object)),
        keys: object.fields.into_keys().collect(),
    });
    DocumentUpdate::parse(
        request.text,
        set_metadata,
        request.replace_metadata,
        request.delete_metadata_keys,
        limits,
    )
}

/// Checks a request's list of ids: 1 to `Limits::max_ids`, no NUL characters.
pub(super) fn check_ids(ids: &[String], field: &str, limits: &Limits) -> Result<(), InvalidRequest> {
    if ids.is_empty() || ids.len() > limits.max_ids {
        return Err(InvalidRequest::field(
            field,
            format!("{} ids; give 1 to {}", ids.len(), limits.max_ids),
        ));
    }
    if let Some(i) = ids.iter().position(|id| id.contains('\0')) {
        return Err(InvalidRequest::field(
            format!("{field}[{i}]"),
            "ids must not contain NUL characters",
        ));
    }
    Ok(())
}

/// The fields an Include chooses, or `default` when it is unset.
pub(super) fn fields_of(include: Option<pb::Include>, default: DocumentFields) -> DocumentFields {
    include.map_or(default, |i| DocumentFields {
        text: i.text,
        metadata: i.metadata,
        vector: i.vector,
    })
}

/// A stored document as the proto message.
pub(super) fn document_to_proto(document: StoredDocument) -> pb::Document {
    pb::Document {
        id: document.id,
        vector: document.vector.unwrap_or_default(),
        text: document.text.unwrap_or_default(),
        metadata: document.metadata.map(json_to_struct),
        tenant: document.tenant,
    }
}

/// A search hit as the proto message.
pub(super) fn hit_to_proto(hit: SearchHitRow) -> pb::SearchHit {
    let leg = |leg: Option<(u32, f64)>| leg.map(|(rank, score)| pb::LegResult { rank, score });
    pb::SearchHit {
        id: hit.id,
        score: hit.score,
        vector_leg: leg(hit.vector_leg),
        text_leg: leg(hit.text_leg),
        text: hit.text.unwrap_or_default(),
        metadata: hit.metadata.map(json_to_struct),
        vector: hit.vector.unwrap_or_default(),
        tenant: hit.tenant,
    }
}
