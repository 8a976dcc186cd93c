//! Filters that read naturally:
//! `field("year").gte(2020).and(field("lang").eq("en"))`, or from the
//! MongoDB-style JSON most users know:
//! `{"year": {"$gte": 2020}, "$or": [{"lang": "en"}, {"lang": "de"}]}`.

use chrono::{DateTime, Utc};
use fathom_api::v1 as pb;
use pb::field_condition::Condition;

use crate::Error;

/// A filter over document metadata and ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(pub pb::Filter);

impl Filter {
    /// Both filters match.
    pub fn and(self, other: Filter) -> Filter {
        Filter::all(flatten(self, other, |n| matches!(n, pb::filter::Node::All(_))))
    }

    /// Either filter matches.
    pub fn or(self, other: Filter) -> Filter {
        Filter::any(flatten(self, other, |n| matches!(n, pb::filter::Node::Any(_))))
    }

    /// The filter does not match.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter(pb::Filter {
            node: Some(pb::filter::Node::Not(Box::new(self.0))),
        })
    }

    /// Every filter matches (an empty list matches everything).
    pub fn all(filters: Vec<Filter>) -> Filter {
        let list = pb::FilterList {
            filters: filters.into_iter().map(|f| f.0).collect(),
        };
        Filter(pb::Filter {
            node: Some(pb::filter::Node::All(list)),
        })
    }

    /// At least one filter matches (an empty list matches nothing).
    pub fn any(filters: Vec<Filter>) -> Filter {
        let list = pb::FilterList {
            filters: filters.into_iter().map(|f| f.0).collect(),
        };
        Filter(pb::Filter {
            node: Some(pb::filter::Node::Any(list)),
        })
    }

    /// The document id is one of these.
    pub fn ids<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Filter {
        let ids = pb::IdCondition {
            ids: ids.into_iter().map(Into::into).collect(),
        };
        Filter(pb::Filter {
            node: Some(pb::filter::Node::Ids(ids)),
        })
    }

    /// Parses the MongoDB-style JSON syntax (see the module docs): a bare
    /// value means `$eq`; several keys in one object are ANDed; operators are
    /// `$eq $ne $in $nin $gt $gte $lt $lte $exists $contains`, and `$and`,
    /// `$or`, `$not` combine; `{"$id": {"$in": [...]}}` matches ids. Range
    /// bounds that are RFC 3339 strings compare as timestamps.
    pub fn from_json(json: &serde_json::Value) -> Result<Filter, Error> {
        parse_object(json, "filter")
    }

    /// The wire form.
    pub fn into_proto(self) -> pb::Filter {
        self.0
    }
}

fn flatten(a: Filter, b: Filter, same: impl Fn(&pb::filter::Node) -> bool) -> Vec<Filter> {
    let mut out = Vec::new();
    for f in [a, b] {
        match f.0.node {
            Some(node) if same(&node) => match node {
                pb::filter::Node::All(list) | pb::filter::Node::Any(list) => {
                    out.extend(list.filters.into_iter().map(Filter));
                }
                _ => unreachable!("`same` accepts only lists"),
            },
            node => out.push(Filter(pb::Filter { node })),
        }
    }
    out
}

/// A metadata field to test: start of a condition.
#[derive(Debug, Clone)]
pub struct Field(String);

/// A metadata field by key (dotted for nested objects: `"author.name"`).
pub fn field(key: impl Into<String>) -> Field {
    Field(key.into())
}

/// A JSON scalar to compare with.
pub struct Scalar(pb::Scalar);

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar(pb::Scalar {
            kind: Some(pb::scalar::Kind::StringValue(s.to_owned())),
        })
    }
}
impl From<String> for Scalar {
    fn from(s: String) -> Self {
        Scalar(pb::Scalar {
            kind: Some(pb::scalar::Kind::StringValue(s)),
        })
    }
}
impl From<bool> for Scalar {
    fn from(b: bool) -> Self {
        Scalar(pb::Scalar {
            kind: Some(pb::scalar::Kind::BoolValue(b)),
        })
    }
}
macro_rules! number_scalar {
    ($($t:ty),*) => {$(
        impl From<$t> for Scalar {
            fn from(n: $t) -> Self {
                Scalar(pb::Scalar { kind: Some(pb::scalar::Kind::NumberValue(n as f64)) })
            }
        }
        impl From<$t> for Bound {
            fn from(n: $t) -> Self {
                Bound(pb::Bound { value: Some(pb::bound::Value::Number(n as f64)) })
            }
        }
    )*};
}
number_scalar!(i32, i64, u32, u64, f32, f64);

