"""The UpsertStream protocol against the live server at $FATHOM_SERVER:
batches placed by input position and acknowledged, the in-flight window,
refused batches, exact resume across calls (an upsert that failed, run again
with the same stream id and another batch size; on other data it is
refused), input errors, resume inside a call (the connection cut for real by
a TCP link in between), and the unary Upsert. Sync and asyncio. Every figure
an upsert reports is checked against what the database holds.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from fathom import (
    AsyncClient,
    Client,
    Collection,
    FathomError,
    FieldViolation,
    ResumeMismatchError,
    RetryPolicy,
    UpsertError,
    UpsertInputError,
    UpsertRejectedError,
)
from fathom._upsert import ids_digest
from fathom.v1 import documents_pb2

from .conftest import Face, unique_name
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
def collection(client: Client) -> Iterator[Collection]:
    """A new collection, written through each face of the client."""
    name = unique_name("pystream")
    docs = client.create_collection(name, DIM)
    yield docs
    try:
        client.delete_collection(name)
    except FathomError:
        pass


def stream_state(client: Client, collection: str, stream_id: str, tenant: str = "") -> documents_pb2.StreamOpened:
    """Where the server says a stream id stands (committed documents, last
    id, ids digest), read by opening the stream on the raw stub and closing
    it at once."""
    open_request = documents_pb2.UpsertStreamRequest(
        open=documents_pb2.OpenStream(collection=collection, tenant=tenant, stream_id=stream_id)
    )
    responses = list(client._documents.UpsertStream(iter([open_request]), timeout=30))
    assert len(responses) == 1 and responses[0].WhichOneof("response") == "opened", responses
    return responses[0].opened


def assert_committed_prefix(client: Client, collection: Collection, stream_id: str, docs: list[dict[str, Any]], n: int) -> None:
    """The server holds exactly the first n documents of `docs` under the stream id."""
    state = stream_state(client, collection.name, stream_id)
    assert state.committed_documents == n
    assert state.last_id == (docs[n - 1]["id"] if n else "")
    assert state.ids_digest == ids_digest(d["id"] for d in docs[:n])


class Interrupted(Exception):
    """Raised by a source to make an upsert fail part-way."""


def failing_at(docs: list[dict[str, Any]], position: int) -> Iterator[dict[str, Any]]:
    """Yields docs[:position], then raises (like a malformed line)."""
    yield from docs[:position]
    raise Interrupted(f"line {position + 1} is malformed")


# -- batches, acks, window ---------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 4])
def test_many_batches_are_acknowledged_and_the_summary_equals_the_database(
    live: Client, collection: Collection, window: int
) -> None:
    n, size = 3000, 50
    docs = make_docs(n)
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
        for doc in docs:
            pulled += 1
            ahead.append(pulled - acked_docs)
            yield doc

    summary = collection.upsert_iter(
        source(), batch_size=size, stream_id=stream_id, max_in_flight=window, progress=on_ack
    )
    assert (summary.committed_documents, summary.documents_written, summary.batches) == (n, n, n // size)
    assert (summary.skipped_documents, summary.already_committed, summary.reconnects) == (0, 0, 0)
    assert summary.elapsed > 0
    assert acks == [size] * (n // size)
    assert collection.count() == summary.committed_documents
    assert_committed_prefix(live, collection, stream_id, docs, n)
    # Never more unacknowledged documents than the window plus the batch being cut.
    assert max(ahead) <= size * (window + 1)


def test_empty_upsert(live: Client, collection: Collection) -> None:
    summary = collection.upsert([], [], stream_id=f"empty-{collection.name}")
    assert (summary.committed_documents, summary.documents_written, summary.batches) == (0, 0, 0)
    assert_committed_prefix(live, collection, f"empty-{collection.name}", [], 0)
    assert stream_state(live, collection.name, f"empty-{collection.name}").ids_digest == bytes(32)


def test_bad_arguments_fail_before_sending(collection: Collection) -> None:
    with pytest.raises(ValueError, match="same length"):
        collection.upsert(["a", "b"], [[1.0] * DIM])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        collection.upsert(["a"], [[1.0] * DIM], batch_size=0)
    with pytest.raises(ValueError, match="batch_bytes must be at least 1"):
        collection.upsert(["a"], [[1.0] * DIM], batch_bytes=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        collection.upsert(["a"], [[1.0] * DIM], max_in_flight=0)
    assert collection.count() == 0


# -- refusals ---------------------------------------------------------------------------------


def test_refused_batch_mid_stream_without_stream_id(collection: Collection) -> None:
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
    assert (error.sequence, error.batch_offset, error.batch_documents) == (bad // size + 1, 1200, size)
    # Every batch before the refused one is stored, nothing of the refused one;
    # without a stream id, batches already in flight behind it are written too.
    assert collection.count({"$id": {"$in": ids[:1200]}}) == 1200
    assert collection.count({"$id": {"$in": ids[1200:1300]}}) == 0
    stored = collection.count()
    assert error.documents_written == error.committed_documents == stored
    assert 1200 <= stored <= 1200 + 3 * size and stored % size == 0


def test_refused_batch_on_a_resumable_stream_leaves_a_prefix_and_resumes_after_the_fix(
    live: Client, collection: Collection
) -> None:
    n, bad = 2000, 1234
    docs = make_docs(n, seed=3)
    stream_id = f"refused-{collection.name}"
    broken = [dict(d) for d in docs]
    broken[bad] = {**docs[bad], "vector": [math.nan] * DIM}
    with pytest.raises(UpsertRejectedError) as caught:
        collection.upsert_iter(broken, batch_size=100, stream_id=stream_id, max_in_flight=4)
    error = caught.value
    # The batches behind the refused one were refused too: what is committed
    # is exactly the prefix before it.
    assert (error.batch_offset, error.committed_documents, error.documents_written) == (1200, 1200, 1200)
    assert collection.count() == 1200
    assert_committed_prefix(live, collection, stream_id, docs, 1200)

    # Fixed, and run again with another batch size: it continues exactly.
    summary = collection.upsert_iter(docs, batch_size=70, stream_id=stream_id)
    assert (summary.skipped_documents, summary.documents_written, summary.committed_documents) == (1200, 800, n)
    assert collection.count() == n
    assert_committed_prefix(live, collection, stream_id, docs, n)


def test_async_refused_batch_mid_stream(server_target: str) -> None:
    docs = make_docs(600)
    docs[250]["vector"][0] = math.inf

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            collection = await client.create_collection(unique_name("pyastream"), DIM)
            try:
                with pytest.raises(UpsertRejectedError) as caught:
                    await collection.upsert_iter(docs, batch_size=100, stream_id=f"r-{collection.name}")
                assert caught.value.violations[0].field == "documents[50].vector"
                assert (caught.value.sequence, caught.value.batch_offset) == (3, 200)
                assert caught.value.committed_documents == 200 == await collection.count()
            finally:
                await client.delete_collection(collection.name)

    asyncio.run(scenario())


# -- exact resume across calls ------------------------------------------------------------------


def test_resume_after_an_input_error_with_another_batch_size_ends_exact(live: Client, collection: Collection) -> None:
    n, bad = 3000, 1234
    docs = make_docs(n, seed=2)
    ids = [d["id"] for d in docs]
    stream_id = f"resume-{collection.name}"
    with pytest.raises(UpsertInputError) as caught:
        collection.upsert_iter(failing_at(docs, bad), batch_size=100, stream_id=stream_id, max_in_flight=4)
    error = caught.value
    assert isinstance(error.__cause__, Interrupted)
    assert error.position == bad
    assert f"line {bad + 1} is malformed" in str(error)
    # The partial batch (documents 1200..1233) was not sent; the batches
    # before it were acknowledged before the error was raised.
    assert (error.committed_documents, error.documents_written) == (1200, 1200)
    assert collection.count() == error.committed_documents
    assert collection.count({"$id": {"$in": ids[1200:bad]}}) == 0
    assert_committed_prefix(live, collection, stream_id, docs, 1200)

    # The fixed input, run again with another batch size (and a byte limit).
    progress: list[int] = []
    second = collection.upsert_iter(docs, batch_size=300, batch_bytes=40_000, stream_id=stream_id, progress=progress.append)
    assert (second.skipped_documents, second.documents_written) == (1200, n - 1200)
    assert second.committed_documents == n == collection.count()
    assert (second.already_committed, second.reconnects) == (0, 0)
    assert progress[0] == 1200 and sum(progress) == n
    got = collection.get([ids[0], ids[bad], ids[-1]], include=["text"])
    assert [d.text for d in got] == [docs[0]["text"], docs[bad]["text"], docs[-1]["text"]]
    assert_committed_prefix(live, collection, stream_id, docs, n)

    # Run again with yet another batch size: everything is skipped, nothing sent.
    third = collection.upsert_iter(docs, batch_size=7, stream_id=stream_id)
    assert (third.skipped_documents, third.documents_written, third.batches) == (n, 0, 0)
    assert third.committed_documents == n == collection.count()


def test_resume_on_different_data_is_refused_and_writes_nothing(live: Client, collection: Collection) -> None:
    docs = make_docs(700, seed=5)
    stream_id = f"mismatch-{collection.name}"
    first = collection.upsert_iter(docs[:500], batch_size=64, stream_id=stream_id)
    assert first.committed_documents == 500 == collection.count()

    other = make_docs(700, seed=5, prefix="t")  # same vectors, other ids
    with pytest.raises(ResumeMismatchError) as caught:
        collection.upsert_iter(other, batch_size=64, stream_id=stream_id)
    error = caught.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == (
        f"stream id {stream_id!r} has 500 documents committed, but the first 500 documents of this "
        "input are not the ones committed under it (their ids differ): a stream id belongs to one "
        "input; use a new stream id for other data"
    )
    assert (error.committed_documents, error.documents_written) == (500, 0)

    with pytest.raises(ResumeMismatchError, match="this input has only 300 documents"):
        collection.upsert_iter(docs[:300], stream_id=stream_id)
    # Nothing was written by either.
    assert collection.count() == 500
    assert collection.count({"$id": {"$in": [d["id"] for d in other]}}) == 0
    assert_committed_prefix(live, collection, stream_id, docs, 500)

    # The same input with more appended resumes: only the new documents are sent.
    appended = collection.upsert_iter(docs, batch_size=33, stream_id=stream_id)
    assert (appended.skipped_documents, appended.documents_written) == (500, 200)
    assert appended.committed_documents == 700 == collection.count()


def test_async_resume_after_an_input_error_with_another_batch_size(server_target: str, live: Client) -> None:
    n, bad = 1500, 777
    docs = make_docs(n, seed=9)

    async def source(upto: int | None) -> AsyncIterator[dict[str, Any]]:
        for position, doc in enumerate(docs):
            if position == upto:
                raise Interrupted(f"line {position + 1} is malformed")
            await asyncio.sleep(0)
            yield doc

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            collection = await client.create_collection(unique_name("pyaresume"), DIM)
            stream_id = f"ainput-{collection.name}"
            try:
                with pytest.raises(UpsertInputError) as caught:
                    await collection.upsert_iter(source(bad), batch_size=50, stream_id=stream_id)
                assert caught.value.position == bad
                assert caught.value.committed_documents == 750 == await collection.count()
                summary = await collection.upsert_iter(source(None), batch_size=128, stream_id=stream_id)
                assert (summary.skipped_documents, summary.documents_written) == (750, n - 750)
                assert summary.committed_documents == n == await collection.count()
            finally:
                await client.delete_collection(collection.name)

    asyncio.run(scenario())


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

                # Resumed with another batch size. A batch the cancelled call had
                # in flight may still commit meanwhile: then the server skips it.
                summary = await collection.upsert_iter(slow_source(), batch_size=70, stream_id=stream_id)
                assert summary.skipped_documents >= 5 * 50
                assert summary.skipped_documents + summary.documents_written <= n
                assert summary.committed_documents == n == await collection.count()
            finally:
                await client.delete_collection(collection.name)

    asyncio.run(scenario())


def test_dropping_the_collection_under_a_stream_stops_it_with_not_found(live: Client, collection: Collection) -> None:
    docs = make_docs(1000, seed=11)

    def source() -> Iterator[dict[str, Any]]:
        for position, doc in enumerate(docs):
            if position == 500:
                live.delete_collection(collection.name)
            yield doc

    with pytest.raises(UpsertError) as caught:
        collection.upsert_iter(source(), batch_size=50, stream_id=f"drop-{collection.name}")
    error = caught.value
    assert error.code == grpc.StatusCode.NOT_FOUND, error
    assert error.committed_documents <= 500 and error.documents_written == error.committed_documents


# -- resume inside a call (the connection is cut) -------------------------------------------------


def test_cut_connection_resumes_inside_the_call(
    live: Client, face: Face, server_target: str, collection: Collection
) -> None:
    n, size = 3000, 50
    docs = make_docs(n, seed=6)
    stream_id = f"cut-{collection.name}"
    with CuttableLink(server_target) as link, face.connect(link.target, retry=RetryPolicy(max_stream_attempts=11, initial_backoff=0.2, max_backoff=0.2)) as client:
        handle = client.collection(collection.name)
        acked = 0

        def on_ack(documents: int) -> None:
            nonlocal acked
            acked += 1
            if acked in (5, 30):
                link.cut()

        summary = handle.upsert_iter(docs, batch_size=size, stream_id=stream_id, progress=on_ack)
    assert link.cuts == 2 and summary.reconnects >= 2
    # Every batch is counted once: written (acknowledged, or found committed
    # after a reconnect), or re-acknowledged as committed when the cut
    # connection's write committed after the reopen. Which, depends on timing.
    assert summary.batches + summary.already_committed == n // size
    assert (summary.documents_written, summary.committed_documents, summary.skipped_documents) == (n, n, 0)
    assert collection.count() == n
    assert_committed_prefix(live, collection, stream_id, docs, n)


def test_cut_connection_without_stream_id_fails(face: Face, server_target: str, collection: Collection) -> None:
    with CuttableLink(server_target) as link, face.connect(link.target, retry=RetryPolicy(max_stream_attempts=4, initial_backoff=0.0)) as client:
        acked = 0

        def on_ack(documents: int) -> None:
            nonlocal acked
            acked += 1
            if acked == 3:
                link.cut()

        with pytest.raises(UpsertError) as caught:
            client.collection(collection.name).upsert_iter(make_docs(2000), batch_size=50, progress=on_ack)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.committed_documents == caught.value.documents_written >= 150
    # Batches in flight at the cut may have been written too.
    assert caught.value.committed_documents <= collection.count() < 2000


def test_async_cut_connection_resumes_inside_the_call(server_target: str, live: Client, collection: Collection) -> None:
    n, size = 2000, 50
    docs = make_docs(n, seed=8)
    stream_id = f"acut-{collection.name}"

    async def scenario(link: CuttableLink) -> None:
        async with AsyncClient(link.target, timeout=60, retry=RetryPolicy(max_stream_attempts=11, initial_backoff=0.2, max_backoff=0.2)) as client:
            acked = 0

            def on_ack(documents: int) -> None:
                nonlocal acked
                acked += 1
                if acked == 7:
                    link.cut()

            summary = await client.collection(collection.name).upsert_iter(
                docs, batch_size=size, stream_id=stream_id, progress=on_ack
            )
            assert summary.reconnects >= 1
            assert summary.batches + summary.already_committed == n // size
            assert (summary.documents_written, summary.committed_documents) == (n, n)

    with CuttableLink(server_target) as link:
        asyncio.run(scenario(link))
    assert collection.count() == n
    assert_committed_prefix(live, collection, stream_id, docs, n)


def test_reconnects_give_up_without_a_server(face: Face) -> None:
    with face.connect("127.0.0.1:1", timeout=2, retry=RetryPolicy(max_stream_attempts=3, initial_backoff=0.0)) as client:
        with pytest.raises(UpsertError) as caught:
            client.collection("docs").upsert(["a"], [[1.0]], stream_id="never")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert (caught.value.committed_documents, caught.value.documents_written) == (0, 0)


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
