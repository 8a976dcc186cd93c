//! Input that once slipped through as INTERNAL errors or wrong results:
//! each now gets INVALID_ARGUMENT naming the field and the limit, and
//! writes nothing.

use fathom_api::v1 as pb;
use fathom_tests::TestServer;
use pb::field_condition::Condition;
use sqlx::Connection;
use tonic::Code;

use crate::support::filter::field;
use crate::support::{assert_violation, collection_request, hnsw_request, search, upsert_all, violated_fields};

async fn server_with(collections: &[(&str, pb::DistanceMetric)]) -> TestServer {
    let server = TestServer::start().await;
    for (name, metric) in collections {
        server
            .collections()
            .await
            .create_collection(collection_request(name, 3, *metric))
            .await
            .unwrap();
    }
    server
}

fn doc(id: &str, vector: [f32; 3]) -> pb::Document {
    pb::Document {
        id: id.into(),
        vector: vector.to_vec(),
        ..Default::default()
    }
}

async fn upsert(server: &TestServer, collection: &str, documents: Vec<pb::Document>) -> Result<u32, tonic::Status> {
    let request = pb::UpsertRequest {
        collection: collection.into(),
        tenant: String::new(),
        documents,
    };
    Ok(server
        .documents()
        .await
        .upsert(request)
        .await?
        .into_inner()
        .documents_written)
}

async fn rows(server: &TestServer, collection: &str) -> i64 {
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    sqlx::query_scalar(&format!("SELECT count(*) FROM fathom_data.{collection}"))
        .fetch_one(&mut db)
        .await
        .unwrap()
}

fn vector_search(collection: &str, vector: [f32; 3]) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        vector: vector.to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn vectors_whose_scores_would_not_be_numbers_are_refused_and_write_nothing() {
    use pb::DistanceMetric::{Cosine, L2};
    let server = server_with(&[("cos", Cosine)]).await;
    // float32's own limits, where no half-precision graph bounds the
    // components first (collections.rs tests that bound).
    let l2 = hnsw_request("l2", 3, L2, pb::IndexPrecision::Single as i32);
    server.collections().await.create_collection(l2).await.unwrap();

    // An all-zero vector has no cosine similarity (0/0 = NaN sorts first).
    let status = upsert(&server, "cos", vec![doc("ok", [1.0, 0.0, 0.0]), doc("zero", [0.0; 3])])
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "documents[1].vector");
    assert!(status.message().contains("all zeros"), "{status:?}");
    assert_eq!(rows(&server, "cos").await, 0, "nothing of the batch is written");
    let status = search(&server, vector_search("cos", [0.0; 3])).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "vector");

    // A norm whose square overflows float32 makes distances infinite.
    let huge = [3e38, 3e38, 3e38];
    for collection in ["cos", "l2"] {
        let status = upsert(&server, collection, vec![doc("huge", huge)]).await.unwrap_err();
        assert_violation(&status, Code::InvalidArgument, "documents[0].vector");
        assert!(status.message().contains("limit is"), "{status:?}");
        let status = search(&server, vector_search(collection, huge)).await.unwrap_err();
        assert_violation(&status, Code::InvalidArgument, "vector");
    }
    assert_eq!(rows(&server, "l2").await, 0);

    // Within the limits, the farthest vectors still score a finite number.
    let far = 9.0e18_f32;
    assert_eq!(
        upsert(&server, "l2", vec![doc("zero", [0.0; 3]), doc("far", [far, 0.0, 0.0])])
            .await
            .unwrap(),
        2
    );
    let hits = search(&server, vector_search("l2", [-far, 0.0, 0.0])).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.score.is_finite()), "{hits:?}");
    assert_eq!(hits[0].id, "zero", "the nearer one first");
}

#[tokio::test]
async fn collection_names_that_look_like_another_collections_indexes_are_free() {
    use pb::DistanceMetric::Cosine;
    let names = ["docs", "docs_text", "docs_metadata", "docs_hnsw", "docs_pkey"];
    let server = server_with(&names.map(|name| (name, Cosine))).await;
    for name in names {
        upsert_all(&server, name, vec![doc("a", [1.0, 0.0, 0.0])]).await;
        assert_eq!(rows(&server, name).await, 1, "{name}");
    }
}

