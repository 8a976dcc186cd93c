//! The `fathom` command line, run as a real process against a real server.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fathom_api::v1 as pb;
use fathom_tests::{TestServer, fathom_binary};
use futures::StreamExt;
use sqlx::Connection;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{awkward_vector, collection_request, pseudo_random_vector};

const DIM: usize = 16;

fn fathom(server: &str, args: &[&str]) -> Output {
    Command::new(fathom_binary())
        .arg("--server")
        .arg(server)
        .args(args)
        .output()
        .expect("running fathom")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `n` JSON Lines documents with awkward floats, nested metadata and unicode text.
fn write_jsonl(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let record = serde_json::json!({
            "id": format!("doc-{i:05}"),
            "vector": pseudo_random_vector(DIM, i as u64 + 1),
            "text": format!("document {i} über vectors — {}", if i % 2 == 0 { "even" } else { "odd" }),
            "metadata": {"n": i, "even": i % 2 == 0, "tags": ["a", format!("t{}", i % 7)], "nested": {"x": 0.25}},
        });
        serde_json::to_writer(&mut file, &record).unwrap();
        file.write_all(b"\n").unwrap();
        records.push(record);
    }
    file.flush().unwrap();
    records
}

async fn server_with_collection() -> TestServer {
    let server = TestServer::start().await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    server
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fathom-cli-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn import_then_export_gives_back_every_document_bit_for_bit() {
    let server = server_with_collection().await;
    let input = temp_path("roundtrip-in.jsonl");
    let output = temp_path("roundtrip-out.jsonl");
    let records = write_jsonl(&input, 20_000);
    let url = server.url();
    let (i, o) = (input.to_str().unwrap().to_owned(), output.to_str().unwrap().to_owned());
    let imported = tokio::task::spawn_blocking(move || fathom(&url, &["import", "--collection", "docs", &i]))
        .await
        .unwrap();
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stderr(&imported).contains("imported: 20000 documents of the input are committed (20000 written by this run)"),
        "{}",
        stderr(&imported)
    );
    let url = server.url();
    let exported = tokio::task::spawn_blocking(move || fathom(&url, &["export", "--collection", "docs", &o]))
        .await
        .unwrap();
    assert!(exported.status.success(), "{}", stderr(&exported));

    let lines = std::fs::read_to_string(&output).unwrap();
    let exported: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported.len(), records.len());
    for (original, back) in records.iter().zip(&exported) {
        assert_eq!(back["id"], original["id"]);
        assert_eq!(back["text"], original["text"]);
        assert_eq!(back["metadata"], original["metadata"]);
        let bits = |v: &serde_json::Value| -> Vec<u32> {
            serde_json::from_value::<Vec<f32>>(v["vector"].clone())
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(back), bits(original), "vector of {}", original["id"]);
    }
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}

