//! The Rust client against a real server: streaming through a database
//! restart, filters that read naturally, scroll.

use std::time::Duration;

use fathom_client::filter::field;
use fathom_client::{Client, Document, Filter, proto};
use fathom_tests::{PrivateCluster, TestServer, eventually};
use futures::StreamExt;

use crate::metrics::{self, DOCUMENTS, scrape, serve_with_metrics, value, with_code};
use crate::overload::{fathom_sessions, lock_docs_table};
use crate::support::pseudo_random_vector;

fn documents(n: usize) -> impl futures::Stream<Item = Document> + Unpin + Send {
    futures::stream::iter((0..n).map(|i| {
        Document::new(format!("d{i:06}"), pseudo_random_vector(8, i as u64 + 1))
            .text(format!("document number {i}"))
            .metadata(serde_json::json!({"i": i, "lang": if i % 3 == 0 { "de" } else { "en" }}))
            .unwrap()
    }))
}

#[tokio::test]
async fn upsert_stream_reconnects_through_a_database_restart_and_ends_exact() {
    let cluster = PrivateCluster::start();
    let server = TestServer::start_with(fathom_server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        cluster.url(),
    ))
    .await;
    let client = Client::connect(server.url()).await.unwrap();
    client.create_collection("docs", 8).send().await.unwrap();

    let restart = {
        let pg = cluster.pg.clone();
        let url = cluster.url();
        tokio::spawn(async move {
            let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            loop {
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM fathom_data.docs")
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
                if rows >= 3_000 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(db);
            tokio::task::spawn_blocking(move || {
                pg.stop(true).unwrap();
                std::thread::sleep(Duration::from_millis(500));
                pg.restart().unwrap();
            })
            .await
            .unwrap();
        })
    };
    let summary = client
        .upsert_stream("docs", documents(30_000))
        .stream_id("through-restart")
        .batch_documents(100)
        .send()
        .await
        .expect("the stream survives the restart");
    restart.await.unwrap();
    assert!(
        summary.reconnects >= 1,
        "the database restart forced a reconnect: {summary:?}"
    );
    assert_eq!(client.count("docs", "", None).await.unwrap(), 30_000);
    assert_eq!(summary.committed_documents, 30_000);
}

#[tokio::test]
async fn a_source_error_stops_the_stream_before_its_batch_and_a_rerun_with_other_batches_ends_exact() {
    let server = TestServer::start().await;
    let client = Client::connect(server.url()).await.unwrap();
    client.create_collection("docs", 8).send().await.unwrap();
    let broken = documents(1_000).enumerate().map(|(i, document)| {
        if i == 650 {
            Err(fathom_client::Error::InvalidInput("record 650 is unreadable".into()))
        } else {
            Ok(document)
        }
    });
    let failed = client
        .try_upsert_stream("docs", broken)
        .stream_id("s")
        .batch_documents(200)
        .send()
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("record 650"), "{failed}");
    // Documents 600..650 were the batch being filled: not sent.
    assert_eq!(client.count("docs", "", None).await.unwrap(), 600);
    assert_eq!(failed.summary.committed_documents, 600);

    let summary = client
        .upsert_stream("docs", documents(1_000))
        .stream_id("s")
        .batch_documents(64)
        .send()
        .await
        .unwrap();
    assert_eq!(client.count("docs", "", None).await.unwrap(), 1_000);
    assert_eq!(
        (
            summary.committed_documents,
            summary.documents,
            summary.skipped_documents
        ),
        (1_000, 400, 600)
    );

    let other = documents(1_100).skip(100);
    let refused = client
        .upsert_stream("docs", other)
        .stream_id("s")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(refused.error, fathom_client::Error::ResumeMismatch(_)),
        "{refused:?}"
    );
    assert_eq!(client.count("docs", "", None).await.unwrap(), 1_000);
}

