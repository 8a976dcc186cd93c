//! The JSON Lines format of `fathom import` and `fathom export`: one
//! document per line, `{"id", "vector", "text", "metadata", "tenant"}`.

use fathom_client::{Document, proto, struct_to_json};
use serde::{Deserialize, Serialize};

/// One line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    /// The id.
    pub id: String,
    /// The vector. f32 values print in their shortest form that reads back
    /// bit for bit.
    pub vector: Vec<f32>,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// The metadata object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// The tenant (multi-tenant collections).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
}

impl Record {
    /// Parses one line; the error names the line.
    pub fn parse(line: &str, number: u64) -> anyhow::Result<Self> {
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("line {number}: {e}"))
    }

    /// The record as a document to write.
    pub fn into_document(self, number: u64) -> anyhow::Result<Document> {
        let mut document = Document::new(self.id, self.vector).text(self.text).tenant(self.tenant);
        if let Some(metadata) = self.metadata {
            document = document
                .metadata(metadata)
                .map_err(|e| anyhow::anyhow!("line {number}: {e}"))?;
        }
        Ok(document)
    }

    /// A stored document as a record.
    pub fn from_document(document: proto::Document) -> Self {
        Record {
            id: document.id,
            vector: document.vector,
            text: document.text,
            metadata: Some(
                document
                    .metadata
                    .as_ref()
                    .map_or_else(|| serde_json::json!({}), struct_to_json),
            ),
            tenant: document.tenant,
        }
    }
}
