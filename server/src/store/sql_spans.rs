//! A span per SQL statement, named and attributed by OpenTelemetry's
//! database conventions: `db.system = postgresql`, the operation (`SELECT`,
//! `INSERT`, …) and a short statement name that says what it is for. Never
//! the statement's text or its bound values: a filter or a document's text
//! may be private, and the statement name is enough to find the code.

/// The span of one statement: `operation` is the SQL verb, `statement` a
/// short name of what the statement does.
pub(super) fn sql(operation: &'static str, statement: &'static str) -> tracing::Span {
    tracing::info_span!(
        "sql",
        otel.name = %format_args!("{operation} {statement}"),
        otel.kind = "client",
        db.system = "postgresql",
        db.operation = operation,
        db.statement.name = statement,
    )
}
