//! A timed run of searches: a number of searchers, each running queries
//! back to back until the run's time is up. Every query's latency counts.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::LatencyRun;

/// Keeps `concurrency` searchers busy for `duration`. Each calls `search`
/// with query indexes `0..queries`, starting at its own share of them and
/// cycling, and waits for the answer before sending the next.
pub async fn keep_busy<F, Fut>(
    concurrency: usize,
    duration: Duration,
    queries: usize,
    search: F,
) -> anyhow::Result<LatencyRun>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let queries = queries.max(1);
    let concurrency = concurrency.max(1);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let search = search.clone();
            tokio::spawn(async move {
                let mut next = worker * queries / concurrency;
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    search(next % queries).await?;
                    latencies.push(sent.elapsed());
                    next += 1;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(LatencyRun::of(latencies, started.elapsed()))
}
