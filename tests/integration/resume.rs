//! Resumable UpsertStreams at the protocol level: progress by document
//! position, whatever the batch sizes; refusals of batches that do not
//! continue the committed prefix, of sequence numbers out of range, and of
//! streams whose collection went away.

use fathom_api::v1 as pb;
use fathom_server::domain::IdsDigest;
use fathom_tests::TestServer;
use sqlx::Connection;
use tonic::Code;

use crate::serve_process::ServeProcess;
use crate::support::{UpsertSession, collection_request, document};

const DIM: usize = 16;

async fn server_with_collection(name: &str) -> TestServer {
    crate::support::server_with_collection(name, DIM).await
}

fn id(i: usize) -> String {
    format!("doc-{i:06}")
}

/// Documents at input positions `first..first + size`.
fn batch(first: usize, size: usize) -> Vec<pb::Document> {
    (first..first + size).map(|i| document(&id(i), DIM, i as u64)).collect()
}

async fn sql_count(database_url: &str, sql: &str) -> i64 {
    let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
}

/// Counts every UPDATE of a row of `fathom_data.docs`, so a test can show
/// that no document was written twice.
async fn audit_rewrites(database_url: &str) {
    let mut db = sqlx::PgConnection::connect(database_url).await.unwrap();
    for statement in [
        "CREATE TABLE public.rewrites (id text)",
        "CREATE FUNCTION public.note_rewrite() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO public.rewrites VALUES (NEW.id); RETURN NULL; END $$",
        "CREATE TRIGGER rewrites AFTER UPDATE ON fathom_data.docs \
         FOR EACH ROW EXECUTE FUNCTION public.note_rewrite()",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
}

fn rejection_of(ack: &pb::BatchAck) -> &pb::BatchRejection {
    ack.rejection
        .as_ref()
        .unwrap_or_else(|| panic!("expected a refusal: {ack:?}"))
}

#[tokio::test]
async fn a_broken_stream_resumes_by_position_with_another_batch_size_each_document_written_once() {
    let server = server_with_collection("docs").await;
    audit_rewrites(&server.database_url).await;
    let mut client = server.documents().await;
    {
        let mut session = UpsertSession::open(&mut client, "docs", "", "import-1").await.unwrap();
        assert_eq!(session.opened.committed_documents, 0);
        for n in 0..8 {
            session.send_at(n + 1, n * 50, batch(n as usize * 50, 50)).await;
        }
        for n in 1..=5 {
            let ack = session.next_ack().await.unwrap().unwrap();
            assert_eq!((ack.documents_written, ack.committed_documents), (50, n * 50));
        }
        // The client goes away with the acks of batches 6 to 8 unread (lost);
        // the server still commits them.
        session.finish().await.unwrap();
    }
    drop(client);

    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "import-1").await.unwrap();
    let committed = session.opened.committed_documents;
    assert_eq!(committed, 400, "the batches whose acks were lost are committed");
    let resumed_at = committed as usize;
    assert_eq!(session.opened.last_id, id(resumed_at - 1));
    let mut digest = IdsDigest::default();
    digest.extend((0..resumed_at).map(id).collect::<Vec<_>>().iter().map(String::as_str));
    assert_eq!(session.opened.ids_digest, digest.as_bytes().to_vec());

    // A batch wholly committed is acknowledged again and not rewritten.
    let mut replay = batch(0, 50);
    replay[0].text = "changed".into();
    session.send_at(1, 0, replay).await;
    let ack = session.next_ack().await.unwrap().unwrap();
    assert!(ack.already_committed && ack.documents_written == 0, "{ack:?}");
    assert_eq!(ack.committed_documents, committed);

    // Batches of 70 from 20 documents before the committed position: the
    // first one straddles it and only its last 50 are written.
    let mut first = resumed_at - 20;
    let mut sequence = 2;
    while first < 1000 {
        let size = 70.min(1000 - first);
        session.send_at(sequence, first as u64, batch(first, size)).await;
        let ack = session.next_ack().await.unwrap().unwrap();
        let expected = (first + size).saturating_sub(first.max(resumed_at));
        assert_eq!(
            (ack.documents_written as usize, ack.committed_documents as usize),
            (expected, first + size),
            "{ack:?}"
        );
        first += size;
        sequence += 1;
    }
    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await,
        1000
    );
    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM public.rewrites").await,
        0,
        "no document was written twice"
    );
    drop(session);
    let reopened = UpsertSession::open(&mut client, "docs", "", "import-1").await.unwrap();
    assert_eq!(reopened.opened.committed_documents, 1000);
}

