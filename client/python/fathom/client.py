# Generated from fathom/aio.py by scripts/async_to_sync.py. Do not edit.
"""Synchronous Fathom client (``grpc``).

Generated from :mod:`fathom.aio` by ``scripts/async_to_sync.py``: edit
aio.py, then run the script (``test.sh`` fails while this file is stale).

Example::

    from fathom import Client

    with Client("127.0.0.1:50051") as client:
        docs = client.create_collection("articles", dimension=3)
        docs.upsert(["a", "b"], [[1, 0, 0], [0, 1, 0]], texts=["red fox", "blue sky"])
        print(docs.search(vector=[1, 0, 0], text="fox", limit=5))
"""

from __future__ import annotations

import time
import datetime as _dt
import functools
import inspect
from collections.abc import Iterable, Iterator, Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import grpc

from fathom import _convert
from fathom._connection import (
    DEFAULT_TARGET,
    TLS,
    channel_options,
    connection,
    parse_target,
)
from fathom._consistency import ReadYourWrites
from fathom._retry import Backoff, RetryPolicy
from fathom._transport import (
    DocumentSource,
    UpsertCall,
    SourceEnded,
    WriteFailed,
    dicts_to_documents,
    read_document,
)
from fathom._upsert import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    ProgressCallback,
    UpsertSession,
    protocol_error,
)
from fathom.errors import FathomError, UpsertError
from fathom.filters import FilterSpec
from fathom.models import (
    ApiKeyInfo,
    Alias,
    AliasAction,
    CollectionInfo,
    CollectionStats,
    CreatedKey,
    Document,
    FusionSpec,
    Hit,
    IndexBuild,
    IndexSpec,
    KeyRole,
    UpsertSummary,
    VectorLike,
)
from fathom.v1 import (
    collections_pb2,
    collections_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    filter_pb2,
    keys_pb2,
    keys_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

__all__ = ["TLS", "Client", "Collection", "DEFAULT_TARGET", "channel_options", "parse_target"]

T = TypeVar("T")
P = ParamSpec("P")


class Client:
    """A connection to a Fathom server.

    Args:
        target: ``host:port`` or ``http://host:port`` of the server (plain
            text, unless ``tls`` is given), or ``https://host:port`` (TLS,
            with the system's roots unless ``tls`` names a CA).
        api_key: Sent on every call (streams too) as ``authorization:
            Bearer <key>``. ``None`` (the default) reads ``$FATHOM_API_KEY``;
            ``""`` sends none.
        tls: ``True`` or a :class:`fathom.TLS` (``root_certificates``,
            ``certificate_chain``, ``private_key``: PEM bytes or file paths)
            for TLS; ``None`` leaves it to the target's scheme.
        credentials: gRPC channel credentials, for what ``tls`` cannot say
            (instead of ``tls``).
        timeout: Deadline in seconds for unary calls and searches (``None``:
            no deadline). Streams (upsert, scroll) have no deadline.
        metadata: Further gRPC metadata sent with every call.
        options: Extra gRPC channel options.
        channel: Use this channel instead of opening one (the other
            connection arguments are then ignored; ``close`` closes it).
        read_your_writes: Send the newest consistency token of this
            client's writes with its reads (Get, Count, Scroll, Search) that
            choose no consistency, so a server with read replicas serves
            them from one that has replayed those writes, or from the
            primary (``docs/scale.md``). ``False``: reads are eventual and
            may miss this client's latest writes while a replica lags.
        retry: Which failed calls are retried and how long to wait: a
            :class:`fathom.RetryPolicy` (``RetryPolicy.never()`` turns retries
            off). Reads, ``upsert_batch``, ``delete``, ``update``,
            ``revoke_key``, the start of a search, scrolls and resumable
            upserts are retried after UNAVAILABLE (or a broken connection)
            and after a busy server's RESOURCE_EXHAUSTED, with jittered
            backoff within a time budget; the table is ``docs/retries.md``.

    The client may be shared by threads (the sync client) or by the tasks
    of one event loop (the asyncio client). Use it as a context manager, or
    call :meth:`close`.
    """

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
        channel: grpc.Channel | None = None,
        retry: RetryPolicy = RetryPolicy(),
        read_your_writes: bool = True,
    ) -> None:
        settings = connection(
            target, api_key=api_key, tls=tls, credentials=credentials, metadata=metadata
        )
        if channel is None:
            opts = channel_options(options)
            channel = (
                grpc.secure_channel(settings.address, settings.credentials, opts)
                if settings.credentials is not None
                else grpc.insecure_channel(settings.address, opts)
            )
        self.target = target
        self.timeout = timeout
        self.metadata: tuple[tuple[str, str], ...] = settings.metadata
        self.retry = retry
        self._consistency = ReadYourWrites(read_your_writes)
        self._channel = channel
        self._collections = collections_pb2_grpc.CollectionsStub(channel)  # type: ignore[no-untyped-call]
        self._documents = documents_pb2_grpc.DocumentsStub(channel)  # type: ignore[no-untyped-call]
        self._search = search_pb2_grpc.SearchStub(channel)  # type: ignore[no-untyped-call]
        self._keys = keys_pb2_grpc.KeysStub(channel)  # type: ignore[no-untyped-call]

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.target!r})"

    @property
    def consistency_token(self) -> str | None:
        """The newest consistency token this client's writes were
        acknowledged with (``None`` before the first): what its reads send
        unless ``read_your_writes=False``. Another client reads these writes
        by sending it as a request's ``consistency.after_token``."""
        return self._consistency.token

    # -- collections ---------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        language: str = "english",
        multi_tenant: bool = False,
        index: IndexSpec | collections_pb2.IndexSettings | None = None,
        defer_index: bool = False,
        index_build: IndexBuild | None = None,
    ) -> Collection:
        """Creates a collection and returns a handle to it.

        Args:
            name: 1 to 48 lower-case ASCII letters, digits and underscores,
                starting with a letter.
            dimension: Vector length, 1..=16000 (1..=4000 with HNSW, 1..=2000
                with HNSW at ``precision="single"``).
            metric: ``"cosine"``, ``"l2"`` or ``"inner_product"``.
            language: PostgreSQL text-search configuration ("english", "simple", ...).
            multi_tenant: Whether every document and request names a tenant.
            index: ``HnswIndex(m, ef_construction, precision)``, ``NoIndex()``,
                ``"hnsw"`` or ``"none"``; ``None`` means HNSW with the server's
                defaults (m 16, ef_construction 64, half precision).
            defer_index: The same as ``index_build="on_request"`` (its older
                spelling).
            index_build: When the HNSW index is built (see
                :data:`~fathom.IndexBuild`). ``None`` (the default) is
                ``"automatic"``: searches are exact while the collection is
                small, and the streamed upsert that takes it past the
                server's indexing threshold builds the index in bulk at its
                end, so a bulk load is fast without a flag.
                ``"immediate"``: the collection must search through its
                graph from its first document, and every write pays for
                maintaining it. ``"on_request"``: load in several calls,
                then build once with :meth:`build_index` (or the last
                upsert's ``build_index_at_end=True``).

        Raises:
            FathomError: INVALID_ARGUMENT (with violations; also for
                ``defer_index`` with ``NoIndex``, and for ``defer_index``
                with an ``index_build`` other than ``"on_request"``, on
                the field ``index_build``) or ALREADY_EXISTS.
        """
        request = _convert.create_collection_request(
            name, dimension, metric, language, multi_tenant, index, defer_index, index_build
        )
        self._unary(self._collections.CreateCollection, request, retried=False)
        return Collection(self, name)

    def get_or_create_collection(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        language: str = "english",
        multi_tenant: bool = False,
        index: IndexSpec | collections_pb2.IndexSettings | None = None,
        defer_index: bool = False,
        index_build: IndexBuild | None = None,
    ) -> Collection:
        """Returns a handle to collection ``name``, creating it first if it
        does not exist (arguments as in :meth:`create_collection`).

        Safe to call concurrently and on every start of a program: when the
        collection exists, only its dimension, metric and tenancy are checked
        (its index, index build, index state and language are left as they
        are).

        Raises:
            FathomError: ALREADY_EXISTS if the existing collection has another
                dimension, metric or tenancy; INVALID_ARGUMENT as in
                :meth:`create_collection`.
        """
        try:
            return self.create_collection(
                name, dimension, metric, language, multi_tenant, index, defer_index, index_build
            )
        except FathomError as error:
            if error.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
        _convert.check_existing_collection(
            self.get_collection(name), dimension, metric, multi_tenant
        )
        return Collection(self, name)

    def collection(self, name: str, tenant: str | None = None) -> Collection:
        """Returns a handle to an existing collection (no call is made).

        Args:
            name: The collection's name.
            tenant: Default tenant of the handle's requests (multi-tenant
                collections).
        """
        return Collection(self, name, tenant)

    def get_collection(self, name: str) -> CollectionInfo:
        """Returns a collection's settings. Raises FathomError NOT_FOUND."""
        response = self._unary(
            self._collections.GetCollection, collections_pb2.GetCollectionRequest(name=name)
        )
        return _convert.collection_info(response.collection)

    def list_collections(self) -> list[CollectionInfo]:
        """Returns every collection, ordered by name."""
        response = self._unary(
            self._collections.ListCollections, collections_pb2.ListCollectionsRequest()
        )
        return [_convert.collection_info(c) for c in response.collections]

    def delete_collection(self, name: str) -> None:
        """Drops a collection and all its documents, and deletes its aliases
        (named by an alias: the collection the alias points at). Raises
        FathomError NOT_FOUND."""
        self._unary(
            self._collections.DeleteCollection,
            collections_pb2.DeleteCollectionRequest(name=name),
            retried=False,
        )

    def collection_stats(self, name: str) -> CollectionStats:
        """Returns a collection's document count (all tenants) and sizes."""
        response = self._unary(
            self._collections.GetCollectionStats,
            collections_pb2.GetCollectionStatsRequest(name=name),
        )
        return _convert.collection_stats(response)

    def build_index(self, name: str, *, timeout: float | None = None) -> CollectionInfo:
        """Builds a collection's vector index now, if it is not built yet
        (``index_state`` ``"deferred"``: an ``"on_request"`` collection, or
        an ``"automatic"`` one below the indexing threshold; see
        ``index_build`` in :meth:`create_collection`), and returns the
        collection once the index is ready, with ``index_state`` ``"ready"``.

        The server builds it in bulk, with PostgreSQL's parallel maintenance
        workers; an index that is ready already returns at once. Writes and
        searches go on meanwhile, and searches are exact until the index is
        ready. The build goes on if this call gives up (timeout, interrupt);
        calling again waits for it.

        Args:
            name: The collection's name.
            timeout: Seconds to wait. ``None`` (the default, not the client's
                ``timeout``) waits as long as the build takes: minutes for
                millions of vectors.

        Raises:
            FathomError: NOT_FOUND; DEADLINE_EXCEEDED when ``timeout`` passed
                (the build goes on).
        """
        response = self._call(
            self._collections.BuildIndex, collections_pb2.BuildIndexRequest(name=name), timeout
        )
        return _convert.collection_info(response.collection)

    # -- API keys ------------------------------------------------------------

    def create_key(
        self,
        role: KeyRole,
        description: str,
        *,
        tenant: str | None = None,
        collections: Sequence[str] = (),
        expires_at: _dt.datetime | None = None,
        expires_in: _dt.timedelta | float | None = None,
    ) -> CreatedKey:
        """Creates an API key and returns its text, once, with its record.
        Needs an admin key; an admin key bound to a tenant or collections, or
        expiring, may create only keys no wider than itself.

        Not retried: a retry after a lost answer would create a second key.

        Args:
            role: ``"read"``, ``"write"`` or ``"admin"``.
            description: What the key is for (1 to 256 characters).
            tenant: Bind the key to this tenant (``None``: any).
            collections: Bind the key to these collections (empty: any).
            expires_at: When the key stops being accepted (naive = UTC).
            expires_in: Or how long from now: a timedelta or seconds.

        Raises:
            FathomError: INVALID_ARGUMENT (with violations naming the field),
                PERMISSION_DENIED (not an admin key, or a key wider than the
                caller's: the message starts with the field).
        """
        request = _convert.create_key_request(
            role, description, tenant, collections, expires_at, expires_in
        )
        response: keys_pb2.CreateKeyResponse = self._unary(
            self._keys.CreateKey, request, retried=False
        )
        return CreatedKey(key=response.key, info=_convert.api_key_info(response.api_key))

    def list_keys(self) -> list[ApiKeyInfo]:
        """Returns the API keys the client's key may manage, revoked and
        expired ones too, oldest first; never their secrets."""
        response = self._unary(self._keys.ListKeys, keys_pb2.ListKeysRequest())
        return [_convert.api_key_info(key) for key in response.keys]

    def revoke_key(self, key_id: str) -> ApiKeyInfo:
        """Revokes the API key ``key_id`` (12 hex digits, as :meth:`list_keys`
        shows it) and returns its record. Revoking a revoked key succeeds and
        changes nothing, so the call is retried.

        Raises:
            FathomError: NOT_FOUND (no such key, or not the client's key's
                to manage), INVALID_ARGUMENT (not an id).
        """
        response = self._unary(self._keys.RevokeKey, keys_pb2.RevokeKeyRequest(id=key_id))
        return _convert.api_key_info(response.api_key)
    def update_aliases(self, actions: Iterable[AliasAction]) -> list[Alias]:
        """Creates, switches and deletes aliases: second names of collections,
        accepted wherever a collection's name is (searches, upserts, the
        LangChain and LlamaIndex stores). The actions apply in order, in one
        transaction: all of them, or none if one is refused. A blue-green
        re-index fills a new collection, then switches the alias with
        ``update_aliases([SwitchAlias("docs", "docs_v2")])``.

        Not retried: a retry after a lost answer would be refused for changes
        that were made.

        Args:
            actions: :class:`fathom.CreateAlias`, :class:`fathom.SwitchAlias`
                and :class:`fathom.DeleteAlias` values.

        Returns:
            The aliases the actions name that exist afterwards, by name.

        Raises:
            FathomError: INVALID_ARGUMENT (no actions, a bad name), NOT_FOUND
                (an alias to switch or delete, or a target collection, is
                missing), ALREADY_EXISTS (the alias exists, or a collection
                has its name); ``violations`` name the action's field, such
                as ``actions[1].switch_alias.collection``.
            TypeError: An action of another type.
        """
        response = self._unary(
            self._collections.UpdateAliases, _convert.update_aliases_request(actions), retried=False
        )
        return [_convert.alias(a) for a in response.aliases]

    def list_aliases(self, collection: str | None = None) -> list[Alias]:
        """Returns the aliases, ordered by name: all of them, or those of
        ``collection`` (named by its own name or by an alias). Raises
        FathomError NOT_FOUND if that collection does not exist."""
        response = self._unary(
            self._collections.ListAliases, collections_pb2.ListAliasesRequest(collection=collection or "")
        )
        return [_convert.alias(a) for a in response.aliases]

    # -- plumbing used by the collection handles --------------------------------

    def _unary(
        self, method: Callable[..., T], request: Any, *, retried: bool = True
    ) -> T:
        """Makes a unary call with the client's timeout (see :meth:`_call`)."""
        return self._call(method, request, self.timeout, retried=retried)

    def _call(
        self,
        method: Callable[..., T],
        request: Any,
        timeout: float | None,
        *,
        retried: bool = True,
    ) -> T:
        """Makes a unary call, raising gRPC's errors as :class:`FathomError`;
        with ``retried`` (calls the retry table retries: not CreateCollection,
        DeleteCollection nor CreateKey), retries it as the client's policy says."""
        backoff = Backoff.call(self.retry if retried else RetryPolicy.never())
        self._consistency.fill(request)
        while True:
            try:
                response = method(request, timeout=timeout, metadata=self.metadata)
                self._consistency.observe_response(response)
                return response
            except grpc.RpcError as error:
                failure = FathomError.from_rpc_error(error)
                pause = backoff.next_pause(failure)
                if pause is None:
                    raise failure from error
            time.sleep(pause)

    def _stream(
        self, method: Callable[..., Any], request: Any, timeout: float | None
    ) -> Iterator[Any]:
        """Iterates a server stream, translating errors and cancelling it if
        the consumer stops early."""
        self._consistency.fill(request)
        call = method(request, timeout=timeout, metadata=self.metadata)
        try:
            for response in call:
                yield response
        except grpc.RpcError as error:
            raise FathomError.from_rpc_error(error) from error
        finally:
            call.cancel()

    def _upsert(
        self, session: UpsertSession, source: DocumentSource, cutter: _convert.BatchCutter
    ) -> UpsertSummary:
        """Runs an upsert session, reopening a resumable stream after a
        failure the retry table retries (see :meth:`UpsertSession.can_reconnect`)."""
        backoff = Backoff.stream(self.retry)
        while True:
            progress_before = session.acks
            try:
                self._upsert_once(session, source, cutter)
                return session.finish()
            except (grpc.RpcError, WriteFailed) as failure:
                if session.acks > progress_before:
                    backoff.progressed()
                if isinstance(failure, WriteFailed):
                    error = failure.error()
                else:
                    error = FathomError.from_rpc_error(failure)
                pause = backoff.next_pause(error) if session.can_reconnect(error) else None
                if pause is None:
                    raise session.failed(error) from failure
                time.sleep(pause)
                session.summary.reconnects += 1
            except UpsertError:
                raise
            except FathomError as error:  # a protocol error
                raise session.failed(error) from error

    def _upsert_once(
        self, session: UpsertSession, source: DocumentSource, cutter: _convert.BatchCutter
    ) -> None:
        """One UpsertStream call: open, skip what an earlier run committed,
        send with a bounded window, read acks."""
        call = UpsertCall(self._documents, self.metadata)
        finished = False
        try:
            call.write(session.open_request())
            opened = call.read()
            if opened is None:
                raise protocol_error("the stream ended before `opened`")
            for resend in session.on_opened(opened):
                call.write(resend)
            _skip_committed(session, source)
            while True:
                if session.window_open:
                    docs = _next_batch(session, source, cutter)
                    if docs is not None:
                        # batch_request puts the batch in the window before
                        # the write: if the write fails, it is resent.
                        call.write(session.batch_request(docs))
                        continue
                if session.sending_done:
                    break
                ack = call.read()
                if ack is None:
                    raise protocol_error("the stream ended early")
                session.on_ack(ack)
                self._consistency.observe_response(ack.ack)
            call.done_writing()
            while (ack := call.read()) is not None:
                session.on_ack(ack)
                self._consistency.observe_response(ack.ack)
            session.ended()
            finished = True
        finally:
            if not finished:
                call.cancel()


