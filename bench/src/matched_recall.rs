//! Vector search at matched recall, and hybrid search, each against the
//! same search written by hand in SQL ([`HandWrittenSql`]) on the query
//! collection, at concurrency 8.
//!
//! Vector: hand-written SQL is swept over `hnsw.ef_search`; its lowest value
//! whose mean recall@10 reaches 0.95 is the baseline. Fathom is measured at
//! its defaults and with `params.ef_search` set to the baseline's value.
//! Recall is against exact results (the same statement with the index
//! bypassed), computed once per query. Hybrid: fathom at its defaults
//! against one hand-written statement of reciprocal rank fusion with the
//! same leg depth and `ef_search`.

use std::sync::Arc;
use std::time::Duration;

use fathom_client::Client;
use fathom_server::domain::search_defaults;
use futures::{StreamExt, TryStreamExt};

use crate::database::Table;
use crate::dataset::Queries;
use crate::hand_written_sql::HandWrittenSql;
use crate::query::{LIMIT, QueryKind, fathom_request};
use crate::stats::{LatencyRun, LatencySpread};
use crate::workload::keep_busy;

/// Concurrent searchers of every timed run here.
pub const CONCURRENCY: usize = 8;
/// The `hnsw.ef_search` values hand-written SQL is measured at.
pub const EF_SEARCH_SWEEP: [u32; 11] = [10, 20, 40, 60, 80, 100, 120, 150, 200, 300, 400];
/// The recall@10 the comparison is matched at.
pub const RECALL_TARGET: f64 = 0.95;

/// Mean and lowest recall@10 over a set of queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recall {
    /// Queries measured.
    pub queries: usize,
    /// Mean recall@10.
    pub mean: f64,
    /// Lowest recall@10 of one query.
    pub min: f64,
}

impl Recall {
    /// The share of each query's `exact` ids that `found` holds, summarised.
    pub fn of(exact: &[Vec<String>], found: &[Vec<String>]) -> Self {
        let each: Vec<f64> = exact
            .iter()
            .zip(found)
            .map(|(exact, found)| {
                if exact.is_empty() {
                    1.0
                } else {
                    exact.iter().filter(|id| found.contains(id)).count() as f64 / exact.len() as f64
                }
            })
            .collect();
        Self {
            queries: each.len(),
            mean: each.iter().sum::<f64>() / each.len().max(1) as f64,
            min: each.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
}

/// Hand-written SQL at one `hnsw.ef_search`.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// The connections' `hnsw.ef_search`.
    pub ef_search: u32,
    /// Whether the planner chose the HNSW index for the statement.
    pub index_scan: bool,
    /// Recall@10 against exact results.
    pub recall: Recall,
    /// Latency and QPS at [`CONCURRENCY`].
    pub latency: LatencySpread,
}

/// A vector search configuration measured against the baseline.
#[derive(Debug, Clone)]
pub struct VectorFigure {
    /// `hnsw.ef_search` (`params.ef_search` for fathom); none for fathom's default.
    pub ef_search: Option<u32>,
    /// Recall@10 against exact results.
    pub recall: Recall,
    /// Latency and QPS at [`CONCURRENCY`], interleaved with the others' runs.
    pub latency: LatencySpread,
}

/// Hybrid search through fathom against the hand-written statement.
#[derive(Debug, Clone)]
pub struct HybridComparison {
    /// Candidates per leg, in both.
    pub candidates: u32,
    /// `hnsw.ef_search`, in both.
    pub ef_search: u32,
    /// Mean share of the hand-written statement's 10 ids among fathom's.
    pub overlap: Recall,
    /// Fathom at its defaults.
    pub fathom: LatencySpread,
    /// The hand-written statement.
    pub hand_written: LatencySpread,
}

/// What this phase measured.
#[derive(Debug, Clone)]
pub struct MatchedResults {
    /// Runs per figure.
    pub repeats: usize,
    /// Length of each timed run.
    pub duration: Duration,
    /// Hand-written SQL at every `ef_search` of [`EF_SEARCH_SWEEP`].
    pub sweep: Vec<SweepPoint>,
    /// Hand-written SQL at the lowest `ef_search` reaching [`RECALL_TARGET`],
    /// measured again interleaved with fathom's runs; none if none reached it.
    pub baseline: Option<VectorFigure>,
    /// Fathom at its defaults.
    pub fathom_defaults: VectorFigure,
    /// Fathom with `params.ef_search` set to the baseline's.
    pub fathom_at_baseline: Option<VectorFigure>,
    /// Fathom at its defaults asking for no fields: ids only, as the
    /// hand-written statement returns (none without a baseline).
    pub fathom_ids_only: Option<VectorFigure>,
    /// Hybrid search.
    pub hybrid: HybridComparison,
}

/// Where this phase searches.
pub struct MatchedRecall<'a> {
    /// The benchmark database, for the hand-written pools.
    pub database_url: &'a str,
    /// The query collection's table.
    pub table: &'a Table,
    /// Its HNSW index's name, to check the hand-written plans use it.
    pub hnsw_index: &'a str,
    /// A client of the fathom process.
    pub client: &'a Client,
    /// The query collection.
    pub collection: &'a str,
    /// The queries.
    pub queries: Arc<Queries>,
}

