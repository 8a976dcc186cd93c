//! Streams a JSON Lines file into a collection, resumably.
//!
//! ```sh
//! make run    # in another terminal
//! cargo run -p fathom-client --example ingest_file -- docs.jsonl docs 384
//! ```
//! Each line is `{"id": "...", "vector": [...], "text": "...", "metadata": {...}}`.
//! Run it again after an interruption: it resumes after the last committed batch.

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

    let lines = tokio::io::BufReader::new(tokio::fs::File::open(&path).await?).lines();
    let documents = tokio_stream::wrappers::LinesStream::new(lines).filter_map(|line| async move {
        let record: serde_json::Value = serde_json::from_str(&line.ok()?).ok()?;
        let vector: Vec<f32> = serde_json::from_value(record["vector"].clone()).ok()?;
        let mut document = Document::new(record["id"].as_str()?, vector);
        document = document.text(record["text"].as_str().unwrap_or_default());
        if record["metadata"].is_object() {
            document = document.metadata(record["metadata"].clone()).ok()?;
        }
        Some(document)
    });
    let summary = client
        .upsert_stream(&collection, Box::pin(documents))
        .stream_id(format!("ingest-{collection}"))
        .on_progress(|s| eprint!("\r{} documents committed", s.documents))
        .send()
        .await?;
    eprintln!(
        "\nwrote {} documents in {} batches in {:?}",
        summary.documents, summary.batches, summary.elapsed
    );
    Ok(())
}
