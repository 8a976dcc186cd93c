//! API keys managed over gRPC (the Keys service) and key expiry: keys made
//! by CreateKey work at once, ListKeys never shows a secret, RevokeKey
//! takes effect at once, only admins manage keys, an admin bound to a
//! tenant or collections (or expiring) cannot mint a wider key, expired
//! keys are refused, and bad requests name their field and write nothing.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Timelike, Utc};
use fathom_api::v1 as pb;
use fathom_server::auth::GeneratedKey;
use fathom_server::domain::{KeyGrant, Role};
use fathom_server::store::{NewApiKey, Store};
use tonic::Code;

use crate::auth::{As, assert_code, count, keys, server_with_keys, upsert};
use crate::support::{assert_violation, violated_fields};

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn create_request(role: pb::KeyRole, description: &str) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest {
        role: role as i32,
        description: description.into(),
        ..Default::default()
    }
}

/// CreateKey: the key's text and its record.
async fn create_key(client: &mut As, request: pb::CreateKeyRequest) -> Result<(String, pb::ApiKey), tonic::Status> {
    let created = client.keys.create_key(request).await?.into_inner();
    Ok((created.key, created.api_key.expect("CreateKey returns the record")))
}

/// The keys ListKeys shows `client`.
async fn list_keys(client: &mut As) -> Vec<pb::ApiKey> {
    client
        .keys
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
}

async fn revoke(client: &mut As, id: &str) -> Result<pb::ApiKey, tonic::Status> {
    let revoked = client.keys.revoke_key(pb::RevokeKeyRequest { id: id.into() }).await?;
    Ok(revoked.into_inner().api_key.expect("RevokeKey returns the record"))
}

fn id_of(key: &str) -> &str {
    &key["fathom_".len().."fathom_".len() + 12]
}

fn secret_of(key: &str) -> &str {
    &key[key.len() - 64..]
}

#[tokio::test]
async fn a_key_created_over_grpc_works_at_once_and_is_listed_without_its_secret() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    admin.create("shared", true).await.unwrap();
    let expires_at = Utc::now() + TimeDelta::days(30);
    let (key, record) = create_key(
        &mut admin,
        pb::CreateKeyRequest {
            tenant: Some("a".into()),
            collections: vec!["shared".into(), "later".into()],
            expire_time: Some(timestamp(expires_at)),
            ..create_request(pb::KeyRole::Write, "ingest for tenant a")
        },
    )
    .await
    .unwrap();
    assert_eq!(record.id, id_of(&key));
    assert_eq!(record.role, pb::KeyRole::Write as i32);
    assert_eq!(record.tenant.as_deref(), Some("a"));
    assert_eq!(record.collections, ["later", "shared"], "sorted");
    assert_eq!(record.description, "ingest for tenant a");
    assert_eq!(record.state, pb::KeyState::Active as i32);
    assert_eq!(
        record.expire_time,
        Some(timestamp(expires_at.trunc_subsecs(6))),
        "kept to the microsecond"
    );
    assert_eq!(record.revoke_time, None);

    let mut writer = As::key(&server, &key).await;
    assert_eq!(upsert(&mut writer, "shared", "a", &["w1"]).await.unwrap(), 1);
    assert_code(
        upsert(&mut writer, "shared", "b", &["w2"]).await,
        Code::PermissionDenied,
        "bound to tenant \"a\"",
    );

    let listed = list_keys(&mut admin).await;
    assert_eq!(listed.len(), 2, "the admin key and the new one: {listed:?}");
    assert_eq!(listed[1], record, "oldest first, as created");
    assert!(
        !format!("{listed:?}").contains(secret_of(&key)) && !format!("{listed:?}").contains(secret_of(&created[0])),
        "no secret is listed"
    );
    // The CLI reads the same table.
    let table = keys(&server.database_url, &["list"]);
    let line = table.lines().find(|l| l.starts_with(&record.id)).unwrap();
    assert!(
        line.contains("active") && line.contains("ingest for tenant a"),
        "{line}"
    );
    assert!(!table.contains(secret_of(&key)), "{table}");
}

