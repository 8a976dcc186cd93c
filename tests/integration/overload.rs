//! A server under overload and misbehaving clients: every refusal is a
//! clear status, and no client can stall the others.

use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_server::Config;
use fathom_tests::{TestServer, eventually, fresh_database};
use sqlx::Connection;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::serve_process::ServeProcess;
use crate::support::collection_request;

pub(crate) async fn server_with_docs(config: Config) -> TestServer {
    crate::support::configured_server_with_collection(config, "docs", 3).await
}

pub(crate) fn count_request() -> pb::CountRequest {
    pb::CountRequest {
        collection: "docs".into(),
        tenant: String::new(),
        filter: None,
        consistency: None,
    }
}

/// A session holding an exclusive lock on the `docs` table until it rolls back.
pub(crate) async fn lock_docs_table(database_url: &str) -> sqlx::PgConnection {
    let mut locker = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE fathom_data.docs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    locker
}

/// How many of the server's pooled sessions on this database match `condition` (SQL over pg_stat_activity).
pub(crate) async fn fathom_sessions(observer: &sqlx::PgPool, condition: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'fathom' \
         AND {condition}"
    );
    sqlx::query_scalar(&sql).fetch_one(observer).await.unwrap()
}

/// Whether, within 30 s, no pooled session of fathom on this database is
/// running a statement or holding a transaction open.
async fn no_statement_of_fathom_runs(database_url: &str) -> bool {
    let observer = sqlx::PgPool::connect(database_url).await.unwrap();
    eventually(Duration::from_secs(30), || {
        let observer = observer.clone();
        async move { fathom_sessions(&observer, "state <> 'idle'").await == 0 }
    })
    .await
}

/// The server's overall health status, as a probe asks it.
pub(crate) async fn overall_health(server: &TestServer) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status
}

pub(crate) fn tiny(id: u64) -> pb::Document {
    pb::Document {
        id: format!("d{id}"),
        vector: vec![1.0, (id % 7) as f32, 0.5],
        ..Default::default()
    }
}

#[tokio::test]
async fn an_exhausted_pool_is_resource_exhausted_with_retry_advice_while_health_stays_serving() {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.max_connections = 1;
    let server = server_with_docs(config).await;
    // Health starts NOT_SERVING until its first probe; wait for that, so
    // what is checked below is that exhaustion does not change it.
    let serving = eventually(Duration::from_secs(30), || async {
        overall_health(&server).await == ServingStatus::Serving as i32
    })
    .await;
    assert!(serving, "health never turned SERVING");

    // Another session locks the table, so the one pooled connection waits
    // behind the lock with the first Count.
    let mut locker = lock_docs_table(&server.database_url).await;
    let mut first_client = server.documents().await;
    let first = tokio::spawn(async move { first_client.count(count_request()).await });
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let blocked = eventually(Duration::from_secs(30), || {
        let observer = observer.clone();
        async move { fathom_sessions(&observer, "wait_event_type = 'Lock'").await == 1 }
    })
    .await;
    assert!(blocked, "the first Count never waited on the lock");

    let status = server.documents().await.count(count_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("busy") && status.message().contains("retry"),
        "{status:?}"
    );
    assert_eq!(overall_health(&server).await, ServingStatus::Serving as i32);

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let counted = first.await.unwrap().unwrap().into_inner().count;
    assert_eq!(counted, 0);
}

/// One gRPC message as its own HTTP/2 DATA frame, as a client that writes
/// each message as it is produced does (tonic coalesces ready messages).
fn grpc_frame(message: &impl prost::Message) -> bytes::Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame.into()
}

/// The length-prefixed gRPC messages in `buffer`, decoded, leaving any partial one.
fn take_messages<M: prost::Message + Default>(buffer: &mut Vec<u8>) -> Vec<M> {
    let mut messages = Vec::new();
    while buffer.len() >= 5 {
        let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
        if buffer.len() < 5 + length {
            break;
        }
        messages.push(M::decode(&buffer[5..5 + length]).unwrap());
        buffer.drain(..5 + length);
    }
    messages
}

