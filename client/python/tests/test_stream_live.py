"""The UpsertStream protocol against the live server at $FATHOM_SERVER:
sequence numbers and acks, the in-flight window, rejected batches, resume
across calls (an interrupted upsert run again with the same stream id) and
inside a call (the connection cut for real by a TCP link in between), and
the unary Upsert. Sync and asyncio.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest

from fathom import AsyncClient, Client, Collection, FathomError, FieldViolation, UpsertRejectedError
from fathom.v1 import documents_pb2

from .conftest import unique_name
from .netcut import CuttableLink

pytestmark = pytest.mark.live

DIM = 8


def make_docs(n: int, seed: int = 1, prefix: str = "s") -> list[dict[str, Any]]:
    """Documents with unique ids and texts of random length (so that a byte
    limit cuts batches of varying sizes)."""
    rng = random.Random(seed)
    return [
        {
            "id": f"{prefix}{i:05d}",
            "vector": [rng.uniform(-1, 1) for _ in range(DIM)],
            "text": "word " * rng.randint(0, 200),
            "metadata": {"i": i},
        }
        for i in range(n)
    ]


@pytest.fixture
def collection(live: Client) -> Iterator[Collection]:
    name = unique_name("pystream")
    docs = live.create_collection(name, DIM)
    yield docs
    try:
        live.delete_collection(name)
    except FathomError:
        pass


def committed_batches(client: Client, collection: str, stream_id: str, tenant: str = "") -> int:
    """The highest sequence number the server committed for a stream id, read
    by opening the stream on the raw stub (and closing it at once)."""
    open_request = documents_pb2.UpsertStreamRequest(
        open=documents_pb2.OpenStream(collection=collection, tenant=tenant, stream_id=stream_id)
    )
    responses = list(client._documents.UpsertStream(iter([open_request]), timeout=30))
    assert len(responses) == 1 and responses[0].WhichOneof("response") == "opened", responses
    return int(responses[0].opened.next_sequence) - 1


def settled_committed_batches(client: Client, collection: str, stream_id: str) -> int:
    """committed_batches once it stops changing: after a call is cancelled,
    the server may still commit the batch it was writing."""
    last = committed_batches(client, collection, stream_id)
    while True:
        time.sleep(0.3)
        now = committed_batches(client, collection, stream_id)
        if now == last:
            return now
        last = now


class Interrupted(Exception):
    """Raised by a source to interrupt an upsert part-way."""


def interrupting(docs: list[dict[str, Any]], acked: Callable[[], int], after_batches: int) -> Iterator[dict[str, Any]]:
    """Yields docs until `after_batches` batches have been acknowledged, then raises."""
    for doc in docs:
        if acked() >= after_batches:
            raise Interrupted(f"interrupted after {acked()} acknowledged batches")
        yield doc


# -- sequence numbers, acks, window --------------------------------------------------------


@pytest.mark.parametrize("window", [1, 4])
def test_many_batches_are_numbered_and_acknowledged(
    live: Client, collection: Collection, window: int
) -> None:
    n, size = 3000, 50
    stream_id = f"seq-{collection.name}"
    pulled = 0
    acked_docs = 0
    ahead: list[int] = []
    acks: list[int] = []

    def on_ack(documents: int) -> None:
        nonlocal acked_docs
        acked_docs += documents
        acks.append(documents)

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for doc in make_docs(n):
            pulled += 1
            ahead.append(pulled - acked_docs)
            yield doc

    summary = collection.upsert_iter(
        source(), batch_size=size, stream_id=stream_id, max_in_flight=window, progress=on_ack
    )
    assert (summary.documents_written, summary.batches) == (n, n // size)
    assert (summary.skipped_documents, summary.skipped_batches) == (0, 0)
    assert (summary.already_committed, summary.reconnects) == (0, 0)
    assert summary.elapsed > 0
    assert acks == [size] * (n // size)
    assert collection.count() == n
    # The batches were numbered 1..60 and every one was committed.
    assert committed_batches(live, collection.name, stream_id) == n // size
    # Never more unacknowledged documents than the window plus the batch being cut.
    assert max(ahead) <= size * (window + 1)


def test_empty_upsert(live: Client, collection: Collection) -> None:
    summary = collection.upsert([], [], stream_id=f"empty-{collection.name}")
    assert (summary.documents_written, summary.batches, summary.skipped_documents) == (0, 0, 0)
    assert committed_batches(live, collection.name, f"empty-{collection.name}") == 0


def test_bad_input_fails_before_sending(collection: Collection) -> None:
    with pytest.raises(ValueError, match="same length"):
        collection.upsert(["a", "b"], [[1.0] * DIM])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        collection.upsert(["a"], [[1.0] * DIM], batch_size=0)
    with pytest.raises(ValueError, match="batch_bytes must be at least 1"):
        collection.upsert(["a"], [[1.0] * DIM], batch_bytes=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        collection.upsert(["a"], [[1.0] * DIM], max_in_flight=0)
    assert collection.count() == 0


# -- rejections ---------------------------------------------------------------------------------


def test_rejected_batch_mid_stream(collection: Collection) -> None:
    n, size, bad = 2000, 100, 1234
    docs = make_docs(n)
    docs[bad]["vector"][3] = math.nan
    ids = [d["id"] for d in docs]
    with pytest.raises(UpsertRejectedError) as caught:
        collection.upsert_iter(docs, batch_size=size, max_in_flight=4)
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == [f"documents[{bad % size}].vector"]
    assert "documents[34].vector" in str(error)
    assert (error.sequence, error.batch_offset) == (bad // size + 1, bad // size * size)
    # Every batch before the rejected one is stored, nothing of the rejected one;
    # batches already in flight behind it may be stored too, and are counted.
    assert collection.count({"$id": {"$in": ids[:1200]}}) == 1200
    assert collection.count({"$id": {"$in": ids[1200:1300]}}) == 0
    stored = collection.count()
    assert error.documents_written == stored
    assert 1200 <= stored <= 1200 + 3 * size and stored % size == 0


def test_async_rejected_batch_mid_stream(server_target: str) -> None:
    docs = make_docs(600)
    docs[250]["vector"][0] = math.inf

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            collection = await client.create_collection(unique_name("pyastream"), DIM)
            try:
                with pytest.raises(UpsertRejectedError) as caught:
                    await collection.upsert_iter(docs, batch_size=100)
                assert caught.value.violations[0].field == "documents[50].vector"
                assert (caught.value.sequence, caught.value.batch_offset) == (3, 200)
                assert await collection.count({"$id": {"$in": [d["id"] for d in docs[:200]]}}) == 200
                assert caught.value.documents_written == await collection.count()
            finally:
                await client.delete_collection(collection.name)

    asyncio.run(scenario())


# -- resume across calls -------------------------------------------------------------------------


def test_interrupted_upsert_resumes_with_the_same_stream_id(live: Client, collection: Collection) -> None:
    n = 3000
    docs = make_docs(n, seed=2)
    stream_id = f"resume-{collection.name}"
    # Batches of at most 100 documents and 20 kB: texts vary, so sizes vary.
    settings: dict[str, Any] = {"batch_size": 100, "batch_bytes": 20_000, "stream_id": stream_id}
    acked = 0

    def on_ack(documents: int) -> None:
        nonlocal acked
        acked += 1

    with pytest.raises(Interrupted):
        collection.upsert_iter(interrupting(docs, lambda: acked, 8), progress=on_ack, **settings)
    committed = settled_committed_batches(live, collection.name, stream_id)
    assert committed >= 8
    stored = collection.count()
    assert 0 < stored < n

    skipped_progress: list[int] = []
    second = collection.upsert_iter(docs, progress=skipped_progress.append, **settings)
    assert second.skipped_batches == committed
    assert second.skipped_documents == stored  # exactly what the first run committed
    assert second.documents_written == n - stored
    assert sum(skipped_progress) == n  # progress covers skipped batches too
    assert second.already_committed == 0 and second.reconnects == 0
    assert collection.count() == n
    got = collection.get([docs[0]["id"], docs[-1]["id"]], include=["text"])
    assert [d.text for d in got] == [docs[0]["text"], docs[-1]["text"]]

    # Run again: everything is skipped, nothing sent.
    third = collection.upsert_iter(docs, **settings)
    assert (third.skipped_documents, third.documents_written, third.batches) == (n, 0, 0)
    assert third.skipped_batches == committed + second.batches
    assert collection.count() == n


def test_async_cancelled_upsert_resumes(server_target: str, live: Client) -> None:
    n = 2000
    docs = make_docs(n, seed=4)

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            collection = await client.create_collection(unique_name("pyaresume"), DIM)
            stream_id = f"cancel-{collection.name}"
            try:
                acked = asyncio.Event()
                count = 0

                def on_ack(documents: int) -> None:
                    nonlocal count
                    count += 1
                    if count == 5:
                        acked.set()

                async def slow_source() -> AsyncIterator[dict[str, Any]]:
                    for doc in docs:
                        await asyncio.sleep(0)
                        yield doc

                task = asyncio.create_task(
                    collection.upsert_iter(slow_source(), batch_size=50, stream_id=stream_id, progress=on_ack)
                )
                await acked.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                committed = await asyncio.to_thread(
                    settled_committed_batches, live, collection.name, stream_id
                )
                assert 5 <= committed < n // 50
                stored = await collection.count()
                assert stored == committed * 50

                summary = await collection.upsert_iter(slow_source(), batch_size=50, stream_id=stream_id)
                assert (summary.skipped_documents, summary.skipped_batches) == (stored, committed)
                assert summary.documents_written == n - stored
                assert await collection.count() == n
            finally:
                await client.delete_collection(collection.name)

    asyncio.run(scenario())


# -- resume inside a call (the connection is cut) -------------------------------------------------


def test_cut_connection_resumes_inside_the_call(live: Client, server_target: str, collection: Collection) -> None:
    n, size = 3000, 50
    stream_id = f"cut-{collection.name}"
    with CuttableLink(server_target) as link, Client(link.target, reconnect_delays=(0.2,) * 10) as client:
        handle = client.collection(collection.name)
        acked = 0

        def on_ack(documents: int) -> None:
            nonlocal acked
            acked += 1
            if acked in (5, 30):
                link.cut()

        summary = handle.upsert_iter(make_docs(n, seed=6), batch_size=size, stream_id=stream_id, progress=on_ack)
    assert link.cuts == 2 and summary.reconnects >= 2
    # Nothing committed was sent again (it would have come back `already_committed`).
    assert summary.already_committed == 0
    # Batches committed before the cut whose acks were lost count as written.
    assert (summary.documents_written, summary.batches, summary.skipped_documents) == (n, n // size, 0)
    assert collection.count() == n
    assert committed_batches(live, collection.name, stream_id) == n // size


def test_cut_connection_without_stream_id_fails(server_target: str, collection: Collection) -> None:
    with CuttableLink(server_target) as link, Client(link.target, reconnect_delays=(0.0,) * 3) as client:
        acked = 0

        def on_ack(documents: int) -> None:
            nonlocal acked
            acked += 1
            if acked == 3:
                link.cut()

        with pytest.raises(FathomError) as caught:
            client.collection(collection.name).upsert_iter(make_docs(2000), batch_size=50, progress=on_ack)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    stored = collection.count()
    assert 150 <= stored < 2000


def test_async_cut_connection_resumes_inside_the_call(server_target: str, live: Client, collection: Collection) -> None:
    n, size = 2000, 50
    stream_id = f"acut-{collection.name}"

    async def scenario(link: CuttableLink) -> None:
        async with AsyncClient(link.target, timeout=60, reconnect_delays=(0.2,) * 10) as client:
            acked = 0

            def on_ack(documents: int) -> None:
                nonlocal acked
                acked += 1
                if acked == 7:
                    link.cut()

            summary = await client.collection(collection.name).upsert_iter(
                make_docs(n, seed=8), batch_size=size, stream_id=stream_id, progress=on_ack
            )
            assert summary.reconnects >= 1
            assert (summary.documents_written, summary.batches) == (n, n // size)

    with CuttableLink(server_target) as link:
        asyncio.run(scenario(link))
    assert collection.count() == n
    assert committed_batches(live, collection.name, stream_id) == n // size


def test_reconnects_give_up_without_a_server() -> None:
    with Client("127.0.0.1:1", timeout=2, reconnect_delays=(0.0, 0.0)) as client:
        with pytest.raises(FathomError) as caught:
            client.collection("docs").upsert(["a"], [[1.0]], stream_id="never")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


# -- unary Upsert -----------------------------------------------------------------------------------


def test_upsert_batch(collection: Collection) -> None:
    vectors = [[0.1 * i] * DIM for i in range(1, 4)]
    written = collection.upsert_batch(["a", "b", "c"], vectors, texts=["x", None, "z"], metadatas=[{"k": 1}, None, None])
    assert written == 3
    assert collection.count() == 3
    assert collection.upsert_batch(["a"], vectors[:1], texts=["replaced"]) == 1
    (doc,) = collection.get(["a"])
    assert (doc.text, doc.metadata) == ("replaced", {})

    # All or nothing: one bad document refuses the batch.
    with pytest.raises(FathomError) as caught:
        collection.upsert_batch(["d", "e"], [[0.5] * DIM, [math.nan] * DIM])
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["documents[1].vector"]
    with pytest.raises(FathomError) as caught:
        collection.upsert_batch(["f", "f"], [[0.5] * DIM, [0.5] * DIM])
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert collection.count() == 3


def test_upsert_batch_tenants_and_async(live: Client, server_target: str) -> None:
    name = unique_name("pybatch")
    tenants = live.create_collection(name, DIM, multi_tenant=True)
    try:
        assert tenants.upsert_batch(["a", "b"], [[1.0] * DIM] * 2, tenant="acme") == 2
        with pytest.raises(FathomError) as caught:
            tenants.upsert_batch(["c"], [[1.0] * DIM])  # a multi-tenant collection needs a tenant
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT

        async def scenario() -> None:
            async with AsyncClient(server_target) as client:
                handle = client.collection(name, tenant="globex")
                assert await handle.upsert_batch(["x"], [[2.0] * DIM], texts=["hello"]) == 1
                with pytest.raises(FathomError) as bad:
                    await handle.upsert_batch(["y"], [[2.0] * (DIM + 1)])
                assert bad.value.violations[0] == FieldViolation(
                    "documents[0].vector", bad.value.violations[0].description
                )

        asyncio.run(scenario())
        assert tenants.count(tenant="acme") == 2 and tenants.count(tenant="globex") == 1
    finally:
        live.delete_collection(name)
