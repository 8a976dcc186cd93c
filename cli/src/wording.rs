//! Counts in sentences: "1 document", "2 documents".

/// `n` and the noun: `one` if `n` is 1, `many` otherwise.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "is" for 1, "are" otherwise.
pub(crate) fn is_are(n: u64) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// "was" for 1, "were" otherwise.
pub(crate) fn was_were(n: u64) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "batch", "batches"), "1 batch");
        assert_eq!(count(2, "batch", "batches"), "2 batches");
        assert_eq!(count(0, "document", "documents"), "0 documents");
        assert_eq!(
            format!("{} {}", count(1, "document", "documents"), is_are(1)),
            "1 document is"
        );
        assert_eq!(was_were(3), "were");
    }
}