impl MatchedRecall<'_> {
    /// Measures everything; recall over the first `recall_queries` queries,
    /// each timed figure `repeats` times for `duration` after a `warm_up`.
    pub async fn measure(
        &self,
        repeats: usize,
        duration: Duration,
        warm_up: Duration,
        recall_queries: usize,
    ) -> anyhow::Result<MatchedResults> {
        let recall_queries = recall_queries.min(self.queries.vectors.len());
        let mut sweep = Vec::new();
        let mut exact = Vec::new();
        for ef_search in EF_SEARCH_SWEEP {
            let sql = self.connect(ef_search).await?;
            if exact.is_empty() {
                eprintln!("  exact results of {recall_queries} queries (index bypassed) …");
                exact = in_order(recall_queries, |i| {
                    let (sql, queries) = (sql.clone(), self.queries.clone());
                    async move { sql.exact_ids(&queries.vectors[i]).await }
                })
                .await?;
            }
            let index_scan = sql.plans_index_scan(&self.queries.vectors[0], self.hnsw_index).await?;
            let recall = Recall::of(&exact, &self.hand_written_ids(&sql, recall_queries).await?);
            self.hand_written_run(&sql, warm_up).await?;
            let mut runs = Vec::new();
            for repeat in 1..=repeats {
                let run = self.hand_written_run(&sql, duration).await?;
                eprintln!(
                    "  hand-written SQL ef_search {ef_search:<4} run {repeat}/{repeats}: recall@{LIMIT} {:.4} (min {:.2}), \
                     p50 {:>7.3} ms, {:>6.0} QPS{}",
                    recall.mean,
                    recall.min,
                    run.p50_ms,
                    run.qps,
                    if index_scan { "" } else { " (not an index scan!)" }
                );
                runs.push(run);
            }
            sql.close().await;
            sweep.push(SweepPoint {
                ef_search,
                index_scan,
                recall,
                latency: LatencySpread::of(&runs),
            });
        }

        let baseline_ef = sweep
            .iter()
            .find(|point| point.recall.mean >= RECALL_TARGET)
            .map(|point| point.ef_search);
        let defaults_recall = Recall::of(&exact, &self.fathom_ids(None, recall_queries).await?);
        eprintln!(
            "  fathom at its defaults: recall@{LIMIT} {:.4} (min {:.2})",
            defaults_recall.mean, defaults_recall.min
        );
        let (baseline, fathom_defaults, fathom_at_baseline, fathom_ids_only) = match baseline_ef {
            Some(ef) => {
                let sql = self.connect(ef).await?;
                let baseline_recall = Recall::of(&exact, &self.hand_written_ids(&sql, recall_queries).await?);
                let at_baseline_recall = Recall::of(&exact, &self.fathom_ids(Some(ef), recall_queries).await?);
                eprintln!(
                    "  baseline ef_search {ef}: hand-written recall@{LIMIT} {:.4}; fathom with params.ef_search {ef}: {:.4}",
                    baseline_recall.mean, at_baseline_recall.mean
                );
                let [hand_written, defaults, at_baseline, ids_only] = self
                    .interleaved_vector_runs(&sql, ef, repeats, duration, warm_up)
                    .await?;
                sql.close().await;
                (
                    Some(VectorFigure {
                        ef_search: Some(ef),
                        recall: baseline_recall,
                        latency: hand_written,
                    }),
                    VectorFigure {
                        ef_search: None,
                        recall: defaults_recall,
                        latency: defaults,
                    },
                    Some(VectorFigure {
                        ef_search: Some(ef),
                        recall: at_baseline_recall,
                        latency: at_baseline,
                    }),
                    Some(VectorFigure {
                        ef_search: None,
                        recall: defaults_recall,
                        latency: ids_only,
                    }),
                )
            }
            None => {
                eprintln!("  no hand-written ef_search reached recall@{LIMIT} {RECALL_TARGET}: no baseline");
                self.fathom_run(None, false, warm_up).await?;
                let mut runs = Vec::new();
                for _ in 0..repeats {
                    runs.push(self.fathom_run(None, false, duration).await?);
                }
                (
                    None,
                    VectorFigure {
                        ef_search: None,
                        recall: defaults_recall,
                        latency: LatencySpread::of(&runs),
                    },
                    None,
                    None,
                )
            }
        };
        let hybrid = self.hybrid(repeats, duration, warm_up, recall_queries).await?;
        Ok(MatchedResults {
            repeats,
            duration,
            sweep,
            baseline,
            fathom_defaults,
            fathom_at_baseline,
            fathom_ids_only,
            hybrid,
        })
    }

    /// Hand-written SQL at `ef` (with `sql`), fathom at its defaults, fathom
    /// with `params.ef_search = ef`, and fathom at its defaults asking for no
    /// fields (ids only, as the hand-written statement returns), `repeats`
    /// runs each, interleaved (every configuration once, then again, the
    /// order reversed every other time), so a slow spell on the machine
    /// spreads over all of them.
    async fn interleaved_vector_runs(
        &self,
        sql: &HandWrittenSql,
        ef: u32,
        repeats: usize,
        duration: Duration,
        warm_up: Duration,
    ) -> anyhow::Result<[LatencySpread; 4]> {
        const LABELS: [&str; 4] = [
            "hand-written SQL",
            "fathom at its defaults",
            "fathom with params.ef_search",
            "fathom at its defaults, ids only",
        ];
        for configuration in 0..4 {
            self.vector_run(configuration, sql, ef, warm_up).await?;
        }
        let mut runs: [Vec<LatencyRun>; 4] = Default::default();
        for repeat in 1..=repeats {
            let mut order = [0, 1, 2, 3];
            if repeat % 2 == 0 {
                order.reverse();
            }
            for configuration in order {
                let run = self.vector_run(configuration, sql, ef, duration).await?;
                eprintln!(
                    "  vector c={CONCURRENCY} run {repeat}/{repeats} {:<30}: p50 {:>7.3} ms, {:>6.0} QPS",
                    LABELS[configuration], run.p50_ms, run.qps
                );
                runs[configuration].push(run);
            }
        }
        Ok(runs.map(|runs| LatencySpread::of(&runs)))
    }

    /// One timed run of configuration 0 (hand-written), 1 (fathom at its
    /// defaults), 2 (fathom at `ef`) or 3 (fathom at its defaults, ids only).
    async fn vector_run(
        &self,
        configuration: usize,
        sql: &HandWrittenSql,
        ef: u32,
        duration: Duration,
    ) -> anyhow::Result<LatencyRun> {
        match configuration {
            0 => self.hand_written_run(sql, duration).await,
            1 => self.fathom_run(None, false, duration).await,
            2 => self.fathom_run(Some(ef), false, duration).await,
            _ => self.fathom_run(None, true, duration).await,
        }
    }

    /// Fathom's hybrid search at its defaults against the hand-written
    /// statement with the same leg depth and `ef_search`.
    async fn hybrid(
        &self,
        repeats: usize,
        duration: Duration,
        warm_up: Duration,
        recall_queries: usize,
    ) -> anyhow::Result<HybridComparison> {
        let defaults = search_defaults(LIMIT, true);
        let sql = self.connect(defaults.ef_search.get()).await?;
        let hand_written_ids = in_order(recall_queries, |i| {
            let (sql, queries) = (sql.clone(), self.queries.clone());
            async move {
                sql.hybrid_ids(&queries.vectors[i], &queries.texts[i], defaults.candidates)
                    .await
            }
        })
        .await?;
        let fathom_ids = in_order(recall_queries, |i| {
            let (client, collection, queries) = (self.client.clone(), self.collection.to_owned(), self.queries.clone());
            async move { hit_ids(fathom_request(&client, &collection, QueryKind::Hybrid, &queries, i)).await }
        })
        .await?;
        let overlap = Recall::of(&hand_written_ids, &fathom_ids);
        eprintln!(
            "  hybrid: candidates {}, ef_search {}; fathom's hits hold {:.2} of the hand-written statement's",
            defaults.candidates, defaults.ef_search, overlap.mean
        );
        self.hybrid_run(&sql, defaults.candidates, None, warm_up).await?;
        self.hybrid_run(&sql, defaults.candidates, Some(self.client), warm_up)
            .await?;
        let (mut fathom, mut hand_written) = (Vec::new(), Vec::new());
        for repeat in 1..=repeats {
            let fathom_first = repeat % 2 == 1;
            for through_fathom in [fathom_first, !fathom_first] {
                let client = through_fathom.then_some(self.client);
                let run = self.hybrid_run(&sql, defaults.candidates, client, duration).await?;
                eprintln!(
                    "  hybrid c={CONCURRENCY} run {repeat}/{repeats} {:<16}: p50 {:>7.3} ms, {:>6.0} QPS",
                    if through_fathom { "fathom" } else { "hand-written SQL" },
                    run.p50_ms,
                    run.qps
                );
                if through_fathom {
                    fathom.push(run);
                } else {
                    hand_written.push(run);
                }
            }
        }
        sql.close().await;
        Ok(HybridComparison {
            candidates: defaults.candidates,
            ef_search: defaults.ef_search.get(),
            overlap,
            fathom: LatencySpread::of(&fathom),
            hand_written: LatencySpread::of(&hand_written),
        })
    }

    /// A timed hybrid run through fathom (with `client`) or the hand-written statement.
    async fn hybrid_run(
        &self,
        sql: &HandWrittenSql,
        candidates: u32,
        client: Option<&Client>,
        duration: Duration,
    ) -> anyhow::Result<LatencyRun> {
        let queries = self.queries.clone();
        let count = queries.vectors.len();
        match client {
            Some(client) => {
                let (client, collection) = (client.clone(), self.collection.to_owned());
                keep_busy(CONCURRENCY, duration, count, move |i| {
                    let (client, collection, queries) = (client.clone(), collection.clone(), queries.clone());
                    async move {
                        hit_ids(fathom_request(&client, &collection, QueryKind::Hybrid, &queries, i))
                            .await
                            .map(drop)
                    }
                })
                .await
            }
            None => {
                let sql = sql.clone();
                keep_busy(CONCURRENCY, duration, count, move |i| {
                    let (sql, queries) = (sql.clone(), queries.clone());
                    async move {
                        sql.hybrid_ids(&queries.vectors[i], &queries.texts[i], candidates)
                            .await
                            .map(drop)
                    }
                })
                .await
            }
        }
    }

    async fn connect(&self, ef_search: u32) -> anyhow::Result<HandWrittenSql> {
        HandWrittenSql::connect(self.database_url, self.table, CONCURRENCY as u32, ef_search).await
    }

    /// The hand-written vector search's ids for the first `count` queries.
    async fn hand_written_ids(&self, sql: &HandWrittenSql, count: usize) -> anyhow::Result<Vec<Vec<String>>> {
        in_order(count, |i| {
            let (sql, queries) = (sql.clone(), self.queries.clone());
            async move { sql.vector_ids(&queries.vectors[i]).await }
        })
        .await
    }

    /// Fathom's vector search's ids for the first `count` queries, at
    /// `params.ef_search` (or the server's default).
    async fn fathom_ids(&self, ef_search: Option<u32>, count: usize) -> anyhow::Result<Vec<Vec<String>>> {
        in_order(count, |i| self.fathom_vector_ids(ef_search, i)).await
    }

    fn fathom_vector_ids(
        &self,
        ef_search: Option<u32>,
        index: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<String>>> + Send + 'static {
        fathom_vector_ids(self.client, self.collection, &self.queries, ef_search, index)
    }

    async fn hand_written_run(&self, sql: &HandWrittenSql, duration: Duration) -> anyhow::Result<LatencyRun> {
        let (sql, queries) = (sql.clone(), self.queries.clone());
        keep_busy(CONCURRENCY, duration, queries.vectors.len(), move |i| {
            let (sql, queries) = (sql.clone(), queries.clone());
            async move { sql.vector_ids(&queries.vectors[i]).await.map(drop) }
        })
        .await
    }

    /// A timed run of fathom's vector search at `ef_search` (or its
    /// default), with the default fields or, if `ids_only`, none.
    async fn fathom_run(
        &self,
        ef_search: Option<u32>,
        ids_only: bool,
        duration: Duration,
    ) -> anyhow::Result<LatencyRun> {
        let (client, collection, queries) = (self.client.clone(), self.collection.to_owned(), self.queries.clone());
        keep_busy(CONCURRENCY, duration, queries.vectors.len(), move |i| {
            let mut request = fathom_request(&client, &collection, QueryKind::Vector, &queries, i);
            if let Some(ef) = ef_search {
                request = request.params(ef, false);
            }
            if ids_only {
                request = request.include(false, false, false);
            }
            async move { hit_ids(request).await.map(drop) }
        })
        .await
    }
}

