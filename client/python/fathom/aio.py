"""Asyncio Fathom client (``grpc.aio``), the async twin of :mod:`fathom.client`.

Example::

    import asyncio
    from fathom import AsyncClient

    async def main() -> None:
        async with AsyncClient("127.0.0.1:50051") as client:
            docs = await client.create_collection("articles", dimension=3)
            await docs.upsert(["a"], [[1, 0, 0]], texts=["red fox"])
            print(await docs.search(vector=[1, 0, 0], limit=5))

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, Union

import grpc
import grpc.aio

from fathom import _convert
from fathom._connection import TLS, connection
from fathom._upsert import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    RECONNECT_DELAYS,
    ProgressCallback,
    UpsertSession,
    protocol_error,
)
from fathom.client import DEFAULT_TARGET, channel_options
from fathom.errors import FathomError, UpsertError
from fathom.filters import FilterSpec
from fathom.models import (
    CollectionInfo,
    CollectionStats,
    Document,
    FusionSpec,
    Hit,
    IndexSpec,
    UpsertSummary,
    VectorLike,
)
from fathom.v1 import (
    collections_pb2,
    collections_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    filter_pb2,
    search_pb2,
    search_pb2_grpc,
)

__all__ = ["AsyncClient", "AsyncCollection"]

T = TypeVar("T")
_Source = Union[Iterator[documents_pb2.Document], AsyncIterator[documents_pb2.Document]]


class AsyncClient:
    """An asyncio connection to a Fathom server; see :class:`fathom.Client`
    for the arguments. Use it as an async context manager or call
    :meth:`close`."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        tls: TLS | bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = 30.0,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.aio.Channel | None = None,
        reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
    ) -> None:
        settings = connection(
            target, api_key=api_key, tls=tls, credentials=credentials, metadata=metadata
        )
        if channel is None:
            opts = channel_options(options)
            channel = (
                grpc.aio.secure_channel(settings.address, settings.credentials, opts)
                if settings.credentials is not None
                else grpc.aio.insecure_channel(settings.address, opts)
            )
        self.target = target
        self.timeout = timeout
        self.metadata: tuple[tuple[str, str], ...] = settings.metadata
        self.reconnect_delays: tuple[float, ...] = tuple(reconnect_delays)
        self._channel = channel
        self._collections = collections_pb2_grpc.CollectionsStub(channel)  # type: ignore[no-untyped-call]
        self._documents = documents_pb2_grpc.DocumentsStub(channel)  # type: ignore[no-untyped-call]
        self._search = search_pb2_grpc.SearchStub(channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({self.target!r})"

    # -- collections ---------------------------------------------------------

    async def create_collection(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        language: str = "english",
        multi_tenant: bool = False,
        index: IndexSpec | collections_pb2.IndexSettings | None = None,
        defer_index: bool = False,
    ) -> AsyncCollection:
        """Creates a collection; see :meth:`fathom.Client.create_collection`."""
        request = _convert.create_collection_request(
            name, dimension, metric, language, multi_tenant, index, defer_index
        )
        await self._unary(self._collections.CreateCollection, request)
        return AsyncCollection(self, name)

    async def get_or_create_collection(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        language: str = "english",
        multi_tenant: bool = False,
        index: IndexSpec | collections_pb2.IndexSettings | None = None,
        defer_index: bool = False,
    ) -> AsyncCollection:
        """Returns a handle to collection ``name``, creating it if it does not
        exist; see :meth:`fathom.Client.get_or_create_collection`."""
        try:
            return await self.create_collection(
                name, dimension, metric, language, multi_tenant, index, defer_index
            )
        except FathomError as error:
            if error.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
        _convert.check_existing_collection(
            await self.get_collection(name), dimension, metric, multi_tenant
        )
        return AsyncCollection(self, name)

    def collection(self, name: str, tenant: str | None = None) -> AsyncCollection:
        """Returns a handle to an existing collection (no call is made)."""
        return AsyncCollection(self, name, tenant)

    async def get_collection(self, name: str) -> CollectionInfo:
        """Returns a collection's settings. Raises FathomError NOT_FOUND."""
        response = await self._unary(
            self._collections.GetCollection, collections_pb2.GetCollectionRequest(name=name)
        )
        return _convert.collection_info(response.collection)

    async def list_collections(self) -> list[CollectionInfo]:
        """Returns every collection, ordered by name."""
        response = await self._unary(
            self._collections.ListCollections, collections_pb2.ListCollectionsRequest()
        )
        return [_convert.collection_info(c) for c in response.collections]

    async def delete_collection(self, name: str) -> None:
        """Drops a collection and all its documents. Raises FathomError NOT_FOUND."""
        await self._unary(
            self._collections.DeleteCollection, collections_pb2.DeleteCollectionRequest(name=name)
        )

    async def collection_stats(self, name: str) -> CollectionStats:
        """Returns a collection's document count (all tenants) and sizes."""
        response = await self._unary(
            self._collections.GetCollectionStats,
            collections_pb2.GetCollectionStatsRequest(name=name),
        )
        return _convert.collection_stats(response)

    async def build_index(self, name: str, *, timeout: float | None = None) -> CollectionInfo:
        """Builds a collection's deferred vector index in bulk, with parallel
        workers, and returns the collection once the index is ready (searches
        are exact meanwhile); ``timeout=None`` (the default) waits as long as
        the build takes. See :meth:`fathom.Client.build_index`."""
        try:
            response = await self._collections.BuildIndex(
                collections_pb2.BuildIndexRequest(name=name),
                timeout=timeout,
                metadata=self.metadata,
            )
        except grpc.RpcError as error:
            raise FathomError.from_rpc_error(error) from error
        return _convert.collection_info(response.collection)

    # -- plumbing ------------------------------------------------------------

    async def _unary(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise FathomError.from_rpc_error(error) from error

    async def _stream(
        self, method: Callable[..., Any], request: Any, timeout: float | None
    ) -> AsyncIterator[Any]:
        call = method(request, timeout=timeout, metadata=self.metadata)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as error:
            raise FathomError.from_rpc_error(error) from error
        finally:
            call.cancel()

    async def _upsert(
        self, session: UpsertSession, source: _Source, cutter: _convert.BatchCutter
    ) -> UpsertSummary:
        failures = 0
        while True:
            progress_before = session.acks
            try:
                await self._upsert_once(session, source, cutter)
                return session.finish()
            except (grpc.RpcError, _WriteFailed) as failure:
                if session.acks > progress_before:
                    failures = 0
                if isinstance(failure, _WriteFailed):
                    # Reopening a resumable stream tells the server's real
                    # state (or its real error).
                    error = FathomError(
                        grpc.StatusCode.UNAVAILABLE,
                        "the UpsertStream broke while a batch was being sent (grpc.aio lost "
                        "the server's status: transport failure)",
                    )
                else:
                    error = FathomError.from_rpc_error(failure)
                if session.can_reconnect(error) and failures < len(self.reconnect_delays):
                    await asyncio.sleep(self.reconnect_delays[failures])
                    failures += 1
                    session.summary.reconnects += 1
                    continue
                raise session.failed(error) from failure
            except UpsertError:
                raise
            except FathomError as error:  # a protocol error
                raise session.failed(error) from error

    async def _upsert_once(
        self, session: UpsertSession, source: _Source, cutter: _convert.BatchCutter
    ) -> None:
        call = self._documents.UpsertStream(metadata=self.metadata)
        finished = False
        try:
            await _write(call, session.open_request())
            opened = await call.read()
            if opened is grpc.aio.EOF:
                raise protocol_error("the stream ended before `opened`")
            for resend in session.on_opened(opened):
                await _write(call, resend)
            await _skip_committed(session, source)
            while True:
                if session.window_open:
                    docs = await _next_batch(session, source, cutter)
                    if docs is not None:
                        # batch_request puts the batch in the window before
                        # the write: if the write fails, it is resent.
                        await _write(call, session.batch_request(docs))
                        continue
                if session.sending_done:
                    break
                ack = await call.read()
                if ack is grpc.aio.EOF:
                    raise protocol_error("the stream ended early")
                session.on_ack(ack)
            await call.done_writing()
            while (ack := await call.read()) is not grpc.aio.EOF:
                session.on_ack(ack)
            session.ended()
            finished = True
        finally:
            if not finished:
                call.cancel()


class _WriteFailed(Exception):
    """A write to a stream failed in a way that hides the server's status."""


async def _write(call: Any, request: documents_pb2.UpsertStreamRequest) -> None:
    """Writes one message. grpc.aio reports a write racing the server's end
    of the call as INTERNAL "Internal error from Core" (or InvalidStateError)
    and overwrites the call's real status: surface that as :class:`_WriteFailed`."""
    try:
        await call.write(request)
    except asyncio.InvalidStateError as error:
        raise _WriteFailed() from error
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.INTERNAL and error.details() == "Internal error from Core":
            raise _WriteFailed() from error
        raise


class _End(Exception):
    """The source has no more documents."""


async def _read(source: _Source) -> documents_pb2.Document:
    """The next document of a sync or async source; raises :class:`_End` at the end."""
    if isinstance(source, Iterator):
        try:
            return next(source)
        except StopIteration:
            raise _End() from None
    try:
        return await anext(source)
    except StopAsyncIteration:
        raise _End() from None


async def _skip_committed(session: UpsertSession, source: _Source) -> None:
    """:func:`fathom._upsert.skip_committed` for sync or async sources."""
    while session.skipping:
        try:
            doc = await _read(source)
        except _End:
            session.input_exhausted()  # raises: too short
            return
        except Exception as error:  # the caller's iterable: anything may come
            session.input_failed(error, session.skipped_so_far)
            return
        session.skip(doc)


async def _next_batch(
    session: UpsertSession, source: _Source, cutter: _convert.BatchCutter
) -> list[documents_pb2.Document] | None:
    """:func:`fathom._upsert.next_batch` for sync or async sources."""
    while True:
        try:
            doc = await _read(source)
        except _End:
            last = cutter.flush()
            if last is None:
                session.input_exhausted()
            return last
        except Exception as error:
            session.input_failed(error, session.position + cutter.pending)
            return None
        full = cutter.add(doc)
        if full is not None:
            return full


async def _adicts_to_documents(
    items: AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[documents_pb2.Document]:
    position = 0
    async for item in items:
        yield _convert.dict_to_document(item, position)
        position += 1


class AsyncCollection:
    """The asyncio twin of :class:`fathom.Collection`; every method has the
    same arguments and meaning, and is a coroutine (``scroll`` and
    ``search_iter`` return async iterators)."""

    def __init__(self, client: AsyncClient, name: str, tenant: str | None = None) -> None:
        self.client = client
        self.name = name
        self.tenant = tenant

    def __repr__(self) -> str:
        tenant = f", tenant={self.tenant!r}" if self.tenant else ""
        return f"AsyncCollection({self.name!r}{tenant})"

    def with_tenant(self, tenant: str | None) -> AsyncCollection:
        """Returns a handle to the same collection with another default tenant."""
        return AsyncCollection(self.client, self.name, tenant)

    def _tenant(self, tenant: str | None) -> str | None:
        return tenant if tenant is not None else self.tenant

    async def info(self) -> CollectionInfo:
        """Returns the collection's settings."""
        return await self.client.get_collection(self.name)

    async def stats(self) -> CollectionStats:
        """Returns the document count (all tenants) and on-disk sizes."""
        return await self.client.collection_stats(self.name)

    async def build_index(self, *, timeout: float | None = None) -> CollectionInfo:
        """Builds the collection's deferred vector index and returns once it
        is ready; see :meth:`fathom.Client.build_index`."""
        return await self.client.build_index(self.name, timeout=timeout)

    async def upsert(
        self,
        ids: Iterable[str],
        vectors: Iterable[VectorLike],
        texts: Iterable[str | None] | None = None,
        metadatas: Iterable[Mapping[str, Any] | None] | None = None,
        tenant: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        stream_id: str | None = None,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_in_flight: int = 4,
        progress: ProgressCallback | None = None,
        build_index_at_end: bool = False,
    ) -> UpsertSummary:
        """Writes documents through one ``UpsertStream``; see
        :meth:`fathom.Collection.upsert`, also for resuming with a
        ``stream_id`` (same input, any batch size) and for
        ``build_index_at_end``. Cancelling the task
        cancels the stream; committed batches stay committed."""
        docs = _convert.columns_to_documents(ids, vectors, texts, metadatas)
        return await self._upsert_docs(
            docs,
            tenant,
            batch_size,
            batch_bytes,
            stream_id,
            max_in_flight,
            progress,
            build_index_at_end,
        )

    async def upsert_iter(
        self,
        documents: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        tenant: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        stream_id: str | None = None,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_in_flight: int = 4,
        progress: ProgressCallback | None = None,
        build_index_at_end: bool = False,
    ) -> UpsertSummary:
        """Upserts dicts (``id``, ``vector``, ``text``, ``metadata``) from a sync
        or async iterable, lazily; see :meth:`fathom.Collection.upsert_iter`."""
        docs: Iterator[documents_pb2.Document] | AsyncIterator[documents_pb2.Document]
        if isinstance(documents, AsyncIterable):
            docs = _adicts_to_documents(documents)
        else:
            docs = _convert.dicts_to_documents(documents)
        return await self._upsert_docs(
            docs,
            tenant,
            batch_size,
            batch_bytes,
            stream_id,
            max_in_flight,
            progress,
            build_index_at_end,
        )

    async def _upsert_docs(
        self,
        docs: Iterator[documents_pb2.Document] | AsyncIterator[documents_pb2.Document],
        tenant: str | None,
        batch_size: int,
        batch_bytes: int,
        stream_id: str | None,
        max_in_flight: int,
        progress: ProgressCallback | None,
        build_index_at_end: bool,
    ) -> UpsertSummary:
        _convert.check_batch_limits(batch_size, batch_bytes)
        cutter = _convert.BatchCutter(batch_size, batch_bytes)
        session = UpsertSession(
            self.name,
            self._tenant(tenant),
            stream_id,
            max_in_flight,
            progress,
            build_index_at_end=build_index_at_end,
        )
        return await self.client._upsert(session, docs, cutter)

    async def upsert_batch(
        self,
        ids: Iterable[str],
        vectors: Iterable[VectorLike],
        texts: Iterable[str | None] | None = None,
        metadatas: Iterable[Mapping[str, Any] | None] | None = None,
        *,
        tenant: str | None = None,
    ) -> int:
        """Writes one batch with the unary ``Upsert`` RPC (all or nothing);
        returns the number of documents written. See
        :meth:`fathom.Collection.upsert_batch`."""
        docs = _convert.columns_to_documents(ids, vectors, texts, metadatas)
        request = _convert.upsert_request(self.name, self._tenant(tenant), docs)
        response = await self.client._unary(self.client._documents.Upsert, request)
        return int(response.documents_written)

    async def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        tenant: str | None = None,
    ) -> int:
        """Deletes documents by id or by filter (exactly one); returns how many went."""
        request = _convert.delete_request(self.name, self._tenant(tenant), ids, filter)
        return int((await self.client._unary(self.client._documents.Delete, request)).deleted)

    async def count(
        self, filter: FilterSpec | filter_pb2.Filter | None = None, *, tenant: str | None = None
    ) -> int:
        """Counts the documents matching a filter (all, if ``None``)."""
        request = _convert.count_request(self.name, self._tenant(tenant), filter)
        return int((await self.client._unary(self.client._documents.Count, request)).count)

    async def get(
        self,
        ids: Sequence[str],
        *,
        include: Iterable[str] | None = None,
        tenant: str | None = None,
    ) -> list[Document]:
        """Returns the documents with these ids, in that order (missing ids left out)."""
        request = _convert.get_request(self.name, self._tenant(tenant), ids, include)
        response = await self.client._unary(self.client._documents.Get, request)
        return [_convert.document_from_pb(d) for d in response.documents]

    def scroll(
        self,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        include: Iterable[str] | None = None,
        limit: int | None = None,
        after_id: str | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[Document]:
        """Async-iterates every matching document in id order, resuming after
        UNAVAILABLE; see :meth:`fathom.Collection.scroll`."""
        fields = None if include is None else list(include)
        _convert.include_pb(fields)
        return self._scroll(_convert.filter_pb(filter), fields, limit, after_id, tenant)

    async def _scroll(
        self,
        filter: filter_pb2.Filter | None,
        include: list[str] | None,
        limit: int | None,
        after_id: str | None,
        tenant: str | None,
    ) -> AsyncIterator[Document]:
        received = 0
        failures = 0
        last_id = after_id
        while True:
            remaining = None if limit is None else limit - received
            if remaining is not None and remaining <= 0:
                return
            request = _convert.scroll_request(
                self.name, self._tenant(tenant), filter, include, remaining, last_id
            )
            try:
                async for response in self.client._stream(
                    self.client._documents.Scroll, request, timeout=None
                ):
                    document = _convert.document_from_pb(response.document)
                    last_id = document.id
                    received += 1
                    failures = 0
                    yield document
                return
            except FathomError as error:
                delays = self.client.reconnect_delays
                if error.code != grpc.StatusCode.UNAVAILABLE or failures >= len(delays):
                    raise
                await asyncio.sleep(delays[failures])
                failures += 1

    async def search(
        self,
        vector: VectorLike | None = None,
        text: str | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        limit: int = 10,
        fusion: FusionSpec | search_pb2.Fusion | None = None,
        *,
        include: Iterable[str] | None = None,
        candidates: int | None = None,
        exact: bool = False,
        ef_search: int | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> list[Hit]:
        """Vector, keyword or hybrid search; see :meth:`fathom.Collection.search`."""
        iterator = self.search_iter(
            vector,
            text,
            filter,
            limit,
            fusion,
            include=include,
            candidates=candidates,
            exact=exact,
            ef_search=ef_search,
            score_threshold=score_threshold,
            tenant=tenant,
        )
        return [hit async for hit in iterator]

    def search_iter(
        self,
        vector: VectorLike | None = None,
        text: str | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        limit: int = 10,
        fusion: FusionSpec | search_pb2.Fusion | None = None,
        *,
        include: Iterable[str] | None = None,
        candidates: int | None = None,
        exact: bool = False,
        ef_search: int | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[Hit]:
        """Like :meth:`search`, async-iterating hits as the server streams them."""
        request = _convert.search_request(
            self.name,
            self._tenant(tenant),
            vector=vector,
            text=text,
            filter=filter,
            limit=limit,
            fusion=fusion,
            include=include,
            candidates=candidates,
            exact=exact,
            ef_search=ef_search,
            score_threshold=score_threshold,
        )
        return self._hits(request)

    async def _hits(self, request: search_pb2.SearchRequest) -> AsyncIterator[Hit]:
        async for hit in self.client._stream(
            self.client._search.Search, request, self.client.timeout
        ):
            yield _convert.hit_from_pb(hit)