#[tokio::test]
async fn a_stream_broken_on_one_server_resumes_exactly_on_another_server_of_the_same_database() {
    let first = server_with_collection("docs").await;
    let second = TestServer::start_with(fathom_server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        first.database_url.clone(),
    ))
    .await;
    audit_rewrites(&first.database_url).await;
    {
        let mut client = first.documents().await;
        let mut session = UpsertSession::open(&mut client, "docs", "", "handover").await.unwrap();
        for n in 0..4 {
            session.send_at(n + 1, n * 100, batch(n as usize * 100, 100)).await;
            let ack = session.next_ack().await.unwrap().unwrap();
            assert_eq!((ack.documents_written, ack.committed_documents), (100, (n + 1) * 100));
        }
        // The connection goes away without the stream's end: no half-close,
        // the HTTP/2 stream and the channel are simply dropped.
        drop(session);
        drop(client);
    }

    let mut client = second.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "handover").await.unwrap();
    assert_eq!(session.opened.committed_documents, 400, "{:?}", session.opened);
    assert_eq!(session.opened.last_id, id(399));
    let mut digest = IdsDigest::default();
    digest.extend((0..400).map(id).collect::<Vec<_>>().iter().map(String::as_str));
    assert_eq!(session.opened.ids_digest, digest.as_bytes().to_vec());
    for n in 4..10 {
        session.send_at(n + 1, n * 100, batch(n as usize * 100, 100)).await;
        let ack = session.next_ack().await.unwrap().unwrap();
        assert_eq!((ack.documents_written, ack.committed_documents), (100, (n + 1) * 100));
    }
    session.finish().await.unwrap();

    let mut db = sqlx::PgConnection::connect(&first.database_url).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM fathom_data.docs ORDER BY id")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, (0..1000).map(id).collect::<Vec<_>>(), "every document, once");
    assert_eq!(
        sql_count(&first.database_url, "SELECT count(*) FROM public.rewrites").await,
        0,
        "no document was written twice"
    );
}

#[tokio::test]
async fn a_batch_that_does_not_continue_the_committed_prefix_is_refused_and_writes_nothing() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    session.send_at(1, 0, batch(0, 100)).await;
    assert_eq!(session.next_ack().await.unwrap().unwrap().committed_documents, 100);

    // Starts past the committed prefix: documents 100..150 would be missing.
    session.send_at(2, 150, batch(150, 10)).await;
    let gap = session.next_ack().await.unwrap().unwrap();
    let rejection = rejection_of(&gap);
    assert_eq!(rejection.code, Code::FailedPrecondition as i32);
    assert_eq!(rejection.violations[0].field, "batch.first_position");
    assert!(rejection.message.contains("from position 100"), "{}", rejection.message);
    assert_eq!((gap.documents_written, gap.committed_documents), (0, 100));

    // Straddles it, but the document at position 99 is another one: other data.
    session.send_at(3, 90, batch(5000, 20)).await;
    let other = session.next_ack().await.unwrap().unwrap();
    let rejection = rejection_of(&other);
    assert_eq!(rejection.code, Code::FailedPrecondition as i32);
    assert!(rejection.message.contains("other data"), "{}", rejection.message);

    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await,
        100
    );
    session.send_at(4, 100, batch(100, 10)).await;
    let ack = session.next_ack().await.unwrap().unwrap();
    assert_eq!((ack.documents_written, ack.committed_documents), (10, 110), "{ack:?}");
}

#[tokio::test]
async fn sequence_numbers_and_positions_beyond_what_is_stored_are_refused_and_write_nothing() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    let refused = |field: &'static str| {
        move |ack: pb::BatchAck| {
            let rejection = rejection_of(&ack);
            assert_eq!(rejection.code, Code::InvalidArgument as i32, "{rejection:?}");
            assert_eq!(rejection.violations[0].field, field, "{rejection:?}");
            assert!(
                rejection.message.contains("9223372036854775807")
                    || field != "batch.sequence"
                    || rejection.message.contains("increase"),
                "{rejection:?}"
            );
        }
    };
    for sequence in [1u64 << 63, u64::MAX, 0] {
        session.send_at(sequence, 0, batch(0, 5)).await;
        refused("batch.sequence")(session.next_ack().await.unwrap().unwrap());
    }
    session.send_at(7, 0, batch(0, 5)).await;
    assert_eq!(session.next_ack().await.unwrap().unwrap().documents_written, 5);
    for sequence in [7, 3] {
        session.send_at(sequence, 5, batch(5, 5)).await;
        refused("batch.sequence")(session.next_ack().await.unwrap().unwrap());
    }
    session.send(8, batch(5, 5)).await;
    refused("batch.first_position")(session.next_ack().await.unwrap().unwrap());
    session.send_at(9, (1u64 << 63) - 3, batch(5, 5)).await;
    refused("batch.first_position")(session.next_ack().await.unwrap().unwrap());

    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await,
        5
    );
    drop(session);
    let reopened = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    assert_eq!(reopened.opened.committed_documents, 5);
}