/// The operand of a range comparison: a number or an instant.
pub struct Bound(pb::Bound);

impl From<DateTime<Utc>> for Bound {
    fn from(t: DateTime<Utc>) -> Self {
        let timestamp = prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos() as i32,
        };
        Bound(pb::Bound {
            value: Some(pb::bound::Value::Timestamp(timestamp)),
        })
    }
}

impl Field {
    fn with(self, condition: Condition) -> Filter {
        let condition = pb::FieldCondition {
            key: self.0,
            condition: Some(condition),
        };
        Filter(pb::Filter {
            node: Some(pb::filter::Node::Field(condition)),
        })
    }
    /// Equal to the value.
    pub fn eq(self, value: impl Into<Scalar>) -> Filter {
        self.with(Condition::Eq(value.into().0))
    }
    /// Present and not equal to the value.
    pub fn ne(self, value: impl Into<Scalar>) -> Filter {
        self.with(Condition::Ne(value.into().0))
    }
    /// Equal to one of the values.
    pub fn is_in<I: IntoIterator<Item = V>, V: Into<Scalar>>(self, values: I) -> Filter {
        self.with(Condition::In(pb::ScalarList {
            values: values.into_iter().map(|v| v.into().0).collect(),
        }))
    }
    /// Present and equal to none of the values.
    pub fn not_in<I: IntoIterator<Item = V>, V: Into<Scalar>>(self, values: I) -> Filter {
        self.with(Condition::NotIn(pb::ScalarList {
            values: values.into_iter().map(|v| v.into().0).collect(),
        }))
    }
    /// Greater than.
    pub fn gt(self, bound: impl Into<Bound>) -> Filter {
        self.with(Condition::Gt(bound.into().0))
    }
    /// Greater than or equal.
    pub fn gte(self, bound: impl Into<Bound>) -> Filter {
        self.with(Condition::Gte(bound.into().0))
    }
    /// Less than.
    pub fn lt(self, bound: impl Into<Bound>) -> Filter {
        self.with(Condition::Lt(bound.into().0))
    }
    /// Less than or equal.
    pub fn lte(self, bound: impl Into<Bound>) -> Filter {
        self.with(Condition::Lte(bound.into().0))
    }
    /// Present, with any value.
    pub fn exists(self) -> Filter {
        self.with(Condition::Exists(pb::Exists {}))
    }
    /// An array containing the value.
    pub fn contains(self, value: impl Into<Scalar>) -> Filter {
        self.with(Condition::Contains(value.into().0))
    }
}

fn invalid(at: &str, message: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{at}: {message}"))
}

fn parse_object(json: &serde_json::Value, at: &str) -> Result<Filter, Error> {
    let serde_json::Value::Object(object) = json else {
        return Err(invalid(at, "a filter is a JSON object"));
    };
    let mut parts = Vec::with_capacity(object.len());
    for (key, value) in object {
        let here = format!("{at}.{key}");
        parts.push(match key.as_str() {
            "$and" | "$or" => {
                let serde_json::Value::Array(items) = value else {
                    return Err(invalid(&here, "expects an array of filters"));
                };
                let filters = items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| parse_object(f, &format!("{here}[{i}]")))
                    .collect::<Result<_, _>>()?;
                if key == "$and" {
                    Filter::all(filters)
                } else {
                    Filter::any(filters)
                }
            }
            "$not" => parse_object(value, &here)?.not(),
            "$id" => parse_ids(value, &here)?,
            operator if operator.starts_with('$') => return Err(invalid(&here, "unknown operator")),
            field_key => parse_field(field_key, value, &here)?,
        });
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Filter::all(parts)
    })
}

fn parse_ids(value: &serde_json::Value, at: &str) -> Result<Filter, Error> {
    let list = match value {
        serde_json::Value::Object(o) if o.len() == 1 && o.contains_key("$in") => &o["$in"],
        serde_json::Value::String(_) => return Ok(Filter::ids([value.as_str().expect("a string")])),
        _ => return Err(invalid(at, "expects an id or {\"$in\": [ids]}")),
    };
    let serde_json::Value::Array(ids) = list else {
        return Err(invalid(at, "$in expects an array"));
    };
    let ids: Option<Vec<&str>> = ids.iter().map(|v| v.as_str()).collect();
    ids.map(Filter::ids).ok_or_else(|| invalid(at, "ids are strings"))
}

