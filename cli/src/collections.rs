//! `fathom collections`.

mod snapshot;

use std::path::PathBuf;

use fathom_client::{Client, proto};

/// `fathom collections …`
#[derive(Debug, clap::Subcommand)]
pub enum CollectionsCommand {
    /// Create a collection.
    Create {
        /// Name: lower-case letters, digits and '_', starting with a letter, at most 48.
        name: String,
        /// Vector dimension (1..=4000 with HNSW, 1..=2000 at --index-precision
        /// single, up to 16000 with --no-index).
        #[arg(long, short)]
        dimension: u32,
        /// Distance metric.
        #[arg(long, default_value = "cosine", value_parser = ["cosine", "l2", "ip"])]
        metric: String,
        /// PostgreSQL text-search configuration (english, simple, german, ...).
        #[arg(long, default_value = "english")]
        language: String,
        /// Every document belongs to a tenant; every request names one.
        #[arg(long)]
        multi_tenant: bool,
        /// Keep no vector index (exact search only).
        #[arg(long)]
        no_index: bool,
        /// HNSW m (connections per node).
        #[arg(long, default_value_t = 16)]
        m: u32,
        /// HNSW ef_construction.
        #[arg(long, default_value_t = 64)]
        ef_construction: u32,
        /// Precision of the vectors in the HNSW graph. half: half the index,
        /// a faster build, cheaper searches, the same recall on
        /// embeddings, components within ±65504; scores always come from the
        /// stored single-precision vectors. single: the graph holds them as
        /// they are (dimensions up to 2000).
        #[arg(long, default_value = "half", value_parser = ["half", "single"], conflicts_with = "no_index")]
        index_precision: String,
        /// Succeed if the collection exists with this dimension, metric and
        /// tenancy (it is left as it is); fail if it exists with others.
        #[arg(long)]
        if_not_exists: bool,
        /// When the HNSW index is built. automatic: once the collection's
        /// vectors pass the server's indexing threshold (16 MiB by default,
        /// 5,462 documents of 768 dimensions), at the end of the import or
        /// stream that passes it, in bulk, many times faster than inserting
        /// every row into it; searches are exact below it. immediate: now,
        /// and every write maintains it. on-request: by `fathom collections
        /// build-index` (or at the end of `fathom import`).
        #[arg(long, default_value = "automatic", value_parser = ["automatic", "immediate", "on-request"], conflicts_with = "no_index")]
        index_build: String,
        /// The same as --index-build on-request.
        #[arg(long, conflicts_with_all = ["no_index", "index_build"])]
        defer_index: bool,
    },
    /// Build a collection's deferred vector index (in bulk, with PostgreSQL's
    /// parallel workers); returns when searches use it.
    BuildIndex {
        /// The collection.
        name: String,
    },
    /// List collections.
    List,
    /// Show one collection's settings.
    Get {
        /// The collection.
        name: String,
    },
    /// Delete a collection and all its documents.
    Delete {
        /// The collection.
        name: String,
    },
    /// Show document count and sizes.
    Stats {
        /// The collection.
        name: String,
    },
    /// Write a collection's settings, index state and every document (ids,
    /// vectors bit for bit, text, metadata, tenants) to a file, for
    /// `fathom collections restore`.
    Snapshot {
        /// The collection (or an alias of it).
        name: String,
        /// The snapshot file to write (JSON Lines: a settings header, then
        /// one document per line as `fathom export` writes them).
        file: PathBuf,
        /// A tenant to include; repeat it for each. A multi-tenant
        /// collection needs every tenant named (the API lists none): the
        /// snapshot fails if the tenants named miss any document.
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
    },
    /// Create a collection from a snapshot: the same settings and
    /// documents, with its vector index built if it was. Refuses, writing
    /// nothing, if the collection exists.
    Restore {
        /// The snapshot file (written by `fathom collections snapshot`).
        file: PathBuf,
        /// Restore under this name instead of the snapshot's.
        #[arg(long = "as", value_name = "NEW_NAME")]
        new_name: Option<String>,
    },
}