#[tokio::test]
async fn the_index_rename_migration_moves_old_names_out_of_the_way_of_collections() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    // Give the collection the names an older fathom created.
    for suffix in ["text", "metadata", "hnsw", "pkey"] {
        sqlx::query(&format!(
            "ALTER INDEX fathom_data.\"docs:{suffix}\" RENAME TO \"docs_{suffix}\""
        ))
        .execute(&mut db)
        .await
        .unwrap();
    }
    sqlx::raw_sql(include_str!("../../migrations/20261122000004_index_names.sql"))
        .execute(&mut db)
        .await
        .unwrap();
    let mut renamed: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'fathom_data' AND tablename = 'docs' ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    renamed.sort();
    // The BM25 index is younger than the rename, so it never had an old name.
    assert_eq!(
        renamed,
        ["docs:bm25", "docs:hnsw", "docs:metadata", "docs:pkey", "docs:text"]
    );
    server
        .collections()
        .await
        .create_collection(collection_request("docs_text", 3, pb::DistanceMetric::Cosine))
        .await
        .expect("the name is free");
}

#[tokio::test]
async fn scroll_cursors_timestamps_and_fusion_weights_out_of_range_are_invalid_argument() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    upsert_all(&server, "docs", vec![doc("a", [1.0, 0.0, 0.0])]).await;

    let scroll = pb::ScrollRequest {
        collection: "docs".into(),
        after_id: "a\0b".into(),
        ..Default::default()
    };
    let status = server.documents().await.scroll(scroll).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "after_id");

    let leap = pb::Bound {
        value: Some(pb::bound::Value::Timestamp(prost_types::Timestamp {
            seconds: 0,
            nanos: 1_000_000_000,
        })),
    };
    let count = pb::CountRequest {
        collection: "docs".into(),
        filter: Some(field("published", Condition::Gt(leap))),
        ..Default::default()
    };
    let status = server.documents().await.count(count).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("999999999"), "{status:?}");

    let mut hybrid = vector_search("docs", [1.0, 0.0, 0.0]);
    hybrid.text = Some("a".into());
    hybrid.fusion = Some(pb::Fusion {
        method: Some(pb::fusion::Method::Rrf(pb::ReciprocalRankFusion {
            k: Some(0.5),
            vector_weight: Some(1.7e308),
            text_weight: Some(1.7e308),
        })),
    });
    let status = search(&server, hybrid).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "fusion.rrf.vector_weight");
    assert!(status.message().contains("1000000"), "{status:?}");
}

/// A CountRequest whose `collection` (field 1, a string) is sent as raw
/// bytes, so a test can send what no generated client would: invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawCountRequest {
    #[prost(bytes = "vec", tag = "1")]
    collection: Vec<u8>,
}

/// An UpsertStreamRequest whose `open.collection` is raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawUpsertStreamRequest {
    #[prost(message, optional, tag = "1")]
    open: Option<RawCountRequest>,
}

fn nested_filter(depth: usize) -> pb::Filter {
    let mut filter = field("a", Condition::Exists(pb::Exists {}));
    for _ in 0..depth {
        filter = crate::support::filter::not(filter);
    }
    filter
}

