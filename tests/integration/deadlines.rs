//! Deadlines, abandoned requests and the server-wide concurrency limit: a
//! request the client stopped waiting for stops in the database too, and a
//! server at its limit says so at once.

use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_server::Config;
use fathom_tests::{TestServer, eventually, fresh_database};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::overload::{count_request, fathom_sessions, lock_docs_table, overall_health, server_with_docs, tiny};
use crate::support::UpsertSession;

/// How long a test waits for the server to reach a state before failing.
const PATIENCE: Duration = Duration::from_secs(30);

fn upsert_request(id: u64) -> pb::UpsertRequest {
    pb::UpsertRequest {
        collection: "docs".into(),
        tenant: String::new(),
        documents: vec![tiny(id)],
    }
}

async fn sessions_waiting_on_a_lock(observer: &sqlx::PgPool) -> i64 {
    fathom_sessions(observer, "wait_event_type = 'Lock'").await
}

/// Waits until `count` of the server's sessions wait on a lock; false if they never do.
async fn until_waiting_on_lock(observer: &sqlx::PgPool, count: i64) -> bool {
    eventually(PATIENCE, || {
        let observer = observer.clone();
        async move { sessions_waiting_on_a_lock(&observer).await == count }
    })
    .await
}

async fn default_server() -> TestServer {
    server_with_docs(Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await)).await
}

#[tokio::test]
async fn writes_past_their_grpc_timeout_are_deadline_exceeded_cancelled_in_the_database_and_write_nothing() {
    let server = default_server().await;
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    // Without the deadline, these calls would wait for the lock for the
    // server's whole statement timeout (60 s).
    let mut locker = lock_docs_table(&server.database_url).await;
    let mut documents = server.documents().await;

    let mut upsert = tonic::Request::new(upsert_request(1));
    upsert.set_timeout(Duration::from_secs(2));
    let status = documents.upsert(upsert).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("deadline"), "{status:?}");

    let mut delete = tonic::Request::new(pb::DeleteRequest {
        collection: "docs".into(),
        tenant: String::new(),
        selector: Some(pb::delete_request::Selector::Ids(pb::IdCondition {
            ids: vec!["d1".into()],
        })),
    });
    delete.set_timeout(Duration::from_secs(2));
    let status = documents.delete(delete).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    assert_eq!(
        sessions_waiting_on_a_lock(&observer).await,
        0,
        "a statement past its deadline still waits in the database"
    );
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let stored = documents.count(count_request()).await.unwrap().into_inner().count;
    assert_eq!(stored, 0, "the upsert past its deadline wrote nothing");
}

#[tokio::test]
async fn an_abandoned_upsert_has_its_statement_cancelled_its_connection_closed_and_writes_nothing() {
    let server = default_server().await;
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let mut locker = lock_docs_table(&server.database_url).await;

    let mut client = server.documents().await;
    let abandoned = tokio::spawn(async move { client.upsert(upsert_request(1)).await });
    assert!(
        until_waiting_on_lock(&observer, 1).await,
        "the upsert never reached the lock"
    );
    let backend: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'fathom' AND wait_event_type = 'Lock'",
    )
    .fetch_one(&observer)
    .await
    .unwrap();
    // The client gives up: its call is reset, and the server must stop
    // waiting too, long before the statement timeout.
    abandoned.abort();
    assert!(
        until_waiting_on_lock(&observer, 0).await,
        "the abandoned upsert's statement still waits on the lock"
    );
    // Its connection is closed, not pooled: the cancel sent for it can
    // never land on another request's statement. (Here the cancel's error
    // alone would close it too; the store's unit test
    // `a_write_dropped_between_its_statements_…` shows the guard closing a
    // connection that no error would.)
    let closed = eventually(PATIENCE, || {
        let observer = observer.clone();
        async move {
            let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                .bind(backend)
                .fetch_one(&observer)
                .await
                .unwrap();
            sessions == 0
        }
    })
    .await;
    assert!(closed, "the abandoned upsert's connection went back to the pool");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let stored = server
        .documents()
        .await
        .count(count_request())
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(stored, 0, "the abandoned upsert wrote nothing");
}

