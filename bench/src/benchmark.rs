//! One invocation, start to finish: data, a fresh cluster and fathom
//! process, the ingest, query and memory phases, and the report. The
//! cluster and the fathom process are stopped on every way out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use fathom_client::Client;
use fathom_server::domain::CollectionName;
use fathom_server::store::Store;

use crate::cluster::Cluster;
use crate::copy_file;
use crate::database::{Database, IndexDefinition, Table};
use crate::dataset::{DIMENSION, Dataset};
use crate::fathom_process::FathomProcess;
use crate::ingest::Ingest;
use crate::machine::{Machine, load_average};
use crate::matched_recall::MatchedRecall;
use crate::options::{Only, Options};
use crate::query::{QueryBench, QueryScope};
use crate::report::{IndexBuild, QueryCollectionSource, Report};
use crate::time_to_searchable::TimeToSearchable;

/// The collection every ingest run writes and every query reads.
const COLLECTION: &str = "bench_docs";
/// HNSW parameters of the collection (pgvector's defaults).
const HNSW_M: u32 = 16;
const HNSW_EF_CONSTRUCTION: u32 = 64;
/// Distinct queries per kind; runs cycle through them.
const QUERY_SET: usize = 1000;
/// Connections of the in-process store: fathom's default pool size.
const STORE_CONNECTIONS: u32 = 16;

