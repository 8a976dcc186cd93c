//! Search by example: a stored document's own vector is the query, and the
//! document is not among its neighbours.

use fathom_api::v1 as pb;
use tonic::Code;

use crate::support::filter::field;
use crate::support::*;

const DIMENSION: usize = 8;

/// "docs" with 40 documents `e00`..`e39`, metadata `{"n": i}`, embedding-like vectors.
async fn server_with_documents() -> fathom_tests::TestServer {
    let server = server_with_collection("docs", DIMENSION).await;
    let documents = (0..40)
        .map(|i| pb::Document {
            id: format!("e{i:02}"),
            vector: embedding_like_vector(DIMENSION, i),
            text: format!("example document {i}"),
            metadata: metadata(serde_json::json!({"n": i})),
            ..Default::default()
        })
        .collect();
    upsert_all(&server, "docs", documents).await;
    server
}

fn ids(hits: &[pb::SearchHit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

#[tokio::test]
async fn a_search_by_example_equals_a_search_by_its_vector_without_the_example() {
    let server = server_with_documents().await;
    let exact = Some(pb::VectorSearchParams {
        exact: true,
        ..Default::default()
    });
    let by_vector = pb::SearchRequest {
        collection: "docs".into(),
        vector: embedding_like_vector(DIMENSION, 7),
        limit: 6,
        params: exact,
        ..Default::default()
    };
    let expected: Vec<String> = ids(&search(&server, by_vector).await.unwrap());
    assert_eq!(expected[0], "e07", "a document is its own nearest neighbour");
    let by_example = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "e07".into(),
        limit: 5,
        params: exact,
        ..Default::default()
    };
    assert_eq!(ids(&search(&server, by_example).await.unwrap()), expected[1..]);

    let filtered = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "e07".into(),
        filter: Some(field(
            "n",
            pb::field_condition::Condition::Lt(pb::Bound {
                value: Some(pb::bound::Value::Number(20.0)),
            }),
        )),
        text: Some("example".into()),
        limit: 40,
        ..Default::default()
    };
    let hybrid = ids(&search(&server, filtered).await.unwrap());
    assert_eq!(
        hybrid.len(),
        19,
        "the filter's 20 documents but the example: {hybrid:?}"
    );
    assert!(!hybrid.contains(&"e07".to_owned()));
}

#[tokio::test]
async fn an_example_that_does_not_exist_is_not_found_after_the_request_is_checked_and_one_with_a_vector_is_refused() {
    let server = server_with_documents().await;
    let missing = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "nope".into(),
        ..Default::default()
    };
    let refused = search(&server, missing).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    assert!(refused.message().contains("\"nope\""), "{}", refused.message());

    let missing_and_invalid = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "nope".into(),
        limit: 5000,
        ..Default::default()
    };
    assert_violation(
        &search(&server, missing_and_invalid).await.unwrap_err(),
        Code::InvalidArgument,
        "limit",
    );
    let both = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "e01".into(),
        vector: embedding_like_vector(DIMENSION, 1),
        ..Default::default()
    };
    assert_violation(
        &search(&server, both).await.unwrap_err(),
        Code::InvalidArgument,
        "example_id",
    );
    let too_long = pb::SearchRequest {
        collection: "docs".into(),
        example_id: "x".repeat(257),
        ..Default::default()
    };
    assert_violation(
        &search(&server, too_long).await.unwrap_err(),
        Code::InvalidArgument,
        "example_id",
    );
}

#[tokio::test]
async fn pages_of_one_search_are_the_slices_of_one_longer_search() {
    let server = server_with_documents().await;
    let request = |text: Option<&str>, offset: u32, limit: u32| pb::SearchRequest {
        collection: "docs".into(),
        vector: embedding_like_vector(DIMENSION, 3),
        text: text.map(str::to_owned),
        candidates: 30,
        offset,
        limit,
        ..Default::default()
    };
    for text in [None, Some("example document")] {
        let whole = search(&server, request(text, 0, 15)).await.unwrap();
        let mut paged = Vec::new();
        for page in 0..3 {
            paged.extend(search(&server, request(text, page * 5, 5)).await.unwrap());
        }
        assert_eq!(ids(&paged), ids(&whole), "text {text:?}");
        let scores = |hits: &[pb::SearchHit]| hits.iter().map(|h| h.score).collect::<Vec<_>>();
        assert_eq!(scores(&paged), scores(&whole), "text {text:?}");
    }
    let past_the_end = pb::SearchRequest {
        candidates: 45,
        ..request(None, 40, 5)
    };
    assert!(
        search(&server, past_the_end).await.unwrap().is_empty(),
        "a page past the 40 documents is empty"
    );
    let cut_short = search(&server, request(None, 30, 5)).await.unwrap_err();
    assert_violation(&cut_short, Code::InvalidArgument, "candidates");

    let too_deep = search(&server, request(None, 996, 5)).await.unwrap_err();
    assert_violation(&too_deep, Code::InvalidArgument, "offset");
    assert!(
        too_deep.message().contains("1001") && too_deep.message().contains("1000"),
        "{}",
        too_deep.message()
    );
}
