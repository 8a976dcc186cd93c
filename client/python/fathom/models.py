"""Plain data types returned by and passed to the Fathom client."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union

__all__ = [
    "ApiKeyInfo",
    "CollectionInfo",
    "CreatedKey",
    "CollectionStats",
    "Document",
    "HnswIndex",
    "Hit",
    "IndexPrecision",
    "IndexSpec",
    "IndexBuild",
    "IndexState",
    "KeyRole",
    "KeyState",
    "KeywordRanking",
    "Metric",
    "NoIndex",
    "RRF",
    "RelativeScore",
    "FusionSpec",
    "UpsertSummary",
    "SupportsToList",
    "VectorLike",
]

Metric = Literal["cosine", "l2", "inner_product"]
"""A distance metric: cosine similarity, Euclidean distance or inner product."""


class SupportsToList(Protocol):
    """Anything with a ``tolist()`` method, such as a numpy array."""

    def tolist(self) -> Any:
        """Returns the values as (nested) Python lists."""
        ...


VectorLike = Union["list[float]", "tuple[float, ...]", SupportsToList]
"""A vector: a list or tuple of floats, or a 1-d numpy array."""


IndexPrecision = Literal["half", "single"]
"""The precision of the vectors an HNSW graph holds (the documents always keep
theirs in single precision, and every score is computed from those):

- ``"half"``: half-precision copies (pgvector ``halfvec``): half the index
  size, faster builds and searches, the same recall on embeddings.
  Dimensions up to 4000; every vector component must lie within +-65504;
- ``"single"``: single precision (pgvector ``vector``), as collections created
  before half precision. Dimensions up to 2000.
"""


@dataclass(frozen=True)
class HnswIndex:
    """An HNSW approximate nearest-neighbour index. ``0`` and ``None`` mean the
    server default."""

    m: int = 0
    """Maximum connections per node, 2..=100 (default 16)."""
    ef_construction: int = 0
    """Candidate list size while building, 4..=1000 and >= 2 * m (default 64)."""
    precision: IndexPrecision | None = None
    """The precision of the vectors in the graph (default ``"half"``); see
    :data:`IndexPrecision`. Always set on a collection read from a server
    that knows index precisions."""


@dataclass(frozen=True)
class NoIndex:
    """No vector index: every vector search is an exact scan."""


IndexSpec = Union[HnswIndex, NoIndex, Literal["hnsw", "none"]]
"""The vector index of a new collection: an instance, or ``"hnsw"``/``"none"``."""

IndexBuild = Literal["automatic", "immediate", "on_request"]
"""When a collection's HNSW index is built. Inserting every row into an HNSW
graph is slow; building the graph once over rows already loaded, in bulk and
with PostgreSQL's parallel workers, is many times faster. So:

- ``"automatic"`` (the default): the collection starts without its index and
  searches are exact scans, which is cheap while it is small. Once its
  vectors pass the server's indexing threshold (``fathom serve
  --indexing-threshold-kb``, 16 MiB by default: 5,462 vectors of 768
  dimensions), the index is built in bulk: at the end of the streamed upsert
  (``Collection.upsert``/``upsert_iter``) that passes it, which returns only
  when the index is ready, or in the background after an ``upsert_batch``
  that passes it. A bulk load needs no flag to be fast and is searchable
  with its index when the call returns. Batches inside one streamed upsert
  never start a build.
- ``"immediate"``: the index is created with the collection and every write
  maintains it: searches use the graph from the first document, and writes
  (bulk loads most of all) are many times slower. Pick it when searches must
  go through the graph from the first document (to measure its recall or
  ``ef_search`` on a small collection, say), or when writes should each pay
  their share of the index rather than one upsert paying for the build.
- ``"on_request"``: the index is built only by ``build_index`` or by an
  upsert with ``build_index_at_end=True``; searches are exact until then.
  For an input loaded in several calls that should be indexed once, after
  the last (``defer_index=True`` is the older spelling of this).

Collections with :class:`NoIndex` ignore it.
"""

IndexState = Literal["ready", "deferred", "building", "unspecified"]
"""Whether a collection's vector index serves its searches:

