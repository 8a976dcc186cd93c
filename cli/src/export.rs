//! `fathom export`: every document, through Scroll, as JSON Lines.

use std::io::Write;
use std::path::PathBuf;

use fathom_client::{Client, Filter, proto};
use tokio_stream::StreamExt;

use super::jsonl::Record;

/// Options of `fathom export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The collection to read.
    #[arg(long, short)]
    collection: String,
    /// Where to write; stdout if omitted or `-`.
    file: Option<PathBuf>,
    /// Only documents matching this filter, in MongoDB-style JSON:
    /// '{"year": {"$gte": 2020}, "$or": [{"lang": "en"}, {"lang": "de"}]}'.
    #[arg(long)]
    filter: Option<String>,
    /// The tenant (multi-tenant collections).
    #[arg(long, default_value = "")]
    tenant: String,
    /// Resume after this id (the last one a previous export wrote).
    #[arg(long, default_value = "")]
    after_id: String,
}

/// Writes the documents; prints how many to stderr.
pub async fn export(client: Client, args: ExportArgs) -> anyhow::Result<()> {
    let filter = args.filter.as_deref().map(super::parse_filter).transpose()?;
    client.get_collection(&args.collection).await?;
    let mut out: Box<dyn Write> = match &args.file {
        Some(path) if path.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let request = proto::ScrollRequest {
        collection: args.collection,
        tenant: args.tenant,
        filter: filter.map(Filter::into_proto),
        after_id: args.after_id,
        include: None,
        limit: 0,
        consistency: None,
    };
    let mut documents = std::pin::pin!(client.scroll(request));
    let mut written = 0u64;
    while let Some(document) = documents.next().await {
        serde_json::to_writer(&mut out, &Record::from_document(document?))?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    eprintln!("exported {}", crate::wording::count(written, "document", "documents"));
    Ok(())
}
