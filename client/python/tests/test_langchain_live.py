"""LangChain's own standard suite (``langchain-tests``), sync and async,
against the live server at $FATHOM_SERVER, plus what the suite does not
cover: filters, hybrid search, MMR, relevance scores and ``from_texts``.

Each test gets an empty store on a fresh collection, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_tests", reason='needs the [langchain] extra and langchain-tests')

from langchain_core.documents import Document  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from fathom import Client, CreateAlias, RelativeScore, SwitchAlias  # noqa: E402
from fathom.langchain import FathomVectorStore  # noqa: E402

from .conftest import unique_name  # noqa: E402

pytestmark = pytest.mark.live


@pytest.fixture
def store(live: Client, server_target: str) -> Iterator[FathomVectorStore]:
    """An empty store on a new collection, dropped afterwards."""
    store = FathomVectorStore(
        unique_name("lc"),
        VectorStoreIntegrationTests.get_embeddings(),
        client=live,
        server=server_target,
    )
    try:
        yield store
    finally:
        store.delete_collection()


class TestFathomVectorStoreStandard(VectorStoreIntegrationTests):
    """The unmodified standard suite: every test, sync and async."""

    @pytest.fixture
    def vectorstore(self, store: FathomVectorStore) -> VectorStore:  # type: ignore[override]
        return store


CORPUS = [
    Document(page_content="the red fox jumps", metadata={"year": 2021, "lang": "en"}, id="fox"),
    Document(page_content="der blaue Himmel", metadata={"year": 2019, "lang": "de"}, id="sky"),
    Document(page_content="a red rose in spring", metadata={"year": 2024, "lang": "en"}, id="rose"),
    Document(page_content="postgres stores vectors", metadata={"year": 2023, "lang": "en"}, id="pg"),
]


def test_filters_use_the_fathom_dict_syntax(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    found = store.similarity_search("red", k=4, filter={"lang": "en", "year": {"$gte": 2022}})
    assert sorted(d.id or "" for d in found) == ["pg", "rose"]


def test_hybrid_search_ranks_keyword_matches(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    # The fake embedding of "vectors" is unrelated to any document's, so only
    # the keyword leg can put "pg" first.
    hits = store.similarity_search_with_score(
        "vectors", k=2, search_mode="hybrid", fusion=RelativeScore(alpha=0.0)
    )
    assert hits[0][0].id == "pg"
    assert hits[0][1] == pytest.approx(1.0)
    text_only = store.similarity_search("spring rose", k=4, search_mode="text")
    assert [d.id for d in text_only] == ["rose"]


def test_offset_pages_through_the_ranking(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    whole = store.similarity_search("red", k=4, candidates=4)
    second_page = store.similarity_search("red", k=2, offset=2, candidates=4)
    assert [d.id for d in second_page] == [d.id for d in whole[2:]]
    retriever = store.as_retriever(search_kwargs={"k": 2, "offset": 2, "candidates": 4})
    assert retriever.invoke("red") == second_page


def test_delete_by_filter_and_delete_all(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    store.delete(filter={"lang": "de"})
    assert store.get_by_ids(["sky", "fox"]) == [CORPUS[0]]
    store.delete()
    assert store.similarity_search("fox", k=4) == []


def test_max_marginal_relevance_returns_k_distinct_documents(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    picked = store.max_marginal_relevance_search("the red fox jumps", k=2, fetch_k=4)
    assert len(picked) == 2 and len({d.id for d in picked}) == 2
    assert picked[0].id == "fox"  # the exact match is the most relevant


async def test_async_max_marginal_relevance(store: FathomVectorStore) -> None:
    await store.aadd_documents(CORPUS)
    picked = await store.amax_marginal_relevance_search("the red fox jumps", k=3, fetch_k=4)
    assert picked[0].id == "fox" and len(picked) == 3
    await store.aclose()


def test_relevance_scores_put_the_exact_match_at_one(store: FathomVectorStore) -> None:
    store.add_documents(CORPUS)
    scored = store.similarity_search_with_relevance_scores("der blaue Himmel", k=1)
    assert scored[0][0].id == "sky"
    assert scored[0][1] == pytest.approx(1.0, abs=1e-5)


def test_from_texts_and_retriever(live: Client, server_target: str) -> None:
    name = unique_name("lc")
    store = FathomVectorStore.from_texts(
        ["alpha", "beta"],
        VectorStoreIntegrationTests.get_embeddings(),
        [{"n": 1}, {"n": 2}],
        ids=["a", "b"],
        collection_name=name,
        client=live,
        server=server_target,
    )
    try:
        retriever = store.as_retriever(search_kwargs={"k": 1})
        assert retriever.invoke("beta") == [Document(page_content="beta", metadata={"n": 2}, id="b")]
        assert live.get_collection(name).dimension == 6
    finally:
        store.delete_collection()


def test_a_store_on_an_alias_follows_the_switch(store: FathomVectorStore, live: Client, server_target: str) -> None:
    embeddings = VectorStoreIntegrationTests.get_embeddings()
    other = FathomVectorStore(unique_name("lc"), embeddings, client=live, server=server_target)
    store.add_documents(CORPUS[:2])
    other.add_documents(CORPUS[2:])
    alias = unique_name("lc_alias")
    try:
        live.update_aliases([CreateAlias(alias, store.collection_name)])
        through_alias = FathomVectorStore(alias, embeddings, client=live, server=server_target)
        assert sorted(d.id or "" for d in through_alias.similarity_search("red", k=4)) == ["fox", "sky"]
        live.update_aliases([SwitchAlias(alias, other.collection_name)])
        assert sorted(d.id or "" for d in through_alias.similarity_search("red", k=4)) == ["pg", "rose"]
        through_alias.add_documents([Document(page_content="written through the alias", id="new")])
        assert live.collection(other.collection_name).count() == 3
    finally:
        other.delete_collection()  # and the alias with it


def test_a_store_creates_its_collection_with_its_index_build(live: Client, server_target: str) -> None:
    embeddings = VectorStoreIntegrationTests.get_embeddings()
    default = FathomVectorStore(unique_name("lc"), embeddings, client=live, server=server_target)
    immediate = FathomVectorStore(
        unique_name("lc"), embeddings, client=live, server=server_target, index_build="immediate"
    )
    try:
        default.add_documents(CORPUS[:1])
        immediate.add_documents(CORPUS[:1])
        info = live.get_collection(default.collection_name)
        assert (info.index_build, info.index_state) == ("automatic", "deferred")
        info = live.get_collection(immediate.collection_name)
        assert (info.index_build, info.index_state) == ("immediate", "ready")
    finally:
        default.delete_collection()
        immediate.delete_collection()
