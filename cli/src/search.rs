//! `fathom search`: vector, keyword or hybrid, printed as a table or JSON Lines.

use std::io::Write;
use std::path::PathBuf;

use fathom_client::{Client, proto, struct_to_json};
use tokio_stream::StreamExt;

/// Options of `fathom search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The collection to search.
    #[arg(long, short)]
    collection: String,
    /// Query vector as a JSON array: '[0.1, 0.2, ...]'.
    #[arg(long, conflicts_with = "vector_file")]
    vector: Option<String>,
    /// File holding the query vector as a JSON array (or a JSON Lines record with "vector").
    #[arg(long)]
    vector_file: Option<PathBuf>,
    /// Query text: words and "exact phrases"; documents with any of them
    /// match, those with more rank first; -word excludes. With a vector:
    /// hybrid search.
    #[arg(long, allow_hyphen_values = true)]
    text: Option<String>,
    /// Filter in MongoDB-style JSON: '{"year": {"$gte": 2020}}'.
    #[arg(long)]
    filter: Option<String>,
    /// Search by example: the neighbours of the stored document with this
    /// id (its own vector is the query; the document itself is left out).
    /// With --text: hybrid.
    #[arg(long, value_name = "ID", conflicts_with_all = ["vector", "vector_file"])]
    like: Option<String>,
    /// Most hits.
    #[arg(long, default_value_t = 10)]
    limit: u32,
    /// Skip this many of the best hits first: page n (from 0) of --limit
    /// hits is --offset n*limit. Give --candidates (at least offset + limit)
    /// for pages that neither repeat nor skip a hit.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Candidates each leg ranks before fusion (default: the limit for a
    /// vector or keyword search, max(5 × limit, 50) for hybrid).
    #[arg(long)]
    candidates: Option<u32>,
    /// HNSW search breadth, 1..=1000: larger finds more of the true nearest
    /// neighbours, slower (default: max(100, candidates)).
    #[arg(long)]
    ef_search: Option<u32>,
    /// Skip the vector index: exact distances to every matching document.
    #[arg(long)]
    exact: bool,
    /// Drop hits scoring worse than this (for L2 vector searches: farther than this distance).
    #[arg(long, allow_hyphen_values = true)]
    score_threshold: Option<f64>,
    /// Also print each hit's vector (with --json).
    #[arg(long, requires = "json")]
    with_vectors: bool,
    /// Fusion of hybrid searches: rrf (reciprocal rank) or relative (min-max normalised scores).
    #[arg(long, default_value = "rrf", value_parser = ["rrf", "relative"])]
    fusion: String,
    /// Weight of the vector leg in relative fusion (0..=1).
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// The tenant (multi-tenant collections).
    #[arg(long, default_value = "")]
    tenant: String,
    /// Print JSON Lines (one hit per line) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the search and prints the hits as they arrive.
pub async fn search(client: Client, args: SearchArgs) -> anyhow::Result<()> {
    let vector = match (&args.vector, &args.vector_file) {
        (Some(json), _) => Some(parse_vector(json)?),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Some(parse_vector(&text)?)
        }
        (None, None) => None,
    };
    if vector.is_none() && args.like.is_none() && args.text.is_none() {
        anyhow::bail!("give --vector, --vector-file, --like ID, --text, or a vector and a text for hybrid search");
    }
    let mut search = client
        .search(&args.collection)
        .tenant(&args.tenant)
        .limit(args.limit)
        .offset(args.offset)
        .params(args.ef_search.unwrap_or(0), args.exact);
    if let Some(id) = &args.like {
        search = search.example(id);
    }
    if let Some(candidates) = args.candidates {
        search = search.candidates(candidates);
    }
    if let Some(threshold) = args.score_threshold {
        search = search.score_threshold(threshold);
    }
    if args.with_vectors {
        search = search.include(true, true, true);
    }
    if let Some(vector) = vector {
        search = search.vector(vector);
    }
    if let Some(text) = &args.text {
        search = search.text(text);
    }
    if let Some(filter) = &args.filter {
        search = search.filter(super::parse_filter(filter)?);
    }
    if args.fusion == "relative" {
        search = search.relative_score(args.alpha);
    }
    let mut hits = search.send().await?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{:>4}  {:<24} {:>10}  {:>14}  {:>14}  text",
            "#", "id", "score", "vector rank", "text rank"
        )?;
    }
    let mut rank = args.offset;
    while let Some(hit) = hits.next().await {
        let hit = hit?;
        rank += 1;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&hit_json(&hit))?)?;
        } else {
            let leg =
                |leg: Option<proto::LegResult>| leg.map_or("-".to_owned(), |l| format!("{} ({:.4})", l.rank, l.score));
            writeln!(
                out,
                "{rank:>4}  {:<24} {:>10.5}  {:>14}  {:>14}  {}",
                truncate(&hit.id, 24),
                hit.score,
                leg(hit.vector_leg),
                leg(hit.text_leg),
                truncate(&hit.text.replace('\n', " "), 60)
            )?;
        }
    }
    if rank == args.offset && !args.json {
        writeln!(out, "(no hits)")?;
    }
    Ok(())
}

fn parse_vector(text: &str) -> anyhow::Result<Vec<f32>> {
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .or_else(|_| serde_json::from_str(text.lines().next().unwrap_or_default()))
        .map_err(|e| anyhow::anyhow!("the vector is not JSON: {e}"))?;
    let array = match &value {
        serde_json::Value::Object(record) => record.get("vector").cloned().unwrap_or_default(),
        other => other.clone(),
    };
    serde_json::from_value(array).map_err(|e| anyhow::anyhow!("the vector must be a JSON array of numbers: {e}"))
}

fn hit_json(hit: &proto::SearchHit) -> serde_json::Value {
    let leg = |leg: Option<proto::LegResult>| leg.map(|l| serde_json::json!({"rank": l.rank, "score": l.score}));
    let mut json = serde_json::json!({
        "id": hit.id,
        "score": hit.score,
        "vector_leg": leg(hit.vector_leg),
        "text_leg": leg(hit.text_leg),
        "text": hit.text,
        "metadata": hit.metadata.as_ref().map(struct_to_json),
        "tenant": if hit.tenant.is_empty() { None } else { Some(&hit.tenant) },
    });
    if !hit.vector.is_empty() {
        json["vector"] = serde_json::json!(hit.vector);
    }
    json
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}
