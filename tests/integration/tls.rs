//! TLS and mutual TLS: a real server with certificates generated at test
//! time (rcgen), the Rust client and the `fathom` binary; and the API key
//! each call carries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fathom_client::{Client, Document, Error};
use fathom_server::{Config, TlsSettings};
use fathom_tests::{TestServer, fathom_binary, fresh_database};
use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::support::pseudo_random_vector;

/// A certificate authority of a test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
struct Leaf {
    certificate: String,
    key: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses).
    fn issue(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server_leaf(&self) -> Leaf {
        self.issue(&["localhost", "127.0.0.1"])
    }
}

async fn tls_server(ca: &TestCa, client_ca: Option<&TestCa>) -> TestServer {
    let leaf = ca.server_leaf();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.tls =
        Some(TlsSettings::from_pem(leaf.certificate, leaf.key, client_ca.map(|c| c.pem().into_bytes())).unwrap());
    TestServer::start_with(config).await
}

fn https(server: &TestServer) -> String {
    format!("https://{}", server.addr)
}

/// Whether `result` is a refusal at the transport level: the connection or
/// the TLS handshake failed, or the call found the connection closed.
fn refused_by_transport<T>(result: &Result<T, Error>) -> bool {
    match result {
        Err(Error::Connect { .. }) => true,
        Err(Error::Status { code, .. }) => *code == tonic::Code::Unavailable,
        _ => false,
    }
}

/// Connects and lists collections: the first call proves the handshake.
async fn list_with(builder: fathom_client::ClientBuilder) -> Result<usize, Error> {
    let client = builder.connect_timeout(Duration::from_secs(5)).connect().await?;
    Ok(client.list_collections().await?.len())
}

#[tokio::test]
async fn a_client_that_trusts_the_servers_ca_creates_upserts_and_searches_over_tls() {
    let ca = TestCa::new("fathom test CA");
    let server = tls_server(&ca, None).await;
    let client = Client::builder(https(&server))
        .ca_certificate(ca.pem())
        .connect()
        .await
        .unwrap();

    client.create_collection("docs", 8).send().await.unwrap();
    let documents = (0..50).map(|i| Document::new(format!("d{i}"), pseudo_random_vector(8, i + 1)));
    let summary = client
        .upsert_stream("docs", futures::stream::iter(documents))
        .send()
        .await
        .unwrap();
    assert_eq!(summary.documents, 50);
    let written = client
        .upsert("docs", "", vec![Document::new("unary", pseudo_random_vector(8, 7))])
        .await
        .unwrap();
    assert_eq!(written, 1);

    let hits: Vec<_> = client
        .search("docs")
        .vector(pseudo_random_vector(8, 3))
        .limit(3)
        .send()
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].as_ref().unwrap().id, "d2", "the nearest is the document itself");
}

#[tokio::test]
async fn a_tls_server_refuses_plain_text_and_clients_that_do_not_trust_its_ca() {
    let ca = TestCa::new("fathom test CA");
    let server = tls_server(&ca, None).await;

    let plain = list_with(Client::builder(server.url())).await;
    assert!(refused_by_transport(&plain), "{plain:?}");

    let other_ca = TestCa::new("some other CA");
    let untrusted = list_with(Client::builder(https(&server)).ca_certificate(other_ca.pem())).await;
    assert!(
        matches!(&untrusted, Err(error @ Error::Connect { .. })
            if error.to_string().contains("TLS handshake failed: the server's certificate is not trusted")),
        "a certificate from an unknown CA must fail the handshake, and say so: {untrusted:?}"
    );

    let mozilla_roots = list_with(Client::builder(https(&server))).await;
    assert!(
        matches!(&mozilla_roots, Err(Error::Connect { .. })),
        "{mozilla_roots:?}"
    );
}

