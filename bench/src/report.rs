//! The results as markdown, ready for `docs/benchmarks.md`, with every
//! target checked.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cluster::SETTINGS;
use crate::database::Versions;
use crate::ingest::{IngestPath, IngestResults};
use crate::machine::Machine;
use crate::matched_recall::{CONCURRENCY as MATCHED_CONCURRENCY, EF_SEARCH_SWEEP, MatchedResults, RECALL_TARGET};
use crate::memory::{self, MemoryResult};
use crate::options::{Only, Plan};
use crate::query::{CONCURRENCY, LIMIT, QueryKind, QueryResults};
use crate::stats::Spread;
use crate::time_to_searchable::SearchableResults;

/// The memory target's stream length.
const MEMORY_TARGET_DOCUMENTS: usize = 1_000_000;

/// How the query collection's rows got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryCollectionSource {
    /// The last ingest run without the index left them.
    LastIngestRun,
    /// A server-side binary COPY (`BENCH_ONLY=matched`, no ingest phase).
    Copy,
}

/// How long building the query collection's HNSW index took, and its sizes.
#[derive(Debug, Clone)]
pub struct IndexBuild {
    /// How the rows were loaded.
    pub source: QueryCollectionSource,
    /// Rows indexed.
    pub documents: usize,
    /// Wall time of the COPY that loaded them, if they were copied.
    pub copy_elapsed: Option<Duration>,
    /// Wall time of `CREATE INDEX`.
    pub elapsed: Duration,
    /// fathom's `CREATE INDEX`, as PostgreSQL reports it.
    pub definition: String,
    /// Wall time of `CREATE INDEX` of the hand-written searches' index.
    pub hand_written_elapsed: Duration,
    /// Its `CREATE INDEX`.
    pub hand_written_definition: String,
    /// Bytes of the table with TOAST.
    pub table_bytes: u64,
    /// Bytes of its indexes (fathom's, before the hand-written one).
    pub index_bytes: u64,
}

/// Everything one invocation measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The command line, with the `BENCH_*` environment it ran with.
    pub command: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its wall time, excluding the build.
    pub wall_time: Duration,
    /// The machine.
    pub machine: Machine,
    /// Load averages before and after.
    pub load: (String, String),
    /// PostgreSQL and pgvector.
    pub versions: Versions,
    /// Sizes and repetitions.
    pub plan: Plan,
    /// Ingest into a collection without its HNSW index (not with `BENCH_ONLY`).
    pub ingest_without_index: Option<IngestResults>,
    /// Ingest into a collection with its HNSW index (not with `BENCH_ONLY`).
    pub ingest_with_index: Option<IngestResults>,
    /// The query collection's index build.
    pub index_build: Option<IndexBuild>,
    /// The query phase (only vector and hybrid at concurrency 1 with `BENCH_ONLY=matched`).
    pub queries: Option<QueryResults>,
    /// Vector search at matched recall and hybrid, against hand-written SQL.
    pub matched: Option<MatchedResults>,
    /// Time to searchable of a fresh load (not with `BENCH_ONLY=matched`).
    pub searchable: Option<SearchableResults>,
    /// The memory phase (not with `BENCH_ONLY`).
    pub memory: Option<MemoryResult>,
}

/// One target and whether this run met it.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is promised.
    pub claim: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured.
    pub met: Option<bool>,
}

