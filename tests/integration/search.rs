//! Search: known answers for each mode and fusion, recall, filtered recall,
//! hostile input.

use std::collections::HashSet;

use fathom_api::v1 as pb;
use fathom_server::domain::{CollectionName, EfSearch};
use fathom_server::store::{SearchHits, StoreError};
use fathom_tests::TestServer;
use pb::field_condition::Condition;
use sqlx::Row;
use tonic::Code;

use crate::support::filter::{self, field};
use crate::support::{
    assert_violation, collection_request, embedding_like_vector, metadata, pseudo_random_vector, search,
    server_with_collection, single_connection_store, store_query, upsert_all,
};

/// The hand-made corpus: four documents in 3-d with short texts.
fn corpus() -> Vec<pb::Document> {
    let doc = |id: &str, vector: [f32; 3], text: &str| pb::Document {
        id: id.into(),
        vector: vector.to_vec(),
        text: text.into(),
        metadata: metadata(serde_json::json!({"name": id})),
        tenant: String::new(),
    };
    vec![
        doc("a", [1.0, 0.0, 0.0], "the quick brown fox"),
        doc("b", [0.9, 0.1, 0.0], "a lazy dog sleeps"),
        doc("c", [0.0, 1.0, 0.0], "quick quick fox jumps"),
        doc("d", [0.0, 0.0, 1.0], "nothing relevant here"),
    ]
}

async fn corpus_server(metric: pb::DistanceMetric) -> TestServer {
    with_corpus(TestServer::start().await, metric).await
}

/// The corpus on a cluster without pg_textsearch: keyword searches rank
/// by `ts_rank`.
async fn corpus_server_without_bm25() -> TestServer {
    with_corpus(TestServer::start_without_bm25().await, pb::DistanceMetric::Cosine).await
}

/// A server on a cluster without pg_textsearch with an empty collection.
async fn ts_rank_server_with_collection(name: &str) -> TestServer {
    let server = TestServer::start_without_bm25().await;
    server
        .collections()
        .await
        .create_collection(collection_request(name, 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    server
}

async fn with_corpus(server: TestServer, metric: pb::DistanceMetric) -> TestServer {
    server
        .collections()
        .await
        .create_collection(collection_request("corpus", 3, metric))
        .await
        .unwrap();
    upsert_all(&server, "corpus", corpus()).await;
    server
}

fn query(vector: Option<[f32; 3]>, text: Option<&str>) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: "corpus".into(),
        vector: vector.map(|v| v.to_vec()).unwrap_or_default(),
        text: text.map(str::to_owned),
        ..Default::default()
    }
}

fn ids(hits: &[pb::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-5, "{what}: {actual} != {expected}");
}

