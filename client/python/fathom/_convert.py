"""Conversions between the Python-facing types and the generated messages.

Shared by the sync and asyncio clients; no I/O happens here.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import grpc
from google.protobuf import struct_pb2

from fathom._time import from_timestamp, rfc3339, to_timestamp
from fathom.errors import FathomError
from fathom.filters import FilterSpec, to_filter
from fathom.models import (
    RRF,
    ApiKeyInfo,
    Alias,
    AliasAction,
    CollectionInfo,
    CollectionStats,
    CreateAlias,
    DeleteAlias,
    Document,
    FusionSpec,
    HnswIndex,
    Hit,
    IndexBuild,
    IndexPrecision,
    IndexSpec,
    IndexState,
    KeyRole,
    KeyState,
    KeywordRanking,
    Metric,
    NoIndex,
    RelativeScore,
    SwitchAlias,
    VectorLike,
)
from fathom.v1 import collections_pb2, documents_pb2, filter_pb2, keys_pb2, search_pb2

_METRICS: dict[str, collections_pb2.DistanceMetric] = {
    "cosine": collections_pb2.DISTANCE_METRIC_COSINE,
    "l2": collections_pb2.DISTANCE_METRIC_L2,
    "inner_product": collections_pb2.DISTANCE_METRIC_INNER_PRODUCT,
}
_METRIC_NAMES: dict[int, Metric] = {
    collections_pb2.DISTANCE_METRIC_COSINE: "cosine",
    collections_pb2.DISTANCE_METRIC_L2: "l2",
    collections_pb2.DISTANCE_METRIC_INNER_PRODUCT: "inner_product",
}
_PRECISIONS: dict[str, collections_pb2.IndexPrecision] = {
    "half": collections_pb2.INDEX_PRECISION_HALF,
    "single": collections_pb2.INDEX_PRECISION_SINGLE,
}
_PRECISION_NAMES: dict[int, IndexPrecision] = {
    collections_pb2.INDEX_PRECISION_HALF: "half",
    collections_pb2.INDEX_PRECISION_SINGLE: "single",
}
_INDEX_BUILDS: dict[str, collections_pb2.IndexBuild] = {
    "automatic": collections_pb2.INDEX_BUILD_AUTOMATIC,
    "immediate": collections_pb2.INDEX_BUILD_IMMEDIATE,
    "on_request": collections_pb2.INDEX_BUILD_ON_REQUEST,
}
_INDEX_BUILD_NAMES: dict[int, IndexBuild] = {
    collections_pb2.INDEX_BUILD_AUTOMATIC: "automatic",
    collections_pb2.INDEX_BUILD_IMMEDIATE: "immediate",
    collections_pb2.INDEX_BUILD_ON_REQUEST: "on_request",
}
_INDEX_STATE_NAMES: dict[int, IndexState] = {
    collections_pb2.INDEX_STATE_READY: "ready",
    collections_pb2.INDEX_STATE_DEFERRED: "deferred",
    collections_pb2.INDEX_STATE_BUILDING: "building",
}
_KEYWORD_RANKING_NAMES: dict[int, KeywordRanking] = {
    collections_pb2.KEYWORD_RANKING_BM25: "bm25",
    collections_pb2.KEYWORD_RANKING_TS_RANK: "ts_rank",
}
_KEY_ROLES: dict[str, keys_pb2.KeyRole] = {
    "read": keys_pb2.KEY_ROLE_READ,
    "write": keys_pb2.KEY_ROLE_WRITE,
    "admin": keys_pb2.KEY_ROLE_ADMIN,
}
_KEY_ROLE_NAMES: dict[int, KeyRole] = {
    keys_pb2.KEY_ROLE_READ: "read",
    keys_pb2.KEY_ROLE_WRITE: "write",
    keys_pb2.KEY_ROLE_ADMIN: "admin",
}
_KEY_STATE_NAMES: dict[int, KeyState] = {
    keys_pb2.KEY_STATE_ACTIVE: "active",
    keys_pb2.KEY_STATE_EXPIRED: "expired",
    keys_pb2.KEY_STATE_REVOKED: "revoked",
}
_INCLUDE_FIELDS = ("text", "metadata", "vector")
_MAX_SAFE_INT = 2**53


# -- collections ---------------------------------------------------------------


def metric_pb(metric: str) -> collections_pb2.DistanceMetric:
    """Maps ``"cosine"``, ``"l2"`` or ``"inner_product"`` to the proto enum."""
    try:
        return _METRICS[metric]
    except KeyError:
        raise ValueError(
            f"unknown metric {metric!r}: expected one of {', '.join(_METRICS)}"
        ) from None


def index_pb(index: IndexSpec | collections_pb2.IndexSettings | None) -> collections_pb2.IndexSettings | None:
    """Builds ``IndexSettings``; ``None`` leaves it to the server (HNSW defaults)."""
    if index is None:
        return None
    if isinstance(index, collections_pb2.IndexSettings):
        return index
    if index == "hnsw":
        index = HnswIndex()
    elif index == "none":
        index = NoIndex()
    if isinstance(index, HnswIndex):
        return collections_pb2.IndexSettings(
            hnsw=collections_pb2.HnswIndex(
                m=index.m,
                ef_construction=index.ef_construction,
                precision=precision_pb(index.precision),
            )
        )
    if isinstance(index, NoIndex):
        return collections_pb2.IndexSettings(none=collections_pb2.NoIndex())
    raise ValueError(f"unknown index {index!r}: expected 'hnsw', 'none', HnswIndex or NoIndex")


def precision_pb(precision: str | None) -> collections_pb2.IndexPrecision:
    """Maps ``"half"`` or ``"single"`` to the proto enum; ``None`` is
    UNSPECIFIED (the server's default, half)."""
    if precision is None:
        return collections_pb2.INDEX_PRECISION_UNSPECIFIED
    try:
        return _PRECISIONS[precision]
    except KeyError:
        raise ValueError(
            f"unknown index precision {precision!r}: expected one of {', '.join(_PRECISIONS)}"
        ) from None


def precision_name(precision: int) -> IndexPrecision | None:
    """Maps the proto ``IndexPrecision`` to ``"half"`` or ``"single"``;
    UNSPECIFIED (from a server older than index precisions) and a value newer
    than this client are ``None``."""
    return _PRECISION_NAMES.get(precision)


def index_build_pb(index_build: str | None) -> collections_pb2.IndexBuild:
    """Maps ``"automatic"``, ``"immediate"`` or ``"on_request"`` to the proto
    enum; ``None`` is UNSPECIFIED (the server's default, automatic, or
    on_request with ``defer_index``)."""
    if index_build is None:
        return collections_pb2.INDEX_BUILD_UNSPECIFIED
    try:
        return _INDEX_BUILDS[index_build]
    except KeyError:
        raise ValueError(
            f"unknown index_build {index_build!r}: expected one of {', '.join(_INDEX_BUILDS)}"
        ) from None


def index_build_name(index_build: int) -> IndexBuild | Literal["unspecified"]:
    """Maps the proto ``IndexBuild`` to ``"automatic"``, ``"immediate"`` or
    ``"on_request"``; UNSPECIFIED (from a server older than index builds) and
    a value newer than this client are ``"unspecified"``."""
    return _INDEX_BUILD_NAMES.get(index_build, "unspecified")


def create_collection_request(
    name: str,
    dimension: int,
    metric: str,
    language: str,
    multi_tenant: bool,
    index: IndexSpec | collections_pb2.IndexSettings | None,
    defer_index: bool = False,
    index_build: IndexBuild | None = None,
) -> collections_pb2.CreateCollectionRequest:
    """Builds a ``CreateCollectionRequest``. ``defer_index`` with another
    ``index_build`` is sent as it is, for the server to refuse."""
    request = collections_pb2.CreateCollectionRequest(
        name=name,
        dimension=dimension,
        metric=metric_pb(metric),
        text_language=language,
        multi_tenant=multi_tenant,
        defer_index=defer_index,
        index_build=index_build_pb(index_build),
    )
    settings = index_pb(index)
    if settings is not None:
        request.index.CopyFrom(settings)
    return request


def check_existing_collection(
    info: CollectionInfo, dimension: int, metric: str, multi_tenant: bool
) -> None:
    """Checks that an existing collection has the settings a get-or-create
    asked for; raises :class:`~fathom.FathomError` ALREADY_EXISTS if not."""
    wanted = (dimension, metric_pb(metric), multi_tenant)
    if (info.dimension, metric_pb(info.metric), info.multi_tenant) != wanted:
        tenancy = "multi-tenant" if info.multi_tenant else "single-tenant"
        raise FathomError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"collection {info.name!r} exists with dimension {info.dimension}, metric "
            f"{info.metric}, {tenancy}; asked for dimension {dimension}, metric {metric}, "
            f"{'multi-tenant' if multi_tenant else 'single-tenant'}",
        )


