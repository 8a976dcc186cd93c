//! Time to searchable of a fresh load: from nothing to a collection whose
//! searches use its HNSW index, three ways over the same documents.
//!
//! - *fathom import*: the release `fathom` binary as a user runs it, `fathom
//!   collections create` with no index flag (the index is built
//!   automatically), then `fathom import FILE` of a JSON Lines file, whose
//!   stream's end builds the index in bulk; both commands timed together,
//!   process starts included.
//! - *one SDK call*: a collection created with defaults through
//!   `fathom-client`, then one `upsert_stream` call over every document,
//!   which returns once the server has built the index.
//! - *baseline*: a table of the same shape (created through fathom with
//!   `defer_index`, so without its HNSW index), server-side binary `COPY …
//!   FROM 'file'`, then `CREATE INDEX … USING hnsw`; both statements timed
//!   together.
//!
//! Each run starts checkpointed, and its collection is deleted after it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fathom_client::{Client, proto};

use crate::database::{Database, IndexDefinition, Table};
use crate::dataset::{DIMENSION, Dataset, Queries};
use crate::hand_written_sql::HandWrittenSql;
use crate::matched_recall::{self, Recall};
use crate::stats::Spread;

/// The collection `fathom import` loads.
const FATHOM_COLLECTION: &str = "bench_load";
/// The collection the baseline loads.
const BASELINE_COLLECTION: &str = "bench_load_copy";

/// What this phase measured; times in seconds.
#[derive(Debug, Clone)]
pub struct SearchableResults {
    /// Documents loaded per run.
    pub documents: usize,
    /// Runs per figure.
    pub repeats: usize,
    /// HNSW parameters of both indexes.
    pub m: u32,
    /// HNSW ef_construction of both indexes.
    pub ef_construction: u32,
    /// Size of the JSON Lines file.
    pub jsonl_bytes: u64,
    /// Size of the binary COPY file.
    pub copy_bytes: u64,
    /// `fathom collections create` (defaults) and `fathom import`, together.
    pub fathom: Spread,
    /// CreateCollection (defaults) and one `upsert_stream` call, together.
    pub sdk: Spread,
    /// COPY and CREATE INDEX together.
    pub baseline: Spread,
    /// The COPY alone.
    pub baseline_copy: Spread,
    /// The CREATE INDEX alone.
    pub baseline_index: Spread,
    /// Whether GetCollection said INDEX_STATE_READY after every import and
    /// every SDK call.
    pub ready_after_import: bool,
    /// Recall@10 of fathom's default vector search on the imported
    /// collection (the last run's), against exact results.
    pub recall: Recall,
}

/// Where and with what this phase loads.
pub struct TimeToSearchable<'a> {
    /// The documents.
    pub dataset: &'a Dataset,
    /// The queries whose recall is measured.
    pub queries: Arc<Queries>,
    /// A client of the fathom process.
    pub client: &'a Client,
    /// The fathom process's gRPC URL, for the CLI.
    pub fathom_url: &'a str,
    /// The release `fathom` binary.
    pub fathom_bin: &'a Path,
    /// The benchmark's own connections.
    pub database: &'a Database,
    /// The benchmark database's URL, for the exact results.
    pub database_url: &'a str,
    /// Where the files go (readable by the cluster's user).
    pub work_dir: &'a Path,
    /// HNSW m of both indexes.
    pub m: u32,
    /// HNSW ef_construction of both indexes.
    pub ef_construction: u32,
}

