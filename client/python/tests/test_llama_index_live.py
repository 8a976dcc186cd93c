"""LlamaIndex against the live server at $FATHOM_SERVER: ``VectorStoreIndex``
end to end (ingestion, retriever, query engine) in DEFAULT and HYBRID modes,
filters, deletes and the async path. The embedding is a deterministic
bag-of-words hash and the LLM LlamaIndex's ``MockLLM``: no network, no model.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core", reason="needs the [llama-index] extra")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from fathom import Client  # noqa: E402
from fathom.llama_index import FathomVectorStore  # noqa: E402

from .conftest import unique_name  # noqa: E402

pytestmark = pytest.mark.live

DIM = 64


class HashEmbedding(BaseEmbedding):
    """Deterministic bag of words: each lower-cased word adds 1 to the
    component its CRC-32 picks; the vector is then normalised. Texts that
    share words are close; the same text always gets the same vector."""

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    @staticmethod
    def embed(text: str) -> list[float]:
        vector = [0.0] * DIM
        for word in re.findall(r"\w+", text.lower()):
            vector[zlib.crc32(word.encode()) % DIM] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed(text)


DOCUMENTS = [
    Document(text="The quick brown fox jumps over the lazy dog.", doc_id="fox",
             metadata={"topic": "animals", "year": 2021}),
    Document(text="PostgreSQL stores rows in tables and answers SQL queries.", doc_id="pg",
             metadata={"topic": "databases", "year": 2023}),
    Document(text="pgvector adds vector similarity search to PostgreSQL.", doc_id="pgvector",
             metadata={"topic": "databases", "year": 2024}),
    Document(text="Tulips and roses bloom in the spring garden.", doc_id="garden",
             metadata={"topic": "plants", "year": 2020}),
]


@pytest.fixture
def store(live: Client, server_target: str) -> Iterator[FathomVectorStore]:
    store = FathomVectorStore(unique_name("li"), client=live, server=server_target)
    try:
        yield store
    finally:
        try:
            live.delete_collection(store.collection_name)
        except Exception:
            pass


@pytest.fixture
def index(store: FathomVectorStore) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(
        DOCUMENTS,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=HashEmbedding(),
    )


def source_doc_ids(nodes: list) -> list[str]:  # type: ignore[type-arg]
    return [n.node.ref_doc_id for n in nodes]


def test_index_round_trip_default_mode(index: VectorStoreIndex, store: FathomVectorStore) -> None:
    assert store.client.collection(store.collection_name).count() == len(DOCUMENTS)
    retriever = index.as_retriever(similarity_top_k=2)
    hits = retriever.retrieve("quick brown fox")
    assert source_doc_ids(hits)[0] == "fox"
    assert hits[0].node.get_content() == DOCUMENTS[0].text
    assert hits[0].node.metadata == {"topic": "animals", "year": 2021}
    assert hits[0].score is not None and hits[0].score > hits[1].score  # type: ignore[operator]

    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = engine.query("vector similarity search in PostgreSQL")
    assert source_doc_ids(response.source_nodes) == ["pgvector"]


def test_index_round_trip_hybrid_mode(index: VectorStoreIndex) -> None:
    # alpha=0: only the keyword leg counts; "tulips" is one document's word.
    keyword = index.as_retriever(vector_store_query_mode="hybrid", alpha=0.0, similarity_top_k=1)
    assert source_doc_ids(keyword.retrieve("tulips"))[0] == "garden"
    # alpha=1: only the vector leg; the same ranking as DEFAULT mode.
    vector = index.as_retriever(vector_store_query_mode="hybrid", alpha=1.0, similarity_top_k=2)
    default = index.as_retriever(similarity_top_k=2)
    query = "SQL tables in PostgreSQL"
    assert source_doc_ids(vector.retrieve(query)) == source_doc_ids(default.retrieve(query))
    # Without alpha: reciprocal rank fusion of both legs.
    fused = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=1)
    assert source_doc_ids(fused.retrieve("PostgreSQL rows tables SQL"))[0] == "pg"
    engine = index.as_query_engine(
        llm=MockLLM(), vector_store_query_mode="hybrid", alpha=0.5, similarity_top_k=1
    )
    assert source_doc_ids(engine.query("spring garden roses").source_nodes) == ["garden"]


def test_metadata_filters(index: VectorStoreIndex) -> None:
    databases_since_2024 = MetadataFilters(filters=[
        MetadataFilter(key="topic", value="databases"),
        MetadataFilter(key="year", value=2024, operator=FilterOperator.GTE),
    ])
    retriever = index.as_retriever(similarity_top_k=4, filters=databases_since_2024)
    assert source_doc_ids(retriever.retrieve("PostgreSQL")) == ["pgvector"]

    either = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value=["plants", "animals"], operator=FilterOperator.IN),
            MetadataFilter(key="year", value=2023, operator=FilterOperator.EQ),
        ],
        condition=FilterCondition.OR,
    )
    found = index.as_retriever(similarity_top_k=4, filters=either).retrieve("anything")
    assert sorted(source_doc_ids(found)) == ["fox", "garden", "pg"]


def test_retriever_pages_with_an_offset(index: VectorStoreIndex) -> None:
    whole = index.as_retriever(similarity_top_k=4, vector_store_kwargs={"candidates": 4})
    second_page = index.as_retriever(
        similarity_top_k=2, vector_store_kwargs={"offset": 2, "candidates": 4}
    )
    ranked = source_doc_ids(whole.retrieve("PostgreSQL"))
    assert len(ranked) == 4
    assert source_doc_ids(second_page.retrieve("PostgreSQL")) == ranked[2:]


def test_get_delete_and_clear(index: VectorStoreIndex, store: FathomVectorStore) -> None:
    assert len(store.get_nodes()) == 4
    plants = MetadataFilters(filters=[MetadataFilter(key="topic", value="plants")])
    assert [n.ref_doc_id for n in store.get_nodes(filters=plants)] == ["garden"]

    index.delete_ref_doc("fox")
    assert sorted(n.ref_doc_id or "" for n in store.get_nodes()) == ["garden", "pg", "pgvector"]
    store.delete_nodes(filters=plants)
    remaining = store.get_nodes()
    assert sorted(n.ref_doc_id or "" for n in remaining) == ["pg", "pgvector"]
    store.delete_nodes(node_ids=[remaining[0].node_id])
    assert len(store.get_nodes()) == 1
    store.clear()
    assert store.get_nodes() == []


async def test_async_add_query_delete(store: FathomVectorStore) -> None:
    embed = HashEmbedding.embed
    nodes = [
        TextNode(text=d.text, id_=f"{d.doc_id}-0", metadata=d.metadata, embedding=embed(d.text))
        for d in DOCUMENTS
    ]
    assert await store.async_add(nodes) == [n.node_id for n in nodes]
    query = VectorStoreQuery(query_embedding=embed("brown fox"), similarity_top_k=1)
    result = await store.aquery(query)
    assert result.ids == ["fox-0"]
    hybrid = VectorStoreQuery(
        query_embedding=embed("garden"), query_str="garden", similarity_top_k=1,
        mode=VectorStoreQueryMode.HYBRID, alpha=0.5,
    )
    assert (await store.aquery(hybrid)).ids == ["garden-0"]
    mmr = VectorStoreQuery(
        query_embedding=embed("PostgreSQL"), similarity_top_k=2, mode=VectorStoreQueryMode.MMR
    )
    assert len((await store.aquery(mmr)).ids or []) == 2
    await store.adelete_nodes(node_ids=["fox-0"])
    assert len(await store.aget_nodes()) == 3
    await store.aclear()
    assert await store.aget_nodes() == []
    await store.aclose()


def test_documents_written_without_llama_index_are_text_nodes(store: FathomVectorStore) -> None:
    collection = store.client.get_or_create_collection(store.collection_name, dimension=DIM)
    collection.upsert(["plain"], [HashEmbedding.embed("red fox")], texts=["red fox"], metadatas=[{"lang": "en"}])
    index = VectorStoreIndex.from_vector_store(store, embed_model=HashEmbedding())
    [hit] = index.as_retriever(similarity_top_k=1).retrieve("red fox")
    assert (hit.node.node_id, hit.node.get_content(), hit.node.metadata) == ("plain", "red fox", {"lang": "en"})
    assert [node.node_id for node in store.get_nodes()] == ["plain"]


def test_queries_before_the_first_add_find_nothing(store: FathomVectorStore) -> None:
    result = store.query(VectorStoreQuery(query_embedding=[0.1] * DIM, similarity_top_k=3))
    assert result.ids == [] and store.get_nodes() == []
    store.delete("nothing")  # no error either


def test_a_store_creates_its_collection_with_its_index_build(live: Client, server_target: str) -> None:
    store = FathomVectorStore(unique_name("li"), client=live, server=server_target, index_build="on_request")
    try:
        store.add([TextNode(text="red fox", id_="fox", embedding=[0.1] * DIM)])
        info = live.get_collection(store.collection_name)
        assert (info.index_build, info.index_state) == ("on_request", "deferred")
    finally:
        live.delete_collection(store.collection_name)