impl Report {
    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_setup(&mut out);
        for ingest in [&self.ingest_without_index, &self.ingest_with_index]
            .into_iter()
            .flatten()
        {
            write_ingest(&mut out, ingest);
        }
        if let Some(build) = &self.index_build {
            write_index_build(&mut out, build);
        }
        if let Some(queries) = &self.queries {
            self.write_queries(&mut out, queries);
            if !queries.recall.is_empty() {
                write_recall(&mut out, queries);
            }
        }
        if let Some(matched) = &self.matched {
            write_matched(&mut out, matched, self.plan.documents);
        }
        if let Some(searchable) = &self.searchable {
            write_searchable(&mut out, searchable);
        }
        if let Some(memory) = &self.memory {
            write_memory(&mut out, memory);
        }
        self.write_targets(&mut out);
        out
    }

    fn write_setup(&self, out: &mut String) {
        let m = &self.machine;
        let _ = writeln!(out, "## Results\n");
        let _ = writeln!(
            out,
            "Run on {} with `{}`; the benchmark took {:.1} min (plus the release build).\n",
            self.started_at.format("%Y-%m-%d %H:%M UTC"),
            self.command,
            self.wall_time.as_secs_f64() / 60.0
        );
        let _ = writeln!(
            out,
            "- **Machine:** {}, {} cores, {:.1} GiB memory, Linux {}; load average {} at the start and {} at the end. \
             The client, fathom and PostgreSQL share these cores.",
            m.cpu, m.cores, m.memory_gib, m.kernel, self.load.0, self.load.1
        );
        let _ = writeln!(
            out,
            "- **Software:** PostgreSQL {}, pgvector {}; fathom and this benchmark built with `--release`.",
            self.versions.postgres, self.versions.pgvector
        );
        let settings: Vec<String> = SETTINGS
            .iter()
            .map(|(name, value, why)| format!("`{name}={value}` ({why})"))
            .collect();
        let _ = writeln!(
            out,
            "- **PostgreSQL settings** beyond the defaults (durability stays at the defaults: fsync, \
             synchronous_commit and full_page_writes on): {}.",
            settings.join("; ")
        );
        let _ = writeln!(
            out,
            "- **Data:** 768-d unit vectors near a random 32-d subspace (embedding-like; seeded), 35–45 words of text (Zipf over 10,000 \
             made-up words), metadata `{{bucket, category, year}}`; the same rows for every path. Queries: new vectors from the same \
             distribution; keyword queries are two words of a random document, skipping the 100 most common words; the \
             filter is `bucket = {}` (1 % of the documents). Every search asks for {LIMIT} hits.",
            crate::dataset::FILTER_BUCKET
        );
        let _ = writeln!(
            out,
            "- **Figures** are the median of the repeated runs, with [min–max]; ratios are of medians.{}{}\n",
            if self.plan.quick {
                " **Quick mode: small sizes and short runs, for development only.**"
            } else {
                ""
            },
            match self.plan.only {
                Some(Only::Matched) => {
                    " **`BENCH_ONLY=matched`: only the query collection (loaded by COPY), vector and hybrid latency at \
                     concurrency 1, and the comparisons with hand-written SQL.**"
                }
                Some(Only::Searchable) => " **`BENCH_ONLY=searchable`: only the time to searchable of a fresh load.**",
                Some(Only::Queries) => {
                    " **`BENCH_ONLY=queries`: only the query measurements, on a query collection loaded by COPY.**"
                }
                None => "",
            }
        );
    }

    fn write_queries(&self, out: &mut String, q: &QueryResults) {
        let _ = writeln!(
            out,
            "### Query: {} × 768 with HNSW (m=16, ef_construction=64), {} runs of {:.1} s per figure\n",
            thousands(self.plan.documents as f64),
            q.repeats,
            q.duration.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "Latency is from sending the request to the last hit read. \"in-process\" is `Store::search` in the \
             benchmark's process: the same SQL and session settings on a pool of the same size, without gRPC.\n"
        );
        let _ = writeln!(
            out,
            "| kind | conc. | fathom p50 ms | p95 | p99 | fathom QPS | in-process p50 ms | p95 | p99 | in-process QPS | \
             Δ p50 ms | QPS fathom ÷ in-process |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for cell in &q.cells {
            let (f, p) = (&cell.fathom, &cell.in_process);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.2} | {:.2} | {} | {:+.3} | {:.2} |",
                cell.kind.label(),
                cell.concurrency,
                spread(f.p50_ms, 3),
                f.p95_ms.median,
                f.p99_ms.median,
                spread(f.qps, 0),
                spread(p.p50_ms, 3),
                p.p95_ms.median,
                p.p99_ms.median,
                spread(p.qps, 0),
                f.p50_ms.median - p.p50_ms.median,
                f.qps.median / p.qps.median
            );
        }
        for (concurrency, run) in &q.ts_rank_keyword {
            let _ = writeln!(
                out,
                "| keyword, `ts_rank` leg (without pg_textsearch) | {concurrency} | | | | | {} | {:.2} | {:.2} | {} | | |",
                spread(run.p50_ms, 3),
                run.p95_ms.median,
                run.p99_ms.median,
                spread(run.qps, 0),
            );
        }
        let _ = writeln!(
            out,
            "\nFor scale: a gRPC round trip to fathom that does no database work (`grpc.health.v1.Health/Check`, \
             concurrency 1) takes p50 {} ms, p99 {:.3} ms.\n",
            spread(q.transport.p50_ms, 3),
            q.transport.p99_ms.median
        );
    }

    fn write_targets(&self, out: &mut String) {
        let _ = writeln!(out, "### Targets (2 cores, 24 GiB)\n");
        let _ = writeln!(out, "| target | measured | result |");
        let _ = writeln!(out, "|---|---|---|");
        for target in self.targets() {
            let result = match target.met {
                Some(true) => "pass",
                Some(false) => "**miss**",
                None => "not measured",
            };
            let _ = writeln!(out, "| {} | {} | {result} |", target.claim, target.measured);
        }
        let memory_size = self.memory.as_ref().map(|m| m.documents);
        if self.plan.quick || memory_size.is_some_and(|documents| documents != MEMORY_TARGET_DOCUMENTS) {
            let _ = writeln!(
                out,
                "\nThese sizes are not the targets' sizes; the results are indicative only."
            );
        }
    }

    /// Every target, checked against this run; "not measured" for the
    /// phases that did not run.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        for (ingest, index) in [
            (&self.ingest_without_index, "without"),
            (&self.ingest_with_index, "with"),
        ] {
            let claim = format!("Ingest through fathom ≥ 0.8 × server-side binary COPY ({index} the HNSW index)");
            let best = ingest.as_ref().and_then(|i| Some((i, i.best_fathom()?, i.copy()?)));
            targets.push(match best {
                Some((ingest, best, copy)) => {
                    let ratio = best.rows_per_second.median / copy.rows_per_second.median;
                    let single = ingest
                        .cells
                        .iter()
                        .filter(|c| c.path == IngestPath::Fathom && c.streams == 1)
                        .map(|c| c.rows_per_second.median / copy.rows_per_second.median)
                        .fold(f64::NAN, f64::max);
                    Target {
                        claim,
                        measured: format!(
                            "{ratio:.2} × COPY (best: {} streams × {}); best single stream {single:.2} ×",
                            best.streams,
                            best.batch.unwrap_or(0)
                        ),
                        met: Some(ratio >= 0.8),
                    }
                }
                None => missing(claim),
            });
        }
        let q = self.queries.as_ref();
        let vector_1 = q.and_then(|q| q.cell(QueryKind::Vector, 1));
        let hybrid_1 = q.and_then(|q| q.cell(QueryKind::Hybrid, 1));
        let top = *CONCURRENCY.last().unwrap_or(&1);
        let claim = "Vector p50 through fathom ≤ in-process + 0.3 ms (concurrency 1)".to_owned();
        targets.push(match vector_1 {
            Some(c) => {
                let delta = c.fathom.p50_ms.median - c.in_process.p50_ms.median;
                Target {
                    claim,
                    measured: format!(
                        "{delta:+.3} ms ({:.3} vs {:.3} ms)",
                        c.fathom.p50_ms.median, c.in_process.p50_ms.median
                    ),
                    met: Some(delta <= 0.3),
                }
            }
            None => missing(claim),
        });
        let claim = format!("Vector QPS through fathom ≥ 0.9 × in-process (concurrency {top})");
        targets.push(match q.and_then(|q| q.cell(QueryKind::Vector, top)) {
            Some(c) => {
                let ratio = c.fathom.qps.median / c.in_process.qps.median;
                Target {
                    claim,
                    measured: format!(
                        "{ratio:.2} × ({:.0} vs {:.0} QPS)",
                        c.fathom.qps.median, c.in_process.qps.median
                    ),
                    met: Some(ratio >= 0.9),
                }
            }
            None => missing(claim),
        });
        for bound in [1.5, 1.3] {
            let claim = format!("Hybrid p50 ≤ {bound} × vector p50 (through fathom, concurrency 1)");
            targets.push(match (hybrid_1, vector_1) {
                (Some(h), Some(v)) => {
                    let ratio = h.fathom.p50_ms.median / v.fathom.p50_ms.median;
                    let in_process = h.in_process.p50_ms.median / v.in_process.p50_ms.median;
                    Target {
                        claim,
                        measured: format!(
                            "{ratio:.2} × ({:.3} vs {:.3} ms); in-process {in_process:.2} ×",
                            h.fathom.p50_ms.median, v.fathom.p50_ms.median
                        ),
                        met: Some(ratio <= bound),
                    }
                }
                _ => missing(claim),
            });
        }
        let top_keyword = q.and_then(|q| {
            let (concurrency, ts_rank) = q.ts_rank_keyword.last()?;
            Some((q.cell(QueryKind::Keyword, *concurrency)?, *concurrency, ts_rank))
        });
        let claim = "Keyword QPS (BM25) ≥ 3 × the `ts_rank` leg's (in-process, top concurrency)".to_owned();
        targets.push(match top_keyword {
            Some((bm25, concurrency, ts_rank)) => {
                let ratio = bm25.in_process.qps.median / ts_rank.qps.median;
                Target {
                    claim,
                    measured: format!(
                        "{ratio:.2} × ({:.0} vs {:.0} QPS at concurrency {concurrency}; through fathom {:.0} QPS)",
                        bm25.in_process.qps.median, ts_rank.qps.median, bm25.fathom.qps.median
                    ),
                    met: Some(ratio >= 3.0),
                }
            }
            None => missing(claim),
        });
        let claim = format!("Vector recall@{LIMIT} ≥ 0.95 at default settings");
        targets.push(match q.and_then(|q| q.recall(QueryKind::Vector)) {
            Some(r) => Target {
                claim,
                measured: format!("{:.4} (lowest query {:.2})", r.mean, r.min),
                met: Some(r.mean >= 0.95),
            },
            None => missing(claim),
        });
        let claim = format!("Filtered (1 %) search returns {LIMIT} hits, recall@{LIMIT} ≥ 0.9");
        targets.push(match q.and_then(|q| q.recall(QueryKind::Filtered)) {
            Some(r) => Target {
                claim,
                measured: format!(
                    "{}/{} queries with {LIMIT} hits; recall {:.4}",
                    r.full_results, r.queries, r.mean
                ),
                met: Some(r.full_results == r.queries && r.mean >= 0.9),
            },
            None => missing(claim),
        });
        targets.extend(self.matched_targets());
        targets.extend(self.searchable_targets());
        let claim = format!(
            "fathom peak RSS ≤ 300 MB while streaming {} documents",
            thousands(MEMORY_TARGET_DOCUMENTS as f64)
        );
        targets.push(match &self.memory {
            Some(memory) => Target {
                claim,
                measured: format!(
                    "{:.1} MB over {} documents",
                    mb(memory.peak_rss),
                    thousands(memory.documents as f64)
                ),
                met: Some(memory.peak_rss as f64 <= 300e6),
            },
            None => missing(claim),
        });
        targets
    }

    /// The targets of the time to searchable.
    fn searchable_targets(&self) -> Vec<Target> {
        let s = self.searchable.as_ref();
        let claim = "Time to searchable, default collection, via fathom import and via one SDK call ≤ 1.3 × COPY + \
                     CREATE INDEX"
            .to_owned();
        let time = match s {
            Some(s) => {
                let ratio = s.fathom.median.max(s.sdk.median) / s.baseline.median;
                Target {
                    claim,
                    measured: format!(
                        "import {:.2} ×, SDK {:.2} × ({:.1} and {:.1} vs {:.1} s for {} documents){}",
                        s.fathom.median / s.baseline.median,
                        s.sdk.median / s.baseline.median,
                        s.fathom.median,
                        s.sdk.median,
                        s.baseline.median,
                        thousands(s.documents as f64),
                        if s.ready_after_import {
                            ""
                        } else {
                            "; **the index was not READY after a load**"
                        }
                    ),
                    met: Some(ratio <= 1.3 && s.ready_after_import),
                }
            }
            None => missing(claim),
        };
        let claim = format!("Recall@{LIMIT} ≥ {RECALL_TARGET} at fathom's defaults after fathom import");
        let recall = match s {
            Some(s) => Target {
                claim,
                measured: format!(
                    "{:.4} (lowest query {:.2}; {} queries)",
                    s.recall.mean, s.recall.min, s.recall.queries
                ),
                met: Some(s.recall.mean >= RECALL_TARGET),
            },
            None => missing(claim),
        };
        vec![time, recall]
    }

    /// The targets of the comparisons with hand-written SQL.
    fn matched_targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let m = self.matched.as_ref();
        let claim = format!(
            "Vector QPS at recall ≥ {RECALL_TARGET} ≥ 1.0 × hand-written SQL at its lowest ef reaching {RECALL_TARGET} \
             (concurrency {MATCHED_CONCURRENCY})"
        );
        targets.push(match m.and_then(|m| Some((m, m.baseline.as_ref()?, m.fathom_at_baseline.as_ref()?))) {
            Some((m, baseline, fathom)) => {
                let ratio = fathom.latency.qps.median / baseline.latency.qps.median;
                let defaults = &m.fathom_defaults;
                Target {
                    claim,
                    measured: format!(
                        "{ratio:.2} × ({:.0} vs {:.0} QPS at ef_search {}; fathom's recall {:.4}); fathom at its defaults \
                         {:.2} × (recall {:.4})",
                        fathom.latency.qps.median,
                        baseline.latency.qps.median,
                        baseline.ef_search.unwrap_or(0),
                        fathom.recall.mean,
                        defaults.latency.qps.median / baseline.latency.qps.median,
                        defaults.recall.mean
                    ),
                    met: Some(ratio >= 1.0 && fathom.recall.mean >= RECALL_TARGET),
                }
            }
            None if m.is_some() => Target {
                claim,
                measured: format!("no hnsw.ef_search up to {} reached the recall", EF_SEARCH_SWEEP[EF_SEARCH_SWEEP.len() - 1]),
                met: None,
            },
            None => missing(claim),
        });
        let claim = format!("Fathom defaults reach recall@{LIMIT} ≥ {RECALL_TARGET}");
        targets.push(match m {
            Some(m) => {
                let r = m.fathom_defaults.recall;
                Target {
                    claim,
                    measured: format!("{:.4} (lowest query {:.2}; {} queries)", r.mean, r.min, r.queries),
                    met: Some(r.mean >= RECALL_TARGET),
                }
            }
            None => missing(claim),
        });
        let claim = format!("Hybrid QPS ≥ 0.8 × hand-written one-statement RRF (concurrency {MATCHED_CONCURRENCY})");
        targets.push(match m {
            Some(m) => {
                let h = &m.hybrid;
                let ratio = h.fathom.qps.median / h.hand_written.qps.median;
                Target {
                    claim,
                    measured: format!(
                        "{ratio:.2} × ({:.0} vs {:.0} QPS; candidates {}, ef_search {})",
                        h.fathom.qps.median, h.hand_written.qps.median, h.candidates, h.ef_search
                    ),
                    met: Some(ratio >= 0.8),
                }
            }
            None => missing(claim),
        });
        targets
    }
}

