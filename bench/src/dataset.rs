//! The benchmark's data, generated once per invocation and reused by every
//! run: deterministic documents (768-d unit vectors near a 32-d subspace, about 40 words of text,
//! small metadata) and queries. The same seed gives the same bytes on every
//! machine, so runs compare.

use std::collections::HashSet;
use std::ops::Range;

use fathom_client::Document;
use fathom_client::proto;
use fathom_server::domain::DocumentBatch;
use prost_types::value::Kind;

/// Vector dimension.
pub const DIMENSION: usize = 768;
/// Distinct words in the text vocabulary.
const VOCABULARY_SIZE: usize = 10_000;
/// Words per document: uniform in this range (about 40).
const WORDS_PER_DOCUMENT: Range<usize> = 35..46;
/// Vocabulary ranks below this are too common to make a keyword query.
const QUERY_WORD_MIN_RANK: usize = 100;
/// Number of distinct `bucket` values: a filter on one bucket keeps 1 %.
pub const BUCKETS: usize = 100;
/// The bucket the filtered queries ask for.
pub const FILTER_BUCKET: usize = 42;
/// Metadata categories, cycled through.
const CATEGORIES: [&str; 8] = ["news", "blog", "paper", "manual", "forum", "wiki", "mail", "code"];

const VECTOR_SEED: u64 = 0x5EED_0001;
const TEXT_SEED: u64 = 0x5EED_0002;
const VOCABULARY_SEED: u64 = 0x5EED_0003;
const PROJECTION_SEED: u64 = 0x5EED_0005;
/// Intrinsic dimension of the generated vectors. Uniform points on a 768-d
/// sphere are a case no vector index is built for: every pair is almost
/// equally far apart, so "nearest" carries no signal and HNSW recall
/// collapses (0.15 at ef_search 200 in an earlier run). Real embeddings lie
/// near a low-dimensional manifold; these lie near a random 32-d subspace.
const LATENT_DIMENSION: usize = 32;
/// Isotropic noise added to every component, relative to the signal.
const NOISE: f64 = 0.05;
const QUERY_SEED: u64 = 0x5EED_0004;

/// SplitMix64: small, fast and deterministic; plenty to scatter vectors.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for one stream of numbers, such as one document's.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// A standard normal (Box–Muller, one of the pair).
    fn gaussian(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// A unit vector shaped like an embedding: a random point of a fixed
    /// random 32-d subspace of R^768, plus a little isotropic noise, normalised.
    pub fn embedding(&mut self) -> Vec<f32> {
        let projection = projection();
        let latent: Vec<f64> = (0..LATENT_DIMENSION).map(|_| self.gaussian()).collect();
        let scale = NOISE * (LATENT_DIMENSION as f64 / DIMENSION as f64).sqrt();
        let vector: Vec<f64> = projection
            .chunks_exact(LATENT_DIMENSION)
            .map(|row| row.iter().zip(&latent).map(|(p, z)| p * z).sum::<f64>() + scale * self.gaussian())
            .collect();
        let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
        vector.into_iter().map(|x| (x / norm) as f32).collect()
    }
}

/// The fixed DIMENSION × LATENT_DIMENSION projection of [`Rng::embedding`],
/// with N(0, 1/LATENT_DIMENSION) entries.
fn projection() -> &'static [f64] {
    static PROJECTION: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    PROJECTION.get_or_init(|| {
        let mut rng = Rng::new(PROJECTION_SEED, 0);
        let scale = (LATENT_DIMENSION as f64).sqrt().recip();
        (0..DIMENSION * LATENT_DIMENSION)
            .map(|_| rng.gaussian() * scale)
            .collect()
    })
}

