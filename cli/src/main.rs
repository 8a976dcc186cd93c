//! The `fathom` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    fathom_cli::run(fathom_cli::Cli::parse()).await
}
