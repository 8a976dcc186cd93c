//! A hybrid search with a filter, printing each hit's fused score and where
//! each leg ranked it.
//!
//! ```sh
//! cargo run -p fathom-client --example hybrid_search -- docs "vector database" 384
//! ```

use fathom_client::Client;
use fathom_client::filter::field;
use futures::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(collection), Some(text), Some(dimension)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: hybrid_search COLLECTION TEXT DIMENSION");
    };
    let client = Client::connect(std::env::var("FATHOM_SERVER").unwrap_or("http://127.0.0.1:50051".into())).await?;
    // Replace with your embedding model's vector for `text`.
    let vector = vec![1.0 / (dimension.parse::<f32>()?).sqrt(); dimension.parse()?];
    let mut hits = client
        .search(&collection)
        .vector(vector)
        .text(&text)
        .filter(field("lang").eq("en").or(field("lang").exists().not()))
        .limit(10)
        .send()
        .await?;
    while let Some(hit) = hits.next().await {
        let hit = hit?;
        let leg = |l: Option<fathom_client::proto::LegResult>| l.map_or("-".into(), |l| format!("#{}", l.rank));
        println!(
            "{:<20} {:.5}  vector {:>4}  text {:>4}  {}",
            hit.id,
            hit.score,
            leg(hit.vector_leg),
            leg(hit.text_leg),
            hit.text
        );
    }
    Ok(())
}
