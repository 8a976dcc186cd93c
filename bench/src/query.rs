//! The query phase: vector, keyword, hybrid (RRF) and filtered vector
//! searches at several concurrencies, through fathom and as the same SQL in
//! this process (`Store::search`: same statement, same session settings, no
//! gRPC); then recall@10 against exact search.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use fathom_client::Client;
use fathom_client::filter::field;
use fathom_server::domain::{Collection, Condition, Filter, KeywordQuery, KeywordRanking, Scalar, SearchQuery, Tenant};
use fathom_server::store::Store;
use futures::StreamExt;

use crate::dataset::{FILTER_BUCKET, Queries};
use crate::stats::{LatencyRun, LatencySpread};
use crate::workload::keep_busy;

/// Concurrent searchers.
pub const CONCURRENCY: [usize; 3] = [1, 4, 16];
/// Hits per search.
pub const LIMIT: u32 = 10;

/// What a search asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Nearest neighbours of a vector, through the HNSW index.
    Vector,
    /// Full-text search of two words.
    Keyword,
    /// Both, fused by reciprocal rank.
    Hybrid,
    /// Vector search restricted to 1 % of the documents by a metadata filter.
    Filtered,
}

impl QueryKind {
    /// Every kind, in report order.
    pub const ALL: [QueryKind; 4] = [
        QueryKind::Vector,
        QueryKind::Keyword,
        QueryKind::Hybrid,
        QueryKind::Filtered,
    ];

    /// How the report names the kind.
    pub fn label(self) -> &'static str {
        match self {
            QueryKind::Vector => "vector",
            QueryKind::Keyword => "keyword",
            QueryKind::Hybrid => "hybrid (RRF)",
            QueryKind::Filtered => "filtered vector (1 %)",
        }
    }
}

/// One kind at one concurrency, both ways.
#[derive(Debug, Clone)]
pub struct QueryCell {
    /// What was searched.
    pub kind: QueryKind,
    /// Concurrent searchers.
    pub concurrency: usize,
    /// Through fathom.
    pub fathom: LatencySpread,
    /// The same SQL in-process.
    pub in_process: LatencySpread,
}

/// `hnsw.ef_search` values, besides the server's default, at which vector
/// recall is also measured: how much breadth the data needs.
pub const RECALL_EF_SEARCH: [u32; 2] = [400, 1000];

/// Recall of one kind against exact search.
#[derive(Debug, Clone)]
pub struct RecallResult {
    /// What was searched.
    pub kind: QueryKind,
    /// `params.ef_search`; none for the server's default.
    pub ef_search: Option<u32>,
    /// Queries measured.
    pub queries: usize,
    /// Mean recall@10.
    pub mean: f64,
    /// Lowest recall@10 of one query.
    pub min: f64,
    /// Queries that returned `LIMIT` hits.
    pub full_results: usize,
    /// Fewest hits one query returned.
    pub min_hits: usize,
}

/// The query phase's figures.
#[derive(Debug, Clone)]
pub struct QueryResults {
    /// Runs per figure.
    pub repeats: usize,
    /// Length of each timed run.
    pub duration: Duration,
    /// Every kind at every concurrency.
    pub cells: Vec<QueryCell>,
    /// Recall of the vector and filtered kinds.
    pub recall: Vec<RecallResult>,
    /// A gRPC round trip to fathom that does no database work, at concurrency 1.
    pub transport: LatencySpread,
    /// The keyword searches again, in-process, with the `ts_rank` leg that
    /// ranks where pg_textsearch is missing (and ranked every collection
    /// before BM25), on the same table: per concurrency.
    pub ts_rank_keyword: Vec<(usize, LatencySpread)>,
}

impl QueryResults {
    /// The cell of a kind and concurrency.
    pub fn cell(&self, kind: QueryKind, concurrency: usize) -> Option<&QueryCell> {
        self.cells
            .iter()
            .find(|c| c.kind == kind && c.concurrency == concurrency)
    }

    /// The recall of a kind at the server's default settings.
    pub fn recall(&self, kind: QueryKind) -> Option<&RecallResult> {
        self.recall.iter().find(|r| r.kind == kind && r.ef_search.is_none())
    }
}

