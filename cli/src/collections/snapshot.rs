//! `fathom collections snapshot` and `fathom collections restore`: one
//! collection, its settings and every document, through the public API.
//!
//! A snapshot is a JSON Lines file: a header line with the settings and the
//! document count, then the documents in the format of `fathom export`
//! (each with its tenant). Both commands stream: memory stays bounded by the
//! upsert streams' batches, whatever the collection's size.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fathom_client::{Client, proto};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;

use crate::import::{StreamSettings, Written, write_records};
use crate::jsonl::Record;
use crate::wording::{count, was_were};

/// The version of the snapshot format this fathom writes and reads.
const FORMAT_VERSION: u32 = 1;

/// Documents per batch of a restore (one transaction each), as `fathom import`.
const RESTORE_BATCH_SIZE: usize = 500;

/// Batches in flight per stream of a restore, as `fathom import`.
const RESTORE_IN_FLIGHT: usize = 4;

/// The first line of a snapshot file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The format's version, [`FORMAT_VERSION`].
    fathom_snapshot: u32,
    /// The collection's settings.
    collection: Settings,
    /// How many document lines follow.
    documents: u64,
}

/// A collection's settings, as CreateCollection takes them.
#[derive(Debug, Serialize, Deserialize)]
struct Settings {
    name: String,
    dimension: u32,
    metric: Metric,
    index: Index,
    text_language: String,
    multi_tenant: bool,
    index_state: IndexState,
    /// When the index is built; absent in snapshots from before the
    /// setting, which restore it on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_build: Option<IndexBuild>,
}

