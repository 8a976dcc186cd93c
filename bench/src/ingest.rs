//! The ingest phase: the same documents written into the same table three
//! ways, in the same invocation — through fathom's `UpsertStream`, through
//! fathom's store in-process (`Store::upsert`: the same statement fathom
//! runs, without gRPC), and by server-side binary COPY, the ceiling.
//!
//! Every run starts from an empty, checkpointed table and ends with a check
//! that every document arrived.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use fathom_client::Client;
use fathom_server::domain::{Collection, Deadline, Tenant};
use fathom_server::store::Store;

use crate::database::{Database, Table};
use crate::dataset::Dataset;
use crate::stats::Spread;

/// Concurrent streams (or in-process writers).
pub const STREAMS: [usize; 2] = [1, 4];
/// Documents per batch.
pub const BATCH_SIZES: [usize; 3] = [100, 500, 1000];

/// How documents were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestPath {
    /// `Documents.UpsertStream` through `fathom-client`, to the fathom process.
    Fathom,
    /// `fathom_server::store::Store::upsert` in this process: fathom's SQL, no gRPC.
    InProcess,
    /// `COPY … FROM 'file' (FORMAT BINARY)`, read by the server itself.
    Copy,
}

impl IngestPath {
    /// How the report names the path.
    pub fn label(self) -> &'static str {
        match self {
            IngestPath::Fathom => "fathom UpsertStream",
            IngestPath::InProcess => "in-process Store::upsert",
            IngestPath::Copy => "server-side COPY (binary)",
        }
    }
}

/// One configuration's throughput over its runs.
#[derive(Debug, Clone)]
pub struct IngestCell {
    /// The path.
    pub path: IngestPath,
    /// Concurrent streams or writers (1 for COPY).
    pub streams: usize,
    /// Documents per batch (none for COPY).
    pub batch: Option<usize>,
    /// Documents per second.
    pub rows_per_second: Spread,
}

/// Every configuration of one ingest phase.
#[derive(Debug, Clone)]
pub struct IngestResults {
    /// Whether the HNSW index existed while writing.
    pub with_hnsw: bool,
    /// Documents per run.
    pub documents: usize,
    /// Runs per configuration.
    pub repeats: usize,
    /// The configurations, fathom's first.
    pub cells: Vec<IngestCell>,
}

impl IngestResults {
    /// The cell of a path and configuration.
    pub fn cell(&self, path: IngestPath, streams: usize, batch: Option<usize>) -> Option<&IngestCell> {
        self.cells
            .iter()
            .find(|c| c.path == path && c.streams == streams && c.batch == batch)
    }

    /// The COPY ceiling.
    pub fn copy(&self) -> Option<&IngestCell> {
        self.cells.iter().find(|c| c.path == IngestPath::Copy)
    }

    /// Fathom's fastest configuration, by median.
    pub fn best_fathom(&self) -> Option<&IngestCell> {
        self.cells
            .iter()
            .filter(|c| c.path == IngestPath::Fathom)
            .max_by(|a, b| a.rows_per_second.median.total_cmp(&b.rows_per_second.median))
    }
}

/// Everything an ingest run writes with and into.
pub struct Ingest<'a> {
    /// The documents.
    pub dataset: &'a Dataset,
    /// A client of the fathom process.
    pub client: &'a Client,
    /// Fathom's store, in this process.
    pub store: &'a Store,
    /// The collection, as the store knows it.
    pub collection: Arc<Collection>,
    /// Its name.
    pub collection_name: &'a str,
    /// Its table.
    pub table: &'a Table,
    /// The benchmark's own connections.
    pub database: &'a Database,
    /// Where COPY files go (readable by the cluster's user).
    pub work_dir: &'a Path,
}