fn parse_field(key: &str, value: &serde_json::Value, at: &str) -> Result<Filter, Error> {
    let serde_json::Value::Object(ops) = value else {
        return Ok(field(key).eq(scalar(value, at)?));
    };
    if ops.is_empty() {
        return Err(invalid(at, "an empty operator object"));
    }
    let mut conditions = Vec::with_capacity(ops.len());
    for (op, operand) in ops {
        let here = format!("{at}.{op}");
        let f = field(key);
        conditions.push(match op.as_str() {
            "$eq" => f.eq(scalar(operand, &here)?),
            "$ne" => f.ne(scalar(operand, &here)?),
            "$in" => f.is_in(scalars(operand, &here)?),
            "$nin" => f.not_in(scalars(operand, &here)?),
            "$gt" => f.gt(bound(operand, &here)?),
            "$gte" => f.gte(bound(operand, &here)?),
            "$lt" => f.lt(bound(operand, &here)?),
            "$lte" => f.lte(bound(operand, &here)?),
            "$exists" => match operand {
                serde_json::Value::Bool(true) => f.exists(),
                serde_json::Value::Bool(false) => f.exists().not(),
                _ => return Err(invalid(&here, "expects true or false")),
            },
            "$contains" => f.contains(scalar(operand, &here)?),
            _ => {
                return Err(invalid(
                    &here,
                    "unknown operator; use $eq $ne $in $nin $gt $gte $lt $lte $exists $contains",
                ));
            }
        });
    }
    Ok(if conditions.len() == 1 {
        conditions.pop().expect("one")
    } else {
        Filter::all(conditions)
    })
}

fn scalar(value: &serde_json::Value, at: &str) -> Result<Scalar, Error> {
    match value {
        serde_json::Value::String(s) => Ok(s.as_str().into()),
        serde_json::Value::Bool(b) => Ok((*b).into()),
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Scalar::from)
            .ok_or_else(|| invalid(at, "not a finite number")),
        _ => Err(invalid(at, "expects a string, number or boolean")),
    }
}

fn scalars(value: &serde_json::Value, at: &str) -> Result<Vec<Scalar>, Error> {
    let serde_json::Value::Array(items) = value else {
        return Err(invalid(at, "expects an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| scalar(v, &format!("{at}[{i}]")))
        .collect()
}

fn bound(value: &serde_json::Value, at: &str) -> Result<Bound, Error> {
    match value {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Bound::from)
            .ok_or_else(|| invalid(at, "not a finite number")),
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Bound::from(t.with_timezone(&Utc)))
            .map_err(|_| invalid(at, "expects a number or an RFC 3339 timestamp")),
        _ => Err(invalid(at, "expects a number or an RFC 3339 timestamp")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_filters_map_one_to_one_onto_the_builder() {
        let parsed = Filter::from_json(&json!({"year": {"$gte": 2020}, "lang": "en"})).unwrap();
        assert_eq!(parsed, field("year").gte(2020).and(field("lang").eq("en")));
        let parsed = Filter::from_json(&json!({"$or": [{"a": 1}, {"b": {"$in": ["x", "y"]}}]})).unwrap();
        assert_eq!(parsed, field("a").eq(1).or(field("b").is_in(["x", "y"])));
        let parsed = Filter::from_json(&json!({"$not": {"t": {"$exists": true}}})).unwrap();
        assert_eq!(parsed, field("t").exists().not());
        let parsed = Filter::from_json(&json!({"$id": {"$in": ["a", "b"]}})).unwrap();
        assert_eq!(parsed, Filter::ids(["a", "b"]));
    }

    #[test]
    fn timestamps_become_timestamp_bounds() {
        let parsed = Filter::from_json(&json!({"at": {"$lt": "2024-01-01T00:00:00Z"}})).unwrap();
        let t: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parsed, field("at").lt(t));
    }

    #[test]
    fn bad_json_filters_name_the_place() {
        let err = Filter::from_json(&json!({"a": {"$between": [1, 2]}})).unwrap_err();
        assert!(err.to_string().contains("filter.a.$between"), "{err}");
        assert!(Filter::from_json(&json!([1])).is_err());
    }

    #[test]
    fn and_flattens_chains() {
        let f = field("a").eq(1).and(field("b").eq(2)).and(field("c").eq(3));
        let Some(pb::filter::Node::All(list)) = f.0.node else {
            panic!()
        };
        assert_eq!(list.filters.len(), 3);
    }
}
