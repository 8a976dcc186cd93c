//! The README's example: create (or reuse), stream in, hybrid search with a
//! filter. `cargo run -p fathom-client --example quickstart` against `make run`;
//! it can run any number of times.

use std::process::ExitCode;

use fathom_client::{Client, Document, filter::field};
use futures::StreamExt;

#[tokio::main]
async fn main() -> ExitCode {
    match quickstart().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn quickstart() -> Result<(), fathom_client::Error> {
    let client = Client::connect("http://127.0.0.1:50051").await?;
    // The collection of an earlier run is reused if its settings match.
    client.create_collection("quickstart", 3).get_or_create().await?;
    let docs = vec![
        Document::new("a", vec![1.0, 0.0, 0.0])
            .text("red fox")
            .metadata(serde_json::json!({"lang": "en"}))?,
        Document::new("b", vec![0.0, 1.0, 0.0])
            .text("blue sky")
            .metadata(serde_json::json!({"lang": "de"}))?,
    ];
    client
        .upsert_iter("quickstart", docs)
        .stream_id("quickstart-load")
        .send()
        .await?;
    let mut hits = client
        .search("quickstart")
        .vector(vec![1.0, 0.0, 0.0])
        .text("fox")
        .filter(field("lang").eq("en"))
        .limit(5)
        .send()
        .await?;
    while let Some(hit) = hits.next().await {
        let hit = hit?;
        println!(
            "{} {:.4} vector={:?} text={:?}",
            hit.id, hit.score, hit.vector_leg, hit.text_leg
        );
    }
    Ok(())
}