/// Keyword scores computed by PostgreSQL directly, as documented: how many
/// of the words a document holds, plus `ts_rank` against any of them
/// (divided by 1 + the log of the document's length, flag 1, and
/// normalised to [0, 1), flag 32). The oracle for keyword scores.
/// Every document of `collection` that holds any of `words`, with its
/// keyword score (words held + normalised `ts_rank`), best first: the
/// ranking computed over every row, without an index.
async fn text_scores(server: &TestServer, collection: &str, words: &[&str]) -> Vec<(String, f64)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query_as(&format!(
        "WITH w AS (SELECT plainto_tsquery('english', word) AS q FROM unnest($1::text[]) word), \
         any_word AS (SELECT to_tsquery('english', array_to_string($1::text[], ' | ')) AS q) \
         SELECT id, ((SELECT count(*) FROM w WHERE to_tsvector('english', body) @@ w.q) \
         + ts_rank(to_tsvector('english', body), any_word.q, 33))::float8 AS s \
         FROM fathom_data.{collection}, any_word WHERE to_tsvector('english', body) @@ any_word.q \
         ORDER BY s DESC, id"
    ))
    .bind(words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// The `grpc-encoding` of a search's response to a client that accepts gzip.
async fn search_response_encoding(server: &TestServer) -> Option<String> {
    let mut client = pb::search_client::SearchClient::new(server.channel().await)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let response = client.search(query(Some([1.0, 0.0, 0.0]), None)).await.unwrap();
    let encoding = response
        .metadata()
        .get("grpc-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let hits: Vec<_> = futures::StreamExt::collect(response.into_inner()).await;
    assert_eq!(hits.len(), 4, "every hit arrives, compressed or not");
    encoding
}

/// Responses are sent as they are unless the server is told to compress
/// them, even to a client that accepts gzip (as grpcio always says it does).
#[tokio::test]
async fn responses_are_gzip_compressed_only_when_the_server_is_configured_to() {
    let plain = corpus_server(pb::DistanceMetric::Cosine).await;
    assert_eq!(search_response_encoding(&plain).await, None);

    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    config.compress_responses = true;
    let compressing = with_corpus(TestServer::start_with(config).await, pb::DistanceMetric::Cosine).await;
    assert_eq!(search_response_encoding(&compressing).await.as_deref(), Some("gzip"));
}

/// A hybrid search's vector leg ranks its candidates by the half-precision
/// graph's distance, but the hits it returns carry the single-precision
/// score a vector search reports, to the last bit.
#[tokio::test]
async fn a_hybrid_hits_vector_leg_score_is_the_single_precision_score_of_a_vector_search() {
    // Components that half precision rounds, so its scores would differ.
    let q = [0.3, 0.7, 0.1];
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let vector_hits = search(&server, query(Some(q), None)).await.unwrap();
    let hybrid_hits = search(&server, query(Some(q), Some("quick fox"))).await.unwrap();
    let mut compared = 0;
    for hit in &hybrid_hits {
        let leg = hit.vector_leg.unwrap();
        let alone = vector_hits.iter().find(|h| h.id == hit.id).unwrap();
        assert_eq!(leg.score, alone.score, "{}", hit.id);
        assert_eq!(leg.rank, alone.vector_leg.unwrap().rank, "{}", hit.id);
        compared += 1;
    }
    assert_eq!(compared, 4, "every document is a vector candidate");
}

#[tokio::test]
async fn vector_search_ranks_by_each_metric_with_the_documented_scores() {
    let q = [1.0, 0.0, 0.0];
    let cosine_server = corpus_server(pb::DistanceMetric::Cosine).await;
    let hits = search(&cosine_server, query(Some(q), None)).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b", "c", "d"]);
    // c and d are equally far: they share rank 3.
    for ((hit, doc), rank) in hits.iter().zip(corpus()).zip([1, 2, 3, 3]) {
        let expected = cosine(&q, &doc.vector);
        assert_close(hit.score, expected, "cosine similarity");
        let leg = hit.vector_leg.unwrap();
        assert_eq!(leg.rank, rank);
        assert_close(leg.score, expected, "leg score");
        assert!(hit.text_leg.is_none());
    }

    let l2_server = corpus_server(pb::DistanceMetric::L2).await;
    let hits = search(&l2_server, query(Some(q), None)).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b", "c", "d"]);
    let expected = [0.0, (0.01f64 + 0.01).sqrt(), 2f64.sqrt(), 2f64.sqrt()];
    for (hit, expected) in hits.iter().zip(expected) {
        assert_close(hit.score, expected, "L2 distance (smaller is better)");
    }

    let ip_server = corpus_server(pb::DistanceMetric::InnerProduct).await;
    let hits = search(&ip_server, query(Some(q), None)).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b", "c", "d"]);
    for (hit, expected) in hits.iter().zip([1.0, 0.9, 0.0, 0.0]) {
        assert_close(hit.score, expected, "inner product");
    }
}

#[tokio::test]
async fn without_bm25_keyword_search_ranks_by_words_held_then_ts_rank_and_returns_only_matches() {
    let server = corpus_server_without_bm25().await;
    let hits = search(&server, query(None, Some("quick fox"))).await.unwrap();
    let oracle = text_scores(&server, "corpus", &["quick", "fox"]).await;
    assert_eq!(oracle.len(), 2, "the corpus has two documents with either word");
    assert_eq!(ids(&hits), oracle.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>());
    for (rank, (hit, (_, score))) in hits.iter().zip(&oracle).enumerate() {
        let leg = hit.text_leg.unwrap();
        assert_eq!(leg.rank, rank as u32 + 1);
        assert_close(leg.score, *score, "words held + ts_rank");
        assert_close(hit.score, *score, "keyword score");
        assert!(hit.vector_leg.is_none());
    }
    let stored = corpus().into_iter().find(|d| d.id == hits[0].id).unwrap();
    assert_eq!(hits[0].text, stored.text, "text is included by default");
}

#[tokio::test]
async fn without_bm25_a_two_word_keyword_query_finds_documents_with_either_word_those_with_both_first() {
    let server = ts_rank_server_with_collection("words").await;
    let doc = |id: &str, text: &str| pb::Document {
        id: id.into(),
        vector: vec![1.0, 0.0, 0.0],
        text: text.into(),
        ..Default::default()
    };
    upsert_all(
        &server,
        "words",
        vec![
            doc("both", "a vector database"),
            doc("vector", "vector spaces, vector math, vector norms and more vector"),
            doc("database", "the relational database of databases"),
            doc("neither", "nothing relevant here"),
        ],
    )
    .await;
    let keyword = |text: &str| pb::SearchRequest {
        collection: "words".into(),
        text: Some(text.into()),
        ..Default::default()
    };
    let hits = search(&server, keyword("vector database")).await.unwrap();
    assert_eq!(hits.len(), 3, "either word matches: {:?}", ids(&hits));
    assert_eq!(hits[0].id, "both", "the document with both words ranks first");
    assert!(!ids(&hits).contains(&"neither"));
    assert!(hits[0].score > hits[1].score);

    // No document holds both "spaces" and "relational": the keyword leg of
    // a hybrid search still finds one document for each.
    let mut hybrid = keyword("spaces relational");
    hybrid.vector = vec![1.0, 0.0, 0.0];
    let hits = search(&server, hybrid).await.unwrap();
    let with_text_leg: HashSet<&str> = hits
        .iter()
        .filter(|h| h.text_leg.is_some())
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(with_text_leg, HashSet::from(["vector", "database"]));

    let excluded = search(&server, keyword("vector database -relational")).await.unwrap();
    assert_eq!(ids(&excluded), ["both", "vector"], "-word excludes documents");
    // Each holds one of the two terms, so their order is the rank's to decide.
    let phrase = search(&server, keyword("\"vector database\" or norms")).await.unwrap();
    let phrase: HashSet<&str> = ids(&phrase).into_iter().collect();
    assert_eq!(phrase, HashSet::from(["both", "vector"]), "a quoted phrase is one term");
}

#[tokio::test]
async fn without_bm25_keyword_ranking_is_exact_whether_or_not_the_documents_with_every_word_fill_the_candidates() {
    let server = ts_rank_server_with_collection("tiers").await;
    // Six documents hold both words, six only "alpha", six only "beta";
    // each word appears a different number of times, so ts_rank orders
    // the documents within each group.
    let doc = |id: String, text: String| pb::Document {
        id,
        vector: vec![1.0, 0.0, 0.0],
        text,
        ..Default::default()
    };
    let mut documents = vec![doc("none".into(), "gamma delta".into())];
    for i in 1..=6 {
        let filler = "filler ".repeat(7 - i);
        documents.push(doc(format!("both-{i}"), format!("{}beta {filler}", "alpha ".repeat(i))));
        documents.push(doc(format!("alpha-{i}"), format!("{}{filler}", "alpha ".repeat(i))));
        documents.push(doc(format!("beta-{i}"), format!("gamma {}{filler}", "beta ".repeat(i))));
    }
    upsert_all(&server, "tiers", documents).await;

    // (query, hits asked for = candidates): 4 < the six with both words, so
    // they alone fill the leg; 15 needs nine of the others as well; no
    // document holds all three words of the third query.
    for (text, limit) in [
        ("alpha beta", 4),
        ("alpha beta", 15),
        ("alpha beta gamma", 10),
        ("beta", 3),
    ] {
        let hits = search(
            &server,
            pb::SearchRequest {
                collection: "tiers".into(),
                text: Some(text.into()),
                limit,
                candidates: limit,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let words: Vec<&str> = text.split(' ').collect();
        let oracle = text_scores(&server, "tiers", &words).await;
        let expected: Vec<&str> = oracle.iter().take(limit as usize).map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids(&hits), expected, "{text:?}, {limit} hits");
        for (hit, (_, score)) in hits.iter().zip(&oracle) {
            assert_close(hit.score, *score, "words held + ts_rank");
        }
    }
}

#[tokio::test]
async fn hybrid_rrf_fuses_both_legs_with_k_60() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let hits = search(&server, query(Some([1.0, 0.0, 0.0]), Some("quick fox")))
        .await
        .unwrap();
    // Vector ranks a1 b2 c3 d3 (c and d equally far); keyword ranks c1 a2
    // (c repeats "quick").
    assert_eq!(ids(&hits), ["a", "c", "b", "d"]);
    let rrf = |v: Option<u32>, t: Option<u32>| {
        v.map_or(0.0, |r| 1.0 / (60.0 + f64::from(r))) + t.map_or(0.0, |r| 1.0 / (60.0 + f64::from(r)))
    };
    let expected_ranks = [(Some(1), Some(2)), (Some(3), Some(1)), (Some(2), None), (Some(3), None)];
    for (hit, (v, t)) in hits.iter().zip(expected_ranks) {
        assert_eq!(hit.vector_leg.map(|l| l.rank), v, "{}", hit.id);
        assert_eq!(hit.text_leg.map(|l| l.rank), t, "{}", hit.id);
        assert_close(hit.score, rrf(v, t), "fused RRF score");
    }
}

#[tokio::test]
async fn documents_the_keyword_leg_scores_alike_share_its_rank_and_fusion_orders_them_by_the_vector_leg() {
    for server in [
        crate::support::server_with_collection("corpus", 3).await,
        ts_rank_server_with_collection("corpus").await,
    ] {
        // Three documents of one text, whose ids run against their vector order.
        let doc = |id: &str, vector: [f32; 3], text: &str| pb::Document {
            id: id.into(),
            vector: vector.to_vec(),
            text: text.into(),
            ..Default::default()
        };
        upsert_all(
            &server,
            "corpus",
            vec![
                doc("x", [0.2, 1.0, 0.0], "red kites over the hills"),
                doc("y", [0.6, 1.0, 0.0], "red kites over the hills"),
                doc("z", [1.0, 0.1, 0.0], "red kites over the hills"),
                doc("w", [0.0, 0.0, 1.0], "a red door"),
            ],
        )
        .await;
        let hits = search(&server, query(Some([1.0, 0.0, 0.0]), Some("red kite")))
            .await
            .unwrap();
        assert_eq!(ids(&hits), ["z", "y", "x", "w"]);
        let text_ranks: Vec<_> = hits.iter().map(|h| h.text_leg.map(|l| l.rank)).collect();
        assert_eq!(
            text_ranks,
            [Some(1), Some(1), Some(1), Some(4)],
            "equal scores share a rank"
        );
        let vector_ranks: Vec<_> = hits.iter().map(|h| h.vector_leg.map(|l| l.rank)).collect();
        assert_eq!(vector_ranks, [Some(1), Some(2), Some(3), Some(4)]);
    }
}

#[tokio::test]
async fn hybrid_rrf_honours_k_and_leg_weights() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let mut request = query(Some([1.0, 0.0, 0.0]), Some("quick fox"));
    request.fusion = Some(pb::Fusion {
        method: Some(pb::fusion::Method::Rrf(pb::ReciprocalRankFusion {
            k: Some(1.0),
            vector_weight: Some(0.0),
            text_weight: Some(1.0),
        })),
    });
    let hits = search(&server, request).await.unwrap();
    // Only the keyword leg counts: c (1/2), a (1/3), then b and d at 0, by id.
    assert_eq!(ids(&hits), ["c", "a", "b", "d"]);
    assert_close(hits[0].score, 0.5, "c");
    assert_close(hits[1].score, 1.0 / 3.0, "a");
}

#[tokio::test]
async fn hybrid_relative_score_fusion_min_max_normalises_each_leg() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let mut request = query(Some([1.0, 0.0, 0.0]), Some("quick fox"));
    request.fusion = Some(pb::Fusion {
        method: Some(pb::fusion::Method::RelativeScore(pb::RelativeScoreFusion {
            alpha: Some(0.7),
        })),
    });
    let hits = search(&server, request).await.unwrap();
    let b_similarity = cosine(&[1.0, 0.0, 0.0], &[0.9, 0.1, 0.0]);
    // Vector: a 1, b ~0.994, c 0, d 0 (already in [0, 1]); keyword: c 1, a 0.
    assert_eq!(ids(&hits), ["a", "b", "c", "d"]);
    for (hit, expected) in hits.iter().zip([0.7, 0.7 * b_similarity, 0.3, 0.0]) {
        assert_close(hit.score, expected, &hit.id);
    }
}

