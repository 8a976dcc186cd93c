//! Building documents.

use fathom_api::struct_json::{self, JsonToStructError};

use crate::proto;

/// A document to write: an id, a vector, optional text, metadata and tenant.
/// Converts into the wire type with `From`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document(pub proto::Document);

impl Document {
    /// A document with an id and a vector.
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        Self(proto::Document {
            id: id.into(),
            vector,
            ..Default::default()
        })
    }

    /// Sets the text (indexed for keyword search).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.0.text = text.into();
        self
    }

    /// Sets the metadata from a JSON object; other JSON values are refused.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Result<Self, crate::Error> {
        self.0.metadata = Some(json_to_struct(metadata)?);
        Ok(self)
    }

    /// Sets the tenant (multi-tenant collections).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.0.tenant = tenant.into();
        self
    }
}

impl From<Document> for proto::Document {
    fn from(document: Document) -> Self {
        document.0
    }
}

impl From<proto::Document> for Document {
    fn from(document: proto::Document) -> Self {
        Self(document)
    }
}

/// A JSON object as a `google.protobuf.Struct` ([`fathom_api::struct_json`]'s
/// mapping); other JSON values are refused.
pub fn json_to_struct(json: serde_json::Value) -> Result<prost_types::Struct, crate::Error> {
    struct_json::json_to_struct(json).map_err(|error| match error {
        JsonToStructError::NotAnObject(other) => {
            crate::Error::InvalidInput(format!("metadata must be a JSON object, not {other}"))
        }
        out_of_range => crate::Error::InvalidInput(format!("metadata {out_of_range}")),
    })
}
