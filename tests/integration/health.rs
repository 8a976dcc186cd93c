//! Health follows the database; reflection lists the services.

use std::time::Duration;

use fathom_tests::{PrivateCluster, TestServer, eventually};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn status_of(server: &TestServer, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(server.channel().await);
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status())
}

#[tokio::test]
async fn every_service_is_serving_while_the_database_answers() {
    let server = TestServer::start().await;
    for service in fathom_server::health::SERVICES {
        let serving = eventually(Duration::from_secs(5), || async {
            status_of(&server, service).await == Some(ServingStatus::Serving)
        });
        assert!(serving.await, "{service:?} should be SERVING");
    }
}

#[tokio::test]
async fn health_turns_not_serving_when_postgres_stops_and_back_when_it_returns() {
    let cluster = PrivateCluster::start();
    let server = TestServer::start_with(fathom_server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        cluster.url(),
    ))
    .await;
    let is = |wanted| {
        let server = &server;
        move || async move { status_of(server, "").await == Some(wanted) }
    };
    assert!(eventually(Duration::from_secs(5), is(ServingStatus::Serving)).await);

    let stop = cluster.pg.clone();
    tokio::task::spawn_blocking(move || stop.stop(true))
        .await
        .unwrap()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), is(ServingStatus::NotServing)).await,
        "NOT_SERVING within 5 s"
    );
    let status = server
        .collections()
        .await
        .list_collections(fathom_api::v1::ListCollectionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    let start = cluster.pg.clone();
    tokio::task::spawn_blocking(move || start.restart())
        .await
        .unwrap()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), is(ServingStatus::Serving)).await,
        "SERVING within 5 s"
    );
    server
        .collections()
        .await
        .list_collections(fathom_api::v1::ListCollectionsRequest {})
        .await
        .expect("once SERVING, requests work");
}

#[tokio::test]
async fn once_serving_after_a_postgres_crash_the_first_requests_succeed_on_a_pool_that_was_full() {
    use fathom_api::v1 as pb;
    let cluster = PrivateCluster::start();
    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), cluster.url());
    config.max_connections = 4;
    let server = crate::support::configured_server_with_collection(config, "docs", 4).await;
    let count = || {
        let server = &server;
        async move {
            let request = pb::CountRequest {
                collection: "docs".into(),
                ..Default::default()
            };
            server.documents().await.count(request).await
        }
    };
    // Fill the pool: concurrent requests until PostgreSQL shows every
    // connection fathom may hold.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url())
        .await
        .unwrap();
    loop {
        let results = futures::future::join_all((0..16).map(|_| count())).await;
        assert!(results.iter().all(Result::is_ok));
        let pooled: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fathom'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if pooled == 4 {
            break;
        }
    }
    drop(db);
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status(), ServingStatus::Serving);

    let pg = cluster.pg.clone();
    let home_cluster = std::sync::Arc::new(cluster);
    let crashed = home_cluster.clone();
    tokio::task::spawn_blocking(move || {
        crashed.kill_postmaster();
        crashed.restart_after_crash();
    })
    .await
    .unwrap();
    assert!(pg.is_running());
    let mut seen = Vec::new();
    while seen.last() != Some(&ServingStatus::Serving) || !seen.contains(&ServingStatus::NotServing) {
        let next = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("health changes within 30 s")
            .unwrap()
            .unwrap();
        seen.push(next.status());
    }
    for attempt in 0..12 {
        if let Err(status) = count().await {
            panic!("request {attempt} after SERVING failed: {status:?}");
        }
    }
    server
        .collections()
        .await
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .expect("and every other service works");
}