/// When a collection's HNSW index is built (CreateCollection's index_build).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IndexBuild {
    Automatic,
    Immediate,
    OnRequest,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Metric {
    Cosine,
    L2,
    InnerProduct,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Index {
    Hnsw {
        m: u32,
        ef_construction: u32,
        precision: Precision,
    },
    None,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Precision {
    Half,
    Single,
}

/// Whether the vector index was built (or being built: it will be) or
/// deferred; a restore leaves it the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IndexState {
    Ready,
    Deferred,
}

impl Settings {
    /// The settings of a collection as GetCollection returns it.
    fn of(collection: &proto::Collection) -> anyhow::Result<Self> {
        let metric = match collection.metric() {
            proto::DistanceMetric::Cosine => Metric::Cosine,
            proto::DistanceMetric::L2 => Metric::L2,
            proto::DistanceMetric::InnerProduct => Metric::InnerProduct,
            proto::DistanceMetric::Unspecified => {
                anyhow::bail!("the server reported no metric for {}", collection.name)
            }
        };
        let index = match collection.index.as_ref().and_then(|i| i.kind.as_ref()) {
            Some(proto::index_settings::Kind::Hnsw(hnsw)) => Index::Hnsw {
                m: hnsw.m,
                ef_construction: hnsw.ef_construction,
                precision: match hnsw.precision() {
                    proto::IndexPrecision::Single => Precision::Single,
                    proto::IndexPrecision::Half | proto::IndexPrecision::Unspecified => Precision::Half,
                },
            },
            Some(proto::index_settings::Kind::None(_)) => Index::None,
            None => anyhow::bail!("the server reported no index settings for {}", collection.name),
        };
        let index_state = match collection.index_state() {
            proto::IndexState::Deferred => IndexState::Deferred,
            proto::IndexState::Ready | proto::IndexState::Building | proto::IndexState::Unspecified => {
                IndexState::Ready
            }
        };
        Ok(Settings {
            name: collection.name.clone(),
            dimension: collection.dimension,
            metric,
            index,
            text_language: collection.text_language.clone(),
            multi_tenant: collection.multi_tenant,
            index_state,
            index_build: match collection.index_build() {
                proto::IndexBuild::Automatic => Some(IndexBuild::Automatic),
                proto::IndexBuild::Immediate => Some(IndexBuild::Immediate),
                proto::IndexBuild::OnRequest => Some(IndexBuild::OnRequest),
                proto::IndexBuild::Unspecified => None,
            },
        })
    }

    /// Creates a collection of these settings named `name`. An HNSW index
    /// built automatically or on request is built in bulk after the
    /// documents are written (as is one from a snapshot that does not say);
    /// one built immediately is maintained by every write, as it was.
    async fn create(&self, client: &Client, name: &str) -> Result<proto::Collection, fathom_client::Error> {
        let metric = match self.metric {
            Metric::Cosine => proto::DistanceMetric::Cosine,
            Metric::L2 => proto::DistanceMetric::L2,
            Metric::InnerProduct => proto::DistanceMetric::InnerProduct,
        };
        let create = client
            .create_collection(name, self.dimension)
            .metric(metric)
            .language(self.text_language.clone())
            .multi_tenant(self.multi_tenant);
        let create = match self.index {
            Index::Hnsw {
                m,
                ef_construction,
                precision,
            } => create
                .hnsw(m, ef_construction)
                .index_precision(match precision {
                    Precision::Half => proto::IndexPrecision::Half,
                    Precision::Single => proto::IndexPrecision::Single,
                })
                .index_build(match self.index_build {
                    Some(IndexBuild::Automatic) => proto::IndexBuild::Automatic,
                    Some(IndexBuild::Immediate) => proto::IndexBuild::Immediate,
                    Some(IndexBuild::OnRequest) | None => proto::IndexBuild::OnRequest,
                }),
            Index::None => create.no_index(),
        };
        create.send().await
    }
}

/// Writes a snapshot of collection `name` (or of the collection the alias
/// `name` points at) to `path`: its settings and the documents of
/// `tenants` (multi-tenant collections: every tenant must be named, since
/// the API lists none). Fails, writing nothing at `path`, unless the
/// snapshot holds as many documents as the collection did when it started.
pub async fn snapshot(client: &Client, name: &str, path: &Path, tenants: Vec<String>) -> anyhow::Result<()> {
    let collection = client.get_collection(name).await?;
    let settings = Settings::of(&collection)?;
    let tenants = match (collection.multi_tenant, tenants.is_empty()) {
        (true, true) => anyhow::bail!(
            "{} is multi-tenant: name every tenant with --tenant (the API lists no tenants; the snapshot fails if it \
             misses any document)",
            collection.name
        ),
        (false, false) => anyhow::bail!("{} has no tenants: leave out --tenant", collection.name),
        (true, false) => tenants,
        (false, true) => vec![String::new()],
    };
    let documents = client.collection_stats(&collection.name).await?.document_count;
    // Written beside `path` and renamed at the end, so that a failed
    // snapshot leaves no file, and a file at `path` before stays whole.
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file =
        std::fs::File::create(&partial).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", partial.display()))?;
    let header = Header {
        fathom_snapshot: FORMAT_VERSION,
        collection: settings,
        documents,
    };
    let started = Instant::now();
    let written = write_snapshot(client, std::io::BufWriter::new(file), &header, &tenants).await;
    let written = match written {
        Ok(written) if written == documents => written,
        Ok(written) => {
            let _ = std::fs::remove_file(&partial);
            anyhow::bail!(
                "{} held {} when the snapshot started, but its {} gave {written}: name every tenant with \
                 --tenant, and write nothing to the collection while the snapshot runs (no snapshot written)",
                collection.name,
                count(documents, "document", "documents"),
                count(tenants.len() as u64, "tenant named", "tenants named"),
            );
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.context("no snapshot written"));
        }
    };
    std::fs::rename(&partial, path)
        .map_err(|e| anyhow::anyhow!("cannot rename {} to {}: {e}", partial.display(), path.display()))?;
    eprintln!(
        "snapshot of {}: {} ({}) in {}, {:.1} s",
        collection.name,
        count(written, "document", "documents"),
        count(tenants.len() as u64, "tenant", "tenants"),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the header, then every document of `tenants` in id order; the
/// number of documents written.
async fn write_snapshot(
    client: &Client,
    mut out: impl Write,
    header: &Header,
    tenants: &[String],
) -> anyhow::Result<u64> {
    serde_json::to_writer(&mut out, header)?;
    out.write_all(b"\n")?;
    let progress = ProgressBar::new(header.documents).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} documents written ({per_sec}, eta {eta})")
            .expect("a valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let mut written = 0u64;
    for tenant in tenants {
        let request = proto::ScrollRequest {
            collection: header.collection.name.clone(),
            tenant: tenant.clone(),
            filter: None,
            after_id: String::new(),
            include: None,
            limit: 0,
            // From the primary: the documents the header counted, not a
            // replica's older view of them.
            consistency: Some(proto::ReadConsistency {
                choice: Some(proto::read_consistency::Choice::Strong(true)),
            }),
        };
        let mut documents = std::pin::pin!(client.scroll(request));
        while let Some(document) = documents.next().await {
            serde_json::to_writer(&mut out, &Record::from_document(document?))?;
            out.write_all(b"\n")?;
            written += 1;
            progress.set_position(written);
        }
    }
    out.flush()?;
    progress.finish_and_clear();
    Ok(written)
}

/// Restores the snapshot at `path` into a new collection: the snapshot's
/// name, or `new_name`. Refuses, writing nothing, if the collection exists.
pub async fn restore(client: &Client, path: &Path, new_name: Option<String>) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let size = file.metadata().await.ok().map(|m| m.len());
    let mut reader = BufReader::new(file);
    let mut first = String::new();
    reader.read_line(&mut first).await?;
    let header: Header = serde_json::from_str(&first).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a fathom snapshot (its first line is no snapshot header: {e})",
            path.display()
        )
    })?;
    if header.fathom_snapshot != FORMAT_VERSION {
        anyhow::bail!(
            "{} is a snapshot of format {}; this fathom reads format {FORMAT_VERSION}",
            path.display(),
            header.fathom_snapshot
        );
    }
    let name = new_name.unwrap_or_else(|| header.collection.name.clone());
    let created = match header.collection.create(client, &name).await {
        Ok(created) => created,
        Err(error) if error.code() == Some(tonic::Code::AlreadyExists) => anyhow::bail!(
            "{name} exists (a collection or an alias): restore writes only new collections, and wrote nothing; \
             restore under another name with --as NEW_NAME, or delete {name} first"
        ),
        Err(error) => return Err(error.into()),
    };

    let started = Instant::now();
    let settings = StreamSettings {
        collection: created.name.clone(),
        default_tenant: String::new(),
        stream_id: None,
        batch_size: RESTORE_BATCH_SIZE,
        in_flight: RESTORE_IN_FLIGHT,
    };
    let documents_bytes = size.map(|size| size.saturating_sub(first.len() as u64));
    let Written { total, failure } = write_records(client, reader, documents_bytes, 1, &settings, started).await;
    let incomplete = |why: String| {
        anyhow::anyhow!(
            "{why}; {} {} written into {name}: delete it (`fathom collections delete {name}`) and restore again",
            count(total.documents, "document", "documents"),
            was_were(total.documents)
        )
    };
    if let Some(error) = failure {
        return Err(incomplete(format!("{error:#}")));
    }
    if total.documents != header.documents {
        return Err(incomplete(format!(
            "{} holds {} where its header says {} (a truncated or edited file?)",
            path.display(),
            count(total.documents, "document", "documents"),
            header.documents
        )));
    }
    if matches!(header.collection.index, Index::Hnsw { .. }) && header.collection.index_state == IndexState::Ready {
        super::build_index(client, &name).await?;
    }
    eprintln!(
        "restored {name} from {}: {} in {:.1} s",
        path.display(),
        count(total.documents, "document", "documents"),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
