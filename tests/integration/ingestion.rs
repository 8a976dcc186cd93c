//! Streaming ingestion: per-batch transactions, acks after COMMIT,
//! concurrency, database failure, and the unary document RPCs (resume by
//! position: `resume.rs`).

use std::collections::HashSet;

use fathom_api::v1 as pb;
use fathom_tests::{PrivateCluster, TestServer};
use sqlx::Connection;
use tonic::Code;

use crate::support::{UpsertSession, assert_violation, collection_request, count, document};

const DIM: usize = 16;

async fn server_with_collection(name: &str) -> TestServer {
    crate::support::server_with_collection(name, DIM).await
}

fn batch(first: usize, size: usize) -> Vec<pb::Document> {
    (first..first + size)
        .map(|i| document(&format!("doc-{i:06}"), DIM, i as u64))
        .collect()
}

/// Rows in the collection's table, read straight from PostgreSQL on a
/// connection of the test's own: what is committed, whatever the server says.
async fn committed_rows(database_url: &str, collection: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar(&format!("SELECT count(*) FROM fathom_data.{collection}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn fifty_thousand_documents_in_batches_of_500_are_all_stored_and_acked_after_commit() {
    let server = server_with_collection("bulk").await;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "bulk", "", "").await.unwrap();
    assert_eq!(session.opened.committed_documents, 0);
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    // Keep a few batches in flight, as a real client would.
    let batches = 100u64;
    let in_flight = 4u64;
    for sequence in 1..=in_flight {
        session.send(sequence, batch((sequence as usize - 1) * 500, 500)).await;
    }
    for sequence in 1..=batches {
        let ack = session.next_ack().await.unwrap().expect("an ack per batch");
        assert_eq!(
            (ack.sequence, ack.documents_written, ack.rejection),
            (sequence, 500, None)
        );
        // Acknowledged means committed: a separate connection sees the batch.
        let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM fathom_data.bulk WHERE id = ANY($1)")
            .bind(vec![
                format!("doc-{:06}", (sequence - 1) * 500),
                format!("doc-{:06}", sequence * 500 - 1),
            ])
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(visible, 2, "batch {sequence} acked before it was visible");
        let next = sequence + in_flight;
        if next <= batches {
            session.send(next, batch((next as usize - 1) * 500, 500)).await;
        }
    }
    drop(session.sender);
    assert!(
        session.responses.message().await.unwrap().is_none(),
        "the stream ends cleanly"
    );
    assert_eq!(count(&server, "bulk").await, 50_000);
}

#[tokio::test]
async fn a_bad_batch_is_refused_with_its_item_index_and_the_stream_goes_on() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "").await.unwrap();
    session.send(1, batch(0, 10)).await;
    let mut bad = batch(10, 10);
    bad[7].vector[3] = f32::NAN;
    session.send(2, bad).await;
    session.send(3, batch(20, 10)).await;

    let first = session.next_ack().await.unwrap().unwrap();
    assert_eq!(first.documents_written, 10);
    let refused = session.next_ack().await.unwrap().unwrap();
    assert_eq!((refused.sequence, refused.documents_written), (2, 0));
    let rejection = refused.rejection.expect("a rejection");
    assert_eq!(rejection.code, Code::InvalidArgument as i32);
    assert_eq!(rejection.violations[0].field, "documents[7].vector");
    assert!(rejection.violations[0].description.contains("finite"), "{rejection:?}");
    let third = session.next_ack().await.unwrap().unwrap();
    assert_eq!((third.sequence, third.documents_written), (3, 10));

    assert_eq!(committed_rows(&server.database_url, "docs").await, 20);
    let ids: Vec<String> = (10..20).map(|i| format!("doc-{i:06}")).collect();
    let got = client
        .get(pb::GetRequest {
            collection: "docs".into(),
            ids,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        got.into_inner().documents.is_empty(),
        "nothing of the refused batch is stored"
    );
}

