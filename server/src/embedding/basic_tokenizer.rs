//! BERT's basic tokenization: the text cleaned, CJK ideographs spaced out,
//! accents stripped, lower-cased, then cut into words at whitespace and
//! around punctuation. The same steps, in the same order and with the same
//! character classes, as the Hugging Face `tokenizers` library's
//! `BertNormalizer` and `BertPreTokenizer`, which the reference uses.

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// The switches of tokenizer.json's `BertNormalizer`.
#[derive(Debug, Clone, Copy)]
pub(super) struct BasicTokenizer {
    /// Drop control characters, turn every whitespace into a space.
    pub clean_text: bool,
    /// Put spaces around CJK ideographs, so each is a word.
    pub handle_chinese_chars: bool,
    /// Decompose (NFD) and drop non-spacing marks.
    pub strip_accents: bool,
    /// Lower-case, character by character.
    pub lowercase: bool,
}

impl BasicTokenizer {
    /// The text normalised, ready to be cut into words.
    pub(super) fn normalize(&self, text: &str) -> String {
        let mut s = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    s.push(' ');
                    continue;
                }
            }
            if self.handle_chinese_chars && is_chinese_char(c) {
                s.extend([' ', c, ' ']);
            } else {
                s.push(c);
            }
        }
        if self.strip_accents {
            s = s.nfd().filter(|c| !c.is_mark_nonspacing()).collect();
        }
        if self.lowercase {
            // Per character, as the reference does: `str::to_lowercase` would
            // also apply the final-sigma rule.
            s = s.chars().flat_map(char::to_lowercase).collect();
        }
        s
    }

    /// The words of a normalised text: split at whitespace (dropped) and
    /// around each punctuation character (kept as a word of its own).
    pub(super) fn split_words(normalized: &str) -> impl Iterator<Item = &str> {
        normalized
            .split(char::is_whitespace)
            .filter(|w| !w.is_empty())
            .flat_map(split_punctuation)
    }
}

/// A whitespace-free chunk cut before and after every punctuation character.
fn split_punctuation(chunk: &str) -> impl Iterator<Item = &str> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        let (i, c) = rest
            .char_indices()
            .find(|&(_, c)| is_punctuation(c))
            .unwrap_or((rest.len(), ' '));
        let word = if i > 0 {
            &rest[..i]
        } else if rest.is_empty() {
            return None;
        } else {
            &rest[..c.len_utf8()]
        };
        rest = &rest[word.len()..];
        Some(word)
    })
}

/// Tab, newline and carriage return count as whitespace, not as control.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Unicode's "Other" categories (Cc, Cf, Cn, Co, Cs), as the reference
/// classifies them, except the whitespace controls.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK Unified Ideographs blocks and their extensions and compatibility
/// forms (not kana or hangul, which are written with spaces).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: BasicTokenizer = BasicTokenizer {
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: true,
        lowercase: true,
    };

    fn words(text: &str) -> Vec<String> {
        BasicTokenizer::split_words(&BERT.normalize(text))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn punctuation_is_a_word_of_its_own_and_whitespace_disappears() {
        assert_eq!(
            words("Hey friend!     How are you?!?"),
            ["hey", "friend", "!", "how", "are", "you", "?", "!", "?"]
        );
    }

    #[test]
    fn accents_are_stripped_before_lower_casing_and_ideographs_split() {
        assert_eq!(
            words("Crème İstanbul 野口里佳 Noguchi"),
            ["creme", "istanbul", "野", "口", "里", "佳", "noguchi"]
        );
    }

    #[test]
    fn control_characters_vanish_and_odd_whitespace_separates() {
        assert_eq!(words("a\u{0}b\u{200b}c\u{3000}d\te"), ["abc", "d", "e"]);
    }
}
