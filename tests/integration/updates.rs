//! Update: partial changes of text and metadata, by id or by filter,
//! transactional, with counts; refusals change nothing.

use fathom_api::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::support::filter::{field, string};
use crate::support::*;

const DIMENSION: usize = 8;

/// A server with a collection "docs" holding `a`, `b`, `c` (text
/// "document <id>", metadata `{"color": "red", "size": <n>}`).
async fn server_with_three_documents() -> fathom_tests::TestServer {
    let server = server_with_collection("docs", DIMENSION).await;
    let documents = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(n, id)| pb::Document {
            metadata: metadata(json!({"color": "red", "size": n})),
            ..document(id, DIMENSION, n as u64)
        })
        .collect();
    upsert_all(&server, "docs", documents).await;
    server
}

fn by_ids(ids: &[&str]) -> Option<pb::update_request::Selector> {
    Some(pb::update_request::Selector::Ids(pb::IdCondition {
        ids: ids.iter().map(|id| (*id).to_owned()).collect(),
    }))
}

/// Every document of "docs", all fields, in id order.
async fn all_documents(server: &fathom_tests::TestServer) -> Vec<pb::Document> {
    let request = pb::GetRequest {
        collection: "docs".into(),
        ids: vec!["a".into(), "b".into(), "c".into(), "missing".into()],
        ..Default::default()
    };
    server
        .documents()
        .await
        .get(request)
        .await
        .unwrap()
        .into_inner()
        .documents
}

fn metadata_of(document: &pb::Document) -> serde_json::Value {
    fathom_api::struct_json::struct_to_json(document.metadata.as_ref().expect("metadata"))
}

#[tokio::test]
async fn an_update_merges_metadata_replaces_text_keeps_vectors_and_counts_only_existing_ids() {
    let server = server_with_three_documents().await;
    let before = all_documents(&server).await;
    let request = pb::UpdateRequest {
        collection: "docs".into(),
        selector: by_ids(&["a", "b", "missing"]),
        text: Some("lymphatic filariasis".into()),
        set_metadata: metadata(json!({"color": "blue", "reviewed": true})),
        delete_metadata_keys: vec!["size".into()],
        ..Default::default()
    };
    let updated = server.documents().await.update(request).await.unwrap().into_inner();
    assert_eq!(updated.updated, 2, "the missing id is skipped");

    let after = all_documents(&server).await;
    assert_eq!(after.len(), 3, "no document was created for the missing id");
    for (old, new) in before.iter().zip(&after).take(2) {
        assert_eq!(metadata_of(new), json!({"color": "blue", "reviewed": true}));
        assert_eq!(new.text, "lymphatic filariasis");
        assert_eq!(new.vector, old.vector, "the vector stays");
    }
    assert_eq!(after[2], before[2], "c was not chosen");

    let keyword = pb::SearchRequest {
        collection: "docs".into(),
        text: Some("filariasis".into()),
        limit: 10,
        ..Default::default()
    };
    let mut found: Vec<String> = search(&server, keyword)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    found.sort();
    assert_eq!(found, ["a", "b"], "the new text is indexed for keyword search");
}

#[tokio::test]
async fn an_update_by_filter_replaces_the_metadata_of_the_matching_documents_only() {
    let server = server_with_three_documents().await;
    let mut documents = server.documents().await;
    let make_green = pb::UpdateRequest {
        collection: "docs".into(),
        selector: by_ids(&["c"]),
        set_metadata: metadata(json!({"color": "green"})),
        ..Default::default()
    };
    assert_eq!(documents.update(make_green).await.unwrap().into_inner().updated, 1);

    let replace_red = pb::UpdateRequest {
        collection: "docs".into(),
        selector: Some(pb::update_request::Selector::Filter(field(
            "color",
            pb::field_condition::Condition::Eq(string("red")),
        ))),
        set_metadata: metadata(json!({"archived": true})),
        replace_metadata: true,
        ..Default::default()
    };
    assert_eq!(documents.update(replace_red).await.unwrap().into_inner().updated, 2);

    let after = all_documents(&server).await;
    assert_eq!(metadata_of(&after[0]), json!({"archived": true}));
    assert_eq!(metadata_of(&after[1]), json!({"archived": true}));
    assert_eq!(metadata_of(&after[2]), json!({"color": "green", "size": 2}));
    assert_eq!(after[0].text, "document a", "the text is kept when not given");
    let archived = pb::CountRequest {
        collection: "docs".into(),
        filter: Some(field(
            "archived",
            pb::field_condition::Condition::Eq(crate::support::filter::boolean(true)),
        )),
        ..Default::default()
    };
    assert_eq!(documents.count(archived).await.unwrap().into_inner().count, 2);
}