/// One way to run a search.
#[derive(Clone)]
enum Searcher {
    /// Through the fathom process.
    Fathom { client: Client, collection: String },
    /// Through fathom's store in this process.
    InProcess {
        store: Store,
        collection: Arc<Collection>,
        tenant: Tenant,
    },
}

impl Searcher {
    /// Runs query `index` of `kind` and reads every hit; returns the hit ids.
    async fn search(&self, kind: QueryKind, queries: &Queries, index: usize) -> anyhow::Result<Vec<String>> {
        match self {
            Searcher::Fathom { client, collection } => {
                let mut hits = fathom_request(client, collection, kind, queries, index).send().await?;
                let mut ids = Vec::with_capacity(LIMIT as usize);
                while let Some(hit) = hits.next().await {
                    ids.push(hit?.id);
                }
                Ok(ids)
            }
            Searcher::InProcess {
                store,
                collection,
                tenant,
            } => {
                let query = store_query(kind, queries, index, tenant.clone());
                let mut hits = store.search(collection.clone(), query).await?;
                let mut ids = Vec::with_capacity(LIMIT as usize);
                while let Some(hit) = hits.next().await {
                    ids.push(hit?.id);
                }
                Ok(ids)
            }
        }
    }
}

/// The search as a fathom client sends it: only what the kind needs, every
/// other parameter left to the server's defaults.
pub fn fathom_request(
    client: &Client,
    collection: &str,
    kind: QueryKind,
    queries: &Queries,
    index: usize,
) -> fathom_client::SearchBuilder {
    let search = client.search(collection).limit(LIMIT);
    let vector = || queries.vectors[index].clone();
    let text = || queries.texts[index].clone();
    match kind {
        QueryKind::Vector => search.vector(vector()),
        QueryKind::Keyword => search.text(text()),
        QueryKind::Hybrid => search.vector(vector()).text(text()),
        QueryKind::Filtered => search.vector(vector()).filter(field("bucket").eq(FILTER_BUCKET as i64)),
    }
}

/// The query fathom's server builds from [`fathom_request`]'s request.
fn store_query(kind: QueryKind, queries: &Queries, index: usize, tenant: Tenant) -> SearchQuery {
    let vector = (kind != QueryKind::Keyword).then(|| queries.vectors[index].clone());
    let text =
        matches!(kind, QueryKind::Keyword | QueryKind::Hybrid).then(|| KeywordQuery::parse(&queries.texts[index]));
    let mut query = SearchQuery::new(tenant, vector, text, LIMIT);
    query.filter = (kind == QueryKind::Filtered).then(|| Filter::Field {
        path: vec!["bucket".to_owned()],
        condition: Condition::Eq(Scalar::Number(FILTER_BUCKET as f64)),
    });
    query
}

/// What the query phase measures.
#[derive(Debug, Clone)]
pub struct QueryScope {
    /// The kinds searched.
    pub kinds: Vec<QueryKind>,
    /// The concurrencies of the timed runs.
    pub concurrency: Vec<usize>,
    /// Whether recall against exact search is measured.
    pub recall: bool,
}

impl QueryScope {
    /// Every kind at every concurrency, and recall.
    pub fn everything() -> Self {
        Self {
            kinds: QueryKind::ALL.to_vec(),
            concurrency: CONCURRENCY.to_vec(),
            recall: true,
        }
    }

    /// Vector and hybrid search at concurrency 1: the latencies the hybrid
    /// target compares (`BENCH_ONLY=matched`).
    pub fn vector_and_hybrid_latency() -> Self {
        Self {
            kinds: vec![QueryKind::Vector, QueryKind::Hybrid],
            concurrency: vec![1],
            recall: false,
        }
    }
}

/// Everything the query phase searches with.
pub struct QueryBench {
    fathom_url: String,
    fathom: Searcher,
    in_process: Searcher,
    /// In-process, with the collection's keyword ranking set to `ts_rank`.
    ts_rank: Searcher,
    client: Client,
    collection_name: String,
    queries: Arc<Queries>,
}