async fn rows(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM fathom_data.docs")
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_import_run_again_with_its_stream_id_ends_with_exactly_every_document() {
    let server = server_with_collection().await;
    let input = temp_path("killed.jsonl");
    write_jsonl(&input, 20_000);
    let args = [
        "import",
        "--collection",
        "docs",
        input.to_str().unwrap(),
        "--stream-id",
        "killed-1",
        "--batch-size",
        "100",
    ];
    let mut first = Command::new(fathom_binary())
        .arg("--server")
        .arg(server.url())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while rows(&mut db).await < 2_000 {
        assert!(tokio::time::Instant::now() < deadline, "the import never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let partial = rows(&mut db).await;
    assert!(partial < 20_000, "killed before the end ({partial} rows)");

    // The same command with another batch size continues exactly.
    let mut rerun: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    *rerun.last_mut().unwrap() = "333".into();
    let second = run(&server, rerun).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(rows(&mut db).await, 20_000);
    let (committed, written, earlier) = summary_figures(&stderr(&second));
    assert_eq!(committed, 20_000, "the figures are what the database holds");
    // The killed run's last batches (at most 4 in flight, of 100) may still
    // have been committing when the second one opened: counted as written
    // neither by it nor, once skipped, as earlier.
    assert!(earlier >= partial as u64 && earlier <= 20_000, "{earlier} vs {partial}");
    let by_the_dead_run = 20_000 - earlier - written;
    assert!(by_the_dead_run <= 400, "{written} + {earlier} do not add up to 20000");
    let _ = std::fs::remove_file(input);
}

/// Runs `fathom` with `args` off the async runtime.
async fn run(server: &TestServer, args: Vec<String>) -> Output {
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fathom(&url, &args)
    })
    .await
    .unwrap()
}

/// (committed, written by this run, by earlier runs) from the summary line
/// "imported: C documents of the input are committed (W written by this run, E by earlier runs) …".
fn summary_figures(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("imported: "))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(3)
        .map(|part| part.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// "at least N documents of the input are committed" from a failed run's message.
fn committed_at_failure(stderr: &str) -> u64 {
    let (_, rest) = stderr
        .split_once("at least ")
        .unwrap_or_else(|| panic!("no committed figure in {stderr}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_bad_line_stops_the_import_before_its_batch_and_the_fixed_file_resumes_exactly() {
    let server = server_with_collection().await;
    let good = temp_path("fixed.jsonl");
    let bad = temp_path("broken.jsonl");
    write_jsonl(&good, 2_000);
    let good_lines: Vec<String> = std::fs::read_to_string(&good)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut lines = good_lines.clone();
    lines[1233] = "{\"id\": \"doc-01233\", \"vector\": [1, 2".into();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let import = |file: &std::path::Path, batch_size: &str| {
        [
            "import",
            "--collection",
            "docs",
            "--stream-id",
            "s",
            "--batch-size",
            batch_size,
            file.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let mut db = sqlx::PgConnection::connect(&server.database_url).await.unwrap();

    let failed = run(&server, import(&bad, "500")).await;
    assert!(!failed.status.success());
    let message = stderr(&failed);
    assert!(message.contains("line 1234: not valid JSON: "), "{message}");
    assert!(
        !message.contains("at line 1 "),
        "serde's line within the line: {message}"
    );
    // Lines 1001 to 1233 were in the batch being filled: none was sent.
    assert_eq!(rows(&mut db).await, 1_000);
    assert_eq!(committed_at_failure(&message), 1_000, "{message}");

    let other = temp_path("other.jsonl");
    std::fs::write(&other, good_lines[1000..].join("\n") + "\n").unwrap();
    let refused = run(&server, import(&other, "500")).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("cannot resume"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("use a new stream id"), "{}", stderr(&refused));
    assert_eq!(rows(&mut db).await, 1_000, "a refused resume writes nothing");

    let fixed = run(&server, import(&good, "300")).await;
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    assert_eq!(rows(&mut db).await, 2_000);
    assert_eq!(summary_figures(&stderr(&fixed)), (2_000, 1_000, 1_000));
    for path in [good, bad, other] {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test]
async fn search_prints_hybrid_hits_with_per_leg_ranks_and_json_that_parses() {
    let server = server_with_collection().await;
    let input = temp_path("search.jsonl");
    write_jsonl(&input, 200);
    let vector_file = temp_path("query.json");
    std::fs::write(
        &vector_file,
        serde_json::to_string(&pseudo_random_vector(DIM, 9)).unwrap(),
    )
    .unwrap();
    let url = server.url();
    let (i, v) = (
        input.to_str().unwrap().to_owned(),
        vector_file.to_str().unwrap().to_owned(),
    );
    let (table, json) = tokio::task::spawn_blocking(move || {
        assert!(fathom(&url, &["import", "--collection", "docs", &i]).status.success());
        let search = [
            "search",
            "--collection",
            "docs",
            // "8" is doc-00008's alone; "even" is in every other document, all
            // with the same keyword score, so it alone would leave which of
            // them make the keyword leg's candidates to the index.
            "--text",
            "8 even",
            "--vector-file",
            &v,
            "--limit",
            "5",
        ];
        let table = fathom(&url, &search);
        let json = fathom(&url, &[&search[..], &["--json"]].concat());
        (table, json)
    })
    .await
    .unwrap();
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.contains("vector rank") && text.contains("text rank"), "{text}");
    assert!(
        text.contains("doc-00008"),
        "the nearest vector (seed 9 = doc-00008) is listed: {text}"
    );
    assert!(json.status.success(), "{}", stderr(&json));
    let hits: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(hits.len(), 5);
    assert!(
        hits.iter()
            .any(|h| h["vector_leg"]["rank"].is_number() && h["text_leg"]["rank"].is_number()),
        "{hits:?}"
    );
    assert_eq!(
        hits[0]["id"], "doc-00008",
        "nearest and an even text match, it fuses first"
    );
}

/// Runs `fathom [--server URL] ARGS` (with `env`) with its stdout a pipe
/// whose read end is closed before fathom starts, so its first write fails.
/// The commands that talk to the database, not a server, take no URL.
async fn into_closed_pipe(
    url: Option<&str>,
    args: Vec<&'static str>,
    env: &[(&str, &str)],
) -> (Output, Vec<&'static str>) {
    let server: Vec<String> = url
        .map(|url| vec!["--server".to_owned(), url.to_owned()])
        .unwrap_or_default();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(fathom_binary())
            .args(&server)
            .args(&args)
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running fathom");
        drop(child.stdout.take());
        (child.wait_with_output().expect("waiting for fathom"), args)
    })
    .await
    .unwrap()
}

/// `fathom collections list | true`, `… stats | head -1`, `fathom keys list
/// | head`: every command that prints to stdout ends quietly, with status
/// 0, when the reader has gone, as `search` and `export` do.
#[tokio::test]
async fn every_printing_command_into_a_closed_pipe_exits_zero_without_a_panic() {
    let server = server_with_collection().await;
    let url = server.url();
    let database = [("DATABASE_URL", server.database_url.as_str())];
    // (arguments, whether the command reads DATABASE_URL)
    let commands = [
        (vec!["collections", "list"], false),
        (vec!["collections", "get", "docs"], false),
        (vec!["collections", "stats", "docs"], false),
        (vec!["collections", "create", "piped", "--dimension", "3"], false),
        (vec!["collections", "build-index", "piped"], false),
        (vec!["aliases", "create", "piped_alias", "docs"], false),
        (vec!["aliases", "list"], false),
        (vec!["aliases", "delete", "piped_alias"], false),
        (vec!["collections", "delete", "piped"], false),
        (vec!["health"], false),
        (vec!["keys", "create", "--role", "read"], true),
        (vec!["keys", "list"], true),
    ];
    for (args, reads_database) in commands {
        let (env, server): (&[(&str, &str)], _) = match reads_database {
            true => (&database, None),
            false => (&[], Some(url.as_str())),
        };
        let (output, args) = into_closed_pipe(server, args, env).await;
        assert!(
            output.status.success(),
            "fathom {}: {:?}, stderr: {}",
            args.join(" "),
            output.status,
            stderr(&output)
        );
        assert!(
            !stderr(&output).contains("panicked"),
            "fathom {}: {}",
            args.join(" "),
            stderr(&output)
        );
    }
}

/// `fathom search … | head` and `fathom export … | head`: the reader
/// going away is the end of the output, not an error. The pipe's read end
/// is closed before fathom starts, so its first write fails.
#[tokio::test]
async fn search_and_export_into_a_closed_pipe_exit_zero_without_a_panic() {
    let server = server_with_collection().await;
    let input = temp_path("closed-pipe.jsonl");
    write_jsonl(&input, 50);
    let output = run(
        &server,
        vec![
            "import".into(),
            "--collection".into(),
            "docs".into(),
            input.to_str().unwrap().into(),
        ],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let url = server.url();
    let commands = [
        vec!["search", "--collection", "docs", "--text", "even", "--limit", "20"],
        vec!["export", "--collection", "docs"],
    ];
    for args in commands {
        let (output, args) = into_closed_pipe(Some(&url), args, &[]).await;
        assert!(
            output.status.success(),
            "fathom {}: {:?}, stderr: {}",
            args.join(" "),
            output.status,
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
    let _ = std::fs::remove_file(input);
}

#[tokio::test]
async fn every_subcommand_fails_with_one_clear_line() {
    let server = server_with_collection().await;
    let url = server.url();
    let down = "http://127.0.0.1:9".to_owned();
    let input = temp_path("errors.jsonl");
    write_jsonl(&input, 3);
    let i = input.to_str().unwrap().to_owned();
    let cases: Vec<(String, Vec<String>, &str)> = vec![
        (
            down.clone(),
            vec!["collections".into(), "list".into()],
            "cannot connect",
        ),
        (
            down.clone(),
            vec!["import".into(), "-c".into(), "docs".into(), i.clone()],
            "cannot connect",
        ),
        (
            down.clone(),
            vec!["export".into(), "-c".into(), "docs".into()],
            "cannot connect",
        ),
        (
            down.clone(),
            vec!["search".into(), "-c".into(), "docs".into(), "--text".into(), "x".into()],
            "cannot connect",
        ),
        (
            url.clone(),
            vec!["collections".into(), "get".into(), "nope".into()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["collections".into(), "stats".into(), "nope".into()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["collections".into(), "delete".into(), "nope".into()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec![
                "collections".into(),
                "create".into(),
                "Bad-Name".into(),
                "-d".into(),
                "3".into(),
            ],
            "INVALID_ARGUMENT",
        ),
        (
            url.clone(),
            vec!["import".into(), "-c".into(), "nope".into(), i.clone()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["export".into(), "-c".into(), "nope".into()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["search".into(), "-c".into(), "nope".into(), "--text".into(), "x".into()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["collections".into(), "snapshot".into(), "nope".into(), i.clone()],
            "NOT_FOUND",
        ),
        (
            url.clone(),
            vec!["collections".into(), "restore".into(), i.clone()],
            "is not a fathom snapshot",
        ),
        (
            url.clone(),
            vec![
                "export".into(),
                "-c".into(),
                "docs".into(),
                "--filter".into(),
                "{not json".into(),
            ],
            "--filter is not valid JSON",
        ),
        (
            url.clone(),
            vec![
                "search".into(),
                "-c".into(),
                "docs".into(),
                "--text".into(),
                "x".into(),
                "--filter".into(),
                "{\"a\": {\"$near\": 1}}".into(),
            ],
            "unknown operator",
        ),
        (
            url.clone(),
            vec![
                "search".into(),
                "-c".into(),
                "docs".into(),
                "--vector".into(),
                "[1, 2]".into(),
            ],
            "dimension",
        ),
    ];
    for (server, args, expected) in cases {
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (fathom(&server, &args), args.join(" "))
        });
        let (output, shown) = output.await.unwrap();
        assert!(!output.status.success(), "`fathom {shown}` should fail");
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "`fathom {shown}` printed {lines:?}");
        assert!(
            lines[0].starts_with("fathom: ") && lines[0].contains(expected),
            "`fathom {shown}`: {}",
            lines[0]
        );
    }
    let _ = std::fs::remove_file(input);
}

#[tokio::test]
async fn collections_create_if_not_exists_succeeds_on_the_same_settings_only() {
    let server = TestServer::start().await;
    let url = server.url();
    let run = move |args: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || fathom(&url, args))
    };
    let create = &[
        "collections",
        "create",
        "docs",
        "-d",
        "3",
        "--metric",
        "l2",
        "--if-not-exists",
    ];
    let first = run(create).await.unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let again = run(create).await.unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("dimension   3"), "{}", stdout(&again));

    let plain = run(&["collections", "create", "docs", "-d", "3", "--metric", "l2"])
        .await
        .unwrap();
    assert!(!plain.status.success() && stderr(&plain).contains("ALREADY_EXISTS"));
    let other = run(&[
        "collections",
        "create",
        "docs",
        "-d",
        "4",
        "--metric",
        "l2",
        "--if-not-exists",
    ])
    .await
    .unwrap();
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("ALREADY_EXISTS") && stderr(&other).contains("dimension 3"),
        "{}",
        stderr(&other)
    );
    // The settings as a user writes them, not as the proto names them.
    assert!(
        stderr(&other).contains("metric l2, single-tenant; asked for dimension 4, metric l2, single-tenant"),
        "{}",
        stderr(&other)
    );
    let mut collections = server.collections().await;
    let stored = collections.get_collection(pb::GetCollectionRequest { name: "docs".into() });
    assert_eq!(stored.await.unwrap().into_inner().collection.unwrap().dimension, 3);
}

#[tokio::test]
async fn health_exits_zero_only_when_the_server_is_serving() {
    let server = TestServer::start().await;
    // Health turns SERVING once the probe has reached PostgreSQL: wait for it.
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    while watch.next().await.unwrap().unwrap().status() != ServingStatus::Serving {}
    let url = server.url();
    let up = tokio::task::spawn_blocking(move || fathom(&url, &["health"]))
        .await
        .unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(stdout(&up).trim(), "SERVING");

    // Nothing listens on port 1.
    let down = tokio::task::spawn_blocking(|| fathom("http://127.0.0.1:1", &["health", "--timeout", "2"]))
        .await
        .unwrap();
    assert!(!down.status.success());
    assert!(stderr(&down).starts_with("fathom: cannot connect"), "{}", stderr(&down));
}

/// Waits until something accepts connections on `address`.
async fn wait_for_listener(address: &str, process: &mut std::process::Child) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(process.try_wait().unwrap().is_none(), "fathom serve exited early");
        assert!(tokio::time::Instant::now() < deadline, "{address} never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_second_serve_on_the_same_embedded_cluster_or_address_is_refused_and_the_first_keeps_serving() {
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (pg_port, first_port, second_port) = (free_port(), free_port(), free_port());
    let data_dir = temp_path("serve-twice-cluster");
    let serve = move |listen: u16| {
        Command::new(fathom_binary())
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("FATHOM_LISTEN", format!("127.0.0.1:{listen}"))
            .env("FATHOM_DATA_DIR", temp_path("serve-twice-cluster"))
            .env("FATHOM_POSTGRES_PORT", pg_port.to_string())
            .env("FATHOM_POSTGRES_INSTALL", fathom_tests::postgres_install_dir())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = serve(first_port);
    let first_address = format!("127.0.0.1:{first_port}");
    wait_for_listener(&first_address, &mut first).await;

    for listen in [second_port, first_port] {
        let second = tokio::task::spawn_blocking(move || serve(listen).wait_with_output().unwrap());
        let second = second.await.unwrap();
        assert!(!second.status.success());
        let message = stderr(&second);
        if listen == first_port {
            assert!(
                message.contains("cannot listen on") && message.contains(&first_address),
                "{message}"
            );
        } else {
            assert!(
                message.contains(&format!("already running on port {pg_port}")),
                "{message}"
            );
        }
    }
    let url = format!("http://{first_address}");
    let listed = tokio::task::spawn_blocking(move || fathom(&url, &["collections", "list"]))
        .await
        .unwrap();
    assert!(
        listed.status.success(),
        "the first server still works: {}",
        stderr(&listed)
    );

    let _ = Command::new("kill").args(["-TERM", &first.id().to_string()]).status();
    assert!(first.wait().unwrap().success(), "the first server shuts down cleanly");
    let _ = std::fs::remove_dir_all(data_dir);
}

#[tokio::test]
async fn serve_with_a_database_url_nothing_answers_says_where_it_tried() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(fathom_binary())
            .arg("serve")
            .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:{free}/fathom"))
            .env("FATHOM_LISTEN", format!("127.0.0.1:{listen}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{free}")) && message.contains("refused"),
        "{message}"
    );
}

#[tokio::test]
async fn import_into_a_collection_created_with_defer_index_ends_searchable_with_its_index_built() {
    let server = TestServer::start().await;
    let created = run(
        &server,
        [
            "collections",
            "create",
            "docs",
            "--dimension",
            &DIM.to_string(),
            "--defer-index",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("(deferred)"), "{}", stdout(&created));

    let input = temp_path("deferred.jsonl");
    write_jsonl(&input, 2_000);
    let imported = run(
        &server,
        vec![
            "import".into(),
            input.display().to_string(),
            "--collection".into(),
            "docs".into(),
        ],
    )
    .await;
    std::fs::remove_file(&input).ok();
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stderr(&imported).contains("built the vector index of docs"),
        "{}",
        stderr(&imported)
    );
    let collection = server
        .collections()
        .await
        .get_collection(pb::GetCollectionRequest { name: "docs".into() })
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    assert_eq!(collection.index_state(), pb::IndexState::Ready);
    let shown = run(&server, ["collections", "get", "docs"].map(String::from).to_vec()).await;
    assert!(!stdout(&shown).contains("deferred"), "{}", stdout(&shown));
    assert!(stdout(&shown).contains("keywords    bm25"), "{}", stdout(&shown));
}

#[tokio::test]
async fn import_into_a_collection_created_with_defaults_is_indexed_at_its_end_once_past_the_threshold() {
    // The server indexes automatic collections past 500 documents of DIM.
    let mut config = fathom_server::Config::new("127.0.0.1:0".parse().unwrap(), fathom_tests::fresh_database().await);
    config.indexing_threshold_bytes = 500 * DIM as u64 * 4;
    let server = TestServer::start_with(config).await;
    for (name, documents) in [("small", 499), ("large", 2_000)] {
        let created = run(
            &server,
            words(&["collections", "create", name, "--dimension", &DIM.to_string()]),
        )
        .await;
        assert!(created.status.success(), "{}", stderr(&created));
        assert!(
            stdout(&created).contains("(exact below the indexing threshold)")
                && stdout(&created).contains("built       automatically, past the indexing threshold"),
            "{}",
            stdout(&created)
        );
        let input = temp_path(&format!("{name}.jsonl"));
        write_jsonl(&input, documents);
        let imported = run(
            &server,
            words(&["import", input.to_str().unwrap(), "--collection", name]),
        )
        .await;
        std::fs::remove_file(&input).ok();
        assert!(imported.status.success(), "{}", stderr(&imported));
        let state = crate::support::get_collection(&server, name).await.index_state();
        if documents < 500 {
            assert_eq!(state, pb::IndexState::Deferred);
            assert!(
                stderr(&imported).contains("small is below the server's indexing threshold, so its searches are exact"),
                "{}",
                stderr(&imported)
            );
        } else {
            assert_eq!(state, pb::IndexState::Ready);
            assert!(
                stderr(&imported)
                    .contains("large is searchable with its vector index, built in bulk at the end of the import"),
                "{}",
                stderr(&imported)
            );
        }
    }
}

#[tokio::test]
async fn collections_list_keeps_its_columns_aligned_whatever_the_cells_hold() {
    let server = TestServer::start().await;
    let mut collections = server.collections().await;
    let mut deferred = collection_request("a_collection_with_a_rather_long_name_indeed", 8, pb::DistanceMetric::L2);
    deferred.defer_index = true;
    deferred.index_build = pb::IndexBuild::Unspecified as i32;
    deferred.index = Some(pb::IndexSettings {
        kind: Some(pb::index_settings::Kind::Hnsw(pb::HnswIndex {
            m: 16,
            ef_construction: 64,
            precision: pb::IndexPrecision::Single as i32,
        })),
    });
    collections.create_collection(deferred).await.unwrap();
    collections
        .create_collection(collection_request("b", 4, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let output = run(&server, vec!["collections".into(), "list".into()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[1].contains("(deferred)"), "{listed}");
    // Every column starts where its header does.
    let header = lines[0];
    for column in ["metric", "index", "language", "tenants"] {
        let at = header.find(column).unwrap();
        for line in &lines[1..] {
            assert!(
                at == 0 || line.as_bytes()[at - 1] == b' ' && line.as_bytes()[at] != b' ',
                "column {column} is out of line:\n{listed}"
            );
        }
    }
}

#[tokio::test]
async fn an_import_of_one_document_says_so_in_the_singular() {
    let server = server_with_collection().await;
    let input = temp_path("one.jsonl");
    write_jsonl(&input, 1);
    let args = ["import", input.to_str().unwrap(), "--collection", "docs"];
    let output = run(&server, args.map(str::to_owned).to_vec()).await;
    std::fs::remove_file(&input).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("imported: 1 document of the input is committed (1 written by this run) in 1 batch,"),
        "{}",
        stderr(&output)
    );
}

/// The options of the client commands, as `--help` lists them.
const CONNECTION_OPTIONS: [&str; 5] = [
    "--server <",
    "--api-key <",
    "--tls-ca <",
    "--tls-client-cert <",
    "--tls-client-key <",
];

#[test]
fn only_the_client_commands_take_the_server_key_and_tls_options() {
    let help = |args: &[&str]| {
        let output = Command::new(fathom_binary()).args(args).arg("--help").output().unwrap();
        assert!(output.status.success(), "fathom {args:?} --help: {}", stderr(&output));
        stdout(&output)
    };
    for command in [
        &["keys"][..],
        &["keys", "create"],
        &["postgres", "start"],
        &["migrate"],
        &["serve"],
        &[],
    ] {
        let text = help(command);
        for option in CONNECTION_OPTIONS {
            assert!(
                !text.contains(option),
                "fathom {command:?} --help offers {option}:\n{text}"
            );
        }
    }
    for command in [
        &["collections"][..],
        &["collections", "list"],
        &["aliases", "list"],
        &["documents", "get"],
        &["import"],
        &["export"],
        &["search"],
        &["health"],
    ] {
        let text = help(command);
        for option in CONNECTION_OPTIONS {
            assert!(
                text.contains(option),
                "fathom {command:?} --help lacks {option}:\n{text}"
            );
        }
    }

    let after = Command::new(fathom_binary())
        .args(["keys", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(2), "{}", stderr(&after));
    assert!(
        stderr(&after).contains("unexpected argument '--server'"),
        "{}",
        stderr(&after)
    );
    let before = Command::new(fathom_binary())
        .args(["--server", "http://127.0.0.1:9", "keys", "list"])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(2), "{}", stderr(&before));
    assert!(
        stderr(&before).starts_with("fathom: --server applies to the client commands"),
        "{}",
        stderr(&before)
    );
}

#[test]
fn keys_run_outside_the_checkout_say_where_they_looked_and_what_to_do() {
    let elsewhere = temp_path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let output = Command::new(fathom_binary())
        .args(["keys", "list"])
        .current_dir(&elsewhere)
        .env_remove("DATABASE_URL")
        .env_remove("FATHOM_POSTGRES_INSTALL")
        .env_remove("FATHOM_DATA_DIR")
        .output()
        .unwrap();
    std::fs::remove_dir(&elsewhere).unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    for names in [
        "relative to",
        "--postgres-install",
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:54329/fathom",
    ] {
        assert!(message.contains(names), "{names:?} in {message}");
    }
}

#[tokio::test]
async fn documents_commands_get_count_update_and_delete_what_the_database_holds() {
    let server = server_with_collection().await;
    let input = temp_path("documents.jsonl");
    write_jsonl(&input, 10);
    let import = ["import", input.to_str().unwrap(), "--collection", "docs"];
    assert!(run(&server, import.map(str::to_owned).to_vec()).await.status.success());
    std::fs::remove_file(&input).unwrap();
    let fathom_says = async |args: &[&str]| {
        let output = run(&server, args.iter().map(|a| (*a).to_owned()).collect()).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };

    let even = r#"{"even": true}"#;
    assert_eq!(
        fathom_says(&["documents", "count", "-c", "docs", "--filter", even]).await,
        "5\n"
    );
    let update = [
        "documents",
        "update",
        "-c",
        "docs",
        "--filter",
        even,
        "--set-metadata",
        r#"{"reviewed": true}"#,
        "--delete-key",
        "tags",
    ];
    assert_eq!(fathom_says(&update).await, "updated 5 documents\n");
    let text = [
        "documents",
        "update",
        "-c",
        "docs",
        "--ids",
        "doc-00001,nope",
        "--text",
        "corrected",
    ];
    assert_eq!(fathom_says(&text).await, "updated 1 document\n");

    let got = fathom_says(&["documents", "get", "-c", "docs", "doc-00000", "doc-00001", "nope"]).await;
    let records: Vec<serde_json::Value> = got.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2, "the missing id is skipped: {got}");
    assert_eq!(
        records[0]["metadata"],
        serde_json::json!({"n": 0, "even": true, "nested": {"x": 0.25}, "reviewed": true})
    );
    assert_eq!(
        records[0]["vector"].as_array().unwrap().len(),
        DIM,
        "the vector is kept"
    );
    assert_eq!(records[1]["text"], "corrected");

    let reviewed = r#"{"reviewed": true}"#;
    let delete = ["documents", "delete", "-c", "docs", "--filter", reviewed];
    assert_eq!(fathom_says(&delete).await, "deleted 5 documents\n");
    assert_eq!(fathom_says(&["documents", "count", "-c", "docs"]).await, "5\n");
    assert_eq!(
        crate::support::count(&server, "docs").await,
        5,
        "the count printed is the database's"
    );

    let neither = run(
        &server,
        ["documents", "delete", "-c", "docs"].map(str::to_owned).to_vec(),
    )
    .await;
    assert!(!neither.status.success());
    assert!(stderr(&neither).contains("--ids"), "{}", stderr(&neither));
    let nothing = ["documents", "update", "-c", "docs", "--ids", "doc-00002"];
    let refused = run(&server, nothing.map(str::to_owned).to_vec()).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("INVALID_ARGUMENT") && stderr(&refused).contains("nothing to update"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn search_like_a_stored_document_pages_with_offset_and_prints_vectors_on_request() {
    let server = server_with_collection().await;
    let input = temp_path("like.jsonl");
    let records = write_jsonl(&input, 50);
    let import = ["import", input.to_str().unwrap(), "--collection", "docs"];
    assert!(run(&server, import.map(str::to_owned).to_vec()).await.status.success());
    std::fs::remove_file(&input).unwrap();
    let hits = async |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["search", "-c", "docs", "--like", "doc-00004", "--exact", "--json"];
        args.extend_from_slice(extra);
        let output = run(&server, args.iter().map(|a| (*a).to_owned()).collect()).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let ids = |hits: &[serde_json::Value]| {
        hits.iter()
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let first_ten = hits(&["--limit", "10", "--candidates", "10"]).await;
    assert_eq!(first_ten.len(), 10);
    assert!(
        !ids(&first_ten).contains(&"doc-00004".to_owned()),
        "the example is left out"
    );
    let second_page = hits(&["--limit", "5", "--offset", "5", "--candidates", "10"]).await;
    assert_eq!(ids(&second_page), ids(&first_ten)[5..]);
    assert_eq!(
        second_page[0]["vector_leg"]["rank"], 6,
        "ranks count from the top, not the page"
    );

    assert!(first_ten[0].get("vector").is_none(), "no vectors unless asked");
    let with_vectors = hits(&["--limit", "1", "--with-vectors"]).await;
    let id = with_vectors[0]["id"].as_str().unwrap();
    let record = records.iter().find(|r| r["id"] == id).unwrap();
    let printed: Vec<f32> = serde_json::from_value(with_vectors[0]["vector"].clone()).unwrap();
    let stored: Vec<f32> = serde_json::from_value(record["vector"].clone()).unwrap();
    assert_eq!(printed, stored);
}

#[tokio::test]
async fn aliases_are_created_switched_listed_and_deleted_and_every_command_takes_one() {
    let server = server_with_collection().await;
    server
        .collections()
        .await
        .create_collection(collection_request("docs_v2", DIM as u32, pb::DistanceMetric::Cosine))
        .await
        .unwrap();
    let fathom_args = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    let created = run(&server, fathom_args(&["aliases", "create", "live", "docs"])).await;
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(stdout(&created), "live -> docs\n");
    let shown = run(&server, fathom_args(&["collections", "get", "live"])).await;
    assert!(stdout(&shown).starts_with("name        docs\n"), "{}", stdout(&shown));

    let switched = run(&server, fathom_args(&["aliases", "switch", "live", "docs_v2"])).await;
    assert!(switched.status.success(), "{}", stderr(&switched));
    assert_eq!(stdout(&switched), "live -> docs_v2\n");
    let stats = run(&server, fathom_args(&["collections", "stats", "live"])).await;
    assert!(
        stdout(&stats).starts_with("collection  docs_v2\n"),
        "{}",
        stdout(&stats)
    );
    let listed = run(&server, fathom_args(&["aliases", "list", "--collection", "docs_v2"])).await;
    assert_eq!(stdout(&listed), "alias  collection\nlive   docs_v2\n");

    let clash = run(&server, fathom_args(&["aliases", "create", "docs", "docs_v2"])).await;
    assert!(!clash.status.success());
    assert!(
        stderr(&clash).contains("a collection named \"docs\""),
        "{}",
        stderr(&clash)
    );
    assert_eq!(
        stderr(&clash).matches("a collection named").count(),
        1,
        "said once: {}",
        stderr(&clash)
    );

    let deleted = run(&server, fathom_args(&["aliases", "delete", "live"])).await;
    assert_eq!(stdout(&deleted), "deleted alias live\n");
    let none = run(&server, fathom_args(&["aliases", "list"])).await;
    assert!(stdout(&none).starts_with("(no aliases"), "{}", stdout(&none));
    let gone = run(&server, fathom_args(&["aliases", "switch", "live", "docs"])).await;
    assert!(stderr(&gone).contains("NOT_FOUND"), "{}", stderr(&gone));
}

async fn scroll_all(server: &TestServer, collection: &str, tenant: &str) -> Vec<pb::Document> {
    let request = pb::ScrollRequest {
        collection: collection.into(),
        tenant: tenant.into(),
        ..Default::default()
    };
    let mut stream = server.documents().await.scroll(request).await.unwrap().into_inner();
    let mut documents = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        documents.push(item.document.unwrap());
    }
    documents
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

#[tokio::test]
async fn a_snapshot_restored_under_a_new_name_has_the_same_settings_and_every_document_bit_for_bit() {
    let server = TestServer::start().await;
    let mut collections = server.collections().await;
    collections
        .create_collection(pb::CreateCollectionRequest {
            index: Some(pb::IndexSettings {
                kind: Some(pb::index_settings::Kind::Hnsw(pb::HnswIndex {
                    m: 8,
                    ef_construction: 40,
                    precision: pb::IndexPrecision::Single as i32,
                })),
            }),
            text_language: "german".into(),
            multi_tenant: true,
            ..collection_request("docs", DIM as u32, pb::DistanceMetric::L2)
        })
        .await
        .unwrap();
    let input = temp_path("snapshot-in.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..300 {
            // Both tenants hold ids of the other: ids are unique per tenant.
            let record = serde_json::json!({
                "id": format!("doc-{:04}", i / 2),
                "vector": awkward_vector(DIM, i + 1),
                "text": format!("Dokument {i} über Vektoren"),
                "metadata": {"n": i, "tags": ["a", format!("t{}", i % 7)], "nested": {"x": 0.1}},
                "tenant": if i % 2 == 0 { "acme" } else { "globex" },
            });
            serde_json::to_writer(&mut file, &record).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.flush().unwrap();
    }
    let imported = run(&server, words(&["import", "-c", "docs", input.to_str().unwrap()])).await;
    assert!(imported.status.success(), "{}", stderr(&imported));

    let snapshot = temp_path("docs.snapshot.jsonl");
    let path = snapshot.to_str().unwrap();
    let missing_tenant = run(
        &server,
        words(&["collections", "snapshot", "docs", path, "--tenant", "acme"]),
    )
    .await;
    assert!(!missing_tenant.status.success());
    assert!(
        stderr(&missing_tenant).contains("name every tenant with --tenant"),
        "{}",
        stderr(&missing_tenant)
    );
    assert!(!snapshot.exists(), "a failed snapshot leaves no file");

    let taken = run(
        &server,
        words(&[
            "collections",
            "snapshot",
            "docs",
            path,
            "--tenant",
            "acme",
            "--tenant",
            "globex",
        ]),
    )
    .await;
    assert!(taken.status.success(), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("snapshot of docs: 300 documents (2 tenants)"),
        "{}",
        stderr(&taken)
    );

    let existing = run(&server, words(&["collections", "restore", path])).await;
    assert!(!existing.status.success());
    assert!(
        stderr(&existing).contains("docs exists") && stderr(&existing).contains("wrote nothing"),
        "{}",
        stderr(&existing)
    );
    assert_eq!(scroll_all(&server, "docs", "acme").await.len(), 150);

    let restored = run(&server, words(&["collections", "restore", path, "--as", "docs_copy"])).await;
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(
        stderr(&restored).contains("restored docs_copy from"),
        "{}",
        stderr(&restored)
    );

    let get = |name: &str| pb::GetCollectionRequest { name: name.into() };
    let original = collections
        .get_collection(get("docs"))
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    let copy = collections
        .get_collection(get("docs_copy"))
        .await
        .unwrap()
        .into_inner()
        .collection
        .unwrap();
    assert_eq!(copy.name, "docs_copy");
    assert_eq!(
        (
            copy.dimension,
            copy.metric(),
            &copy.index,
            &copy.text_language,
            copy.multi_tenant,
            copy.index_build()
        ),
        (
            original.dimension,
            original.metric(),
            &original.index,
            &original.text_language,
            original.multi_tenant,
            original.index_build()
        )
    );
    assert_eq!(copy.index_state(), pb::IndexState::Ready);
    for tenant in ["acme", "globex"] {
        let before = scroll_all(&server, "docs", tenant).await;
        let after = scroll_all(&server, "docs_copy", tenant).await;
        assert_eq!((before.len(), after.len()), (150, 150), "{tenant}");
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(
                (&b.id, &b.text, &b.metadata, &b.tenant),
                (&a.id, &a.text, &a.metadata, &a.tenant)
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&b.vector), bits(&a.vector), "vector of {}", a.id);
        }
    }
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(snapshot);
}