async fn delete_collection(server: &TestServer, name: &str) {
    server
        .collections()
        .await
        .delete_collection(pb::DeleteCollectionRequest { name: name.into() })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_collection_dropped_under_open_streams_ends_them_not_found() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let mut resumable = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    let mut plain = UpsertSession::open(&mut client, "docs", "", "").await.unwrap();
    resumable.send_at(1, 0, batch(0, 10)).await;
    assert_eq!(resumable.next_ack().await.unwrap().unwrap().documents_written, 10);

    delete_collection(&server, "docs").await;
    resumable.send_at(2, 10, batch(10, 10)).await;
    plain.send(1, batch(100, 10)).await;
    for session in [&mut resumable, &mut plain] {
        let status = session.next_ack().await.expect_err("the stream ends with an error");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.message().contains("docs"), "{status:?}");
    }
    let tables = sql_count(
        &server.database_url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'fathom_data' AND tablename = 'docs'",
    )
    .await;
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn a_collection_recreated_under_open_streams_ends_them_failed_precondition_and_writes_nothing() {
    let server = server_with_collection("docs").await;
    let mut client = server.documents().await;
    let mut resumable = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    let mut plain = UpsertSession::open(&mut client, "docs", "", "").await.unwrap();
    resumable.send_at(1, 0, batch(0, 10)).await;
    assert_eq!(resumable.next_ack().await.unwrap().unwrap().documents_written, 10);

    delete_collection(&server, "docs").await;
    // Same name, multi-tenant and another dimension: nothing of the old
    // streams' batches fits it, and none may land in it.
    let mut again = collection_request("docs", DIM as u32 * 2, pb::DistanceMetric::Cosine);
    again.multi_tenant = true;
    server.collections().await.create_collection(again).await.unwrap();

    resumable.send_at(2, 10, batch(10, 10)).await;
    plain.send(1, batch(100, 10)).await;
    for session in [&mut resumable, &mut plain] {
        let status = session.next_ack().await.expect_err("the stream ends with an error");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("created again"), "{status:?}");
    }
    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await,
        0
    );
    // The new collection's streams start afresh.
    let fresh = UpsertSession::open(&mut client, "docs", "acme", "s").await.unwrap();
    assert_eq!(fresh.opened.committed_documents, 0);
}

#[tokio::test]
async fn on_shutdown_open_streams_end_unavailable_after_their_batch_and_the_server_exits_within_its_grace() {
    let server = server_with_collection("docs").await;
    let database_url = server.database_url.clone();
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "s").await.unwrap();
    // A slow writer: one batch, then the next only after its ack.
    for n in 0..3 {
        session.send_at(n + 1, n * 10, batch(n as usize * 10, 10)).await;
        assert_eq!(
            session.next_ack().await.unwrap().unwrap().committed_documents,
            (n + 1) * 10
        );
    }
    let grace = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), "").shutdown_grace;
    let stopped = tokio::spawn(server.stop());
    let ended = session.next_ack().await.expect_err("the stream ends with the shutdown");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"), "{ended:?}");
    // Generous: the point is that it exits at all while a client holds a
    // stream open (it used to wait for the client for ever).
    tokio::time::timeout(grace * 3, stopped)
        .await
        .expect("the server exits within its grace")
        .unwrap();
    assert_eq!(
        sql_count(&database_url, "SELECT count(*) FROM fathom_data.docs").await,
        30
    );
}

