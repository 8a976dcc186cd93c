//! `fathom.v1.Filter` into the domain [`Filter`], naming the bad node on refusal.

use fathom_api::v1 as pb;
use pb::field_condition::Condition as PbCondition;
use pb::filter::Node;

use super::timestamp_proto::timestamp_from_proto;
use crate::domain::{
    Bound, CmpOp, Condition, Filter, InvalidRequest, MAX_FILTER_DEPTH, MAX_FILTER_KEY_BYTES, MAX_FILTER_NODES,
    MAX_FILTER_OPERANDS, MAX_FILTER_VALUES, Scalar,
};

/// Converts a filter; `field` is its path in the request ("filter").
pub fn filter_from_proto(filter: &pb::Filter, field: &str, max_ids: usize) -> Result<Filter, InvalidRequest> {
    let mut nodes = 0;
    convert(filter, field, 1, &mut nodes, max_ids)
}

fn convert(
    filter: &pb::Filter,
    at: &str,
    depth: usize,
    nodes: &mut usize,
    max_ids: usize,
) -> Result<Filter, InvalidRequest> {
    *nodes += 1;
    if depth > MAX_FILTER_DEPTH {
        return Err(InvalidRequest::field(
            at,
            format!("filter is nested deeper than {MAX_FILTER_DEPTH} levels"),
        ));
    }
    if *nodes > MAX_FILTER_NODES {
        return Err(InvalidRequest::field(
            at,
            format!("filter has more than {MAX_FILTER_NODES} nodes"),
        ));
    }
    match &filter.node {
        None => Err(InvalidRequest::field(
            at,
            "filter node is empty: set all, any, not, field or ids",
        )),
        Some(Node::All(list)) => Ok(Filter::All(convert_list(
            list,
            &format!("{at}.all"),
            depth,
            nodes,
            max_ids,
        )?)),
        Some(Node::Any(list)) => Ok(Filter::Any(convert_list(
            list,
            &format!("{at}.any"),
            depth,
            nodes,
            max_ids,
        )?)),
        Some(Node::Not(inner)) => Ok(Filter::Not(Box::new(convert(
            inner,
            &format!("{at}.not"),
            depth + 1,
            nodes,
            max_ids,
        )?))),
        Some(Node::Ids(ids)) => {
            let at = format!("{at}.ids.ids");
            if ids.ids.len() > max_ids {
                return Err(InvalidRequest::field(
                    at,
                    format!("{} ids; the limit is {max_ids}", ids.ids.len()),
                ));
            }
            if ids.ids.iter().any(|id| id.contains('\0')) {
                return Err(InvalidRequest::field(at, "ids must not contain NUL characters"));
            }
            Ok(Filter::Ids(ids.ids.clone()))
        }
        Some(Node::Field(condition)) => convert_condition(condition, &format!("{at}.field")),
    }
}

fn convert_list(
    list: &pb::FilterList,
    at: &str,
    depth: usize,
    nodes: &mut usize,
    max_ids: usize,
) -> Result<Vec<Filter>, InvalidRequest> {
    if list.filters.len() > MAX_FILTER_OPERANDS {
        return Err(InvalidRequest::field(
            format!("{at}.filters"),
            format!("{} operands; the limit is {MAX_FILTER_OPERANDS}", list.filters.len()),
        ));
    }
    list.filters
        .iter()
        .enumerate()
        .map(|(i, f)| convert(f, &format!("{at}.filters[{i}]"), depth + 1, nodes, max_ids))
        .collect()
}

