"""LlamaIndex integration: :class:`FathomVectorStore`, a ``llama_index.core``
``BasePydanticVectorStore`` backed by a Fathom collection.

Install with the extra, from the root of a clone of fathom (the SDK is not
on PyPI): ``pip install "./client/python[llama-index]"``.

Example::

    from llama_index.core import StorageContext, VectorStoreIndex
    from fathom.llama_index import FathomVectorStore

    store = FathomVectorStore(collection_name="articles", server="http://127.0.0.1:50051")
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    index.as_retriever(vector_store_query_mode="hybrid", alpha=0.7).retrieve("red fox")

Each node is one Fathom document: the node id, its embedding, its text (for
keyword search) and, as metadata, the node's own metadata plus LlamaIndex's
bookkeeping (``ref_doc_id``, ``doc_id``, ``document_id`` and the serialised
node in ``_node_content``), as LlamaIndex's other stores keep it.

Query modes: ``DEFAULT`` (vector), ``HYBRID`` (vector and keyword legs
fused by relative score with ``alpha``, 1 = vector only, 0 = keyword only;
without ``alpha``, reciprocal rank fusion), ``TEXT_SEARCH`` (keyword only)
and ``MMR``. ``MetadataFilters`` are translated into Fathom filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, MetadataMode, TextNode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import (
        metadata_dict_to_node,
        node_to_metadata_dict,
    )
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        'fathom.llama_index needs llama-index-core: pip install "./client/python[llama-index]" '
        "from the root of a clone of fathom (the SDK is not on PyPI)"
    ) from error

from fathom._store_clients import StoreClients
from fathom.aio import AsyncClient, AsyncCollection
from fathom.client import DEFAULT_TARGET, Client, Collection
from fathom.errors import FathomError
from fathom.filters import FilterSpec
from fathom.models import RRF, FusionSpec, Hit, IndexBuild, RelativeScore

__all__ = ["FathomVectorStore", "to_fathom_filter"]

_DELETE_CHUNK = 1000


class FathomVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one Fathom collection.

    The collection is created (see
    :meth:`fathom.Client.get_or_create_collection`) on the first ``add``,
    with the dimension of the first node's embedding; queries and deletes
    on a collection that does not exist yet find nothing.
    """

    stores_text: bool = True
    flat_metadata: bool = False

    collection_name: str
    """The collection."""
    server: str = DEFAULT_TARGET
    """``host:port`` or ``http(s)://host:port``, when no client is given."""
    metric: str = "cosine"
    """Metric of a collection this store creates."""
    language: str = "english"
    """Text-search configuration of a collection this store creates."""
    index_build: IndexBuild | None = None
    """When a collection this store creates builds its HNSW index (see
    :data:`fathom.IndexBuild`; ``None``: the server's default,
    ``"automatic"``)."""
    tenant: str | None = None
    """Tenant of every request (multi-tenant collections)."""
    batch_size: int = 500
    """Documents per upsert batch."""

    _clients: StoreClients = PrivateAttr()
    _exists: bool = PrivateAttr(default=False)

    def __init__(
        self,
        collection_name: str,
        *,
        server: str = DEFAULT_TARGET,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        metric: str = "cosine",
        language: str = "english",
        index_build: IndexBuild | None = None,
        tenant: str | None = None,
        batch_size: int = 500,
    ) -> None:
        fields: dict[str, Any] = {
            "collection_name": collection_name,
            "server": server,
            "metric": metric,
            "language": language,
            "index_build": index_build,
            "tenant": tenant,
            "batch_size": batch_size,
        }
        super().__init__(**fields)
        self._clients = StoreClients(self, client, async_client)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this store under."""
        return "FathomVectorStore"

    # -- plumbing ----------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The synchronous :class:`fathom.Client` (opened on ``server`` at first use)."""
        return self._clients.client

    def _create_arguments(self, dimension: int) -> dict[str, Any]:
        return self._clients.create_arguments(dimension, index_build=self.index_build)

    async def aclose(self) -> None:
        """Closes the asyncio client of the running loop, if this store opened it."""
        await self._clients.aclose()

    # -- writes ------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upserts nodes (with their embeddings); returns their ids.
        Keyword arguments go to :meth:`fathom.Collection.upsert`."""
        if not nodes:
            return []
        ids, vectors, texts, metadatas = self._columns(nodes)
        if not self._exists:
            self.client.get_or_create_collection(**self._create_arguments(len(vectors[0])))
            self._exists = True
        add_kwargs.setdefault("batch_size", self.batch_size)
        self._clients.collection().upsert(ids, vectors, texts=texts, metadatas=metadatas, **add_kwargs)
        return ids

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Like :meth:`add`, with the asyncio client."""
        if not nodes:
            return []
        ids, vectors, texts, metadatas = self._columns(nodes)
        if not self._exists:
            await self._clients.aclient().get_or_create_collection(
                **self._create_arguments(len(vectors[0]))
            )
            self._exists = True
        kwargs.setdefault("batch_size", self.batch_size)
        await self._clients.acollection().upsert(ids, vectors, texts=texts, metadatas=metadatas, **kwargs)
        return ids

    def _columns(
        self, nodes: Sequence[BaseNode]
    ) -> tuple[list[str], list[list[float]], list[str], list[dict[str, Any]]]:
        ids = [node.node_id for node in nodes]
        vectors = [node.get_embedding() for node in nodes]
        texts = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
        metadatas = [
            node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            for node in nodes
        ]
        return ids, vectors, texts, metadatas

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the source document ``ref_doc_id``."""
        self._delete(None, {"ref_doc_id": ref_doc_id})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Like :meth:`delete`, with the asyncio client."""
        await self._adelete(None, {"ref_doc_id": ref_doc_id})

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Deletes the nodes with these ids and/or matching these filters
        (both: nodes matching both)."""
        self._delete(node_ids, to_fathom_filter(filters) if filters else None)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Like :meth:`delete_nodes`, with the asyncio client."""
        await self._adelete(node_ids, to_fathom_filter(filters) if filters else None)

    def clear(self) -> None:
        """Deletes every node (the collection stays)."""
        self._delete(None, None)

    async def aclear(self) -> None:
        """Like :meth:`clear`, with the asyncio client."""
        await self._adelete(None, None)

    def _delete(self, node_ids: list[str] | None, filter: FilterSpec | None) -> None:
        collection = self._clients.collection()
        try:
            if node_ids is not None and filter is None:
                for start in range(0, len(node_ids), _DELETE_CHUNK):
                    collection.delete(ids=node_ids[start : start + _DELETE_CHUNK])
                return
            if filter is not None and node_ids is None:
                collection.delete(filter=filter)
                return
            for batch in collection.scroll_batches(
                _DELETE_CHUNK, _combine(node_ids, filter, None), include=[]
            ):
                collection.delete(ids=[d.id for d in batch])
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise

    async def _adelete(self, node_ids: list[str] | None, filter: FilterSpec | None) -> None:
        collection = self._clients.acollection()
        try:
            if node_ids is not None and filter is None:
                for start in range(0, len(node_ids), _DELETE_CHUNK):
                    await collection.delete(ids=node_ids[start : start + _DELETE_CHUNK])
                return
            if filter is not None and node_ids is None:
                await collection.delete(filter=filter)
                return
            batch: list[str] = []
            async for document in collection.scroll(
                _combine(node_ids, filter, None), include=[]
            ):
                batch.append(document.id)
                if len(batch) == _DELETE_CHUNK:
                    await collection.delete(ids=batch)
                    batch = []
            if batch:
                await collection.delete(ids=batch)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise

    # -- reads -------------------------------------------------------------------

    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        """The nodes with these ids and/or matching these filters (all
        nodes if neither is given), in id order."""
        filter = _combine(node_ids, to_fathom_filter(filters) if filters else None, None)
        try:
            documents = list(self._clients.collection().scroll(filter, include=["text", "metadata"]))
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        return [_node(d.id, d.metadata, d.text) for d in documents]

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        """Like :meth:`get_nodes`, with the asyncio client."""
        filter = _combine(node_ids, to_fathom_filter(filters) if filters else None, None)
        nodes: list[BaseNode] = []
        try:
            async for d in self._clients.acollection().scroll(filter, include=["text", "metadata"]):
                nodes.append(_node(d.id, d.metadata, d.text))
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        return nodes

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Runs a vector, hybrid or keyword query (see the module doc).
        Keyword arguments go to :meth:`fathom.Collection.search` (``exact``,
        ``ef_search``, ``candidates``, ``offset``...); a retriever passes its
        ``vector_store_kwargs`` here, so
        ``as_retriever(similarity_top_k=10, vector_store_kwargs={"offset": 10,
        "candidates": 100})`` retrieves the second page of ten."""
        arguments = _search_arguments(query, kwargs)
        try:
            hits = self._clients.collection().search(**arguments)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            hits = []
        return _result(query, hits)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Like :meth:`query`, with the asyncio client."""
        arguments = _search_arguments(query, kwargs)
        try:
            hits = await self._clients.acollection().search(**arguments)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            hits = []
        return _result(query, hits)