def collection_info(pb: collections_pb2.Collection) -> CollectionInfo:
    """Converts a ``Collection`` message."""
    index: HnswIndex | NoIndex
    if pb.index.WhichOneof("kind") == "none":
        index = NoIndex()
    else:
        hnsw = pb.index.hnsw
        index = HnswIndex(
            m=hnsw.m,
            ef_construction=hnsw.ef_construction,
            precision=precision_name(hnsw.precision),
        )
    return CollectionInfo(
        name=pb.name,
        dimension=pb.dimension,
        metric=_METRIC_NAMES.get(pb.metric, "cosine") if pb.metric else "cosine",
        index=index,
        language=pb.text_language,
        multi_tenant=pb.multi_tenant,
        create_time=from_timestamp(pb.create_time) if pb.HasField("create_time") else None,
        index_state=index_state_name(pb.index_state),
        keyword_ranking=_KEYWORD_RANKING_NAMES.get(pb.keyword_ranking, "unspecified"),
        index_build=index_build_name(pb.index_build),
    )


def alias(pb: collections_pb2.Alias) -> Alias:
    """Converts an ``Alias`` message."""
    return Alias(
        alias=pb.alias,
        collection=pb.collection,
        update_time=from_timestamp(pb.update_time) if pb.HasField("update_time") else None,
    )


