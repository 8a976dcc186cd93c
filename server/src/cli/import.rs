//! `fathom import`: JSON Lines in, through resumable upsert streams.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fathom_client::{Client, Document, UpsertSummary};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::jsonl::Record;

/// Options of `fathom import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The collection to write to (it must exist: see `fathom collections create`).
    #[arg(long, short)]
    collection: String,
    /// JSON Lines file, one `{"id", "vector", "text", "metadata", "tenant"}` per line; `-` for stdin.
    file: PathBuf,
    /// Tenant for lines that name none (multi-tenant collections).
    #[arg(long, default_value = "")]
    tenant: String,
    /// Makes the import resumable: run the same command again after an
    /// interruption and it continues after the last committed batch.
    #[arg(long)]
    stream_id: Option<String>,
    /// Documents per batch (one transaction each).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Batches in flight per stream.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

/// One upsert stream per tenant, fed through a bounded channel.
struct TenantStream {
    sender: mpsc::Sender<Document>,
    task: JoinHandle<Result<UpsertSummary, fathom_client::Error>>,
}

/// Runs the import; prints a summary line.
pub async fn import(client: Client, args: ImportArgs) -> anyhow::Result<()> {
    let (reader, total_bytes): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.file.display()))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), size)
    };
    // Fail fast on an unknown collection, before reading anything.
    client.get_collection(&args.collection).await?;

    let progress = progress_bar(total_bytes);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut streams: HashMap<String, TenantStream> = HashMap::new();
    let mut lines = BufReader::new(reader).lines();
    let mut number = 0u64;
    let mut read_bytes = 0u64;
    let outcome: anyhow::Result<()> = async {
        while let Some(line) = lines.next_line().await? {
            number += 1;
            read_bytes += line.len() as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let mut record = Record::parse(&line, number)?;
            if record.tenant.is_empty() {
                record.tenant.clone_from(&args.tenant);
            }
            let tenant = record.tenant.clone();
            let next_index = streams.len();
            let stream = streams.entry(tenant.clone()).or_insert_with(|| {
                open_stream(
                    &client,
                    &args,
                    &tenant,
                    next_index,
                    acknowledged.clone(),
                    progress.clone(),
                    started,
                )
            });
            if stream.sender.send(record.into_document(number)?).await.is_err() {
                break; // That stream failed; its error is reported below.
            }
            progress.set_position(read_bytes);
        }
        Ok(())
    }
    .await;

    let mut total = UpsertSummary::default();
    let mut failure = outcome.err();
    for (_, stream) in streams {
        drop(stream.sender);
        match stream.task.await? {
            Ok(summary) => {
                total.documents += summary.documents;
                total.skipped_documents += summary.skipped_documents;
                total.batches += summary.batches;
                total.reconnects += summary.reconnects;
            }
            Err(error) => failure = failure.or(Some(error.into())),
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    if let Some(error) = failure {
        let hint = if args.stream_id.is_some() {
            " (run the same command again to resume)"
        } else {
            ""
        };
        anyhow::bail!(
            "{error:#}; {} documents were committed before it{hint}",
            total.documents
        );
    }
    eprintln!(
        "imported {} documents in {} batches in {:.1} s ({:.0} documents/s){}",
        total.documents,
        total.batches,
        elapsed.as_secs_f64(),
        total.documents as f64 / elapsed.as_secs_f64().max(1e-9),
        if total.skipped_documents > 0 {
            format!("; skipped {} committed by an earlier run", total.skipped_documents)
        } else {
            String::new()
        }
    );
    Ok(())
}

fn open_stream(
    client: &Client,
    args: &ImportArgs,
    tenant: &str,
    index: usize,
    acknowledged: Arc<AtomicU64>,
    progress: ProgressBar,
    started: Instant,
) -> TenantStream {
    let (sender, receiver) = mpsc::channel(args.batch_size * 2);
    let mut builder = client
        .upsert_stream(args.collection.clone(), ReceiverStream::new(receiver))
        .tenant(tenant)
        .batch_documents(args.batch_size)
        .in_flight(args.in_flight);
    if let Some(id) = &args.stream_id {
        // Tenants get their own streams, numbered in order of first appearance.
        builder = builder.stream_id(if index == 0 {
            id.clone()
        } else {
            format!("{id}:t{index}")
        });
    }
    let reported = AtomicU64::new(0);
    builder = builder.on_progress(move |summary| {
        let new = summary.documents - reported.swap(summary.documents, Ordering::Relaxed);
        let total = acknowledged.fetch_add(new, Ordering::Relaxed) + new;
        let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.set_message(format!("{total} documents committed, {rate:.0}/s"));
    });
    TenantStream {
        sender,
        task: tokio::spawn(builder.send()),
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