/// The ids of fathom's vector search for query `index` of `queries` in
/// `collection`, at `params.ef_search` (or the server's default).
pub fn fathom_vector_ids(
    client: &Client,
    collection: &str,
    queries: &Queries,
    ef_search: Option<u32>,
    index: usize,
) -> impl Future<Output = anyhow::Result<Vec<String>>> + Send + 'static {
    let mut request = fathom_request(client, collection, QueryKind::Vector, queries, index);
    if let Some(ef) = ef_search {
        request = request.params(ef, false);
    }
    hit_ids(request)
}

/// Runs `search(0..count)` [`CONCURRENCY`] at a time; the results in query order.
pub async fn in_order<F, Fut>(count: usize, search: F) -> anyhow::Result<Vec<Vec<String>>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<String>>>,
{
    futures::stream::iter(0..count)
        .map(search)
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// Sends a fathom search and reads every hit; the hit ids.
async fn hit_ids(request: fathom_client::SearchBuilder) -> anyhow::Result<Vec<String>> {
    let mut hits = request.send().await?;
    let mut ids = Vec::with_capacity(LIMIT as usize);
    while let Some(hit) = hits.next().await {
        ids.push(hit?.id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_is_the_share_of_exact_ids_found() {
        let ids = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let exact = vec![ids(&["a", "b"]), ids(&["c", "d"])];
        let found = vec![ids(&["b", "a"]), ids(&["c", "x"])];
        let recall = Recall::of(&exact, &found);
        assert_eq!((recall.queries, recall.mean, recall.min), (2, 0.75, 0.5));
    }
}