def update_aliases_request(actions: Iterable[AliasAction]) -> collections_pb2.UpdateAliasesRequest:
    """The request applying ``actions`` in order; refuses anything else with
    TypeError."""
    request = collections_pb2.UpdateAliasesRequest()
    for position, action in enumerate(actions):
        if isinstance(action, CreateAlias):
            request.actions.add().create_alias.CopyFrom(
                collections_pb2.CreateAlias(alias=action.alias, collection=action.collection)
            )
        elif isinstance(action, SwitchAlias):
            request.actions.add().switch_alias.CopyFrom(
                collections_pb2.SwitchAlias(alias=action.alias, collection=action.collection)
            )
        elif isinstance(action, DeleteAlias):
            request.actions.add().delete_alias.CopyFrom(collections_pb2.DeleteAlias(alias=action.alias))
        else:
            raise TypeError(
                f"actions[{position}] is {type(action).__name__}; use CreateAlias, SwitchAlias or DeleteAlias"
            )
    return request


def index_state_name(state: int) -> IndexState:
    """Maps the proto ``IndexState`` to ``"ready"``, ``"deferred"`` or
    ``"building"``; UNSPECIFIED (and a state newer than this client) is
    ``"unspecified"``."""
    return _INDEX_STATE_NAMES.get(state, "unspecified")


def collection_stats(pb: collections_pb2.GetCollectionStatsResponse) -> CollectionStats:
    """Converts a ``GetCollectionStatsResponse``."""
    return CollectionStats(
        name=pb.name,
        document_count=pb.document_count,
        table_bytes=pb.table_bytes,
        index_bytes=pb.index_bytes,
        total_bytes=pb.total_bytes,
    )


# -- values --------------------------------------------------------------------


# -- keys --------------------------------------------------------------------


def create_key_request(
    role: str,
    description: str,
    tenant: str | None,
    collections: Sequence[str],
    expires_at: _dt.datetime | None,
    expires_in: _dt.timedelta | float | None,
) -> keys_pb2.CreateKeyRequest:
    """Builds a ``CreateKeyRequest``; ``expires_in`` (a timedelta or seconds)
    counts from this machine's clock now."""
    if role not in _KEY_ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(_KEY_ROLES)}")
    if isinstance(collections, str):
        raise TypeError("collections is a list of names, not one string")
    if expires_at is not None and expires_in is not None:
        raise ValueError("give expires_at or expires_in, not both")
    if expires_in is not None:
        delta = expires_in if isinstance(expires_in, _dt.timedelta) else _dt.timedelta(seconds=expires_in)
        expires_at = _dt.datetime.now(_dt.timezone.utc) + delta
    request = keys_pb2.CreateKeyRequest(
        role=_KEY_ROLES[role], description=description, collections=list(collections)
    )
    if tenant is not None:
        request.tenant = tenant
    if expires_at is not None:
        request.expire_time.CopyFrom(to_timestamp(expires_at))
    return request