#[tokio::test]
async fn concurrent_streams_into_one_and_several_collections_all_complete_exactly() {
    let server = server_with_collection("shared").await;
    server
        .collections()
        .await
        .create_collection(collection_request("other", DIM as u32, pb::DistanceMetric::L2))
        .await
        .unwrap();
    let stream = |collection: &'static str, worker: usize| {
        let server = &server;
        async move {
            let mut client = server.documents().await;
            let mut session = UpsertSession::open(&mut client, collection, "", "").await.unwrap();
            for sequence in 1..=10u64 {
                let first = worker * 100_000 + (sequence as usize - 1) * 200;
                session.send(sequence, batch(first, 200)).await;
                let ack = session.next_ack().await.unwrap().unwrap();
                assert_eq!(ack.documents_written, 200);
            }
        }
    };
    futures::join!(
        stream("shared", 1),
        stream("shared", 2),
        stream("shared", 3),
        stream("shared", 4),
        stream("other", 5),
        stream("other", 6)
    );
    assert_eq!(count(&server, "shared").await, 8_000);
    assert_eq!(count(&server, "other").await, 4_000);
}

#[tokio::test]
async fn postgres_dying_mid_stream_ends_it_unavailable_and_keeps_exactly_the_committed_batches() {
    let cluster = PrivateCluster::start();
    let config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), cluster.url());
    let server = TestServer::start_with(config).await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let size = 100;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "").await.unwrap();
    let mut acked = Vec::new();
    let mut sent = 0u64;
    let ended = loop {
        sent += 1;
        session.send(sent, batch((sent as usize - 1) * size, size)).await;
        if sent == 10 {
            let pg = cluster.pg.clone();
            tokio::task::spawn_blocking(move || pg.stop(false))
                .await
                .unwrap()
                .unwrap();
        }
        match session.next_ack().await {
            Ok(Some(ack)) => acked.push(ack.sequence),
            Ok(None) => panic!("the stream must not end cleanly"),
            Err(status) => break status,
        }
        assert!(sent < 1000, "the stream never failed");
    };
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(acked.len() >= 9, "the batches before the crash were acked: {acked:?}");

    let pg = cluster.pg.clone();
    tokio::task::spawn_blocking(move || pg.restart())
        .await
        .unwrap()
        .unwrap();
    let mut db = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    for sequence in 1..=sent {
        let ids: Vec<String> = batch((sequence as usize - 1) * size, size)
            .into_iter()
            .map(|d| d.id)
            .collect();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM fathom_data.docs WHERE id = ANY($1)")
            .bind(ids)
            .fetch_one(&mut db)
            .await
            .unwrap();
        if acked.contains(&sequence) {
            assert_eq!(stored, size as i64, "acked batch {sequence} must be stored");
        } else {
            assert!(
                stored == 0 || stored == size as i64,
                "batch {sequence} is partly stored: {stored}"
            );
        }
    }
}

#[tokio::test]
async fn a_stream_must_open_first_and_name_a_real_collection() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let status = UpsertSession::open(&mut client, "missing", "", "").await.err().unwrap();
    assert_eq!(status.code(), Code::NotFound);
    let status = UpsertSession::open(&mut client, "docs", "", "bad id with spaces")
        .await
        .err()
        .unwrap();
    assert_violation(&status, Code::InvalidArgument, "open.stream_id");
    let status = UpsertSession::open(&mut client, "docs", "acme", "")
        .await
        .err()
        .unwrap();
    assert_violation(&status, Code::FailedPrecondition, "open.tenant");
}

async fn upsert_error(
    server: &TestServer,
    collection: &str,
    tenant: &str,
    documents: Vec<pb::Document>,
) -> tonic::Status {
    let request = pb::UpsertRequest {
        collection: collection.into(),
        tenant: tenant.into(),
        documents,
    };
    server.documents().await.upsert(request).await.unwrap_err()
}

