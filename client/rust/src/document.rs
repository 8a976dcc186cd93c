//! Building documents.

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

/// A JSON object as a `google.protobuf.Struct`.
pub fn json_to_struct(json: serde_json::Value) -> Result<prost_types::Struct, crate::Error> {
    match json {
        serde_json::Value::Object(map) => Ok(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
        other => Err(crate::Error::InvalidInput(format!(
            "metadata must be a JSON object, not {other}"
        ))),
    }
}

fn json_to_value(json: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `google.protobuf.Struct` as a JSON object.
pub fn struct_to_json(object: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        object
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(list.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(object)) => struct_to_json(object),
    }
}

/// Whole numbers print without a fraction (2020, not 2020.0), as they were written.
fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}
