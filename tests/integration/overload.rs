//! A server under overload and misbehaving clients: every refusal is a
//! clear status, and no client can stall the others.

use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_server::Config;
use fathom_tests::{TestServer, eventually, fresh_database};
use sqlx::Connection;
use tonic::Code;

use crate::support::collection_request;

async fn server_with_docs(config: Config) -> TestServer {
    let server = TestServer::start_with(config).await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    server
}

fn count_request() -> pb::CountRequest {
    pb::CountRequest {
        collection: "docs".into(),
        tenant: String::new(),
        filter: None,
    }
}

fn tiny(id: u64) -> pb::Document {
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

    // Another session locks the table, so the one pooled connection waits
    // behind the lock with the first Count.
    let mut locker = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE fathom_data.docs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let mut first_client = server.documents().await;
    let first = tokio::spawn(async move { first_client.count(count_request()).await });
    let observer = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let blocked = eventually(Duration::from_secs(30), || {
        let observer = observer.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fathom' AND wait_event_type = 'Lock'",
            )
            .fetch_one(&observer)
            .await
            .unwrap()
                == 1
        }
    })
    .await;
    assert!(blocked, "the first Count never waited on the lock");

    let status = server.documents().await.count(count_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("busy") && status.message().contains("retry"),
        "{status:?}"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        serving,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

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
