//! `fathom import`: JSON Lines in, through resumable upsert streams.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fathom_client::{Client, Document, UpsertError, UpsertSummary, proto};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::jsonl::Record;
use crate::wording::{count, is_are, was_were};

/// Options of `fathom import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The collection to write to (it must exist: see `fathom collections create`).
    /// With --from-chroma: the Chroma collection to copy (default: all).
    #[arg(long, short, required_unless_present = "from_chroma")]
    pub(super) collection: Option<String>,
    /// JSON Lines file, one `{"id", "vector", "text", "metadata", "tenant"}` per line; `-` for stdin.
    #[arg(required_unless_present = "from_chroma", conflicts_with = "from_chroma")]
    file: Option<PathBuf>,
    /// Copy a Chroma store (a chromadb.PersistentClient folder) instead:
    /// each collection into one of the same name, made valid. Runs the
    /// Python SDK's `python -m fathom.migrate chroma` with $FATHOM_PYTHON
    /// (default python3), which needs the SDK with its chroma extra installed
    /// from your clone of fathom: `pip install "./client/python[chroma]"`.
    #[arg(long, value_name = "PATH")]
    pub(super) from_chroma: Option<PathBuf>,
    /// Tenant for lines that name none (multi-tenant collections).
    #[arg(long, default_value = "")]
    tenant: String,
    /// Makes the import resumable: run the same command again after an
    /// interruption (or after fixing a bad line) and it skips the documents
    /// committed under this id and writes the rest, with any --batch-size.
    /// A stream id belongs to one input: a run on another file is refused.
    #[arg(long)]
    pub(super) stream_id: Option<String>,
    /// Documents per batch (one transaction each).
    #[arg(long, default_value_t = 500)]
    pub(super) batch_size: usize,
    /// Batches in flight per stream.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Leave a deferred vector index unbuilt at the end (to load more files
    /// first; then `fathom collections build-index`). By default an import
    /// into a collection created with `--index-build on-request` (or
    /// --defer-index) builds it at the end. A collection built
    /// automatically (the default) gets its index at the end of the import
    /// that takes it past the server's indexing threshold, either way: to
    /// load several files with one build, create it with `--index-build
    /// on-request`, or import them as one (`cat *.jsonl | fathom import -`).
    #[arg(long)]
    leave_index_deferred: bool,
}

/// One upsert stream per tenant, fed through a bounded channel.
struct TenantStream {
    sender: mpsc::Sender<Result<Document, fathom_client::Error>>,
    task: JoinHandle<Result<UpsertSummary, UpsertError>>,
}

/// Where and how [`write_records`] writes: one upsert stream per tenant.
pub(super) struct StreamSettings {
    /// The collection to write to.
    pub collection: String,
    /// Tenant for records that name none.
    pub default_tenant: String,
    /// Makes the streams resumable: the first tenant's stream takes this
    /// id, the next ones `{id}:t1`, `{id}:t2`… in order of first appearance.
    pub stream_id: Option<String>,
    /// Documents per batch (one transaction each).
    pub batch_size: usize,
    /// Batches in flight per stream.
    pub in_flight: usize,
}

/// What [`write_records`] did.
pub(super) struct Written {
    /// The streams' summaries, added up: what the server acknowledged.
    pub total: UpsertSummary,
    /// Why it stopped early: a bad line, an unreadable input or a stream's
    /// error (the first of them).
    pub failure: Option<anyhow::Error>,
}