#[tokio::test]
async fn include_limit_and_score_threshold_shape_the_stream() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let mut request = query(Some([1.0, 0.0, 0.0]), None);
    request.limit = 2;
    request.include = Some(pb::Include {
        text: false,
        metadata: false,
        vector: true,
    });
    let hits = search(&server, request).await.unwrap();
    assert_eq!(ids(&hits), ["a", "b"]);
    assert_eq!(hits[0].vector, [1.0, 0.0, 0.0]);
    assert!(hits[0].text.is_empty() && hits[0].metadata.is_none());

    let mut request = query(Some([1.0, 0.0, 0.0]), None);
    request.score_threshold = Some(0.5);
    assert_eq!(ids(&search(&server, request).await.unwrap()), ["a", "b"]);

    let l2 = corpus_server(pb::DistanceMetric::L2).await;
    let mut request = query(Some([1.0, 0.0, 0.0]), None);
    request.score_threshold = Some(0.5);
    assert_eq!(
        ids(&search(&l2, request).await.unwrap()),
        ["a", "b"],
        "L2 keeps distances <= threshold"
    );
}

#[tokio::test]
async fn default_hnsw_recall_at_10_is_at_least_095_on_embedding_like_vectors() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("embeddings", 128, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let documents = (0..10_000u64).map(|i| pb::Document {
        id: format!("r{i}"),
        vector: embedding_like_vector(128, i + 1),
        ..Default::default()
    });
    upsert_all(&server, "embeddings", documents.collect()).await;
    let queries = 30;
    let mut found = 0;
    for q in 0..queries {
        let vector = embedding_like_vector(128, 1_000_000 + q);
        let request = |exact| pb::SearchRequest {
            collection: "embeddings".into(),
            vector: vector.clone(),
            limit: 10,
            include: Some(pb::Include::default()),
            params: Some(pb::VectorSearchParams { ef_search: 0, exact }),
            ..Default::default()
        };
        let approximate = search(&server, request(false)).await.unwrap();
        let truth = search(&server, request(true)).await.unwrap();
        assert_eq!(truth.len(), 10);
        let truth: HashSet<&str> = ids(&truth).into_iter().collect();
        found += ids(&approximate).iter().filter(|id| truth.contains(*id)).count();
    }
    let recall = found as f64 / (queries as f64 * 10.0);
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

#[tokio::test]
async fn a_one_percent_filter_still_returns_limit_hits_that_are_the_true_nearest() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("filtered", 64, pb::DistanceMetric::L2))
        .await
        .unwrap();
    let documents = (0..20_000u64).map(|i| pb::Document {
        id: format!("f{i}"),
        vector: pseudo_random_vector(64, i + 7),
        metadata: metadata(serde_json::json!({"bucket": i % 100, "rare": i % 4000 == 0})),
        ..Default::default()
    });
    upsert_all(&server, "filtered", documents.collect()).await;
    let one_percent = field("bucket", Condition::Eq(filter::number(42.0)));
    for q in 0..10 {
        let request = |exact| pb::SearchRequest {
            collection: "filtered".into(),
            vector: pseudo_random_vector(64, 500_000 + q),
            limit: 10,
            filter: Some(one_percent.clone()),
            include: Some(pb::Include {
                text: false,
                metadata: true,
                vector: false,
            }),
            params: Some(pb::VectorSearchParams { ef_search: 0, exact }),
            ..Default::default()
        };
        let hits = search(&server, request(false)).await.unwrap();
        assert_eq!(hits.len(), 10, "query {q}: a filtered search returns limit hits");
        let truth = search(&server, request(true)).await.unwrap();
        let truth: HashSet<&str> = ids(&truth).into_iter().collect();
        let overlap = ids(&hits).iter().filter(|id| truth.contains(*id)).count();
        assert!(
            overlap >= 9,
            "query {q}: only {overlap} of 10 are among the true nearest"
        );
        for hit in &hits {
            let bucket = &hit.metadata.as_ref().unwrap().fields["bucket"];
            assert_eq!(bucket.kind, Some(prost_types::value::Kind::NumberValue(42.0)));
        }
    }
    // Five documents match: all five come back, nearest first, from the exact fallback.
    let rare = field("rare", Condition::Eq(filter::boolean(true)));
    let request = pb::SearchRequest {
        collection: "filtered".into(),
        vector: pseudo_random_vector(64, 3),
        limit: 10,
        filter: Some(rare),
        ..Default::default()
    };
    let hits = search(&server, request).await.unwrap();
    assert_eq!(
        ids(&hits).into_iter().collect::<HashSet<_>>(),
        ["f0", "f4000", "f8000", "f12000", "f16000"].into()
    );
    assert!(
        hits.windows(2).all(|w| w[0].score <= w[1].score),
        "nearest (smallest L2) first"
    );
}