#[tokio::test]
async fn sigterm_while_a_stream_sends_a_batch_a_second_exits_within_the_grace_and_keeps_every_acked_batch() {
    const GRACE_SECONDS: u64 = 5;
    let mut server = ServeProcess::start_with(&["--shutdown-grace-seconds", &GRACE_SECONDS.to_string()]).await;
    let channel = server.channel().await;
    pb::collections_client::CollectionsClient::new(channel.clone())
        .create_collection(collection_request("docs", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let mut client = pb::documents_client::DocumentsClient::new(channel);
    let mut session = UpsertSession::open(&mut client, "docs", "", "slow").await.unwrap();

    let mut acked = 0;
    let mut ended = None;
    for n in 0..60u64 {
        if n == 3 {
            server.terminate();
        }
        // After SIGTERM the server may end the stream before this batch is
        // sent; then the send fails and the next read gets the status.
        let _sent = session.try_send_at(n + 1, n * 10, batch(n as usize * 10, 10)).await;
        match session.next_ack().await {
            Ok(Some(ack)) => acked = ack.committed_documents,
            Ok(None) => break,
            Err(status) => {
                ended = Some(status);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let ended = ended.expect("the stream ends with an error status after SIGTERM");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"), "{ended:?}");
    assert!(acked >= 30, "the batches before SIGTERM were acked ({acked})");

    // The documented bound: the grace, then the pool's close (1 s).
    let exit = server
        .exited_within(std::time::Duration::from_secs(GRACE_SECONDS + 2))
        .await
        .expect("fathom exits within its shutdown grace");
    assert!(exit.success(), "fathom exits cleanly on SIGTERM: {exit:?}");
    let stored = sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await;
    assert_eq!(stored as u64, acked, "every acked document is stored, and nothing else");
}

#[tokio::test]
async fn a_stream_that_sends_nothing_for_the_idle_limit_ends_unavailable_and_resumes_where_it_stopped() {
    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    config.limits.stream_idle_timeout = std::time::Duration::from_secs(1);
    let server = crate::support::configured_server_with_collection(config, "docs", DIM).await;
    let mut client = server.documents().await;
    let mut session = UpsertSession::open(&mut client, "docs", "", "idle").await.unwrap();
    session.send_at(1, 0, batch(0, 10)).await;
    assert_eq!(session.next_ack().await.unwrap().unwrap().committed_documents, 10);

    // Then nothing, with the stream held open.
    let ended = session.next_ack().await.expect_err("the idle stream is ended");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("idle limit") && ended.message().contains("--stream-idle-timeout-seconds"),
        "{ended:?}"
    );
    let resumed = UpsertSession::open(&mut client, "docs", "", "idle").await.unwrap();
    assert_eq!(resumed.opened.committed_documents, 10, "what was acked is kept");
    resumed.send_at(2, 10, batch(10, 10)).await;
    assert_eq!(resumed.finish().await.unwrap().last().unwrap().committed_documents, 20);

    // A stream that never sends its open message ends the same way.
    let (_sender, receiver) = tokio::sync::mpsc::channel::<pb::UpsertStreamRequest>(1);
    let mut silent = client
        .upsert_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let ended = silent.message().await.expect_err("the silent stream is ended");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_eq!(
        sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await,
        20
    );
}

#[tokio::test]
async fn four_clients_opening_one_stream_id_at_once_with_the_same_input_each_write_or_hear_already_committed() {
    const ROUNDS: usize = 100;
    const WRITERS: usize = 4;
    let server = server_with_collection("docs").await;
    audit_rewrites(&server.database_url).await;
    let channels = futures::future::join_all((0..WRITERS).map(|_| server.channel())).await;
    for round in 0..ROUNDS {
        let stream_id = format!("race-{round}");
        let writers = channels.iter().map(|channel| {
            let mut client = pb::documents_client::DocumentsClient::new(channel.clone());
            let stream_id = stream_id.clone();
            async move {
                let session = UpsertSession::open(&mut client, "docs", "", &stream_id).await?;
                for n in 0..3u64 {
                    session
                        .send_at(n + 1, n * 10, batch(round * 30 + n as usize * 10, 10))
                        .await;
                }
                session.finish().await
            }
        });
        for outcome in futures::future::join_all(writers).await {
            let acks = outcome.unwrap_or_else(|status| panic!("round {round}: {status:?}"));
            assert_eq!(acks.len(), 3, "round {round}: {acks:?}");
            for ack in &acks {
                assert!(ack.rejection.is_none(), "round {round}: {ack:?}");
                assert!(
                    ack.already_committed == (ack.documents_written == 0),
                    "round {round}: {ack:?}"
                );
            }
            assert_eq!(acks[2].committed_documents, 30, "round {round}");
        }
    }
    let stored = sql_count(&server.database_url, "SELECT count(*) FROM fathom_data.docs").await;
    assert_eq!(stored as usize, ROUNDS * 30);
    let committed = sql_count(
        &server.database_url,
        "SELECT sum(committed_documents)::bigint FROM fathom.upsert_streams",
    )
    .await;
    assert_eq!(committed, stored, "the streams' committed counts equal the rows");
    let rewrites = sql_count(&server.database_url, "SELECT count(*) FROM public.rewrites").await;
    assert_eq!(rewrites, 0, "no document was written twice");
}
