//! Read replicas on loopback: a real primary, a real streaming standby made
//! by `fathom postgres start --replica-of`, and a server routing reads to
//! it. Which database served a read is told by the routing counters; when
//! the standby has replayed a write is read from the standby itself
//! (`pg_last_wal_replay_lsn()`), never guessed from time. Its lag is made
//! by `recovery_min_apply_delay`: an hour where a test needs the standby
//! not to have replayed a write, so nothing depends on the machine's speed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_api::v1::documents_client::DocumentsClient;
use fathom_server::Config;
use fathom_tests::{PrivateCluster, TestServer, eventually, fathom_binary, postgres_install_dir};
use sqlx::Connection;
use tonic::Code;
use tonic::transport::Channel;

use crate::metrics::{scrape, value};
use crate::serve_process::ServeProcess;
use crate::support::{assert_violation, collection_request, document, search};

/// A streaming standby of a [`PrivateCluster`], made and started by the
/// `fathom` binary. Dropping it stops it and removes its files.
struct Standby {
    home: PathBuf,
    port: u16,
    primary_url: String,
}

impl Standby {
    /// Copies `primary` with pg_basebackup and starts following it.
    fn of(primary: &PrivateCluster) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = std::env::temp_dir().join(format!("fathom_standby_{}_{port}", std::process::id()));
        let standby = Self {
            home,
            port,
            primary_url: primary.pg.url("postgres"),
        };
        standby.start(None);
        standby
    }

    fn fathom_postgres(&self, verb: &str) -> Command {
        let mut command = Command::new(fathom_binary());
        command
            .args(["postgres", verb, "--install-dir"])
            .arg(postgres_install_dir())
            .arg("--home")
            .arg(&self.home)
            .args(["--port", &self.port.to_string()]);
        command
    }

    /// `fathom postgres start --replica-of …`, with `--apply-delay` if given.
    fn start(&self, apply_delay: Option<&str>) {
        let mut start = self.fathom_postgres("start");
        start.args(["--ephemeral", "--replica-of", &self.primary_url]);
        if let Some(delay) = apply_delay {
            start.args(["--apply-delay", delay]);
        }
        let output = start.output().unwrap();
        assert!(
            output.status.success(),
            "fathom postgres start --replica-of: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn stop(&self) {
        let output = self.fathom_postgres("stop").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }

    /// The URL of its `fathom` database (the primary's, replicated).
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/fathom", self.port)
    }

    /// The `replica` label of its metrics.
    fn label(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether it has replayed the WAL up to `token` (a write's consistency token).
    async fn has_replayed(&self, token: &str) -> bool {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await.unwrap();
        sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
            .bind(token)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = self.fathom_postgres("stop").output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Reads routed so far with this consistency to `served_by`.
async fn routed(server: &TestServer, consistency: &str, served_by: &str) -> f64 {
    let text = scrape(server.metrics_addr.expect("metrics")).await;
    value(
        &text,
        "fathom_reads_routed_total",
        &[("consistency", consistency), ("served_by", served_by)],
    )
}

/// Whether the server has the replica in rotation now.
async fn in_rotation(server: &TestServer, replica: &str) -> bool {
    let text = scrape(server.metrics_addr.expect("metrics")).await;
    value(&text, "fathom_replica_in_rotation", &[("replica", replica)]) == 1.0
}

fn get(id: &str, consistency: Option<pb::read_consistency::Choice>) -> pb::GetRequest {
    pb::GetRequest {
        collection: "docs".into(),
        tenant: String::new(),
        ids: vec![id.into()],
        include: None,
        consistency: consistency.map(|choice| pb::ReadConsistency { choice: Some(choice) }),
    }
}

async fn upsert(documents: &mut DocumentsClient<Channel>, id: &str) -> String {
    let response = documents
        .upsert(pb::UpsertRequest {
            collection: "docs".into(),
            tenant: String::new(),
            documents: vec![document(id, 3, 1)],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!response.consistency_token.is_empty(), "an upsert carries its token");
    response.consistency_token
}

async fn found(documents: &mut DocumentsClient<Channel>, request: pb::GetRequest) -> bool {
    !documents.get(request).await.unwrap().into_inner().documents.is_empty()
}

#[tokio::test]
async fn reads_go_to_a_replica_that_has_replayed_what_they_must_see_and_to_the_primary_otherwise() {
    use pb::read_consistency::Choice;

    let primary = PrivateCluster::start();
    let standby = Standby::of(&primary);
    let replica = standby.label();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), primary.url());
    config.replica_urls = vec![standby.url()];
    // The delayed standby lags by design; it stays in rotation.
    config.replicas.max_lag = Duration::from_secs(3600);
    config.replicas.token_wait = Duration::from_millis(200);
    config.health_interval = Duration::from_millis(100);
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start_with(config).await;
    assert!(
        in_rotation(&server, &replica).await,
        "a healthy standby is in rotation at start"
    );
    let created = server
        .collections()
        .await
        .create_collection(collection_request("docs", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !created.consistency_token.is_empty(),
        "CreateCollection carries its token"
    );
    let mut documents = server.documents().await;

    // Without a token, a read goes to the replica, once it has the write.
    let first = upsert(&mut documents, "first").await;
    assert!(eventually(Duration::from_secs(30), || standby.has_replayed(&first)).await);
    let before = routed(&server, "eventual", &replica).await;
    assert!(found(&mut documents, get("first", None)).await);
    assert_eq!(routed(&server, "eventual", &replica).await, before + 1.0);
    // Searches too; but those with a keyword leg on a collection ranked by
    // BM25 go to the primary (pg_textsearch keeps recent postings in the
    // primary's memory, which a standby does not have).
    let before = (
        routed(&server, "eventual", &replica).await,
        routed(&server, "eventual", "primary").await,
    );
    for (vector, text) in [(true, false), (false, true), (true, true)] {
        let request = pb::SearchRequest {
            collection: "docs".into(),
            vector: if vector {
                document("first", 3, 1).vector
            } else {
                Vec::new()
            },
            text: text.then(|| "first".to_owned()),
            limit: 5,
            ..Default::default()
        };
        let hits = search(&server, request).await.unwrap();
        assert_eq!(
            hits.iter().map(|hit| hit.id.as_str()).collect::<Vec<_>>(),
            ["first"],
            "vector {vector}, text {text}"
        );
    }
    let after = (
        routed(&server, "eventual", &replica).await,
        routed(&server, "eventual", "primary").await,
    );
    assert_eq!(after, (before.0 + 1.0, before.1 + 2.0));

    // A stopped replica leaves the rotation; reads go on, on the primary.
    standby.stop();
    assert!(
        eventually(Duration::from_secs(30), || async {
            !in_rotation(&server, &replica).await
        })
        .await
    );
    let before = routed(&server, "eventual", "primary").await;
    assert!(found(&mut documents, get("first", None)).await);
    assert_eq!(routed(&server, "eventual", "primary").await, before + 1.0);

    // Back, and an hour behind: in rotation again, and eventual reads go to
    // it, which has not replayed the next write and cannot for an hour.
    standby.start(Some("1h"));
    assert!(eventually(Duration::from_secs(30), || in_rotation(&server, &replica)).await);
    let second = upsert(&mut documents, "second").await;
    let before = routed(&server, "eventual", &replica).await;
    assert!(
        !found(&mut documents, get("second", None)).await,
        "an eventual read on the delayed replica does not see the write yet"
    );
    assert_eq!(routed(&server, "eventual", &replica).await, before + 1.0);
    assert!(!standby.has_replayed(&second).await);

    // With the write's token, the primary serves it once the wait passes.
    let before = routed(&server, "token", "primary").await;
    assert!(found(&mut documents, get("second", Some(Choice::AfterToken(second.clone())))).await);
    assert_eq!(routed(&server, "token", "primary").await, before + 1.0);
    // So does a strong read, at once.
    let before = routed(&server, "strong", "primary").await;
    assert!(found(&mut documents, get("second", Some(Choice::Strong(true)))).await);
    assert_eq!(routed(&server, "strong", "primary").await, before + 1.0);

    // The Rust SDK reads its own writes: it sends the newest token of its
    // writes with its reads, unless told not to.
    let client = fathom_client::Client::connect(server.url()).await.unwrap();
    assert_eq!(client.consistency_token(), None);
    client
        .upsert(
            "docs",
            "",
            vec![fathom_client::Document::new("sdk", vec![1.0, 0.0, 0.0])],
        )
        .await
        .unwrap();
    let token = client.consistency_token().expect("the upsert's token");
    assert!(!standby.has_replayed(&token).await);
    assert_eq!(client.get("docs", "", &["sdk".into()]).await.unwrap().len(), 1);
    let eventual = client.clone().without_read_your_writes();
    assert!(eventual.get("docs", "", &["sdk".into()]).await.unwrap().is_empty());
    assert_eq!(client.count("docs", "", None).await.unwrap(), 3);

    // Once the replica has replayed it, the replica serves a read with the token.
    let mut conn = sqlx::PgConnection::connect(&standby.url()).await.unwrap();
    sqlx::query("ALTER SYSTEM SET recovery_min_apply_delay = 0")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()").execute(&mut conn).await.unwrap();
    assert!(eventually(Duration::from_secs(30), || standby.has_replayed(&second)).await);
    let before = routed(&server, "token", &replica).await;
    assert!(found(&mut documents, get("second", Some(Choice::AfterToken(second.clone())))).await);
    assert_eq!(routed(&server, "token", &replica).await, before + 1.0);

    // As the issue has it: 2 s behind, a read with the token never misses
    // the write, whoever serves it.
    sqlx::query("ALTER SYSTEM SET recovery_min_apply_delay = '2s'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()").execute(&mut conn).await.unwrap();
    let third = upsert(&mut documents, "third").await;
    let before = routed(&server, "token", &replica).await + routed(&server, "token", "primary").await;
    assert!(found(&mut documents, get("third", Some(Choice::AfterToken(third)))).await);
    let after = routed(&server, "token", &replica).await + routed(&server, "token", "primary").await;
    assert_eq!(after, before + 1.0);

    // A token fathom did not make is refused, naming the field.
    let refused = documents
        .get(get("third", Some(Choice::AfterToken("yesterday".into()))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_violation(&refused, Code::InvalidArgument, "consistency.after_token");
    server.stop().await;
}

#[tokio::test]
async fn fathom_serve_takes_its_replicas_from_repeated_flags_or_a_comma_separated_environment_variable() {
    let primary = PrivateCluster::start();
    let (one, two) = (Standby::of(&primary), Standby::of(&primary));
    let in_rotation = |metrics_addr| {
        let labels = [one.label(), two.label()];
        async move {
            let text = scrape(metrics_addr).await;
            labels
                .iter()
                .map(|replica| value(&text, "fathom_replica_in_rotation", &[("replica", replica)]))
                .collect::<Vec<_>>()
        }
    };
    let metrics_listen = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };

    let metrics_addr = metrics_listen();
    let (url_one, url_two, metrics) = (one.url(), two.url(), metrics_addr.to_string());
    let flags = [
        "--replica-url",
        &url_one,
        "--replica-url",
        &url_two,
        "--metrics-listen",
        &metrics,
    ];
    let by_flags = ServeProcess::start_on(primary.url(), "127.0.0.1", &flags, None, &[]).await;
    assert_eq!(in_rotation(metrics_addr).await, [1.0, 1.0]);
    drop(by_flags);

    let metrics_addr = metrics_listen();
    let (both, metrics) = (format!("{url_one},{url_two}"), metrics_addr.to_string());
    let env = [("FATHOM_REPLICA_URLS", both.as_str())];
    let by_env = ServeProcess::start_on(primary.url(), "127.0.0.1", &["--metrics-listen", &metrics], None, &env).await;
    assert_eq!(in_rotation(metrics_addr).await, [1.0, 1.0]);
    drop(by_env);
}