fn write_index_build(out: &mut String, b: &IndexBuild) {
    let loaded = match (b.source, b.copy_elapsed) {
        (QueryCollectionSource::Copy, Some(copy)) => format!(
            "The query collection's {} documents were loaded by server-side binary COPY in {:.1} s into the table as \
             fathom created it, with its HNSW index dropped; the index",
            thousands(b.documents as f64),
            copy.as_secs_f64()
        ),
        _ => format!(
            "The query collection is the last ingest run's {} documents; its HNSW index (dropped for the runs \
             without it)",
            thousands(b.documents as f64)
        ),
    };
    let _ = writeln!(
        out,
        "{loaded} was then rebuilt with fathom's own definition (`{}`) in {:.1} s ({:.0} rows/s). \
         Table with TOAST: {:.0} MB; fathom's indexes: {:.0} MB. The hand-written searches below use an index of \
         their own, what a pgvector user builds (`{}`): {:.1} s.\n",
        b.definition,
        b.elapsed.as_secs_f64(),
        b.documents as f64 / b.elapsed.as_secs_f64(),
        b.table_bytes as f64 / 1e6,
        b.index_bytes as f64 / 1e6,
        b.hand_written_definition,
        b.hand_written_elapsed.as_secs_f64(),
    );
}

fn write_recall(out: &mut String, queries: &QueryResults) {
    let _ = writeln!(
        out,
        "### Recall@{LIMIT} against exact search (`params.exact = true`), through fathom\n"
    );
    let _ = writeln!(
        out,
        "At the server's default `ef_search` (the target), and for vector search also with `params.ef_search` set.\n"
    );
    let _ = writeln!(
        out,
        "| kind | ef_search | queries | mean recall@{LIMIT} | lowest | queries with {LIMIT} hits |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for r in &queries.recall {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.4} | {:.2} | {} (fewest hits: {}) |",
            r.kind.label(),
            r.ef_search.map_or("default".to_owned(), |ef| ef.to_string()),
            r.queries,
            r.mean,
            r.min,
            r.full_results,
            r.min_hits
        );
    }
    out.push('\n');
}

