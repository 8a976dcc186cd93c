//! Collections whose HNSW index is built automatically (the default): exact
//! while below the indexing threshold, indexed in bulk at the end of the
//! stream that passes it (never by its batches), in the background after an
//! Upsert that passes it; and the other two ways, immediate and on request.

use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_server::Config;
use fathom_tests::TestServer;
use sqlx::Connection;
use tonic::Code;

use crate::support::{UpsertSession, assert_violation, collection_request, count, document, get_collection, search};

const DIM: usize = 8;
/// The test servers' threshold, in documents of [`DIM`] components.
const THRESHOLD: u64 = 100;

/// A server whose automatic collections are indexed past [`THRESHOLD`] documents.
async fn server() -> TestServer {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    config.indexing_threshold_bytes = THRESHOLD * DIM as u64 * 4;
    TestServer::start_with(config).await
}

fn request(name: &str, build: pb::IndexBuild) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        index_build: build as i32,
        ..collection_request(name, DIM as u32, pb::DistanceMetric::Cosine)
    }
}

async fn create(server: &TestServer, request: pb::CreateCollectionRequest) -> pb::Collection {
    server
        .collections()
        .await
        .create_collection(request)
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap()
}

/// Whether each HNSW index PostgreSQL has on the collection's table is valid.
async fn hnsw_indexes(server: &TestServer, name: &str) -> Vec<bool> {
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw' AND i.indrelid = to_regclass($1)",
    )
    .bind(format!("fathom_data.{name}"))
    .fetch_all(&mut db)
    .await
    .unwrap()
}

fn documents(from: u64, n: u64) -> Vec<pb::Document> {
    (from..from + n).map(|i| document(&format!("d{i}"), DIM, i)).collect()
}

/// Streams `batches` batches of `per_batch` documents, numbered from
/// `from`; after each batch's ack, `after_ack` sees the number of documents
/// acknowledged so far. Returns once the call has ended.
async fn stream(
    server: &TestServer,
    name: &str,
    from: u64,
    (batches, per_batch): (u64, u64),
    mut after_ack: impl AsyncFnMut(u64),
) {
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, name, "", "").await.unwrap();
    for batch in 0..batches {
        session
            .send(batch + 1, documents(from + batch * per_batch, per_batch))
            .await;
        let ack = session.next_ack().await.unwrap().expect("an ack");
        assert_eq!(ack.sequence, batch + 1);
        after_ack((batch + 1) * per_batch).await;
    }
    let rest = session.finish().await.unwrap();
    assert!(rest.is_empty(), "every batch was acknowledged before the end");
}

#[tokio::test]
async fn a_collection_created_with_defaults_builds_its_index_automatically_and_starts_without_it() {
    let server = server().await;
    let created = create(&server, request("docs", pb::IndexBuild::Unspecified)).await;
    assert_eq!(created.index_build(), pb::IndexBuild::Automatic);
    assert_eq!(created.index_state(), pb::IndexState::Deferred);
    assert!(hnsw_indexes(&server, "docs").await.is_empty());
    assert_eq!(
        get_collection(&server, "docs").await.index_build(),
        pb::IndexBuild::Automatic,
        "GetCollection reports it"
    );
}