#[tokio::test]
async fn requests_that_cannot_be_decoded_are_invalid_argument_not_internal() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    let count = pb::CountRequest {
        collection: "docs".into(),
        filter: Some(nested_filter(150)),
        ..Default::default()
    };
    let status = server.documents().await.count(count).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "filter");
    assert!(status.message().contains("recursion limit"), "{status:?}");
    assert!(status.message().len() < 200, "not the decoder's path: {status:?}");

    let mut deep_search = vector_search("docs", [1.0, 0.0, 0.0]);
    deep_search.filter = Some(nested_filter(150));
    let status = search(&server, deep_search).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "filter");

    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let not_utf8 = RawCountRequest {
        collection: vec![b'd', 0xff, 0xfe],
    };
    let status = grpc
        .unary::<_, RawCountRequest, _>(
            tonic::Request::new(not_utf8.clone()),
            "/fathom.v1.Documents/Count".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("UTF-8"), "{status:?}");

    grpc.ready().await.unwrap();
    let open = RawUpsertStreamRequest { open: Some(not_utf8) };
    let outcome = grpc
        .streaming::<_, RawUpsertStreamRequest, RawCountRequest, _>(
            tonic::Request::new(futures::stream::iter([open])),
            "/fathom.v1.Documents/UpsertStream".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let status = match outcome {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn the_largest_documented_filter_runs_and_matches_exactly() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    let documents = (0..300)
        .map(|i| pb::Document {
            metadata: crate::support::metadata(serde_json::json!({"n": i})),
            ..doc(&format!("d{i}"), [1.0, i as f32, 0.0])
        })
        .collect();
    upsert_all(&server, "docs", documents).await;
    // 64 `in` lists of 1,024 numbers each (the documented limits): list k
    // holds k*1024 .. k*1024+1023, and with them 0..300 only list 0 matches.
    let lists = (0..64)
        .map(|k| {
            let values = (0..1024)
                .map(|j| crate::support::filter::number(f64::from(k * 1024 + j)))
                .collect();
            field("n", Condition::In(pb::ScalarList { values }))
        })
        .collect();
    let big = crate::support::filter::any(lists);
    let count = pb::CountRequest {
        collection: "docs".into(),
        filter: Some(big.clone()),
        ..Default::default()
    };
    assert_eq!(
        server.documents().await.count(count).await.unwrap().into_inner().count,
        300
    );
    let mut hybrid = vector_search("docs", [1.0, 0.0, 0.0]);
    hybrid.text = Some("anything".into());
    hybrid.filter = Some(big);
    hybrid.limit = 5;
    assert_eq!(search(&server, hybrid).await.unwrap().len(), 5);

    let few = field(
        "n",
        Condition::In(pb::ScalarList {
            values: vec![
                crate::support::filter::number(3.0),
                crate::support::filter::number(299.0),
            ],
        }),
    );
    let count = pb::CountRequest {
        collection: "docs".into(),
        filter: Some(few),
        ..Default::default()
    };
    assert_eq!(
        server.documents().await.count(count).await.unwrap().into_inner().count,
        2
    );
}

/// A collection of dimension 3 with no vector index.
fn unindexed(name: &str, metric: pb::DistanceMetric) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        index: Some(pb::IndexSettings {
            kind: Some(pb::index_settings::Kind::None(pb::NoIndex {})),
        }),
        ..collection_request(name, 3, metric)
    }
}

/// Sends one batch on a new stream without id; its ack.
async fn stream_batch(server: &TestServer, collection: &str, documents: Vec<pb::Document>) -> pb::BatchAck {
    let mut client = server.documents().await;
    let mut session = crate::support::UpsertSession::open(&mut client, collection, "", "")
        .await
        .unwrap();
    session.send(1, documents).await;
    session.next_ack().await.unwrap().expect("an ack")
}

/// The fields a batch rejection names.
fn rejected_fields(ack: &pb::BatchAck) -> Vec<String> {
    let rejection = ack.rejection.as_ref().expect("the batch is refused");
    rejection.violations.iter().map(|v| v.field.clone()).collect()
}

