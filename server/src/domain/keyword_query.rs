//! A keyword query in web-search syntax, split into the terms it ranks by.
//!
//! PostgreSQL's `websearch_to_tsquery` requires every word, so "vector
//! database" finds nothing where no document holds both, and a hybrid
//! search's keyword leg comes back empty. Search engines rank documents with
//! any of the words instead, those with more of them first; that needs the
//! terms one by one. Each term still goes through `websearch_to_tsquery`
//! (as a bound value), so stemming, stop words and phrases stay PostgreSQL's.

/// The terms of a query: documents with any of `any_of` and none of
/// `none_of` match; documents matching more of `any_of` rank first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeywordQuery {
    /// Words and `"quoted phrases"` (with their quotes), each a term.
    pub any_of: Vec<String>,
    /// Terms written with a leading `-`, without it.
    pub none_of: Vec<String>,
}

impl KeywordQuery {
    /// Splits `text` at spaces into words and `"quoted phrases"` (an
    /// unclosed quote runs to the end). `-` before a term excludes it; the
    /// word `or` is dropped, since any term matches anyway. Any text is a
    /// valid query.
    pub fn parse(text: &str) -> Self {
        let mut query = KeywordQuery::default();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let negated = rest.len() > 1 && rest.starts_with('-') && !rest[1..].starts_with(char::is_whitespace);
            if negated {
                rest = &rest[1..];
            }
            let (term, after) = if let Some(phrase) = rest.strip_prefix('"') {
                let end = phrase.find('"').unwrap_or(phrase.len());
                (format!("\"{}\"", &phrase[..end]), phrase.get(end + 1..).unwrap_or(""))
            } else {
                let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
                (rest[..end].to_owned(), &rest[end..])
            };
            rest = after.trim_start();
            if term.eq_ignore_ascii_case("or") && !negated {
                continue;
            }
            if negated {
                query.none_of.push(term);
            } else {
                query.any_of.push(term);
            }
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<&str>, Vec<&str>) {
        let query = Box::leak(Box::new(KeywordQuery::parse(text)));
        (
            query.any_of.iter().map(String::as_str).collect(),
            query.none_of.iter().map(String::as_str).collect(),
        )
    }

    #[test]
    fn words_phrases_exclusions_and_or_become_terms() {
        assert_eq!(parse("vector database"), (vec!["vector", "database"], vec![]));
        assert_eq!(
            parse("  \"hybrid search\" or pgvector -chroma -\"in memory\""),
            (vec!["\"hybrid search\"", "pgvector"], vec!["chroma", "\"in memory\""])
        );
        assert_eq!(parse("a-b - c"), (vec!["a-b", "-", "c"], vec![]));
        assert_eq!(parse("\"unclosed phrase"), (vec!["\"unclosed phrase\""], vec![]));
        assert_eq!(parse("über\tnaïve"), (vec!["über", "naïve"], vec![]));
        assert_eq!(parse(""), (vec![], vec![]));
        assert_eq!(parse("OR"), (vec![], vec![]));
    }
}
