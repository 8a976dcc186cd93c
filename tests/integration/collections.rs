//! The collection lifecycle and its error codes.

use fathom_api::v1 as pb;
use fathom_tests::TestServer;
use tonic::Code;

use crate::support::{
    assert_violation, collection_request, count, embedding_like_vector, hnsw_request, search, upsert_all,
};

/// The HNSW settings of a collection that has an HNSW index.
fn hnsw_of(collection: &pb::Collection) -> pb::HnswIndex {
    match collection.index.as_ref().and_then(|i| i.kind.as_ref()) {
        Some(pb::index_settings::Kind::Hnsw(hnsw)) => *hnsw,
        other => panic!("an HNSW index, not {other:?}"),
    }
}

#[tokio::test]
async fn a_created_collection_is_returned_with_its_settings() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    let created = client
        .create_collection(collection_request("docs", 384, pb::DistanceMetric::Cosine))
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    let got = client
        .get_collection(pb::GetCollectionRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    assert_eq!(got, created);
    assert_eq!(got.name, "docs");
    assert_eq!(got.dimension, 384);
    assert_eq!(got.metric(), pb::DistanceMetric::Cosine);
    assert_eq!(got.text_language, "english");
    assert!(!got.multi_tenant);
    let hnsw = hnsw_of(&got);
    assert_eq!((hnsw.m, hnsw.ef_construction), (16, 64));
    assert_eq!(hnsw.precision(), pb::IndexPrecision::Half, "half precision by default");
    assert!(got.create_time.is_some());
}

#[tokio::test]
async fn a_hostile_name_is_invalid_argument_and_creates_nothing() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    let status = client
        .create_collection(collection_request("x\"; drop table y; --", 3, pb::DistanceMetric::L2))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "name");
    let listed = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.collections.is_empty());
}

#[tokio::test]
async fn every_invalid_setting_is_reported_at_once() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    let mut request = collection_request("ok_name", 0, pb::DistanceMetric::Unspecified);
    request.text_language = "Klingon!".into();
    let status = client.create_collection(request).await.unwrap_err();
    for field in ["dimension", "metric", "text_language"] {
        assert_violation(&status, Code::InvalidArgument, field);
    }
}

#[tokio::test]
async fn an_unknown_text_language_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    let mut request = collection_request("docs", 3, pb::DistanceMetric::Cosine);
    request.text_language = "klingon".into();
    let status = client.create_collection(request).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "text_language");
}

#[tokio::test]
async fn hnsw_dimension_limits_follow_the_index_precision_and_no_index_has_none() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    // 3072-d embeddings get an HNSW index at half precision, the default.
    let wide = client
        .create_collection(collection_request("wide", 3072, pb::DistanceMetric::Cosine))
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    let hnsw = hnsw_of(&wide);
    assert_eq!(hnsw.precision(), pb::IndexPrecision::Half);
    upsert_all(
        &server,
        "wide",
        (0..3)
            .map(|i| pb::Document {
                id: format!("d{i}"),
                vector: embedding_like_vector(3072, i),
                ..Default::default()
            })
            .collect(),
    )
    .await;
    let hits = search(
        &server,
        pb::SearchRequest {
            collection: "wide".into(),
            vector: embedding_like_vector(3072, 1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(hits.first().map(|h| h.id.as_str()), Some("d1"));

    let status = client
        .create_collection(hnsw_request(
            "single",
            3072,
            pb::DistanceMetric::Cosine,
            pb::IndexPrecision::Single as i32,
        ))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "dimension");
    assert!(status.message().contains("2000"), "{}", status.message());
    let status = client
        .create_collection(collection_request("widest", 4001, pb::DistanceMetric::Cosine))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "dimension");
    assert!(status.message().contains("4000"), "{}", status.message());
    let status = client
        .create_collection(hnsw_request("odd", 8, pb::DistanceMetric::Cosine, 7))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "index.hnsw.precision");

    let mut request = collection_request("widest", 4001, pb::DistanceMetric::Cosine);
    request.index = Some(pb::IndexSettings {
        kind: Some(pb::index_settings::Kind::None(pb::NoIndex {})),
    });
    client.create_collection(request).await.unwrap();
    let names: Vec<String> = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["wide", "widest"], "the refused requests created nothing");
}

#[tokio::test]
async fn a_component_beyond_half_precision_is_refused_where_the_graph_is_half_and_stored_where_it_is_single() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    client
        .create_collection(collection_request("half", 3, pb::DistanceMetric::L2))
        .await
        .unwrap();
    let single = hnsw_request("single", 3, pb::DistanceMetric::L2, pb::IndexPrecision::Single as i32);
    client.create_collection(single).await.unwrap();
    let large = pb::Document {
        id: "large".into(),
        vector: vec![1.0, 70000.0, 0.0],
        ..Default::default()
    };
    let upsert = |collection: &str| pb::UpsertRequest {
        collection: collection.into(),
        tenant: String::new(),
        documents: vec![large.clone()],
    };

    let status = server.documents().await.upsert(upsert("half")).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "documents[0].vector");
    assert!(status.message().contains("65504"), "{}", status.message());
    assert_eq!(count(&server, "half").await, 0, "a refused batch writes nothing");
    let query = |collection: &str| pb::SearchRequest {
        collection: collection.into(),
        vector: vec![0.0, 70000.0, 0.0],
        ..Default::default()
    };
    let status = search(&server, query("half")).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "vector");

    server.documents().await.upsert(upsert("single")).await.unwrap();
    assert_eq!(count(&server, "single").await, 1);
    let hits = search(&server, query("single")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        (hits[0].score - 1.0).abs() < 1e-6,
        "L2 distance 1, got {}",
        hits[0].score
    );
}

