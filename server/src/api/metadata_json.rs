//! Metadata between `google.protobuf.Struct` and JSON.

use std::fmt::Write;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use crate::domain::InvalidRequest;

/// Renders a Struct as JSON text in one pass. Refuses what PostgreSQL's
/// jsonb cannot hold (NUL characters) and what JSON cannot (NaN, infinity);
/// the violation's field is the path inside the metadata ("a.b[2]").
pub fn struct_to_json(metadata: Option<&Struct>) -> Result<String, InvalidRequest> {
    let mut out = String::new();
    match metadata {
        None => out.push_str("{}"),
        Some(object) => write_object(&mut out, object, &mut String::new())?,
    }
    Ok(out)
}

fn write_object(out: &mut String, object: &Struct, path: &mut String) -> Result<(), InvalidRequest> {
    out.push('{');
    for (i, (key, value)) in object.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let before = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        if key.contains('\0') {
            return Err(InvalidRequest::field(
                path.clone(),
                "metadata keys must not contain NUL characters",
            ));
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value, path)?;
        path.truncate(before);
    }
    out.push('}');
    Ok(())
}

fn write_value(out: &mut String, value: &Value, path: &mut String) -> Result<(), InvalidRequest> {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => out.push_str("null"),
        Some(Kind::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Kind::NumberValue(n)) => {
            if !n.is_finite() {
                return Err(InvalidRequest::field(path.clone(), format!("{n} is not a JSON number")));
            }
            let _ = write!(out, "{n}");
        }
        Some(Kind::StringValue(s)) => {
            if s.contains('\0') {
                return Err(InvalidRequest::field(
                    path.clone(),
                    "metadata strings must not contain NUL characters",
                ));
            }
            write_string(out, s);
        }
        Some(Kind::StructValue(object)) => write_object(out, object, path)?,
        Some(Kind::ListValue(list)) => {
            out.push('[');
            for (i, item) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let before = path.len();
                let _ = write!(path, "[{i}]");
                write_value(out, item, path)?;
                path.truncate(before);
            }
            out.push(']');
        }
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    // serde_json's escaping, without building a serde_json::Value first.
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}

/// A JSON object read from the database, as a Struct. Non-objects (which
/// the store never writes) become an empty Struct.
pub fn json_to_struct(json: serde_json::Value) -> Struct {
    match json {
        serde_json::Value::Object(map) => Struct {
            fields: map.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        },
        _ => Struct::default(),
    }
}

fn json_to_value(json: serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        object @ serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(object)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    #[test]
    fn structs_round_trip_through_json() {
        let json = serde_json::json!({"a": 1.5, "b": [true, null, "x\"y"], "c": {"d": "e"}});
        let rendered = struct_to_json(Some(&json_to_struct(json.clone()))).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&rendered).unwrap(), json);
    }

    #[test]
    fn nul_characters_are_refused_with_their_path() {
        let inner = Struct {
            fields: [("k".to_owned(), string("a\0b"))].into(),
        };
        let outer = Struct {
            fields: [(
                "o".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(inner)),
                },
            )]
            .into(),
        };
        let err = struct_to_json(Some(&outer)).unwrap_err();
        assert_eq!(err.violations[0].field, "o.k");
    }
}
