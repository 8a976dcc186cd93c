//! Prometheus metrics: the gRPC series by method and code, and fathom's
//! own, scraped over HTTP from `GET /metrics`.
//!
//! The metrics recorder is process-wide, and the other tests of this binary
//! run their servers in this process at the same time; so exact counts are
//! asserted of a `fathom serve` process of its own, and the in-process
//! server on port 0 is held to lower bounds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_api::v1::collections_client::CollectionsClient;
use fathom_api::v1::documents_client::DocumentsClient;
use fathom_api::v1::search_client::SearchClient;
use fathom_tests::{TestServer, eventually, fresh_database};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;

use crate::serve_process::ServeProcess;
use crate::support::{UpsertSession, collection_request, document};

const COLLECTIONS: &str = "fathom.v1.Collections";
pub(crate) const DOCUMENTS: &str = "fathom.v1.Documents";
const SEARCH: &str = "fathom.v1.Search";

/// The body of `GET /metrics`, over a plain TCP connection.
pub(crate) async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connecting to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: fathom\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    body.to_owned()
}

/// The sum of the samples of `name` whose labels include `labels`.
pub(crate) fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, sample) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (series_name == name).then_some(())?;
            let found: HashMap<&str, &str> = series_labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|(k, v)| found.get(k) == Some(v))
                .then(|| sample.parse::<f64>().ok())?
        })
        .sum()
}

/// The labels of one method.
pub(crate) fn method<'a>(grpc_type: &'a str, service: &'a str, name: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("grpc_type", grpc_type),
        ("grpc_service", service),
        ("grpc_method", name),
    ]
}

pub(crate) fn with_code<'a>(labels: [(&'a str, &'a str); 3], code: &'a str) -> [(&'a str, &'a str); 4] {
    let [a, b, c] = labels;
    [a, b, c, ("grpc_code", code)]
}