fn convert_condition(condition: &pb::FieldCondition, at: &str) -> Result<Filter, InvalidRequest> {
    let path = key_path(&condition.key, &format!("{at}.key"))?;
    let scalar = |s: &pb::Scalar, name: &str| scalar_at(s, &format!("{at}.{name}"));
    let list = |l: &pb::ScalarList, name: &str| -> Result<Vec<Scalar>, InvalidRequest> {
        let at = format!("{at}.{name}.values");
        if l.values.is_empty() || l.values.len() > MAX_FILTER_VALUES {
            return Err(InvalidRequest::field(
                at,
                format!("{} values; give 1 to {MAX_FILTER_VALUES}", l.values.len()),
            ));
        }
        l.values
            .iter()
            .enumerate()
            .map(|(i, s)| scalar_at(s, &format!("{at}[{i}]")))
            .collect()
    };
    let compare =
        |op: CmpOp, b: &pb::Bound, name: &str| bound(b, &format!("{at}.{name}")).map(|b| Condition::Compare(op, b));
    let condition = match &condition.condition {
        None => {
            return Err(InvalidRequest::field(
                at,
                "field condition is empty: set eq, ne, in, not_in, gt, gte, lt, lte, exists or contains",
            ));
        }
        Some(PbCondition::Eq(s)) => Condition::Eq(scalar(s, "eq")?),
        Some(PbCondition::Ne(s)) => Condition::Ne(scalar(s, "ne")?),
        Some(PbCondition::In(l)) => Condition::In(list(l, "in")?),
        Some(PbCondition::NotIn(l)) => Condition::NotIn(list(l, "not_in")?),
        Some(PbCondition::Gt(b)) => compare(CmpOp::Gt, b, "gt")?,
        Some(PbCondition::Gte(b)) => compare(CmpOp::Gte, b, "gte")?,
        Some(PbCondition::Lt(b)) => compare(CmpOp::Lt, b, "lt")?,
        Some(PbCondition::Lte(b)) => compare(CmpOp::Lte, b, "lte")?,
        Some(PbCondition::Exists(_)) => Condition::Exists,
        Some(PbCondition::Contains(s)) => Condition::Contains(scalar(s, "contains")?),
    };
    Ok(Filter::Field { path, condition })
}

fn key_path(key: &str, at: &str) -> Result<Vec<String>, InvalidRequest> {
    if key.is_empty() || key.len() > MAX_FILTER_KEY_BYTES {
        return Err(InvalidRequest::field(
            at,
            format!("key is {} bytes; give 1 to {MAX_FILTER_KEY_BYTES}", key.len()),
        ));
    }
    if key.contains('\0') {
        return Err(InvalidRequest::field(at, "key must not contain NUL characters"));
    }
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(InvalidRequest::field(
            at,
            format!("key {key:?} has an empty segment; use dots only between keys"),
        ));
    }
    Ok(path)
}

fn scalar_at(s: &pb::Scalar, at: &str) -> Result<Scalar, InvalidRequest> {
    use pb::scalar::Kind;
    match &s.kind {
        None => Err(InvalidRequest::field(
            at,
            "value is empty: set string_value, number_value or bool_value",
        )),
        Some(Kind::StringValue(v)) if v.contains('\0') => {
            Err(InvalidRequest::field(at, "strings must not contain NUL characters"))
        }
        Some(Kind::StringValue(v)) => Ok(Scalar::String(v.clone())),
        Some(Kind::NumberValue(n)) if !n.is_finite() => {
            Err(InvalidRequest::field(at, format!("{n} is not a finite number")))
        }
        Some(Kind::NumberValue(n)) => Ok(Scalar::Number(*n)),
        Some(Kind::BoolValue(b)) => Ok(Scalar::Bool(*b)),
    }
}

fn bound(b: &pb::Bound, at: &str) -> Result<Bound, InvalidRequest> {
    use pb::bound::Value;
    match &b.value {
        None => Err(InvalidRequest::field(at, "bound is empty: set number or timestamp")),
        Some(Value::Number(n)) if !n.is_finite() => {
            Err(InvalidRequest::field(at, format!("{n} is not a finite number")))
        }
        Some(Value::Number(n)) => Ok(Bound::Number(*n)),
        Some(Value::Timestamp(t)) => timestamp_from_proto(at, t).map(Bound::Timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, condition: PbCondition) -> pb::Filter {
        pb::Filter {
            node: Some(Node::Field(pb::FieldCondition {
                key: key.into(),
                condition: Some(condition),
            })),
        }
    }

    #[test]
    fn a_bad_node_is_named_by_its_path() {
        let good = field("year", PbCondition::Exists(pb::Exists {}));
        let bad = pb::Filter { node: None };
        let filter = pb::Filter {
            node: Some(Node::All(pb::FilterList {
                filters: vec![good, bad],
            })),
        };
        let err = filter_from_proto(&filter, "filter", 10).unwrap_err();
        assert_eq!(err.violations[0].field, "filter.all.filters[1]");
    }

    #[test]
    fn dotted_keys_become_paths() {
        let f = field("author.name", PbCondition::Exists(pb::Exists {}));
        let Filter::Field { path, .. } = filter_from_proto(&f, "filter", 10).unwrap() else {
            panic!()
        };
        assert_eq!(path, ["author", "name"]);
        assert!(filter_from_proto(&field("a..b", PbCondition::Exists(pb::Exists {})), "filter", 10).is_err());
    }
}
