//! API keys: authentication, roles, tenant and collection bindings,
//! revocation across servers, and keys kept out of logs.

use std::time::{Duration, Instant};

use fathom_api::v1 as pb;
use fathom_server::{Authentication, Config};
use fathom_tests::{TestServer, fathom_binary, fresh_database};
use pb::collections_client::CollectionsClient;
use pb::documents_client::DocumentsClient;
use pb::keys_client::KeysClient;
use pb::search_client::SearchClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::serve_process::ServeProcess;
use crate::support::{collection_request, document};

const DIMENSION: usize = 4;

/// Sends a key with every call, as `authorization: Bearer` or `api-key`.
#[derive(Clone)]
pub(crate) struct SendsKey {
    key: Option<String>,
    header: &'static str,
}

impl tonic::service::Interceptor for SendsKey {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = &self.key {
            let value = match self.header {
                "authorization" => format!("Bearer {key}"),
                _ => key.clone(),
            };
            request.metadata_mut().insert(self.header, value.parse().unwrap());
        }
        Ok(request)
    }
}

pub(crate) type Keyed = InterceptedService<Channel, SendsKey>;

/// Stubs of one server that send one key (or none).
pub(crate) struct As {
    pub(crate) collections: CollectionsClient<Keyed>,
    pub(crate) documents: DocumentsClient<Keyed>,
    pub(crate) search: SearchClient<Keyed>,
    pub(crate) keys: KeysClient<Keyed>,
}

impl As {
    pub(crate) fn new(channel: Channel, key: Option<&str>, header: &'static str) -> Self {
        let sends = SendsKey {
            key: key.map(str::to_owned),
            header,
        };
        Self {
            collections: CollectionsClient::with_interceptor(channel.clone(), sends.clone()),
            documents: DocumentsClient::with_interceptor(channel.clone(), sends.clone()),
            search: SearchClient::with_interceptor(channel.clone(), sends.clone()),
            keys: KeysClient::with_interceptor(channel, sends),
        }
    }

    pub(crate) async fn key(server: &TestServer, key: &str) -> Self {
        Self::new(server.channel().await, Some(key), "authorization")
    }

    /// CreateCollection of a cosine collection of `DIMENSION`.
    pub(crate) async fn create(&mut self, name: &str, multi_tenant: bool) -> Result<(), tonic::Status> {
        let request = pb::CreateCollectionRequest {
            multi_tenant,
            ..collection_request(name, DIMENSION as u32, pb::DistanceMetric::Cosine)
        };
        self.collections.create_collection(request).await.map(drop)
    }

    /// The names ListCollections shows.
    pub(crate) async fn list(&mut self) -> Result<Vec<String>, tonic::Status> {
        let listed = self.collections.list_collections(pb::ListCollectionsRequest {}).await?;
        Ok(listed.into_inner().collections.into_iter().map(|c| c.name).collect())
    }
}

/// Runs `fathom keys ARGS` against `database_url`; its stdout (the key, for create).
pub(crate) fn keys(database_url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(fathom_binary())
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "fathom keys {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A server with authentication on, on a database that already holds the
/// keys `grants` describe (so the server reads them at start); the keys in order.
pub(crate) async fn server_with_keys(grants: &[&[&str]]) -> (TestServer, Vec<String>) {
    let database_url = fresh_database().await;
    let created = grants
        .iter()
        .map(|grant| keys(&database_url, &[&["create"], *grant].concat()))
        .collect();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), database_url);
    config.authentication = Authentication::ApiKeys;
    (TestServer::start_with(config).await, created)
}

fn tenant_document(id: &str, tenant: &str) -> pb::Document {
    pb::Document {
        tenant: tenant.into(),
        ..document(id, DIMENSION, id.len() as u64)
    }
}