def api_key_info(pb: keys_pb2.ApiKey) -> ApiKeyInfo:
    """Converts an ``ApiKey`` message."""

    def time(name: str) -> _dt.datetime | None:
        return from_timestamp(getattr(pb, name)) if pb.HasField(name) else None

    return ApiKeyInfo(
        id=pb.id,
        role=_KEY_ROLE_NAMES.get(pb.role, "unspecified"),
        tenant=pb.tenant if pb.HasField("tenant") else None,
        collections=tuple(pb.collections),
        description=pb.description,
        create_time=time("create_time"),
        expire_time=time("expire_time"),
        revoke_time=time("revoke_time"),
        state=_KEY_STATE_NAMES.get(pb.state, "unspecified"),
    )


def vector_values(vector: VectorLike | Iterable[float]) -> list[float]:
    """A vector as a list of Python floats (numpy arrays via ``tolist()``)."""
    tolist = getattr(vector, "tolist", None)
    values: Any = tolist() if callable(tolist) else vector
    if isinstance(values, (str, bytes, Mapping)):
        raise TypeError(f"a vector is a sequence of numbers, got {type(vector).__name__}")
    return [float(x) for x in values]


def json_value(value: Any) -> Any:
    """Makes a metadata value JSON-compatible for a ``Struct``.

    Datetimes become RFC 3339 UTC strings (comparable with timestamp
    bounds), tuples and sets become lists, numpy scalars become numbers.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, _dt.date):
        return rfc3339(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"metadata keys must be strings, got {key!r}")
            out[key] = json_value(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return json_value(item())
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return json_value(tolist())
    raise TypeError(f"metadata values must be JSON-like, got {type(value).__name__}")


def to_struct(metadata: Mapping[str, Any]) -> struct_pb2.Struct:
    """Converts a metadata dict into a ``google.protobuf.Struct``."""
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    struct = struct_pb2.Struct()
    struct.update(json_value(metadata))
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Converts a ``Struct`` into a dict.

    JSON numbers arrive as doubles; integral ones (below 2**53) become ``int``
    so that ``{"year": 2024}`` round-trips as written.
    """
    return {key: _from_value(value) for key, value in struct.fields.items()}


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number) and number.is_integer() and abs(number) < _MAX_SAFE_INT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [_from_value(item) for item in value.list_value.values]
    return None


# -- documents -----------------------------------------------------------------


def document_pb(
    id: str,
    vector: VectorLike | Iterable[float],
    text: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tenant: str | None = None,
) -> documents_pb2.Document:
    """Builds a ``Document`` message."""
    if not isinstance(id, str):
        raise TypeError(f"document ids are strings, got {type(id).__name__}")
    doc = documents_pb2.Document(id=id, vector=vector_values(vector), text=text or "")
    if metadata:
        doc.metadata.CopyFrom(to_struct(metadata))
    if tenant:
        doc.tenant = tenant
    return doc


def columns_to_documents(
    ids: Iterable[str],
    vectors: Iterable[VectorLike],
    texts: Iterable[str | None] | None,
    metadatas: Iterable[Mapping[str, Any] | None] | None,
) -> Iterator[documents_pb2.Document]:
    """Zips column inputs into ``Document`` messages, lazily.

    Lengths are checked now where the inputs have a length, and while zipping
    otherwise.
    """
    columns: dict[str, Any] = {"ids": ids, "vectors": vectors}
    if texts is not None:
        columns["texts"] = texts
    if metadatas is not None:
        columns["metadatas"] = metadatas
    lengths = {name: len(col) for name, col in columns.items() if hasattr(col, "__len__")}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "ids, vectors, texts and metadatas must have the same length, got "
            + ", ".join(f"{name}={n}" for name, n in lengths.items())
        )
    return _zip_columns(columns)


def _zip_columns(columns: dict[str, Any]) -> Iterator[documents_pb2.Document]:
    names = list(columns)
    for row in zip(*columns.values(), strict=True):
        values = dict(zip(names, row))
        yield document_pb(
            values["ids"], values["vectors"], values.get("texts"), values.get("metadatas")
        )


