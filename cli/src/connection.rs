//! How the client commands reach a server: the server's address, the API key
//! and the TLS files, options of the client commands only (`collections`,
//! `aliases`, `documents`, `import`, `export`, `search` and `health`), so that
//! `fathom keys --help` and the other database commands do not offer them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fathom_client::{Client, ClientBuilder};

/// A client command whose subcommands share the connection options
/// (`fathom collections list --server URL`).
#[derive(Debug, clap::Args)]
pub struct ClientCommand<C: clap::Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub command: C,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// A client command's own options and the connection options
/// (`fathom search --server URL …`).
#[derive(Debug, clap::Args)]
pub struct ClientArgs<A: clap::Args> {
    /// The command's options.
    #[command(flatten)]
    pub args: A,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The options of every client command: the server, the API key and TLS.
/// Global within the command, so they may follow its subcommand.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// The server to talk to; https://host:port means TLS.
    #[arg(long, global = true, env = "FATHOM_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// API key, sent on every call as `authorization: Bearer <key>`.
    #[arg(
        long,
        global = true,
        env = "FATHOM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// TLS: trust this CA (PEM) for the server's certificate instead of the
    /// Mozilla roots. Implies TLS for a --server without a scheme.
    #[arg(long, global = true, env = "FATHOM_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS: present this client certificate (PEM); needs --tls-client-key.
    #[arg(long, global = true, env = "FATHOM_TLS_CLIENT_CERT", value_name = "PEM")]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-client-cert.
    #[arg(long, global = true, env = "FATHOM_TLS_CLIENT_KEY", value_name = "PEM")]
    pub tls_client_key: Option<PathBuf>,
}

/// The connection options written before the command
/// (`fathom --server URL collections list`), as earlier versions documented
/// them; hidden from `fathom --help`, since they belong to the client commands.
#[derive(Debug, Default, clap::Args)]
pub struct LeadingConnectionArgs {
    /// As a client command's --server.
    #[arg(long = "server", id = "leading_server", hide = true)]
    server: Option<String>,
    /// As a client command's --api-key.
    #[arg(long = "api-key", id = "leading_api_key", hide = true)]
    api_key: Option<String>,
    /// As a client command's --tls-ca.
    #[arg(long = "tls-ca", id = "leading_tls_ca", hide = true)]
    tls_ca: Option<PathBuf>,
    /// As a client command's --tls-client-cert.
    #[arg(long = "tls-client-cert", id = "leading_tls_client_cert", hide = true)]
    tls_client_cert: Option<PathBuf>,
    /// As a client command's --tls-client-key.
    #[arg(long = "tls-client-key", id = "leading_tls_client_key", hide = true)]
    tls_client_key: Option<PathBuf>,
}

impl LeadingConnectionArgs {
    /// The flags given, as written.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--server", self.server.is_some()),
            ("--api-key", self.api_key.is_some()),
            ("--tls-ca", self.tls_ca.is_some()),
            ("--tls-client-cert", self.tls_client_cert.is_some()),
            ("--tls-client-key", self.tls_client_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

impl ConnectionArgs {
    /// Puts the options given before the command in place of these:
    /// a flag on the command line wins over the environment the command's
    /// own options read.
    pub fn take_leading(&mut self, leading: LeadingConnectionArgs) {
        if let Some(server) = leading.server {
            self.server = server;
        }
        self.api_key = leading.api_key.or(self.api_key.take());
        self.tls_ca = leading.tls_ca.or(self.tls_ca.take());
        self.tls_client_cert = leading.tls_client_cert.or(self.tls_client_cert.take());
        self.tls_client_key = leading.tls_client_key.or(self.tls_client_key.take());
    }

    /// Whether any TLS file was given.
    fn wants_tls(&self) -> bool {
        self.tls_ca.is_some() || self.tls_client_cert.is_some() || self.tls_client_key.is_some()
    }

    /// The URL of the server: "host:port" means https:// when a TLS file is
    /// given, plain-text HTTP/2 otherwise.
    pub fn url(&self) -> String {
        let server = &self.server;
        if server.contains("://") {
            server.to_owned()
        } else if self.wants_tls() {
            format!("https://{server}")
        } else {
            format!("http://{server}")
        }
    }

    /// A client builder for the server with the key and the TLS files read.
    pub fn builder(&self) -> anyhow::Result<ClientBuilder> {
        let mut builder = Client::builder(self.url());
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key.as_str());
        }
        if let Some(path) = &self.tls_ca {
            builder = builder.ca_certificate(read("--tls-ca", path)?);
        }
        match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => {
                builder = builder.identity(read("--tls-client-cert", cert)?, read("--tls-client-key", key)?);
            }
            (Some(_), None) => anyhow::bail!("--tls-client-cert needs --tls-client-key"),
            (None, Some(_)) => anyhow::bail!("--tls-client-key needs --tls-client-cert"),
            (None, None) => {}
        }
        Ok(builder)
    }

    /// What to add to `error`'s message for the one TLS failure the error
    /// cannot name: under TLS 1.3 a server that requires client
    /// certificates turns away a client without one after the handshake,
    /// so the first call sees only a broken connection.
    pub fn advice(&self, error: &anyhow::Error) -> Option<&'static str> {
        let broken = error.chain().any(|cause| {
            cause
                .downcast_ref::<fathom_client::Error>()
                .is_some_and(fathom_client::Error::is_broken_connection)
        });
        (broken && self.tls_client_cert.is_none() && self.url().starts_with("https://")).then_some(
            "if the server requires client certificates (mutual TLS), give one with --tls-client-cert and \
             --tls-client-key",
        )
    }

    /// Connects to the server with these settings.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(self.builder()?.connect().await?)
    }

    /// Connects to the server with these settings, waiting at most `timeout`.
    pub async fn connect_within(&self, timeout: Duration) -> anyhow::Result<Client> {
        Ok(self.builder()?.connect_timeout(timeout).connect().await?)
    }
}

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{flag}: cannot read {}: {e}", path.display()))
}