#[tokio::test]
async fn invalid_documents_get_the_right_status_and_write_nothing() {
    let server = server_with_collection("docs").await;
    let mut wrong_dimension = batch(0, 3);
    wrong_dimension[1].vector.pop();
    assert_violation(
        &upsert_error(&server, "docs", "", wrong_dimension).await,
        Code::InvalidArgument,
        "documents[1].vector",
    );
    let mut infinite = batch(0, 3);
    infinite[2].vector[0] = f32::INFINITY;
    assert_violation(
        &upsert_error(&server, "docs", "", infinite).await,
        Code::InvalidArgument,
        "documents[2].vector",
    );
    let mut empty_id = batch(0, 2);
    empty_id[0].id.clear();
    assert_violation(
        &upsert_error(&server, "docs", "", empty_id).await,
        Code::InvalidArgument,
        "documents[0].id",
    );
    let mut long_id = batch(0, 2);
    long_id[1].id = "x".repeat(257);
    let status = upsert_error(&server, "docs", "", long_id).await;
    assert_violation(&status, Code::InvalidArgument, "documents[1].id");
    assert!(
        status.message().contains("256"),
        "the message names the limit: {}",
        status.message()
    );
    let mut duplicate = batch(0, 3);
    duplicate[2].id = duplicate[0].id.clone();
    assert_violation(
        &upsert_error(&server, "docs", "", duplicate).await,
        Code::InvalidArgument,
        "documents[2].id",
    );
    let mut nul_metadata = batch(0, 1);
    nul_metadata[0].metadata = Some(prost_types::Struct {
        fields: [(
            "k".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("a\0".into())),
            },
        )]
        .into(),
    });
    assert_violation(
        &upsert_error(&server, "docs", "", nul_metadata).await,
        Code::InvalidArgument,
        "documents[0].metadata.k",
    );
    let too_many = batch(0, 1001);
    let status = upsert_error(&server, "docs", "", too_many).await;
    assert_violation(&status, Code::ResourceExhausted, "documents");
    assert!(status.message().contains("1000"), "{}", status.message());
    assert_eq!(
        upsert_error(&server, "missing", "", batch(0, 1)).await.code(),
        Code::NotFound
    );
    assert_violation(
        &upsert_error(&server, "docs", "acme", batch(0, 1)).await,
        Code::FailedPrecondition,
        "tenant",
    );
    assert_eq!(
        committed_rows(&server.database_url, "docs").await,
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn multi_tenant_collections_need_a_tenant_and_keep_tenants_apart() {
    let server = TestServer::start().await;
    let mut request = collection_request("tenants", DIM as u32, pb::DistanceMetric::Cosine);
    request.multi_tenant = true;
    server.collections().await.create_collection(request).await.unwrap();
    assert_violation(
        &upsert_error(&server, "tenants", "", batch(0, 1)).await,
        Code::InvalidArgument,
        "tenant",
    );
    let mut docs = server.documents().await;
    for (tenant, n) in [("acme", 3), ("globex", 5)] {
        let request = pb::UpsertRequest {
            collection: "tenants".into(),
            tenant: tenant.into(),
            documents: batch(0, n),
        };
        docs.upsert(request).await.unwrap();
    }
    for (tenant, n) in [("acme", 3), ("globex", 5), ("initech", 0)] {
        let request = pb::CountRequest {
            collection: "tenants".into(),
            tenant: tenant.into(),
            filter: None,
            consistency: None,
        };
        assert_eq!(docs.count(request).await.unwrap().into_inner().count, n, "{tenant}");
    }
    let mut other = batch(0, 1);
    other[0].tenant = "globex".into();
    assert_violation(
        &upsert_error(&server, "tenants", "acme", other).await,
        Code::InvalidArgument,
        "documents[0].tenant",
    );
}

#[tokio::test]
async fn get_returns_requested_fields_in_request_order_and_skips_missing_ids() {
    let server = server_with_collection("docs").await;
    let mut docs = server.documents().await;
    let mut written = batch(0, 3);
    written[1].metadata = Some(prost_types::Struct {
        fields: [(
            "lang".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("en".into())),
            },
        )]
        .into(),
    });
    docs.upsert(pb::UpsertRequest {
        collection: "docs".into(),
        tenant: String::new(),
        documents: written.clone(),
    })
    .await
    .unwrap();
    let ids = vec!["doc-000002".into(), "nope".into(), "doc-000001".into()];
    let got = docs
        .get(pb::GetRequest {
            collection: "docs".into(),
            ids,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got_ids: Vec<&str> = got.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(got_ids, ["doc-000002", "doc-000001"]);
    assert_eq!(
        got.documents[1].vector, written[1].vector,
        "vectors come back bit for bit"
    );
    assert_eq!(got.documents[1].metadata, written[1].metadata);
    let only_text = pb::Include {
        text: true,
        metadata: false,
        vector: false,
    };
    let request = pb::GetRequest {
        collection: "docs".into(),
        ids: vec!["doc-000000".into()],
        include: Some(only_text),
        ..Default::default()
    };
    let got = docs.get(request).await.unwrap().into_inner();
    assert!(got.documents[0].vector.is_empty() && got.documents[0].metadata.is_none());
    assert_eq!(got.documents[0].text, "document doc-000000");
}

#[tokio::test]
async fn delete_by_ids_and_by_filter_says_how_many_went() {
    let server = server_with_collection("docs").await;
    let mut docs = server.documents().await;
    let mut written = batch(0, 10);
    for (i, d) in written.iter_mut().enumerate() {
        d.metadata = Some(prost_types::Struct {
            fields: [(
                "even".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::BoolValue(i % 2 == 0)),
                },
            )]
            .into(),
        });
    }
    docs.upsert(pb::UpsertRequest {
        collection: "docs".into(),
        tenant: String::new(),
        documents: written,
    })
    .await
    .unwrap();
    let by_ids = pb::DeleteRequest {
        collection: "docs".into(),
        tenant: String::new(),
        selector: Some(pb::delete_request::Selector::Ids(pb::IdCondition {
            ids: vec!["doc-000001".into(), "nope".into()],
        })),
    };
    assert_eq!(docs.delete(by_ids).await.unwrap().into_inner().deleted, 1);
    let even = pb::Filter {
        node: Some(pb::filter::Node::Field(pb::FieldCondition {
            key: "even".into(),
            condition: Some(pb::field_condition::Condition::Eq(pb::Scalar {
                kind: Some(pb::scalar::Kind::BoolValue(true)),
            })),
        })),
    };
    let by_filter = pb::DeleteRequest {
        collection: "docs".into(),
        tenant: String::new(),
        selector: Some(pb::delete_request::Selector::Filter(even)),
    };
    assert_eq!(docs.delete(by_filter).await.unwrap().into_inner().deleted, 5);
    assert_eq!(count(&server, "docs").await, 4);
    let nothing = pb::DeleteRequest {
        collection: "docs".into(),
        tenant: String::new(),
        selector: None,
    };
    assert_violation(
        &docs.delete(nothing).await.unwrap_err(),
        Code::InvalidArgument,
        "selector",
    );
}