pub(crate) async fn upsert(
    client: &mut As,
    collection: &str,
    tenant: &str,
    ids: &[&str],
) -> Result<u32, tonic::Status> {
    let documents = ids.iter().map(|id| tenant_document(id, "")).collect();
    let request = pb::UpsertRequest {
        collection: collection.into(),
        tenant: tenant.into(),
        documents,
    };
    Ok(client.documents.upsert(request).await?.into_inner().documents_written)
}

pub(crate) async fn count(client: &mut As, collection: &str, tenant: &str) -> Result<u64, tonic::Status> {
    let request = pb::CountRequest {
        collection: collection.into(),
        tenant: tenant.into(),
        filter: None,
        consistency: None,
    };
    Ok(client.documents.count(request).await?.into_inner().count)
}

/// Opens an UpsertStream and sends one batch: the first error, if any.
async fn stream_one_batch(client: &mut As, collection: &str, tenant: &str) -> Result<(), tonic::Status> {
    use pb::upsert_stream_request::Request as Message;
    let messages = vec![
        pb::UpsertStreamRequest {
            request: Some(Message::Open(pb::OpenStream {
                collection: collection.into(),
                tenant: tenant.into(),
                ..Default::default()
            })),
        },
        pb::UpsertStreamRequest {
            request: Some(Message::Batch(pb::UpsertBatch {
                sequence: 1,
                documents: vec![tenant_document("streamed", "")],
                ..Default::default()
            })),
        },
    ];
    let mut responses = client
        .documents
        .upsert_stream(tokio_stream::iter(messages))
        .await?
        .into_inner();
    while let Some(response) = responses.message().await? {
        if let Some(pb::upsert_stream_response::Response::Ack(ack)) = response.response
            && let Some(rejection) = ack.rejection
        {
            panic!("batch rejected: {rejection:?}");
        }
    }
    Ok(())
}

pub(crate) fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, names: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(names),
        "message should name {names:?}: {:?}",
        status.message()
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthenticated_while_health_stays_open() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let admin = &created[0];
    let channel = server.channel().await;

    let mut anonymous = As::new(channel.clone(), None, "authorization");
    let refused = anonymous.list().await;
    assert_code(refused, Code::Unauthenticated, "authorization: Bearer");

    let mut garbage = As::new(channel.clone(), Some("not-a-key"), "authorization");
    let refused = garbage.list().await;
    assert_code(refused, Code::Unauthenticated, "not a fathom key");
    // Of the shape a reader would take from "fathom_<id>_<secret>": told the exact one.
    let mut near_miss = As::new(channel.clone(), Some("fathom_abc_def"), "authorization");
    let refused = near_miss.list().await;
    assert_code(
        refused,
        Code::Unauthenticated,
        "its id (between `fathom_` and the next `_`) has 3 characters, not 12",
    );

    // Right shape, right id, wrong secret: refused, and the secret is not echoed.
    let forged = format!("{}{}", &admin[..admin.len() - 4], "0000");
    let mut forger = As::new(channel.clone(), Some(&forged), "authorization");
    let status = forger.list().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains(&forged[20..]), "{status:?}");

    let mut by_api_key_header = As::new(channel.clone(), Some(admin), "api-key");
    by_api_key_header
        .list()
        .await
        .expect("a valid key in the api-key header is accepted");

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health needs no key");
}

