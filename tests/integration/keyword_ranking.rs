//! Keyword ranking: BM25 through pg_textsearch where the cluster has it,
//! `ts_rank` where it has not; filtered and tenant searches that return
//! the hits of an exhaustive BM25 ranking of the documents in scope.

use std::collections::HashMap;
use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_tests::{PrivateCluster, TestServer, fresh_database};
use pb::field_condition::Condition;

use crate::support::filter::{self, field};
use crate::support::{collection_request, metadata, search};

const WORDS: [&str; 6] = ["river", "stone", "garden", "lamp", "window", "forest"];

/// A deterministic number for document `i` and slot `j`.
fn mix(i: u64, j: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

/// Document `i`: each of [`WORDS`] 0 to 3 times, and filler words, more of
/// them in `long` documents (which BM25 scores lower).
fn text(i: u64, long: bool) -> String {
    let mut words = Vec::new();
    for (j, word) in WORDS.iter().enumerate() {
        for _ in 0..mix(i, j as u64) % 4 {
            words.push((*word).to_owned());
        }
    }
    let fillers = mix(i, 99) % 12 + if long { 60 } else { 0 };
    for k in 0..fillers {
        words.push(format!("filler{}", mix(i, 100 + k) % 400));
    }
    words.join(" ")
}

fn document(id: String, i: u64, long: bool) -> pb::Document {
    pb::Document {
        id,
        vector: vec![1.0, (i % 7) as f32, 0.5],
        text: text(i, long),
        metadata: metadata(serde_json::json!({"group": i % 10})),
        tenant: String::new(),
    }
}

async fn upsert(server: &TestServer, collection: &str, tenant: &str, documents: Vec<pb::Document>) {
    let mut client = server.documents().await;
    for chunk in documents.chunks(500) {
        client
            .upsert(pb::UpsertRequest {
                collection: collection.into(),
                tenant: tenant.into(),
                documents: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
}

/// The BM25 score of every document of `tenant` in `collection` that
/// holds a word of `text` and meets `condition` (SQL over the table's
/// columns), best first: pg_textsearch's scoring of each row on its own,
/// with no index scan, the exhaustive ranking the index must agree with.
async fn exhaustive_bm25(
    server: &TestServer,
    collection: &str,
    tenant: &str,
    text: &str,
    condition: &str,
) -> Vec<(String, f64)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    let rows: Vec<(String, f64)> = sqlx::query_as(&format!(
        "SELECT id, -(body <@> to_bm25query($1, $2))::float8 AS s FROM fathom_data.{collection} \
         WHERE tenant = $3 AND ({condition}) ORDER BY s DESC, id"
    ))
    .bind(text)
    .bind(format!("fathom_data.\"{collection}:bm25\""))
    .bind(tenant)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().filter(|(_, score)| *score > 0.0).collect()
}

/// Whether a hit's score is the oracle's: the index keeps scores in single
/// precision.
fn same_score(hit: f64, oracle: f64) -> bool {
    (hit - oracle).abs() <= 1e-6 * oracle.abs().max(1.0)
}

/// How a server's searches are planned: reading the bm25 index, or
/// sorting rows each scored from its text, where the score an index scan
/// leaves behind is not the row's (fathom must notice and score the rows
/// itself).
#[derive(Debug, Clone, Copy)]
enum Plans {
    ReadTheIndex,
    Sort,
}

impl Plans {
    /// A server on a fresh database planned this way.
    async fn server(self) -> TestServer {
        let database_url = fresh_database().await;
        if let Plans::Sort = self {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
                .await
                .unwrap();
            let (_, name) = database_url.rsplit_once('/').unwrap();
            sqlx::query(&format!("ALTER DATABASE {name} SET enable_indexscan = off"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        TestServer::start_with(fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), database_url)).await
    }
}

/// Gathers the planner's statistics on `collection`, as autovacuum would on
/// a table in use (fresh, the planner sorts a bitmap scan of it instead of
/// reading the bm25 index).
async fn analyze(server: &TestServer, collection: &str) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query(&format!("ANALYZE fathom_data.{collection}"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Asserts that keyword hits are the `limit` best of `oracle`: the same
/// scores in the same order, each hit with its own document's score (so
/// documents tied at the cut may stand for each other).
fn assert_top_of(hits: &[pb::SearchHit], oracle: &[(String, f64)], limit: usize, what: &str) {
    let expected: Vec<f64> = oracle.iter().take(limit).map(|(_, s)| *s).collect();
    let scores: Vec<f64> = hits.iter().map(|h| h.score).collect();
    assert_eq!(scores.len(), expected.len(), "{what}: {scores:?} vs {expected:?}");
    let by_id: HashMap<&str, f64> = oracle.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    for (rank, (hit, want)) in hits.iter().zip(&expected).enumerate() {
        assert!(
            same_score(hit.score, *want),
            "{what}: rank {rank}: {scores:?} vs {expected:?}"
        );
        let own = by_id.get(hit.id.as_str()).copied();
        assert!(
            own.is_some_and(|s| same_score(hit.score, s)),
            "{what}: {} scored {own:?}",
            hit.id
        );
        // Documents scored alike share a rank: one more than those scored better.
        let leg = hit.text_leg.expect("a keyword hit has a keyword leg");
        let better = oracle
            .iter()
            .filter(|(_, s)| *s > hit.score && !same_score(*s, hit.score))
            .count();
        assert_eq!(leg.rank, better as u32 + 1, "{what}");
        assert!((leg.score - hit.score).abs() < 1e-9, "{what}");
    }
}

fn keyword(collection: &str, tenant: &str, text: &str, filter: Option<pb::Filter>) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        tenant: tenant.into(),
        text: Some(text.into()),
        filter,
        limit: 10,
        ..Default::default()
    }
}

async fn keyword_ranking_of(server: &TestServer, collection: &str) -> pb::KeywordRanking {
    let response = server
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest {
            name: collection.into(),
        })
        .await
        .unwrap()
        .into_inner();
    response.collection.unwrap().keyword_ranking()
}

#[tokio::test]
async fn a_cluster_with_pg_textsearch_ranks_by_bm25_and_one_without_by_ts_rank() {
    for (server, expected) in [
        (TestServer::start().await, pb::KeywordRanking::Bm25),
        (TestServer::start_without_bm25().await, pb::KeywordRanking::TsRank),
    ] {
        let created = server
            .collections()
            .await
            .create_collection(collection_request("docs", 3, pb::DistanceMetric::Cosine))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.collection.unwrap().keyword_ranking(), expected);
        assert_eq!(keyword_ranking_of(&server, "docs").await, expected);
        upsert(
            &server,
            "docs",
            "",
            (0..40).map(|i| document(format!("d{i}"), i, false)).collect(),
        )
        .await;
        let hits = search(&server, keyword("docs", "", "river lamp", None)).await.unwrap();
        assert_eq!(hits.len(), 10, "{expected:?}");
    }
}

/// Creates collection `kw` and fills it with 600 short documents.
async fn create_kw_with_600_documents(server: &TestServer) {
    server
        .collections()
        .await
        .create_collection(collection_request("kw", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    upsert(
        server,
        "kw",
        "",
        (0..600).map(|i| document(format!("d{i}"), i, false)).collect(),
    )
    .await;
}

#[tokio::test]
async fn bm25_keyword_hits_are_the_best_of_an_exhaustive_ranking_and_see_updates() {
    for plans in [Plans::ReadTheIndex, Plans::Sort] {
        bm25_keyword_hits_of(plans.server().await, plans).await;
    }
}

async fn bm25_keyword_hits_of(server: TestServer, plans: Plans) {
    create_kw_with_600_documents(&server).await;
    analyze(&server, "kw").await;
    for (text, words, condition) in [
        ("river", "river", "true"),
        ("river stone", "river stone", "true"),
        ("garden lamp window forest", "garden lamp window forest", "true"),
        ("lamp -river", "lamp", "NOT body_tsv @@ to_tsquery('english', 'river')"),
        ("nothing", "nothing", "true"),
    ] {
        let hits = search(&server, keyword("kw", "", text, None)).await.unwrap();
        let oracle = exhaustive_bm25(&server, "kw", "", words, condition).await;
        assert_top_of(&hits, &oracle, 10, &format!("{text} ({plans:?})"));
    }

    // Rewritten documents are ranked by their new text, at once.
    let best = search(&server, keyword("kw", "", "river", None)).await.unwrap()[0]
        .id
        .clone();
    let mut rewritten = document(best.clone(), 0, false);
    rewritten.text = "no such word here".into();
    let mut newcomer = document("new".into(), 1, false);
    newcomer.text = "river river river".into();
    upsert(&server, "kw", "", vec![rewritten, newcomer]).await;
    let hits = search(&server, keyword("kw", "", "river", None)).await.unwrap();
    assert_eq!(hits[0].id, "new");
    assert!(hits.iter().all(|h| h.id != best), "{best} no longer holds the word");
    let oracle = exhaustive_bm25(&server, "kw", "", "river", "true").await;
    assert_top_of(&hits, &oracle, 10, &format!("after the rewrite ({plans:?})"));
}

#[tokio::test]
async fn filtered_and_tenant_bm25_searches_return_the_hits_of_an_exhaustive_ranking_of_their_scope() {
    for plans in [Plans::ReadTheIndex, Plans::Sort] {
        scoped_bm25_hits_of(plans.server().await, plans).await;
    }
}

async fn scoped_bm25_hits_of(server: TestServer, plans: Plans) {
    let mut request = collection_request("shared", 3, pb::DistanceMetric::Cosine);
    request.multi_tenant = true;
    server.collections().await.create_collection(request).await.unwrap();
    // A large tenant of short documents and a small one of long documents,
    // which score below the large tenant's: the index's best thousand hold
    // none of them, so the small tenant's search ranks its own matches.
    upsert(
        &server,
        "shared",
        "large",
        (0..1500).map(|i| document(format!("l{i}"), i, false)).collect(),
    )
    .await;
    upsert(
        &server,
        "shared",
        "small",
        (0..40).map(|i| document(format!("s{i}"), 5000 + i, true)).collect(),
    )
    .await;
    analyze(&server, "shared").await;

    let group = |n: f64| field("group", Condition::Eq(filter::number(n)));
    let cases: Vec<(&str, Option<pb::Filter>, &str)> = vec![
        ("large", None, "true"),
        ("small", None, "true"),
        ("large", Some(group(3.0)), "(metadata->>'group')::int = 3"),
        (
            "large",
            Some(field("group", Condition::Lt(filter::bound(8.0)))),
            "(metadata->>'group')::int < 8",
        ),
        (
            "large",
            Some(filter::ids(&["l7", "l8", "l9"])),
            "id IN ('l7', 'l8', 'l9')",
        ),
        ("small", Some(group(2.0)), "(metadata->>'group')::int = 2"),
    ];
    for text in ["river stone", "forest"] {
        for (tenant, filter, condition) in &cases {
            let what = format!("{text:?} in {tenant} where {condition} ({plans:?})");
            let hits = search(&server, keyword("shared", tenant, text, filter.clone()))
                .await
                .unwrap();
            assert!(hits.iter().all(|h| h.tenant == *tenant), "{what}");
            let oracle = exhaustive_bm25(&server, "shared", tenant, text, condition).await;
            assert!(!oracle.is_empty(), "{what}: the corpus must hold matches");
            assert_top_of(&hits, &oracle, 10, &what);
        }
    }

    // In a hybrid search, the keyword leg ranks and scores the same way.
    let mut hybrid = keyword("shared", "small", "river stone", None);
    hybrid.vector = vec![1.0, 0.0, 0.0];
    let hits = search(&server, hybrid).await.unwrap();
    let oracle = exhaustive_bm25(&server, "shared", "small", "river stone", "true").await;
    let legs: Vec<_> = hits
        .iter()
        .filter_map(|h| h.text_leg.map(|l| (h.id.clone(), l)))
        .collect();
    assert!(!legs.is_empty());
    for (id, leg) in legs {
        let (position, (_, score)) = oracle.iter().enumerate().find(|(_, (o, _))| *o == id).unwrap();
        assert!(same_score(leg.score, *score), "{id}: {} vs {score}", leg.score);
        let tied_from = oracle.iter().position(|(_, s)| (s - score).abs() < 1e-6).unwrap();
        assert!(
            (tied_from + 1..=position + 1).contains(&(leg.rank as usize)),
            "{id}: rank {} vs {}",
            leg.rank,
            position + 1
        );
    }
}

#[tokio::test]
async fn a_collection_without_its_bm25_index_gets_it_when_a_server_starts() {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("older", 3, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    upsert(
        &server,
        "older",
        "",
        (0..50).map(|i| document(format!("d{i}"), i, false)).collect(),
    )
    .await;
    let database_url = server.database_url.clone();
    server.stop().await;
    // As a fathom from before BM25, or one on a database without the
    // extension, left it.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    sqlx::query("DROP INDEX fathom_data.\"older:bm25\"")
        .execute(&mut conn)
        .await
        .unwrap();

    let server = TestServer::start_with(fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), database_url)).await;
    assert_eq!(keyword_ranking_of(&server, "older").await, pb::KeywordRanking::Bm25);
    let hits = search(&server, keyword("older", "", "garden", None)).await.unwrap();
    let oracle = exhaustive_bm25(&server, "older", "", "garden", "true").await;
    assert_top_of(&hits, &oracle, 10, "after the index was rebuilt");
}

#[tokio::test]
async fn bm25_keyword_hits_are_whole_after_postgres_restarts() {
    // pg_textsearch 1.0.0 loses a bm25 index's corpus statistics when
    // PostgreSQL restarts, and its scans then find nothing; fathom rebuilds
    // the indexes before a connection to the restarted PostgreSQL is used.
    let cluster = std::sync::Arc::new(PrivateCluster::start());
    let server = TestServer::start_with(fathom_server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        cluster.url(),
    ))
    .await;
    create_kw_with_600_documents(&server).await;
    let oracle = exhaustive_bm25(&server, "kw", "", "river stone", "true").await;
    assert_top_of(
        &search(&server, keyword("kw", "", "river stone", None)).await.unwrap(),
        &oracle,
        10,
        "before the restarts",
    );

    for restart in ["crash", "clean"] {
        let restarted = cluster.clone();
        tokio::task::spawn_blocking(move || {
            if restart == "crash" {
                restarted.kill_postmaster();
                restarted.restart_after_crash();
            } else {
                restarted.pg.stop(true).unwrap();
                restarted.pg.restart().unwrap();
            }
        })
        .await
        .unwrap();
        // Requests on connections the restart broke fail until the pool
        // has replaced them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let hits = loop {
            match search(&server, keyword("kw", "", "river stone", None)).await {
                Ok(hits) => break hits,
                Err(status) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no answer after the {restart} restart: {status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_top_of(&hits, &oracle, 10, &format!("after a {restart} restart"));
    }
}