#[tokio::test]
async fn mutual_tls_serves_a_client_certificate_signed_by_the_client_ca_and_refuses_others() {
    let server_ca = TestCa::new("fathom server CA");
    let client_ca = TestCa::new("fathom client CA");
    let server = tls_server(&server_ca, Some(&client_ca)).await;
    let trusting = || Client::builder(https(&server)).ca_certificate(server_ca.pem());

    let without = list_with(trusting()).await;
    assert!(refused_by_transport(&without), "no client certificate: {without:?}");

    let stranger = TestCa::new("not the client CA").issue(&["client"]);
    let foreign = list_with(trusting().identity(stranger.certificate, stranger.key)).await;
    assert!(
        refused_by_transport(&foreign),
        "certificate from another CA: {foreign:?}"
    );

    let leaf = client_ca.issue(&["client"]);
    let listed = list_with(trusting().identity(leaf.certificate, leaf.key)).await;
    assert_eq!(listed.unwrap(), 0);
}

#[tokio::test]
async fn tls_options_with_an_http_url_and_a_bad_ca_file_are_refused_before_connecting() {
    let ca = TestCa::new("fathom test CA");
    let over_http = Client::builder("http://127.0.0.1:1")
        .ca_certificate(ca.pem())
        .connect()
        .await;
    assert!(
        matches!(&over_http, Err(Error::InvalidInput(m)) if m.contains("https://")),
        "{over_http:?}"
    );
    let not_pem = Client::builder("https://127.0.0.1:1")
        .ca_certificate("not a certificate")
        .connect()
        .await;
    assert!(
        matches!(&not_pem, Err(Error::InvalidInput(m)) if m.contains("ca_certificate")),
        "{not_pem:?}"
    );
}