/// Made-up words with Zipf-distributed frequencies (s = 1), like the words
/// of real text: a few very common, most rare.
#[derive(Debug)]
struct Vocabulary {
    words: Vec<String>,
    /// Cumulative probability of each rank.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn generate() -> Self {
        const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
        const VOWELS: &[u8] = b"aeiou";
        let mut rng = Rng::new(VOCABULARY_SEED, 0);
        let mut seen = HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY_SIZE);
        while words.len() < VOCABULARY_SIZE {
            let syllables = 2 + rng.below(3);
            let word: String = (0..syllables)
                .flat_map(|_| [CONSONANTS[rng.below(CONSONANTS.len())], VOWELS[rng.below(VOWELS.len())]])
                .map(char::from)
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let weights: Vec<f64> = (1..=VOCABULARY_SIZE).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let cumulative = weights
            .iter()
            .scan(0.0, |sum, w| {
                *sum += w / total;
                Some(*sum)
            })
            .collect();
        Self { words, cumulative }
    }

    /// A rank drawn from the Zipf distribution.
    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative.partition_point(|&c| c < u).min(self.words.len() - 1)
    }
}

/// Metadata of one document: `{"bucket": 0..100, "category": "...", "year": 2000..2025}`.
#[derive(Debug, Clone, Copy)]
struct Metadata {
    bucket: usize,
    category: &'static str,
    year: usize,
}

impl Metadata {
    fn of(index: usize) -> Self {
        Self {
            bucket: index % BUCKETS,
            category: CATEGORIES[(index / BUCKETS) % CATEGORIES.len()],
            year: 2000 + (index * 7) % 25,
        }
    }

    fn json(self) -> String {
        serde_json::json!({"bucket": self.bucket, "category": self.category, "year": self.year}).to_string()
    }