impl Ingest<'_> {
    /// Writes documents `0..documents` `repeats` times per configuration.
    /// The repetitions are interleaved (every configuration once, then again),
    /// so a slow spell on the machine spreads over all of them.
    pub async fn measure(&self, documents: usize, repeats: usize, with_hnsw: bool) -> anyhow::Result<IngestResults> {
        let phase = if with_hnsw { "with HNSW" } else { "without HNSW" };
        let copy_file = self.copy_file_of(documents)?;
        let mut configurations = Vec::new();
        for streams in STREAMS {
            for batch in BATCH_SIZES {
                configurations.push((IngestPath::Fathom, streams, Some(batch)));
                configurations.push((IngestPath::InProcess, streams, Some(batch)));
            }
        }
        configurations.push((IngestPath::Copy, 1, None));
        let mut runs = vec![Vec::new(); configurations.len()];
        for repeat in 1..=repeats {
            for (&(path, streams, batch), runs) in configurations.iter().zip(&mut runs) {
                let rows_per_second = match (path, batch) {
                    (IngestPath::Fathom, Some(batch)) => self.through_fathom(documents, streams, batch).await,
                    (IngestPath::InProcess, Some(batch)) => self.in_process(documents, streams, batch).await,
                    _ => self.by_copy(documents, &copy_file).await,
                }
                .with_context(|| format!("ingest {phase}: {} ({streams} × {batch:?})", path.label()))?;
                eprintln!(
                    "  ingest {phase}, run {repeat}/{repeats}: {:<26} streams {streams} batch {:>5}: {:>8.0} rows/s",
                    path.label(),
                    batch.map_or("-".to_owned(), |b| b.to_string()),
                    rows_per_second
                );
                runs.push(rows_per_second);
            }
        }
        Ok(IngestResults {
            with_hnsw,
            documents,
            repeats,
            cells: configurations
                .into_iter()
                .zip(runs)
                .map(|((path, streams, batch), runs)| IngestCell {
                    path,
                    streams,
                    batch,
                    rows_per_second: Spread::of(&runs),
                })
                .collect(),
        })
    }

    /// The binary COPY file of documents `0..documents`, written once.
    fn copy_file_of(&self, documents: usize) -> anyhow::Result<PathBuf> {
        let path = self.work_dir.join(format!("documents-{documents}.pgcopy"));
        if !path.exists() {
            crate::copy_file::write(self.dataset, documents, &path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(path)
    }

    /// `streams` concurrent UpsertStreams, each over its own slice of the
    /// documents, cut into batches of `batch`.
    async fn through_fathom(&self, documents: usize, streams: usize, batch: usize) -> anyhow::Result<f64> {
        let shards: Vec<Vec<fathom_client::Document>> = shards(documents, streams)
            .into_iter()
            .map(|range| range.map(|i| self.dataset.document(i, i)).collect())
            .collect();
        self.database.reset(self.table).await?;
        let started = Instant::now();
        let writers: Vec<_> = shards
            .into_iter()
            .map(|shard| {
                let client = self.client.clone();
                let collection = self.collection_name.to_owned();
                tokio::spawn(async move {
                    client
                        .upsert_stream(collection, futures::stream::iter(shard))
                        .batch_documents(batch)
                        .send()
                        .await
                })
            })
            .collect();
        let mut written = 0;
        for writer in writers {
            written += writer.await??.documents;
        }
        let elapsed = started.elapsed();
        self.check(documents, written).await?;
        Ok(documents as f64 / elapsed.as_secs_f64())
    }

    /// `streams` concurrent writers calling `Store::upsert` (one transaction
    /// per batch, as fathom's stream does) over the same slices and batches.
    async fn in_process(&self, documents: usize, streams: usize, batch: usize) -> anyhow::Result<f64> {
        let shards: Vec<Vec<_>> = shards(documents, streams)
            .into_iter()
            .map(|range| {
                range
                    .clone()
                    .step_by(batch)
                    .map(|start| self.dataset.batch(start..(start + batch).min(range.end)))
                    .collect()
            })
            .collect();
        let tenant = Tenant::for_collection("tenant", "", false, 0)?;
        self.database.reset(self.table).await?;
        let started = Instant::now();
        let writers: Vec<_> = shards
            .into_iter()
            .map(|batches| {
                let store = self.store.clone();
                let collection = self.collection.clone();
                let tenant = tenant.clone();
                tokio::spawn(async move {
                    let mut written = 0;
                    for batch in batches {
                        written += store.upsert(&collection, &tenant, batch, Deadline::NONE).await?.value;
                    }
                    Ok::<u64, fathom_server::store::StoreError>(written)
                })
            })
            .collect();
        let mut written = 0;
        for writer in writers {
            written += writer.await??;
        }
        let elapsed = started.elapsed();
        self.check(documents, written).await?;
        Ok(documents as f64 / elapsed.as_secs_f64())
    }

    /// One server-side COPY of the file.
    async fn by_copy(&self, documents: usize, file: &Path) -> anyhow::Result<f64> {
        self.database.reset(self.table).await?;
        let started = Instant::now();
        let written = self.database.copy_from_file(self.table, file).await?;
        let elapsed = started.elapsed();
        self.check(documents, written).await?;
        Ok(documents as f64 / elapsed.as_secs_f64())
    }

    /// Every document was reported written, and is in the table.
    async fn check(&self, documents: usize, written: u64) -> anyhow::Result<()> {
        let stored = self.database.count(self.table).await?;
        ensure!(
            written == documents as u64 && stored == documents as u64,
            "wrote {documents} documents: {written} reported written, {stored} in the table"
        );
        Ok(())
    }
}

/// `0..documents` cut into `parts` contiguous slices of nearly equal size.
fn shards(documents: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, documents.max(1));
    (0..parts)
        .map(|part| part * documents / parts..(part + 1) * documents / parts)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_document_once() {
        let parts = shards(10, 4);
        assert_eq!(parts, vec![0..2, 2..5, 5..7, 7..10]);
    }
}