def dict_to_document(item: Mapping[str, Any], position: int = 0) -> documents_pb2.Document:
    """Converts a dict with ``id``, ``vector`` and optional ``text``,
    ``metadata`` and ``tenant`` into a ``Document`` message."""
    if not isinstance(item, Mapping):
        raise TypeError(f"document #{position} is a {type(item).__name__}, not a dict")
    try:
        return document_pb(
            item["id"], item["vector"], item.get("text"), item.get("metadata"), item.get("tenant")
        )
    except KeyError as missing:
        raise ValueError(f"document #{position} has no {missing.args[0]!r} key") from None


def dicts_to_documents(
    items: Iterable[Mapping[str, Any]],
) -> Iterator[documents_pb2.Document]:
    """Converts dicts (see :func:`dict_to_document`) into messages, lazily."""
    for position, item in enumerate(items):
        yield dict_to_document(item, position)


def upsert_request(
    collection: str, tenant: str | None, docs: Iterable[documents_pb2.Document]
) -> documents_pb2.UpsertRequest:
    """Builds an ``UpsertRequest`` (the unary, one-batch write)."""
    return documents_pb2.UpsertRequest(collection=collection, tenant=tenant or "", documents=docs)


BATCH_DOCUMENT_OVERHEAD = 8
"""Bytes added to each document's encoded size when cutting batches (its tag
and length in the batch message), as in the Rust client."""


def document_size(doc: documents_pb2.Document) -> int:
    """A document's size in a batch, as counted against ``batch_bytes``."""
    return doc.ByteSize() + BATCH_DOCUMENT_OVERHEAD


def check_batch_limits(batch_size: int, batch_bytes: int) -> None:
    """Refuses batch limits below 1."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if batch_bytes < 1:
        raise ValueError(f"batch_bytes must be at least 1, got {batch_bytes}")


def batched(
    docs: Iterable[documents_pb2.Document], batch_size: int, batch_bytes: int
) -> Iterator[list[documents_pb2.Document]]:
    """Cuts documents into batches of at most ``batch_size`` documents and
    ``batch_bytes`` bytes (by :func:`document_size`; a larger document is a
    batch of its own). Limits are checked now; the input is read lazily.

    The rule is the Rust client's. Resuming does not depend on it: the
    server tracks committed documents by input position, not by batch.
    """
    check_batch_limits(batch_size, batch_bytes)
    return _batches(iter(docs), batch_size, batch_bytes)


def _batches(
    docs: Iterator[documents_pb2.Document], batch_size: int, batch_bytes: int
) -> Iterator[list[documents_pb2.Document]]:
    cutter = BatchCutter(batch_size, batch_bytes)
    for doc in docs:
        full = cutter.add(doc)
        if full is not None:
            yield full
    last = cutter.flush()
    if last is not None:
        yield last


class BatchCutter:
    """The batching rule of :func:`batched`, fed one document at a time (for
    sync and async sources alike)."""

    def __init__(self, batch_size: int, batch_bytes: int) -> None:
        self._max_documents = batch_size
        self._max_bytes = batch_bytes
        self._batch: list[documents_pb2.Document] = []
        self._bytes = 0

    def add(self, doc: documents_pb2.Document) -> list[documents_pb2.Document] | None:
        """Adds a document; returns a batch when one is complete."""
        size = document_size(doc)
        full = None
        if self._batch and self._bytes + size > self._max_bytes:
            full = self._take()
        self._batch.append(doc)
        self._bytes += size
        if len(self._batch) >= self._max_documents:
            # Only when `doc` did not start a new batch (batch_size >= 2 then),
            # or batch_size is 1 (and the previous batch was cut already).
            full = self._take()
        return full

    @property
    def pending(self) -> int:
        """Documents added and not yet returned in a batch."""
        return len(self._batch)

    def flush(self) -> list[documents_pb2.Document] | None:
        """The last, partial batch, if any."""
        return self._take() if self._batch else None

    def _take(self) -> list[documents_pb2.Document]:
        batch, self._batch, self._bytes = self._batch, [], 0
        return batch


def include_pb(include: Iterable[str] | None) -> documents_pb2.Include | None:
    """Builds ``Include`` from field names (``"text"``, ``"metadata"``,
    ``"vector"``); ``None`` keeps the server's default."""
    if include is None:
        return None
    if isinstance(include, str):
        include = [include]
    names = set(include)
    unknown = names.difference(_INCLUDE_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown include field(s) {sorted(unknown)}: expected {', '.join(_INCLUDE_FIELDS)}"
        )
    return documents_pb2.Include(
        text="text" in names, metadata="metadata" in names, vector="vector" in names
    )