#[tokio::test]
async fn thousands_of_pipelined_one_document_batches_are_all_acked_and_the_connection_lives() {
    let server = server_with_docs(Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await)).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let grpc_request = |path: &str| {
        http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", server.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap()
    };

    let (response, mut stream) = client
        .send_request(grpc_request("/fathom.v1.Documents/UpsertStream"), false)
        .unwrap();
    let open = pb::UpsertStreamRequest {
        request: Some(pb::upsert_stream_request::Request::Open(pb::OpenStream {
            collection: "docs".into(),
            ..Default::default()
        })),
    };
    stream.send_data(grpc_frame(&open), false).unwrap();
    const BATCHES: u64 = 5000;
    // Every batch goes out, one frame each, before any ack is read; h2's
    // flow control (the server's windows) paces the sending.
    for sequence in 1..=BATCHES {
        let batch = pb::UpsertStreamRequest {
            request: Some(pb::upsert_stream_request::Request::Batch(pb::UpsertBatch {
                sequence,
                documents: vec![tiny(sequence)],
                first_position: None,
            })),
        };
        let frame = grpc_frame(&batch);
        stream.reserve_capacity(frame.len());
        while stream.capacity() < frame.len() {
            std::future::poll_fn(|cx| stream.poll_capacity(cx))
                .await
                .unwrap()
                .unwrap();
        }
        stream.send_data(frame, sequence == BATCHES).unwrap();
    }

    // An unrelated call on the same connection still gets its answer.
    let (count_response, mut count_stream) = client
        .send_request(grpc_request("/fathom.v1.Documents/Count"), false)
        .unwrap();
    count_stream.send_data(grpc_frame(&count_request()), true).unwrap();
    let count_response = match count_response.await {
        Ok(response) => response,
        Err(error) => panic!("the connection died: {error} ({:?})", connection.await),
    };
    let mut count_body = count_response.into_body();
    while let Some(chunk) = count_body.data().await {
        count_body
            .flow_control()
            .release_capacity(chunk.unwrap().len())
            .unwrap();
    }

    let mut body = response.await.unwrap().into_body();
    let mut buffer = Vec::new();
    let mut acks = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("the stream is not reset");
        body.flow_control().release_capacity(chunk.len()).unwrap();
        buffer.extend_from_slice(&chunk);
        for message in take_messages::<pb::UpsertStreamResponse>(&mut buffer) {
            if let Some(pb::upsert_stream_response::Response::Ack(ack)) = message.response {
                acks.push(ack);
            }
        }
    }
    let trailers = body.trailers().await.unwrap().expect("gRPC trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.to_str().unwrap()),
        Some("0"),
        "{trailers:?}"
    );
    assert_eq!(acks.len() as u64, BATCHES);
    assert!(acks.iter().all(|a| a.rejection.is_none() && a.documents_written == 1));
    let stored = server
        .documents()
        .await
        .count(count_request())
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(stored, BATCHES);
    drop(client);
    connection.abort();
}

/// Resident memory of a process, in bytes (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

