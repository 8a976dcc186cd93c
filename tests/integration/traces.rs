//! OpenTelemetry traces: a `fathom serve` process exporting by OTLP to a
//! receiver started here, asserting on the spans it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_api::v1::collections_client::CollectionsClient;
use fathom_api::v1::documents_client::DocumentsClient;
use fathom_api::v1::search_client::SearchClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::serve_process::ServeProcess;
use crate::support::{UpsertSession, collection_request, document, pseudo_random_vector};

/// An OTLP/gRPC trace receiver that keeps what it is sent.
#[derive(Clone, Default)]
struct Receiver {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.exports.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves on a free port; its `http://` endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        endpoint
    }

    fn spans(&self) -> Vec<Span> {
        let exports = self.exports.lock().unwrap();
        exports
            .iter()
            .flat_map(|e| &e.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.iter().cloned())
            .collect()
    }

    fn service_names(&self) -> Vec<String> {
        let exports = self.exports.lock().unwrap();
        exports
            .iter()
            .flat_map(|e| &e.resource_spans)
            .filter_map(|r| r.resource.as_ref())
            .flat_map(|r| &r.attributes)
            .filter(|kv| kv.key == "service.name")
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A receiver, and a `fathom serve` exporting its spans to it. The export
/// schedule is longer than any test: spans arrive only because shutdown
/// flushes them.
async fn traced_fathom() -> (Receiver, ServeProcess) {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let process = ServeProcess::start_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    (receiver, process)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(value) => Some(value.as_str()),
            _ => None,
        })
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_search_exports_its_rpc_span_with_a_child_span_per_sql_statement_flushed_at_shutdown() {
    let (receiver, mut process) = traced_fathom().await;
    let channel = process.channel().await;
    CollectionsClient::new(channel.clone())
        .create_collection(collection_request("traced", 4, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let mut documents = DocumentsClient::new(channel.clone());
    let session = UpsertSession::open(&mut documents, "traced", "", "").await.unwrap();
    session
        .send(1, (0..3).map(|i| document(&format!("d{i}"), 4, i)).collect())
        .await;
    session.finish().await.unwrap();

    // The caller's trace context, as a client instrumented with OpenTelemetry sends it.
    let mut request = tonic::Request::new(pb::SearchRequest {
        collection: "traced".into(),
        vector: pseudo_random_vector(4, 1),
        limit: 2,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let mut hits = SearchClient::new(channel).search(request).await.unwrap().into_inner();
    while hits.message().await.unwrap().is_some() {}

    process.terminate();
    assert!(
        process
            .exited_within(Duration::from_secs(30))
            .await
            .is_some_and(|s| s.success()),
        "fathom serve did not exit cleanly on SIGTERM"
    );
    let arrived = fathom_tests::eventually(Duration::from_secs(10), || async {
        receiver.spans().iter().any(|s| s.name == "fathom.v1.Search/Search")
    })
    .await;
    let spans = receiver.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(arrived, "no span of the Search RPC arrived; got {names:?}");

    let rpc = spans.iter().find(|s| s.name == "fathom.v1.Search/Search").unwrap();
    assert_eq!(attribute(rpc, "rpc.system"), Some("grpc"));
    assert_eq!(attribute(rpc, "rpc.service"), Some("fathom.v1.Search"));
    assert_eq!(attribute(rpc, "rpc.method"), Some("Search"));
    assert_eq!(hex(&rpc.trace_id), CALLER_TRACE, "the RPC continues the caller's trace");
    assert_eq!(hex(&rpc.parent_span_id), CALLER_SPAN);

    let sql = spans
        .iter()
        .find(|s| s.name == "SELECT search")
        .unwrap_or_else(|| panic!("no span of the search statement; got {names:?}"));
    assert_eq!(sql.trace_id, rpc.trace_id, "the statement is in the RPC's trace");
    assert_eq!(sql.parent_span_id, rpc.span_id, "the statement is a child of the RPC");
    assert_eq!(attribute(sql, "db.system"), Some("postgresql"));
    assert_eq!(attribute(sql, "db.operation"), Some("SELECT"));
    assert_eq!(attribute(sql, "db.statement.name"), Some("search"));
    let upsert = spans
        .iter()
        .find(|s| s.name == "fathom.v1.Documents/UpsertStream")
        .unwrap_or_else(|| panic!("no span of the UpsertStream RPC; got {names:?}"));
    let insert = spans
        .iter()
        .find(|s| s.name == "INSERT upsert documents")
        .unwrap_or_else(|| panic!("no span of the upsert's statement; got {names:?}"));
    assert_eq!(
        insert.parent_span_id, upsert.span_id,
        "a stream's statements are children of its RPC, though a task of their own writes them"
    );
    assert!(receiver.service_names().iter().all(|n| n == "fathom"));
}

#[tokio::test]
async fn listing_fourteen_collections_runs_two_statements_not_one_per_collection() {
    let (receiver, mut process) = traced_fathom().await;
    let mut collections = CollectionsClient::new(process.channel().await);
    for i in 0..14 {
        let mut request = collection_request(&format!("c{i}"), 4, pb::DistanceMetric::Cosine);
        if i % 2 == 1 {
            request.defer_index = true;
            request.index_build = pb::IndexBuild::Unspecified as i32;
        }
        collections.create_collection(request).await.unwrap();
    }
    let listed = collections
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections;
    assert_eq!(listed.len(), 14);
    for collection in &listed {
        let deferred = collection.name[1..].parse::<u32>().unwrap() % 2 == 1;
        let expected = if deferred {
            pb::IndexState::Deferred
        } else {
            pb::IndexState::Ready
        };
        assert_eq!(collection.index_state(), expected, "{}", collection.name);
    }

    process.terminate();
    assert!(process.exited_within(Duration::from_secs(30)).await.is_some());
    let arrived = fathom_tests::eventually(Duration::from_secs(10), || async {
        receiver
            .spans()
            .iter()
            .any(|s| s.name == "fathom.v1.Collections/ListCollections")
    })
    .await;
    assert!(arrived, "no span of the ListCollections RPC arrived");
    let spans = receiver.spans();
    let rpc = spans
        .iter()
        .find(|s| s.name == "fathom.v1.Collections/ListCollections")
        .unwrap();
    let mut statements: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == rpc.span_id)
        .map(|s| s.name.as_str())
        .collect();
    statements.sort();
    assert_eq!(statements, ["SELECT index states", "SELECT list collections"]);
}
