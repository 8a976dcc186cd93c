//! The one place identifiers and DDL literals are put into SQL text.

use crate::domain::CollectionName;

/// `fathom_data."name"`: the table of a collection.
pub fn table(name: &CollectionName) -> String {
    format!("fathom_data.{}", quote_ident(name.as_str()))
}

/// `"name:suffix"`: an index or constraint of a collection. Indexes share
/// the schema's namespace with tables, and `:` is outside the alphabet of
/// collection names, so no collection's table can take an index's name
/// (`docs_text` was a valid collection name, and collided with the index of
/// `docs`). Names are at most 48 bytes, so short suffixes keep within
/// PostgreSQL's 63.
pub fn index(name: &CollectionName, suffix: &str) -> String {
    quote_ident(&format!("{}:{suffix}", name.as_str()))
}

/// Quotes an identifier, doubling embedded quotes as PostgreSQL does.
/// Callers pass validated names; quoting is the second line of defence.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes a literal for DDL, where parameters cannot be bound (a generated
/// column's expression).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