#[tokio::test]
async fn cosine_vectors_whose_squared_norm_float32_cannot_hold_are_refused_at_the_boundary() {
    use pb::DistanceMetric::{Cosine, L2};
    let server = TestServer::start().await;
    let single = hnsw_request("single", 3, Cosine, pb::IndexPrecision::Single as i32);
    for request in [unindexed("flat", Cosine), single, unindexed("l2", L2)] {
        server.collections().await.create_collection(request).await.unwrap();
    }
    // 2⁻⁶³ squares to 2⁻¹²⁶, float32's smallest normal number; the float
    // just below it squares to a subnormal, which has lost digits.
    let smallest = 2f32.powi(-63);
    let below = f32::from_bits(smallest.to_bits() - 1);
    for collection in ["flat", "single"] {
        // The float32 squares of 1e-30 are 0, although its double-precision norm is not.
        for (refused, why) in [
            ([below, 0.0, 0.0], "below float32's smallest normal"),
            ([1e-30; 3], "rounds to zero"),
        ] {
            let status = upsert(
                &server,
                collection,
                vec![doc("ok", [1.0, 0.0, 0.0]), doc("tiny", refused)],
            )
            .await
            .unwrap_err();
            assert_violation(&status, Code::InvalidArgument, "documents[1].vector");
            assert!(
                status.message().contains(why) && status.message().contains("single precision"),
                "{status:?}"
            );
            let ack = stream_batch(
                &server,
                collection,
                vec![doc("ok", [1.0, 0.0, 0.0]), doc("tiny", refused)],
            )
            .await;
            assert_eq!(rejected_fields(&ack), ["documents[1].vector"]);
            assert_eq!(ack.rejection.unwrap().code, Code::InvalidArgument as i32);
            let status = search(&server, vector_search(collection, refused)).await.unwrap_err();
            assert_violation(&status, Code::InvalidArgument, "vector");
            assert!(status.message().contains(why), "{status:?}");
        }
        assert_eq!(
            rows(&server, collection).await,
            0,
            "nothing of a refused batch is written"
        );

        // The smallest accepted vectors score what they should.
        let documents = vec![
            doc("along", [smallest, 0.0, 0.0]),
            doc("diagonal", [smallest; 3]),
            doc("across", [0.0, 1.0, 0.0]),
        ];
        assert_eq!(upsert(&server, collection, documents).await.unwrap(), 3);
        for query in [[1.0, 0.0, 0.0], [smallest, 0.0, 0.0]] {
            let hits = search(&server, vector_search(collection, query)).await.unwrap();
            let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
            assert_eq!(ids, ["along", "diagonal", "across"], "{hits:?}");
            assert!((hits[0].score - 1.0).abs() < 1e-6, "{hits:?}");
            assert!((hits[1].score - 1.0 / 3f64.sqrt()).abs() < 1e-6, "{hits:?}");
            assert!(hits[2].score.abs() < 1e-6, "{hits:?}");
        }
    }
    // L2 divides by no norm: a tiny vector is a point near the origin.
    assert_eq!(upsert(&server, "l2", vec![doc("tiny", [1e-30; 3])]).await.unwrap(), 1);

    // At the other end, a component whose float32 square overflows to
    // infinity (3e19² > 3.4e38) makes every distance infinite and every
    // cosine NaN; the norm limit refuses it in every metric.
    for collection in ["flat", "l2"] {
        let status = upsert(&server, collection, vec![doc("huge", [3e19, 0.0, 0.0])])
            .await
            .unwrap_err();
        assert_violation(&status, Code::InvalidArgument, "documents[0].vector");
        assert!(status.message().contains("limit is 9.223e18"), "{status:?}");
        let status = search(&server, vector_search(collection, [3e19, 0.0, 0.0]))
            .await
            .unwrap_err();
        assert_violation(&status, Code::InvalidArgument, "vector");
    }
    assert_eq!(rows(&server, "flat").await, 3);
    assert_eq!(rows(&server, "l2").await, 1);
}

#[tokio::test]
async fn a_half_precision_graph_refuses_cosine_vectors_that_round_to_zero_in_half() {
    let server = TestServer::start().await;
    let half = hnsw_request("half", 3, pb::DistanceMetric::Cosine, pb::IndexPrecision::Half as i32);
    server.collections().await.create_collection(half).await.unwrap();
    // 2⁻²⁵ rounds to zero in half precision; the next float up does not.
    let rounds_to_zero = 2f32.powi(-25);
    let smallest = f32::from_bits(rounds_to_zero.to_bits() + 1);
    let status = upsert(&server, "half", vec![doc("tiny", [rounds_to_zero; 3])])
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "documents[0].vector");
    assert!(status.message().contains("half precision rounds to zero"), "{status:?}");
    let status = search(&server, vector_search("half", [rounds_to_zero; 3]))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "vector");
    assert_eq!(rows(&server, "half").await, 0);
    assert_eq!(
        upsert(&server, "half", vec![doc("small", [smallest, 0.0, 0.0])])
            .await
            .unwrap(),
        1
    );
}

/// A text under the 1 MiB text limit whose distinct words make a tsvector
/// past PostgreSQL's 1 MiB (`w0 w1 … w1d0ef`: 119,536 words).
fn wordy_text() -> String {
    let mut text = String::new();
    let mut word = 0u64;
    while text.len() < 1_000_000 {
        text.push_str(&format!("w{word:x} "));
        word += 1;
    }
    text
}