const HOSTILE: [&str; 5] = [
    "\"unclosed",
    "a & | ! b",
    "'); drop table x; --",
    "",
    "ünïcødé — ∑ \u{0}nul",
];

#[tokio::test]
async fn any_query_text_returns_results_or_nothing_never_an_error() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    for text in HOSTILE {
        let hits = search(&server, query(None, Some(text))).await;
        assert!(hits.is_ok(), "{text:?}: {hits:?}");
        let hybrid = search(&server, query(Some([1.0, 0.0, 0.0]), Some(text))).await;
        assert_eq!(
            hybrid.unwrap().len(),
            4,
            "{text:?}: the vector leg still ranks everything"
        );
    }
    let quoted = search(&server, query(None, Some("\"quick brown\" -lazy")))
        .await
        .unwrap();
    assert_eq!(ids(&quoted), ["a"], "web-search syntax works");
}

#[tokio::test]
async fn hostile_filter_keys_and_values_change_nothing() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    for text in HOSTILE.into_iter().filter(|t| !t.is_empty() && !t.contains('\0')) {
        let mut request = query(Some([1.0, 0.0, 0.0]), Some(text));
        request.filter = Some(filter::any(vec![
            field(text, Condition::Eq(filter::string(text))),
            field(
                "name",
                Condition::In(pb::ScalarList {
                    values: vec![filter::string(text)],
                }),
            ),
        ]));
        assert!(
            search(&server, request).await.unwrap().is_empty(),
            "{text:?} matches nothing"
        );
    }
    let count = server
        .documents()
        .await
        .count(pb::CountRequest {
            collection: "corpus".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(count.unwrap().into_inner().count, 4);
    let listed = server
        .collections()
        .await
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap();
    assert_eq!(listed.into_inner().collections.len(), 1);
}

#[tokio::test]
async fn bad_searches_are_invalid_argument_and_empty_collections_stream_nothing() {
    let server = corpus_server(pb::DistanceMetric::Cosine).await;
    let wrong = pb::SearchRequest {
        collection: "corpus".into(),
        vector: vec![1.0, 0.0],
        ..Default::default()
    };
    let status = search(&server, wrong).await.unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "vector");
    assert!(
        status.message().contains('3'),
        "names the dimension: {}",
        status.message()
    );
    let neither = pb::SearchRequest {
        collection: "corpus".into(),
        ..Default::default()
    };
    assert_violation(
        &search(&server, neither).await.unwrap_err(),
        Code::InvalidArgument,
        "vector",
    );
    let mut too_many = query(Some([1.0, 0.0, 0.0]), None);
    too_many.limit = 1001;
    assert_violation(
        &search(&server, too_many).await.unwrap_err(),
        Code::InvalidArgument,
        "limit",
    );
    let mut bad_filter = query(Some([1.0, 0.0, 0.0]), None);
    bad_filter.filter = Some(filter::all(vec![
        field("name", Condition::Exists(pb::Exists {})),
        pb::Filter { node: None },
    ]));
    assert_violation(
        &search(&server, bad_filter).await.unwrap_err(),
        Code::InvalidArgument,
        "filter.all.filters[1]",
    );
    let unknown = pb::SearchRequest {
        collection: "nope".into(),
        vector: vec![1.0],
        ..Default::default()
    };
    assert_eq!(search(&server, unknown).await.unwrap_err().code(), Code::NotFound);

    server
        .collections()
        .await
        .create_collection(collection_request("empty", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let mut empty = query(Some([1.0, 0.0, 0.0]), Some("fox"));
    empty.collection = "empty".into();
    assert!(search(&server, empty).await.unwrap().is_empty());
}

#[tokio::test]
async fn searches_in_multi_tenant_collections_see_only_their_tenant() {
    let server = TestServer::start().await;
    let mut request = collection_request("shared", 3, pb::DistanceMetric::Cosine);
    request.multi_tenant = true;
    server.collections().await.create_collection(request).await.unwrap();
    let mut client = server.documents().await;
    for tenant in ["acme", "globex"] {
        let documents = corpus().into_iter().map(|mut d| {
            d.id = format!("{tenant}-{}", d.id);
            d
        });
        let request = pb::UpsertRequest {
            collection: "shared".into(),
            tenant: tenant.into(),
            documents: documents.collect(),
        };
        client.upsert(request).await.unwrap();
    }
    let mut request = query(Some([1.0, 0.0, 0.0]), Some("fox"));
    request.collection = "shared".into();
    request.tenant = "acme".into();
    let hits = search(&server, request).await.unwrap();
    assert_eq!(hits.len(), 4);
    assert!(
        hits.iter().all(|h| h.id.starts_with("acme-") && h.tenant == "acme"),
        "{hits:?}"
    );
}

#[tokio::test]
async fn a_request_below_or_above_the_default_ef_search_gets_its_full_limit_and_a_wide_one_is_exact() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("hnsw", 8, pb::DistanceMetric::L2))
        .await
        .unwrap();
    let documents = (0..1000)
        .map(|i| pb::Document {
            id: format!("d{i}"),
            vector: pseudo_random_vector(8, i + 1),
            ..Default::default()
        })
        .collect();
    upsert_all(&server, "hnsw", documents).await;
    // With statistics, the planner picks the index for this query (before
    // autovacuum gathers them, it may sort the table instead).
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("ANALYZE fathom_data.hnsw").execute(&mut db).await.unwrap();
    // Iterative scanning fills the limit even when ef_search is below it;
    // an ef_search as large as the collection visits every vector.
    let request = |ef_search: u32| pb::SearchRequest {
        collection: "hnsw".into(),
        vector: pseudo_random_vector(8, 5000),
        limit: 50,
        params: Some(pb::VectorSearchParams {
            ef_search,
            exact: false,
        }),
        ..Default::default()
    };
    let mut exact = request(0);
    exact.params = Some(pb::VectorSearchParams {
        ef_search: 0,
        exact: true,
    });
    let exact = ids(&search(&server, exact).await.unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for ef_search in [10, 1000, 0, 10, 1000] {
        let hits = search(&server, request(ef_search)).await.unwrap();
        assert_eq!(hits.len(), 50, "ef_search {ef_search}");
        if ef_search == 1000 {
            assert_eq!(ids(&hits), exact, "ef_search 1000 over 1000 vectors is exact");
        }
    }
}

/// Each search shape is one statement text, so PostgreSQL caches its
/// plan; after five custom plans it switches to the generic one only if
/// that costs no more. A generic plan that cannot see the LIMIT sorts a
/// sequential scan, so this guards the LIMITs staying literals.
#[tokio::test]
async fn repeated_searches_run_the_cached_generic_plan_and_it_keeps_the_hnsw_scan() {
    let server = server_with_collection("plans", 32).await;
    let documents = (0..5000)
        .map(|i| pb::Document {
            id: format!("d{i}"),
            vector: pseudo_random_vector(32, i + 1),
            text: format!("word{} common", i % 7),
            ..Default::default()
        })
        .collect();
    upsert_all(&server, "plans", documents).await;
    let (store, collection) = single_connection_store(&server, "plans").await;
    sqlx::query("ANALYZE fathom_data.plans")
        .execute(store.pool())
        .await
        .unwrap();
    for hybrid in [false, true] {
        for seed in 0..8 {
            let query = store_query(
                pseudo_random_vector(32, 100_000 + seed),
                hybrid.then_some("word3 other"),
            );
            let hits = store.search(collection.clone(), query).await.unwrap();
            assert_eq!(read_all(hits).await, 10, "hybrid {hybrid}, query {seed}");
        }
    }

    // The pool's one connection ran every search, so it holds both statements.
    let mut conn = store.pool().acquire().await.unwrap();
    let statements: Vec<(String, i64)> = sqlx::query_as(
        "SELECT statement, generic_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH ann %' \
         ORDER BY statement LIKE '%text_leg%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(statements.len(), 2, "one statement per search shape: {statements:?}");
    for (statement, generic_plans) in statements {
        assert!(generic_plans >= 1, "never ran its generic plan: {statement}");
        // The simple query protocol: EXPLAIN of a statement with `$n` and no values.
        let plan: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN (GENERIC_PLAN) {statement}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            plan.iter().any(|line| line.contains("Index Scan using \"plans:hnsw\"")),
            "the generic plan reads the HNSW index:\n{}",
            plan.join("\n")
        );
    }
}

/// A request's own ef_search lives and dies with its transaction: the
/// pool's one connection runs the next statement at the default again.
#[tokio::test]
async fn a_requests_own_ef_search_ends_with_it_on_its_pooled_connection() {
    let server = server_with_collection("breadth", 3).await;
    let documents = (0..20).map(|i| pb::Document {
        id: format!("d{i}"),
        vector: pseudo_random_vector(3, i + 1),
        ..Default::default()
    });
    upsert_all(&server, "breadth", documents.collect()).await;
    let (store, collection) = single_connection_store(&server, "breadth").await;
    let mut query = store_query(vec![1.0, 0.0, 0.0], None);
    query.ef_search = EfSearch::MAX;
    assert_eq!(read_all(store.search(collection, query).await.unwrap()).await, 10);
    let breadth: String = sqlx::query_scalar("SELECT current_setting('hnsw.ef_search')")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(breadth, EfSearch::DEFAULT.to_string());
}

/// A search whose statement fails inside the transaction its own
/// ef_search takes (another server dropped its collection behind this
/// store's back) leaves no transaction behind: the pool's one connection
/// serves the next search, and is idle outside any transaction. Had the
/// failed transaction not been rolled back, every statement on that
/// connection would fail ("current transaction is aborted").
#[tokio::test]
async fn a_search_failing_in_its_own_transaction_hands_the_next_borrower_a_connection_outside_it() {
    let server = server_with_collection("dropped", 3).await;
    let mut collections = server.collections().await;
    collections
        .create_collection(collection_request("kept", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    upsert_all(&server, "kept", corpus()).await;
    let (store, dropped) = single_connection_store(&server, "dropped").await;
    let kept = store
        .collection(&CollectionName::parse("name", "kept").unwrap())
        .await
        .unwrap();
    collections
        .delete_collection(pb::DeleteCollectionRequest { name: "dropped".into() })
        .await
        .unwrap();

    let mut query = store_query(vec![1.0, 0.0, 0.0], None);
    query.ef_search = EfSearch::MAX;
    let failed = store.search(dropped, query.clone()).await.err();
    assert!(matches!(failed, Some(StoreError::CollectionNotFound(_))), "{failed:?}");

    let hits = store.search(kept.clone(), query).await.unwrap();
    assert_eq!(read_all(hits).await, corpus().len());
    let hits = store
        .search(kept, store_query(vec![1.0, 0.0, 0.0], None))
        .await
        .unwrap();
    assert_eq!(read_all(hits).await, corpus().len());
    let mut conn = store.pool().acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(&observer)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("idle"));
}

/// Reads every hit of an in-process search; how many there were.
async fn read_all(mut hits: SearchHits) -> usize {
    let mut count = 0;
    while let Some(hit) = hits.next().await {
        hit.unwrap();
        count += 1;
    }
    count
}