def _skip_committed(session: UpsertSession, source: DocumentSource) -> None:
    """Reads the documents an earlier run committed (see :meth:`UpsertSession.skip`)."""
    while session.skipping:
        try:
            doc = read_document(source)
        except SourceEnded:
            session.input_exhausted()  # raises: too short
            return
        except Exception as error:  # the caller's iterable: anything may come
            session.input_failed(error, session.skipped_so_far)
            return
        session.skip(doc)


def _next_batch(
    session: UpsertSession, source: DocumentSource, cutter: _convert.BatchCutter
) -> list[documents_pb2.Document] | None:
    """Reads the next batch, or None when there is none to send: the input
    ended (:meth:`UpsertSession.input_exhausted`) or failed
    (:meth:`UpsertSession.input_failed`; the partial batch is dropped, not
    sent)."""
    while True:
        try:
            doc = read_document(source)
        except SourceEnded:
            last = cutter.flush()
            if last is None:
                session.input_exhausted()
            return last
        except Exception as error:  # the caller's iterable: anything may come
            session.input_failed(error, session.position + cutter.pending)
            return None
        full = cutter.add(doc)
        if full is not None:
            return full


def _listing(
    iterate: Callable[P, Iterator[T]], name: str, doc: str
) -> Callable[P, list[T]]:
    """A method that returns what the method ``iterate`` yields, as a list,
    with the same parameters: ``search`` is made from ``search_iter`` so that
    their long signature is written once."""

    def listing(*args: P.args, **kwargs: P.kwargs) -> list[T]:
        return [item for item in iterate(*args, **kwargs)]

    functools.update_wrapper(listing, iterate)
    listing.__name__ = name
    listing.__qualname__ = f"{listing.__qualname__.rpartition('.')[0]}.{name}"
    listing.__doc__ = doc
    # help() and IDEs read __signature__: the parameters of `iterate`, and a
    # list of what it yields as the return type.
    signature = inspect.signature(iterate)
    item_type = str(signature.return_annotation).partition("[")[2]
    setattr(listing, "__signature__", signature.replace(return_annotation=f"list[{item_type}"))
    return listing