- ``"ready"``: searches use the index, or the collection has none
  (:class:`NoIndex`) and every search is exact by design;
- ``"deferred"``: the index is not built, writes are fast and searches are
  exact scans: an ``"automatic"`` collection still below the server's
  indexing threshold, or an ``"on_request"`` one (or a build failed) that
  ``build_index`` has not built yet (see :data:`IndexBuild`);
- ``"building"``: the index is being built; searches stay exact until it is
  ready;
- ``"unspecified"``: the server did not say (one older than index states, or
  a state newer than this client).
"""


KeywordRanking = Literal["bm25", "ts_rank", "unspecified"]
"""How a collection's keyword searches rank the documents that match:

- ``"bm25"``: BM25 through the collection's ``bm25`` index (the server's
  PostgreSQL has the pg_textsearch extension, as the embedded one does); a
  hit's keyword score is its BM25 score;
- ``"ts_rank"``: PostgreSQL's ``ts_rank``, where pg_textsearch is not
  installed: documents with more of the query's words first;
- ``"unspecified"``: the server did not say (one older than keyword rankings).
"""


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's name and settings, as stored on the server."""

    name: str
    dimension: int
    metric: Metric
    index: HnswIndex | NoIndex
    language: str
    """PostgreSQL text-search configuration, such as ``"english"``."""
    multi_tenant: bool
    create_time: _dt.datetime | None
    index_state: IndexState = "unspecified"
    """Whether the vector index is built (``"ready"``), ``"deferred"`` or
    ``"building"``; see :data:`IndexState`."""
    keyword_ranking: KeywordRanking = "unspecified"
    """``"bm25"`` or ``"ts_rank"``; see :data:`KeywordRanking`."""
    index_build: IndexBuild | Literal["unspecified"] = "unspecified"
    """When the HNSW index is built: ``"automatic"``, ``"immediate"`` or
    ``"on_request"`` (see :data:`IndexBuild`); ``"unspecified"`` from a server
    older than index builds."""


KeyRole = Literal["read", "write", "admin"]
"""What an API key may do; each role includes the ones before it:

- ``"read"``: get, count, scroll, search, and collections' settings;
- ``"write"``: also upsert, update and delete;
- ``"admin"``: also create, delete and index collections, and manage keys.
"""

KeyState = Literal["active", "expired", "revoked", "unspecified"]
"""Whether an API key is accepted: ``"active"``, ``"expired"`` (past its
``expire_time``), ``"revoked"``, or ``"unspecified"`` (the server did not say)."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key's record, as the server stores it: never its secret."""

    id: str
    """The key's public id: 12 hex digits, the part after ``fathom_``."""
    role: KeyRole | Literal["unspecified"]
    """The key's role (``"unspecified"``: one newer than this client)."""
    tenant: str | None
    """The only tenant the key may touch (``None``: any)."""
    collections: tuple[str, ...]
    """The only collections the key may touch, sorted (empty: any)."""
    description: str
    create_time: _dt.datetime | None
    expire_time: _dt.datetime | None
    """When the key stops being accepted (``None``: never)."""
    revoke_time: _dt.datetime | None
    """When the key was revoked (``None``: it was not)."""
    state: KeyState
    """Whether the key was accepted when the server answered."""


@dataclass(frozen=True)
class CreatedKey:
    """A key just created: its text, returned only this once, and its record."""

    key: str = field(repr=False)
    """The key's text, ``fathom_<id>_<secret>``; the server keeps only its
    hash, so store it now. Left out of ``repr``, so logs do not show it."""
    info: ApiKeyInfo
    """The key's record, as ``list_keys`` shows it."""


@dataclass(frozen=True)
class Alias:
    """An alias: a second name of a collection, accepted wherever a
    collection's name is, and switched to another collection at once."""

    alias: str
    collection: str
    """The collection it points at (a collection's own name)."""
    update_time: _dt.datetime | None
    """When it was created or last switched."""


@dataclass(frozen=True)
class CreateAlias:
    """An action of ``update_aliases``: create ``alias``, pointing at ``collection``."""

    alias: str
    collection: str