def document_from_pb(pb: documents_pb2.Document) -> Document:
    """Converts a ``Document`` message."""
    return Document(
        id=pb.id,
        vector=list(pb.vector) or None,
        text=pb.text,
        metadata=from_struct(pb.metadata),
        tenant=pb.tenant or None,
    )


def filter_pb(filter: FilterSpec | filter_pb2.Filter | None) -> filter_pb2.Filter | None:
    """Translates an optional filter dict."""
    return None if filter is None else to_filter(filter)


def get_request(
    collection: str, tenant: str | None, ids: Sequence[str], include: Iterable[str] | None
) -> documents_pb2.GetRequest:
    """Builds a ``GetRequest``."""
    if isinstance(ids, str):
        raise TypeError("ids must be a list of strings, not a string")
    request = documents_pb2.GetRequest(collection=collection, tenant=tenant or "", ids=list(ids))
    included = include_pb(include)
    if included is not None:
        request.include.CopyFrom(included)
    return request


def delete_request(
    collection: str,
    tenant: str | None,
    ids: Sequence[str] | None,
    filter: FilterSpec | filter_pb2.Filter | None,
) -> documents_pb2.DeleteRequest:
    """Builds a ``DeleteRequest``; exactly one of ``ids`` and ``filter``."""
    request = documents_pb2.DeleteRequest(collection=collection, tenant=tenant or "")
    _select(request, "delete", ids, filter)
    return request


def update_request(
    collection: str,
    tenant: str | None,
    ids: Sequence[str] | None,
    filter: FilterSpec | filter_pb2.Filter | None,
    *,
    text: str | None,
    set_metadata: Mapping[str, Any] | None,
    replace_metadata: bool,
    delete_metadata_keys: Iterable[str],
) -> documents_pb2.UpdateRequest:
    """Builds an ``UpdateRequest``; exactly one of ``ids`` and ``filter``.

    ``None`` leaves ``text`` and ``set_metadata`` unset (kept as they are),
    while ``""`` and ``{}`` are sent as set. Whether the parts go together
    (something to change, no key both set and deleted, ...) is the server's
    to say, with the request's field names.
    """
    request = documents_pb2.UpdateRequest(
        collection=collection, tenant=tenant or "", replace_metadata=replace_metadata
    )
    _select(request, "update", ids, filter)
    if text is not None:
        request.text = text
    if set_metadata is not None:
        request.set_metadata.CopyFrom(to_struct(set_metadata))
    if isinstance(delete_metadata_keys, str):
        raise TypeError("delete_metadata_keys must be a list of strings, not a string")
    request.delete_metadata_keys.extend(delete_metadata_keys)
    return request


def _select(
    request: documents_pb2.DeleteRequest | documents_pb2.UpdateRequest,
    verb: str,
    ids: Sequence[str] | None,
    filter: FilterSpec | filter_pb2.Filter | None,
) -> None:
    """Sets the ``selector`` of a Delete or Update request (``verb`` says
    which, for the error): exactly one of ``ids`` and ``filter``."""
    if (ids is None) == (filter is None):
        raise ValueError(f"{verb} needs exactly one of ids= and filter=")
    if ids is not None:
        if isinstance(ids, str):
            raise TypeError("ids must be a list of strings, not a string")
        request.ids.SetInParent()  # an empty list is sent as chosen, for the server to refuse
        request.ids.ids.extend(ids)
    else:
        request.filter.CopyFrom(to_filter(filter))  # type: ignore[arg-type]


def count_request(
    collection: str, tenant: str | None, filter: FilterSpec | filter_pb2.Filter | None
) -> documents_pb2.CountRequest:
    """Builds a ``CountRequest``."""
    request = documents_pb2.CountRequest(collection=collection, tenant=tenant or "")
    translated = filter_pb(filter)
    if translated is not None:
        request.filter.CopyFrom(translated)
    return request