_SUPPORTED_MODES = (
    VectorStoreQueryMode.DEFAULT,
    VectorStoreQueryMode.HYBRID,
    VectorStoreQueryMode.TEXT_SEARCH,
    VectorStoreQueryMode.MMR,
)


def _search_arguments(query: VectorStoreQuery, options: dict[str, Any]) -> dict[str, Any]:
    """The arguments of :meth:`fathom.Collection.search` for a query."""
    mode = query.mode
    if mode not in _SUPPORTED_MODES:
        raise ValueError(f"FathomVectorStore does not support query mode {mode.value!r}")
    vector = query.query_embedding if mode != VectorStoreQueryMode.TEXT_SEARCH else None
    text = (
        query.query_str
        if mode in (VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.TEXT_SEARCH)
        else None
    )
    if vector is None and not text:
        raise ValueError(f"a {mode.value} query needs a query embedding or string")
    limit = query.similarity_top_k
    fusion: FusionSpec | None = None
    if mode == VectorStoreQueryMode.HYBRID:
        limit = query.hybrid_top_k or limit
        fusion = RRF() if query.alpha is None else RelativeScore(alpha=query.alpha)
        if query.sparse_top_k:
            options.setdefault("candidates", max(query.sparse_top_k, limit))
    mmr = mode == VectorStoreQueryMode.MMR
    filters = to_fathom_filter(query.filters) if query.filters else None
    return {
        "vector": vector,
        "text": text,
        # VectorStoreIndex passes node_ids=[] when the store keeps the text
        # (it tracks no ids itself): empty lists restrict nothing, as in
        # LlamaIndex's other stores.
        "filter": _combine(query.node_ids or None, filters, query.doc_ids or None),
        "limit": limit * 4 if mmr else limit,
        "fusion": fusion,
        "include": ["text", "metadata", "vector"] if mmr else ["text", "metadata"],
        **options,
    }