fn write_memory(out: &mut String, m: &MemoryResult) {
    let _ = writeln!(
        out,
        "### Memory: fathom's peak RSS while streaming {} documents\n",
        thousands(m.documents as f64)
    );
    let _ = writeln!(
        out,
        "One UpsertStream, batches of {}, into a collection without a vector index, at {} rows/s. fathom's peak \
         RSS during the stream (`VmHWM`, reset just before): **{:.1} MB**; highest of samples every 20 ms: {:.1} MB; \
         RSS before the stream: {:.1} MB; peak over all earlier phases (ingest, and queries at concurrency 16): \
         {:.1} MB. (MB = 10^6 bytes.)\n",
        memory::BATCH,
        thousands(m.rows_per_second),
        mb(m.peak_rss),
        mb(m.sampled_peak_rss),
        mb(m.rss_before),
        mb(m.earlier_peak_rss)
    );
}

fn write_matched(out: &mut String, m: &MatchedResults, documents: usize) {
    let runs = format!(
        "{} run{} of {:.1} s per figure",
        m.repeats,
        if m.repeats == 1 { "" } else { "s" },
        m.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "### Vector search at matched recall: fathom against hand-written pgvector SQL, concurrency \
         {MATCHED_CONCURRENCY}\n"
    );
    let recall_queries = m.sweep.first().map_or(0, |p| p.recall.queries);
    let _ = writeln!(
        out,
        "The query collection ({} documents). Hand-written SQL: a sqlx pool of {MATCHED_CONCURRENCY} connections, \
         each running `SET hnsw.ef_search = …` once when it connects, and the statement `SELECT id FROM \
         fathom_data.\"bench_docs\" ORDER BY embedding <=> $1 LIMIT {LIMIT}`, served by its own HNSW index over \
         the `vector` column (m and ef_construction as fathom's). Recall@{LIMIT} is against the exact \
         results of the first {recall_queries} queries (the same statement ordered by `(embedding <=> $1) + 0`, \
         which no index serves), computed once per query. QPS: {MATCHED_CONCURRENCY} searchers back to back, {runs}; \
         each ef_search's runs follow one another. \"plan\" is what EXPLAIN shows for the statement.\n",
        thousands(documents as f64)
    );
    let baseline_ef = m.baseline.as_ref().and_then(|b| b.ef_search);
    let _ = writeln!(
        out,
        "| hnsw.ef_search | mean recall@{LIMIT} | lowest | p50 ms | QPS | plan |"
    );
    let _ = writeln!(out, "|--:|--:|--:|--:|--:|---|");
    for point in &m.sweep {
        let mark = if Some(point.ef_search) == baseline_ef {
            " (baseline)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{mark} | {:.4} | {:.2} | {} | {} | {} |",
            point.ef_search,
            point.recall.mean,
            point.recall.min,
            spread(point.latency.p50_ms, 3),
            spread(point.latency.qps, 0),
            if point.index_scan {
                "HNSW index scan"
            } else {
                "**not the HNSW index**"
            }
        );
    }
    out.push('\n');
    match (&m.baseline, baseline_ef) {
        (Some(baseline), Some(ef)) => {
            let _ = writeln!(
                out,
                "The baseline is the lowest ef_search whose mean recall@{LIMIT} reaches {RECALL_TARGET}: **{ef}**. \
                 It is measured again below, interleaved with fathom's runs ({runs}, every configuration once, \
                 then again), and those figures make the ratios. Fathom's hits carry each document's text and \
                 metadata (its default) except in the last row, which asks for no fields; the hand-written \
                 statement returns ids only.\n"
            );
            let _ = writeln!(
                out,
                "| search | ef_search | mean recall@{LIMIT} | lowest | p50 ms | p95 | QPS | QPS ÷ hand-written |"
            );
            let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|");
            let rows = [
                ("hand-written SQL", Some(baseline)),
                ("fathom, params.ef_search set", m.fathom_at_baseline.as_ref()),
                ("fathom at its defaults", Some(&m.fathom_defaults)),
                (
                    "fathom at its defaults, ids only (no fields)",
                    m.fathom_ids_only.as_ref(),
                ),
            ];
            for (label, figure) in rows {
                let Some(f) = figure else { continue };
                let _ = writeln!(
                    out,
                    "| {label} | {} | {:.4} | {:.2} | {} | {:.2} | {} | {:.2} |",
                    f.ef_search.map_or("default".to_owned(), |ef| ef.to_string()),
                    f.recall.mean,
                    f.recall.min,
                    spread(f.latency.p50_ms, 3),
                    f.latency.p95_ms.median,
                    spread(f.latency.qps, 0),
                    f.latency.qps.median / baseline.latency.qps.median
                );
            }
        }
        _ => {
            let f = &m.fathom_defaults;
            let _ = writeln!(
                out,
                "No ef_search of the sweep reached a mean recall@{LIMIT} of {RECALL_TARGET}: there is no baseline. \
                 Fathom at its defaults: recall@{LIMIT} {:.4} (lowest {:.2}), p50 {} ms, {} QPS.",
                f.recall.mean,
                f.recall.min,
                spread(f.latency.p50_ms, 3),
                spread(f.latency.qps, 0)
            );
        }
    }
    out.push('\n');

    let h = &m.hybrid;
    let _ = writeln!(
        out,
        "### Hybrid search: fathom against one hand-written statement of reciprocal rank fusion, concurrency \
         {MATCHED_CONCURRENCY}\n"
    );
    let _ = writeln!(
        out,
        "The hand-written statement (the same pool, `hnsw.ef_search = {ef}`): a vector leg `ORDER BY embedding <=> $1 \
         LIMIT {c}` (HNSW), a keyword leg `ORDER BY body <@> to_bm25query($2, index) LIMIT {c}` (the collection's \
         pg_textsearch BM25 index, ranked in its order; the query text a bound value), fused by `1/(60 + rank)` \
         summed over a FULL OUTER JOIN; the top {LIMIT} ids. \
         Fathom runs its hybrid search at its defaults; the statement's leg depth ({c}) and ef_search ({ef}) are \
         fathom's defaults for a hybrid search of limit {LIMIT}. The same keyword queries as the query phase; {runs}, \
         interleaved.\n",
        c = h.candidates,
        ef = h.ef_search
    );
    let _ = writeln!(out, "| search | p50 ms | p95 | p99 | QPS | QPS ÷ hand-written |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for (label, l) in [("hand-written SQL", &h.hand_written), ("fathom", &h.fathom)] {
        let _ = writeln!(
            out,
            "| {label} | {} | {:.2} | {:.2} | {} | {:.2} |",
            spread(l.p50_ms, 3),
            l.p95_ms.median,
            l.p99_ms.median,
            spread(l.qps, 0),
            l.qps.median / h.hand_written.qps.median
        );
    }
    let _ = writeln!(
        out,
        "\nFathom's {LIMIT} hits hold on average {:.2} of the hand-written statement's {LIMIT} (lowest {:.2}, over \
         {} queries): both keyword legs are the same BM25 index's; fathom's also leaves out excluded words, \
         matches quoted phrases as phrases, and reports each hit's BM25 score.\n",
        h.overlap.mean, h.overlap.min, h.overlap.queries
    );
}

