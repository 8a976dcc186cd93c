//! Bulk loads with a deferred vector index: fast writes, exact searches
//! meanwhile, one bulk build, and a state that says where the index is.

use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_tests::{TestServer, eventually};
use sqlx::Connection;
use tonic::Code;

use crate::support::{
    UpsertSession, assert_violation, collection_request, document, get_collection, search, upsert_all,
};

const DIM: usize = 8;

fn deferred(name: &str) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        defer_index: true,
        index_build: pb::IndexBuild::Unspecified as i32,
        ..collection_request(name, DIM as u32, pb::DistanceMetric::Cosine)
    }
}

async fn index_state(server: &TestServer, name: &str) -> pb::IndexState {
    get_collection(server, name).await.index_state()
}

/// The HNSW indexes PostgreSQL has on the collection's table, and whether each is valid.
async fn hnsw_indexes(database_url: &str) -> Vec<bool> {
    let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw' AND i.indrelid = 'fathom_data.docs'::regclass",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
}

fn nearest_request(vector: Vec<f32>) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: "docs".into(),
        vector,
        limit: 5,
        ..Default::default()
    }
}

async fn nearest_ids(server: &TestServer, vector: &[f32]) -> Vec<String> {
    let hits = search(server, nearest_request(vector.to_vec())).await.unwrap();
    hits.into_iter().map(|hit| hit.id).collect()
}

fn documents(n: u64) -> Vec<pb::Document> {
    (0..n).map(|i| document(&format!("d{i}"), DIM, i)).collect()
}

#[tokio::test]
async fn a_deferred_index_is_absent_while_searches_are_exact_then_built_once_and_ready() {
    let server = TestServer::start().await;
    let created = server
        .collections()
        .await
        .create_collection(deferred("docs"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.collection.unwrap().index_state(), pb::IndexState::Deferred);
    assert!(
        hnsw_indexes(&server.database_url).await.is_empty(),
        "no HNSW index before the build"
    );

    upsert_all(&server, "docs", documents(300)).await;
    let query = document("q", DIM, 10_007).vector;
    let mut exact = nearest_request(query.clone());
    exact.params = Some(pb::VectorSearchParams {
        ef_search: 0,
        exact: true,
    });
    let exact: Vec<String> = search(&server, exact)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(
        nearest_ids(&server, &query).await,
        exact,
        "without the index, search is exact"
    );

    let built = server
        .collections()
        .await
        .build_index(pb::BuildIndexRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(built.build_seconds > 0.0, "{built:?}");
    assert_eq!(built.collection.unwrap().index_state(), pb::IndexState::Ready);
    assert_eq!(hnsw_indexes(&server.database_url).await, vec![true]);
    assert_eq!(index_state(&server, "docs").await, pb::IndexState::Ready);
    assert_eq!(nearest_ids(&server, &query).await[0], exact[0]);

    let again = server
        .collections()
        .await
        .build_index(pb::BuildIndexRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.build_seconds, 0.0, "a ready index is not built again");
    assert_eq!(hnsw_indexes(&server.database_url).await, vec![true]);
}

#[tokio::test]
async fn while_the_index_builds_the_collection_says_building_and_searches_answer() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(deferred("docs"))
        .await
        .unwrap();
    upsert_all(&server, "docs", documents(100)).await;
    // An open transaction that wrote to the table: a concurrent build waits
    // for it before it scans, so the build is observably in progress.
    let mut writer = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("DELETE FROM fathom_data.docs WHERE id = 'd0'")
        .execute(&mut writer)
        .await
        .unwrap();

    let mut collections = server.collections().await;
    let build = tokio::spawn(async move {
        collections
            .build_index(pb::BuildIndexRequest { name: "docs".into() })
            .await
    });
    let building = eventually(Duration::from_secs(30), || async {
        index_state(&server, "docs").await == pb::IndexState::Building
    })
    .await;
    assert!(building, "the collection never said BUILDING during the build");
    let query = document("q", DIM, 77).vector;
    assert_eq!(
        nearest_ids(&server, &query).await.len(),
        5,
        "searches answer during the build"
    );

    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    let built = build.await.unwrap().unwrap().into_inner();
    assert_eq!(built.collection.unwrap().index_state(), pb::IndexState::Ready);
    assert_eq!(hnsw_indexes(&server.database_url).await, vec![true]);
}

#[tokio::test]
async fn a_stream_opened_with_build_index_at_end_ends_once_the_index_is_ready() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(deferred("docs"))
        .await
        .unwrap();
    let mut client = server.documents().await;
    let open = pb::OpenStream {
        collection: "docs".into(),
        tenant: String::new(),
        stream_id: "load".into(),
        build_index_at_end: true,
    };
    let session = UpsertSession::open_with(&mut client, open).await.unwrap();
    session.send_at(1, 0, documents(200)).await;
    let acks = session.finish().await.unwrap();
    assert_eq!(acks.last().unwrap().committed_documents, 200);
    // The call ended after the build: ready now, without waiting.
    assert_eq!(index_state(&server, "docs").await, pb::IndexState::Ready);
    assert_eq!(hnsw_indexes(&server.database_url).await, vec![true]);
}

#[tokio::test]
async fn defer_index_on_a_collection_without_an_index_is_refused_and_creates_nothing() {
    let server = TestServer::start().await;
    let request = pb::CreateCollectionRequest {
        index: Some(pb::IndexSettings {
            kind: Some(pb::index_settings::Kind::None(pb::NoIndex {})),
        }),
        ..deferred("docs")
    };
    let status = server.collections().await.create_collection(request).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "defer_index");
    let missing = server
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest { name: "docs".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn a_collection_created_with_its_index_is_ready_and_build_index_of_a_missing_one_is_not_found() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    assert_eq!(index_state(&server, "docs").await, pb::IndexState::Ready);
    let status = server
        .collections()
        .await
        .build_index(pb::BuildIndexRequest { name: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
