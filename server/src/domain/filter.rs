//! Typed metadata filters, as a tree the store compiles to parameterised SQL.

use chrono::{DateTime, Utc};

/// A filter over documents: the domain form of `fathom.v1.Filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every operand matches (an empty list matches everything).
    All(Vec<Filter>),
    /// At least one operand matches (an empty list matches nothing).
    Any(Vec<Filter>),
    /// The operand does not match.
    Not(Box<Filter>),
    /// A condition on one metadata field, addressed by a path of keys.
    Field {
        /// Keys from the metadata root to the field, at least one.
        path: Vec<String>,
        /// What the field must satisfy.
        condition: Condition,
    },
    /// The document id is one of these.
    Ids(Vec<String>),
}

/// A condition on one metadata field. Each matches only documents that have
/// the field.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Equal to the value.
    Eq(Scalar),
    /// Present and not equal to the value.
    Ne(Scalar),
    /// Equal to one of the values.
    In(Vec<Scalar>),
    /// Present and equal to none of the values.
    NotIn(Vec<Scalar>),
    /// Ordered comparison with a number or a timestamp.
    Compare(CmpOp, Bound),
    /// Present.
    Exists,
    /// An array containing the value.
    Contains(Scalar),
}

/// A JSON scalar to compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    String(String),
    /// A finite number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The scalar as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::String(s) => serde_json::Value::String(s.clone()),
            Scalar::Number(n) => {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// Deepest nesting of a filter tree.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most nodes in a filter tree.
pub const MAX_FILTER_NODES: usize = 256;
/// Most operands of one `all` / `any` node.
pub const MAX_FILTER_OPERANDS: usize = 64;
/// Most values of one `in` / `not_in` list.
pub const MAX_FILTER_VALUES: usize = 1024;
/// Longest field key, in bytes.
pub const MAX_FILTER_KEY_BYTES: usize = 256;

/// An ordered comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// The operand of an ordered comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Compare JSON numbers.
    Number(f64),
    /// Compare RFC 3339 strings as instants.
    Timestamp(DateTime<Utc>),
}