@dataclass(frozen=True)
class SwitchAlias:
    """An action of ``update_aliases``: point the existing ``alias`` at ``collection``."""

    alias: str
    collection: str


@dataclass(frozen=True)
class DeleteAlias:
    """An action of ``update_aliases``: delete ``alias`` (its collection stays)."""

    alias: str


AliasAction = CreateAlias | SwitchAlias | DeleteAlias
"""One change of ``update_aliases``."""


@dataclass(frozen=True)
class CollectionStats:
    """Document count and on-disk sizes of a collection."""

    name: str
    document_count: int
    table_bytes: int
    index_bytes: int
    total_bytes: int


@dataclass
class Hit:
    """One search result.

    ``score`` is the fused score for hybrid searches, otherwise the single
    leg's score. The per-leg fields are ``None`` when that leg did not find
    the document (or did not run).
    """

    id: str
    score: float
    vector_rank: int | None = None
    """1-based rank among the vector leg's candidates."""
    vector_score: float | None = None
    """The vector leg's raw score (similarity, or distance for ``l2``)."""
    text_rank: int | None = None
    """1-based rank among the keyword leg's candidates."""
    text_score: float | None = None
    """The keyword leg's raw score (words held plus PostgreSQL ``ts_rank``)."""
    text: str = ""
    """The document's text ("" when not included)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The document's metadata ({} when not included)."""
    vector: list[float] | None = None
    """The document's vector, when included."""
    tenant: str | None = None
    """The document's tenant, in multi-tenant collections."""


@dataclass
class Document:
    """A stored document, as returned by ``get`` and ``scroll``."""

    id: str
    vector: list[float] | None = None
    """The vector (``None`` when not included)."""
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None


@dataclass(frozen=True)
class RRF:
    """Reciprocal rank fusion: ``w_v / (k + rank_v) + w_t / (k + rank_t)``.

    ``None`` means the server default (k = 60, weights 1).
    """

    k: float | None = None
    vector_weight: float | None = None
    text_weight: float | None = None


@dataclass(frozen=True)
class RelativeScore:
    """Relative score fusion: ``alpha * vector + (1 - alpha) * text`` of
    min-max normalised scores. ``None`` means the server default (0.5)."""

    alpha: float | None = None


FusionSpec = Union[RRF, RelativeScore, Literal["rrf", "relative_score"]]
"""How a hybrid search fuses its legs: an instance, or a name for the defaults."""


@dataclass
class UpsertSummary:
    """What an upsert call did (the same fields as the Rust client's summary).

    When nothing else writes under the stream id meanwhile (another client,
    or an earlier run's write still committing after it was cancelled), every
    document of the input is counted once: ``committed_documents ==
    skipped_documents + documents_written``. On a finished import into a
    fresh collection, ``committed_documents`` equals the number of documents
    the collection holds. An upsert that raises
    reports the same figures on the :class:`~fathom.UpsertError`.
    """

    committed_documents: int = 0
    """Documents of the input committed under the ``stream_id`` at the end:
    all of them, when the call returns. Without a ``stream_id``: the
    documents written by the call."""
    documents_written: int = 0
    """Documents this call wrote: acknowledged after COMMIT, plus those of
    batches found committed after a reconnect (or re-acknowledged as
    committed) whose acknowledgement was lost with the connection."""
    skipped_documents: int = 0
    """Documents not sent because an earlier run with the same ``stream_id``
    had committed them: the first ``skipped_documents`` of the input, whose
    ids were checked against the server's digest (see ``Collection.upsert``)."""
    batches: int = 0
    """Batches this call wrote (acknowledged with writes, or found committed
    after a reconnect)."""
    already_committed: int = 0
    """Batches the server acknowledged as committed earlier instead of writing
    them: resent after a reconnect while the old connection's write was still
    committing, or written by another client under the same ``stream_id``."""
    reconnects: int = 0
    """How many times the stream was reopened after a broken connection."""
    elapsed: float = 0.0
    """Wall time of the call, in seconds."""
