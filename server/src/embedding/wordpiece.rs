//! WordPiece: each word of the basic tokenization cut into the longest
//! vocabulary pieces, greedily from the left, continuation pieces carrying
//! the `##` prefix; a word that cannot be cut, or is too long, is one unknown
//! token.

use std::collections::HashMap;

/// The vocabulary and rules of tokenizer.json's `WordPiece` model.
#[derive(Debug)]
pub(super) struct WordPiece {
    /// Token text to id.
    pub vocab: HashMap<String, u32>,
    /// The id of the unknown token.
    pub unk_id: u32,
    /// What starts a piece that continues a word (`##`).
    pub continuing_prefix: String,
    /// Longer words (in characters) are unknown as a whole.
    pub max_input_chars_per_word: usize,
}

impl WordPiece {
    /// Appends the ids of `word`'s pieces to `ids`.
    pub(super) fn push_ids(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_input_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let first = ids.len();
        let mut candidate = String::with_capacity(self.continuing_prefix.len() + word.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                candidate.clear();
                if start > 0 {
                    candidate.push_str(&self.continuing_prefix);
                }
                candidate.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&candidate) {
                    break Some(id);
                }
                // Shorter by one character.
                match word[start..end].char_indices().next_back() {
                    Some((0, _)) | None => break None,
                    Some((last, _)) => end = start + last,
                }
            };
            match found {
                Some(id) => ids.push(id),
                None => {
                    ids.truncate(first);
                    ids.push(self.unk_id);
                    return;
                }
            }
            start = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wordpiece() -> WordPiece {
        let vocab = ["[UNK]", "un", "##aff", "##able", "a", "##b"].iter().enumerate();
        WordPiece {
            vocab: vocab.map(|(i, t)| (t.to_string(), i as u32)).collect(),
            unk_id: 0,
            continuing_prefix: "##".into(),
            max_input_chars_per_word: 5,
        }
    }

    fn ids(word: &str) -> Vec<u32> {
        let mut ids = vec![];
        wordpiece().push_ids(word, &mut ids);
        ids
    }

    #[test]
    fn a_word_is_cut_into_the_longest_pieces_from_the_left() {
        assert_eq!(ids("unaff"), [1, 2]);
        assert_eq!(ids("abb"), [4, 5, 5]);
    }

    #[test]
    fn a_word_with_an_uncuttable_rest_or_too_long_is_unknown_as_a_whole() {
        assert_eq!(ids("unx"), [0]);
        assert_eq!(ids("unaffable"), [0]);
    }
}