impl QueryBench {
    /// Searches `collection` through `client` (of the fathom at `fathom_url`) and through `store`.
    pub fn new(
        fathom_url: &str,
        client: Client,
        store: Store,
        collection: Arc<Collection>,
        queries: Arc<Queries>,
    ) -> anyhow::Result<Self> {
        let collection_name = collection.spec.name.as_str().to_owned();
        let tenant = Tenant::for_collection("tenant", "", false, 0)?;
        let ts_rank = Searcher::InProcess {
            store: store.clone(),
            collection: Arc::new(Collection {
                keyword_ranking: KeywordRanking::TsRank,
                ..(*collection).clone()
            }),
            tenant: tenant.clone(),
        };
        Ok(Self {
            fathom_url: fathom_url.to_owned(),
            fathom: Searcher::Fathom {
                client: client.clone(),
                collection: collection_name.clone(),
            },
            in_process: Searcher::InProcess {
                store,
                collection,
                tenant,
            },
            ts_rank,
            client,
            collection_name,
            queries,
        })
    }

    /// The kinds of `scope` at its concurrencies, `repeats` times each way,
    /// then (if the scope says) recall over `recall_queries` queries.
    pub async fn measure(
        &self,
        scope: &QueryScope,
        repeats: usize,
        duration: Duration,
        warm_up: Duration,
        recall_queries: usize,
    ) -> anyhow::Result<QueryResults> {
        let mut cells = Vec::new();
        let mut ts_rank_keyword = Vec::new();
        for &kind in &scope.kinds {
            // Fills both connection pools (16 connections each) and the caches.
            for searcher in [&self.fathom, &self.in_process] {
                self.timed_run(searcher, kind, *CONCURRENCY.last().unwrap_or(&1), warm_up)
                    .await?;
            }
            for &concurrency in &scope.concurrency {
                let (mut fathom, mut in_process) = (Vec::new(), Vec::new());
                for repeat in 1..=repeats {
                    // Alternate which goes first, so neither always follows the other.
                    let order = if repeat % 2 == 1 {
                        [(&self.fathom, &mut fathom), (&self.in_process, &mut in_process)]
                    } else {
                        [(&self.in_process, &mut in_process), (&self.fathom, &mut fathom)]
                    };
                    for (searcher, runs) in order {
                        let run = self
                            .timed_run(searcher, kind, concurrency, duration)
                            .await
                            .with_context(|| format!("{} at concurrency {concurrency}", kind.label()))?;
                        eprintln!(
                            "  query {:<22} c={concurrency:<2} run {repeat}/{repeats} {:<10}: p50 {:>7.3} ms  p99 {:>7.3} ms  {:>7.0} QPS",
                            kind.label(),
                            if matches!(searcher, Searcher::Fathom { .. }) {
                                "fathom"
                            } else {
                                "in-process"
                            },
                            run.p50_ms,
                            run.p99_ms,
                            run.qps
                        );
                        runs.push(run);
                    }
                }
                cells.push(QueryCell {
                    kind,
                    concurrency,
                    fathom: LatencySpread::of(&fathom),
                    in_process: LatencySpread::of(&in_process),
                });
                if kind == QueryKind::Keyword {
                    let mut runs = Vec::new();
                    for repeat in 1..=repeats {
                        let run = self.timed_run(&self.ts_rank, kind, concurrency, duration).await?;
                        eprintln!(
                            "  query keyword, ts_rank leg  c={concurrency:<2} run {repeat}/{repeats} in-process: p50 {:>7.3} ms  p99 {:>7.3} ms  {:>7.0} QPS",
                            run.p50_ms, run.p99_ms, run.qps
                        );
                        runs.push(run);
                    }
                    ts_rank_keyword.push((concurrency, LatencySpread::of(&runs)));
                }
            }
        }
        let mut recall = Vec::new();
        let recall_kinds = if scope.recall {
            vec![QueryKind::Vector, QueryKind::Filtered]
        } else {
            Vec::new()
        };
        for kind in recall_kinds {
            let count = recall_queries.min(self.queries.vectors.len());
            let mut exact = Vec::with_capacity(count);
            for index in 0..count {
                exact.push(self.fathom_ids(kind, index, 0, true).await?);
            }
            let breadths = match kind {
                QueryKind::Vector => [None].into_iter().chain(RECALL_EF_SEARCH.map(Some)).collect(),
                _ => vec![None],
            };
            for ef_search in breadths {
                let result = self.recall(kind, ef_search, &exact).await?;
                eprintln!(
                    "  recall@{LIMIT} {:<22} ef_search {:<7}: mean {:.4}, min {:.2}, {}/{} with {LIMIT} hits",
                    kind.label(),
                    ef_search.map_or("default".to_owned(), |ef| ef.to_string()),
                    result.mean,
                    result.min,
                    result.full_results,
                    result.queries
                );
                recall.push(result);
            }
        }
        let mut transport = Vec::new();
        for repeat in 1..=repeats {
            let run = self.health_round_trips(duration).await?;
            eprintln!(
                "  gRPC round trip, no database work, run {repeat}/{repeats}: p50 {:.3} ms  p99 {:.3} ms",
                run.p50_ms, run.p99_ms
            );
            transport.push(run);
        }
        Ok(QueryResults {
            repeats,
            duration,
            cells,
            recall,
            transport: LatencySpread::of(&transport),
            ts_rank_keyword,
        })
    }