#[tokio::test]
async fn never_read_searches_and_scrolls_of_megabyte_documents_pin_no_connection_and_little_memory() {
    let server = ServeProcess::start().await;
    let channel = server.channel().await;
    pb::collections_client::CollectionsClient::new(channel.clone())
        .create_collection(collection_request("docs", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    // 1,000,000 bytes of text each, of few distinct words (a small tsvector).
    let text = "vector search keeps memory bounded ".repeat(1_000_000 / 35);
    let mut documents =
        pb::documents_client::DocumentsClient::new(channel.clone()).max_encoding_message_size(64 * 1024 * 1024);
    for chunk in 0..3u64 {
        let batch = (0..10)
            .map(|i| pb::Document {
                text: text.clone(),
                ..tiny(chunk * 10 + i)
            })
            .collect();
        documents
            .upsert(pb::UpsertRequest {
                collection: "docs".into(),
                tenant: String::new(),
                documents: batch,
            })
            .await
            .unwrap();
    }
    let search_request = pb::SearchRequest {
        collection: "docs".into(),
        vector: vec![1.0, 2.0, 0.5],
        limit: 10,
        include: Some(pb::Include {
            text: true,
            metadata: true,
            vector: true,
        }),
        ..Default::default()
    };
    let scroll_request = pb::ScrollRequest {
        collection: "docs".into(),
        ..Default::default()
    };
    // Warm up: one of each, read to the end.
    let mut search = pb::search_client::SearchClient::new(channel.clone());
    let mut hits = search.search(search_request.clone()).await.unwrap().into_inner();
    // Past the first hit, the hits' fields exceed a page: they are read as
    // the stream reaches them, and arrive whole.
    let mut read = 0;
    while let Some(hit) = hits.message().await.unwrap() {
        assert_eq!(hit.text.len(), text.len(), "hit {read} carries its whole text");
        assert_eq!(hit.vector.len(), 3, "hit {read} carries its vector");
        read += 1;
    }
    assert_eq!(read, 10);
    let mut scrolled = documents.scroll(scroll_request.clone()).await.unwrap().into_inner();
    read = 0;
    while scrolled.message().await.unwrap().is_some() {
        read += 1;
    }
    assert_eq!(read, 30);
    let before = resident_bytes(server.child.id());

    // 20 searches and 20 scrolls, each on a connection of its own, whose
    // responses are never read.
    let mut unread = Vec::new();
    for _ in 0..20 {
        let mut search = pb::search_client::SearchClient::new(server.channel().await);
        let hits = search.search(search_request.clone()).await.unwrap().into_inner();
        let mut documents = pb::documents_client::DocumentsClient::new(server.channel().await);
        let scrolled = documents.scroll(scroll_request.clone()).await.unwrap().into_inner();
        unread.push((hits, scrolled));
    }

    // Another client is answered: no pooled connection is held by the 40
    // streams (the pool has 16), and no statement of theirs is still running.
    let started = std::time::Instant::now();
    let count = documents
        .count(count_request())
        .await
        .expect("Count is answered")
        .into_inner()
        .count;
    let answered_in = started.elapsed();
    assert_eq!(count, 30);
    // Each stream's first page is read as tonic polls for its first
    // message; then nothing of theirs runs or holds a connection.
    let settled = no_statement_of_fathom_runs(&server.database_url).await;
    assert!(settled, "statements of unread streams still hold connections");
    let after = resident_bytes(server.child.id());
    let grown = after.saturating_sub(before);
    // Held as designed: each stream's first page, one megabyte document,
    // read and encoded (about 2 MiB, so some 80 MiB for 40), plus what the
    // allocator's per-thread arenas keep (75 to 100 MiB in all, measured).
    // Read ahead, the streams would hold every hit and document they will
    // send: 20 × 10 + 20 × 30 megabyte documents. A quarter of that
    // separates the two however the allocator lays memory out.
    let read_ahead = (20 * 10 + 20 * 30) * text.len() as u64;
    assert!(
        grown < read_ahead / 4,
        "fathom's resident memory grew by {} MiB with 40 unread streams, against {} MiB if they had read \
         ahead (Count answered in {answered_in:?})",
        grown / (1024 * 1024),
        read_ahead / (1024 * 1024)
    );
    eprintln!(
        "40 unread streams: RSS grew {} MiB; Count answered in {answered_in:?}",
        grown / (1024 * 1024)
    );
    drop(unread);
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_cancelled_with_deadline_exceeded_and_writes_nothing() {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.statement_timeout = Duration::from_millis(500);
    let server = server_with_docs(config).await;
    // A lock nobody releases: without a timeout, these calls would wait forever.
    let mut locker = lock_docs_table(&server.database_url).await;
    let mut documents = server.documents().await;
    let status = documents.count(count_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("statement timeout"), "{status:?}");
    let upsert = pb::UpsertRequest {
        collection: "docs".into(),
        tenant: String::new(),
        documents: vec![tiny(1)],
    };
    let status = documents.upsert(upsert).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let stored = documents.count(count_request()).await.unwrap().into_inner().count;
    assert_eq!(stored, 0, "the cancelled upsert wrote nothing");
}

/// An UpsertStream opened on `channel` that sends nothing, not even its
/// open message; its sender is returned to keep it so.
async fn idle_stream(
    channel: tonic::transport::Channel,
) -> Result<
    (
        tokio::sync::mpsc::Sender<pb::UpsertStreamRequest>,
        tonic::Streaming<pb::UpsertStreamResponse>,
    ),
    tonic::Status,
> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let responses = pb::documents_client::DocumentsClient::new(channel)
        .upsert_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await?
        .into_inner();
    Ok((sender, responses))
}

#[tokio::test]
async fn never_read_searches_and_idle_streams_leave_other_clients_the_database_and_health_the_truth() {
    const UNREAD_SEARCHES: usize = 20;
    const IDLE_STREAMS: usize = 300;
    let config = Config::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    let (max_streams, pool) = (config.max_open_streams, config.max_connections as usize);
    let server = server_with_docs(config).await;
    // 100 KB texts: a search of them all is far more than HTTP/2 lets the
    // server send to a client that does not read.
    let text = "one slow reader must not take the database from the others ".repeat(100_000 / 60);
    let mut documents = server.documents().await.max_encoding_message_size(64 * 1024 * 1024);
    documents
        .upsert(pb::UpsertRequest {
            collection: "docs".into(),
            tenant: String::new(),
            documents: (0..60)
                .map(|i| pb::Document {
                    text: text.clone(),
                    ..tiny(i)
                })
                .collect(),
        })
        .await
        .unwrap();
    let search = pb::SearchRequest {
        collection: "docs".into(),
        vector: vec![1.0, 2.0, 0.5],
        limit: 1000,
        ..Default::default()
    };
    let mut unread = Vec::new();
    for _ in 0..UNREAD_SEARCHES {
        let mut client = pb::search_client::SearchClient::new(server.channel().await);
        unread.push(
            client
                .search(search.clone())
                .await
                .expect("a search is admitted")
                .into_inner(),
        );
    }
    // 300 streams over 5 connections (each may hold 128 calls).
    let connections = futures::future::join_all((0..5).map(|_| server.channel())).await;
    let opened = futures::future::join_all((0..IDLE_STREAMS).map(|i| idle_stream(connections[i % 5].clone()))).await;
    let (idle, refused): (Vec<_>, Vec<_>) = opened.into_iter().partition(Result::is_ok);
    assert_eq!(
        idle.len(),
        max_streams - UNREAD_SEARCHES,
        "streams are admitted up to the stream limit, searches included"
    );
    for refusal in refused.into_iter().map(|r| r.err().unwrap()) {
        assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
        assert!(refusal.message().contains("--max-open-streams"), "{refusal:?}");
    }

    // Another client: answered, with a pooled connection to spare.
    let mut other = pb::documents_client::DocumentsClient::new(server.channel().await);
    let started = std::time::Instant::now();
    let count = other
        .count(count_request())
        .await
        .expect("Count is answered")
        .into_inner()
        .count;
    let answered_in = started.elapsed();
    assert_eq!(count, 60);
    assert_eq!(overall_health(&server).await, ServingStatus::Serving as i32);
    let settled = no_statement_of_fathom_runs(&server.database_url).await;
    assert!(
        settled,
        "unread searches or idle streams hold some of the pool's {pool} connections"
    );
    eprintln!(
        "{UNREAD_SEARCHES} unread searches and {} idle streams open: Count answered in {answered_in:?}",
        idle.len()
    );
    drop((unread, idle));
}