#[tokio::test]
async fn scroll_returns_every_document_once_in_id_order_and_resumes_from_a_cursor() {
    let server = server_with_collection("docs").await;
    let mut docs = server.documents().await;
    for first in (0..1000).step_by(250) {
        docs.upsert(pb::UpsertRequest {
            collection: "docs".into(),
            tenant: String::new(),
            documents: batch(first, 250),
        })
        .await
        .unwrap();
    }
    let scroll = |after_id: &str, limit: u64| pb::ScrollRequest {
        collection: "docs".into(),
        after_id: after_id.into(),
        limit,
        ..Default::default()
    };
    let ids_of = |mut stream: tonic::Streaming<pb::ScrollResponse>| async move {
        let mut ids = Vec::new();
        while let Some(item) = stream.message().await.unwrap() {
            ids.push(item.document.unwrap().id);
        }
        ids
    };
    let all = ids_of(docs.scroll(scroll("", 0)).await.unwrap().into_inner()).await;
    let expected: Vec<String> = (0..1000).map(|i| format!("doc-{i:06}")).collect();
    assert_eq!(all, expected);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 1000);

    let head = ids_of(docs.scroll(scroll("", 300)).await.unwrap().into_inner()).await;
    assert_eq!(head.len(), 300);
    let tail = ids_of(docs.scroll(scroll(head.last().unwrap(), 0)).await.unwrap().into_inner()).await;
    assert_eq!([head, tail].concat(), expected);
}

#[tokio::test]
async fn size_limits_are_resource_exhausted_naming_the_limit() {
    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    config.limits.max_message_bytes = 4096;
    config.limits.max_batch_bytes = 2048;
    let server = TestServer::start_with(config).await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let status = upsert_error(&server, "docs", "", batch(0, 30)).await;
    assert_violation(&status, Code::ResourceExhausted, "documents");
    assert!(status.message().contains("2048"), "{}", status.message());
    let status = upsert_error(&server, "docs", "", batch(0, 100)).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4096"), "{}", status.message());

    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "").await.unwrap();
    session.send(1, batch(0, 100)).await;
    let status = session.next_ack().await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4096"), "{}", status.message());
    assert_eq!(committed_rows(&server.database_url, "docs").await, 0);
}