#[tokio::test]
async fn a_duplicate_is_already_exists() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    client
        .create_collection(collection_request("docs", 8, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let status = client
        .create_collection(collection_request("docs", 8, pb::DistanceMetric::L2))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn an_unknown_collection_is_not_found_everywhere() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    let name = || "nope".to_string();
    let get = client
        .get_collection(pb::GetCollectionRequest { name: name() })
        .await
        .unwrap_err();
    let delete = client
        .delete_collection(pb::DeleteCollectionRequest { name: name() })
        .await
        .unwrap_err();
    let stats = client
        .get_collection_stats(pb::GetCollectionStatsRequest { name: name() })
        .await
        .unwrap_err();
    let count = server
        .documents()
        .await
        .count(pb::CountRequest {
            collection: name(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    for status in [get, delete, stats, count] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.message().contains("nope"));
    }
}

#[tokio::test]
async fn collections_are_listed_by_name_and_deleted() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    for name in ["zeta", "alpha", "mid"] {
        client
            .create_collection(collection_request(name, 4, pb::DistanceMetric::InnerProduct))
            .await
            .unwrap();
    }
    let names = |r: pb::ListCollectionsResponse| r.collections.into_iter().map(|c| c.name).collect::<Vec<_>>();
    let listed = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(listed), ["alpha", "mid", "zeta"]);
    client
        .delete_collection(pb::DeleteCollectionRequest { name: "mid".into() })
        .await
        .unwrap();
    let listed = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(listed), ["alpha", "zeta"]);
    let status = client
        .get_collection(pb::GetCollectionRequest { name: "mid".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // The name is free again, with other settings.
    client
        .create_collection(collection_request("mid", 9, pb::DistanceMetric::L2))
        .await
        .unwrap();
}

#[tokio::test]
async fn stats_count_documents_and_sizes() {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    client
        .create_collection(collection_request("docs", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let documents = (0..10)
        .map(|i| pb::Document {
            id: format!("d{i}"),
            vector: vec![1.0, i as f32, 0.5],
            ..Default::default()
        })
        .collect();
    server
        .documents()
        .await
        .upsert(pb::UpsertRequest {
            collection: "docs".into(),
            tenant: String::new(),
            documents,
        })
        .await
        .unwrap();
    let stats = client
        .get_collection_stats(pb::GetCollectionStatsRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.document_count, 10);
    assert!(stats.table_bytes > 0 && stats.index_bytes > 0);
    assert_eq!(stats.total_bytes, stats.table_bytes + stats.index_bytes);
}

#[tokio::test]
async fn a_restarted_server_finds_its_collections() {
    let database_url = fathom_tests::fresh_database().await;
    let config = || fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), database_url.clone());
    let first = TestServer::start_with(config()).await;
    first
        .collections()
        .await
        .create_collection(collection_request("kept", 5, pb::DistanceMetric::L2))
        .await
        .unwrap();
    first.stop().await;
    let second = TestServer::start_with(config()).await;
    let got = second
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest { name: "kept".into() })
        .await
        .unwrap();
    assert_eq!(got.into_inner().collection.unwrap().dimension, 5);
}

#[tokio::test]
async fn a_collection_an_older_fathom_wrote_without_a_precision_reads_as_single_precision() {
    let database_url = fathom_tests::fresh_database().await;
    let config = || fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), database_url.clone());
    let first = TestServer::start_with(config()).await;
    let request = hnsw_request(
        "older",
        3,
        pb::DistanceMetric::Cosine,
        pb::IndexPrecision::Single as i32,
    );
    first.collections().await.create_collection(request).await.unwrap();
    first.stop().await;
    // What a fathom from before the column writes: no precision.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE fathom.collections SET hnsw_precision = NULL WHERE name = 'older'")
        .execute(&mut db)
        .await
        .unwrap();

    let second = TestServer::start_with(config()).await;
    let got = second
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest { name: "older".into() })
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    let hnsw = hnsw_of(&got);
    assert_eq!(hnsw.precision(), pb::IndexPrecision::Single);
    upsert_all(
        &second,
        "older",
        vec![pb::Document {
            id: "a".into(),
            vector: vec![1.0, 0.0, 0.0],
            ..Default::default()
        }],
    )
    .await;
    let hits = search(
        &second,
        pb::SearchRequest {
            collection: "older".into(),
            vector: vec![1.0, 0.0, 0.0],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["a"]);
}