/// Runs the benchmark described by `options`.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let plan = options.plan();
    let machine = Machine::describe();
    let load_before = load_average();
    eprintln!(
        "fathom-bench: {} cores, {:.1} GiB, load {load_before}; {} documents, {} with HNSW, {} for memory, {} runs ({} with HNSW)",
        machine.cores,
        machine.memory_gib,
        plan.documents,
        plan.hnsw_ingest_documents,
        plan.rss_documents,
        plan.repeats,
        plan.hnsw_repeats
    );
    let fathom_bin = match &options.fathom_bin {
        Some(path) => path.clone(),
        None => sibling_binary("fathom")?,
    };

    phase(started, &format!("generating {} documents", plan.documents));
    let dataset = Dataset::generate(plan.documents.max(plan.hnsw_ingest_documents));
    let queries = Arc::new(dataset.queries(QUERY_SET));

    phase(
        started,
        &format!("starting PostgreSQL and fathom in {}", options.work_dir.display()),
    );
    let cluster = Cluster::start(&options.install_dir, &options.work_dir, options.keep)?;
    let database = Database::connect(&cluster.url()).await?;
    let fathom = FathomProcess::start(&fathom_bin, &cluster.url(), &cluster.work_dir().join("fathom.log")).await?;
    let versions = database.versions().await?;
    let client = Client::connect(fathom.url()).await?;
    let store = Store::connect(&cluster.url(), STORE_CONNECTIONS).await?;

    let mut ingest_results = None;
    let mut index_build = None;
    let mut query_results = None;
    let mut matched = None;
    if plan.only != Some(Only::Searchable) {
        client
            .create_collection(COLLECTION, DIMENSION as u32)
            .hnsw(HNSW_M, HNSW_EF_CONSTRUCTION)
            // Its index from the start: the ingest phase measures writes
            // that maintain it, and the query collection's build is timed.
            .index_build(fathom_client::proto::IndexBuild::Immediate)
            .send()
            .await?;
        let collection = store
            .collection(&CollectionName::parse("collection", COLLECTION)?)
            .await?;
        let table = Table::of(COLLECTION);
        let hnsw = database.hnsw_index(&table).await?;
        let (source, copy_time) = if plan.only.is_none() {
            let ingest = Ingest {
                dataset: &dataset,
                client: &client,
                store: &store,
                collection: collection.clone(),
                collection_name: COLLECTION,
                table: &table,
                database: &database,
                work_dir: cluster.work_dir(),
            };
            phase(started, "ingest with the HNSW index");
            let with_index = ingest
                .measure(plan.hnsw_ingest_documents, plan.hnsw_repeats, true)
                .await?;
            phase(started, "ingest without the HNSW index");
            database.drop_index(&hnsw).await?;
            let without_index = ingest.measure(plan.documents, plan.repeats, false).await?;
            ingest_results = Some((without_index, with_index));
            phase(
                started,
                &format!("building the HNSW index over {} documents", plan.documents),
            );
            (QueryCollectionSource::LastIngestRun, None)
        } else {
            phase(
                started,
                &format!(
                    "loading the query collection: COPY of {} documents, then CREATE INDEX",
                    plan.documents
                ),
            );
            database.drop_index(&hnsw).await?;
            let file = cluster.work_dir().join(format!("documents-{}.pgcopy", plan.documents));
            copy_file::write(&dataset, plan.documents, &file).with_context(|| format!("writing {}", file.display()))?;
            database.checkpoint().await?;
            let copy_started = Instant::now();
            database.copy_from_file(&table, &file).await?;
            (QueryCollectionSource::Copy, Some(copy_started.elapsed()))
        };
        ensure!(
            database.count(&table).await? == plan.documents as u64,
            "the query collection should hold {} documents",
            plan.documents
        );
        let build_time = database.create_index(&hnsw).await?;
        let (table_bytes, index_bytes) = database.sizes(&table).await?;
        // What a pgvector user builds (fathom's graph holds half-precision
        // vectors, which a plain `ORDER BY embedding <=> $1` cannot use):
        // the hand-written searches' own index, on the same rows.
        let hand_written_hnsw = hand_written_index(&table);
        let hand_written_build_time = database.create_index(&hand_written_hnsw).await?;
        database.prepare_for_queries(&table).await?;
        index_build = Some(IndexBuild {
            source,
            documents: plan.documents,
            copy_elapsed: copy_time,
            elapsed: build_time,
            definition: hnsw.create.clone(),
            hand_written_elapsed: hand_written_build_time,
            hand_written_definition: hand_written_hnsw.create.clone(),
            table_bytes,
            index_bytes,
        });

        phase(started, "queries");
        let scope = if matches!(plan.only, None | Some(Only::Queries)) {
            QueryScope::everything()
        } else {
            QueryScope::vector_and_hybrid_latency()
        };
        let query_bench = QueryBench::new(fathom.url(), client.clone(), store.clone(), collection, queries.clone())?;
        query_results = Some(
            query_bench
                .measure(
                    &scope,
                    plan.repeats,
                    plan.query_duration,
                    plan.warm_up,
                    plan.recall_queries,
                )
                .await?,
        );

        phase(
            started,
            "vector search at matched recall, and hybrid, against hand-written SQL",
        );
        let matched_recall = MatchedRecall {
            database_url: &cluster.url(),
            table: &table,
            hnsw_index: &hand_written_hnsw.name,
            client: &client,
            collection: COLLECTION,
            queries: queries.clone(),
        };
        matched = Some(
            matched_recall
                .measure(plan.repeats, plan.query_duration, plan.warm_up, plan.recall_queries)
                .await?,
        );
    }

    let mut searchable = None;
    if matches!(plan.only, None | Some(Only::Searchable)) {
        phase(
            started,
            &format!(
                "time to searchable: a fresh load of {} documents, three ways",
                plan.documents
            ),
        );
        let time_to_searchable = TimeToSearchable {
            dataset: &dataset,
            queries: queries.clone(),
            client: &client,
            fathom_url: fathom.url(),
            fathom_bin: &fathom_bin,
            database: &database,
            database_url: &cluster.url(),
            work_dir: cluster.work_dir(),
            m: HNSW_M,
            ef_construction: HNSW_EF_CONSTRUCTION,
        };
        searchable = Some(
            time_to_searchable
                .measure(plan.documents, plan.hnsw_repeats, plan.recall_queries)
                .await?,
        );
    }

    let mut memory = None;
    if plan.only.is_none() {
        phase(started, &format!("memory: streaming {} documents", plan.rss_documents));
        database.checkpoint().await?;
        memory = Some(crate::memory::measure(&client, &fathom, &dataset, plan.rss_documents).await?);
    }

    let load_after = load_average();
    fathom.stop().await?;
    store.close().await;
    database.close().await;
    drop(cluster);
    let (ingest_without_index, ingest_with_index) = ingest_results.unzip();
    Ok(Report {
        command: command_line(),
        started_at,
        wall_time: started.elapsed(),
        machine,
        load: (load_before, load_after),
        versions,
        plan,
        ingest_without_index,
        ingest_with_index,
        index_build,
        queries: query_results,
        matched,
        searchable,
        memory,
    })
}

/// Announces a phase, with the time since the start.
/// The HNSW index a pgvector user would build for hand-written search:
/// over the column itself, with the benchmark's m and ef_construction.
fn hand_written_index(table: &Table) -> IndexDefinition {
    let name = format!("{COLLECTION}:hand_written_hnsw");
    IndexDefinition {
        create: format!(
            "CREATE INDEX \"{name}\" ON {} USING hnsw (embedding vector_cosine_ops) \
             WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
            table.sql()
        ),
        name,
    }
}

fn phase(started: Instant, what: &str) {
    eprintln!("[{:5.1} min] {what} …", started.elapsed().as_secs_f64() / 60.0);
}

/// A binary built beside this one (`target/release/NAME`).
fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this binary")?;
    Ok(me.with_file_name(name))
}

/// This invocation as a shell command, `BENCH_*` settings first.
fn command_line() -> String {
    let mut words: Vec<String> = std::env::vars()
        .filter(|(name, _)| name.starts_with("BENCH_"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    words.sort();
    words.extend(std::env::args());
    words.join(" ")
}