    fn proto(self) -> prost_types::Struct {
        let value = |kind| prost_types::Value { kind: Some(kind) };
        prost_types::Struct {
            fields: [
                ("bucket".to_owned(), value(Kind::NumberValue(self.bucket as f64))),
                (
                    "category".to_owned(),
                    value(Kind::StringValue(self.category.to_owned())),
                ),
                ("year".to_owned(), value(Kind::NumberValue(self.year as f64))),
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// `count` documents, held in memory column by column.
#[derive(Debug)]
pub struct Dataset {
    count: usize,
    /// `count × DIMENSION` components, document after document.
    vectors: Vec<f32>,
    /// Vocabulary ranks of each document's words.
    word_ranks: Vec<Vec<u16>>,
    vocabulary: Vocabulary,
}

impl Dataset {
    /// Generates `count` documents, on every core.
    pub fn generate(count: usize) -> Self {
        let vocabulary = Vocabulary::generate();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = count.div_ceil(threads).max(1);
        let mut vectors = vec![0.0f32; count * DIMENSION];
        let mut word_ranks = vec![Vec::new(); count];
        std::thread::scope(|scope| {
            for (part, (vectors, word_ranks)) in vectors
                .chunks_mut(chunk * DIMENSION)
                .zip(word_ranks.chunks_mut(chunk))
                .enumerate()
            {
                let vocabulary = &vocabulary;
                scope.spawn(move || {
                    for (offset, (vector, ranks)) in vectors.chunks_mut(DIMENSION).zip(word_ranks).enumerate() {
                        let index = (part * chunk + offset) as u64;
                        vector.copy_from_slice(&Rng::new(VECTOR_SEED, index).embedding());
                        let mut rng = Rng::new(TEXT_SEED, index);
                        let words = WORDS_PER_DOCUMENT.start + rng.below(WORDS_PER_DOCUMENT.len());
                        *ranks = (0..words).map(|_| vocabulary.sample(&mut rng) as u16).collect();
                    }
                });
            }
        });
        Self {
            count,
            vectors,
            word_ranks,
            vocabulary,
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The id of document `index`.
    pub fn id(index: usize) -> String {
        format!("doc-{index:08}")
    }

    /// The vector of document `index`.
    pub fn vector(&self, index: usize) -> &[f32] {
        &self.vectors[index * DIMENSION..(index + 1) * DIMENSION]
    }

    /// The text of document `index`.
    pub fn text(&self, index: usize) -> String {
        let ranks = &self.word_ranks[index];
        let mut text = String::with_capacity(ranks.len() * 8);
        for (i, &rank) in ranks.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(&self.vocabulary.words[usize::from(rank)]);
        }
        text
    }

    /// The metadata of document `index`, as JSON text.
    pub fn metadata_json(&self, index: usize) -> String {
        Metadata::of(index).json()
    }

    /// Document `index` as a client document, under the id of document
    /// `id`: the memory run streams more documents than are generated, and
    /// reuses their contents under new ids.
    pub fn document(&self, index: usize, id: usize) -> Document {
        Document::from(proto::Document {
            id: Self::id(id),
            vector: self.vector(index).to_vec(),
            text: self.text(index),
            metadata: Some(Metadata::of(index).proto()),
            tenant: String::new(),
        })
    }

    /// Documents `range` as the store's batch: what fathom's server holds
    /// after decoding and validating a stream batch.
    pub fn batch(&self, range: Range<usize>) -> DocumentBatch {
        DocumentBatch {
            ids: range.clone().map(Self::id).collect(),
            vectors: range.clone().map(|i| self.vector(i).to_vec()).collect(),
            texts: range.clone().map(|i| self.text(i)).collect(),
            metadata: range.map(|i| self.metadata_json(i)).collect(),
        }
    }

    /// Query sets, the same for every path: `count` new vectors from the
    /// documents' distribution (independent of the documents) and `count` keyword queries, each
    /// two words of one random document, avoiding the 100 most common
    /// words, so that every query matches something and few match a lot.
    pub fn queries(&self, count: usize) -> Queries {
        let mut rng = Rng::new(QUERY_SEED, 0);
        let vectors = (0..count).map(|_| rng.embedding()).collect();
        let texts = (0..count)
            .map(|_| {
                let ranks = &self.word_ranks[rng.below(self.count)];
                let mut candidates: Vec<u16> = ranks
                    .iter()
                    .copied()
                    .filter(|&r| usize::from(r) >= QUERY_WORD_MIN_RANK)
                    .collect();
                candidates.sort_unstable();
                candidates.dedup();
                if candidates.len() < 2 {
                    candidates = ranks.clone();
                }
                let first = candidates.swap_remove(rng.below(candidates.len()));
                let second = candidates[rng.below(candidates.len())];
                format!(
                    "{} {}",
                    self.vocabulary.words[usize::from(first)],
                    self.vocabulary.words[usize::from(second)]
                )
            })
            .collect();
        Queries { vectors, texts }
    }
}

/// Query inputs shared by every query run.
#[derive(Debug, Clone)]
pub struct Queries {
    /// Query vectors, unit length.
    pub vectors: Vec<Vec<f32>>,
    /// Keyword queries.
    pub texts: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_unit_vectors_with_about_forty_words() {
        let a = Dataset::generate(50);
        let b = Dataset::generate(50);
        assert_eq!(a.vector(49), b.vector(49));
        assert_eq!(a.text(7), b.text(7));
        let norm: f32 = a.vector(3).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        let words = a.text(3).split(' ').count();
        assert!(WORDS_PER_DOCUMENT.contains(&words), "{words}");
    }

    #[test]
    fn one_bucket_is_one_percent_of_the_documents() {
        let in_bucket = (0..10_000).filter(|&i| Metadata::of(i).bucket == FILTER_BUCKET).count();
        assert_eq!(in_bucket, 100);
    }

    #[test]
    fn keyword_queries_are_two_words_of_a_document() {
        let data = Dataset::generate(200);
        let queries = data.queries(5);
        assert_eq!(queries.texts.len(), 5);
        for text in &queries.texts {
            assert_eq!(text.split(' ').count(), 2, "{text}");
        }
    }
}