fn write_searchable(out: &mut String, s: &SearchableResults) {
    let runs = if s.repeats == 1 {
        "1 run".to_owned()
    } else {
        format!("{} runs", s.repeats)
    };
    let _ = writeln!(
        out,
        "### Time to searchable: a fresh load of {} documents, {runs} per figure\n",
        thousands(s.documents as f64)
    );
    let _ = writeln!(
        out,
        "From nothing to a collection whose searches use its HNSW index (m={}, ef_construction={}, cosine), \
         with no index flag: collections build their index automatically. *fathom import*: the release `fathom` \
         binary, `fathom collections create bench_load --dimension 768 --metric cosine`, then `fathom import FILE \
         --collection bench_load` of a JSON Lines file ({:.0} MB), whose stream's end builds the index in bulk; \
         both commands timed together, process starts included. *one SDK call*: CreateCollection with defaults \
         and one `upsert_stream` call of `fathom-client` over every document (in memory), which returns once the \
         index is built. *COPY + CREATE INDEX*: a table of the same shape (created through \
         fathom with its index deferred), server-side `COPY … FROM 'file' (FORMAT BINARY)` ({:.0} MB), then \
         `CREATE INDEX … USING hnsw (embedding vector_cosine_ops)`; both statements timed together. Each run \
         starts checkpointed; in each repetition COPY + CREATE INDEX runs first.\n",
        s.m,
        s.ef_construction,
        s.jsonl_bytes as f64 / 1e6,
        s.copy_bytes as f64 / 1e6
    );
    let _ = writeln!(out, "| path | seconds | ÷ COPY + CREATE INDEX |");
    let _ = writeln!(out, "|---|--:|--:|");
    let _ = writeln!(
        out,
        "| COPY + CREATE INDEX | {} (COPY {}, CREATE INDEX {}) | 1.00 |",
        spread(s.baseline, 1),
        spread(s.baseline_copy, 1),
        spread(s.baseline_index, 1)
    );
    let _ = writeln!(
        out,
        "| fathom collections create + fathom import | {} | {:.2} |",
        spread(s.fathom, 1),
        s.fathom.median / s.baseline.median
    );
    let _ = writeln!(
        out,
        "| CreateCollection + one upsert_stream call (Rust SDK) | {} | {:.2} |",
        spread(s.sdk, 1),
        s.sdk.median / s.baseline.median
    );
    let _ = writeln!(
        out,
        "\nAfter {} load: GetCollection said `INDEX_STATE_READY`: {}. Recall@{LIMIT} of fathom's default vector \
         search on the imported collection, against exact results: {:.4} (lowest {:.2}, {} queries).\n",
        if s.repeats == 1 { "the" } else { "every" },
        if s.ready_after_import { "yes" } else { "**no**" },
        s.recall.mean,
        s.recall.min,
        s.recall.queries
    );
}