def scroll_request(
    collection: str,
    tenant: str | None,
    filter: FilterSpec | filter_pb2.Filter | None,
    include: Iterable[str] | None,
    limit: int | None,
    after_id: str | None,
) -> documents_pb2.ScrollRequest:
    """Builds a ``ScrollRequest``."""
    request = documents_pb2.ScrollRequest(
        collection=collection, tenant=tenant or "", after_id=after_id or "", limit=limit or 0
    )
    translated = filter_pb(filter)
    if translated is not None:
        request.filter.CopyFrom(translated)
    included = include_pb(include)
    if included is not None:
        request.include.CopyFrom(included)
    return request


# -- search --------------------------------------------------------------------


def fusion_pb(fusion: FusionSpec | search_pb2.Fusion | None) -> search_pb2.Fusion | None:
    """Builds ``Fusion`` from ``"rrf"``, ``"relative_score"``, :class:`RRF`
    or :class:`RelativeScore`; ``None`` keeps the server default (RRF)."""
    if fusion is None:
        return None
    if isinstance(fusion, search_pb2.Fusion):
        return fusion
    if fusion == "rrf":
        fusion = RRF()
    elif fusion == "relative_score":
        fusion = RelativeScore()
    if isinstance(fusion, RRF):
        rrf = search_pb2.ReciprocalRankFusion()
        if fusion.k is not None:
            rrf.k = fusion.k
        if fusion.vector_weight is not None:
            rrf.vector_weight = fusion.vector_weight
        if fusion.text_weight is not None:
            rrf.text_weight = fusion.text_weight
        return search_pb2.Fusion(rrf=rrf)
    if isinstance(fusion, RelativeScore):
        relative = search_pb2.RelativeScoreFusion()
        if fusion.alpha is not None:
            relative.alpha = fusion.alpha
        return search_pb2.Fusion(relative_score=relative)
    raise ValueError(
        f"unknown fusion {fusion!r}: expected 'rrf', 'relative_score', RRF(...) or RelativeScore(...)"
    )


def search_request(
    collection: str,
    tenant: str | None,
    *,
    vector: VectorLike | Iterable[float] | None,
    text: str | None,
    filter: FilterSpec | filter_pb2.Filter | None,
    limit: int,
    fusion: FusionSpec | search_pb2.Fusion | None,
    example_id: str | None,
    offset: int,
    include: Iterable[str] | None,
    candidates: int | None,
    exact: bool,
    ef_search: int | None,
    score_threshold: float | None,
) -> search_pb2.SearchRequest:
    """Builds a ``SearchRequest``; at least one of ``vector``, ``example_id``
    and ``text``. Whether they go together (not ``vector`` with
    ``example_id``) and how far ``offset`` may reach are the server's to say,
    with the request's field names; a negative ``offset``, like a negative
    ``limit``, is refused by protobuf before anything is sent."""
    if vector is None and text is None and not example_id:
        raise ValueError("search needs a vector, an example_id or a text (a text with either is hybrid)")
    request = search_pb2.SearchRequest(
        collection=collection,
        tenant=tenant or "",
        limit=limit,
        candidates=candidates or 0,
        example_id=example_id or "",
        offset=offset,
    )
    if vector is not None:
        request.vector.extend(vector_values(vector))
    if text is not None:
        request.text = text
    translated = filter_pb(filter)
    if translated is not None:
        request.filter.CopyFrom(translated)
    fused = fusion_pb(fusion)
    if fused is not None:
        request.fusion.CopyFrom(fused)
    included = include_pb(include)
    if included is not None:
        request.include.CopyFrom(included)
    if score_threshold is not None:
        request.score_threshold = score_threshold
    if exact or ef_search:
        request.params.CopyFrom(search_pb2.VectorSearchParams(exact=exact, ef_search=ef_search or 0))
    return request


def hit_from_pb(pb: search_pb2.SearchHit) -> Hit:
    """Converts a ``SearchHit`` message."""
    vector_leg = pb.vector_leg if pb.HasField("vector_leg") else None
    text_leg = pb.text_leg if pb.HasField("text_leg") else None
    return Hit(
        id=pb.id,
        score=pb.score,
        vector_rank=vector_leg.rank if vector_leg is not None else None,
        vector_score=vector_leg.score if vector_leg is not None else None,
        text_rank=text_leg.rank if text_leg is not None else None,
        text_score=text_leg.score if text_leg is not None else None,
        text=pb.text,
        metadata=from_struct(pb.metadata),
        vector=list(pb.vector) or None,
        tenant=pb.tenant or None,
    )
