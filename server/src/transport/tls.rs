//! TLS for the gRPC listener (rustls): a certificate and key, and optionally
//! a CA that client certificates must be signed by (mutual TLS).
//!
//! Everything is read and checked when [`TlsSettings`] is made, so a bad
//! file stops `fathom serve` at startup with an error naming the file,
//! rather than failing each handshake later.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A server's TLS settings: PEM that has been read and parsed.
#[derive(Clone)]
pub struct TlsSettings {
    certificate_chain: Vec<u8>,
    private_key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// Why TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", .path.display())]
    Read {
        /// Which setting the file is for, such as "TLS certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file (or PEM given directly) holds no usable PEM of the kind expected.
    #[error("the {what} {origin} is not valid PEM: {reason}")]
    InvalidPem {
        /// Which setting, such as "TLS private key".
        what: &'static str,
        /// The file, or "(given as PEM)".
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the combination (such as a key that is not the certificate's).
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Unusable(String),
}

impl TlsSettings {
    /// Reads a certificate chain and its private key (PEM files), and, for
    /// mutual TLS, the CA certificate(s) that client certificates must be
    /// signed by.
    pub fn load(certificate: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let origin = |path: &Path| path.display().to_string();
        let certificate_chain = read(CERTIFICATE, certificate)?;
        check_certificates(CERTIFICATE, &origin(certificate), &certificate_chain)?;
        let private_key = read(KEY, key)?;
        check_key(&origin(key), &private_key)?;
        let client_ca = match client_ca {
            Some(path) => {
                let pem = read(CLIENT_CA, path)?;
                check_certificates(CLIENT_CA, &origin(path), &pem)?;
                Some(pem)
            }
            None => None,
        };
        Self::checked(certificate_chain, private_key, client_ca)
    }

    /// The same settings from PEM in memory (tests, or secrets not on disk).
    pub fn from_pem(
        certificate_chain: impl Into<Vec<u8>>,
        private_key: impl Into<Vec<u8>>,
        client_ca: Option<Vec<u8>>,
    ) -> Result<Self, TlsError> {
        let (certificate_chain, private_key) = (certificate_chain.into(), private_key.into());
        check_certificates(CERTIFICATE, IN_MEMORY, &certificate_chain)?;
        check_key(IN_MEMORY, &private_key)?;
        if let Some(pem) = &client_ca {
            check_certificates(CLIENT_CA, IN_MEMORY, pem)?;
        }
        Self::checked(certificate_chain, private_key, client_ca)
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic configuration these settings stand for.
    pub fn server_tls_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.certificate_chain, &self.private_key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// Lets rustls check what parsing cannot (the key belongs to the
    /// certificate), once, here.
    fn checked(certificate_chain: Vec<u8>, private_key: Vec<u8>, client_ca: Option<Vec<u8>>) -> Result<Self, TlsError> {
        let settings = Self {
            certificate_chain,
            private_key,
            client_ca,
        };
        tonic::transport::Server::builder()
            .tls_config(settings.server_tls_config())
            .map_err(|e| TlsError::Unusable(error_chain(&e)))?;
        Ok(settings)
    }
}

/// The key stays out of logs and panics.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mutual", &self.requires_client_certificates())
            .finish_non_exhaustive()
    }
}

const CERTIFICATE: &str = "TLS certificate";
const KEY: &str = "TLS private key";
const CLIENT_CA: &str = "TLS client CA";
const IN_MEMORY: &str = "(given as PEM)";

fn check_certificates(what: &'static str, origin: &str, pem: &[u8]) -> Result<(), TlsError> {
    let invalid = |reason: String| TlsError::InvalidPem {
        what,
        origin: origin.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no CERTIFICATE section".into()));
    }
    Ok(())
}

fn check_key(origin: &str, pem: &[u8]) -> Result<(), TlsError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .map_err(|e| TlsError::InvalidPem {
            what: KEY,
            origin: origin.to_owned(),
            reason: match e {
                rustls_pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY section".into(),
                other => other.to_string(),
            },
        })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