    /// `concurrency` searchers, each running queries back to back until
    /// `duration` has passed; every query's latency counts.
    async fn timed_run(
        &self,
        searcher: &Searcher,
        kind: QueryKind,
        concurrency: usize,
        duration: Duration,
    ) -> anyhow::Result<LatencyRun> {
        let searcher = searcher.clone();
        let queries = self.queries.clone();
        keep_busy(concurrency, duration, queries.vectors.len(), move |index| {
            let (searcher, queries) = (searcher.clone(), queries.clone());
            async move { searcher.search(kind, &queries, index).await.map(drop) }
        })
        .await
    }

    /// Back-to-back `grpc.health.v1.Health/Check` calls to fathom for
    /// `duration`: the transport's share of a search's latency (the answer
    /// comes from memory, not the database).
    async fn health_round_trips(&self, duration: Duration) -> anyhow::Result<LatencyRun> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        let channel = tonic::transport::Endpoint::from_shared(self.fathom_url.clone())?
            .connect()
            .await?;
        let mut health = HealthClient::new(channel);
        let started = Instant::now();
        let mut latencies = Vec::new();
        while started.elapsed() < duration {
            let sent = Instant::now();
            health.check(HealthCheckRequest::default()).await?;
            latencies.push(sent.elapsed());
        }
        Ok(LatencyRun::of(latencies, started.elapsed()))
    }

    /// recall@10 of fathom's search (at `ef_search`, or the server's
    /// default) against `exact`, the exact hits (`params.exact = true`) of
    /// the first queries.
    async fn recall(
        &self,
        kind: QueryKind,
        ef_search: Option<u32>,
        exact: &[Vec<String>],
    ) -> anyhow::Result<RecallResult> {
        let count = exact.len();
        let (mut sum, mut min, mut full_results, mut min_hits) = (0.0, f64::INFINITY, 0, usize::MAX);
        for (index, exact) in exact.iter().enumerate() {
            let approximate = self.fathom_ids(kind, index, ef_search.unwrap_or(0), false).await?;
            let found = exact.iter().filter(|id| approximate.contains(id)).count();
            let recall = if exact.is_empty() {
                1.0
            } else {
                found as f64 / exact.len() as f64
            };
            sum += recall;
            min = f64::min(min, recall);
            min_hits = min_hits.min(approximate.len());
            if approximate.len() == LIMIT as usize {
                full_results += 1;
            }
        }
        Ok(RecallResult {
            kind,
            ef_search,
            queries: count,
            mean: sum / count as f64,
            min,
            full_results,
            min_hits,
        })
    }

    /// The ids of the hits through fathom with these vector search
    /// parameters (0 and false are the defaults).
    async fn fathom_ids(
        &self,
        kind: QueryKind,
        index: usize,
        ef_search: u32,
        exact: bool,
    ) -> anyhow::Result<Vec<String>> {
        let mut hits = fathom_request(&self.client, &self.collection_name, kind, &self.queries, index)
            .params(ef_search, exact)
            .send()
            .await?;
        let mut ids = Vec::with_capacity(LIMIT as usize);
        while let Some(hit) = hits.next().await {
            ids.push(hit?.id);
        }
        Ok(ids)
    }
}