#[test]
fn tls_settings_name_the_file_that_is_missing_or_not_pem() {
    let dir = scratch_dir("settings");
    let ca = TestCa::new("fathom test CA");
    let leaf = ca.server_leaf();
    let cert = write(&dir, "cert.pem", &leaf.certificate);
    let key = write(&dir, "key.pem", &leaf.key);
    let junk = write(&dir, "junk.pem", "not PEM at all\n");
    let missing = dir.join("missing.pem");

    let error = TlsSettings::load(&missing, &key, None).unwrap_err().to_string();
    assert!(
        error.contains("missing.pem") && error.contains("certificate"),
        "{error}"
    );
    let error = TlsSettings::load(&cert, &junk, None).unwrap_err().to_string();
    assert!(error.contains("junk.pem") && error.contains("private key"), "{error}");
    let error = TlsSettings::load(&cert, &key, Some(&junk)).unwrap_err().to_string();
    assert!(error.contains("junk.pem") && error.contains("client CA"), "{error}");
    let other = ca.server_leaf();
    let other_key = write(&dir, "other-key.pem", &other.key);
    let error = TlsSettings::load(&cert, &other_key, None).unwrap_err().to_string();
    assert!(error.contains("cannot be used together"), "{error}");
    assert!(TlsSettings::load(&cert, &key, None).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_cli_lists_collections_over_tls_with_tls_ca_and_fails_clearly_without() {
    let ca = TestCa::new("fathom test CA");
    let server = tls_server(&ca, None).await;
    let dir = scratch_dir("cli");
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let url = https(&server);

    let listed = run_fathom(&["collections", "list", "--server", &url, "--tls-ca", path(&ca_file)]).await;
    assert!(listed.status.success(), "{}", stderr(&listed));

    let untrusted = run_fathom(&["collections", "list", "--server", &url]).await;
    assert!(!untrusted.status.success());
    let message = stderr(&untrusted);
    assert!(
        message.starts_with("fathom: cannot connect")
            && message.contains("not trusted")
            && message.contains("--tls-ca"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn fathom_serve_with_tls_flags_requires_client_certificates_from_its_client_ca() {
    let ca = TestCa::new("fathom test CA");
    let dir = scratch_dir("serve");
    let server_leaf = ca.server_leaf();
    let client_leaf = ca.issue(&["client"]);
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let cert = write(&dir, "server.pem", &server_leaf.certificate);
    let key = write(&dir, "server-key.pem", &server_leaf.key);
    let client_cert = write(&dir, "client.pem", &client_leaf.certificate);
    let client_key = write(&dir, "client-key.pem", &client_leaf.key);
    let port = free_port();
    let mut child = Command::new(fathom_binary())
        .args(["serve", "--tls-cert", path(&cert), "--tls-key", path(&key)])
        .args(["--tls-client-ca", path(&ca_file)])
        .env("DATABASE_URL", fresh_database().await)
        .env("FATHOM_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let with_certificate = [
        "health",
        "--server",
        &url,
        "--tls-ca",
        path(&ca_file),
        "--tls-client-cert",
        path(&client_cert),
        "--tls-client-key",
        path(&client_key),
    ];
    let mut serving = false;
    for _ in 0..100 {
        if run_fathom(&with_certificate).await.status.success() {
            serving = true;
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "fathom serve exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let without = run_fathom(&["health", "--server", &url, "--tls-ca", path(&ca_file), "--timeout", "2"]).await;
    let listed_without = run_fathom(&["collections", "list", "--server", &url, "--tls-ca", path(&ca_file)]).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    assert!(serving, "fathom health with a client certificate never succeeded");
    assert!(
        !without.status.success(),
        "no client certificate, yet: {}",
        stdout(&without)
    );
    assert!(!listed_without.status.success());
    assert!(
        stderr(&listed_without).contains("give one with --tls-client-cert and --tls-client-key"),
        "{}",
        stderr(&listed_without)
    );
}

#[tokio::test]
async fn fathom_serve_refuses_a_certificate_without_a_key_and_names_a_missing_file() {
    let no_key = run_fathom(&["serve", "--tls-cert", "/nonexistent/cert.pem"]).await;
    assert!(!no_key.status.success());
    assert!(stderr(&no_key).contains("--tls-key"), "{}", stderr(&no_key));

    let missing = run_fathom(&[
        "serve",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ])
    .await;
    assert!(!missing.status.success());
    let message = stderr(&missing);
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token_on_unary_and_streaming_calls() {
    // Server-side key checks are another layer's job; this only observes
    // what arrives. A server of health alone answers UNIMPLEMENTED to
    // fathom's RPCs, after its recording layer has seen their headers.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = recording_server(seen.clone()).await;
    let client = Client::builder(format!("http://{addr}"))
        .api_key("test-key-123")
        .connect()
        .await
        .unwrap();
    let _ = client.list_collections().await;
    let _ = client
        .upsert_stream("docs", futures::stream::iter(vec![Document::new("a", vec![1.0])]))
        .send()
        .await;
    let _ = client.search("docs").vector(vec![1.0]).send().await;

    let seen = seen.lock().unwrap().clone();
    for path in [
        "/fathom.v1.Collections/ListCollections",
        "/fathom.v1.Documents/UpsertStream",
        "/fathom.v1.Search/Search",
    ] {
        let authorization = seen.iter().find(|(p, _)| p == path).map(|(_, a)| a.clone());
        assert_eq!(
            authorization,
            Some(Some("Bearer test-key-123".to_owned())),
            "{path} in {seen:?}"
        );
    }
}

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A gRPC server that records each request's path and `authorization` header.
async fn recording_server(seen: Seen) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_, health) = tonic_health::server::health_reporter();
    let record = tower::util::MapRequestLayer::new(move |request: http::Request<tonic::body::Body>| {
        let authorization = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.lock()
            .unwrap()
            .push((request.uri().path().to_owned(), authorization));
        request
    });
    let router = tonic::transport::Server::builder().layer(record).add_service(health);
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    addr
}

async fn run_fathom(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(fathom_binary())
            .args(&args)
            .env_remove("FATHOM_API_KEY")
            .env_remove("FATHOM_TLS_CA")
            .output()
            .expect("running fathom")
    })
    .await
    .unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fathom-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, contents).unwrap();
    file
}

fn path(file: &Path) -> &str {
    file.to_str().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