class Collection:
    """A handle to one collection; get one from :meth:`Client.collection`
    or :meth:`Client.create_collection`.

    Every method accepts ``tenant=`` to override the handle's tenant (needed
    in multi-tenant collections, not allowed in others).
    """

    def __init__(self, client: Client, name: str, tenant: str | None = None) -> None:
        self.client = client
        self.name = name
        self.tenant = tenant

    def __repr__(self) -> str:
        tenant = f", tenant={self.tenant!r}" if self.tenant else ""
        return f"Collection({self.name!r}{tenant})"

    def with_tenant(self, tenant: str | None) -> Collection:
        """Returns a handle to the same collection with another default tenant."""
        return Collection(self.client, self.name, tenant)

    def _tenant(self, tenant: str | None) -> str | None:
        return tenant if tenant is not None else self.tenant

    # -- settings --------------------------------------------------------------

    def info(self) -> CollectionInfo:
        """Returns the collection's settings."""
        return self.client.get_collection(self.name)

    def stats(self) -> CollectionStats:
        """Returns the document count (all tenants) and on-disk sizes."""
        return self.client.collection_stats(self.name)

    def build_index(self, *, timeout: float | None = None) -> CollectionInfo:
        """Builds the collection's deferred vector index and returns once it
        is ready; see :meth:`Client.build_index`."""
        return self.client.build_index(self.name, timeout=timeout)

    # -- writes ----------------------------------------------------------------

    def upsert(
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
        """Writes documents through one ``UpsertStream``; existing ids are replaced.

        The input is cut into batches of at most ``batch_size`` documents and
        ``batch_bytes`` encoded bytes, and at most ``max_in_flight`` batches
        are unacknowledged at once, so memory stays bounded however long the
        input is. Every acknowledged batch is committed. If the call is
        interrupted (an exception, a cancelled task), the stream is
        cancelled; committed batches stay committed.

        With a ``stream_id`` the upsert is resumable, and exact: the server
        records how many documents of the input are committed under it.

        - Inside the call, a broken connection (UNAVAILABLE, or the
          connection reset) is reopened; the batches the server committed
          meanwhile count as written and the others are resent.
        - Across calls (the process died, the call raised), calling again
          with the same ``stream_id`` and the same input reads past the
          documents an earlier run committed without sending them
          (``UpsertSummary.skipped_documents``), checks that their ids are
          the ones committed, and writes the rest. Any batch size works: the
          server tracks documents by their position in the input, not by
          batch, so each document is written once. Another input is refused
          with :class:`~fathom.ResumeMismatchError` before anything is sent:
          a stream id belongs to one input (and one collection and tenant);
          use a new one for other data.

        Args:
            ids: Document ids (1 to 256 bytes of UTF-8).
            vectors: One vector per id: lists of floats, or a 2-d numpy array.
            texts: Optional texts for keyword search.
            metadatas: Optional metadata dicts (JSON-like; datetimes are
                stored as RFC 3339 UTC strings).
            tenant: Tenant to write as (multi-tenant collections).
            batch_size: Most documents per batch (the server allows up to 1000).
            stream_id: Makes the upsert resumable (see above): 1 to 128 ASCII
                letters, digits, ``-``, ``_``, ``.`` and ``:``.
            batch_bytes: Most encoded bytes per batch (default 8 MiB).
            max_in_flight: Batches sent ahead of their acknowledgement.
            progress: Called with the number of documents of each batch
                acknowledged, and once with the number skipped on resume.
            build_index_at_end: If the collection's index is not built
                (``index_state`` ``"deferred"``), have the server build it
                once every batch is acknowledged, and return only when it is
                ready: a bulk load that is searchable with its index when the
                call returns. An ``"automatic"`` collection (the default; see
                ``index_build`` in :meth:`Client.create_collection`)
                does so without it once the upsert takes it past the server's
                indexing threshold; the flag builds the index below the
                threshold too, and in an ``"on_request"`` collection, where it
                indexes an input loaded in several calls with the last one.
                Ignored by a collection whose index is ready.

        Returns:
            An :class:`~fathom.UpsertSummary`.

        Raises:
            UpsertRejectedError: a batch was refused (with violations);
                nothing of it was written, the batches before it were.
            ResumeMismatchError: the stream id has other data committed.
            UpsertInputError: reading the input failed (``__cause__``); the
                batch being built was not sent.
            UpsertError: the stream failed (e.g. NOT_FOUND, or UNAVAILABLE
                after the reconnect attempts). Every one of these errors
                carries ``committed_documents`` and ``documents_written``.
            ValueError: the columns have different lengths, or a limit is < 1.
        """
        docs = _convert.columns_to_documents(ids, vectors, texts, metadatas)
        return self._upsert_docs(
            docs,
            tenant,
            batch_size,
            batch_bytes,
            stream_id,
            max_in_flight,
            progress,
            build_index_at_end,
        )

    def upsert_iter(
        self,
        documents: Iterable[Mapping[str, Any]],
        tenant: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        stream_id: str | None = None,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_in_flight: int = 4,
        progress: ProgressCallback | None = None,
        build_index_at_end: bool = False,
    ) -> UpsertSummary:
        """Like :meth:`upsert`, from an iterable (possibly unbounded) of dicts
        with keys ``id``, ``vector`` and optionally ``text``, ``metadata``.

        The iterable is consumed lazily: at most about ``batch_size *
        (max_in_flight + 1)`` documents are held in memory. If it raises (or
        a dict cannot be converted), the batch being built is not sent, the
        batches already sent are acknowledged, and
        :class:`~fathom.UpsertInputError` is raised with the exact
        ``committed_documents`` and the original exception as ``__cause__``;
        with a ``stream_id``, a later call on the (fixed) input continues
        there.
        """
        docs = dicts_to_documents(documents)
        return self._upsert_docs(
            docs,
            tenant,
            batch_size,
            batch_bytes,
            stream_id,
            max_in_flight,
            progress,
            build_index_at_end,
        )

    def _upsert_docs(
        self,
        docs: DocumentSource,
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
        return self.client._upsert(session, docs, cutter)

    def upsert_batch(
        self,
        ids: Iterable[str],
        vectors: Iterable[VectorLike],
        texts: Iterable[str | None] | None = None,
        metadatas: Iterable[Mapping[str, Any] | None] | None = None,
        *,
        tenant: str | None = None,
    ) -> int:
        """Writes one batch with the unary ``Upsert`` RPC, in one transaction,
        and returns the number of documents written.

        All or nothing: invalid input raises :class:`~fathom.FathomError`
        INVALID_ARGUMENT (RESOURCE_EXHAUSTED for a size limit) with
        violations such as ``documents[3].vector``, and nothing is written.
        The batch must fit the server's limits (1000 documents by default,
        distinct ids); for more, use :meth:`upsert`. Arguments as in
        :meth:`upsert`.
        """
        docs = _convert.columns_to_documents(ids, vectors, texts, metadatas)
        request = _convert.upsert_request(self.name, self._tenant(tenant), docs)
        response = self.client._unary(self.client._documents.Upsert, request)
        return int(response.documents_written)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        tenant: str | None = None,
    ) -> int:
        """Deletes documents by id or by filter (exactly one); returns how many went."""
        request = _convert.delete_request(self.name, self._tenant(tenant), ids, filter)
        response = self.client._unary(self.client._documents.Delete, request)
        return int(response.deleted)

    def update(
        self,
        ids: Sequence[str] | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        text: str | None = None,
        set_metadata: Mapping[str, Any] | None = None,
        replace_metadata: bool = False,
        delete_metadata_keys: Iterable[str] = (),
        tenant: str | None = None,
    ) -> int:
        """Changes the text and metadata of stored documents, chosen by id or
        by filter (exactly one), and returns how many were changed.

        Vectors are left as they are, and so is whatever the call does not
        name: unlike :meth:`upsert`, which replaces a whole document. Every
        chosen document gets the same change, in one transaction: all of it
        or, on an error, none of it. Ids that do not exist are skipped (and
        not counted), never created. Like :meth:`delete`, an update may be
        retried as the client's ``retry`` policy says: applying it twice
        leaves the documents as applying it once.

        Args:
            ids: The documents to change.
            filter: Change every document matching this filter instead.
            text: The new text, re-indexed for keyword search. ``None`` keeps
                each document's text; any string, ``""`` too, replaces it.
            set_metadata: Metadata to write (JSON-like, as in
                :meth:`upsert`). Each top-level key given replaces that key's
                value and every other key is kept: ``{"status": "done"}``
                changes ``status`` alone. ``None`` sets nothing.
            replace_metadata: Replace the whole metadata object with
                ``set_metadata`` instead (``{}`` clears it). Needs
                ``set_metadata``; excludes ``delete_metadata_keys``.
            delete_metadata_keys: Top-level metadata keys to remove (at most
                1000, none of them also in ``set_metadata``); keys a document
                lacks are ignored.
            tenant: Tenant override.

        Returns:
            The number of documents changed: those chosen that exist.

        Raises:
            FathomError: INVALID_ARGUMENT, with violations naming the request
                field (such as ``replace_metadata`` or
                ``delete_metadata_keys[0]``), when the update changes nothing
                (no ``text``, ``set_metadata`` nor ``delete_metadata_keys``)
                or its parts do not go together; RESOURCE_EXHAUSTED with
                field ``set_metadata`` when the merged metadata of a document
                would exceed the limit on any document's metadata (64 KiB as
                JSON). Nothing is changed then.
            ValueError: Neither or both of ``ids`` and ``filter`` were given.
            TypeError: ``ids`` or ``delete_metadata_keys`` is a single
                string, or ``set_metadata`` is not JSON-like.
        """
        request = _convert.update_request(
            self.name,
            self._tenant(tenant),
            ids,
            filter,
            text=text,
            set_metadata=set_metadata,
            replace_metadata=replace_metadata,
            delete_metadata_keys=delete_metadata_keys,
        )
        response = self.client._unary(self.client._documents.Update, request)
        return int(response.updated)

    # -- reads -----------------------------------------------------------------

    def count(
        self, filter: FilterSpec | filter_pb2.Filter | None = None, *, tenant: str | None = None
    ) -> int:
        """Counts the documents matching a filter (all, if ``None``)."""
        request = _convert.count_request(self.name, self._tenant(tenant), filter)
        response = self.client._unary(self.client._documents.Count, request)
        return int(response.count)

    def get(
        self,
        ids: Sequence[str],
        *,
        include: Iterable[str] | None = None,
        tenant: str | None = None,
    ) -> list[Document]:
        """Returns the documents with these ids, in that order; missing ids
        are left out. ``include`` picks fields among ``"text"``,
        ``"metadata"`` and ``"vector"`` (default: all)."""
        request = _convert.get_request(self.name, self._tenant(tenant), ids, include)
        response = self.client._unary(self.client._documents.Get, request)
        return [_convert.document_from_pb(d) for d in response.documents]

    def scroll(
        self,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        include: Iterable[str] | None = None,
        limit: int | None = None,
        after_id: str | None = None,
        tenant: str | None = None,
    ) -> Iterator[Document]:
        """Yields every document matching the filter, in id order, exactly once.

        After a failure the retry table retries (the connection dropped, the
        server was busy), the scroll resumes after the last document received. Stopping the iteration early cancels the call.
        """
        fields = None if include is None else list(include)
        _convert.include_pb(fields)  # fail now, not at the first next()
        return self._scroll(_convert.filter_pb(filter), fields, limit, after_id, tenant)

    def _scroll(
        self,
        filter: filter_pb2.Filter | None,
        include: list[str] | None,
        limit: int | None,
        after_id: str | None,
        tenant: str | None,
    ) -> Iterator[Document]:
        received = 0
        backoff = Backoff.stream(self.client.retry)
        last_id = after_id
        while True:
            remaining = None if limit is None else limit - received
            if remaining is not None and remaining <= 0:
                return
            request = _convert.scroll_request(
                self.name, self._tenant(tenant), filter, include, remaining, last_id
            )
            try:
                for response in self.client._stream(
                    self.client._documents.Scroll, request, timeout=None
                ):
                    document = _convert.document_from_pb(response.document)
                    last_id = document.id
                    received += 1
                    backoff.progressed()
                    yield document
                return
            except FathomError as error:
                pause = backoff.next_pause(error)
                if pause is None:
                    raise
                time.sleep(pause)

    def scroll_batches(
        self,
        batch_size: int = 1000,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        *,
        include: Iterable[str] | None = None,
        tenant: str | None = None,
    ) -> Iterator[list[Document]]:
        """Like :meth:`scroll`, yielding lists of up to ``batch_size`` documents."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        batch: list[Document] = []
        for document in self.scroll(filter, include=include, tenant=tenant):
            batch.append(document)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def search_iter(
        self,
        vector: VectorLike | None = None,
        text: str | None = None,
        filter: FilterSpec | filter_pb2.Filter | None = None,
        limit: int = 10,
        fusion: FusionSpec | search_pb2.Fusion | None = None,
        *,
        example_id: str | None = None,
        offset: int = 0,
        include: Iterable[str] | None = None,
        candidates: int | None = None,
        exact: bool = False,
        ef_search: int | None = None,
        score_threshold: float | None = None,
        tenant: str | None = None,
    ) -> Iterator[Hit]:
        """Like :meth:`search`, yielding hits as the server streams them."""
        request = _convert.search_request(
            self.name,
            self._tenant(tenant),
            vector=vector,
            text=text,
            filter=filter,
            limit=limit,
            fusion=fusion,
            example_id=example_id,
            offset=offset,
            include=include,
            candidates=candidates,
            exact=exact,
            ef_search=ef_search,
            score_threshold=score_threshold,
        )
        return self._hits(request)

    search = _listing(
        search_iter,
        "search",
        """Vector, keyword or hybrid search; returns hits, best first.

        A search needs a ``vector``, an ``example_id`` (its stored vector is
        the query), a ``text``, or a ``text`` with one of the other two (hybrid).

        Args:
            vector: Query vector (vector leg).
            text: Query text in web-search syntax (keyword leg).
            filter: Only documents matching it are ranked, in every leg.
            limit: Maximum number of hits, 1..=1000.
            fusion: Hybrid fusion: ``"rrf"`` / :class:`~fathom.RRF` (the
                default), or ``"relative_score"`` / :class:`~fathom.RelativeScore`.
            example_id: Search by example ("more like this"): the vector leg's
                query is the stored vector of this document (of the tenant
                searched), which is left out of the hits. Not with ``vector``
                (INVALID_ARGUMENT); a document that does not exist is NOT_FOUND.
            offset: Skip this many of the best hits before the ``limit``
                returned: page ``n`` (from 0) is ``offset=n * limit``;
                ``offset + limit`` is at most 1000. Hits are ordered by score,
                then id, so pages neither repeat nor skip a hit when each
                ranks the same candidates: pass ``candidates`` (at least
                ``offset + limit`` of the last page), since its default grows
                with ``offset + limit``.
            include: Fields to return among ``"text"``, ``"metadata"``,
                ``"vector"`` (default: text and metadata).
            candidates: Candidates per leg before fusion (0/None: server default).
            exact: Skip the vector index and compute exact distances.
            ef_search: HNSW search breadth.
            score_threshold: Drop hits scoring worse than this.
            tenant: Tenant override.
        """,
    )

    def _hits(self, request: search_pb2.SearchRequest) -> Iterator[Hit]:
        """The hits of a search; starting it is retried as the retry table
        says, hits once yielded are not taken back."""
        backoff = Backoff.call(self.client.retry)
        while True:
            started = False
            try:
                for hit in self.client._stream(
                    self.client._search.Search, request, self.client.timeout
                ):
                    started = True
                    yield _convert.hit_from_pb(hit)
                return
            except FathomError as error:
                pause = None if started else backoff.next_pause(error)
                if pause is None:
                    raise
                time.sleep(pause)