#[tokio::test]
async fn a_text_postgres_cannot_index_is_named_by_index_on_every_upsert_path() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    let wordy = pb::Document {
        text: wordy_text(),
        ..doc("wordy", [1.0, 0.0, 0.0])
    };
    let others = |n: usize| {
        (0..n)
            .map(|i| doc(&format!("d{i}"), [1.0, i as f32, 0.0]))
            .collect::<Vec<_>>()
    };

    // Upsert: the document is found wherever it is in the batch.
    for position in [0, 1, 6, 9] {
        let mut documents = others(9);
        documents.insert(position, wordy.clone());
        let status = upsert(&server, "docs", documents).await.unwrap_err();
        assert_violation(&status, Code::InvalidArgument, &format!("documents[{position}].text"));
        assert_eq!(violated_fields(&status).len(), 1, "{status:?}");
        assert!(
            status.message().contains("string is too long for tsvector") && status.message().contains("1048575"),
            "{status:?}"
        );
        assert_eq!(rows(&server, "docs").await, 0, "nothing of the batch is written");
    }

    // UpsertStream without id: the batch is refused the same way, and the stream goes on.
    let mut client = server.documents().await;
    let mut session = crate::support::UpsertSession::open(&mut client, "docs", "", "")
        .await
        .unwrap();
    session.send(1, vec![doc("a", [1.0, 0.0, 0.0]), wordy.clone()]).await;
    session.send(2, vec![doc("b", [0.0, 1.0, 0.0])]).await;
    let refused = session.next_ack().await.unwrap().unwrap();
    assert_eq!(rejected_fields(&refused), ["documents[1].text"]);
    assert_eq!(refused.rejection.unwrap().code, Code::InvalidArgument as i32);
    assert_eq!(session.next_ack().await.unwrap().unwrap().documents_written, 1);
    assert_eq!(rows(&server, "docs").await, 1);

    // A resumable stream resending a committed prefix: the index is the
    // document's place in the batch as sent.
    let mut session = crate::support::UpsertSession::open(&mut client, "docs", "", "wordy-stream")
        .await
        .unwrap();
    session.send_at(1, 0, others(2)).await;
    assert_eq!(session.next_ack().await.unwrap().unwrap().documents_written, 2);
    let mut documents = others(3);
    documents.push(wordy.clone());
    session.send_at(2, 0, documents).await;
    let refused = session.next_ack().await.unwrap().unwrap();
    assert_eq!(rejected_fields(&refused), ["documents[3].text"]);
    assert_eq!(refused.committed_documents, 2, "{refused:?}");
    assert_eq!(
        rows(&server, "docs").await,
        3,
        "b, d0 and d1; not d2 of the refused batch"
    );
}

/// Metadata nested `depth` levels deep: `{"a": {"a": … {"leaf": 1}}}`.
fn nested_metadata(depth: usize) -> Option<prost_types::Struct> {
    let mut json = serde_json::json!({"leaf": 1});
    for _ in 1..depth {
        json = serde_json::json!({ "a": json });
    }
    crate::support::metadata(json)
}

#[tokio::test]
async fn metadata_nested_past_the_limit_is_refused_naming_the_document_however_deep() {
    let server = server_with(&[("docs", pb::DistanceMetric::Cosine)]).await;
    let deep = |id: &str, depth: usize| pb::Document {
        metadata: nested_metadata(depth),
        ..doc(id, [1.0, 0.0, 0.0])
    };
    // 21 is checked by the server; 34 and 100 pass prost's recursion limit
    // (three nested messages a level), so the codec finds the document.
    for depth in [21, 33, 34, 100] {
        let status = upsert(&server, "docs", vec![doc("ok", [1.0, 0.0, 0.0]), deep("deep", depth)])
            .await
            .unwrap_err();
        assert_violation(&status, Code::InvalidArgument, "documents[1].metadata");
        assert_eq!(
            status.message(),
            "documents[1].metadata: metadata is nested more than 20 levels deep (objects and lists); the limit is 20",
            "depth {depth}"
        );
    }
    assert_eq!(rows(&server, "docs").await, 0, "nothing of a refused batch is written");

    // A stream refuses a batch it can decode, and goes on...
    let ack = stream_batch(&server, "docs", vec![deep("deep", 21)]).await;
    assert_eq!(rejected_fields(&ack), ["documents[0].metadata"]);
    // ... and ends on one it cannot, naming the document all the same.
    let mut client = server.documents().await;
    let mut session = crate::support::UpsertSession::open(&mut client, "docs", "", "")
        .await
        .unwrap();
    session
        .send(1, vec![doc("ok", [1.0, 0.0, 0.0]), deep("deep", 100)])
        .await;
    let status = session.next_ack().await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "batch.documents[1].metadata");
    assert!(status.message().contains("the limit is 20"), "{status:?}");
    assert_eq!(rows(&server, "docs").await, 0);

    // The limit itself is accepted, by Upsert and by a stream.
    assert_eq!(upsert(&server, "docs", vec![deep("at-limit", 20)]).await.unwrap(), 1);
    let ack = stream_batch(&server, "docs", vec![deep("streamed", 20)]).await;
    assert_eq!(ack.documents_written, 1, "{ack:?}");
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    let depth_stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM fathom_data.docs WHERE metadata #> '{a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,leaf}' = '1'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(depth_stored, 2, "both stored whole");
}
