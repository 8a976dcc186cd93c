//! The fathom server under test, run as its own process
//! (`fathom serve --database-url …`) for the whole benchmark, so that its
//! memory can be read from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long the server may take to answer after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `fathom serve`; killed when dropped.
pub struct FathomProcess {
    child: Child,
    pid: u32,
    url: String,
}

/// Memory of the process, in bytes, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub peak_rss: u64,
}

impl FathomProcess {
    /// Starts `binary serve` against `database_url` on a free port, logging
    /// to `log`, and waits until it answers.
    pub async fn start(binary: &Path, database_url: &str, log: &Path) -> anyhow::Result<Self> {
        let listen = format!("127.0.0.1:{}", crate::cluster::free_port()?);
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(binary)
            .args(["serve", "--database-url", database_url, "--listen", &listen])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with `cargo build --release -p fathom-cli`)",
                    binary.display()
                )
            })?;
        let pid = child.id().context("the fathom process has no id")?;
        let url = format!("http://{listen}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("fathom exited at start ({status}); see {}", log.display());
            }
            if let Ok(client) = fathom_client::Client::connect(url.clone()).await
                && client.list_collections().await.is_ok()
            {
                return Ok(Self { child, pid, url });
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("fathom did not answer within {START_TIMEOUT:?}; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The gRPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process's current and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<ProcessMemory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kib = |field: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
                .with_context(|| format!("no {field} in {path}"))
        };
        Ok(ProcessMemory {
            rss: kib("VmRSS:")? * 1024,
            peak_rss: kib("VmHWM:")? * 1024,
        })
    }

    /// Resets the peak (`VmHWM`) to the current RSS, so that a later
    /// reading covers only what happened since (Linux `clear_refs` 5).
    pub fn reset_peak_memory(&self) -> anyhow::Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").with_context(|| format!("writing {path}"))
    }

    /// Stops the server.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