fn missing(claim: String) -> Target {
    Target {
        claim,
        measured: "—".to_owned(),
        met: None,
    }
}

fn write_ingest(out: &mut String, ingest: &IngestResults) {
    let runs = if ingest.repeats == 1 {
        "1 run".to_owned()
    } else {
        format!("{} runs", ingest.repeats)
    };
    if ingest.with_hnsw {
        let _ = writeln!(
            out,
            "### Ingest with the HNSW index (m=16, ef_construction=64): {} documents per run into an empty \
             table, {runs} per figure\n",
            thousands(ingest.documents as f64)
        );
        let _ = writeln!(
            out,
            "pgvector inserts into an HNSW graph one row at a time, which dominates here; fewer documents and \
             runs keep the benchmark within its time budget (`BENCH_HNSW_INGEST_N`, `BENCH_HNSW_REPEATS`).\n"
        );
    } else {
        let _ = writeln!(
            out,
            "### Ingest without the HNSW index: {} documents per run, {runs} per figure\n",
            thousands(ingest.documents as f64)
        );
        let _ = writeln!(
            out,
            "The collection's table as fathom creates it (primary key, GIN indexes on the text's tsvector and on \
             the metadata) with its HNSW index dropped. Each run starts from an empty, checkpointed table; every \
             COMMIT is durable. fathom's streams keep the client's default of 4 batches in flight.\n"
        );
    }
    let _ = writeln!(out, "| path | streams | batch | rows/s | ÷ COPY | ÷ in-process |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    let copy = ingest.copy().map(|c| c.rows_per_second.median);
    for cell in &ingest.cells {
        let rate = cell.rows_per_second.median;
        let in_process = match cell.path {
            IngestPath::Fathom => ingest
                .cell(IngestPath::InProcess, cell.streams, cell.batch)
                .map(|p| format!("{:.2}", rate / p.rows_per_second.median)),
            _ => None,
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell.path.label(),
            cell.streams,
            cell.batch.map_or("—".to_owned(), |b| b.to_string()),
            spread(cell.rows_per_second, 0),
            copy.map_or("—".to_owned(), |c| format!("{:.2}", rate / c)),
            in_process.unwrap_or_else(|| "—".to_owned())
        );
    }
    out.push('\n');
}

/// `median [min–max]`, or just the value for a single run.
fn spread(s: Spread, decimals: usize) -> String {
    let format = |x: f64| {
        if decimals == 0 {
            thousands(x)
        } else {
            format!("{x:.decimals$}")
        }
    };
    if s.min == s.max {
        format(s.median)
    } else {
        format!("{} [{}–{}]", format(s.median), format(s.min), format(s.max))
    }
}

/// A whole number with thousands separators: 12,345.
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if x < -0.5 { format!("-{out}") } else { out }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(f64::NAN), "—");
    }

    #[test]
    fn a_single_run_shows_no_range() {
        let one = Spread::of(&[2.0]);
        assert_eq!(spread(one, 1), "2.0");
        assert_eq!(spread(Spread::of(&[1.0, 2.0, 3.0]), 1), "2.0 [1.0–3.0]");
    }
}