#[tokio::test]
async fn built_filters_select_what_they_say_in_search_count_and_scroll() {
    let server = TestServer::start().await;
    let client = Client::connect(server.url()).await.unwrap();
    client.create_collection("docs", 8).send().await.unwrap();
    let summary = client
        .upsert_stream("docs", documents(300))
        .batch_documents(64)
        .send()
        .await
        .unwrap();
    assert_eq!((summary.documents, summary.batches), (300, 5));
    let again = vec![
        Document::new("d000000", pseudo_random_vector(8, 1))
            .metadata(serde_json::json!({"i": 0, "lang": "de"}))
            .unwrap(),
    ];
    let summary = client.upsert_iter("docs", again).send().await.unwrap();
    assert_eq!(
        summary.documents, 1,
        "an iterator works as a source, and upserts replace by id"
    );

    let german_low = field("lang").eq("de").and(field("i").lt(30));
    assert_eq!(client.count("docs", "", Some(german_low.clone())).await.unwrap(), 10);
    let mut hits = client
        .search("docs")
        .vector(pseudo_random_vector(8, 1))
        .filter(german_low.clone())
        .limit(50)
        .send()
        .await
        .unwrap();
    let mut seen = 0;
    while let Some(hit) = hits.next().await {
        let hit = hit.unwrap();
        let i: usize = hit.id[1..].parse().unwrap();
        assert!(i.is_multiple_of(3) && i < 30, "{} does not match the filter", hit.id);
        seen += 1;
    }
    assert_eq!(seen, 10);

    let request = proto::ScrollRequest {
        collection: "docs".into(),
        filter: Some(Filter::ids(["d000005", "d000001"]).into_proto()),
        ..Default::default()
    };
    let ids: Vec<String> = client.scroll(request).map(|d| d.unwrap().id).collect().await;
    assert_eq!(ids, ["d000001", "d000005"]);

    let error = client
        .search("docs")
        .vector(vec![1.0])
        .send()
        .await
        .err()
        .expect("a wrong dimension is refused");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument));
    assert_eq!(error.violations()[0].field, "vector");
    assert!(error.to_string().starts_with("INVALID_ARGUMENT"), "{error}");
}

#[tokio::test]
async fn the_update_builder_changes_metadata_and_text_by_ids_and_by_filter() {
    let server = TestServer::start().await;
    let client = Client::connect(server.url()).await.unwrap();
    client.create_collection("docs", 8).send().await.unwrap();
    client.upsert_stream("docs", documents(30)).send().await.unwrap();

    let by_ids = client
        .update("docs", "", Filter::ids(["d000001", "d000002", "nope"]))
        .set_metadata(serde_json::json!({"reviewed": true}))
        .unwrap()
        .delete_metadata_keys(["lang"])
        .text("changed text")
        .send()
        .await
        .unwrap();
    assert_eq!(by_ids, 2);
    let got = client.get("docs", "", &["d000001".to_owned()]).await.unwrap();
    assert_eq!(
        fathom_client::struct_to_json(got[0].metadata.as_ref().unwrap()),
        serde_json::json!({"i": 1, "reviewed": true})
    );
    assert_eq!(got[0].text, "changed text");

    let german = client
        .update("docs", "", field("lang").eq("de"))
        .replace_metadata(serde_json::json!({"lang": "fr"}))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(german, 10, "d0, d3, … d27");
    assert_eq!(
        client.count("docs", "", Some(field("lang").eq("fr"))).await.unwrap(),
        10
    );
    assert_eq!(client.count("docs", "", Some(field("lang").eq("de"))).await.unwrap(), 0);

    let error = client
        .update("docs", "", Filter::ids(["d000001"]))
        .send()
        .await
        .expect_err("an update that changes nothing is refused");
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument));
    assert!(error.to_string().contains("nothing to update"), "{error}");
    let not_an_object = client
        .update("docs", "", Filter::ids(["d000001"]))
        .set_metadata(serde_json::json!([1, 2]));
    assert!(not_an_object.is_err(), "metadata must be a JSON object");
}

#[tokio::test]
async fn aliases_switch_what_the_client_reaches_by_one_name() {
    let server = TestServer::start().await;
    let client = Client::connect(server.url()).await.unwrap();
    for name in ["docs_v1", "docs_v2"] {
        client.create_collection(name, 8).send().await.unwrap();
    }
    client.upsert_stream("docs_v2", documents(3)).send().await.unwrap();
    let created = client.update_aliases().create("docs", "docs_v1").send().await.unwrap();
    assert_eq!(
        (created[0].alias.as_str(), created[0].collection.as_str()),
        ("docs", "docs_v1")
    );
    assert_eq!(client.count("docs", "", None).await.unwrap(), 0);

    client
        .update_aliases()
        .switch("docs", "docs_v2")
        .create("previous", "docs_v1")
        .send()
        .await
        .unwrap();
    assert_eq!(client.count("docs", "", None).await.unwrap(), 3);
    let of_v1 = client.list_aliases(Some("previous")).await.unwrap();
    assert_eq!(of_v1.iter().map(|a| a.alias.as_str()).collect::<Vec<_>>(), ["previous"]);

    let error = client
        .update_aliases()
        .delete("previous")
        .create("broken", "nowhere")
        .send()
        .await
        .expect_err("an alias of a missing collection is refused");
    assert_eq!(error.code(), Some(tonic::Code::NotFound));
    assert_eq!(error.violations()[0].field, "actions[1].create_alias.collection");
    let all = client.list_aliases(None).await.unwrap();
    assert_eq!(
        all.len(),
        2,
        "the delete before the refused action was not made: {all:?}"
    );
}