#[tokio::test]
async fn a_read_key_cannot_write_or_change_collections_and_nothing_is_written() {
    let (server, created) = server_with_keys(&[&["--role", "admin"], &["--role", "read"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    let mut reader = As::key(&server, &created[1]).await;
    admin.create("docs", false).await.unwrap();

    assert_code(
        upsert(&mut reader, "docs", "", &["a"]).await,
        Code::PermissionDenied,
        "needs role write",
    );
    assert_code(
        stream_one_batch(&mut reader, "docs", "").await,
        Code::PermissionDenied,
        "needs role write",
    );
    let delete = reader
        .documents
        .delete(pb::DeleteRequest {
            collection: "docs".into(),
            selector: Some(pb::delete_request::Selector::Ids(pb::IdCondition {
                ids: vec!["a".into()],
            })),
            ..Default::default()
        })
        .await;
    assert_code(delete, Code::PermissionDenied, "needs role write");
    let update = reader
        .documents
        .update(pb::UpdateRequest {
            collection: "docs".into(),
            selector: Some(pb::update_request::Selector::Ids(pb::IdCondition {
                ids: vec!["a".into()],
            })),
            text: Some("changed".into()),
            ..Default::default()
        })
        .await;
    assert_code(update, Code::PermissionDenied, "needs role write");
    let drop = reader
        .collections
        .delete_collection(pb::DeleteCollectionRequest { name: "docs".into() })
        .await;
    assert_code(drop, Code::PermissionDenied, "needs role admin");
    let create = reader.create("other", false).await;
    assert_code(create, Code::PermissionDenied, "has role read");

    assert_eq!(count(&mut reader, "docs", "").await.unwrap(), 0, "a read key reads");
    let names = admin.list().await.unwrap();
    assert_eq!(names, ["docs"], "the refused create made nothing");
}

#[tokio::test]
async fn a_tenant_bound_key_touches_only_its_tenant_whatever_the_request_says() {
    let (server, created) = server_with_keys(&[&["--role", "admin"], &["--role", "write", "--tenant", "a"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    let mut tenant_a = As::key(&server, &created[1]).await;
    admin.create("shared", true).await.unwrap();
    admin.create("single", false).await.unwrap();
    assert_eq!(upsert(&mut admin, "shared", "b", &["b1", "b2"]).await.unwrap(), 2);
    assert_eq!(
        upsert(&mut tenant_a, "shared", "a", &["a1"]).await.unwrap(),
        1,
        "its own tenant"
    );

    let bound = "bound to tenant \"a\"";
    assert_code(
        upsert(&mut tenant_a, "shared", "b", &["x"]).await,
        Code::PermissionDenied,
        bound,
    );
    assert_code(
        stream_one_batch(&mut tenant_a, "shared", "b").await,
        Code::PermissionDenied,
        bound,
    );
    assert_code(count(&mut tenant_a, "shared", "b").await, Code::PermissionDenied, bound);
    let get = tenant_a
        .documents
        .get(pb::GetRequest {
            collection: "shared".into(),
            tenant: "b".into(),
            ids: vec!["b1".into()],
            ..Default::default()
        })
        .await;
    assert_code(get, Code::PermissionDenied, bound);
    let scroll = tenant_a
        .documents
        .scroll(pb::ScrollRequest {
            collection: "shared".into(),
            tenant: "b".into(),
            ..Default::default()
        })
        .await;
    assert_code(scroll, Code::PermissionDenied, bound);
    let search = tenant_a
        .search
        .search(pb::SearchRequest {
            collection: "shared".into(),
            tenant: "b".into(),
            vector: vec![1.0; DIMENSION],
            ..Default::default()
        })
        .await;
    assert_code(search, Code::PermissionDenied, bound);
    let delete = tenant_a
        .documents
        .delete(pb::DeleteRequest {
            collection: "shared".into(),
            tenant: "b".into(),
            selector: Some(pb::delete_request::Selector::Ids(pb::IdCondition {
                ids: vec!["b1".into()],
            })),
        })
        .await;
    assert_code(delete, Code::PermissionDenied, bound);
    let update = tenant_a
        .documents
        .update(pb::UpdateRequest {
            collection: "shared".into(),
            tenant: "b".into(),
            selector: Some(pb::update_request::Selector::Ids(pb::IdCondition {
                ids: vec!["b1".into()],
            })),
            text: Some("changed".into()),
            ..Default::default()
        })
        .await;
    assert_code(update, Code::PermissionDenied, bound);
    // A document naming tenant b inside a request for tenant a.
    let smuggled = tenant_a
        .documents
        .upsert(pb::UpsertRequest {
            collection: "shared".into(),
            tenant: "a".into(),
            documents: vec![tenant_document("smuggled", "b")],
        })
        .await;
    assert_eq!(smuggled.unwrap_err().code(), Code::InvalidArgument);
    // A collection without tenants is no tenant's; its stats span every tenant.
    assert_code(
        upsert(&mut tenant_a, "single", "", &["x"]).await,
        Code::PermissionDenied,
        bound,
    );
    let stats = tenant_a
        .collections
        .get_collection_stats(pb::GetCollectionStatsRequest { name: "shared".into() })
        .await;
    assert_code(stats, Code::PermissionDenied, "spans every tenant");

    // Its own searches see only its own documents.
    let hits: Vec<String> = {
        let mut stream = tenant_a
            .search
            .search(pb::SearchRequest {
                collection: "shared".into(),
                tenant: "a".into(),
                vector: vec![1.0; DIMENSION],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut ids = Vec::new();
        while let Some(hit) = stream.message().await.unwrap() {
            ids.push(hit.id);
        }
        ids
    };
    assert_eq!(hits, ["a1"]);
    assert_eq!(count(&mut admin, "shared", "b").await.unwrap(), 2, "tenant b untouched");
    assert_eq!(
        count(&mut admin, "shared", "a").await.unwrap(),
        1,
        "nothing smuggled in"
    );
    assert_eq!(count(&mut admin, "single", "").await.unwrap(), 0);
}

#[tokio::test]
async fn a_collection_bound_key_sees_and_touches_only_its_collections() {
    let (server, created) =
        server_with_keys(&[&["--role", "admin"], &["--role", "admin", "--collection", "mine"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    let mut bound = As::key(&server, &created[1]).await;
    for name in ["mine", "theirs"] {
        admin.create(name, false).await.unwrap();
    }
    let listed = bound.list().await.unwrap();
    assert_eq!(listed, ["mine"]);
    assert_eq!(upsert(&mut bound, "mine", "", &["m"]).await.unwrap(), 1);
    assert_code(
        upsert(&mut bound, "theirs", "", &["t"]).await,
        Code::PermissionDenied,
        "\"theirs\"",
    );
    // Refused like a collection outside the binding: a bound key cannot tell
    // which collections exist.
    let missing = bound
        .collections
        .get_collection(pb::GetCollectionRequest { name: "nowhere".into() })
        .await;
    assert_code(missing, Code::PermissionDenied, "\"nowhere\"");
    let drop = bound
        .collections
        .delete_collection(pb::DeleteCollectionRequest { name: "theirs".into() })
        .await;
    assert_code(drop, Code::PermissionDenied, "\"theirs\"");
    assert_eq!(count(&mut admin, "theirs", "").await.unwrap(), 0);
}

/// Whether `key` is refused as UNAUTHENTICATED by `process` (a read call).
async fn refused_by(process: &ServeProcess, key: &str) -> bool {
    let mut client = As::new(process.channel().await, Some(key), "authorization");
    match client.list().await {
        Ok(_) => false,
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            true
        }
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_within_a_second_by_every_server_and_its_successor_works() {
    let database_url = fresh_database().await;
    let old = keys(&database_url, &["create", "--role", "read", "--description", "old"]);
    let first = ServeProcess::start_on(database_url.clone(), "127.0.0.1", &["--auth"], None, &[]).await;
    let second = ServeProcess::start_on(database_url.clone(), "127.0.0.1", &["--auth"], None, &[]).await;
    for server in [&first, &second] {
        assert!(!refused_by(server, &old).await, "the key works before it is revoked");
    }
    // Rotation: the new key works alongside the old one before the old is
    // revoked, from its first call on (a miss reads the keys again).
    let new = keys(&database_url, &["create", "--role", "read", "--description", "new"]);
    for server in [&first, &second] {
        assert!(
            !refused_by(server, &new).await,
            "a new key is accepted at once by every server"
        );
        assert!(!refused_by(server, &old).await, "two keys are valid at once");
    }

    let old_id = &old["fathom_".len().."fathom_".len() + 12];
    keys(&database_url, &["revoke", old_id]);
    let revoked = Instant::now();
    let mut refused = [false, false];
    while refused != [true, true] && revoked.elapsed() < Duration::from_secs(5) {
        for (i, server) in [&first, &second].into_iter().enumerate() {
            if !refused[i] && refused_by(server, &old).await {
                refused[i] = true;
                assert!(
                    revoked.elapsed() < Duration::from_secs(1),
                    "server {i} refused the revoked key only after {:?}",
                    revoked.elapsed()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refused, [true, true], "every server refuses the revoked key");
    for server in [&first, &second] {
        assert!(!refused_by(server, &new).await, "the successor still works");
    }
    let listed = keys(&database_url, &["list"]);
    let old_line = listed.lines().find(|l| l.starts_with(old_id)).unwrap();
    assert!(
        old_line.contains(" revoked "),
        "the list shows the revocation: {old_line}"
    );
    assert!(
        !listed.contains(&old[20..]) && !listed.contains(&new[20..]),
        "no secret is listed"
    );
}

#[tokio::test]
async fn keys_never_appear_in_the_log_while_the_audit_names_their_ids() {
    let database_url = fresh_database().await;
    let admin = keys(&database_url, &["create", "--role", "admin"]);
    let log = std::env::temp_dir().join(format!("fathom-auth-log-{}.txt", std::process::id()));
    let server = ServeProcess::start_on(database_url.clone(), "127.0.0.1", &["--auth"], Some(&log), &[]).await;
    let channel = server.channel().await;
    let client_channel = channel.clone();
    let mut client = As::new(channel.clone(), Some(&admin), "authorization");
    client.create("logged", false).await.unwrap();
    upsert(&mut client, "logged", "", &["a", "b"]).await.unwrap();
    stream_one_batch(&mut client, "logged", "").await.unwrap();
    let mut by_header = As::new(channel.clone(), Some(&admin), "api-key");
    count(&mut by_header, "logged", "").await.unwrap();
    let unknown = format!("fathom_{}_{}", "ab".repeat(6), "cd".repeat(32));
    let mut stranger = As::new(channel, Some(&unknown), "authorization");
    assert!(count(&mut stranger, "logged", "").await.is_err());
    let admin_id = &admin["fathom_".len().."fathom_".len() + 12];
    keys(&database_url, &["revoke", admin_id]);
    let refused = fathom_tests::eventually(Duration::from_secs(5), || {
        let mut client = As::new(client_channel.clone(), Some(&admin), "authorization");
        async move { count(&mut client, "logged", "").await.is_err() }
    })
    .await;
    assert!(refused);

    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    for (name, key) in [("admin", &admin), ("unknown", &unknown)] {
        let secret = &key[key.len() - 64..];
        assert!(!text.contains(secret), "the {name} key's secret is in the log");
    }
    let audit: Vec<&str> = text.lines().filter(|l| l.contains("fathom::audit")).collect();
    for action in ["create_collection", "upsert", "upsert_stream"] {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(admin_id) && l.contains(action) && l.contains("logged")),
            "no audit line of {action} by key {admin_id}: {audit:#?}"
        );
    }
    assert!(
        audit
            .iter()
            .any(|l| l.contains("unauthenticated") && l.contains(&unknown[7..19])),
        "refusals are audited by key id: {audit:#?}"
    );
}

#[tokio::test]
async fn serving_beyond_loopback_without_auth_is_refused_unless_insecure_no_auth() {
    let output = std::process::Command::new(fathom_binary())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("without authentication")
            && message.contains("--auth")
            && message.contains("--insecure-no-auth"),
        "{message}"
    );
    let insecure = ServeProcess::start_on(fresh_database().await, "0.0.0.0", &["--insecure-no-auth"], None, &[]).await;
    let mut anyone = As::new(insecure.channel().await, None, "authorization");
    anyone.list().await.expect("told explicitly, it serves without keys");
}