#[tokio::test]
async fn a_stream_that_ends_past_the_threshold_returns_with_the_index_built_and_no_batch_started_it() {
    let server = server().await;
    create(&server, request("docs", pb::IndexBuild::Automatic)).await;
    // Five batches of 50: the threshold is passed by the second.
    stream(&server, "docs", 0, (5, 50), async |acknowledged| {
        assert!(
            hnsw_indexes(&server, "docs").await.is_empty(),
            "no index while the stream goes on ({acknowledged} documents acknowledged)"
        );
    })
    .await;
    assert_eq!(
        hnsw_indexes(&server, "docs").await,
        vec![true],
        "one valid index when the call ends"
    );
    assert_eq!(
        get_collection(&server, "docs").await.index_state(),
        pb::IndexState::Ready
    );
    assert_eq!(count(&server, "docs").await, 250);
    // The stored vector's nearest neighbour, through the graph, is itself.
    let hits = search(
        &server,
        pb::SearchRequest {
            collection: "docs".into(),
            vector: document("d17", DIM, 17).vector,
            limit: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(hits[0].id, "d17");
}

#[tokio::test]
async fn a_stream_that_ends_below_the_threshold_leaves_the_collection_exact() {
    let server = server().await;
    create(&server, request("docs", pb::IndexBuild::Automatic)).await;
    stream(&server, "docs", 0, (3, (THRESHOLD - 1) / 3), async |_| {}).await;
    assert!(hnsw_indexes(&server, "docs").await.is_empty());
    assert_eq!(
        get_collection(&server, "docs").await.index_state(),
        pb::IndexState::Deferred
    );
    // One document more, by another stream, passes it.
    stream(&server, "docs", THRESHOLD - 1, (1, 1), async |_| {}).await;
    assert_eq!(hnsw_indexes(&server, "docs").await, vec![true]);
}

#[tokio::test]
async fn an_upsert_that_passes_the_threshold_builds_the_index_in_the_background() {
    let server = server().await;
    create(&server, request("docs", pb::IndexBuild::Automatic)).await;
    let mut client = server.documents().await;
    let upsert = |from, n| pb::UpsertRequest {
        collection: "docs".into(),
        tenant: String::new(),
        documents: documents(from, n),
    };
    client.upsert(upsert(0, THRESHOLD - 1)).await.unwrap();
    client.upsert(upsert(0, THRESHOLD - 1)).await.unwrap(); // The same ids: still below.
    assert_eq!(
        get_collection(&server, "docs").await.index_state(),
        pb::IndexState::Deferred
    );
    client.upsert(upsert(THRESHOLD - 1, 1)).await.unwrap();
    let built = fathom_tests::eventually(Duration::from_secs(60), || async {
        hnsw_indexes(&server, "docs").await == vec![true]
    })
    .await;
    assert!(built, "the index was built after the Upsert that passed the threshold");
    assert_eq!(
        get_collection(&server, "docs").await.index_state(),
        pb::IndexState::Ready
    );
}

#[tokio::test]
async fn immediate_has_its_index_from_the_start_and_on_request_waits_for_build_index() {
    let server = server().await;
    let immediate = create(&server, request("now", pb::IndexBuild::Immediate)).await;
    assert_eq!(immediate.index_state(), pb::IndexState::Ready);
    assert_eq!(hnsw_indexes(&server, "now").await, vec![true]);

    let on_request = create(&server, request("later", pb::IndexBuild::OnRequest)).await;
    assert_eq!(on_request.index_build(), pb::IndexBuild::OnRequest);
    stream(&server, "later", 0, (3, THRESHOLD), async |_| {}).await;
    assert!(
        hnsw_indexes(&server, "later").await.is_empty(),
        "past the threshold, still none"
    );
    assert_eq!(
        get_collection(&server, "later").await.index_state(),
        pb::IndexState::Deferred
    );

    // defer_index is the older spelling of ON_REQUEST.
    let deferred = create(
        &server,
        pb::CreateCollectionRequest {
            defer_index: true,
            ..request("deferred", pb::IndexBuild::Unspecified)
        },
    )
    .await;
    assert_eq!(deferred.index_build(), pb::IndexBuild::OnRequest);
}

#[tokio::test]
async fn a_contradictory_or_unknown_index_build_is_refused_and_creates_nothing() {
    let server = server().await;
    let mut collections = server.collections().await;
    let contradictory = pb::CreateCollectionRequest {
        defer_index: true,
        ..request("docs", pb::IndexBuild::Immediate)
    };
    let status = collections.create_collection(contradictory).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "index_build");
    assert!(status.message().contains("defer_index"), "{}", status.message());
    let unknown = pb::CreateCollectionRequest {
        index_build: 9,
        ..request("docs", pb::IndexBuild::Unspecified)
    };
    let status = collections.create_collection(unknown).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "index_build");
    assert!(status.message().contains("index_build is 9"), "{}", status.message());
    let missing = collections
        .get_collection(pb::GetCollectionRequest { name: "docs".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}