/// Runs the import; prints a summary line whose figures are what the
/// server acknowledged.
pub async fn import(client: Client, args: ImportArgs) -> anyhow::Result<()> {
    let (Some(collection), Some(path)) = (&args.collection, &args.file) else {
        anyhow::bail!("import needs --collection and a FILE (or --from-chroma PATH)");
    };
    let (reader, total_bytes): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), size)
    };
    // Fail fast on an unknown collection, before reading anything.
    let before = client.get_collection(collection).await?;

    let started = Instant::now();
    let settings = StreamSettings {
        collection: collection.clone(),
        default_tenant: args.tenant.clone(),
        stream_id: args.stream_id.clone(),
        batch_size: args.batch_size,
        in_flight: args.in_flight,
    };
    let Written { total, failure } = write_records(&client, reader, total_bytes, 0, &settings, started).await;
    if let Some(error) = failure {
        if matches!(
            error.downcast_ref::<fathom_client::Error>(),
            Some(fathom_client::Error::ResumeMismatch(_))
        ) {
            return Err(error); // Nothing was sent; running it again would not help.
        }
        let next = if args.stream_id.is_some() {
            format!(
                "at least {} of the input {} committed (acknowledged); run the same command again to resume after \
                 them",
                count(total.committed_documents, "document", "documents"),
                is_are(total.committed_documents)
            )
        } else {
            format!(
                "{} {} written (acknowledged) before it; without --stream-id a new run writes everything again",
                count(total.documents, "document", "documents"),
                was_were(total.documents)
            )
        };
        anyhow::bail!("{error:#}; {next}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let earlier = if args.stream_id.is_some() {
        format!(", {} by earlier runs", total.skipped_documents)
    } else {
        String::new()
    };
    eprintln!(
        "imported: {} of the input {} committed ({} written by this run{earlier}) in {}, {elapsed:.1} s ({:.0} \
         documents/s)",
        count(total.committed_documents, "document", "documents"),
        is_are(total.committed_documents),
        total.documents,
        count(total.batches, "batch", "batches"),
        total.documents as f64 / elapsed.max(1e-9),
    );
    report_index(&client, collection, &before, args.leave_index_deferred, started).await
}

/// After an import: builds an index built on request unless told to leave
/// it, and says where the collection's vector index stands.
async fn report_index(
    client: &Client,
    name: &str,
    before: &proto::Collection,
    leave_index_deferred: bool,
    started: Instant,
) -> anyhow::Result<()> {
    let after = client.get_collection(name).await?;
    let seconds = started.elapsed().as_secs_f64();
    match (after.index_state(), after.index_build()) {
        (proto::IndexState::Deferred, proto::IndexBuild::Automatic) => eprintln!(
            "{name} is below the server's indexing threshold, so its searches are exact; a load that takes it past \
             the threshold builds its vector index, as does `fathom collections build-index {name}`"
        ),
        (proto::IndexState::Deferred, _) if !leave_index_deferred => {
            super::collections::build_index(client, name).await?;
            eprintln!(
                "{name} is searchable with its vector index, {:.1} s after the import started",
                started.elapsed().as_secs_f64()
            );
        }
        (proto::IndexState::Ready, _) if before.index_state() != proto::IndexState::Ready => eprintln!(
            "{name} is searchable with its vector index, built in bulk at the end of the import (it passed the \
             indexing threshold), {seconds:.1} s after the import started"
        ),
        _ => {}
    }
    Ok(())
}

/// Streams the JSON Lines records of `reader` (`total_bytes` long, if
/// known) into the collection, through one upsert stream per tenant, with
/// a progress bar on stderr. Errors name lines by their number in the file,
/// whose `lines_before` lines were read before `reader`. A bad line stops
/// every stream before the batch it would have joined.
pub(super) async fn write_records(
    client: &Client,
    reader: impl AsyncRead + Unpin,
    total_bytes: Option<u64>,
    lines_before: u64,
    settings: &StreamSettings,
    started: Instant,
) -> Written {
    let progress = progress_bar(total_bytes);
    let tally = Arc::new(Tally::default());
    let mut streams: HashMap<String, TenantStream> = HashMap::new();
    let mut lines = BufReader::new(reader).lines();
    let mut number = lines_before;
    let mut read_bytes = 0u64;
    let read: anyhow::Result<()> = async {
        while let Some(line) = lines.next_line().await? {
            number += 1;
            read_bytes += line.len() as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let document = Record::parse(&line, number).and_then(|mut record| {
                if record.tenant.is_empty() {
                    record.tenant.clone_from(&settings.default_tenant);
                }
                record.into_document(number)
            });
            let document = match document {
                Ok(document) => document,
                Err(error) => {
                    // No stream sends the batch it is filling: the input
                    // is wrong from here on.
                    for stream in streams.values() {
                        let _ = stream
                            .sender
                            .send(Err(fathom_client::Error::InvalidInput(format!("{error:#}"))))
                            .await;
                    }
                    return Err(error);
                }
            };
            let tenant = document.0.tenant.clone();
            let next_index = streams.len();
            let stream = streams.entry(tenant.clone()).or_insert_with(|| {
                open_stream(
                    client,
                    settings,
                    &tenant,
                    next_index,
                    tally.clone(),
                    progress.clone(),
                    started,
                )
            });
            if stream.sender.send(Ok(document)).await.is_err() {
                break; // That stream failed; its error is reported below.
            }
            tally.sent.fetch_add(1, Ordering::Relaxed);
            progress.set_position(read_bytes);
        }
        Ok(())
    }
    .await;
    tally.input_read.store(true, Ordering::Relaxed);
    tally.show_if_settled(&progress);

    let mut total = UpsertSummary::default();
    let mut failure = read.err();
    for (_, stream) in streams {
        drop(stream.sender);
        let summary = match stream.task.await {
            Ok(Ok(summary)) => summary,
            Ok(Err(failed)) => {
                if failure.is_none() {
                    failure = Some(failed.error.into());
                }
                failed.summary
            }
            Err(panicked) => {
                if failure.is_none() {
                    failure = Some(panicked.into());
                }
                UpsertSummary::default()
            }
        };
        total.committed_documents += summary.committed_documents;
        total.documents += summary.documents;
        total.skipped_documents += summary.skipped_documents;
        total.batches += summary.batches;
    }
    progress.finish_and_clear();
    Written { total, failure }
}