#[tokio::test]
async fn watch_streams_the_change_to_not_serving() {
    let cluster = PrivateCluster::start();
    let server = TestServer::start_with(fathom_server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        cluster.url(),
    ))
    .await;
    let search_serving = || async { status_of(&server, "fathom.v1.Search").await == Some(ServingStatus::Serving) };
    assert!(eventually(Duration::from_secs(5), search_serving).await);
    let mut client = HealthClient::new(server.channel().await);
    let mut watch = client
        .watch(HealthCheckRequest {
            service: "fathom.v1.Search".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let stop = cluster.pg.clone();
    tokio::task::spawn_blocking(move || stop.stop(false))
        .await
        .unwrap()
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an update within 5 s");
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn while_health_says_the_database_is_down_calls_fail_at_once_with_unavailable() {
    use fathom_api::v1 as pb;
    let cluster = PrivateCluster::start();
    let config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), cluster.url());
    let server = crate::support::configured_server_with_collection(config, "docs", 3).await;
    let stop = cluster.pg.clone();
    tokio::task::spawn_blocking(move || stop.stop(true))
        .await
        .unwrap()
        .unwrap();
    let down = || async { status_of(&server, "").await == Some(ServingStatus::NotServing) };
    assert!(
        eventually(Duration::from_secs(30), down).await,
        "health never said NOT_SERVING"
    );

    // Refused by what the probe knows, not after waiting out the pool's
    // connect timeout: the message says so.
    let started = std::time::Instant::now();
    let refusals = [
        server
            .documents()
            .await
            .count(pb::CountRequest {
                collection: "docs".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        server
            .collections()
            .await
            .list_collections(pb::ListCollectionsRequest {})
            .await
            .unwrap_err(),
        server
            .search()
            .await
            .search(pb::SearchRequest {
                collection: "docs".into(),
                vector: vec![1.0, 0.0, 0.0],
                ..Default::default()
            })
            .await
            .unwrap_err(),
    ];
    let refused_in = started.elapsed();
    for status in refusals {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("the database is down") && status.message().contains("retry with backoff"),
            "{status:?}"
        );
    }
    eprintln!("three calls refused in {refused_in:?} while the database was down");

    let start = cluster.pg.clone();
    tokio::task::spawn_blocking(move || start.restart())
        .await
        .unwrap()
        .unwrap();
    let up = || async { status_of(&server, "").await == Some(ServingStatus::Serving) };
    assert!(
        eventually(Duration::from_secs(30), up).await,
        "health never said SERVING again"
    );
    server
        .collections()
        .await
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .expect("once SERVING, calls are served again");
}

#[tokio::test]
async fn on_sigterm_an_open_watch_sees_not_serving_and_ends_and_fathom_exits_without_waiting_out_its_grace() {
    // A grace long enough that waiting it out would fail the test.
    let mut server = crate::serve_process::ServeProcess::start_with(&["--shutdown-grace-seconds", "120"]).await;
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let mut search_watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest {
            service: "fathom.v1.Search".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        search_watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    server.terminate();
    let terminated = std::time::Instant::now();
    for watch in [&mut watch, &mut search_watch] {
        let last = tokio::time::timeout(Duration::from_secs(60), watch.next())
            .await
            .expect("the watch hears of the shutdown");
        assert_eq!(last.unwrap().unwrap().status(), ServingStatus::NotServing);
        let end = tokio::time::timeout(Duration::from_secs(60), watch.next())
            .await
            .expect("the watch ends");
        assert!(end.is_none(), "the watch ends cleanly: {end:?}");
    }
    let exit = server
        .exited_within(Duration::from_secs(60))
        .await
        .expect("fathom exits without waiting out its 120 s grace for the watches");
    assert!(exit.success(), "{exit:?}");
    eprintln!(
        "with two watches open, fathom exited {:?} after SIGTERM",
        terminated.elapsed()
    );
}

#[tokio::test]
async fn on_sigterm_an_idle_fathom_with_a_client_connected_exits_without_waiting_out_its_grace() {
    let mut server = crate::serve_process::ServeProcess::start_with(&["--shutdown-grace-seconds", "120"]).await;
    // A client that made a call and keeps its connection.
    let channel = server.channel().await;
    fathom_api::v1::collections_client::CollectionsClient::new(channel.clone())
        .list_collections(fathom_api::v1::ListCollectionsRequest {})
        .await
        .unwrap();
    server.terminate();
    let terminated = std::time::Instant::now();
    let exit = server
        .exited_within(Duration::from_secs(60))
        .await
        .expect("an idle fathom exits without waiting out its grace");
    assert!(exit.success(), "{exit:?}");
    eprintln!("idle fathom exited {:?} after SIGTERM", terminated.elapsed());
    drop(channel);
}

#[tokio::test]
async fn reflection_lists_every_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("a list of services")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "fathom.v1.Collections",
        "fathom.v1.Documents",
        "fathom.v1.Search",
        "fathom.v1.Keys",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
    }
}
