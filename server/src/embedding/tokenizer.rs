//! The model's tokenizer, as its tokenizer.json describes it: added
//! (special) tokens matched in the raw text, BERT's basic tokenization,
//! WordPiece, truncation, and the `[CLS] … [SEP]` template.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::EmbedError;
use super::basic_tokenizer::BasicTokenizer;
use super::model_files::read_json;
use super::wordpiece::WordPiece;

/// Text to token ids, identical to the Hugging Face `tokenizers` library's
/// encoding with the same tokenizer.json and truncation.
#[derive(Debug)]
pub(super) struct BertTokenizer {
    basic: BasicTokenizer,
    wordpiece: WordPiece,
    /// Tokens recognised verbatim in the raw text (`[CLS]`, `[MASK]`, …).
    added_tokens: Vec<(String, u32)>,
    /// The template's tokens before and after the text.
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    /// The most ids of one encoding, template tokens included.
    max_len: usize,
}

#[derive(Deserialize)]
struct TokenizerJson {
    added_tokens: Vec<AddedToken>,
    normalizer: NormalizerJson,
    pre_tokenizer: TypeOnly,
    post_processor: PostProcessorJson,
    model: ModelJson,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct NormalizerJson {
    #[serde(rename = "type")]
    kind: String,
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: Option<bool>,
    lowercase: bool,
}

#[derive(Deserialize)]
struct PostProcessorJson {
    #[serde(rename = "type")]
    kind: String,
    single: Vec<TemplatePiece>,
    special_tokens: HashMap<String, SpecialTokenJson>,
}

#[derive(Deserialize)]
enum TemplatePiece {
    SpecialToken { id: String },
    Sequence {},
}

#[derive(Deserialize)]
struct SpecialTokenJson {
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "type")]
    kind: String,
    vocab: HashMap<String, u32>,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
}

impl BertTokenizer {
    /// Reads tokenizer.json; encodings are cut to `max_len` ids (the
    /// model's `max_seq_length`), template tokens included. The file's own
    /// truncation and padding settings are not used, as in
    /// sentence-transformers.
    pub(super) fn load(path: &Path, max_len: usize) -> Result<Self, EmbedError> {
        let json: TokenizerJson = read_json(path)?;
        let unsupported = |what: &str, kind: &str| EmbedError::invalid(path, format!("unsupported {what} {kind}"));
        if json.normalizer.kind != "BertNormalizer" {
            return Err(unsupported("normalizer", &json.normalizer.kind));
        }
        if json.pre_tokenizer.kind != "BertPreTokenizer" {
            return Err(unsupported("pre-tokenizer", &json.pre_tokenizer.kind));
        }
        if json.model.kind != "WordPiece" {
            return Err(unsupported("model", &json.model.kind));
        }
        if json.post_processor.kind != "TemplateProcessing" {
            return Err(unsupported("post-processor", &json.post_processor.kind));
        }
        let n = &json.normalizer;
        let basic = BasicTokenizer {
            clean_text: n.clean_text,
            handle_chinese_chars: n.handle_chinese_chars,
            // Unset, accents follow lower-casing (as in BERT's uncased models).
            strip_accents: n.strip_accents.unwrap_or(n.lowercase),
            lowercase: n.lowercase,
        };
        let unk_id = *json.model.vocab.get(&json.model.unk_token).ok_or_else(|| {
            EmbedError::invalid(
                path,
                format!("unknown token {} not in the vocabulary", json.model.unk_token),
            )
        })?;
        let (mut prefix, mut suffix, mut seen_sequence) = (vec![], vec![], false);
        for piece in &json.post_processor.single {
            match piece {
                TemplatePiece::Sequence {} => seen_sequence = true,
                TemplatePiece::SpecialToken { id } => {
                    let special = json.post_processor.special_tokens.get(id).ok_or_else(|| {
                        EmbedError::invalid(path, format!("template token {id} not among the special tokens"))
                    })?;
                    if seen_sequence { &mut suffix } else { &mut prefix }.extend(&special.ids);
                }
            }
        }
        if prefix.len() + suffix.len() >= max_len {
            return Err(EmbedError::invalid(
                path,
                format!("the template leaves no room in {max_len} tokens"),
            ));
        }
        let mut added_tokens: Vec<_> = json.added_tokens.into_iter().map(|t| (t.content, t.id)).collect();
        // Longest first: where two match at the same place, the longer wins.
        added_tokens.sort_by_key(|(content, _)| std::cmp::Reverse(content.len()));
        added_tokens.retain(|(content, _)| !content.is_empty());
        Ok(Self {
            basic,
            wordpiece: WordPiece {
                vocab: json.model.vocab,
                unk_id,
                continuing_prefix: json.model.continuing_subword_prefix,
                max_input_chars_per_word: json.model.max_input_chars_per_word,
            },
            added_tokens,
            prefix,
            suffix,
            max_len,
        })
    }

    /// The most ids of one encoding, template tokens included.
    pub(super) fn max_len(&self) -> usize {
        self.max_len
    }

    /// The ids of `text`: the template around the text's tokens, these cut
    /// so that the whole is at most `max_len` long.
    pub(super) fn encode(&self, text: &str) -> Vec<u32> {
        let room = self.max_len - self.prefix.len() - self.suffix.len();
        let mut ids = self.prefix.clone();
        let mut rest = text;
        while !rest.is_empty() && ids.len() - self.prefix.len() < room {
            let (before, added) = match self.next_added_token(rest) {
                Some((at, content, id)) => {
                    let before = &rest[..at];
                    rest = &rest[at + content.len()..];
                    (before, Some(id))
                }
                None => (std::mem::take(&mut rest), None),
            };
            for word in BasicTokenizer::split_words(&self.basic.normalize(before)) {
                self.wordpiece.push_ids(word, &mut ids);
                if ids.len() - self.prefix.len() >= room {
                    break;
                }
            }
            ids.extend(added);
        }
        ids.truncate(self.prefix.len() + room);
        ids.extend(&self.suffix);
        ids
    }

    /// The leftmost added token in `text` (the longest at that place): its
    /// byte offset, content and id.
    fn next_added_token(&self, text: &str) -> Option<(usize, &str, u32)> {
        self.added_tokens
            .iter()
            .filter_map(|(content, id)| text.find(content.as_str()).map(|at| (at, content.as_str(), *id)))
            .min_by_key(|&(at, content, _)| (at, std::cmp::Reverse(content.len())))
    }
}
