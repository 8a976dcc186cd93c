//! `google.protobuf.Struct` as JSON and back: the one mapping that the
//! server, the Rust client and the tests use for document metadata.
//!
//! Struct to JSON always succeeds: whole numbers below 2^53 become JSON
//! integers (`2020`, not `2020.0`), other finite numbers JSON floats, and NaN
//! and infinities, which JSON has no numbers for, `null`. JSON to Struct
//! refuses what a Struct cannot hold: a top level that is not an object, and
//! numbers without a finite f64 value (which serde_json produces only with
//! its `arbitrary_precision` feature).
//!
//! Neither direction applies anyone's limits; a caller that has rules (the
//! server refuses NaN and NUL characters) checks them itself.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// Why a JSON value has no `google.protobuf.Struct` form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonToStructError {
    /// The top level is not a JSON object; the value is handed back.
    #[error("a Struct is a JSON object, not {0}")]
    NotAnObject(serde_json::Value),
    /// A number has no finite 64-bit float value.
    #[error("{path}: {number} does not fit a 64-bit float")]
    NumberOutOfRange {
        /// Where the number is, from the top-level object: `a.b[2]`.
        path: String,
        /// The number as it was read.
        number: serde_json::Number,
    },
}

impl JsonToStructError {
    /// The same error, seen from the object or list one level up, whose
    /// `segment` (a key, or `[i]`) leads to where it was found.
    fn within(self, segment: &str) -> Self {
        match self {
            Self::NumberOutOfRange { path, number } => {
                let path = if path.is_empty() || path.starts_with('[') {
                    format!("{segment}{path}")
                } else {
                    format!("{segment}.{path}")
                };
                Self::NumberOutOfRange { path, number }
            }
            not_an_object => not_an_object,
        }
    }
}

/// A JSON object as a `google.protobuf.Struct` (whose fields are sorted by key).
pub fn json_to_struct(json: serde_json::Value) -> Result<Struct, JsonToStructError> {
    match json {
        serde_json::Value::Object(object) => object_to_struct(object),
        other => Err(JsonToStructError::NotAnObject(other)),
    }
}

fn object_to_struct(object: serde_json::Map<String, serde_json::Value>) -> Result<Struct, JsonToStructError> {
    let fields = object
        .into_iter()
        .map(|(key, value)| match json_to_value(value) {
            Ok(value) => Ok((key, value)),
            Err(error) => Err(error.within(&key)),
        })
        .collect::<Result<_, _>>()?;
    Ok(Struct { fields })
}

fn json_to_value(json: serde_json::Value) -> Result<Value, JsonToStructError> {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(number) => match number.as_f64() {
            Some(n) => Kind::NumberValue(n),
            None => {
                return Err(JsonToStructError::NumberOutOfRange {
                    path: String::new(),
                    number,
                });
            }
        },
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => {
            let values = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| json_to_value(item).map_err(|error| error.within(&format!("[{i}]"))))
                .collect::<Result<_, _>>()?;
            Kind::ListValue(ListValue { values })
        }
        serde_json::Value::Object(object) => Kind::StructValue(object_to_struct(object)?),
    };
    Ok(Value { kind: Some(kind) })
}

/// A `google.protobuf.Struct` as a JSON object, its keys in sorted order.
pub fn struct_to_json(object: &Struct) -> serde_json::Value {
    serde_json::Value::Object(
        object
            .fields
            .iter()
            .map(|(key, value)| (key.clone(), value_to_json(value)))
            .collect(),
    )
}

fn value_to_json(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(list.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(object)) => struct_to_json(object),
    }
}

/// Whole numbers print without a fraction (2020, not 2020.0), as they were
/// written; NaN and infinities, which JSON cannot write, become null.
fn number_to_json(n: f64) -> serde_json::Value {
    const LARGEST_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < LARGEST_EXACT_INTEGER {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn number(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    fn object(fields: Vec<(&str, Value)>) -> Struct {
        Struct {
            fields: fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect(),
        }
    }

    #[test]
    fn json_objects_round_trip_through_structs() {
        let json = json!({
            "title": "über \"quoted\"",
            "year": 2020,
            "score": -1.5,
            "draft": false,
            "editor": null,
            "tags": ["a", 1, [true], {"deep": {"deeper": []}}],
            "author": {"name": "Ada", "born": 1815},
        });
        let object = json_to_struct(json.clone()).unwrap();
        assert_eq!(struct_to_json(&object), json);
    }

    #[test]
    fn keys_come_out_sorted() {
        // A Struct holds its fields in a BTreeMap.
        let object = json_to_struct(json!({"z": 1, "a": 2, "m": 3})).unwrap();
        assert_eq!(struct_to_json(&object).to_string(), r#"{"a":2,"m":3,"z":1}"#);
    }

    #[test]
    fn json_numbers_become_f64() {
        let object = json_to_struct(json!({"int": 3, "big": u64::MAX, "float": 0.1})).unwrap();
        assert_eq!(object.fields["int"], number(3.0));
        assert_eq!(object.fields["big"], number(u64::MAX as f64));
        assert_eq!(object.fields["float"], number(0.1));
    }

    #[test]
    fn whole_numbers_become_json_integers_below_two_to_the_53() {
        let object = object(vec![
            ("year", number(2020.0)),
            ("negative", number(-7.0)),
            ("largest_exact", number(9_007_199_254_740_991.0)),
            ("too_large_for_exact", number(1e20)),
            ("fraction", number(0.25)),
        ]);
        // serde_json's integers and floats compare unequal: 2020 is not 2020.0.
        assert_eq!(
            struct_to_json(&object),
            json!({
                "year": 2020,
                "negative": -7,
                "largest_exact": 9_007_199_254_740_991_i64,
                "too_large_for_exact": 1e20,
                "fraction": 0.25,
            })
        );
    }

    #[test]
    fn numbers_json_cannot_write_become_null() {
        let object = object(vec![
            ("nan", number(f64::NAN)),
            ("infinity", number(f64::INFINITY)),
            ("minus_infinity", number(f64::NEG_INFINITY)),
        ]);
        assert_eq!(
            struct_to_json(&object),
            json!({"nan": null, "infinity": null, "minus_infinity": null})
        );
    }

    #[test]
    fn values_without_a_kind_become_null() {
        let object = object(vec![("unset", Value { kind: None })]);
        assert_eq!(struct_to_json(&object), json!({"unset": null}));
    }

    #[test]
    fn only_objects_become_structs() {
        for json in [json!(null), json!(1), json!("text"), json!([1, 2]), json!(true)] {
            assert_eq!(json_to_struct(json.clone()), Err(JsonToStructError::NotAnObject(json)));
        }
    }

    #[test]
    fn the_path_of_an_error_leads_from_the_top_level_object() {
        let number = serde_json::Number::from(1);
        let found = || JsonToStructError::NumberOutOfRange {
            path: String::new(),
            number: number.clone(),
        };
        let path = |error: JsonToStructError| match error {
            JsonToStructError::NumberOutOfRange { path, .. } => path,
            other => panic!("expected NumberOutOfRange, got {other:?}"),
        };
        assert_eq!(path(found().within("a")), "a");
        assert_eq!(path(found().within("[2]").within("b").within("a")), "a.b[2]");
        assert_eq!(path(found().within("c").within("[0]").within("a")), "a[0].c");
        assert_eq!(path(found().within("[1]").within("[0]").within("list")), "list[0][1]");
    }
}