#[tokio::test]
async fn a_key_revoked_over_grpc_is_refused_at_once_and_revoking_again_changes_nothing() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    admin.create("docs", false).await.unwrap();
    let (key, record) = create_key(&mut admin, create_request(pb::KeyRole::Read, "to revoke"))
        .await
        .unwrap();
    let mut reader = As::key(&server, &key).await;
    assert_eq!(count(&mut reader, "docs", "").await.unwrap(), 0, "the key works");

    let revoked = revoke(&mut admin, &record.id).await.unwrap();
    assert_eq!(revoked.state, pb::KeyState::Revoked as i32);
    let revoke_time = revoked.revoke_time.expect("a revoke time");
    // The server that revoked it read its keys again before answering.
    assert_code(
        count(&mut reader, "docs", "").await,
        Code::Unauthenticated,
        "revoked or never existed",
    );

    let again = revoke(&mut admin, &record.id)
        .await
        .expect("revoking twice is harmless");
    assert_eq!(again.revoke_time, Some(revoke_time), "the first revocation stands");
    let unknown = revoke(&mut admin, "0123456789ab").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(unknown.message().contains("0123456789ab"), "{unknown:?}");
    // A whole key pasted as the id: refused, and its secret not echoed.
    let pasted = revoke(&mut admin, &key).await.unwrap_err();
    assert_violation(&pasted, Code::InvalidArgument, "id");
    assert!(!format!("{pasted:?}").contains(secret_of(&key)), "{pasted:?}");
    let states: Vec<i32> = list_keys(&mut admin).await.iter().map(|k| k.state).collect();
    assert_eq!(states, [pb::KeyState::Active as i32, pb::KeyState::Revoked as i32]);
}

#[tokio::test]
async fn keys_below_admin_cannot_create_list_or_revoke_keys() {
    let (server, created) = server_with_keys(&[&["--role", "admin"], &["--role", "write"], &["--role", "read"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    for key in &created[1..] {
        let mut client = As::key(&server, key).await;
        let create = client
            .keys
            .create_key(create_request(pb::KeyRole::Read, "escalation"))
            .await;
        assert_code(create, Code::PermissionDenied, "needs role admin");
        let list = client.keys.list_keys(pb::ListKeysRequest {}).await;
        assert_code(list, Code::PermissionDenied, "needs role admin");
        let revoked = revoke(&mut client, id_of(&created[0])).await;
        assert_code(revoked, Code::PermissionDenied, "needs role admin");
    }
    let states: Vec<i32> = list_keys(&mut admin).await.iter().map(|k| k.state).collect();
    assert_eq!(states, [pb::KeyState::Active as i32; 3], "nothing created or revoked");
}

#[tokio::test]
async fn a_narrowed_admin_cannot_mint_a_wider_key_and_manages_only_keys_within_its_grant() {
    let (server, created) = server_with_keys(&[
        &["--role", "admin"],
        &[
            "--role",
            "admin",
            "--tenant",
            "a",
            "--collection",
            "mine",
            "--collection",
            "ours",
            "--expires-in",
            "1d",
        ],
    ])
    .await;
    let mut root = As::key(&server, &created[0]).await;
    let mut narrowed = As::key(&server, &created[1]).await;
    let own_expiry = list_keys(&mut root).await[1].expire_time.unwrap();
    let earlier = Some(timestamp(Utc::now() + TimeDelta::hours(1)));
    let within = || pb::CreateKeyRequest {
        tenant: Some("a".into()),
        collections: vec!["mine".into()],
        expire_time: earlier,
        ..create_request(pb::KeyRole::Write, "within")
    };
    let later = prost_types::Timestamp {
        seconds: own_expiry.seconds + 1,
        nanos: 0,
    };
    let wider = [
        (
            "tenant",
            pb::CreateKeyRequest {
                tenant: None,
                ..within()
            },
        ),
        (
            "tenant",
            pb::CreateKeyRequest {
                tenant: Some("b".into()),
                ..within()
            },
        ),
        (
            "collections",
            pb::CreateKeyRequest {
                collections: vec![],
                ..within()
            },
        ),
        (
            "collections",
            pb::CreateKeyRequest {
                collections: vec!["mine".into(), "theirs".into()],
                ..within()
            },
        ),
        (
            "expire_time",
            pb::CreateKeyRequest {
                expire_time: None,
                ..within()
            },
        ),
        (
            "expire_time",
            pb::CreateKeyRequest {
                expire_time: Some(later),
                ..within()
            },
        ),
    ];
    for (field, request) in wider {
        let refused = create_key(&mut narrowed, request.clone()).await;
        let status = refused.expect_err("a wider key is refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{request:?}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "the refusal names {field}: {status:?}"
        );
    }
    assert_eq!(list_keys(&mut root).await.len(), 2, "no refused key was written");

    let (key, record) = create_key(&mut narrowed, within())
        .await
        .expect("a key within its grant");
    assert_eq!(record.collections, ["mine"]);
    let mut minted = As::key(&server, &key).await;
    root.create("mine", true).await.unwrap();
    assert_eq!(upsert(&mut minted, "mine", "a", &["m"]).await.unwrap(), 1);

    // It sees and revokes only keys within its grant: not the root key.
    let seen: Vec<String> = list_keys(&mut narrowed).await.into_iter().map(|k| k.id).collect();
    assert_eq!(seen, [id_of(&created[1]), record.id.as_str()]);
    let status = revoke(&mut narrowed, id_of(&created[0])).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("outside what key"), "{status:?}");
    root.list().await.expect("the root key still works");
    revoke(&mut narrowed, &record.id).await.expect("its own minted key");
}

/// Stores a key that expired an hour ago, as only the store can (CreateKey
/// and `fathom keys create` refuse an expiry in the past); its text.
async fn expired_key(database_url: &str) -> (String, DateTime<Utc>) {
    let store = Store::connect(database_url, 1).await.unwrap();
    let key = GeneratedKey::generate().unwrap();
    let expired_at = (Utc::now() - TimeDelta::hours(1))
        .with_nanosecond(0)
        .expect("a whole second");
    store
        .create_api_key(&NewApiKey {
            id: key.id.clone(),
            secret_sha256: key.secret_sha256,
            grant: KeyGrant {
                role: Role::Admin,
                tenant: None,
                collections: None,
                expires_at: Some(expired_at),
            },
            description: "expired".into(),
        })
        .await
        .unwrap();
    store.close().await;
    (key.text, expired_at)
}

#[tokio::test]
async fn an_expired_key_is_refused_saying_when_it_expired_and_a_wrong_secret_learns_nothing() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    let (key, expired_at) = expired_key(&server.database_url).await;
    let mut expired = As::key(&server, &key).await;
    let shown = expired_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_code(
        expired.list().await,
        Code::Unauthenticated,
        &format!("API key {} expired at {shown}", id_of(&key)),
    );
    // The id of an expired key with a wrong secret: no word of expiry.
    let forged = format!("{}{}", &key[..key.len() - 4], "0000");
    let status = As::key(&server, &forged).await.list().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("expired"), "{status:?}");

    let listed = list_keys(&mut admin).await;
    let record = listed.iter().find(|k| k.id == id_of(&key)).unwrap();
    assert_eq!(record.state, pb::KeyState::Expired as i32);
    let table = keys(&server.database_url, &["list"]);
    let line = table.lines().find(|l| l.starts_with(id_of(&key))).unwrap();
    assert!(line.contains("expired"), "{line}");
}