def _node(id: str, metadata: dict[str, Any] | None, text: str | None) -> BaseNode:
    """The node a document holds; a document written without LlamaIndex (by
    an SDK, or ``fathom import``: no ``_node_content``) is a ``TextNode`` of
    its id, text and metadata."""
    if metadata and "_node_content" in metadata:
        return metadata_dict_to_node(metadata, text)
    return TextNode(id_=id, text=text or "", metadata=dict(metadata or {}))


def _result(query: VectorStoreQuery, hits: list[Hit]) -> VectorStoreQueryResult:
    if query.mode == VectorStoreQueryMode.MMR and hits:
        import numpy as np
        from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings

        threshold = query.mmr_threshold if query.mmr_threshold is not None else 0.5
        _, picked = get_top_k_mmr_embeddings(
            np.asarray(query.query_embedding, dtype=np.float64).tolist(),
            [hit.vector or [] for hit in hits],
            similarity_top_k=query.similarity_top_k,
            embedding_ids=list(range(len(hits))),
            mmr_threshold=threshold,
        )
        hits = [hits[i] for i in picked]
    return VectorStoreQueryResult(
        nodes=[_node(hit.id, hit.metadata, hit.text) for hit in hits],
        similarities=[hit.score for hit in hits],
        ids=[hit.id for hit in hits],
    )


def _combine(
    node_ids: Sequence[str] | None, filter: FilterSpec | None, doc_ids: Sequence[str] | None
) -> FilterSpec | None:
    """ANDs a node-id restriction, a filter and a source-document restriction."""
    parts: list[FilterSpec] = []
    if node_ids is not None:
        parts.append({"$id": {"$in": list(node_ids)}})
    if doc_ids is not None:
        parts.append({"ref_doc_id": {"$in": list(doc_ids)}})
    if filter is not None:
        parts.append(filter)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}


def to_fathom_filter(filters: MetadataFilters) -> FilterSpec:
    """Translates LlamaIndex ``MetadataFilters`` into a Fathom filter dict.

    Supported: ``== != > >= < <= in nin contains``, ``any`` (the array
    contains one of the values), ``all`` (it contains every one),
    ``is_empty`` (the key is missing), nested ``MetadataFilters`` and the
    conditions ``and``, ``or`` and ``not`` (none of the filters holds).

    Raises:
        ValueError: ``text_match`` and ``text_match_insensitive``, which
            Fathom's filters do not have.
    """
    parts = [
        to_fathom_filter(f) if isinstance(f, MetadataFilters) else _one_filter(f)
        for f in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        either: FilterSpec = parts[0] if len(parts) == 1 else {"$or": parts}
        return {"$not": either}
    if len(parts) == 1:
        return parts[0]
    return {"$or": parts} if condition == FilterCondition.OR else {"$and": parts}


def _one_filter(f: MetadataFilter) -> FilterSpec:
    if f.operator in _OPERATORS:
        return {f.key: {_OPERATORS[f.operator]: f.value}}
    values = f.value if isinstance(f.value, list) else [f.value]
    if f.operator == FilterOperator.ANY:
        return {"$or": [{f.key: {"$contains": v}} for v in values]}
    if f.operator == FilterOperator.ALL:
        return {"$and": [{f.key: {"$contains": v}} for v in values]}
    if f.operator == FilterOperator.IS_EMPTY:
        return {f.key: {"$exists": False}}
    raise ValueError(f"Fathom filters have no {f.operator.value!r} operator (filter on {f.key!r})")
