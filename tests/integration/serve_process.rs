//! `fathom serve` as a process of its own, for tests that read its memory
//! or signal it.

use std::time::Duration;

use fathom_tests::{eventually, fresh_database};
use tonic_health::pb::health_check_response::ServingStatus;

/// A `fathom serve` process of its own on a fresh database, so its memory
/// can be read and signals sent to it.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    url: String,
    pub(crate) database_url: String,
}

impl ServeProcess {
    /// `fathom serve` with default settings.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// `fathom serve` with these extra arguments, once it is SERVING.
    pub(crate) async fn start_with(args: &[&str]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    /// `fathom serve` with these extra arguments and environment variables, once it is SERVING.
    pub(crate) async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on(fresh_database().await, "127.0.0.1", args, None, env).await
    }

    /// `fathom serve` on `database_url`, listening on `host` (clients reach
    /// it on loopback), with these extra arguments and environment
    /// variables, once it is SERVING; with `log`, its stderr goes there at
    /// RUST_LOG=debug.
    pub(crate) async fn start_on(
        database_url: String,
        host: &str,
        args: &[&str],
        log: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(fathom_tests::fathom_binary());
        command
            .arg("serve")
            .args(args)
            .env("DATABASE_URL", &database_url)
            .env("FATHOM_LISTEN", format!("{host}:{port}"))
            .env("RUST_LOG", if log.is_some() { "debug" } else { "error" })
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null());
        if let Some(log) = log {
            command.stderr(std::fs::File::create(log).unwrap());
        }
        let child = command.spawn().unwrap();
        let mut process = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            database_url,
        };
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(process.child.try_wait().unwrap().is_none(), "fathom serve exited early");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process.wait_serving().await;
        process
    }

    /// The URL clients connect to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) async fn wait_serving(&self) {
        let health = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        let serving = eventually(Duration::from_secs(30), || {
            let mut health = health.clone();
            async move {
                health
                    .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
            }
        })
        .await;
        assert!(serving, "fathom serve never became SERVING");
    }

    /// Sends SIGTERM, as an orchestrator stopping the process does.
    pub(crate) fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for the process to exit; its status, or None if it is still running.
    pub(crate) async fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