#[tokio::test]
async fn a_key_in_use_stops_working_at_its_expiry() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    // Whole microseconds, as stored: the server refuses from exactly this time.
    let expires_at = (Utc::now() + TimeDelta::seconds(2)).trunc_subsecs(6);
    let (key, _) = create_key(
        &mut admin,
        pb::CreateKeyRequest {
            expire_time: Some(timestamp(expires_at)),
            ..create_request(pb::KeyRole::Read, "short-lived")
        },
    )
    .await
    .unwrap();
    let mut reader = As::key(&server, &key).await;
    // Used until refused: no refusal before the expiry, and one soon after.
    let refusal = loop {
        match reader.list().await {
            Ok(_) => {
                assert!(
                    Utc::now() < expires_at + TimeDelta::seconds(30),
                    "still accepted long past its expiry"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => break status,
        }
    };
    assert!(Utc::now() >= expires_at, "refused before its expiry: {refusal:?}");
    assert_eq!(refusal.code(), Code::Unauthenticated, "{refusal:?}");
    assert!(refusal.message().contains("expired at"), "{refusal:?}");
}

#[tokio::test]
async fn bad_key_requests_name_their_field_and_write_nothing() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let mut admin = As::key(&server, &created[0]).await;
    let valid = || create_request(pb::KeyRole::Read, "valid");
    let cases = [
        ("role", create_request(pb::KeyRole::Unspecified, "no role")),
        ("role", pb::CreateKeyRequest { role: 99, ..valid() }),
        (
            "tenant",
            pb::CreateKeyRequest {
                tenant: Some(String::new()),
                ..valid()
            },
        ),
        (
            "tenant",
            pb::CreateKeyRequest {
                tenant: Some("t".repeat(257)),
                ..valid()
            },
        ),
        (
            "collections[1]",
            pb::CreateKeyRequest {
                collections: vec!["ok".into(), "Not-A-Name".into()],
                ..valid()
            },
        ),
        ("description", create_request(pb::KeyRole::Read, "")),
        ("description", create_request(pb::KeyRole::Read, &"d".repeat(257))),
        ("description", create_request(pb::KeyRole::Read, "two\nlines")),
        (
            "expire_time",
            pb::CreateKeyRequest {
                expire_time: Some(timestamp(Utc::now() - TimeDelta::seconds(1))),
                ..valid()
            },
        ),
        (
            "expire_time",
            pb::CreateKeyRequest {
                expire_time: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
                ..valid()
            },
        ),
    ];
    for (field, request) in cases {
        let status = create_key(&mut admin, request.clone()).await.unwrap_err();
        assert_violation(&status, Code::InvalidArgument, field);
        assert_eq!(violated_fields(&status), [field], "{request:?}");
    }
    let everything_wrong = pb::CreateKeyRequest {
        role: 0,
        tenant: Some(String::new()),
        collections: vec!["UPPER".into()],
        description: String::new(),
        expire_time: Some(timestamp(Utc::now() - TimeDelta::days(1))),
    };
    let status = create_key(&mut admin, everything_wrong).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["role", "tenant", "collections[0]", "description", "expire_time"],
        "every problem at once"
    );
    assert_eq!(list_keys(&mut admin).await.len(), 1, "no refused key was written");
}