#[tokio::test]
async fn a_stream_abandoned_mid_batch_has_its_statement_cancelled_and_writes_nothing_of_it() {
    let server = default_server().await;
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let mut documents = server.documents().await;
    let mut stream = UpsertSession::open(&mut documents, "docs", "", "").await.unwrap();
    stream.send(1, vec![tiny(1)]).await;
    assert_eq!(stream.next_ack().await.unwrap().unwrap().documents_written, 1);

    let mut locker = lock_docs_table(&server.database_url).await;
    stream.send(2, vec![tiny(2)]).await;
    assert!(
        until_waiting_on_lock(&observer, 1).await,
        "the second batch never reached the lock"
    );
    drop(stream);
    assert!(
        until_waiting_on_lock(&observer, 0).await,
        "the abandoned stream's batch still waits on the lock"
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let stored = documents.count(count_request()).await.unwrap().into_inner().count;
    assert_eq!(stored, 1, "the acknowledged batch is stored, the abandoned one is not");
}

#[tokio::test]
async fn past_the_request_limit_calls_are_resource_exhausted_while_health_answers() {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.max_concurrent_requests = 1;
    let server = server_with_docs(config).await;
    let documents = server.documents().await;
    // A Count held by a lock on the table holds the one place until it ends.
    let locker = lock_docs_table(&server.database_url).await;
    let held = tokio::spawn({
        let mut documents = documents.clone();
        async move { documents.count(count_request()).await }
    });
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let waiting = eventually(PATIENCE, || {
        let observer = observer.clone();
        async move { fathom_sessions(&observer, "wait_event_type = 'Lock'").await == 1 }
    })
    .await;
    assert!(waiting, "the first Count never waited on the lock");

    let status = documents.clone().count(count_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limit of 1 requests in progress")
            && status.message().contains("--max-concurrent-requests"),
        "{status:?}"
    );
    // Health is not limited: it answers, and turns SERVING once the probe
    // has seen the database (it starts NOT_SERVING).
    let serving = eventually(PATIENCE, || async {
        overall_health(&server).await == ServingStatus::Serving as i32
    })
    .await;
    assert!(serving, "health never answered SERVING while the limit was reached");

    drop(locker);
    assert_eq!(held.await.unwrap().unwrap().into_inner().count, 0);
    documents
        .clone()
        .count(count_request())
        .await
        .expect("the place the Count held is given back when it ends");
}

#[tokio::test]
async fn past_the_stream_limit_streams_are_resource_exhausted_and_an_open_stream_leaves_unary_calls_their_place() {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.max_concurrent_requests = 1;
    config.max_open_streams = 1;
    let server = server_with_docs(config).await;
    let mut documents = server.documents().await;
    let stream = UpsertSession::open(&mut documents, "docs", "", "").await.unwrap();

    let refused = UpsertSession::open(&mut documents, "docs", "", "")
        .await
        .err()
        .expect("a second stream is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limit of 1 open streams") && refused.message().contains("--max-open-streams"),
        "{refused:?}"
    );
    let search = pb::SearchRequest {
        collection: "docs".into(),
        vector: vec![1.0, 0.0, 0.0],
        ..Default::default()
    };
    let refused = server.search().await.search(search.clone()).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::ResourceExhausted,
        "a search streams too: {refused:?}"
    );
    // The open stream does not hold the one place of work.
    let count = documents.count(count_request()).await.expect("Count is answered");
    assert_eq!(count.into_inner().count, 0);

    stream.finish().await.unwrap();
    let searched = eventually(PATIENCE, || {
        let server = &server;
        let search = search.clone();
        async move { server.search().await.search(search).await.is_ok() }
    })
    .await;
    assert!(searched, "the stream's place was never given back");
}
