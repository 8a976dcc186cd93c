//! Compiles a [`Filter`] into a SQL boolean expression over a collection's
//! `id` and `metadata` columns. Every value is a bound parameter; the only
//! text this module writes is fixed SQL.
//!
//! Every leaf yields TRUE or FALSE, never NULL, so `NOT` means "does not match".

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::{Bound, CmpOp, Condition, Filter, Scalar};

/// Appends `filter` as a parenthesised boolean expression. `alias` qualifies
/// the columns ("d" gives `d.metadata`).
pub fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &Filter, alias: &str) {
    match filter {
        Filter::All(list) => push_list(qb, list, " AND ", "TRUE", alias),
        Filter::Any(list) => push_list(qb, list, " OR ", "FALSE", alias),
        Filter::Not(inner) => {
            qb.push("(NOT ");
            push_filter(qb, inner, alias);
            qb.push(")");
        }
        Filter::Ids(ids) => {
            qb.push(format_args!("({alias}.id = ANY("));
            qb.push_bind(ids.clone());
            qb.push("::text[]))");
        }
        Filter::Field { path, condition } => push_condition(qb, path, condition, alias),
    }
}

fn push_list(qb: &mut QueryBuilder<'_, Postgres>, list: &[Filter], joiner: &str, empty: &str, alias: &str) {
    if list.is_empty() {
        qb.push(empty);
        return;
    }
    qb.push("(");
    for (i, filter) in list.iter().enumerate() {
        if i > 0 {
            qb.push(joiner);
        }
        push_filter(qb, filter, alias);
    }
    qb.push(")");
}

fn push_condition(qb: &mut QueryBuilder<'_, Postgres>, path: &[String], condition: &Condition, alias: &str) {
    let metadata = format!("{alias}.metadata");
    match condition {
        // Containment (`@>`) is what the jsonb_path_ops GIN index serves.
        Condition::Eq(value) => push_contains(qb, &metadata, path, value.to_json()),
        Condition::Contains(value) => push_contains(qb, &metadata, path, Value::Array(vec![value.to_json()])),
        Condition::In(values) => push_any_of(qb, &metadata, path, values),
        Condition::Ne(value) => {
            qb.push("(");
            push_exists(qb, &metadata, path);
            qb.push(" AND NOT ");
            push_contains(qb, &metadata, path, value.to_json());
            qb.push(")");
        }
        Condition::NotIn(values) => {
            qb.push("(");
            push_exists(qb, &metadata, path);
            qb.push(" AND NOT ");
            push_any_of(qb, &metadata, path, values);
            qb.push(")");
        }
        Condition::Exists => push_exists(qb, &metadata, path),
        Condition::Compare(op, bound) => {
            let op = comparison_operator(*op);
            // The casts run only where the CASE has checked the type, so a
            // field of another type is a non-match, never an error.
            match bound {
                Bound::Number(n) => {
                    qb.push(format_args!("COALESCE(CASE WHEN jsonb_typeof({metadata} #> "));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!("::text[]) = 'number' THEN ({metadata} #>> "));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!("::text[])::float8 {op} "));
                    qb.push_bind(*n);
                    qb.push("::float8 END, FALSE)");
                }
                Bound::Timestamp(t) => {
                    qb.push(format_args!("COALESCE(CASE WHEN jsonb_typeof({metadata} #> "));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!("::text[]) = 'string' AND ({metadata} #>> "));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!(
                        "::text[]) ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}' AND pg_input_is_valid({metadata} #>> "
                    ));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!("::text[], 'timestamptz') THEN ({metadata} #>> "));
                    qb.push_bind(path.to_vec());
                    qb.push(format_args!("::text[])::timestamptz {op} "));
                    qb.push_bind(*t);
                    qb.push(" END, FALSE)");
                }
            }
        }
    }
}

/// `metadata @> {"a": {"b": value}}`
fn push_contains(qb: &mut QueryBuilder<'_, Postgres>, metadata: &str, path: &[String], value: Value) {
    qb.push(format_args!("({metadata} @> "));
    qb.push_bind(Json(nest(path, value)));
    qb.push(")");
}

/// Lists longer than this are bound as one array.
const MAX_ORED_VALUES: usize = 16;

/// One containment test per value, ORed, so each can use the GIN index; a
/// long list as one containment test against an array of values (one bind
/// parameter, where one per value could pass PostgreSQL's 65,535 for a
/// filter within the documented limits).
fn push_any_of(qb: &mut QueryBuilder<'_, Postgres>, metadata: &str, path: &[String], values: &[Scalar]) {
    if values.len() > MAX_ORED_VALUES {
        let nested: Vec<Json<Value>> = values.iter().map(|v| Json(nest(path, v.to_json()))).collect();
        qb.push(format_args!("({metadata} @> ANY("));
        qb.push_bind(nested);
        qb.push("::jsonb[]))");
        return;
    }
    qb.push("(");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        push_contains(qb, metadata, path, value.to_json());
    }
    qb.push(")");
}

fn push_exists(qb: &mut QueryBuilder<'_, Postgres>, metadata: &str, path: &[String]) {
    qb.push(format_args!("({metadata} #> "));
    qb.push_bind(path.to_vec());
    qb.push("::text[] IS NOT NULL)");
}

/// Wraps `value` in objects along `path`: ["a", "b"], 1 gives {"a": {"b": 1}}.
fn nest(path: &[String], value: Value) -> Value {
    path.iter().rev().fold(value, |inner, key| {
        let mut object = Map::new();
        object.insert(key.clone(), inner);
        Value::Object(object)
    })
}

/// The SQL text of a comparison operator.
fn comparison_operator(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_follows_the_path() {
        let nested = nest(&["a".into(), "b".into()], Value::from(1));
        assert_eq!(nested, serde_json::json!({"a": {"b": 1}}));
    }

    #[test]
    fn filter_values_are_bound_not_spliced() {
        let hostile = "'); drop table x; --";
        let filter = Filter::Field {
            path: vec![hostile.into()],
            condition: Condition::Eq(Scalar::String(hostile.into())),
        };
        let mut qb = QueryBuilder::<Postgres>::new("SELECT 1 FROM t d WHERE ");
        push_filter(&mut qb, &filter, "d");
        assert!(!qb.sql().contains("drop table"), "{}", qb.sql());
    }
}