impl TimeToSearchable<'_> {
    /// Loads `documents` documents both ways, `repeats` times, interleaved;
    /// then measures recall over the first `recall_queries` queries.
    pub async fn measure(
        &self,
        documents: usize,
        repeats: usize,
        recall_queries: usize,
    ) -> anyhow::Result<SearchableResults> {
        let jsonl = self.work_dir.join(format!("documents-{documents}.jsonl"));
        let jsonl_bytes = crate::jsonl_file::write(self.dataset, documents, &jsonl)
            .with_context(|| format!("writing {}", jsonl.display()))?;
        let copy_file = self.work_dir.join(format!("documents-{documents}.pgcopy"));
        if !copy_file.exists() {
            crate::copy_file::write(self.dataset, documents, &copy_file)
                .with_context(|| format!("writing {}", copy_file.display()))?;
        }
        let copy_bytes = std::fs::metadata(&copy_file)?.len();
        let (mut fathom, mut baseline, mut copies, mut builds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut sdk = Vec::new();
        let mut ready_after_import = true;
        let mut recall = None;
        for repeat in 1..=repeats {
            let (copy, build) = self.baseline(documents, &copy_file).await?;
            eprintln!(
                "  time to searchable, run {repeat}/{repeats}: COPY {:.1} s + CREATE INDEX {:.1} s = {:.1} s",
                copy.as_secs_f64(),
                build.as_secs_f64(),
                (copy + build).as_secs_f64()
            );
            copies.push(copy.as_secs_f64());
            builds.push(build.as_secs_f64());
            baseline.push((copy + build).as_secs_f64());

            let elapsed = self.through_fathom_import(&jsonl).await?;
            let collection = self.client.get_collection(FATHOM_COLLECTION).await?;
            let ready = collection.index_state() == proto::IndexState::Ready;
            ready_after_import &= ready;
            let stored = self.database.count(&Table::of(FATHOM_COLLECTION)).await?;
            ensure!(
                stored == documents as u64,
                "fathom import stored {stored} of {documents} documents"
            );
            eprintln!(
                "  time to searchable, run {repeat}/{repeats}: fathom collections create + fathom import {:.1} s; \
                 index state {:?}",
                elapsed.as_secs_f64(),
                collection.index_state()
            );
            fathom.push(elapsed.as_secs_f64());

            self.client.delete_collection(FATHOM_COLLECTION).await?;
            let elapsed = self.through_one_sdk_call(documents).await?;
            let collection = self.client.get_collection(FATHOM_COLLECTION).await?;
            ready_after_import &= collection.index_state() == proto::IndexState::Ready;
            let stored = self.database.count(&Table::of(FATHOM_COLLECTION)).await?;
            ensure!(
                stored == documents as u64,
                "one upsert_stream call stored {stored} of {documents} documents"
            );
            eprintln!(
                "  time to searchable, run {repeat}/{repeats}: CreateCollection + one upsert_stream call {:.1} s; \
                 index state {:?}",
                elapsed.as_secs_f64(),
                collection.index_state()
            );
            sdk.push(elapsed.as_secs_f64());
            if repeat == repeats {
                recall = Some(self.recall(recall_queries).await?);
            }
            self.client.delete_collection(FATHOM_COLLECTION).await?;
        }
        std::fs::remove_file(&jsonl).with_context(|| format!("deleting {}", jsonl.display()))?;
        let recall = recall.context("no run measured recall")?;
        eprintln!(
            "  recall@10 of fathom's default search after the import: {:.4} (min {:.2})",
            recall.mean, recall.min
        );
        Ok(SearchableResults {
            documents,
            repeats,
            m: self.m,
            ef_construction: self.ef_construction,
            jsonl_bytes,
            copy_bytes,
            fathom: Spread::of(&fathom),
            sdk: Spread::of(&sdk),
            baseline: Spread::of(&baseline),
            baseline_copy: Spread::of(&copies),
            baseline_index: Spread::of(&builds),
            ready_after_import,
            recall,
        })
    }

    /// COPY into a fresh table of fathom's shape, then CREATE INDEX; the
    /// time of each. The collection is deleted after.
    async fn baseline(&self, documents: usize, copy_file: &Path) -> anyhow::Result<(Duration, Duration)> {
        self.client
            .create_collection(BASELINE_COLLECTION, DIMENSION as u32)
            .hnsw(self.m, self.ef_construction)
            .defer_index(true)
            .send()
            .await?;
        let table = Table::of(BASELINE_COLLECTION);
        let index = IndexDefinition {
            name: format!("{BASELINE_COLLECTION}_bench_hnsw"),
            create: format!(
                "CREATE INDEX {BASELINE_COLLECTION}_bench_hnsw ON {} USING hnsw (embedding vector_cosine_ops) \
                 WITH (m = {}, ef_construction = {})",
                table.sql(),
                self.m,
                self.ef_construction
            ),
        };
        self.database.checkpoint().await?;
        let started = Instant::now();
        let copied = self.database.copy_from_file(&table, copy_file).await?;
        let copy = started.elapsed();
        let build = self.database.create_index(&index).await?;
        ensure!(
            copied == documents as u64,
            "COPY wrote {copied} of {documents} documents"
        );
        self.client.delete_collection(BASELINE_COLLECTION).await?;
        Ok((copy, build))
    }

    /// `fathom collections create …` with no index flag and `fathom
    /// import`, one after the other; their time together.
    async fn through_fathom_import(&self, jsonl: &Path) -> anyhow::Result<Duration> {
        self.database.checkpoint().await?;
        let dimension = DIMENSION.to_string();
        let (m, ef_construction) = (self.m.to_string(), self.ef_construction.to_string());
        let jsonl = jsonl.to_str().context("the JSON Lines path is not UTF-8")?;
        let started = Instant::now();
        self.fathom_cli(&[
            "collections",
            "create",
            FATHOM_COLLECTION,
            "--dimension",
            &dimension,
            "--metric",
            "cosine",
            "--m",
            &m,
            "--ef-construction",
            &ef_construction,
        ])
        .await?;
        self.fathom_cli(&["import", jsonl, "--collection", FATHOM_COLLECTION])
            .await?;
        Ok(started.elapsed())
    }

    /// CreateCollection with defaults and one `upsert_stream` call over
    /// every document (built before the clock starts, as an application
    /// holds them); their time together.
    async fn through_one_sdk_call(&self, documents: usize) -> anyhow::Result<Duration> {
        let all: Vec<fathom_client::Document> = (0..documents).map(|i| self.dataset.document(i, i)).collect();
        self.database.checkpoint().await?;
        let started = Instant::now();
        self.client
            .create_collection(FATHOM_COLLECTION, DIMENSION as u32)
            .hnsw(self.m, self.ef_construction)
            .send()
            .await?;
        let summary = self
            .client
            .upsert_stream(FATHOM_COLLECTION, futures::stream::iter(all))
            .send()
            .await?;
        ensure!(
            summary.documents == documents as u64,
            "the upsert_stream call wrote {} of {documents} documents",
            summary.documents
        );
        Ok(started.elapsed())
    }

    /// Runs the `fathom` CLI against the fathom process, its output to a log.
    async fn fathom_cli(&self, args: &[&str]) -> anyhow::Result<()> {
        let log = self.log_path();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let status = tokio::process::Command::new(self.fathom_bin)
            .arg("--server")
            .arg(self.fathom_url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .status()
            .await
            .with_context(|| format!("running {}", self.fathom_bin.display()))?;
        if !status.success() {
            bail!("`fathom {}` failed ({status}); see {}", args.join(" "), log.display());
        }
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.work_dir.join("fathom-cli.log")
    }

    /// Recall@10 of fathom's default vector search on the imported
    /// collection, against the exact results of the same documents.
    async fn recall(&self, recall_queries: usize) -> anyhow::Result<Recall> {
        let table = Table::of(FATHOM_COLLECTION);
        let count = recall_queries.min(self.queries.vectors.len());
        // Exact results do not depend on hnsw.ef_search.
        let sql = HandWrittenSql::connect(self.database_url, &table, matched_recall::CONCURRENCY as u32, 40).await?;
        let exact = matched_recall::in_order(count, |i| {
            let (sql, queries) = (sql.clone(), self.queries.clone());
            async move { sql.exact_ids(&queries.vectors[i]).await }
        })
        .await?;
        sql.close().await;
        let found = matched_recall::in_order(count, |i| {
            matched_recall::fathom_vector_ids(self.client, FATHOM_COLLECTION, &self.queries, None, i)
        })
        .await?;
        Ok(Recall::of(&exact, &found))
    }
}
