//! `fathom-bench-embedding`: documents/s of fathom's local embedder
//! (all-MiniLM-L6-v2 in Rust, `fathom_server::embedding`) at 128 and 256
//! tokens a document, against the reference implementation (numpy,
//! bench/quality/embed.py) on the same texts in the same run.
//!
//! The texts are made here, from common words that are one token each, to
//! exactly the token count wanted (`[CLS]` and `[SEP]` included); the
//! reference gets them in a JSON file. Both sides are timed from text to
//! vectors, tokenization included, after a warm-up.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use fathom_server::embedding::LocalEmbedder;

/// Embedding throughput of the local model against its reference.
#[derive(Parser)]
struct Options {
    /// The model folder (`make models` installs it).
    #[arg(long, default_value = ".fathom/models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// A Python with numpy, scipy, tokenizers and safetensors to time the
    /// reference with. By default the reference runs through
    /// bench/quality/run.sh, which makes that venv from the pinned, hashed
    /// bench/quality/requirements.txt (once).
    #[arg(long)]
    reference_python: Option<PathBuf>,
    /// Time fathom only.
    #[arg(long, conflicts_with = "reference_python")]
    no_reference: bool,
    /// Documents per measurement (each length is measured on its own set).
    #[arg(long, default_value_t = 256)]
    documents: usize,
    /// Threads of fathom's embedder (default: every core).
    #[arg(long)]
    threads: Option<NonZeroUsize>,
}

const LENGTHS: [usize; 2] = [128, 256];

const WORDS: &[&str] = &[
    "vector", "search", "server", "query", "index", "model", "text", "data", "fast", "small", "the", "of", "and", "to",
    "in", "is", "for", "with", "on", "that", "library", "package", "tool", "game", "system", "network", "file",
    "image", "audio", "video", "simple", "secure", "modern", "document", "stream", "batch", "graph",
];

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let mut embedder = LocalEmbedder::load(&options.model_dir)?;
    if let Some(threads) = options.threads {
        embedder = embedder.with_threads(threads);
    }
    let runs: Vec<Vec<String>> = LENGTHS
        .iter()
        .map(|&n| texts(&embedder, n, options.documents))
        .collect::<Result<_, _>>()?;

    let refs: Vec<&str> = runs[0].iter().take(8).map(String::as_str).collect();
    embedder.embed(&refs);
    let ours: Vec<f64> = runs
        .iter()
        .map(|texts| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let start = Instant::now();
            embedder.embed(&refs);
            texts.len() as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    // The reference twice: numpy's BLAS on every core, and on one thread,
    // which is faster when the cores are busy (OpenBLAS's threads spin);
    // fathom is compared with the faster of the two.
    let reference = if options.no_reference {
        None
    } else {
        let python = options.reference_python.as_deref();
        let all_cores = reference_throughput(python, &options.model_dir, &runs, None)?;
        let one_thread = reference_throughput(python, &options.model_dir, &runs, Some(1))?;
        Some((all_cores, one_thread))
    };

    println!(
        "| tokens a document | fathom (Rust) documents/s | reference (numpy) documents/s, BLAS on all cores | on one thread | fathom / the faster |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, n) in LENGTHS.iter().enumerate() {
        match &reference {
            Some((all, one)) => {
                let ratio = ours[i] / all[i].max(one[i]);
                println!(
                    "| {n} | {:.1} | {:.1} | {:.1} | {ratio:.2} x |",
                    ours[i], all[i], one[i]
                );
            }
            None => println!("| {n} | {:.1} | - | - | - |", ours[i]),
        }
    }
    Ok(())
}

/// `count` distinct texts of exactly `tokens` tokens each.
fn texts(embedder: &LocalEmbedder, tokens: usize, count: usize) -> anyhow::Result<Vec<String>> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ tokens as u64;
    (0..count)
        .map(|_| {
            let words: Vec<&str> = (0..tokens - 2)
                .map(|_| {
                    // xorshift64: a fixed, dependency-free word sequence.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    WORDS[(state % WORDS.len() as u64) as usize]
                })
                .collect();
            let text = words.join(" ");
            let got = embedder.token_ids(&text).len();
            if got != tokens {
                bail!("a text meant to be {tokens} tokens has {got}");
            }
            Ok(text)
        })
        .collect()
}

/// Documents/s of the reference on each run's texts, with `python` or else
/// in bench/quality's venv, its BLAS limited to `blas_threads` if given.
fn reference_throughput(
    python: Option<&Path>,
    model_dir: &Path,
    runs: &[Vec<String>],
    blas_threads: Option<usize>,
) -> anyhow::Result<Vec<f64>> {
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = bench_dir.join("embedding/reference_throughput.py");
    let texts_file = std::env::temp_dir().join(format!("fathom-bench-embedding-{}.json", std::process::id()));
    std::fs::write(&texts_file, serde_json::to_vec(runs)?)?;
    let mut command = match python {
        Some(python) => {
            let mut c = Command::new(python);
            c.arg(&script);
            c
        }
        None => {
            let mut c = Command::new(bench_dir.join("quality/run.sh"));
            c.env("QUALITY_SCRIPT", &script);
            c
        }
    };
    if let Some(threads) = blas_threads {
        command
            .env("OPENBLAS_NUM_THREADS", threads.to_string())
            .env("OMP_NUM_THREADS", threads.to_string());
    }
    let output = command
        .arg(model_dir.canonicalize()?)
        .arg(&texts_file)
        .stderr(Stdio::inherit())
        .output();
    let _ = std::fs::remove_file(&texts_file);
    let output = output.context("running the reference")?;
    if !output.status.success() {
        bail!("the reference failed ({})", output.status);
    }
    let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)?;
    Ok(results
        .iter()
        .map(|r| r["documents"].as_f64().unwrap_or(0.0) / r["seconds"].as_f64().unwrap_or(f64::NAN))
        .collect())
}
