"""Connection options: the API key header and TLS settings, checked before a
call; and the key on the wire, seen by a tiny in-process gRPC server that
only records metadata. That recorder is the one stand-in in these tests:
fathom does not check keys yet, so only a recorder shows the header arrives
on every kind of call. Everything else runs against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from fathom import TLS, AsyncClient, Client, FathomError, RetryPolicy
from fathom._connection import api_key_metadata, connection


def test_the_api_key_is_a_bearer_token_and_defaults_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert api_key_metadata("k-1") == (("authorization", "Bearer k-1"),)
    monkeypatch.setenv("FATHOM_API_KEY", "from-env")
    assert api_key_metadata(None) == (("authorization", "Bearer from-env"),)
    assert api_key_metadata("") == ()
    monkeypatch.delenv("FATHOM_API_KEY")
    assert api_key_metadata(None) == ()


def test_a_key_a_header_cannot_carry_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="api_key") as refused:
        Client("127.0.0.1:1", api_key="secret\nline")
    assert "secret" not in str(refused.value)


def test_tls_options_select_tls_and_are_refused_with_http() -> None:
    assert connection("127.0.0.1:1", api_key="", tls=True, credentials=None, metadata=()).credentials
    assert connection("127.0.0.1:1", api_key="", tls=None, credentials=None, metadata=()).credentials is None
    assert connection("https://h:1", api_key="", tls=None, credentials=None, metadata=()).credentials
    with pytest.raises(ValueError, match="https://"):
        Client("http://127.0.0.1:1", tls=True)
    with pytest.raises(ValueError, match="certificate_chain and private_key"):
        Client("127.0.0.1:1", tls=TLS(certificate_chain=b"-----BEGIN CERTIFICATE-----"))


def test_a_missing_pem_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(OSError, match="ca.pem"):
        Client("127.0.0.1:1", tls=TLS(root_certificates=missing))


class _Recorder(grpc.ServerInterceptor):  # type: ignore[misc]
    """Records each call's method and ``authorization`` metadata; no service
    is registered, so every call then ends UNIMPLEMENTED."""

    def __init__(self) -> None:
        self.seen: dict[str, str | None] = {}

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        metadata = dict(details.invocation_metadata)
        self.seen[details.method] = metadata.get("authorization")
        return continuation(details)


@pytest.fixture
def recorder() -> Iterator[tuple[str, _Recorder]]:
    recording = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[recording])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", recording
    finally:
        server.stop(None)


CALLS = (
    "/fathom.v1.Collections/ListCollections",
    "/fathom.v1.Search/Search",
    "/fathom.v1.Documents/UpsertStream",
)


def test_the_api_key_is_sent_on_unary_and_streaming_calls(recorder: tuple[str, _Recorder]) -> None:
    target, recording = recorder
    with Client(target, api_key="test-key-123", retry=RetryPolicy.never()) as client:
        with pytest.raises(FathomError):
            client.list_collections()
        with pytest.raises(FathomError):
            client.collection("docs").search(vector=[1.0])
        with pytest.raises(FathomError):
            client.collection("docs").upsert(["a"], [[1.0]])
    for method in CALLS:
        assert recording.seen.get(method) == "Bearer test-key-123", (method, recording.seen)


def test_the_async_client_sends_the_api_key_too(recorder: tuple[str, _Recorder]) -> None:
    target, recording = recorder

    async def calls() -> None:
        async with AsyncClient(target, api_key="test-key-123", retry=RetryPolicy.never()) as client:
            with pytest.raises(FathomError):
                await client.list_collections()
            with pytest.raises(FathomError):
                await client.collection("docs").search(vector=[1.0])
            with pytest.raises(FathomError):
                await client.collection("docs").upsert(["a"], [[1.0]])

    asyncio.run(calls())
    for method in CALLS:
        assert recording.seen.get(method) == "Bearer test-key-123", (method, recording.seen)