#[tokio::test]
async fn fathom_keys_create_sets_an_expiry_from_a_duration_or_a_time() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let database_url = &server.database_url;
    let before = Utc::now();
    let in_30_days = keys(
        database_url,
        &[
            "create",
            "--role",
            "read",
            "--expires-in",
            "30d",
            "--description",
            "thirty days",
        ],
    );
    let at = keys(
        database_url,
        &["create", "--role", "read", "--expires-at", "2999-01-31T00:00:00Z"],
    );
    let mut admin = As::key(&server, &created[0]).await;
    let listed = list_keys(&mut admin).await;
    let expiry = |key: &str| {
        let record = listed.iter().find(|k| k.id == id_of(key)).unwrap();
        let t = record.expire_time.unwrap();
        DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
    };
    let thirty_days = expiry(&in_30_days) - before;
    assert!(
        thirty_days >= TimeDelta::days(30) && thirty_days < TimeDelta::days(30) + TimeDelta::minutes(5),
        "{thirty_days:?}"
    );
    assert_eq!(expiry(&at).to_rfc3339(), "2999-01-31T00:00:00+00:00");
    let table = keys(database_url, &["list"]);
    let line = table.lines().find(|l| l.starts_with(id_of(&at))).unwrap();
    assert!(
        line.contains("2999-01-31 00:00:00") && line.contains("active"),
        "{line}"
    );

    for (args, names) in [
        (&["--expires-in", "0d"][..], "--expires-in"),
        (&["--expires-in", "30"][..], "--expires-in"),
        (
            &["--expires-at", "2001-01-01T00:00:00Z"][..],
            "--expires-in/--expires-at",
        ),
        (
            &["--expires-in", "1d", "--expires-at", "2999-01-01T00:00:00Z"][..],
            "--expires-at",
        ),
    ] {
        let output = std::process::Command::new(fathom_tests::fathom_binary())
            .args(["keys", "create", "--role", "read"])
            .args(args)
            .env("DATABASE_URL", database_url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} is refused");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed a key");
    }
    assert_eq!(list_keys(&mut admin).await.len(), 3, "no refused key was written");
}

#[tokio::test]
async fn the_rust_client_creates_lists_and_revokes_keys() {
    let (server, created) = server_with_keys(&[&["--role", "admin"]]).await;
    let admin = fathom_client::Client::builder(server.url())
        .api_key(created[0].clone())
        .connect()
        .await
        .unwrap();
    let made = admin
        .create_key(pb::KeyRole::Read, "rust client")
        .tenant("acme")
        .collection("docs")
        .expires_in(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    let record = made.api_key.clone().unwrap();
    assert_eq!(record.id, id_of(&made.key));
    assert_eq!(
        (record.tenant.as_deref(), record.collections.as_slice()),
        (Some("acme"), &["docs".to_owned()][..])
    );
    assert!(record.expire_time.is_some());
    let reader = fathom_client::Client::builder(server.url())
        .api_key(made.key.clone())
        .connect()
        .await
        .unwrap();
    let missing = reader.count("docs", "acme", None).await.unwrap_err();
    assert_eq!(missing.code(), Some(Code::NotFound), "authenticated: {missing:?}");
    let listed = admin.list_keys().await.unwrap();
    assert_eq!(listed.last(), Some(&record));
    let revoked = admin.revoke_key(&record.id).await.unwrap();
    assert_eq!(revoked.state, pb::KeyState::Revoked as i32);
    let refused = reader.list_collections().await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::Unauthenticated), "{refused:?}");
    let invalid = admin.create_key(pb::KeyRole::Read, "").send().await.unwrap_err();
    assert_eq!(invalid.code(), Some(Code::InvalidArgument));
    assert_eq!(invalid.violations()[0].field, "description");
}
