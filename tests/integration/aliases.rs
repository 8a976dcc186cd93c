//! Aliases: second names of collections that every RPC resolves, switched
//! atomically by UpdateAliases, all or nothing, within API keys' bindings.

use fathom_api::v1 as pb;
use fathom_server::Config;
use fathom_tests::TestServer;
use pb::alias_action::Action;
use pb::collections_client::CollectionsClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::auth::{As, server_with_keys};
use crate::support::{UpsertSession, assert_violation, collection_request, count, document, search, upsert_all};

const DIMENSION: usize = 4;

fn create(alias: &str, collection: &str) -> pb::AliasAction {
    pb::AliasAction {
        action: Some(Action::CreateAlias(pb::CreateAlias {
            alias: alias.into(),
            collection: collection.into(),
        })),
    }
}

fn switch(alias: &str, collection: &str) -> pb::AliasAction {
    pb::AliasAction {
        action: Some(Action::SwitchAlias(pb::SwitchAlias {
            alias: alias.into(),
            collection: collection.into(),
        })),
    }
}

fn delete(alias: &str) -> pb::AliasAction {
    pb::AliasAction {
        action: Some(Action::DeleteAlias(pb::DeleteAlias { alias: alias.into() })),
    }
}

fn update(actions: Vec<pb::AliasAction>) -> pb::UpdateAliasesRequest {
    pb::UpdateAliasesRequest { actions }
}

/// `(alias, collection)` of every alias, by name.
async fn aliases(client: &mut CollectionsClient<Channel>) -> Vec<(String, String)> {
    let listed = client
        .list_aliases(pb::ListAliasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    listed.aliases.into_iter().map(|a| (a.alias, a.collection)).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, c)| (a.to_string(), c.to_string())).collect()
}

/// A server with the collections `names`, each holding one document whose
/// id is the collection's name, and the aliases `(alias, collection)`; a
/// Collections client of it.
async fn server_with(names: &[&str], aliases: &[(&str, &str)]) -> (TestServer, CollectionsClient<Channel>) {
    let server = TestServer::start().await;
    let mut client = server.collections().await;
    for name in names {
        client
            .create_collection(collection_request(name, DIMENSION as u32, pb::DistanceMetric::Cosine))
            .await
            .unwrap();
        upsert_all(&server, name, vec![document(name, DIMENSION, 1)]).await;
    }
    if !aliases.is_empty() {
        let actions = aliases
            .iter()
            .map(|(alias, collection)| create(alias, collection))
            .collect();
        client.update_aliases(update(actions)).await.unwrap();
    }
    (server, client)
}

/// The ids a search of `collection` (or alias) finds.
async fn found_ids(server: &TestServer, collection: &str) -> Result<Vec<String>, tonic::Status> {
    let request = pb::SearchRequest {
        collection: collection.into(),
        vector: document("any", DIMENSION, 1).vector,
        limit: 10,
        ..Default::default()
    };
    Ok(search(server, request).await?.into_iter().map(|h| h.id).collect())
}

