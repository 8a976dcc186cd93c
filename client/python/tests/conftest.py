"""Shared fixtures: the live server at $FATHOM_SERVER (tests talk to a real
server; there are no fake servers or mocks)."""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from fathom import AsyncClient, AsyncCollection, Client


@pytest.fixture(scope="session")
def server_target() -> str:
    """host:port of the live server; skips the test when $FATHOM_SERVER is unset."""
    target = os.environ.get("FATHOM_SERVER")
    if not target:
        pytest.skip("FATHOM_SERVER is not set (live tests need a running server)")
    return target


@pytest.fixture(scope="session")
def live(server_target: str) -> Iterator[Client]:
    """A client connected to the live server (waits up to 30 s for it)."""
    with Client(server_target, timeout=60) as client:
        try:
            grpc.channel_ready_future(client._channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            pytest.fail(f"no Fathom server answers at FATHOM_SERVER={server_target}")
        yield client


def unique_name(prefix: str) -> str:
    """A collection name unlikely to collide on a shared server."""
    return f"{prefix}_{secrets.token_hex(6)}"


def env_or_skip(*names: str) -> list[str]:
    """The values of the environment variables ``names``; skips the test if
    any is unset or empty (``scripts/test.sh`` sets them when it starts the
    servers they name)."""
    values = [os.environ.get(name, "") for name in names]
    if not all(values):
        pytest.skip(f"{', '.join(names)} not set (scripts/test.sh starts the servers they name)")
    return values


# -- both faces of the client ------------------------------------------------------------
#
# The live tests that exercise the client run once per face: "sync" gives a
# fathom.Client, "async" a fathom.AsyncClient driven through Blocking, so that
# one test body specifies both.


class Blocking:
    """Drives an asyncio object from plain test code, on an event loop of its
    own thread: coroutines are awaited there, async iterators iterated there,
    and what they return is wrapped again (an ``AsyncCollection`` stays
    driven). Exceptions come out unchanged."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def _wrap(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = asyncio.run_coroutine_threadsafe(_awaited(value), self._loop).result()
        if isinstance(value, (AsyncClient, AsyncCollection)):
            return Blocking(value, self._loop)
        if isinstance(value, AsyncIterator):
            return _BlockingIterator(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._wrap(value(*args, **kwargs))

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


async def _awaited(value: Any) -> Any:
    return await value


class _BlockingIterator:
    """An async iterator, iterated on the loop's thread."""

    def __init__(self, iterator: AsyncIterator[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._iterator = iterator
        self._loop = loop

    def __iter__(self) -> _BlockingIterator:
        return self

    def __next__(self) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(_awaited(anext(self._iterator)), self._loop).result()
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), self._loop).result()


class Face:
    """One face of the client ("sync" or "async"): opens clients of it."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self._loop = loop

    @contextmanager
    def connect(self, target: str, **options: Any) -> Iterator[Any]:
        """A client of this face (``Client`` options), closed at the end."""
        if self.name == "sync":
            with Client(target, **options) as client:
                yield client
            return

        async def open_client() -> AsyncClient:
            return AsyncClient(target, **options)  # its channel belongs to the loop it is opened on

        client = asyncio.run_coroutine_threadsafe(open_client(), self._loop).result()
        try:
            yield Blocking(client, self._loop)
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), self._loop).result()


@pytest.fixture(scope="session")
def _face_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="async-face", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


@pytest.fixture(scope="session", params=["sync", "async"])
def face(request: pytest.FixtureRequest, _face_loop: asyncio.AbstractEventLoop) -> Face:
    """Each face of the client in turn."""
    return Face(request.param, _face_loop)


@pytest.fixture(scope="session")
def client(face: Face, live: Client, server_target: str) -> Iterator[Any]:
    """A client of each face, connected to the live server (typed as the
    sync ``Client`` in tests: the async one is driven through ``Blocking``)."""
    with face.connect(server_target, timeout=60) as opened:
        yield opened
