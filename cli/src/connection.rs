//! How the client commands reach a server: the API key and TLS files, shared
//! by `collections`, `import`, `export`, `search` and `health`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fathom_client::{Client, ClientBuilder};

/// Global options of the client commands (besides `--server`).
#[derive(Debug, clap::Args)]
pub struct ConnectionArgs {
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

impl ConnectionArgs {
    /// Whether any TLS file was given.
    fn wants_tls(&self) -> bool {
        self.tls_ca.is_some() || self.tls_client_cert.is_some() || self.tls_client_key.is_some()
    }

    /// The URL of `server`: "host:port" means https:// when a TLS file is
    /// given, plain-text HTTP/2 otherwise.
    pub fn url(&self, server: &str) -> String {
        if server.contains("://") {
            server.to_owned()
        } else if self.wants_tls() {
            format!("https://{server}")
        } else {
            format!("http://{server}")
        }
    }

    /// A client builder for `server` with the key and the TLS files read.
    pub fn builder(&self, server: &str) -> anyhow::Result<ClientBuilder> {
        let mut builder = Client::builder(self.url(server));
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
    pub fn advice(&self, server: &str, error: &anyhow::Error) -> Option<&'static str> {
        let broken = error.chain().any(|cause| {
            cause
                .downcast_ref::<fathom_client::Error>()
                .is_some_and(fathom_client::Error::is_broken_connection)
        });
        (broken && self.tls_client_cert.is_none() && self.url(server).starts_with("https://")).then_some(
            "if the server requires client certificates (mutual TLS), give one with --tls-client-cert and \
             --tls-client-key",
        )
    }

    /// Connects to `server` with these settings.
    pub async fn connect(&self, server: &str) -> anyhow::Result<Client> {
        Ok(self.builder(server)?.connect().await?)
    }

    /// Connects to `server` with these settings, waiting at most `timeout`.
    pub async fn connect_within(&self, server: &str, timeout: Duration) -> anyhow::Result<Client> {
        Ok(self.builder(server)?.connect_timeout(timeout).connect().await?)
    }
}

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{flag}: cannot read {}: {e}", path.display()))
}
