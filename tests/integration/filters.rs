//! Filter semantics, checked through Count (the same compiled SQL serves
//! Search, Delete and Scroll).

use fathom_api::v1 as pb;
use fathom_tests::TestServer;
use pb::field_condition::Condition;
use tonic::Code;

use crate::support::filter::{self, all, any, bound, field, ids, instant, not, number, string};
use crate::support::{assert_violation, collection_request, metadata, upsert_all};

async fn library() -> TestServer {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("books", 2, pb::DistanceMetric::L2))
        .await
        .unwrap();
    let book = |id: &str, meta: serde_json::Value| pb::Document {
        id: id.into(),
        vector: vec![1.0, 2.0],
        metadata: metadata(meta),
        ..Default::default()
    };
    upsert_all(
        &server,
        "books",
        vec![
            book("dune", serde_json::json!({"year": 1965, "lang": "en", "tags": ["scifi", "classic"], "published": "1965-08-01T00:00:00Z", "author": {"name": "Herbert"}})),
            book("solaris", serde_json::json!({"year": 1961, "lang": "pl", "tags": ["scifi"], "published": "1961-06-01T00:00:00Z", "author": {"name": "Lem"}})),
            book("emma", serde_json::json!({"year": 1815, "lang": "en", "tags": ["classic"], "in_print": true})),
            book("blank", serde_json::json!({"year": "unknown", "lang": null})),
        ],
    )
    .await;
    server
}

async fn count(server: &TestServer, filter: pb::Filter) -> Result<u64, tonic::Status> {
    let request = pb::CountRequest {
        collection: "books".into(),
        tenant: String::new(),
        filter: Some(filter),
        consistency: None,
    };
    Ok(server.documents().await.count(request).await?.into_inner().count)
}

#[tokio::test]
async fn scalar_conditions_match_as_documented() {
    let server = library().await;
    let cases: Vec<(&str, pb::Filter, u64)> = vec![
        ("eq string", field("lang", Condition::Eq(string("en"))), 2),
        (
            "eq number, 1965 == 1965.0",
            field("year", Condition::Eq(number(1965.0))),
            1,
        ),
        ("eq bool", field("in_print", Condition::Eq(filter::boolean(true))), 1),
        ("ne needs the field", field("lang", Condition::Ne(string("en"))), 2),
        (
            "in",
            field(
                "lang",
                Condition::In(pb::ScalarList {
                    values: vec![string("pl"), string("de")],
                }),
            ),
            1,
        ),
        (
            "not_in needs the field",
            field(
                "lang",
                Condition::NotIn(pb::ScalarList {
                    values: vec![string("en")],
                }),
            ),
            2,
        ),
        (
            "gt number skips non-numbers",
            field("year", Condition::Gt(bound(1961.0))),
            1,
        ),
        ("gte", field("year", Condition::Gte(bound(1961.0))), 2),
        ("lt", field("year", Condition::Lt(bound(1900.0))), 1),
        ("lte", field("year", Condition::Lte(bound(1965.0))), 3),
        (
            "timestamp gt",
            field("published", Condition::Gt(instant("1963-01-01T00:00:00Z"))),
            1,
        ),
        (
            "timestamp lte",
            field("published", Condition::Lte(instant("1965-08-01T00:00:00+00:00"))),
            2,
        ),
        (
            "exists, null included",
            field("lang", Condition::Exists(pb::Exists {})),
            4,
        ),
        (
            "array contains",
            field("tags", Condition::Contains(string("classic"))),
            2,
        ),
        ("nested path", field("author.name", Condition::Eq(string("Lem"))), 1),
        ("ids", ids(&["dune", "emma", "missing"]), 2),
        (
            "unknown field matches nothing",
            field("colour", Condition::Eq(string("red"))),
            0,
        ),
        (
            "ne on an unknown field matches nothing",
            field("colour", Condition::Ne(string("red"))),
            0,
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(count(&server, filter).await.unwrap(), expected, "{name}");
    }
}

#[tokio::test]
async fn and_or_not_combine_conditions() {
    let server = library().await;
    let en = || field("lang", Condition::Eq(string("en")));
    let scifi = || field("tags", Condition::Contains(string("scifi")));
    assert_eq!(count(&server, all(vec![en(), scifi()])).await.unwrap(), 1);
    assert_eq!(count(&server, any(vec![en(), scifi()])).await.unwrap(), 3);
    assert_eq!(
        count(&server, not(en())).await.unwrap(),
        2,
        "not matches documents without the field too"
    );
    assert_eq!(
        count(&server, all(vec![])).await.unwrap(),
        4,
        "empty all matches everything"
    );
    assert_eq!(
        count(&server, any(vec![])).await.unwrap(),
        0,
        "empty any matches nothing"
    );
    assert_eq!(count(&server, not(not(scifi()))).await.unwrap(), 2);
}

#[tokio::test]
async fn malformed_filters_name_the_bad_node() {
    let server = library().await;
    let empty_condition = pb::Filter {
        node: Some(pb::filter::Node::Field(pb::FieldCondition {
            key: "lang".into(),
            condition: None,
        })),
    };
    let status = count(
        &server,
        any(vec![
            field("lang", Condition::Exists(pb::Exists {})),
            not(empty_condition),
        ]),
    )
    .await
    .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "filter.any.filters[1].not.field");
    let status = count(&server, field("", Condition::Exists(pb::Exists {})))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "filter.field.key");
    let status = count(&server, field("year", Condition::Gt(bound(f64::NAN))))
        .await
        .unwrap_err();
    assert_violation(&status, Code::InvalidArgument, "filter.field.gt");
    let mut deep = field("lang", Condition::Exists(pb::Exists {}));
    for _ in 0..20 {
        deep = not(deep);
    }
    assert_eq!(count(&server, deep).await.unwrap_err().code(), Code::InvalidArgument);
}