#[tokio::test]
async fn a_refused_batch_stops_the_stream_with_its_violations() {
    let server = TestServer::start().await;
    let client = Client::connect(server.url()).await.unwrap();
    client.create_collection("docs", 8).send().await.unwrap();
    let mut bad = Document::new("bad", vec![0.0; 8]);
    bad.0.vector[2] = f32::NAN;
    let source = futures::stream::iter(vec![Document::new("ok", vec![1.0; 8]), bad]);
    let error = client
        .upsert_stream("docs", source)
        .batch_documents(1)
        .send()
        .await
        .unwrap_err();
    let fathom_client::Error::BatchRejected {
        first_position,
        violations,
        ..
    } = &error.error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*first_position, 1);
    assert_eq!(error.summary.committed_documents, 1);
    assert_eq!(violations[0].field, "documents[0].vector");
    assert_eq!(
        client.count("docs", "", None).await.unwrap(),
        1,
        "the batch before is stored"
    );
}

/// How many `method` calls of the Documents service the server answered with `code`.
async fn handled(metrics_addr: std::net::SocketAddr, method: &str, code: &str) -> f64 {
    let labels = with_code(metrics::method("unary", DOCUMENTS, method), code);
    value(&scrape(metrics_addr).await, "grpc_server_handled_total", &labels)
}

/// The retry table (docs/retries.md): a pool-busy refusal is
/// RESOURCE_EXHAUSTED marked with RetryInfo, and the client retries it. The
/// server has one pooled connection, held by a Count waiting behind a table
/// lock; a second Count waits for the pool and is refused as busy; once the
/// server has counted that refusal the lock goes, and the retry succeeds.
#[tokio::test]
async fn a_pool_busy_refusal_is_retried_and_the_retry_succeeds() {
    let (process, metrics_addr) = serve_with_metrics(&["--max-connections", "1"]).await;
    let client = Client::connect(process.url()).await.unwrap();
    client.create_collection("docs", 3).send().await.unwrap();
    let mut locker = lock_docs_table(&process.database_url).await;
    let holder = tokio::spawn({
        let client = client.clone();
        async move { client.count("docs", "", None).await }
    });
    let observer = sqlx::PgPool::connect(&process.database_url).await.unwrap();
    let blocked = eventually(Duration::from_secs(30), || {
        let observer = observer.clone();
        async move { fathom_sessions(&observer, "wait_event_type = 'Lock'").await == 1 }
    })
    .await;
    assert!(blocked, "the first Count never held the pooled connection");

    let retried = tokio::spawn({
        let client = client.clone();
        async move { client.count("docs", "", None).await }
    });
    let refused = eventually(Duration::from_secs(30), || async {
        handled(metrics_addr, "Count", "ResourceExhausted").await >= 1.0
    })
    .await;
    assert!(refused, "the second Count was never refused as busy");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    assert_eq!(holder.await.unwrap().unwrap(), 0);
    assert_eq!(retried.await.unwrap().unwrap(), 0, "the busy refusal was not retried");
    assert_eq!(handled(metrics_addr, "Count", "ResourceExhausted").await, 1.0);
    assert_eq!(handled(metrics_addr, "Count", "OK").await, 2.0);
}

/// The retry table's permanent errors reach the caller after one attempt:
/// INVALID_ARGUMENT, and a RESOURCE_EXHAUSTED without the busy mark (a batch
/// past the server's limit), which no retry could change.
#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let (process, metrics_addr) = serve_with_metrics(&["--max-batch-documents", "2"]).await;
    let client = Client::connect(process.url()).await.unwrap();
    client.create_collection("docs", 3).send().await.unwrap();

    let invalid = client.count("Not A Name", "", None).await.unwrap_err();
    assert_eq!(invalid.code(), Some(tonic::Code::InvalidArgument), "{invalid}");
    assert!(!invalid.is_retryable());

    let documents: Vec<Document> = (0..3)
        .map(|i| Document::new(format!("d{i}"), vec![1.0, 0.0, i as f32]))
        .collect();
    let too_large = client.upsert("docs", "", documents).await.unwrap_err();
    assert_eq!(too_large.code(), Some(tonic::Code::ResourceExhausted), "{too_large}");
    assert!(!too_large.is_busy() && !too_large.is_retryable(), "{too_large:?}");

    assert_eq!(handled(metrics_addr, "Count", "InvalidArgument").await, 1.0);
    assert_eq!(handled(metrics_addr, "Upsert", "ResourceExhausted").await, 1.0);
}
