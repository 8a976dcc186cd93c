//! The memory phase: fathom's peak resident memory while one UpsertStream
//! writes many documents (1,000,000 by default) into a collection of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use fathom_client::Client;

use crate::dataset::{DIMENSION, Dataset};
use crate::fathom_process::FathomProcess;

/// The collection the memory run writes into; dropped after.
const COLLECTION: &str = "bench_memory";
/// Documents per batch: fathom's largest.
pub const BATCH: usize = 1000;
/// How often RSS is sampled during the stream, as a cross-check of `VmHWM`.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What the memory run measured; sizes in bytes.
#[derive(Debug, Clone)]
pub struct MemoryResult {
    /// Documents streamed.
    pub documents: usize,
    /// fathom's peak RSS during the stream (`VmHWM`, reset just before it).
    pub peak_rss: u64,
    /// The highest RSS sampled every 20 ms during the stream.
    pub sampled_peak_rss: u64,
    /// RSS just before the stream.
    pub rss_before: u64,
    /// Peak RSS over every earlier phase (ingest and queries at concurrency 16).
    pub earlier_peak_rss: u64,
    /// Documents per second of the stream.
    pub rows_per_second: f64,
}

/// Streams `documents` documents (the dataset's contents reused under new
/// ids) through one UpsertStream in batches of [`BATCH`] and reads fathom's
/// memory.
pub async fn measure(
    client: &Client,
    fathom: &FathomProcess,
    dataset: &Dataset,
    documents: usize,
) -> anyhow::Result<MemoryResult> {
    client
        .create_collection(COLLECTION, DIMENSION as u32)
        .no_index()
        .send()
        .await?;
    let earlier_peak_rss = fathom.memory()?.peak_rss;
    fathom.reset_peak_memory()?;
    let rss_before = fathom.memory()?.rss;
    let streaming = AtomicBool::new(true);
    let sampled_peak = AtomicU64::new(rss_before);
    let started = Instant::now();
    let stream = async {
        let source = futures::stream::iter((0..documents).map(|i| dataset.document(i % dataset.len(), i)));
        let summary = client
            .upsert_stream(COLLECTION, source)
            .batch_documents(BATCH)
            .on_progress(move |summary| {
                if summary.batches % 100 == 0 {
                    eprintln!("  memory run: {} documents", summary.documents);
                }
            })
            .send()
            .await;
        streaming.store(false, Ordering::Relaxed);
        summary
    };
    let sampler = async {
        while streaming.load(Ordering::Relaxed) {
            if let Ok(memory) = fathom.memory() {
                sampled_peak.fetch_max(memory.rss, Ordering::Relaxed);
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    };
    let (summary, ()) = tokio::join!(stream, sampler);
    let elapsed = started.elapsed();
    let summary = summary?;
    ensure!(
        summary.documents == documents as u64,
        "the memory run wrote {} of {documents} documents",
        summary.documents
    );
    let peak_rss = fathom.memory()?.peak_rss;
    client.delete_collection(COLLECTION).await?;
    Ok(MemoryResult {
        documents,
        peak_rss,
        sampled_peak_rss: sampled_peak.into_inner(),
        rss_before,
        earlier_peak_rss,
        rows_per_second: documents as f64 / elapsed.as_secs_f64(),
    })
}