/// The calls both tests make, on a new collection `name` of dimension 4:
/// CreateCollection, 3 GetCollection OK, 2 GetCollection NOT_FOUND, one
/// UpsertStream of 2 batches (5 documents), and one vector Search.
async fn make_known_calls(channel: Channel, name: &str) {
    let mut collections = CollectionsClient::new(channel.clone());
    collections
        .create_collection(collection_request(name, 4, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    for _ in 0..3 {
        collections
            .get_collection(pb::GetCollectionRequest { name: name.into() })
            .await
            .unwrap();
    }
    for missing in ["metrics_missing_a", "metrics_missing_b"] {
        let status = collections
            .get_collection(pb::GetCollectionRequest { name: missing.into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let mut documents = DocumentsClient::new(channel.clone());
    let session = UpsertSession::open(&mut documents, name, "", "").await.unwrap();
    session
        .send(1, (0..3).map(|i| document(&format!("d{i}"), 4, i)).collect())
        .await;
    session
        .send(2, (3..5).map(|i| document(&format!("d{i}"), 4, i)).collect())
        .await;
    let acks = session.finish().await.unwrap();
    assert_eq!(acks.len(), 2);
    let mut search = SearchClient::new(channel);
    let mut hits = search
        .search(pb::SearchRequest {
            collection: name.into(),
            vector: crate::support::pseudo_random_vector(4, 1),
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut found = 0;
    while hits.message().await.unwrap().is_some() {
        found += 1;
    }
    assert_eq!(found, 3);
}

/// A `fathom serve` process with `args` and a metrics endpoint of its own
/// (the in-process servers share one recorder), and that endpoint.
pub(crate) async fn serve_with_metrics(args: &[&str]) -> (ServeProcess, std::net::SocketAddr) {
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listen = metrics_addr.to_string();
    let args: Vec<&str> = args.iter().copied().chain(["--metrics-listen", &listen]).collect();
    (ServeProcess::start_with(&args).await, metrics_addr)
}

#[tokio::test]
async fn a_serve_process_counts_each_rpc_by_method_and_code_at_its_metrics_endpoint() {
    let (process, metrics_addr) = serve_with_metrics(&[]).await;
    make_known_calls(process.channel().await, "metered").await;

    let get = method("unary", COLLECTIONS, "GetCollection");
    let upsert = method("bidi_stream", DOCUMENTS, "UpsertStream");
    let search = method("server_stream", SEARCH, "Search");
    // A request is counted as handled when its response body ends, which
    // may be a moment after the client has read it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(metrics_addr).await;
        let all_handled = value(&text, "grpc_server_handled_total", &with_code(search, "OK")) == 1.0
            && value(&text, "grpc_server_handled_total", &with_code(upsert, "OK")) == 1.0
            && value(&text, "grpc_server_handled_total", &get) == 5.0;
        if all_handled {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every call was counted as handled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(value(&text, "grpc_server_started_total", &get), 5.0, "{text}");
    assert_eq!(value(&text, "grpc_server_handled_total", &with_code(get, "OK")), 3.0);
    assert_eq!(
        value(&text, "grpc_server_handled_total", &with_code(get, "NotFound")),
        2.0
    );
    assert_eq!(value(&text, "grpc_server_handling_seconds_count", &get), 5.0);
    assert_eq!(
        value(&text, "grpc_server_handling_seconds_bucket", &[get[2], ("le", "+Inf")]),
        5.0
    );
    assert!(
        text.contains("grpc_server_handling_seconds_bucket{") && text.contains("le=\"0.0005\""),
        "handling times have buckets from 0.5 ms:\n{text}"
    );
    assert_eq!(value(&text, "grpc_server_started_total", &upsert), 1.0);
    assert_eq!(value(&text, "grpc_server_handling_seconds_count", &upsert), 1.0);
    // The OpenStream message and two batches in; StreamOpened and two acks out.
    assert_eq!(value(&text, "grpc_server_msg_received_total", &upsert), 3.0);
    assert_eq!(value(&text, "grpc_server_msg_sent_total", &upsert), 3.0);
    assert_eq!(value(&text, "grpc_server_started_total", &search), 1.0);
    assert_eq!(value(&text, "grpc_server_handling_seconds_count", &search), 1.0);
    assert_eq!(
        value(&text, "grpc_server_msg_sent_total", &search),
        3.0,
        "one message per hit"
    );

    assert_eq!(
        value(&text, "fathom_documents_committed_total", &[("path", "stream")]),
        5.0
    );
    assert_eq!(
        value(&text, "fathom_batches_committed_total", &[("path", "stream")]),
        2.0
    );
    assert_eq!(
        value(&text, "fathom_search_duration_seconds_count", &[("kind", "vector")]),
        1.0
    );
    assert_eq!(value(&text, "fathom_postgres_up", &[]), 1.0);
    assert!(
        text.contains("fathom_db_pool_connections{state=\"idle\"}"),
        "pool gauges:\n{text}"
    );

    // A resumable stream broken after its first batch, opened again, and
    // sent that batch again: one resume, one batch already committed.
    let mut documents = DocumentsClient::new(process.channel().await);
    let batch = || (0..2).map(|i| document(&format!("r{i}"), 4, i)).collect::<Vec<_>>();
    let first = UpsertSession::open(&mut documents, "metered", "", "resumed")
        .await
        .unwrap();
    first.send_at(1, 0, batch()).await;
    first.finish().await.unwrap();
    let again = UpsertSession::open(&mut documents, "metered", "", "resumed")
        .await
        .unwrap();
    assert_eq!(again.opened.committed_documents, 2);
    again.send_at(1, 0, batch()).await;
    let acks = again.finish().await.unwrap();
    assert!(acks[0].already_committed);
    let text = scrape(metrics_addr).await;
    assert_eq!(value(&text, "fathom_stream_resumes_total", &[]), 1.0, "{text}");
    assert_eq!(value(&text, "fathom_batches_already_committed_total", &[]), 1.0);
    assert_eq!(
        value(
            &text,
            "fathom_documents_committed_total",
            &[("path", "resumable_stream")]
        ),
        2.0
    );
}

#[tokio::test]
async fn an_in_process_server_on_port_0_serves_metrics_at_the_address_it_reports() {
    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start_with(config).await;
    let metrics_addr = server.metrics_addr.expect("metrics were asked for");
    assert_ne!(metrics_addr.port(), 0);

    let get = method("unary", COLLECTIONS, "GetCollection");
    let before = scrape(metrics_addr).await;
    make_known_calls(server.channel().await, "metered").await;
    // Other tests' servers count into the same process-wide recorder, so
    // only lower bounds hold here.
    let counted = eventually(Duration::from_secs(10), || async {
        let after = scrape(metrics_addr).await;
        let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
            value(&after, name, labels) - value(&before, name, labels) >= by
        };
        grew("grpc_server_handled_total", &with_code(get, "OK"), 3.0)
            && grew("grpc_server_handled_total", &with_code(get, "NotFound"), 2.0)
            && grew("fathom_documents_committed_total", &[("path", "stream")], 5.0)
    })
    .await;
    assert!(counted, "the calls were not counted:\n{}", scrape(metrics_addr).await);
    server.stop().await;
}

#[tokio::test]
async fn a_serve_process_reports_its_own_cpu_memory_descriptors_and_start_time() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // The kernel counts a start in clock ticks (10 ms): a second of slack.
    let before_start = now() - 1.0;
    let (process, metrics_addr) = serve_with_metrics(&[]).await;
    let text = scrape(metrics_addr).await;
    let read = |name: &str| value(&text, name, &[]);

    let started = read("process_start_time_seconds");
    assert!(
        started >= before_start && started <= now(),
        "the scraped process, started after {before_start}, reports {started}"
    );
    assert!(read("process_cpu_seconds_total") > 0.0, "{text}");
    assert!(read("process_resident_memory_bytes") > 1024.0 * 1024.0, "{text}");
    // Its listeners and its database connections are descriptors too.
    assert!(read("process_open_fds") > 3.0, "{text}");
    assert!(read("process_max_fds") >= read("process_open_fds"), "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
    drop(process);
}
