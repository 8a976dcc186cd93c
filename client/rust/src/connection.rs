//! Connecting: the server URL, TLS (rustls), and the API key every call carries.

use std::fmt;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{Client, Error, RetryPolicy};

/// The service every stub calls through: the connection, with the API key
/// added to each call's metadata (unary calls and streams alike). Other
/// gRPC clients of the same server (health, reflection) can be built on it:
/// see [`Client::transport`].
pub type Transport = InterceptedService<Channel, CallCredentials>;

/// How to connect to a server: start with [`Client::builder`].
///
/// An `https://` URL means TLS, verified against the Mozilla root
/// certificates (webpki-roots) unless [`ca_certificate`](Self::ca_certificate)
/// names the CA to trust instead. TLS options with an `http://` URL are an
/// error rather than being ignored.
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    api_key: Option<String>,
    ca_certificate: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            ca_certificate: None,
            identity: None,
            server_name: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }

    /// Sends `key` on every call as `authorization: Bearer <key>`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Trusts the CA certificate(s) in `pem`, and only them, to sign the
    /// server's certificate (a private CA, or a self-signed server).
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// Presents this client certificate chain and its private key (PEM), for
    /// servers that require client certificates (mutual TLS).
    pub fn identity(mut self, certificate_chain_pem: impl Into<Vec<u8>>, private_key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((certificate_chain_pem.into(), private_key_pem.into()));
        self
    }

    /// Verifies the server's certificate for `name` instead of the URL's host
    /// (connecting by IP address to a certificate issued for a DNS name).
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets how long connecting (TCP and TLS handshake) may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the deadline of unary calls (default 60 s). Streams have none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy (default [`RetryPolicy::default`]; the table of
    /// what is retried is `docs/retries.md`).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Connects, with the connect timeout and HTTP/2 keep-alive, so a dead
    /// peer is noticed on long streams. Bad options are
    /// [`Error::InvalidInput`] naming the option; an unreachable server (or a
    /// failed TLS handshake) is [`Error::Connect`].
    pub async fn connect(self) -> Result<Client, Error> {
        let credentials = CallCredentials::new(self.api_key.as_deref())?;
        let url = self.url;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::InvalidInput(format!("bad server URL {url:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let wants_tls = self.ca_certificate.is_some() || self.identity.is_some() || self.server_name.is_some();
        match endpoint.uri().scheme_str() {
            Some("https") => {
                let mut tls = ClientTlsConfig::new();
                tls = match self.ca_certificate {
                    Some(pem) => {
                        tls.ca_certificate(Certificate::from_pem(checked_certificates("ca_certificate", pem)?))
                    }
                    None => tls.with_webpki_roots(),
                };
                if let Some((chain, key)) = self.identity {
                    let chain = checked_certificates("identity (certificate chain)", chain)?;
                    PrivateKeyDer::from_pem_slice(&key).map_err(|_| {
                        Error::InvalidInput("identity: the private key is not a PEM private key".into())
                    })?;
                    tls = tls.identity(Identity::from_pem(chain, key));
                }
                if let Some(name) = self.server_name {
                    tls = tls.domain_name(name);
                }
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| Error::InvalidInput(format!("TLS settings unusable: {e}")))?;
            }
            _ if wants_tls => {
                return Err(Error::InvalidInput(format!(
                    "TLS options were given but the server URL {url:?} is not https://"
                )));
            }
            _ => {}
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| Error::Connect { url, source })?;
        Ok(Client::from_transport(
            InterceptedService::new(channel, credentials),
            self.timeout,
            self.retry,
        ))
    }
}

/// The API key stays out of logs.
impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Adds the `authorization` header to every call, if there is a key.
#[derive(Clone)]
pub struct CallCredentials {
    authorization: Option<AsciiMetadataValue>,
}

impl CallCredentials {
    fn new(api_key: Option<&str>) -> Result<Self, Error> {
        let authorization = match api_key {
            None => None,
            Some(key) => {
                // The key itself is never part of the message: errors get logged.
                let mut value = MetadataValue::try_from(format!("Bearer {key}")).map_err(|_| {
                    Error::InvalidInput(
                        "api_key holds characters a gRPC header cannot carry (printable ASCII only)".into(),
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { authorization })
    }
}

impl Interceptor for CallCredentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl fmt::Debug for CallCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallCredentials")
            .field("api_key", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `pem` if it holds at least one certificate; rustls would otherwise skip
/// what it cannot parse and fail later with an unhelpful "unknown issuer".
fn checked_certificates(option: &str, pem: Vec<u8>) -> Result<Vec<u8>, Error> {
    let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match parsed {
        Ok(certificates) if !certificates.is_empty() => Ok(pem),
        _ => Err(Error::InvalidInput(format!("{option}: not a PEM certificate"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_with_a_newline_is_refused_without_echoing_it() {
        let error = CallCredentials::new(Some("secret\nvalue")).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
        assert!(message.contains("api_key"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn the_api_key_is_sent_as_a_bearer_token() {
        let mut credentials = CallCredentials::new(Some("k-123")).unwrap();
        let request = credentials.call(tonic::Request::new(())).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer k-123");
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let builder = Client::builder("http://127.0.0.1:1").api_key("k-123");
        assert!(!format!("{builder:?}").contains("k-123"));
        let credentials = CallCredentials::new(Some("k-123")).unwrap();
        assert!(!format!("{credentials:?}").contains("k-123"));
    }
}
