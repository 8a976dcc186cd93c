//! The local model against its reference implementation: the token ids of
//! the Hugging Face `tokenizers` library and the vectors of the numpy port
//! (bench/quality/embed.py) for 100 varied texts, recorded in
//! testdata/minilm_reference.json by scripts/embedding-reference.py.
//!
//! These tests need the model installed (`make models`); without it they
//! fail, saying so.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use serde::Deserialize;

use super::LocalEmbedder;

#[derive(Deserialize)]
struct Fixture {
    max_seq_length: usize,
    dimension: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    embedding_f16_base64: String,
}

impl Case {
    fn reference_vector(&self) -> Vec<f32> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.embedding_f16_base64)
            .expect("base64");
        bytes
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect()
    }
}

/// IEEE 754 half precision to single (normal, subnormal, zero; the
/// fixture holds no infinities or NaNs).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f32::from(bits & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f32.powi(-24),
        _ => (1.0 + mantissa / 1024.0) * 2f32.powi(exponent - 15),
    }
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("testdata/minilm_reference.json")).expect("the fixture parses")
}

/// The model `make models` installs, loaded once for all tests.
fn embedder() -> &'static LocalEmbedder {
    static EMBEDDER: OnceLock<LocalEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.fathom/models/all-MiniLM-L6-v2");
        LocalEmbedder::load(&dir).unwrap_or_else(|e| {
            panic!(
                "the local model is not installed in {}: run `make models` first ({e})",
                dir.display()
            )
        })
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn token_ids_equal_the_reference_tokenizer_on_every_text() {
    let fixture = fixture();
    let embedder = embedder();
    assert_eq!(embedder.max_tokens(), fixture.max_seq_length);
    let mismatches: Vec<String> = fixture
        .cases
        .iter()
        .filter(|case| embedder.token_ids(&case.text) != case.ids)
        .map(|case| {
            format!(
                "{:?}: ours {:?}, reference {:?}",
                case.text,
                embedder.token_ids(&case.text),
                case.ids
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} texts tokenized differently:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn vectors_equal_the_reference_implementation_on_every_text() {
    let fixture = fixture();
    assert_eq!(fixture.cases.len(), 100);
    let embedder = embedder();
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();
    let vectors = embedder.embed(&texts);
    let mut worst = (f64::INFINITY, "");
    for (case, ours) in fixture.cases.iter().zip(&vectors) {
        assert_eq!(ours.len(), fixture.dimension);
        let similarity = cosine(ours, &case.reference_vector());
        if similarity < worst.0 {
            worst = (similarity, &case.text);
        }
    }
    println!("lowest cosine with the reference: {:.9} ({:?})", worst.0, worst.1);
    assert!(
        worst.0 >= 0.999,
        "cosine {} with the reference for {:?}",
        worst.0,
        worst.1
    );
}

#[test]
fn a_text_embeds_the_same_alone_as_in_a_batch() {
    let embedder = embedder();
    let batch = embedder.embed(&["a short text", "a somewhat longer text about vector search", ""]);
    let alone = embedder.embed(&["a somewhat longer text about vector search"]);
    assert!(cosine(&batch[1], &alone[0]) > 0.999_999);
    assert!(batch.iter().all(|v| (cosine(v, v) - 1.0).abs() < 1e-6));
}
