"""The retry table (docs/retries.md) against a real server and PostgreSQL:
a pool-busy refusal is retried until the call succeeds, and permanent
errors reach the caller after exactly one attempt.

The tests start a ``fathom serve`` of their own, with one pooled connection,
a batch limit of 2 documents and a metrics endpoint, on the SDK tests'
database; the server's ``grpc_server_handled_total`` counts the attempts.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from fathom import Client, FathomError

from .conftest import Face, env_or_skip, unique_name

pytestmark = pytest.mark.live

WAIT = 30.0
"""Longest wait for something the test waits on (the server, a lock, a refusal)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT:.0f} s")
        time.sleep(0.05)


class BusyServer:
    """A ``fathom serve`` with one pooled connection and a metrics endpoint."""

    def __init__(self, binary: str, database_url: str, psql: str) -> None:
        self.database_url = database_url
        self.psql = psql
        self.target = f"127.0.0.1:{_free_port()}"
        metrics_listen = f"127.0.0.1:{_free_port()}"
        self._metrics = f"http://{metrics_listen}/metrics"
        self.process = subprocess.Popen(
            [binary, "serve", "--max-connections", "1", "--max-batch-documents", "2"]
            + ["--metrics-listen", metrics_listen],
            env={"FATHOM_LISTEN": self.target, "DATABASE_URL": database_url, "RUST_LOG": "error"},
        )

    def handled(self, method: str, code: str) -> float:
        """How many ``method`` calls of the Documents service the server answered with ``code``."""
        with urllib.request.urlopen(self._metrics, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("grpc_server_handled_total{")
                and 'grpc_service="fathom.v1.Documents"' in line
                and f'grpc_method="{method}"' in line
                and f'grpc_code="{code}"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def sessions_waiting_on_a_lock(self) -> int:
        """The server's pooled sessions waiting on a lock."""
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'fathom' AND wait_event_type = 'Lock'"
        )
        out = subprocess.run(
            [self.psql, "-X", "-tA", "-c", query, self.database_url], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=WAIT)


class TableLock:
    """A psql session holding ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE`` until released."""

    def __init__(self, psql: str, database_url: str, table: str) -> None:
        self._psql = subprocess.Popen(
            [psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._psql.stdin is not None and self._psql.stdout is not None
        self._psql.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
        self._psql.stdin.flush()
        assert self._psql.stdout.readline().strip() == "locked"

    def release(self) -> None:
        """Rolls the transaction back (once; later calls do nothing)."""
        assert self._psql.stdin is not None
        if self._psql.stdin.closed:
            return
        self._psql.stdin.write("ROLLBACK;\n")
        self._psql.stdin.close()
        self._psql.wait(timeout=WAIT)


@pytest.fixture(scope="module")
def busy_server() -> Iterator[BusyServer]:
    binary, database_url, psql = env_or_skip(
        "FATHOM_TEST_BINARY", "FATHOM_TEST_SDK_DATABASE_URL", "FATHOM_TEST_PSQL"
    )
    server = BusyServer(binary, database_url, psql)
    try:
        with Client(server.target, timeout=5) as probe:

            def answers() -> bool:
                try:
                    probe.list_collections()
                    return True
                except FathomError:
                    return False

            _eventually(answers, "the busy server did not answer")
        yield server
    finally:
        server.stop()


def test_a_pool_busy_refusal_is_retried_and_the_retry_succeeds(face: Face, busy_server: BusyServer) -> None:
    """One Count holds the server's only pooled connection behind a table
    lock; a second waits for the pool and is refused as busy (with the
    RetryInfo mark); once the server has counted that refusal the lock goes,
    and the client's retry succeeds."""
    name = unique_name("busy")
    refused_before = busy_server.handled("Count", "ResourceExhausted")
    ok_before = busy_server.handled("Count", "OK")
    with face.connect(busy_server.target) as client:
        collection: Any = client.create_collection(name, dimension=3)
        lock = TableLock(busy_server.psql, busy_server.database_url, f"fathom_data.{name}")
        try:
            with ThreadPoolExecutor(2) as pool:
                holder = pool.submit(collection.count)
                _eventually(lambda: busy_server.sessions_waiting_on_a_lock() == 1, "the first Count never held the pool")
                retried = pool.submit(collection.count)
                _eventually(
                    lambda: busy_server.handled("Count", "ResourceExhausted") > refused_before,
                    "the second Count was never refused as busy",
                )
                lock.release()
                assert holder.result(timeout=WAIT) == 0
                assert retried.result(timeout=WAIT) == 0, "the busy refusal was not retried"
        finally:
            lock.release()
        client.delete_collection(name)
    assert busy_server.handled("Count", "ResourceExhausted") == refused_before + 1
    assert busy_server.handled("Count", "OK") == ok_before + 2


def test_permanent_errors_are_not_retried(face: Face, busy_server: BusyServer) -> None:
    """INVALID_ARGUMENT, and a RESOURCE_EXHAUSTED without the busy mark (a
    batch past the server's limit of 2), reach the caller after one attempt."""
    name = unique_name("permanent")
    invalid_before = busy_server.handled("Count", "InvalidArgument")
    too_large_before = busy_server.handled("Upsert", "ResourceExhausted")
    with face.connect(busy_server.target) as client:
        collection: Any = client.create_collection(name, dimension=3)
        with pytest.raises(FathomError) as invalid:
            client.collection("Not A Name").count()
        assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(FathomError) as too_large:
            collection.upsert_batch(["a", "b", "c"], [[1.0, 0.0, 0.0]] * 3)
        assert too_large.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and not too_large.value.busy
        client.delete_collection(name)
    assert busy_server.handled("Count", "InvalidArgument") == invalid_before + 1
    assert busy_server.handled("Upsert", "ResourceExhausted") == too_large_before + 1