#[tokio::test]
async fn every_rpc_that_names_a_collection_accepts_an_alias_and_answers_for_the_collection() {
    let (server, mut collections) = server_with(&["docs_v1"], &[]).await;
    let created = collections
        .update_aliases(update(vec![create("docs", "docs_v1")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.aliases.len(), 1);
    assert_eq!(
        (
            created.aliases[0].alias.as_str(),
            created.aliases[0].collection.as_str()
        ),
        ("docs", "docs_v1")
    );
    assert!(created.aliases[0].update_time.is_some());

    upsert_all(&server, "docs", vec![document("through_alias", DIMENSION, 2)]).await;
    assert_eq!(count(&server, "docs").await, 2);
    assert_eq!(
        count(&server, "docs_v1").await,
        2,
        "the alias wrote into its collection"
    );
    let got = server
        .documents()
        .await
        .get(pb::GetRequest {
            collection: "docs".into(),
            ids: vec!["through_alias".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.documents.len(), 1);
    let mut ids = found_ids(&server, "docs").await.unwrap();
    ids.sort();
    assert_eq!(ids, ["docs_v1", "through_alias"]);

    let collection = collections
        .get_collection(pb::GetCollectionRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    assert_eq!(collection.name, "docs_v1", "responses name the collection itself");
    let stats = collections
        .get_collection_stats(pb::GetCollectionStatsRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.name.as_str(), stats.document_count), ("docs_v1", 2));
    let built = collections
        .build_index(pb::BuildIndexRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(built.collection.unwrap().name, "docs_v1");
    let of_collection = collections
        .list_aliases(pb::ListAliasesRequest {
            collection: "docs".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_collection.aliases[0].alias, "docs");
    let listed = collections
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["docs_v1"], "an alias is no collection of its own");
}

#[tokio::test]
async fn a_switched_alias_serves_the_new_collection_at_once_on_every_server() {
    let (server, mut collections) = server_with(&["docs_v1", "docs_v2"], &[("docs", "docs_v1")]).await;
    let other = TestServer::start_with(Config::new("127.0.0.1:0".parse().unwrap(), server.database_url.clone())).await;
    // Both servers have looked the alias and its collection up (and cached the collection).
    assert_eq!(found_ids(&server, "docs").await.unwrap(), ["docs_v1"]);
    assert_eq!(found_ids(&other, "docs").await.unwrap(), ["docs_v1"]);

    let switched = collections
        .update_aliases(update(vec![switch("docs", "docs_v2")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(switched.aliases[0].collection, "docs_v2");
    assert_eq!(found_ids(&server, "docs").await.unwrap(), ["docs_v2"]);
    assert_eq!(
        found_ids(&other, "docs").await.unwrap(),
        ["docs_v2"],
        "another server sees the switch at once"
    );
    assert_eq!(aliases(&mut collections).await, pairs(&[("docs", "docs_v2")]));
}

#[tokio::test]
async fn the_actions_of_one_request_apply_all_or_none() {
    let (server, mut collections) =
        server_with(&["docs_v1", "docs_v2"], &[("docs", "docs_v1"), ("old", "docs_v1")]).await;

    let refused = collections
        .update_aliases(update(vec![
            switch("docs", "docs_v2"),
            create("fresh", "docs_v2"),
            delete("old"),
            create("broken", "nowhere"),
        ]))
        .await
        .unwrap_err();
    assert_violation(&refused, Code::NotFound, "actions[3].create_alias.collection");
    assert!(refused.message().contains("\"nowhere\""), "{refused:?}");
    assert_eq!(
        aliases(&mut collections).await,
        pairs(&[("docs", "docs_v1"), ("old", "docs_v1")]),
        "nothing of the request was written"
    );
    assert_eq!(found_ids(&server, "docs").await.unwrap(), ["docs_v1"]);

    // In order: an alias deleted and created again within one request, a
    // blue-green swap of two aliases.
    let done = collections
        .update_aliases(update(vec![
            delete("old"),
            create("old", "docs_v2"),
            switch("docs", "docs_v2"),
            switch("old", "docs_v1"),
        ]))
        .await
        .unwrap()
        .into_inner();
    let after: Vec<_> = done.aliases.into_iter().map(|a| (a.alias, a.collection)).collect();
    assert_eq!(after, pairs(&[("docs", "docs_v2"), ("old", "docs_v1")]));
    assert_eq!(aliases(&mut collections).await, after);
}

#[tokio::test]
async fn aliases_and_collections_never_share_a_name() {
    let (_server, mut collections) = server_with(&["docs_v1", "docs_v2"], &[("docs", "docs_v1")]).await;

    let as_collection = collections
        .update_aliases(update(vec![create("docs_v2", "docs_v1")]))
        .await
        .unwrap_err();
    assert_violation(&as_collection, Code::AlreadyExists, "actions[0].create_alias.alias");
    assert!(
        as_collection.message().contains("a collection named \"docs_v2\""),
        "{as_collection:?}"
    );

    let again = collections
        .update_aliases(update(vec![create("docs", "docs_v2")]))
        .await
        .unwrap_err();
    assert_violation(&again, Code::AlreadyExists, "actions[0].create_alias.alias");
    assert!(again.message().contains("an alias named \"docs\""), "{again:?}");

    let collection = collections
        .create_collection(collection_request("docs", DIMENSION as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap_err();
    assert_violation(&collection, Code::AlreadyExists, "name");
    assert!(
        collection.message().contains("an alias named \"docs\""),
        "{collection:?}"
    );
    assert_eq!(aliases(&mut collections).await, pairs(&[("docs", "docs_v1")]));
    let listed = collections
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.collections.len(), 2, "no collection was created");
}

#[tokio::test]
async fn a_collection_and_an_alias_created_at_once_under_one_name_never_both_succeed() {
    let (server, _) = server_with(&["docs_v1"], &[]).await;
    let (mut for_collections, mut for_aliases) = (server.collections().await, server.collections().await);
    for i in 0..10 {
        let name = format!("contested_{i}");
        let (collection, alias) = tokio::join!(
            for_collections.create_collection(collection_request(&name, DIMENSION as u32, pb::DistanceMetric::Cosine)),
            for_aliases.update_aliases(update(vec![create(&name, "docs_v1")])),
        );
        match (collection, alias) {
            (Ok(_), Err(refused)) | (Err(refused), Ok(_)) => {
                assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}")
            }
            other => panic!("exactly one of them must take {name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn missing_aliases_and_collections_are_not_found_naming_the_field() {
    let (_server, mut collections) = server_with(&["docs_v1"], &[("docs", "docs_v1")]).await;
    for (action, field) in [
        (switch("nothing", "docs_v1"), "actions[0].switch_alias.alias"),
        (delete("nothing"), "actions[0].delete_alias.alias"),
        (create("fresh", "nowhere"), "actions[0].create_alias.collection"),
        (switch("docs", "nowhere"), "actions[0].switch_alias.collection"),
    ] {
        let refused = collections.update_aliases(update(vec![action])).await.unwrap_err();
        assert_violation(&refused, Code::NotFound, field);
    }
    let chained = collections
        .update_aliases(update(vec![create("second", "docs")]))
        .await
        .unwrap_err();
    assert_violation(&chained, Code::NotFound, "actions[0].create_alias.collection");
    assert!(chained.message().contains("it is an alias"), "{chained:?}");
    let unknown = collections
        .list_aliases(pb::ListAliasesRequest {
            collection: "nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(aliases(&mut collections).await, pairs(&[("docs", "docs_v1")]));
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_every_field_and_writes_nothing() {
    let (server, mut collections) = server_with(&["docs_v1"], &[]).await;
    let empty = collections.update_aliases(update(vec![])).await.unwrap_err();
    assert_violation(&empty, Code::InvalidArgument, "actions");
    let refused = collections
        .update_aliases(update(vec![
            create("fine", "docs_v1"),
            create("Bad-Name", "docs_v1"),
            pb::AliasAction { action: None },
            switch("fine", "x\"; drop table fathom.collections; --"),
        ]))
        .await
        .unwrap_err();
    for field in [
        "actions[1].create_alias.alias",
        "actions[2]",
        "actions[3].switch_alias.collection",
    ] {
        assert_violation(&refused, Code::InvalidArgument, field);
    }
    let too_many = (0..101).map(|i| create(&format!("a{i}"), "docs_v1")).collect();
    let refused = collections.update_aliases(update(too_many)).await.unwrap_err();
    assert_violation(&refused, Code::InvalidArgument, "actions");
    assert!(aliases(&mut collections).await.is_empty());
    assert_eq!(count(&server, "docs_v1").await, 1);
}

#[tokio::test]
async fn deleting_a_collection_deletes_its_aliases_and_an_alias_names_its_collection() {
    let aliases_before = [("docs", "docs_v1"), ("latest", "docs_v1"), ("next", "docs_v2")];
    let (server, mut collections) = server_with(&["docs_v1", "docs_v2"], &aliases_before).await;
    collections
        .delete_collection(pb::DeleteCollectionRequest { name: "docs_v1".into() })
        .await
        .unwrap();
    assert_eq!(aliases(&mut collections).await, pairs(&[("next", "docs_v2")]));
    let gone = found_ids(&server, "docs").await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // The name is free again, for a collection as for an alias.
    collections
        .create_collection(collection_request("docs", DIMENSION as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();

    // DeleteCollection through an alias drops the collection it points at.
    collections
        .delete_collection(pb::DeleteCollectionRequest { name: "next".into() })
        .await
        .unwrap();
    assert!(aliases(&mut collections).await.is_empty());
    let dropped = collections
        .get_collection(pb::GetCollectionRequest { name: "docs_v2".into() })
        .await
        .unwrap_err();
    assert_eq!(dropped.code(), Code::NotFound);
}

#[tokio::test]
async fn an_open_upsert_stream_keeps_writing_to_the_collection_it_was_opened_on() {
    let (server, mut collections) = server_with(&["docs_v1", "docs_v2"], &[("docs", "docs_v1")]).await;
    let mut documents = server.documents().await;
    let session = UpsertSession::open(&mut documents, "docs", "", "load").await.unwrap();
    session.send_at(1, 0, vec![document("before", DIMENSION, 2)]).await;
    let mut session = session;
    assert!(session.next_ack().await.unwrap().unwrap().rejection.is_none());
    collections
        .update_aliases(update(vec![switch("docs", "docs_v2")]))
        .await
        .unwrap();
    session.send_at(2, 1, vec![document("after", DIMENSION, 3)]).await;
    let acks = session.finish().await.unwrap();
    assert!(acks.iter().all(|a| a.rejection.is_none()), "{acks:?}");
    assert_eq!(count(&server, "docs_v1").await, 3);
    assert_eq!(count(&server, "docs_v2").await, 1);

    // Progress is kept per collection: resumed through the switched alias,
    // the stream starts afresh on the collection the alias now names.
    let resumed = UpsertSession::open(&mut documents, "docs", "", "load").await.unwrap();
    assert_eq!(resumed.opened.committed_documents, 0, "{:?}", resumed.opened);
    let on_first = UpsertSession::open(&mut documents, "docs_v1", "", "load")
        .await
        .unwrap();
    assert_eq!(on_first.opened.committed_documents, 2, "{:?}", on_first.opened);
}

#[tokio::test]
async fn a_collection_bound_key_reaches_through_an_alias_only_its_own_collections() {
    let (server, keys) = server_with_keys(&[
        &["--role", "admin"],
        &["--role", "read", "--collection", "docs_v1"],
        &["--role", "admin", "--collection", "docs_v1"],
        &["--role", "write"],
    ])
    .await;
    let mut admin = As::key(&server, &keys[0]).await;
    let mut reader = As::key(&server, &keys[1]).await;
    let mut bound_admin = As::key(&server, &keys[2]).await;
    let mut writer = As::key(&server, &keys[3]).await;
    for name in ["docs_v1", "docs_v2"] {
        admin.create(name, false).await.unwrap();
    }
    let created = admin
        .collections
        .update_aliases(update(vec![create("docs", "docs_v1"), create("theirs", "docs_v2")]))
        .await;
    created.unwrap();

    let get = |name: &str| pb::GetCollectionRequest { name: name.into() };
    let through_alias = reader.collections.get_collection(get("docs")).await.unwrap();
    assert_eq!(through_alias.into_inner().collection.unwrap().name, "docs_v1");
    let listed = reader
        .collections
        .list_aliases(pb::ListAliasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.aliases.iter().map(|a| a.alias.as_str()).collect();
    assert_eq!(names, ["docs"], "only the aliases of the key's collections");

    // An alias to a collection outside the binding is refused like that
    // collection, naming only the alias, and like a name that does not exist.
    let refused = reader.collections.get_collection(get("theirs")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("\"theirs\"") && !refused.message().contains("docs_v2"),
        "{refused:?}"
    );
    let missing = reader.collections.get_collection(get("nowhere")).await.unwrap_err();
    assert_eq!(missing.code(), Code::PermissionDenied);

    // Admin and only admin changes aliases; a bound admin only between its collections.
    let by_writer = writer
        .collections
        .update_aliases(update(vec![create("mine", "docs_v1")]))
        .await
        .unwrap_err();
    assert_eq!(by_writer.code(), Code::PermissionDenied);
    for (action, field) in [
        (create("mine", "docs_v2"), "actions[0].create_alias.collection"),
        (switch("docs", "docs_v2"), "actions[0].switch_alias.collection"),
        (switch("theirs", "docs_v1"), "actions[0].switch_alias.alias"),
        (delete("theirs"), "actions[0].delete_alias.alias"),
    ] {
        let refused = bound_admin
            .collections
            .update_aliases(update(vec![create("allowed", "docs_v1"), action]))
            .await
            .unwrap_err();
        assert_violation(&refused, Code::PermissionDenied, &field.replace("[0]", "[1]"));
    }
    let everything = admin
        .collections
        .list_aliases(pb::ListAliasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = everything
        .aliases
        .iter()
        .map(|a| (a.alias.as_str(), a.collection.as_str()))
        .collect();
    assert_eq!(
        names,
        [("docs", "docs_v1"), ("theirs", "docs_v2")],
        "nothing was written"
    );

    // Switched by the admin, the alias leads the bound key nowhere new.
    admin
        .collections
        .update_aliases(update(vec![switch("docs", "docs_v2")]))
        .await
        .unwrap();
    let refused = reader.collections.get_collection(get("docs")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}
