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
    // Requests work again on the same server, after at most a few failures on stale connections.
    let recovered = eventually(Duration::from_secs(5), || async {
        server
            .collections()
            .await
            .list_collections(fathom_api::v1::ListCollectionsRequest {})
            .await
            .is_ok()
    });
    assert!(recovered.await);
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
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
    }
}
