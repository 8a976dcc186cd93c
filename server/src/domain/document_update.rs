//! A change to the text and metadata of stored documents (the Update RPC),
//! applied alike to every document a selector chooses.

use super::document::{check_metadata, check_text};
use super::{InvalidRequest, Limits, MAX_FILTER_KEY_BYTES, Violations};

/// Top-level metadata keys one update may remove at most.
pub const MAX_DELETED_METADATA_KEYS: usize = 1000;

/// What an update does to each chosen document. Holding one means it
/// changes something and every part of it is within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUpdate {
    /// The new text; `None` keeps each document's own.
    pub text: Option<String>,
    /// What becomes of each document's metadata.
    pub metadata: MetadataChange,
}

/// The metadata part of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataChange {
    /// Each document keeps its metadata.
    Unchanged,
    /// The keys in `delete` are removed, then the top-level keys of `set` (a
    /// JSON object) replace theirs; every other key is kept.
    Merge {
        /// A JSON object; `{}` sets nothing.
        set: String,
        /// Keys to remove, none of them in `set`.
        delete: Vec<String>,
    },
    /// The whole object is replaced by this JSON object.
    Replace(String),
}

/// Metadata an update sets, as the request carries it: rendered as JSON
/// text (or refused while it was), with its top-level keys.
#[derive(Debug)]
pub struct MetadataToSet {
    /// The object as JSON text, or why it is not valid metadata.
    pub json: Result<String, InvalidRequest>,
    /// Its top-level keys.
    pub keys: Vec<String>,
}

impl DocumentUpdate {
    /// Checks an update's parts, reporting every problem at once under the
    /// request's field names (`text`, `set_metadata`, `replace_metadata`,
    /// `delete_metadata_keys`).
    pub fn parse(
        text: Option<String>,
        set_metadata: Option<MetadataToSet>,
        replace_metadata: bool,
        delete_metadata_keys: Vec<String>,
        limits: &Limits,
    ) -> Result<Self, InvalidRequest> {
        let mut violations = Violations::default();
        if text.is_none() && set_metadata.is_none() && delete_metadata_keys.is_empty() {
            violations.add("", "nothing to update: set text, set_metadata or delete_metadata_keys");
        }
        if let Some(text) = &text {
            check_text(text, "text", limits, &mut violations);
        }
        check_deleted_keys(&delete_metadata_keys, &mut violations);
        let set_keys = set_metadata.as_ref().map(|set| set.keys.as_slice()).unwrap_or_default();
        if let Some(i) = delete_metadata_keys.iter().position(|key| set_keys.contains(key)) {
            violations.add(
                format!("delete_metadata_keys[{i}]"),
                format!(
                    "key {:?} is also in set_metadata: a key is either set or deleted",
                    delete_metadata_keys[i]
                ),
            );
        }
        if replace_metadata && set_metadata.is_none() {
            violations.add(
                "replace_metadata",
                "replace_metadata needs set_metadata, the new object (an empty object clears the metadata)",
            );
        }
        if replace_metadata && !delete_metadata_keys.is_empty() {
            violations.add(
                "delete_metadata_keys",
                "with replace_metadata the whole object is replaced: leave delete_metadata_keys empty",
            );
        }
        let set = set_metadata.and_then(|set| check_metadata(set.json, "set_metadata", limits, &mut violations));
        let metadata = match (set, replace_metadata) {
            (Some(json), true) => MetadataChange::Replace(json),
            (Some(json), false) => MetadataChange::Merge {
                set: json,
                delete: delete_metadata_keys,
            },
            (None, _) if delete_metadata_keys.is_empty() => MetadataChange::Unchanged,
            (None, _) => MetadataChange::Merge {
                set: "{}".to_owned(),
                delete: delete_metadata_keys,
            },
        };
        violations.finish(|| Self { text, metadata })
    }
}

fn check_deleted_keys(keys: &[String], violations: &mut Violations) {
    if keys.len() > MAX_DELETED_METADATA_KEYS {
        violations.add(
            "delete_metadata_keys",
            format!("{} keys; the limit is {MAX_DELETED_METADATA_KEYS}", keys.len()),
        );
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        if key.len() > MAX_FILTER_KEY_BYTES {
            violations.add(
                format!("delete_metadata_keys[{i}]"),
                format!("key is {} bytes; the limit is {MAX_FILTER_KEY_BYTES}", key.len()),
            );
        } else if key.contains('\0') {
            violations.add(format!("delete_metadata_keys[{i}]"), "key contains a NUL character");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InvalidKind;

    fn set(json: &str, keys: &[&str]) -> Option<MetadataToSet> {
        Some(MetadataToSet {
            json: Ok(json.to_owned()),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        })
    }

    fn fields(invalid: &InvalidRequest) -> Vec<&str> {
        invalid.violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn an_update_that_changes_nothing_is_refused() {
        let refused = DocumentUpdate::parse(None, None, false, vec![], &Limits::default()).unwrap_err();
        assert!(refused.to_string().contains("nothing to update"), "{refused}");
    }

    #[test]
    fn set_and_deleted_keys_merge_and_may_not_overlap() {
        let limits = Limits::default();
        let merge = DocumentUpdate::parse(None, set(r#"{"a":1}"#, &["a"]), false, vec!["b".into()], &limits).unwrap();
        assert_eq!(
            merge.metadata,
            MetadataChange::Merge {
                set: r#"{"a":1}"#.into(),
                delete: vec!["b".into()]
            }
        );
        let overlap = DocumentUpdate::parse(None, set(r#"{"a":1}"#, &["a"]), false, vec!["a".into()], &limits);
        assert_eq!(fields(&overlap.unwrap_err()), ["delete_metadata_keys[0]"]);
    }

    #[test]
    fn replacing_needs_the_new_object_and_deletes_nothing_besides() {
        let limits = Limits::default();
        let without_object = DocumentUpdate::parse(Some("t".into()), None, true, vec![], &limits);
        assert_eq!(fields(&without_object.unwrap_err()), ["replace_metadata"]);
        let with_deletes = DocumentUpdate::parse(None, set("{}", &[]), true, vec!["x".into()], &limits);
        assert_eq!(fields(&with_deletes.unwrap_err()), ["delete_metadata_keys"]);
        let clear = DocumentUpdate::parse(None, set("{}", &[]), true, vec![], &limits).unwrap();
        assert_eq!(clear.metadata, MetadataChange::Replace("{}".into()));
    }

    #[test]
    fn text_and_metadata_keep_the_limits_of_an_upsert() {
        let limits = Limits {
            max_text_bytes: 4,
            max_metadata_bytes: 8,
            ..Limits::default()
        };
        let refused = DocumentUpdate::parse(
            Some("12345".into()),
            set(r#"{"ab":"xyz"}"#, &["ab"]),
            false,
            vec![],
            &limits,
        )
        .unwrap_err();
        assert_eq!(refused.kind, InvalidKind::ResourceExhausted);
        assert_eq!(fields(&refused), ["text", "set_metadata"]);
        let nul = DocumentUpdate::parse(None, None, false, vec!["a\0".into()], &limits).unwrap_err();
        assert_eq!(fields(&nul), ["delete_metadata_keys[0]"]);
    }
}
