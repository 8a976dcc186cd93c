//! Metadata between `google.protobuf.Struct` and JSON, under the server's
//! rules. The mapping itself is [`fathom_api::struct_json`]'s.

use std::fmt::Write as _;
use std::io;

use fathom_api::request_codec::{MAX_METADATA_DEPTH, metadata_too_deep};
use fathom_api::struct_json;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use serde::Serialize;

use crate::domain::InvalidRequest;

/// Renders metadata as JSON text for a jsonb column. Refuses what
/// PostgreSQL's jsonb cannot hold (NUL characters), what JSON cannot (NaN,
/// infinity: the shared mapping would store them as null), and nesting past
/// [`MAX_METADATA_DEPTH`]; the violation's field is the path inside the
/// metadata ("a.b[2]"), empty for the nesting.
pub fn struct_to_json(metadata: Option<&Struct>) -> Result<String, InvalidRequest> {
    let Some(object) = metadata else {
        return Ok("{}".to_owned());
    };
    if depth_of_object(object, MAX_METADATA_DEPTH + 1) > MAX_METADATA_DEPTH {
        return Err(InvalidRequest::field("", metadata_too_deep()));
    }
    check_object(object, &mut String::new())?;
    let mut json = Vec::new();
    struct_json::struct_to_json(object)
        .serialize(&mut serde_json::Serializer::with_formatter(&mut json, PlainDecimal))
        .expect("a JSON object always serialises");
    Ok(String::from_utf8(json).expect("serde_json writes UTF-8"))
}

/// serde_json's output, except that floats are written as Rust prints them:
/// in plain decimal (`10000000000000000`, `0.0000001`), without an exponent
/// or a trailing `.0`. jsonb keeps a written `.0` as the number's scale, and
/// the metadata size limit counts these bytes.
struct PlainDecimal;

impl serde_json::ser::Formatter for PlainDecimal {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write!(writer, "{value}")
    }
}

/// How deeply `object` nests, itself counted as 1 and each object or list
/// within one more; counting stops at `stop`.
fn depth_of_object(object: &Struct, stop: usize) -> usize {
    if stop <= 1 {
        return 1;
    }
    1 + object
        .fields
        .values()
        .map(|value| depth_of_value(value, stop - 1))
        .max()
        .unwrap_or(0)
}

/// How deeply `value` nests: 0 for a scalar, else as [`depth_of_object`].
fn depth_of_value(value: &Value, stop: usize) -> usize {
    match &value.kind {
        Some(Kind::StructValue(object)) => depth_of_object(object, stop),
        Some(Kind::ListValue(_)) if stop <= 1 => 1,
        Some(Kind::ListValue(list)) => {
            1 + list
                .values
                .iter()
                .map(|item| depth_of_value(item, stop - 1))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn check_object(object: &Struct, path: &mut String) -> Result<(), InvalidRequest> {
    for (key, value) in &object.fields {
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
        check_value(value, path)?;
        path.truncate(before);
    }
    Ok(())
}

fn check_value(value: &Value, path: &mut String) -> Result<(), InvalidRequest> {
    match &value.kind {
        Some(Kind::NumberValue(n)) if !n.is_finite() => {
            Err(InvalidRequest::field(path.clone(), format!("{n} is not a JSON number")))
        }
        Some(Kind::StringValue(s)) if s.contains('\0') => Err(InvalidRequest::field(
            path.clone(),
            "metadata strings must not contain NUL characters",
        )),
        Some(Kind::StructValue(object)) => check_object(object, path),
        Some(Kind::ListValue(list)) => {
            for (i, item) in list.values.iter().enumerate() {
                let before = path.len();
                let _ = write!(path, "[{i}]");
                check_value(item, path)?;
                path.truncate(before);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Metadata read from the database, as a Struct. The store writes only
/// objects of finite numbers (rendered by [`struct_to_json`]); anything the
/// shared mapping refuses becomes an empty Struct.
pub fn json_to_struct(json: serde_json::Value) -> Struct {
    struct_json::json_to_struct(json).unwrap_or_default()
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
    fn numbers_are_written_in_plain_decimal() {
        let number = |n: f64| Value {
            kind: Some(Kind::NumberValue(n)),
        };
        let metadata = Struct {
            fields: [
                ("huge".to_owned(), number(1e21)),
                ("tiny".to_owned(), number(1.5e-7)),
                ("whole".to_owned(), number(2020.0)),
                ("whole_beyond_2_53".to_owned(), number(9_007_199_254_740_992.0)),
            ]
            .into(),
        };
        assert_eq!(
            struct_to_json(Some(&metadata)).unwrap(),
            r#"{"huge":1000000000000000000000,"tiny":0.00000015,"whole":2020,"whole_beyond_2_53":9007199254740992}"#
        );
    }

    #[test]
    fn absent_metadata_is_an_empty_object() {
        assert_eq!(struct_to_json(None).unwrap(), "{}");
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_path() {
        let list = Value {
            kind: Some(Kind::ListValue(prost_types::ListValue {
                values: vec![
                    string("fine"),
                    Value {
                        kind: Some(Kind::NumberValue(f64::NAN)),
                    },
                ],
            })),
        };
        let metadata = Struct {
            fields: [("scores".to_owned(), list)].into(),
        };
        let err = struct_to_json(Some(&metadata)).unwrap_err();
        assert_eq!(err.violations[0].field, "scores[1]");
        assert_eq!(err.violations[0].description, "NaN is not a JSON number");
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

    #[test]
    fn metadata_nests_at_most_the_limit_counting_objects_and_lists() {
        let objects = |depth: usize| {
            let mut json = serde_json::json!({"leaf": 1});
            for _ in 1..depth {
                json = serde_json::json!({ "a": json });
            }
            json
        };
        assert!(struct_to_json(Some(&json_to_struct(objects(MAX_METADATA_DEPTH)))).is_ok());
        // A list is a level too: an object, a list, then MAX - 1 levels.
        let past = serde_json::json!({ "a": [objects(MAX_METADATA_DEPTH - 1)] });
        let error = struct_to_json(Some(&json_to_struct(past))).unwrap_err();
        assert_eq!(error.violations[0].field, "", "the caller names the metadata");
        assert!(error.violations[0].description.contains("the limit is 20"), "{error}");
        assert!(struct_to_json(Some(&json_to_struct(objects(100)))).is_err());
    }
}