#[tokio::test]
async fn an_update_that_would_make_one_document_metadata_too_large_changes_none() {
    let server = server_with_three_documents().await;
    // 40 KiB in b, so adding 30 KiB more passes the 64 KiB limit in b alone.
    let large = pb::UpdateRequest {
        collection: "docs".into(),
        selector: by_ids(&["b"]),
        set_metadata: metadata(json!({"notes": "x".repeat(40 * 1024)})),
        ..Default::default()
    };
    server.documents().await.update(large).await.unwrap();
    let before = all_documents(&server).await;

    let grow_all = pb::UpdateRequest {
        collection: "docs".into(),
        selector: by_ids(&["a", "b", "c"]),
        set_metadata: metadata(json!({"more": "y".repeat(30 * 1024)})),
        text: Some("changed".into()),
        ..Default::default()
    };
    let refused = server.documents().await.update(grow_all).await.unwrap_err();
    assert_violation(&refused, Code::ResourceExhausted, "set_metadata");
    assert!(
        refused.message().contains("\"b\"") && refused.message().contains("65536"),
        "names the document and the limit: {}",
        refused.message()
    );
    assert_eq!(
        all_documents(&server).await,
        before,
        "nothing changed, in b or elsewhere"
    );
}

#[tokio::test]
async fn invalid_updates_are_refused_naming_their_field_and_change_nothing() {
    let server = server_with_three_documents().await;
    let before = all_documents(&server).await;
    let mut documents = server.documents().await;
    let base = || pb::UpdateRequest {
        collection: "docs".into(),
        selector: by_ids(&["a"]),
        ..Default::default()
    };
    let nothing = documents.update(base()).await.unwrap_err();
    assert_eq!(nothing.code(), Code::InvalidArgument);
    assert!(nothing.message().contains("nothing to update"), "{}", nothing.message());

    let cases: Vec<(pb::UpdateRequest, Code, &str)> = vec![
        (
            pb::UpdateRequest {
                selector: None,
                text: Some("t".into()),
                ..base()
            },
            Code::InvalidArgument,
            "selector",
        ),
        (
            pb::UpdateRequest {
                text: Some("nul \0 inside".into()),
                ..base()
            },
            Code::InvalidArgument,
            "text",
        ),
        (
            pb::UpdateRequest {
                text: Some("x".repeat(1024 * 1024 + 1)),
                ..base()
            },
            Code::ResourceExhausted,
            "text",
        ),
        (
            pb::UpdateRequest {
                replace_metadata: true,
                ..base()
            },
            Code::InvalidArgument,
            "replace_metadata",
        ),
        (
            pb::UpdateRequest {
                set_metadata: metadata(json!({"color": "blue"})),
                delete_metadata_keys: vec!["color".into()],
                ..base()
            },
            Code::InvalidArgument,
            "delete_metadata_keys[0]",
        ),
        (
            pb::UpdateRequest {
                delete_metadata_keys: vec!["size".into(); 1001],
                ..base()
            },
            Code::InvalidArgument,
            "delete_metadata_keys",
        ),
        (
            pb::UpdateRequest {
                set_metadata: metadata(json!({"big": "z".repeat(64 * 1024)})),
                ..base()
            },
            Code::ResourceExhausted,
            "set_metadata",
        ),
        (
            pb::UpdateRequest {
                selector: by_ids(&[]),
                text: Some("t".into()),
                ..base()
            },
            Code::InvalidArgument,
            "ids.ids",
        ),
    ];
    for (request, code, field) in cases {
        let refused = documents.update(request).await.unwrap_err();
        assert_violation(&refused, code, field);
    }
    let untenanted = pb::UpdateRequest {
        tenant: "acme".into(),
        text: Some("t".into()),
        ..base()
    };
    assert_eq!(
        documents.update(untenanted).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let unknown = pb::UpdateRequest {
        collection: "nope".into(),
        text: Some("t".into()),
        ..base()
    };
    assert_eq!(documents.update(unknown).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(all_documents(&server).await, before, "no refusal changed anything");
}

#[tokio::test]
async fn an_update_in_one_tenant_leaves_the_same_id_in_another_alone() {
    let server = fathom_tests::TestServer::start().await;
    let create = pb::CreateCollectionRequest {
        multi_tenant: true,
        ..collection_request("shared", DIMENSION as u32, pb::DistanceMetric::Cosine)
    };
    server.collections().await.create_collection(create).await.unwrap();
    let mut documents = server.documents().await;
    for tenant in ["t1", "t2"] {
        let request = pb::UpsertRequest {
            collection: "shared".into(),
            tenant: tenant.into(),
            documents: vec![document("same", DIMENSION, 1)],
        };
        documents.upsert(request).await.unwrap();
    }
    let update = pb::UpdateRequest {
        collection: "shared".into(),
        tenant: "t1".into(),
        selector: by_ids(&["same"]),
        text: Some("only in t1".into()),
        ..Default::default()
    };
    assert_eq!(documents.update(update).await.unwrap().into_inner().updated, 1);
    for (tenant, text) in [("t1", "only in t1"), ("t2", "document same")] {
        let request = pb::GetRequest {
            collection: "shared".into(),
            tenant: tenant.into(),
            ids: vec!["same".into()],
            ..Default::default()
        };
        let got = documents.get(request).await.unwrap().into_inner().documents;
        assert_eq!(got[0].text, text, "tenant {tenant}");
    }
}
