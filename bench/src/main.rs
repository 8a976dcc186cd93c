//! `fathom-bench`, run by `make bench`: measures fathom's ingest and search
//! against the same work done without it, on a throw-away PostgreSQL, and
//! prints the results as markdown (see `docs/benchmarks.md`).

mod benchmark;
mod cluster;
mod copy_file;
mod database;
mod dataset;
mod fathom_process;
mod hand_written_sql;
mod ingest;
mod jsonl_file;
mod machine;
mod matched_recall;
mod memory;
mod options;
mod query;
mod report;
mod stats;
mod time_to_searchable;
mod workload;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = options::Options::parse();
    // On Ctrl-C the benchmark is dropped, which stops its cluster and server.
    let outcome = tokio::select! {
        outcome = benchmark::run(&options) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome.and_then(|report| publish(&report, &options.markdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fathom-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the report and writes it to `path`.
fn publish(report: &report::Report, path: &std::path::Path) -> anyhow::Result<()> {
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("fathom-bench: results written to {}", path.display());
    Ok(())
}
