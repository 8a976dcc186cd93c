"""What routing reads to a read replica costs a search, as a Python client sees it.

Two fathoms on one database: one without replicas, one with ``--replica-url``
naming a streaming standby of that database (``fathom postgres start
--replica-of``). One collection is loaded through the second; once the
standby has replayed it (an eventual Count through the replica fathom
returns every document), the same reads run, interleaved read by read: a
Get of one document by id (the cheapest read: what routing adds shows
here), and a vector search (limit 10, id, text and metadata of each hit),
each as:

- ``primary``: through the fathom without replicas;
- ``replica``: through the fathom with the replica, eventual (round robin to
  the replica);
- ``replica+token``: the same, from a client that carries the token of its
  last write (read your writes), which the replica has replayed;
- ``strong``: the same fathom, forced to the primary.

Each figure is the p50 (and p90) over the reads at concurrency 1, each
read's best of ``--repeat``. Both PostgreSQLs run on this machine, so a
search on the standby costs what it costs on the primary; the differences
are fathom's routing. Figures go to docs/benchmarks.md.

    python bench/sdk/replica_routing.py --primary-only 127.0.0.1:20251 \\
        --with-replica 127.0.0.1:20252
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client" / "python"))

from fathom import Client  # noqa: E402
from fathom.v1 import documents_pb2, search_pb2  # noqa: E402


def unit_vector(rng: random.Random, dimension: int) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(dimension)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def timed_search(client: Client, name: str, vector: list[float], consistency: str | None) -> float:
    """Seconds one search takes, through the stub (so the consistency can be chosen)."""
    request = search_pb2.SearchRequest(collection=name, vector=vector, limit=10)
    if consistency == "strong":
        request.consistency.CopyFrom(documents_pb2.ReadConsistency(strong=True))
    started = time.perf_counter()
    for _ in client._stream(client._search.Search, request, client.timeout):
        pass
    return time.perf_counter() - started


def timed_get(client: Client, name: str, document_id: str, consistency: str | None) -> float:
    """Seconds one Get of one id takes."""
    request = documents_pb2.GetRequest(collection=name, ids=[document_id])
    if consistency == "strong":
        request.consistency.CopyFrom(documents_pb2.ReadConsistency(strong=True))
    started = time.perf_counter()
    client._unary(client._documents.Get, request)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--primary-only", required=True, help="host:port of a fathom without replicas")
    parser.add_argument("--with-replica", required=True, help="host:port of a fathom with --replica-url")
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    rng = random.Random(7)
    name = f"replica_bench_{secrets.token_hex(4)}"
    writer = Client(args.with_replica, timeout=600)
    docs = writer.create_collection(name, dimension=args.dimension, defer_index=True)
    try:
        ids = [f"d{i}" for i in range(args.documents)]
        vectors = [unit_vector(rng, args.dimension) for _ in ids]
        docs.upsert(ids, vectors, texts=[f"document {i}" for i in ids], build_index_at_end=True)
        # One write after the index build: its token is the writer's, and
        # once the standby counts it, it has replayed the build too.
        docs.upsert(["last"], [unit_vector(rng, args.dimension)])
        eventual = Client(args.with_replica, read_your_writes=False)
        while eventual.collection(name).count() < args.documents + 1:
            time.sleep(0.1)
        clients = {
            "primary": (Client(args.primary_only, read_your_writes=False), None),
            "replica": (eventual, None),
            "replica+token": (writer, None),
            "strong": (eventual, "strong"),
        }
        queries = [unit_vector(rng, args.dimension) for _ in range(args.queries)]
        for vector in queries[:100]:  # warm both servers' caches and connections
            for client, consistency in clients.values():
                timed_search(client, name, vector, consistency)
        times: dict[tuple[str, str], list[float]] = {}
        for number, vector in enumerate(queries):
            for mode, (client, consistency) in clients.items():
                get = min(timed_get(client, name, ids[number], consistency) for _ in range(args.repeat))
                search = min(timed_search(client, name, vector, consistency) for _ in range(args.repeat))
                times.setdefault(("get", mode), []).append(get)
                times.setdefault(("search", mode), []).append(search)
        print(f"{args.documents} documents x {args.dimension}, {args.queries} reads of each kind, best of {args.repeat}")
        for (kind, mode), samples in times.items():
            p50 = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            base = statistics.median(times[(kind, "primary")])
            print(
                f"{kind:>6} {mode:>14}: p50 {p50 * 1000:.3f} ms, p90 {p90 * 1000:.3f} ms, "
                f"p50 - primary's {(p50 - base) * 1000:+.3f} ms"
            )
    finally:
        writer.delete_collection(name)


if __name__ == "__main__":
    main()