/// Runs a collections command.
pub async fn run(client: Client, command: CollectionsCommand) -> anyhow::Result<()> {
    match command {
        CollectionsCommand::Create {
            name,
            dimension,
            metric,
            language,
            multi_tenant,
            no_index,
            m,
            ef_construction,
            index_precision,
            if_not_exists,
            index_build,
            defer_index,
        } => {
            let metric = match metric.as_str() {
                "l2" => proto::DistanceMetric::L2,
                "ip" => proto::DistanceMetric::InnerProduct,
                _ => proto::DistanceMetric::Cosine,
            };
            let mut create = client
                .create_collection(name, dimension)
                .metric(metric)
                .language(language)
                .multi_tenant(multi_tenant);
            create = if defer_index {
                create.defer_index(true)
            } else {
                create.index_build(match index_build.as_str() {
                    "immediate" => proto::IndexBuild::Immediate,
                    "on-request" => proto::IndexBuild::OnRequest,
                    _ => proto::IndexBuild::Automatic,
                })
            };
            create = if no_index {
                create.no_index()
            } else {
                let precision = match index_precision.as_str() {
                    "single" => proto::IndexPrecision::Single,
                    _ => proto::IndexPrecision::Half,
                };
                create.hnsw(m, ef_construction).index_precision(precision)
            };
            let collection = if if_not_exists {
                create.get_or_create().await?
            } else {
                create.send().await?
            };
            print_collection(&collection)?;
        }
        CollectionsCommand::List => {
            let all = client.list_collections().await?;
            let header = ["name", "dimension", "metric", "index", "language", "tenants"].map(str::to_owned);
            let rows: Vec<[String; 6]> = all
                .iter()
                .map(|c| {
                    [
                        c.name.clone(),
                        c.dimension.to_string(),
                        metric_name(c.metric()).to_owned(),
                        index_name(c),
                        c.text_language.clone(),
                        (if c.multi_tenant { "yes" } else { "no" }).to_owned(),
                    ]
                })
                .collect();
            // Each column as wide as its widest cell, so no value pushes the next out of line.
            let mut widths = header.clone().map(|h| h.chars().count());
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let [name, dimension, metric, index, language, tenants] = row;
                let [w0, w1, w2, w3, w4, _] = widths;
                outln!("{name:<w0$}  {dimension:>w1$}  {metric:<w2$}  {index:<w3$}  {language:<w4$}  {tenants}")?;
            }
            if all.is_empty() {
                outln!("(no collections: create one with `fathom collections create NAME --dimension N`)")?;
            }
        }
        CollectionsCommand::Get { name } => print_collection(&client.get_collection(&name).await?)?,
        CollectionsCommand::BuildIndex { name } => {
            let built = build_index(&client, &name).await?;
            print_collection(&built)?;
        }
        CollectionsCommand::Delete { name } => {
            client.delete_collection(&name).await?;
            outln!("deleted {name}")?;
        }
        CollectionsCommand::Stats { name } => {
            let stats = client.collection_stats(&name).await?;
            outln!("collection  {}", stats.name)?;
            outln!("documents   {}", stats.document_count)?;
            outln!("table       {}", human_bytes(stats.table_bytes))?;
            outln!("indexes     {}", human_bytes(stats.index_bytes))?;
            outln!("total       {}", human_bytes(stats.total_bytes))?;
        }
        CollectionsCommand::Snapshot { name, file, tenants } => {
            snapshot::snapshot(&client, &name, &file, tenants).await?
        }
        CollectionsCommand::Restore { file, new_name } => snapshot::restore(&client, &file, new_name).await?,
    }
    Ok(())
}

fn print_collection(c: &proto::Collection) -> std::io::Result<()> {
    outln!("name        {}", c.name)?;
    outln!("dimension   {}", c.dimension)?;
    outln!("metric      {}", metric_name(c.metric()))?;
    outln!("index       {}", index_name(c))?;
    if c.index
        .as_ref()
        .and_then(|i| i.kind.as_ref())
        .is_some_and(|kind| matches!(kind, proto::index_settings::Kind::Hnsw(_)))
    {
        outln!("built       {}", index_build_name(c.index_build()))?;
    }
    outln!("language    {}", c.text_language)?;
    outln!("keywords    {}", keyword_ranking_name(c.keyword_ranking()))?;
    outln!("tenants     {}", if c.multi_tenant { "yes" } else { "no" })?;
    Ok(())
}

fn index_build_name(build: proto::IndexBuild) -> &'static str {
    match build {
        proto::IndexBuild::Automatic => "automatically, past the indexing threshold",
        proto::IndexBuild::Immediate => "with the collection, maintained by every write",
        proto::IndexBuild::OnRequest => "on request (build-index)",
        proto::IndexBuild::Unspecified => "unspecified",
    }
}

fn keyword_ranking_name(ranking: proto::KeywordRanking) -> &'static str {
    match ranking {
        proto::KeywordRanking::Bm25 => "bm25",
        proto::KeywordRanking::TsRank => "ts_rank (no pg_textsearch)",
        proto::KeywordRanking::Unspecified => "unspecified",
    }
}

fn metric_name(metric: proto::DistanceMetric) -> &'static str {
    match metric {
        proto::DistanceMetric::Cosine => "cosine",
        proto::DistanceMetric::L2 => "l2",
        proto::DistanceMetric::InnerProduct => "inner_product",
        proto::DistanceMetric::Unspecified => "unspecified",
    }
}

fn index_name(c: &proto::Collection) -> String {
    match c.index.as_ref().and_then(|i| i.kind.as_ref()) {
        Some(proto::index_settings::Kind::Hnsw(h)) => {
            let state = match c.index_state() {
                proto::IndexState::Deferred if c.index_build() == proto::IndexBuild::Automatic => {
                    " (exact below the indexing threshold)"
                }
                proto::IndexState::Deferred => " (deferred)",
                proto::IndexState::Building => " (building)",
                proto::IndexState::Ready | proto::IndexState::Unspecified => "",
            };
            let precision = match h.precision() {
                proto::IndexPrecision::Half => " half",
                proto::IndexPrecision::Single => " single",
                proto::IndexPrecision::Unspecified => "",
            };
            format!("hnsw m={} ef_c={}{precision}{state}", h.m, h.ef_construction)
        }
        _ => "none (exact)".to_owned(),
    }
}

/// Builds the collection's deferred index with a spinner; the collection after.
pub async fn build_index(client: &Client, name: &str) -> anyhow::Result<proto::Collection> {
    let spinner = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} building the vector index of {msg} ({elapsed})")
            .expect("a valid template"),
    );
    spinner.set_message(name.to_owned());
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let built = client.build_index(name).await;
    spinner.finish_and_clear();
    let built = built?;
    if built.build_seconds > 0.0 {
        eprintln!("built the vector index of {name} in {:.1} s", built.build_seconds);
    }
    built
        .collection
        .ok_or_else(|| anyhow::anyhow!("BuildIndex returned no collection"))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
