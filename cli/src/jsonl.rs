//! The JSON Lines format of `fathom import` and `fathom export` (and of the
//! documents of `fathom collections snapshot`): one document per line,
//! `{"id", "vector", "text", "metadata", "tenant"}`.

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
    /// Parses one line; the error names the line and the column (serde's
    /// own "at line 1" would name the line within the line).
    pub fn parse(line: &str, number: u64) -> anyhow::Result<Self> {
        serde_json::from_str(line).map_err(|e| {
            let full = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            let what = full.strip_suffix(&at).unwrap_or(&full);
            match e.classify() {
                serde_json::error::Category::Data => {
                    anyhow::anyhow!("line {number}: {what} (column {})", e.column())
                }
                _ => anyhow::anyhow!("line {number}: not valid JSON: {what} at column {}", e.column()),
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named_with_its_column_only() {
        let error = Record::parse("{id: 1}", 2).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: not valid JSON: key must be a string at column 2"
        );
    }

    #[test]
    fn a_line_missing_a_field_says_which() {
        let error = Record::parse(r#"{"id": "a"}"#, 3).unwrap_err();
        assert_eq!(error.to_string(), "line 3: missing field `vector` (column 11)");
    }

    #[test]
    fn every_finite_f32_reads_back_from_a_line_bit_for_bit() {
        let mut vector = vec![
            0.0,
            -0.0,
            0.1,
            f32::MIN_POSITIVE,
            f32::from_bits(1), // the smallest subnormal
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            16_777_217.0,
        ];
        // xorshift64: bit patterns over every exponent, subnormals included.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        while vector.len() < 200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f32::from_bits(state as u32);
            if value.is_finite() {
                vector.push(value);
            }
        }
        let record = Record {
            id: "a".into(),
            vector: vector.clone(),
            text: String::new(),
            metadata: None,
            tenant: String::new(),
        };
        let line = serde_json::to_string(&record).unwrap();
        let back = Record::parse(&line, 1).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.vector), bits(&vector));
    }
}