fn open_stream(
    client: &Client,
    settings: &StreamSettings,
    tenant: &str,
    index: usize,
    tally: Arc<Tally>,
    progress: ProgressBar,
    started: Instant,
) -> TenantStream {
    let (sender, receiver) = mpsc::channel(settings.batch_size * 2);
    let mut builder = client
        .try_upsert_stream(settings.collection.clone(), ReceiverStream::new(receiver))
        .tenant(tenant)
        .batch_documents(settings.batch_size)
        .in_flight(settings.in_flight);
    if let Some(id) = &settings.stream_id {
        // Tenants get their own streams, numbered in order of first appearance.
        builder = builder.stream_id(if index == 0 {
            id.clone()
        } else {
            format!("{id}:t{index}")
        });
    }
    let reported = AtomicU64::new(0);
    let reported_settled = AtomicU64::new(0);
    builder = builder.on_progress(move |summary| {
        let stream_committed = summary.committed_documents;
        let new = stream_committed.saturating_sub(reported.swap(stream_committed, Ordering::Relaxed));
        let total = tally.committed.fetch_add(new, Ordering::Relaxed) + new;
        let stream_settled = summary.documents + summary.skipped_documents;
        let newly_settled = stream_settled.saturating_sub(reported_settled.swap(stream_settled, Ordering::Relaxed));
        tally.settled.fetch_add(newly_settled, Ordering::Relaxed);
        let rate = summary.documents as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.set_message(format!(
            "{} committed, {rate:.0}/s",
            count(total, "document", "documents")
        ));
        tally.show_if_settled(&progress);
    });
    TenantStream {
        sender,
        task: tokio::spawn(builder.send()),
    }
}

/// What every stream of an import acknowledged, for the progress bar; and
/// whether every document read has been acknowledged (or skipped), so that
/// the streams' ends are all that is left: the server may be building the
/// collection's vector index in bulk before it ends them.
#[derive(Default)]
struct Tally {
    /// Documents committed, by every stream.
    committed: AtomicU64,
    /// Documents handed to the streams.
    sent: AtomicU64,
    /// Of those, how many the streams acknowledged or skipped.
    settled: AtomicU64,
    /// Whether the whole input was read.
    input_read: AtomicBool,
}

impl Tally {
    fn show_if_settled(&self, progress: &ProgressBar) {
        if self.input_read.load(Ordering::Relaxed)
            && self.settled.load(Ordering::Relaxed) >= self.sent.load(Ordering::Relaxed)
        {
            progress.set_message(format!(
                "{} committed; the server is ending the load (and building the vector index in bulk if the \
                 collection passed the indexing threshold)",
                count(self.committed.load(Ordering::Relaxed), "document", "documents")
            ));
        }
    }
}

fn progress_bar(total_bytes: Option<u64>) -> ProgressBar {
    let bar = match total_bytes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} read, {msg} (eta {eta})")
                .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {bytes} read, {msg}").expect("a valid template")),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
