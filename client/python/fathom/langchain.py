"""LangChain integration: :class:`FathomVectorStore`, a ``langchain_core``
``VectorStore`` backed by a Fathom collection.

Install with the extra, from the root of a clone of fathom (the SDK is not
on PyPI): ``pip install "./client/python[langchain]"``.

Example::

    from fathom.langchain import FathomVectorStore

    store = FathomVectorStore("articles", embeddings, server="http://127.0.0.1:50051")
    store.add_texts(["red fox", "blue sky"], metadatas=[{"lang": "en"}, {"lang": "de"}])
    store.similarity_search("fox", k=2, filter={"lang": "en"})
    store.similarity_search("fox", k=2, search_mode="hybrid", fusion=RelativeScore(0.7))

The collection is created on the first write (with the embedding's
dimension) if it does not exist; reads of a collection that does not exist
yet find nothing. Filters are Fathom's dict syntax (``{"year": {"$gte":
2020}, "lang": "en"}``, see :mod:`fathom.filters`). Scores are the server's:
for cosine and inner-product collections larger is better, for ``l2`` they
are distances; hybrid searches return the fused score.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Literal

import grpc

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        'fathom.langchain needs langchain-core: pip install "./client/python[langchain]" '
        "from the root of a clone of fathom (the SDK is not on PyPI)"
    ) from error

from fathom._store_clients import StoreClients
from fathom.aio import AsyncClient, AsyncCollection
from fathom.client import DEFAULT_TARGET, Client, Collection
from fathom.errors import FathomError
from fathom.filters import FilterSpec
from fathom.models import FusionSpec, Hit, IndexBuild, IndexSpec

__all__ = ["FathomVectorStore", "SearchMode"]

SearchMode = Literal["vector", "hybrid", "text"]
"""Which legs a search runs: the query's embedding, the query's text (keyword
search), or both fused."""

_DELETE_CHUNK = 1000


class FathomVectorStore(VectorStore):
    """A LangChain vector store over one Fathom collection.

    Args:
        collection_name: The collection (created on the first write if it
            does not exist; see :meth:`fathom.Client.get_or_create_collection`).
        embedding: The LangChain embeddings model.
        server: ``host:port`` or ``http(s)://host:port`` of the server, used
            when ``client``/``async_client`` are not given.
        client: A :class:`fathom.Client` for the synchronous methods.
        async_client: A :class:`fathom.AsyncClient` for the ``a*`` methods
            (default: one per event loop, opened on ``server``).
        metric: Metric of a collection this store creates.
        language: Text-search configuration of a collection this store creates.
        index: Vector index of a collection this store creates.
        index_build: When a collection this store creates builds its HNSW
            index (see :data:`fathom.IndexBuild`; default ``"automatic"``:
            exact searches while it is small, one bulk build at the end of
            the ``add_texts`` that takes it past the server's indexing
            threshold).
        tenant: Tenant of every request (multi-tenant collections).
        search_mode: Default legs of a search (``"vector"``); every search
            method also takes ``search_mode=`` and ``fusion=``.
        fusion: Fusion of hybrid searches (server default: RRF).
        batch_size: Documents per upsert batch.
    """

    def __init__(
        self,
        collection_name: str,
        embedding: Embeddings,
        *,
        server: str = DEFAULT_TARGET,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        metric: str = "cosine",
        language: str = "english",
        index: IndexSpec | None = None,
        index_build: IndexBuild | None = None,
        tenant: str | None = None,
        search_mode: SearchMode = "vector",
        fusion: FusionSpec | None = None,
        batch_size: int = 500,
    ) -> None:
        self.collection_name = collection_name
        self.embedding = embedding
        self.server = server
        self.metric = metric
        self.language = language
        self.index = index
        self.index_build = index_build
        self.tenant = tenant
        self.search_mode: SearchMode = _check_mode(search_mode)
        self.fusion = fusion
        self.batch_size = batch_size
        self._clients = StoreClients(self, client, async_client)
        self._exists = False

    # -- plumbing ----------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings model."""
        return self.embedding

    @property
    def client(self) -> Client:
        """The synchronous client (opened on ``server`` at first use)."""
        return self._clients.client

    def _create_arguments(self, dimension: int) -> dict[str, Any]:
        return self._clients.create_arguments(dimension, index=self.index, index_build=self.index_build)

    def _ensure_collection(self, dimension: int) -> Collection:
        if not self._exists:
            self.client.get_or_create_collection(**self._create_arguments(dimension))
            self._exists = True
        return self._clients.collection()

    async def _aensure_collection(self, dimension: int) -> AsyncCollection:
        if not self._exists:
            await self._clients.aclient().get_or_create_collection(**self._create_arguments(dimension))
            self._exists = True
        return self._clients.acollection()

    def close(self) -> None:
        """Closes the clients this store opened (not the ones it was given).

        Asyncio clients opened per event loop are closed by :meth:`aclose`."""
        self._clients.close()

    async def aclose(self) -> None:
        """Closes the asyncio client of the running loop, if this store opened it."""
        await self._clients.aclose()

    # -- writes ------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embeds and upserts texts; returns their ids.

        Ids that are missing (or ``None``) get a random UUID; an existing id
        is replaced. Extra keyword arguments go to
        :meth:`fathom.Collection.upsert` (``stream_id``, ``batch_size``...).
        """
        text_list = list(texts)
        if not text_list:
            return []
        document_ids = _ids_for(text_list, ids)
        vectors = self.embedding.embed_documents(text_list)
        collection = self._ensure_collection(len(vectors[0]))
        kwargs.setdefault("batch_size", self.batch_size)
        collection.upsert(document_ids, vectors, texts=text_list, metadatas=metadatas, **kwargs)
        return document_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Like :meth:`add_texts`, with the asyncio client and ``aembed_documents``."""
        text_list = list(texts)
        if not text_list:
            return []
        document_ids = _ids_for(text_list, ids)
        vectors = await self.embedding.aembed_documents(text_list)
        collection = await self._aensure_collection(len(vectors[0]))
        kwargs.setdefault("batch_size", self.batch_size)
        await collection.upsert(
            document_ids, vectors, texts=text_list, metadatas=metadatas, **kwargs
        )
        return document_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Deletes documents by id, by ``filter=`` (a Fathom filter dict), or
        every document when neither is given. Ids that do not exist are
        ignored. Returns True."""
        filter: FilterSpec | None = kwargs.get("filter")
        collection = self._clients.collection()
        try:
            if ids is not None:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    collection.delete(ids=ids[start : start + _DELETE_CHUNK])
            elif filter is not None:
                collection.delete(filter=filter)
            else:
                for batch in collection.scroll_batches(_DELETE_CHUNK, include=[]):
                    collection.delete(ids=[d.id for d in batch])
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Like :meth:`delete`, with the asyncio client."""
        filter: FilterSpec | None = kwargs.get("filter")
        collection = self._clients.acollection()
        try:
            if ids is not None:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    await collection.delete(ids=ids[start : start + _DELETE_CHUNK])
            elif filter is not None:
                await collection.delete(filter=filter)
            else:
                batch: list[str] = []
                async for document in collection.scroll(include=[]):
                    batch.append(document.id)
                    if len(batch) == _DELETE_CHUNK:
                        await collection.delete(ids=batch)
                        batch = []
                if batch:
                    await collection.delete(ids=batch)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
        return True

    def delete_collection(self) -> None:
        """Drops the collection and all its documents (no error if it does not exist)."""
        try:
            self.client.delete_collection(self.collection_name)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
        self._exists = False

    # -- reads -------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Returns the documents with these ids (missing ones are left out)."""
        if not ids:
            return []
        try:
            found = self._clients.collection().get(list(ids), include=["text", "metadata"])
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        return [Document(page_content=d.text or "", metadata=d.metadata, id=d.id) for d in found]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Like :meth:`get_by_ids`, with the asyncio client."""
        if not ids:
            return []
        try:
            found = await self._clients.acollection().get(list(ids), include=["text", "metadata"])
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        return [Document(page_content=d.text or "", metadata=d.metadata, id=d.id) for d in found]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents closest to ``query``.

        Keyword arguments: ``filter`` (Fathom filter dict), ``search_mode``
        (``"vector"``, ``"hybrid"``, ``"text"``), ``fusion``, and the other
        options of :meth:`fathom.Collection.search` (``exact``,
        ``ef_search``, ``score_threshold``, ``candidates``, ``offset``).
        ``offset`` pages: ``k=10, offset=20`` is the third page of ten; pass
        ``candidates`` (at least ``offset + k``) too, so that every page
        ranks the same candidates. A search by example (``example_id``) has
        no place here, since every search method of a LangChain store starts
        from a query or an embedding; the collection offers it:
        ``store.client.collection(store.collection_name).search(example_id=...)``."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Like :meth:`similarity_search`, with the asyncio client."""
        hits = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [doc for doc, _ in hits]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search`, with each document's score."""
        mode = _check_mode(kwargs.pop("search_mode", self.search_mode))
        vector = self.embedding.embed_query(query) if mode != "text" else None
        text = query if mode != "vector" else None
        return self._search(vector, text, k, kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search_with_score`, with the asyncio client."""
        mode = _check_mode(kwargs.pop("search_mode", self.search_mode))
        vector = await self.embedding.aembed_query(query) if mode != "text" else None
        text = query if mode != "vector" else None
        return await self._asearch(vector, text, k, kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents closest to ``embedding`` (a vector search;
        ``filter`` and the search options as in :meth:`similarity_search`)."""
        return [doc for doc, _ in self.similarity_search_by_vector_with_score(embedding, k, **kwargs)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Like :meth:`similarity_search_by_vector`, with the asyncio client."""
        return [doc for doc, _ in await self._asearch(embedding, None, k, kwargs)]

    def similarity_search_by_vector_with_score(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search_by_vector`, with each document's score."""
        return self._search(embedding, None, k, kwargs)

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Fetches ``fetch_k`` nearest documents and picks ``k`` of them by
        maximal marginal relevance (``lambda_mult``: 1 is pure relevance,
        0 pure diversity)."""
        vector = self.embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, **kwargs
        )

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Like :meth:`max_marginal_relevance_search`, with the asyncio client."""
        vector = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Maximal marginal relevance from a query vector."""
        hits = self._hits(embedding, None, fetch_k, kwargs, with_vectors=True)
        return _mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Like :meth:`max_marginal_relevance_search_by_vector`, with the asyncio client."""
        hits = await self._ahits(embedding, None, fetch_k, kwargs, with_vectors=True)
        return _mmr(embedding, hits, k, lambda_mult)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Maps the server's score to LangChain's relevance (larger is better):
        cosine and inner-product scores are similarities already; ``l2``
        distances go through LangChain's Euclidean function."""
        if self.metric == "l2":
            return self._euclidean_relevance_score_fn
        return _identity

    def _search(
        self, vector: list[float] | None, text: str | None, k: int, options: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        return [(_document(hit), hit.score) for hit in self._hits(vector, text, k, options)]

    async def _asearch(
        self, vector: list[float] | None, text: str | None, k: int, options: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        hits = await self._ahits(vector, text, k, options)
        return [(_document(hit), hit.score) for hit in hits]

    def _hits(
        self,
        vector: list[float] | None,
        text: str | None,
        k: int,
        options: dict[str, Any],
        with_vectors: bool = False,
    ) -> list[Hit]:
        arguments = self._search_arguments(vector, text, k, options, with_vectors)
        try:
            return self._clients.collection().search(**arguments)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []

    async def _ahits(
        self,
        vector: list[float] | None,
        text: str | None,
        k: int,
        options: dict[str, Any],
        with_vectors: bool = False,
    ) -> list[Hit]:
        arguments = self._search_arguments(vector, text, k, options, with_vectors)
        try:
            return await self._clients.acollection().search(**arguments)
        except FathomError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            return []

    def _search_arguments(
        self,
        vector: list[float] | None,
        text: str | None,
        k: int,
        options: dict[str, Any],
        with_vectors: bool,
    ) -> dict[str, Any]:
        options = dict(options)
        options.pop("search_mode", None)
        include = ["text", "metadata", "vector"] if with_vectors else ["text", "metadata"]
        fusion = options.pop("fusion", self.fusion) if vector is not None and text else None
        return {
            "vector": vector,
            "text": text,
            "limit": k,
            "fusion": fusion,
            "include": include,
            **options,
        }

    # -- constructors ------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        **kwargs: Any,
    ) -> FathomVectorStore:
        """Creates a store on ``collection_name`` (other keyword arguments go
        to the constructor) and adds the texts."""
        store = cls(collection_name, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        **kwargs: Any,
    ) -> FathomVectorStore:
        """Like :meth:`from_texts`, with the asyncio client."""
        store = cls(collection_name, embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def _ids_for(texts: list[str], ids: Sequence[str | None] | None) -> list[str]:
    """The given ids, with a random UUID for each missing one."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in texts]
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    return [i if i else str(uuid.uuid4()) for i in ids]


def _check_mode(mode: str) -> SearchMode:
    if mode == "vector":
        return "vector"
    if mode == "hybrid":
        return "hybrid"
    if mode == "text":
        return "text"
    raise ValueError(f"search_mode must be 'vector', 'hybrid' or 'text', got {mode!r}")


def _document(hit: Hit) -> Document:
    return Document(page_content=hit.text or "", metadata=hit.metadata, id=hit.id)


def _identity(score: float) -> float:
    return score


def _mmr(query: list[float], hits: list[Hit], k: int, lambda_mult: float) -> list[Document]:
    import numpy as np

    if not hits:
        return []
    chosen = maximal_marginal_relevance(
        np.array(query, dtype=np.float32),
        [hit.vector or [] for hit in hits],
        lambda_mult=lambda_mult,
        k=k,
    )
    return [_document(hits[i]) for i in chosen]
