"""The few places where the sync and the asyncio client really differ.

:mod:`fathom.aio` is written once and :mod:`fathom.client` is generated from
it (``scripts/async_to_sync.py``), which turns ``await x`` into ``x`` and the
``Async``/``a`` names of this module into their sync twins: ``AsyncUpsertCall``
into :class:`UpsertCall`, ``aread_document`` into :func:`read_document`, and
so on. What cannot be said by dropping ``await`` lives here, in both forms:
how an ``UpsertStream`` call is written to and read from (grpc and grpc.aio
have different streaming APIs), and how a document is read from the caller's
input (the async face also takes async iterables).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Union, cast

import grpc
import grpc.aio

from fathom import _convert
from fathom.errors import FathomError
from fathom.v1 import documents_pb2, documents_pb2_grpc

__all__ = [
    "AsyncDocumentSource",
    "AsyncUpsertCall",
    "DocumentSource",
    "SourceEnded",
    "UpsertCall",
    "WriteFailed",
    "adicts_to_documents",
    "aread_document",
    "dicts_to_documents",
    "read_document",
]

DocumentSource = Iterator[documents_pb2.Document]
"""The documents of a sync upsert."""

AsyncDocumentSource = Union[Iterator[documents_pb2.Document], AsyncIterator[documents_pb2.Document]]
"""The documents of an async upsert: from a sync or an async iterable."""


class SourceEnded(Exception):
    """The caller's input has no more documents."""


class WriteFailed(Exception):
    """A write to a stream failed in a way that hides the server's status."""

    def error(self) -> FathomError:
        """What the failure stands for: a broken transport. Reopening a
        resumable stream tells the server's real state (or its real error)."""
        return FathomError(
            grpc.StatusCode.UNAVAILABLE,
            "the UpsertStream broke while a batch was being sent (grpc.aio lost "
            "the server's status: transport failure)",
        )


def read_document(source: DocumentSource) -> documents_pb2.Document:
    """The next document of a sync source; raises :class:`SourceEnded` at its end."""
    try:
        return next(source)
    except StopIteration:
        raise SourceEnded() from None


async def aread_document(source: AsyncDocumentSource) -> documents_pb2.Document:
    """The next document of a sync or async source; raises :class:`SourceEnded` at its end."""
    if isinstance(source, Iterator):
        return read_document(source)
    try:
        return await anext(source)
    except StopAsyncIteration:
        raise SourceEnded() from None


def dicts_to_documents(items: Iterable[Mapping[str, Any]]) -> DocumentSource:
    """Converts dicts (``id``, ``vector``, ``text``, ``metadata``) into messages, lazily."""
    return _convert.dicts_to_documents(items)


def adicts_to_documents(
    items: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
) -> AsyncDocumentSource:
    """Like :func:`dicts_to_documents`, from a sync or an async iterable."""
    if isinstance(items, AsyncIterable):
        return _adicts_to_documents(items)
    return _convert.dicts_to_documents(items)


async def _adicts_to_documents(
    items: AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[documents_pb2.Document]:
    position = 0
    async for item in items:
        yield _convert.dict_to_document(item, position)
        position += 1


class UpsertCall:
    """An ``UpsertStream`` call of the sync client.

    grpc takes the requests of a stream as an iterator that it drains on a
    thread of its own; writes go through a queue that iterator reads, so the
    caller can interleave writes and reads.
    """

    def __init__(
        self, stub: documents_pb2_grpc.DocumentsStub, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._outbox: queue.SimpleQueue[documents_pb2.UpsertStreamRequest | None] = queue.SimpleQueue()
        self._closed = False
        self._call = stub.UpsertStream(self._requests(), metadata=metadata)

    def _requests(self) -> Iterator[documents_pb2.UpsertStreamRequest]:
        while (item := self._outbox.get()) is not None:
            yield item

    def write(self, request: documents_pb2.UpsertStreamRequest) -> None:
        """Sends one request."""
        self._outbox.put(request)

    def read(self) -> documents_pb2.UpsertStreamResponse | None:
        """The next response, or ``None`` at the end of the stream."""
        response: documents_pb2.UpsertStreamResponse | None = next(self._call, None)
        return response

    def done_writing(self) -> None:
        """Half-closes the stream: no more requests."""
        if not self._closed:
            self._closed = True
            self._outbox.put(None)  # also unblocks grpc's request thread

    def cancel(self) -> None:
        """Ends the call now."""
        self.done_writing()
        self._call.cancel()


class AsyncUpsertCall:
    """An ``UpsertStream`` call of the asyncio client (the twin of :class:`UpsertCall`)."""

    def __init__(
        self, stub: documents_pb2_grpc.DocumentsStub, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._call = stub.UpsertStream(metadata=metadata)

    async def write(self, request: documents_pb2.UpsertStreamRequest) -> None:
        """Sends one request.

        grpc.aio reports a write racing the server's end of the call as
        INTERNAL "Internal error from Core" (or InvalidStateError) and
        overwrites the call's real status: that is raised as
        :class:`WriteFailed`, so that the caller reconnects and learns the
        real state.
        """
        try:
            await self._call.write(request)
        except asyncio.InvalidStateError as error:
            raise WriteFailed() from error
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INTERNAL and error.details() == "Internal error from Core":
                raise WriteFailed() from error
            raise

    async def read(self) -> documents_pb2.UpsertStreamResponse | None:
        """The next response, or ``None`` at the end of the stream."""
        response = await self._call.read()
        if response is grpc.aio.EOF:
            return None
        return cast(documents_pb2.UpsertStreamResponse, response)

    async def done_writing(self) -> None:
        """Half-closes the stream: no more requests."""
        await self._call.done_writing()

    def cancel(self) -> None:
        """Ends the call now."""
        self._call.cancel()
