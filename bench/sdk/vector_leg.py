"""The vector leg as a Python client sees it: fathom through the Python SDK
against hand-written pgvector SQL through psycopg, on the same documents in
the same database, in one run.

- Data: 768-d unit vectors near a random 32-d subspace (a Gaussian latent
  point, projected, plus 5 % isotropic noise, normalised: the way real
  embeddings lie near a low-dimensional manifold), a short text and a small
  metadata object per document; queries drawn the same way, not copies of
  documents. Fixed seeds.
- Fathom: a collection at its defaults (HNSW m 16, ef_construction 64, over
  half-precision vectors, re-ranked in single precision, built
  automatically), loaded by one SDK call (`upsert`), which returns once the
  server has built the index at the stream's end; that call is timed.
- Hand-written: the same rows copied into a table of its own with pgvector's
  HNSW index over the single-precision column (m 16, ef_construction 64),
  queried as pgvector's README does (`SET hnsw.ef_search`, then `ORDER BY
  embedding <=> $1 LIMIT 10`), prepared.
- Both return id, text and metadata of 10 hits. Recall@10 against an exact
  scan. p50 at concurrency 1 per ef_search, each query's best of 2 (the
  systems interleaved per ef_search); QPS at concurrency 8 (threads, one
  connection each for psycopg, one SDK client) at each system's lowest
  ef_search reaching recall 0.95, 3 runs of 3 s, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
import psycopg

EF_SEARCHES = (10, 20, 40, 100, 200, 400)
DIMENSION = 768
LATENT = 32
LIMIT = 10
COLLECTION = "sdk_vector_leg"
HAND_TABLE = "public.sdk_vector_leg_hand"


def embeddings(count: int, seed: int) -> np.ndarray:
    projection = np.random.default_rng(1).standard_normal((LATENT, DIMENSION)) / np.sqrt(LATENT)
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((count, LATENT))
    v = latent @ projection
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v += 0.05 * rng.standard_normal((count, DIMENSION)) / np.sqrt(DIMENSION)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def vector_text(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in v) + "]"


def load_fathom(client, vectors: np.ndarray) -> tuple[float, str]:
    """Creates the collection with defaults and loads it with one SDK call;
    the seconds that took (texts and metadata made before the clock starts)
    and the index state GetCollection reports after it."""
    if COLLECTION in {c.name for c in client.list_collections()}:
        client.delete_collection(COLLECTION)
    n = len(vectors)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    ids = [f"doc-{i:08d}" for i in range(n)]
    texts = [" ".join(words[(i >> k) % 8] for k in range(0, 24, 3)) for i in range(n)]
    metadatas = [{"n": i, "group": i % 100} for i in range(n)]
    started = time.perf_counter()
    col = client.create_collection(COLLECTION, DIMENSION, metric="cosine")
    col.upsert(ids, vectors, texts=texts, metadatas=metadatas, batch_size=1000)
    seconds = time.perf_counter() - started
    return seconds, client.get_collection(COLLECTION).index_state


def load_hand_written(conn) -> float:
    """The hand-written table, from fathom's rows; the seconds it took."""
    started = time.perf_counter()
    conn.execute(f"DROP TABLE IF EXISTS {HAND_TABLE}")
    conn.execute(
        f"CREATE TABLE {HAND_TABLE} AS SELECT id, embedding, body, metadata "
        f'FROM fathom_data."{COLLECTION}"'
    )
    conn.execute(f"ALTER TABLE {HAND_TABLE} ADD PRIMARY KEY (id)")
    conn.execute("SET maintenance_work_mem = '2GB'")
    conn.execute(
        f"CREATE INDEX ON {HAND_TABLE} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    seconds = time.perf_counter() - started
    conn.execute(f"VACUUM ANALYZE {HAND_TABLE}")
    conn.execute(f'VACUUM ANALYZE fathom_data."{COLLECTION}"')
    return seconds


HAND_SQL = f"SELECT id, body, metadata FROM {HAND_TABLE} ORDER BY embedding <=> %s::vector LIMIT {LIMIT}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--fathom", required=True, help="host:port of a fathom serving that database")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--markdown", help="where to write the results as markdown")
    args = parser.parse_args()

    from fathom import Client

    client = Client(args.fathom, timeout=3600)
    conn = psycopg.connect(args.database_url, autocommit=True)
    t0 = time.time()
    print(f"loading {args.documents} documents into fathom and the hand-written table ...", flush=True)
    fathom_load, index_state = load_fathom(client, embeddings(args.documents, seed=2))
    hand_load = load_hand_written(conn)
    print(
        f"  loaded in {time.time() - t0:.0f} s: one SDK call {fathom_load:.1f} s (index {index_state} after it), "
        f"the hand-written table {hand_load:.1f} s",
        flush=True,
    )
    if index_state != "ready":
        raise SystemExit(f"fathom's index is {index_state} after the load; a default collection builds it at the end")

    queries = embeddings(args.queries, seed=3)
    texts = [vector_text(q) for q in queries]
    conn.execute("SET enable_indexscan = off")
    exact = [
        {r[0] for r in conn.execute(f"SELECT id FROM {HAND_TABLE} ORDER BY embedding <=> %s::vector LIMIT {LIMIT}", (t,))}
        for t in texts
    ]
    conn.execute("RESET enable_indexscan")
    collection = client.collection(COLLECTION)

    def hand(c, i: int) -> list[str]:
        return [r[0] for r in c.execute(HAND_SQL, (texts[i],), prepare=True).fetchall()]

    def fathom(i: int, ef: int) -> list[str]:
        return [h.id for h in collection.search(queries[i], limit=LIMIT, ef_search=ef, include=["text", "metadata"])]

    def recall(search) -> float:
        return statistics.mean(len(set(search(i)) & exact[i]) / LIMIT for i in range(len(queries)))

    def p50(search) -> float:
        best = []
        for i in range(len(queries)):
            times = []
            for _ in range(2):
                t = time.perf_counter()
                search(i)
                times.append((time.perf_counter() - t) * 1000)
            best.append(min(times))
        return statistics.median(best)

    rows = []
    for ef in EF_SEARCHES:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        recall_hand = recall(lambda i: hand(conn, i))
        recall_fathom = recall(lambda i: fathom(i, ef))
        p50_hand = p50(lambda i: hand(conn, i))
        p50_fathom = p50(lambda i: fathom(i, ef))
        rows.append((ef, recall_hand, recall_fathom, p50_hand, p50_fathom))
        print(
            f"  ef_search {ef:4d}: hand-written p50 {p50_hand:7.3f} ms (recall {recall_hand:.3f}), "
            f"fathom via SDK {p50_fathom:7.3f} ms (recall {recall_fathom:.3f}), {p50_fathom - p50_hand:+.3f} ms",
            flush=True,
        )

    def lowest(column: int) -> int | None:
        return next((r[0] for r in rows if r[column] >= 0.95), None)

    ef_hand, ef_fathom = lowest(1), lowest(2)
    throughput = []
    if ef_hand and ef_fathom:

        def qps(worker, threads: int = 8, seconds: float = 3.0) -> float:
            stop = time.perf_counter() + seconds
            done = [0] * threads

            def run(k: int) -> None:
                search = worker()
                i = k
                while time.perf_counter() < stop:
                    search(i % len(queries))
                    i += threads
                    done[k] += 1

            pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
            started = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            return sum(done) / (time.perf_counter() - started)

        def hand_worker():
            c = psycopg.connect(args.database_url, autocommit=True)
            c.execute(f"SET hnsw.ef_search = {ef_hand}")
            return lambda i: hand(c, i)

        for _ in range(3):
            throughput.append((qps(hand_worker), qps(lambda: lambda i: fathom(i, ef_fathom))))
            print(f"  concurrency 8: hand-written {throughput[-1][0]:.0f} QPS, fathom via SDK {throughput[-1][1]:.0f} QPS", flush=True)

    lines = [
        f"### Vector leg through the Python SDK: {args.documents:,} × {DIMENSION}, {len(queries)} queries",
        "",
        f"Loading: CreateCollection with defaults and one `upsert` call of the Python SDK (batches of 1000), "
        f"which returns once the server has built the index: {fathom_load:.1f} s (index `{index_state}` after it). "
        f"The hand-written table from fathom's rows inside PostgreSQL (`CREATE TABLE AS`, primary key, "
        f"`CREATE INDEX … hnsw`, no parsing and no network: a stricter baseline than COPY from a file): "
        f"{hand_load:.1f} s; {fathom_load / hand_load:.2f} ×.",
        "",
        "| ef_search | hand-written p50 ms | recall@10 | fathom via SDK p50 ms | recall@10 | fathom − hand-written ms |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [f"| {ef} | {ph:.3f} | {rh:.3f} | {pf:.3f} | {rf:.3f} | {pf - ph:+.3f} |" for ef, rh, rf, ph, pf in rows]
    if throughput:
        hand_qps = statistics.median(t[0] for t in throughput)
        fathom_qps = statistics.median(t[1] for t in throughput)
        lines += [
            "",
            f"At recall@10 ≥ 0.95, concurrency 8 (median of 3 runs of 3 s): hand-written {hand_qps:.0f} QPS "
            f"at ef_search {ef_hand}, fathom via SDK {fathom_qps:.0f} QPS at ef_search {ef_fathom}: "
            f"{fathom_qps / hand_qps:.2f} ×.",
        ]
    else:
        lines += ["", "No ef_search measured reached recall@10 0.95 for both; no throughput comparison."]
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)
    client.delete_collection(COLLECTION)
    conn.execute(f"DROP TABLE {HAND_TABLE}")


if __name__ == "__main__":
    main()
