//! Streams a JSON Lines file into a collection, resumably.
//!
//! ```sh
//! make run    # in another terminal
//! cargo run -p fathom-client --example ingest_file -- docs.jsonl docs 384
//! ```
//! Each line is `{"id": "...", "vector": [...], "text": "...", "metadata": {...}}`.
//! Run it again after an interruption: it resumes after the last committed
//! document. The stream id is derived from the file's name, so another file
//! gets its own stream; the same name with other contents is refused.

use fathom_client::{Client, Document};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(collection), Some(dimension)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: ingest_file FILE COLLECTION DIMENSION");
    };
    let client = Client::connect(std::env::var("FATHOM_SERVER").unwrap_or("http://127.0.0.1:50051".into())).await?;
    if let Err(error) = client.create_collection(&collection, dimension.parse()?).send().await
        && error.code() != Some(tonic::Code::AlreadyExists)
    {
        return Err(error.into());
    }

    let file_name = std::path::Path::new(&path)
        .file_name()
        .map_or_else(|| path.clone(), |name| name.to_string_lossy().into_owned());
    let lines = tokio::io::BufReader::new(tokio::fs::File::open(&path).await?).lines();
    // A line that does not parse stops the upsert (with its number) instead
    // of being skipped: a skipped line would shift every later position.
    let documents = tokio_stream::wrappers::LinesStream::new(lines)
        .enumerate()
        .map(|(index, line)| parse_line(line, index + 1));
    let summary = client
        .try_upsert_stream(&collection, documents)
        .stream_id(format!("ingest-{file_name}"))
        .on_progress(|s| eprint!("\r{} documents committed", s.committed_documents))
        .send()
        .await?;
    eprintln!(
        "\n{} documents committed ({} written now, {} earlier) in {:?}",
        summary.committed_documents, summary.documents, summary.skipped_documents, summary.elapsed
    );
    Ok(())
}

fn parse_line(line: std::io::Result<String>, number: usize) -> Result<Document, fathom_client::Error> {
    let invalid = |what: String| fathom_client::Error::InvalidInput(format!("line {number}: {what}"));
    let record: serde_json::Value =
        serde_json::from_str(&line.map_err(|e| invalid(e.to_string()))?).map_err(|e| invalid(e.to_string()))?;
    let vector: Vec<f32> = serde_json::from_value(record["vector"].clone()).map_err(|e| invalid(e.to_string()))?;
    let id = record["id"]
        .as_str()
        .ok_or_else(|| invalid("no string \"id\"".into()))?;
    let mut document = Document::new(id, vector).text(record["text"].as_str().unwrap_or_default());
    if record["metadata"].is_object() {
        document = document
            .metadata(record["metadata"].clone())
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(document)
}
