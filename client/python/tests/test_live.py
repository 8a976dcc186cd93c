"""End-to-end tests against a running Fathom server at $FATHOM_SERVER.

Every test works in its own collection with a random name (the server may be
shared) and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pickle
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from fathom import (
    AsyncClient,
    Client,
    Collection,
    FathomError,
    HnswIndex,
    NoIndex,
    UpsertInputError,
    UpsertRejectedError,
    migrate,
)

from .conftest import Face, unique_name

pytestmark = pytest.mark.live

DIM = 32
N = 10_000
WORDS = (
    "amber basil cedar delta ember fjord granite harbor indigo juniper "
    "kestrel lagoon meadow nectar orchid pebble quartz river saffron tundra"
).split()
LANGS = ("en", "de", "fr")
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def make_corpus(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    corpus = []
    for i in range(n):
        tags = rng.sample(WORDS, 2)
        corpus.append(
            {
                "id": f"doc-{i:05d}",
                "vector": [rng.uniform(-1, 1) for _ in range(DIM)],
                "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6))),
                "metadata": {
                    "i": i,
                    "year": 2015 + i % 10,
                    "lang": LANGS[i % 3],
                    "tags": tags,
                    "published": EPOCH + dt.timedelta(days=i % 1000),
                    **({"draft": True} if i % 7 == 0 else {}),
                },
            }
        )
    return corpus


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return make_corpus(N)


@contextmanager
def collections_of(client: Client) -> Iterator[Callable[..., Collection]]:
    """A factory of collections in ``client``, dropped at the end."""
    created: list[str] = []

    def create(prefix: str = "pytest", **settings: Any) -> Collection:
        name = unique_name(prefix)
        collection = client.create_collection(name, settings.pop("dimension", DIM), **settings)
        created.append(name)
        return collection

    try:
        yield create
    finally:
        for name in created:
            try:
                client.delete_collection(name)
            except FathomError:
                pass


@pytest.fixture
def new_collection(client: Client) -> Iterator[Callable[..., Collection]]:
    """Creates collections on demand (with each face of the client) and
    drops them after the test."""
    with collections_of(client) as create:
        yield create


@pytest.fixture
def new_sync_collection(live: Client) -> Iterator[Callable[..., Collection]]:
    """Like ``new_collection``, with the sync client only (for fathom.migrate)."""
    with collections_of(live) as create:
        yield create


@pytest.fixture(scope="module")
def loaded(client: Client, corpus: list[dict[str, Any]]) -> Iterator[Collection]:
    """A collection holding the 10,000-document corpus, streamed in once (per face)."""
    name = unique_name("pytest_corpus")
    # Immediate, so that its searches go through the HNSW graph as they did
    # before collections built their index automatically (10,000 vectors of
    # 32 dimensions stay below the indexing threshold, where searches are exact).
    docs = client.create_collection(name, DIM, index_build="immediate")
    try:
        result = docs.upsert(
            [d["id"] for d in corpus],
            [d["vector"] for d in corpus],
            texts=[d["text"] for d in corpus],
            metadatas=[d["metadata"] for d in corpus],
            batch_size=500,
        )
        assert result.documents_written == N and result.batches == N // 500
        yield docs
    finally:
        client.delete_collection(name)


def matching(corpus: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {d["id"] for d in corpus if predicate(d["metadata"])}


# -- collections ------------------------------------------------------------------


def test_collection_lifecycle(client: Client, new_collection: Callable[..., Collection]) -> None:
    docs = new_collection(metric="l2", language="simple", index=NoIndex())
    info = client.get_collection(docs.name)
    assert (info.name, info.dimension, info.metric, info.language) == (docs.name, DIM, "l2", "simple")
    assert info.index == NoIndex() and not info.multi_tenant and info.create_time is not None
    assert docs.name in [c.name for c in client.list_collections()]
    client.delete_collection(docs.name)
    with pytest.raises(FathomError) as caught:
        client.get_collection(docs.name)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_create_existing_collection_fails(client: Client, new_collection: Callable[..., Collection]) -> None:
    docs = new_collection()
    with pytest.raises(FathomError) as caught:
        client.create_collection(docs.name, DIM)
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_get_or_create_collection(client: Client) -> None:
    name = unique_name("pytest_goc")
    try:
        created = client.get_or_create_collection(name, DIM, metric="l2")
        created.upsert_batch(["a"], [[0.5] * DIM])
        again = client.get_or_create_collection(name, DIM, metric="l2")
        assert again.count() == 1  # the same collection, untouched
        with pytest.raises(FathomError) as caught:
            client.get_or_create_collection(name, DIM + 1, metric="l2")
        assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert f"dimension {DIM}" in caught.value.message
        with pytest.raises(FathomError):
            client.get_or_create_collection(name, DIM, metric="cosine")
    finally:
        client.delete_collection(name)


def test_async_get_or_create_collection(server_target: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(f"http://{server_target}") as client:
            name = unique_name("pytest_goc")
            try:
                first, second = await asyncio.gather(
                    client.get_or_create_collection(name, DIM),
                    client.get_or_create_collection(name, DIM),
                )
                assert first.name == second.name == name
                assert (await client.get_collection(name)).dimension == DIM
            finally:
                await client.delete_collection(name)

    asyncio.run(scenario())


def test_client_accepts_an_http_url(face: Face, server_target: str) -> None:
    with face.connect(f"http://{server_target}/") as client:
        assert isinstance(client.list_collections(), list)


def test_collections_rank_keywords_by_bm25_on_the_embedded_postgres(
    new_collection: Callable[..., Collection],
) -> None:
    # The SDK tests' PostgreSQL is the embedded cluster, which has pg_textsearch.
    assert new_collection("pytest_ranking").info().keyword_ranking == "bm25"


# -- deferred index (bulk load) ----------------------------------------------------------


def test_deferred_index_is_built_on_demand_and_searches_find_the_nearest_meanwhile(
    client: Client, new_collection: Callable[..., Collection]
) -> None:
    docs = new_collection("pytest_deferred", defer_index=True)
    assert docs.info().index_state == "deferred"
    corpus = make_corpus(300, seed=21)
    docs.upsert_iter(corpus, batch_size=100)
    target = corpus[42]

    (before,) = docs.search(vector=target["vector"], limit=1)  # an exact scan: no index yet
    assert before.id == target["id"] and before.score == pytest.approx(1, abs=1e-4)

    info = client.build_index(docs.name)
    assert (info.name, info.index_state) == (docs.name, "ready")
    assert client.get_collection(docs.name).index_state == "ready"
    (after,) = docs.search(vector=target["vector"], limit=1)
    assert after.id == target["id"]
    assert docs.build_index().index_state == "ready"  # ready already: returns at once


def test_upsert_with_build_index_at_end_returns_with_the_index_ready(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("pytest_deferred", defer_index=True)
    corpus = make_corpus(300, seed=22)
    result = docs.upsert_iter(corpus, batch_size=100, build_index_at_end=True)
    assert result.committed_documents == 300
    assert docs.info().index_state == "ready"
    (hit,) = docs.search(vector=corpus[7]["vector"], limit=1)
    assert hit.id == corpus[7]["id"]


def test_a_new_collection_builds_its_index_automatically_and_is_exact_until_then(
    new_collection: Callable[..., Collection],
) -> None:
    info = new_collection().info()
    assert (info.index_build, info.index_state) == ("automatic", "deferred")
    assert isinstance(info.index, HnswIndex) and info.index.precision == "half", info.index


def test_an_immediate_collection_reports_its_index_ready_at_creation(
    new_collection: Callable[..., Collection],
) -> None:
    info = new_collection(index_build="immediate").info()
    assert (info.index_build, info.index_state) == ("immediate", "ready")
    assert isinstance(info.index, HnswIndex) and info.index.precision == "half", info.index
    assert new_collection(index=NoIndex()).info().index_state == "ready"


@pytest.mark.parametrize("settings", [{"index_build": "on_request"}, {"defer_index": True}])
def test_on_request_and_defer_index_leave_the_index_to_build_index(
    new_collection: Callable[..., Collection], settings: dict[str, Any]
) -> None:
    docs = new_collection("pytest_deferred", **settings)
    info = docs.info()
    assert (info.index_build, info.index_state) == ("on_request", "deferred")
    assert docs.build_index().index_state == "ready"


def test_defer_index_with_another_index_build_is_invalid_argument_on_index_build(
    new_collection: Callable[..., Collection],
) -> None:
    for index_build in ("automatic", "immediate"):
        with pytest.raises(FathomError) as caught:
            new_collection("pytest_deferred", defer_index=True, index_build=index_build)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in caught.value.violations] == ["index_build"]
    # defer_index and on_request say the same thing.
    assert new_collection("pytest_deferred", defer_index=True, index_build="on_request").info().index_build == "on_request"


def test_build_index_at_end_indexes_an_automatic_collection_below_the_threshold(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection()
    corpus = make_corpus(300, seed=24)
    docs.upsert_iter(corpus, batch_size=100)
    assert docs.info().index_state == "deferred"  # 300 small vectors: far below the threshold
    docs.upsert_iter(corpus[:10], batch_size=100, build_index_at_end=True)
    info = docs.info()
    assert (info.index_build, info.index_state) == ("automatic", "ready")
    (hit,) = docs.search(vector=corpus[7]["vector"], limit=1)
    assert hit.id == corpus[7]["id"]


def test_defer_index_without_an_index_is_invalid_argument(new_collection: Callable[..., Collection]) -> None:
    with pytest.raises(FathomError) as caught:
        new_collection("pytest_deferred", index=NoIndex(), defer_index=True)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["defer_index"]


def test_build_index_of_an_unknown_collection_is_not_found(client: Client) -> None:
    with pytest.raises(FathomError) as caught:
        client.build_index(unique_name("missing"))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_async_bulk_load_into_a_deferred_index(server_target: str) -> None:
    corpus = make_corpus(300, seed=23)

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            name = unique_name("pytest_deferred")
            docs = await client.create_collection(name, DIM, defer_index=True)
            try:
                assert (await docs.info()).index_state == "deferred"
                await docs.upsert_iter(corpus[:200], batch_size=100)
                await docs.upsert_iter(corpus[200:], batch_size=100, build_index_at_end=True)
                assert (await client.get_collection(name)).index_state == "ready"
                assert (await client.build_index(name)).index_state == "ready"
                hits = await docs.search(vector=corpus[250]["vector"], limit=1)
                assert [h.id for h in hits] == [corpus[250]["id"]]
            finally:
                await client.delete_collection(name)

    asyncio.run(scenario())


# -- the 10,000-document corpus --------------------------------------------------------


def test_count_after_streaming(loaded: Collection) -> None:
    assert loaded.count() == N
    assert loaded.stats().document_count == N


@pytest.mark.parametrize(
    ("spec", "predicate"),
    [
        ({"lang": "en"}, lambda m: m["lang"] == "en"),
        ({"year": {"$gte": 2020, "$lt": 2023}}, lambda m: 2020 <= m["year"] < 2023),
        ({"lang": {"$in": ["de", "fr"]}}, lambda m: m["lang"] in ("de", "fr")),
        ({"lang": {"$nin": ["de", "fr"]}}, lambda m: m["lang"] not in ("de", "fr")),
        ({"lang": {"$ne": "en"}, "year": 2019}, lambda m: m["lang"] != "en" and m["year"] == 2019),
        ({"$or": [{"year": 2015}, {"lang": "de"}]}, lambda m: m["year"] == 2015 or m["lang"] == "de"),
        ({"$not": {"lang": "en"}}, lambda m: m["lang"] != "en"),
        ({"draft": {"$exists": True}}, lambda m: "draft" in m),
        ({"draft": {"$exists": False}}, lambda m: "draft" not in m),
        ({"tags": {"$contains": "amber"}}, lambda m: "amber" in m["tags"]),
        ({"i": {"$lte": 99}}, lambda m: m["i"] <= 99),
        (
            {"published": {"$gte": EPOCH + dt.timedelta(days=500)}},
            lambda m: m["published"] >= EPOCH + dt.timedelta(days=500),
        ),
    ],
)
def test_filters_count_what_they_say(
    loaded: Collection, corpus: list[dict[str, Any]], spec: dict[str, Any], predicate: Any
) -> None:
    assert loaded.count(spec) == len(matching(corpus, predicate))


def test_id_filter(loaded: Collection) -> None:
    assert loaded.count({"$id": {"$in": ["doc-00001", "doc-00002", "nope"]}}) == 2


def test_hybrid_search_with_filter(loaded: Collection, corpus: list[dict[str, Any]]) -> None:
    spec = {"year": {"$gte": 2020}, "lang": "en"}
    target = next(d for d in corpus if d["metadata"]["lang"] == "en" and d["metadata"]["year"] >= 2020)
    word = target["text"].split()[0]
    hits = loaded.search(vector=target["vector"], text=word, filter=spec, limit=20, candidates=1000)
    assert len(hits) == 20
    for hit in hits:
        assert hit.metadata["year"] >= 2020 and hit.metadata["lang"] == "en", hit
        assert hit.vector_rank is not None or hit.text_rank is not None, hit
        if hit.vector_rank is not None:
            assert hit.vector_rank >= 1 and hit.vector_score is not None
        if hit.text_rank is not None:
            assert word in hit.text.split() and hit.text_score is not None and hit.text_score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # With 1000 candidates per leg, the best fused hits were found by both legs.
    assert any(h.vector_rank is not None and h.text_rank is not None for h in hits)
    # The query's own document is the vector leg's best match.
    exact = loaded.search(vector=target["vector"], filter=spec, limit=1, exact=True)
    assert exact[0].id == target["id"] and exact[0].vector_rank == 1
    assert exact[0].score == pytest.approx(1.0, abs=1e-4)


def test_vector_and_keyword_only_searches(loaded: Collection, corpus: list[dict[str, Any]]) -> None:
    target = corpus[123]
    vector_hits = loaded.search(vector=target["vector"], limit=5, include=[], exact=True)
    assert vector_hits[0].id == target["id"]
    assert all(h.text_rank is None and h.vector_rank is not None for h in vector_hits)
    assert all(h.text == "" and h.metadata == {} for h in vector_hits)
    keyword_hits = loaded.search(text="saffron", limit=5, filter={"lang": "fr"})
    assert keyword_hits and all(h.vector_rank is None and h.text_rank is not None for h in keyword_hits)
    assert all("saffron" in h.text.split() and h.metadata["lang"] == "fr" for h in keyword_hits)
    fused = loaded.search(vector=target["vector"], text="saffron", fusion="relative_score", limit=5)
    assert len(fused) == 5


def test_get(loaded: Collection, corpus: list[dict[str, Any]]) -> None:
    got = loaded.get(["doc-00010", "missing", "doc-00003"])
    assert [d.id for d in got] == ["doc-00010", "doc-00003"]
    source = corpus[10]
    assert got[0].text == source["text"]
    assert got[0].metadata["year"] == source["metadata"]["year"]
    assert got[0].metadata["published"] == "2020-01-11T00:00:00Z"
    assert got[0].vector == pytest.approx(source["vector"], rel=1e-6)
    (ids_only,) = loaded.get(["doc-00010"], include=[])
    assert ids_only.vector is None and ids_only.text == "" and ids_only.metadata == {}


def test_scroll(loaded: Collection, corpus: list[dict[str, Any]]) -> None:
    expected = sorted(matching(corpus, lambda m: m["year"] == 2016))
    assert [d.id for d in loaded.scroll({"year": 2016}, include=[])] == expected
    assert [d.id for d in loaded.scroll(limit=5, include=["text"])] == sorted(d["id"] for d in corpus)[:5]


def test_delete_by_filter_then_by_ids(
    live: Client, new_collection: Callable[..., Collection], corpus: list[dict[str, Any]]
) -> None:
    docs = new_collection()
    subset = corpus[:3000]
    docs.upsert_iter(subset, batch_size=250)
    assert docs.count() == 3000
    french = matching(subset, lambda m: m["lang"] == "fr")
    assert docs.delete(filter={"lang": "fr"}) == len(french)
    assert docs.count() == 3000 - len(french)
    assert docs.count({"lang": "fr"}) == 0
    assert docs.delete(ids=["doc-00000", "doc-00001", "doc-00002"]) == 2  # doc-00002 is French
    assert docs.count() == 3000 - len(french) - 2


# -- update ------------------------------------------------------------------------------


def with_three_documents(docs: Collection) -> dict[str, list[float]]:
    """Writes documents a, b and c (text and metadata of each below); returns their vectors."""
    vectors = {key: [float(i + 1)] + [0.5] * (DIM - 1) for i, key in enumerate("abc")}
    docs.upsert_batch(
        list(vectors),
        list(vectors.values()),
        texts=["amber harbor", "cedar meadow", "quartz river"],
        metadatas=[
            {"lang": "en", "year": 2020, "draft": True, "tags": ["x"]},
            {"lang": "de", "year": 2021, "draft": True},
            {"lang": "fr", "year": 2022},
        ],
    )
    return vectors


def by_id(docs: Collection, ids: list[str]) -> dict[str, Any]:
    return {d.id: d for d in docs.get(ids)}


def test_update_merges_metadata_keeping_other_keys_text_and_vector(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("py_upd")
    vectors = with_three_documents(docs)
    assert docs.update(["a", "b"], set_metadata={"year": 2025, "reviewed": {"by": "ann"}}) == 2
    got = by_id(docs, ["a", "b", "c"])
    assert got["a"].metadata == {"lang": "en", "year": 2025, "draft": True, "tags": ["x"], "reviewed": {"by": "ann"}}
    assert got["b"].metadata == {"lang": "de", "year": 2025, "draft": True, "reviewed": {"by": "ann"}}
    assert got["c"].metadata == {"lang": "fr", "year": 2022}  # not chosen
    assert (got["a"].text, got["b"].text) == ("amber harbor", "cedar meadow")
    assert got["a"].vector == pytest.approx(vectors["a"])
    assert docs.count({"reviewed.by": "ann"}) == 2  # the merged keys are filterable at once


def test_update_deletes_metadata_keys_a_document_has(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    # c has no "draft" and none has "absent": ignored, and c is still changed (chosen and present).
    assert docs.update(["a", "c"], delete_metadata_keys=["draft", "absent"]) == 2
    got = by_id(docs, ["a", "b", "c"])
    assert got["a"].metadata == {"lang": "en", "year": 2020, "tags": ["x"]}
    assert got["b"].metadata["draft"] is True
    assert got["c"].metadata == {"lang": "fr", "year": 2022}
    assert docs.update(["b"], set_metadata={"year": 1999}, delete_metadata_keys=["draft"]) == 1
    assert by_id(docs, ["b"])["b"].metadata == {"lang": "de", "year": 1999}


def test_update_can_replace_or_clear_the_whole_metadata(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    assert docs.update(["a"], set_metadata={"only": 1}, replace_metadata=True) == 1
    assert docs.update(["b"], set_metadata={}, replace_metadata=True) == 1
    got = by_id(docs, ["a", "b"])
    assert (got["a"].metadata, got["b"].metadata) == ({"only": 1}, {})
    assert (got["a"].text, got["b"].text) == ("amber harbor", "cedar meadow")


def test_updated_text_is_what_keyword_search_finds(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_upd")
    vectors = with_three_documents(docs)
    assert [h.id for h in docs.search(text="harbor")] == ["a"]
    assert docs.update(["a"], text="saffron tundra") == 1
    assert [h.id for h in docs.search(text="saffron")] == ["a"]
    assert docs.search(text="harbor") == []  # the old text is out of the keyword index
    (a,) = docs.get(["a"])
    assert a.text == "saffron tundra" and a.metadata["lang"] == "en"
    assert a.vector == pytest.approx(vectors["a"])
    assert docs.update(["a"], text="") == 1  # "" is a text too: it clears it
    assert docs.get(["a"])[0].text == "" and docs.search(text="saffron") == []


def test_update_by_filter_changes_every_match_and_counts_them(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("py_upd")
    corpus = make_corpus(600, seed=31)
    docs.upsert_iter(corpus, batch_size=200)
    french = matching(corpus, lambda m: m["lang"] == "fr")
    assert docs.update(filter={"lang": "fr"}, set_metadata={"reviewed": True}) == len(french)
    assert docs.count({"reviewed": True}) == len(french)
    assert {d.id for d in docs.scroll({"reviewed": True}, include=[])} == french
    drafts = matching(corpus, lambda m: m["lang"] == "fr" and "draft" in m)
    assert docs.update(filter={"reviewed": True, "draft": True}, delete_metadata_keys=["draft"]) == len(drafts)
    assert docs.count({"lang": "fr", "draft": {"$exists": True}}) == 0
    assert docs.count() == 600
    assert docs.update(filter={"lang": "xx"}, text="none") == 0


def test_update_skips_missing_ids_and_creates_nothing(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    assert docs.update(["a", "ghost", "phantom"], set_metadata={"seen": True}) == 1
    assert docs.count() == 3
    assert [d.id for d in docs.get(["a", "ghost", "phantom"])] == ["a"]
    assert docs.update(["ghost"], text="boo") == 0
    assert docs.count() == 3


def test_update_in_a_multi_tenant_collection_changes_that_tenant_only(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("py_upd", multi_tenant=True)
    docs.upsert_batch(["a"], [[1.0] * DIM], metadatas=[{"n": 1}], tenant="acme")
    docs.upsert_batch(["a"], [[1.0] * DIM], metadatas=[{"n": 1}], tenant="globex")
    assert docs.with_tenant("acme").update(["a"], set_metadata={"n": 2}) == 1
    assert docs.get(["a"], tenant="acme")[0].metadata == {"n": 2}
    assert docs.get(["a"], tenant="globex")[0].metadata == {"n": 1}


def test_update_that_changes_nothing_is_invalid_argument(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    before = docs.get(["a", "b", "c"])
    with pytest.raises(FathomError) as caught:
        docs.update(["a"])
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    (violation,) = caught.value.violations  # of the request as a whole, not of one field
    assert "nothing to update" in violation.description, caught.value
    assert docs.get(["a", "b", "c"]) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"set_metadata": {"k": 1}, "delete_metadata_keys": ["j", "k"]}, "delete_metadata_keys[1]"),
        ({"text": "x", "replace_metadata": True}, "replace_metadata"),
        ({"set_metadata": {}, "replace_metadata": True, "delete_metadata_keys": ["k"]}, "delete_metadata_keys"),
    ],
)
def test_update_whose_parts_clash_names_the_field_and_changes_nothing(
    new_collection: Callable[..., Collection], change: dict[str, Any], field: str
) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    before = docs.get(["a", "b", "c"])
    with pytest.raises(FathomError) as caught:
        docs.update(["a", "b"], **change)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == [field], caught.value
    assert docs.get(["a", "b", "c"]) == before


def test_update_growing_metadata_past_the_limit_is_resource_exhausted_and_changes_nothing(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("py_upd")
    with_three_documents(docs)
    docs.upsert_batch(["big"], [[1.0] * DIM], metadatas=[{"blob": "x" * 40_000}])
    before = docs.get(["a", "big"])
    with pytest.raises(FathomError) as caught:
        # Within the limit alone, over it merged into "big"; "a" would fit.
        docs.update(["a", "big"], set_metadata={"more": "y" * 30_000}, text="changed")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [v.field for v in caught.value.violations] == ["set_metadata"], caught.value
    assert not caught.value.busy  # a refusal: retrying would not help
    assert docs.get(["a", "big"]) == before


def test_update_needs_exactly_one_selector_before_sending(client: Client) -> None:
    docs = client.collection(unique_name("py_upd_unsent"))  # refused before any call: need not exist
    with pytest.raises(ValueError, match="exactly one of ids= and filter="):
        docs.update(text="x")
    with pytest.raises(ValueError, match="exactly one of ids= and filter="):
        docs.update(["a"], {"lang": "en"}, text="x")
    with pytest.raises(TypeError, match="not a string"):
        docs.update("a", text="x")


def test_unknown_collection_update_is_not_found(client: Client) -> None:
    with pytest.raises(FathomError) as caught:
        client.collection(unique_name("py_upd_missing")).update(["a"], text="x")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_upsert_replaces_and_numpy_input(new_collection: Callable[..., Collection]) -> None:
    np = pytest.importorskip("numpy")
    docs = new_collection()
    vectors = np.random.default_rng(1).normal(size=(50, DIM)).astype(np.float32)
    docs.upsert([f"n{i}" for i in range(50)], vectors, texts=["first"] * 50)
    docs.upsert(["n0"], vectors[:1], texts=["second"], metadatas=[{"v": 2}])
    assert docs.count() == 50
    (doc,) = docs.get(["n0"])
    assert doc.text == "second" and doc.metadata == {"v": 2}
    assert doc.vector == pytest.approx(vectors[0].tolist())


def test_multi_tenant(live: Client, new_collection: Callable[..., Collection]) -> None:
    docs = new_collection(multi_tenant=True)
    corpus = make_corpus(40, seed=5)
    docs.upsert_iter(corpus[:30], tenant="acme")
    docs.with_tenant("globex").upsert_iter(corpus[30:])
    assert docs.count(tenant="acme") == 30
    assert docs.with_tenant("globex").count() == 10
    hits = docs.search(vector=corpus[0]["vector"], tenant="acme", limit=3)
    assert hits[0].id == corpus[0]["id"] and hits[0].tenant == "acme"
    with pytest.raises(FathomError) as caught:
        docs.count()  # a multi-tenant collection needs a tenant
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


# -- search by example, paging ---------------------------------------------------------


def with_small_corpus(docs: Collection) -> list[dict[str, Any]]:
    """Fills ``docs`` with 300 documents of the corpus shape; returns them."""
    corpus = make_corpus(300, seed=13)
    docs.upsert_iter(corpus)
    return corpus


def not_the_document(id: str) -> dict[str, Any]:
    return {"$id": {"$ne": id}}


def test_search_by_example_finds_the_neighbours_of_the_stored_document_without_it(
    new_collection: Callable[..., Collection],
) -> None:
    docs = new_collection("py_example")
    corpus = with_small_corpus(docs)
    target = corpus[42]
    by_example = docs.search(example_id=target["id"], limit=5, exact=True)
    by_vector = docs.search(vector=target["vector"], limit=6, exact=True)
    assert by_vector[0].id == target["id"]  # its own nearest neighbour...
    assert [h.id for h in by_example] == [h.id for h in by_vector[1:]]  # ...left out
    assert [h.score for h in by_example] == pytest.approx([h.score for h in by_vector[1:]], abs=1e-6)
    assert all(h.vector_rank is not None and h.text_rank is None for h in by_example)
    # Through the HNSW index too, the example is never its own hit.
    assert target["id"] not in {h.id for h in docs.search(example_id=target["id"], limit=50)}


def test_search_by_example_goes_with_a_filter_and_with_text(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_example")
    corpus = with_small_corpus(docs)
    target = corpus[7]
    lang = target["metadata"]["lang"]
    filtered = docs.search(example_id=target["id"], filter={"lang": lang}, limit=10, exact=True)
    assert len(filtered) == 10 and all(h.metadata["lang"] == lang for h in filtered)
    expected = docs.search(
        vector=target["vector"], filter={"lang": lang, **not_the_document(target["id"])}, limit=10, exact=True
    )
    assert [h.id for h in filtered] == [h.id for h in expected]

    word = target["text"].split()[0]
    hybrid = docs.search(example_id=target["id"], text=word, limit=10, candidates=300, exact=True)
    assert target["id"] not in {h.id for h in hybrid}
    assert any(h.vector_rank is not None and h.text_rank is not None for h in hybrid)
    expected = docs.search(
        vector=target["vector"], text=word, filter=not_the_document(target["id"]), limit=10, candidates=300, exact=True
    )
    assert [(h.id, h.vector_rank, h.text_rank) for h in hybrid] == [(h.id, h.vector_rank, h.text_rank) for h in expected]


def test_search_by_a_missing_example_is_not_found(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_example", multi_tenant=True)
    docs.upsert_batch(["a", "b"], [[1.0] * DIM, [0.5] * DIM], tenant="acme")
    assert [h.id for h in docs.search(example_id="a", tenant="acme")] == ["b"]
    for tenant, id in (("acme", "nope"), ("globex", "a")):  # the example is looked up in the request's tenant
        with pytest.raises(FathomError) as caught:
            docs.search(example_id=id, tenant=tenant)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND, caught.value
        assert repr(id) in caught.value.message or f'"{id}"' in caught.value.message, caught.value


def test_search_by_example_with_a_vector_is_invalid_argument(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_example")
    docs.upsert_batch(["a"], [[1.0] * DIM])
    with pytest.raises(FathomError) as caught:
        docs.search(vector=[1.0] * DIM, example_id="a")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["example_id"], caught.value


@pytest.mark.parametrize(
    "query",
    [
        {"vector": make_corpus(1, seed=99)[0]["vector"]},
        {"text": "amber river"},  # many documents share a keyword score: ties broken by id
        {"vector": make_corpus(1, seed=99)[0]["vector"], "text": "amber river"},
        {"example_id": "doc-00003"},
    ],
    ids=["vector", "text", "hybrid", "example"],
)
def test_pages_of_one_search_are_the_slices_of_it(
    new_collection: Callable[..., Collection], query: dict[str, Any]
) -> None:
    docs = new_collection("py_pages")
    with_small_corpus(docs)
    whole = docs.search(**query, limit=15, candidates=50)
    assert len(whole) == 15
    pages = [docs.search(**query, limit=5, offset=offset, candidates=50) for offset in (0, 5, 10)]
    assert [[h.id for h in page] for page in pages] == [[h.id for h in whole[i : i + 5]] for i in (0, 5, 10)]
    assert [h.score for page in pages for h in page] == [h.score for h in whole]
    # Fewer candidates than the page reaches would cut it short: refused.
    with pytest.raises(FathomError) as caught:
        docs.search(**query, limit=5, offset=100, candidates=50)
    assert [v.field for v in caught.value.violations] == ["candidates"], caught.value
    # Past every one of the 300 documents: nothing.
    assert docs.search(**query, limit=5, offset=300, candidates=305) == []


def test_offset_past_the_search_limit_is_invalid_argument(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection("py_pages")
    docs.upsert_batch(["a", "b"], [[1.0] * DIM, [0.5] * DIM])
    assert docs.search(vector=[1.0] * DIM, limit=5, offset=995) == []  # offset + limit = 1000: allowed
    with pytest.raises(FathomError) as caught:
        docs.search(vector=[1.0] * DIM, limit=5, offset=996)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["offset"], caught.value


# -- errors -------------------------------------------------------------------------------


def test_unknown_collection_is_not_found(client: Client) -> None:
    missing = client.collection(unique_name("missing"))
    for call in (
        lambda: missing.count(),
        lambda: missing.search(vector=[0.0] * DIM),
        lambda: missing.get(["a"]),
        lambda: missing.upsert(["a"], [[0.0] * DIM]),
        lambda: client.delete_collection(missing.name),
    ):
        with pytest.raises(FathomError) as caught:
            call()
        assert caught.value.code == grpc.StatusCode.NOT_FOUND, caught.value


def test_wrong_dimension_is_invalid_argument(new_collection: Callable[..., Collection]) -> None:
    docs = new_collection()
    with pytest.raises(UpsertRejectedError) as rejected:
        docs.upsert(["ok", "bad"], [[0.1] * DIM, [0.1] * (DIM + 1)])
    assert rejected.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any(v.field.startswith("documents[1]") and "vector" in v.field for v in rejected.value.violations), rejected.value
    assert docs.count() == 0  # nothing of a rejected batch is written

    with pytest.raises(FathomError) as caught:
        docs.search(vector=[0.1] * (DIM - 1))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("vector" in v.field for v in caught.value.violations), caught.value


@pytest.mark.parametrize("name", ["Bad-Name", "1starts_with_digit", "", "x" * 49])
def test_bad_collection_name_is_invalid_argument(client: Client, name: str) -> None:
    with pytest.raises(FathomError) as caught:
        client.create_collection(name, DIM)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("name" in v.field for v in caught.value.violations), caught.value


def test_bad_dimension_is_invalid_argument(client: Client) -> None:
    with pytest.raises(FathomError) as caught:
        client.create_collection(unique_name("pytest_dim"), 0)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("dimension" in v.field for v in caught.value.violations), caught.value


# -- asyncio ----------------------------------------------------------------------------------


def test_async_client_end_to_end(server_target: str) -> None:
    corpus = make_corpus(2000, seed=11)

    async def scenario() -> None:
        async with AsyncClient(server_target, timeout=60) as client:
            name = unique_name("pytest_async")
            docs = await client.create_collection(name, DIM)
            try:
                result = await docs.upsert_iter(corpus, batch_size=200)
                assert result.documents_written == 2000
                assert await docs.count() == 2000
                assert await docs.count({"lang": "de"}) == len(matching(corpus, lambda m: m["lang"] == "de"))
                hits = await docs.search(vector=corpus[5]["vector"], text="amber", filter={"lang": "fr"}, limit=10)
                assert hits and all(h.metadata["lang"] == "fr" for h in hits)
                got = await docs.get([corpus[5]["id"]])
                assert got[0].text == corpus[5]["text"]
                scrolled = [d.id async for d in docs.scroll({"year": 2017}, include=[])]
                assert scrolled == sorted(matching(corpus, lambda m: m["year"] == 2017))
                deleted = await docs.delete(filter={"year": {"$lt": 2017}})
                assert deleted == len(matching(corpus, lambda m: m["year"] < 2017))
                with pytest.raises(FathomError) as caught:
                    await client.get_collection(unique_name("missing"))
                assert caught.value.code == grpc.StatusCode.NOT_FOUND
            finally:
                await client.delete_collection(name)

    asyncio.run(scenario())


# -- migrate helpers -----------------------------------------------------------------------------


def test_migrate_simple_store(new_sync_collection: Callable[..., Collection], tmp_path: Path) -> None:
    corpus = make_corpus(5000, seed=13)
    (tmp_path / "vectors.pkl").write_bytes(pickle.dumps({d["id"]: d["vector"] for d in corpus}))
    docs_json = {
        d["id"]: {"text": d["text"], "metadata": {"lang": d["metadata"]["lang"]}} for d in corpus
    }
    (tmp_path / "docs.json").write_text(json.dumps(docs_json))
    docs = new_sync_collection("pytest_migrate")
    report = migrate.from_simple_store(docs, tmp_path)
    assert report.source_count == 5000 and report.collection_count == 5000 and report.matches
    assert docs.count() == 5000
    (sample,) = docs.get([corpus[42]["id"]])
    assert sample.text == corpus[42]["text"] and sample.metadata == {"lang": corpus[42]["metadata"]["lang"]}


def test_migrate_jsonl(new_sync_collection: Callable[..., Collection], tmp_path: Path) -> None:
    corpus = make_corpus(5000, seed=17)
    path = tmp_path / "export.jsonl"
    with path.open("w") as f:
        for d in corpus:
            f.write(json.dumps({**d, "metadata": {"lang": d["metadata"]["lang"]}}) + "\n")
    docs = new_sync_collection("pytest_jsonl")
    report = migrate.from_jsonl(docs, path, stream_id=f"jsonl-{docs.name}")
    assert (report.source_count, report.collection_count, report.documents_written) == (5000, 5000, 5000)
    assert docs.count({"lang": "en"}) == len(matching(corpus, lambda m: m["lang"] == "en"))
    # Run again with the same stream id: every batch is skipped as committed.
    again = migrate.from_jsonl(docs, path, stream_id=f"jsonl-{docs.name}", progress=False)
    assert (again.documents_written, again.skipped_documents, again.collection_count) == (0, 5000, 5000)
    assert "5000 skipped" in str(again)


def test_migrate_jsonl_groups_tenants(live: Client, new_sync_collection: Callable[..., Collection], tmp_path: Path) -> None:
    path = tmp_path / "tenants.jsonl"
    lines = [
        {"id": f"j{i}", "vector": [1.0] * DIM, "text": "x", "metadata": {"i": i}, "tenant": "acme" if i < 20 else "globex"}
        for i in range(30)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    docs = new_sync_collection("pytest_jsonl_mt", multi_tenant=True)
    report = migrate.from_jsonl(docs, path, batch_size=7, stream_id=f"mt-{docs.name}", progress=False)
    assert (report.source_count, report.collection_count, report.documents_written) == (30, 30, 30)
    assert report.matches and "ok" in str(report)
    assert (docs.count(tenant="acme"), docs.count(tenant="globex")) == (20, 10)


def test_migrate_jsonl_names_the_bad_line(new_sync_collection: Callable[..., Collection], tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "a", "vector": [1.0] * DIM}) + '\n{"id": "b"}\n')
    docs = new_sync_collection("pytest_jsonl_bad")
    with pytest.raises(UpsertInputError, match=r"bad.jsonl:2") as caught:
        migrate.from_jsonl(docs, path, progress=False)
    assert isinstance(caught.value.__cause__, ValueError)
    # Nothing of the bad line's batch was sent.
    assert caught.value.committed_documents == docs.count() == 0


@pytest.mark.parametrize("layout", ["dict+dict", "dict+list", "list+list", "list-only"])
def test_migrate_simple_store_layouts(
    new_sync_collection: Callable[..., Collection], tmp_path: Path, layout: str
) -> None:
    n = 40
    vectors_by_id = {f"s{i}": [float(i + 1)] * DIM for i in range(n)}
    docs_by_id = {k: {"text": f"text {k}", "metadata": {"k": k}} for k in vectors_by_id}
    vectors: object = vectors_by_id if layout.startswith("dict") else list(vectors_by_id.values())
    docs_json: object
    if layout == "dict+dict":
        docs_json = docs_by_id
    elif layout == "list-only":
        docs_json = None
    else:
        docs_json = [{"id": k, **v} for k, v in docs_by_id.items()]
    (tmp_path / "vectors.pkl").write_bytes(pickle.dumps(vectors))
    if docs_json is not None:
        (tmp_path / "docs.json").write_text(json.dumps(docs_json))
    docs = new_sync_collection("pytest_store")
    report = migrate.from_simple_store(docs, tmp_path, progress=False)
    assert (report.source_count, report.collection_count) == (n, n)
    if layout == "list-only":
        assert sorted(d.id for d in docs.scroll(include=[])) == sorted(str(i) for i in range(n))
    else:
        (s7,) = docs.get(["s7"])
        assert s7.text == "text s7" and s7.metadata == {"k": "s7"}


def test_migrate_simple_store_rejects_mismatched_files(
    new_sync_collection: Callable[..., Collection], tmp_path: Path
) -> None:
    docs = new_sync_collection("pytest_store_bad")
    (tmp_path / "vectors.pkl").write_bytes(pickle.dumps([[1.0] * DIM, [2.0] * DIM]))
    (tmp_path / "docs.json").write_text(json.dumps([{"id": "a"}]))
    with pytest.raises(ValueError, match="2 vectors but docs.json 1"):
        migrate.from_simple_store(docs, tmp_path, progress=False)
    (tmp_path / "vectors.pkl").write_bytes(pickle.dumps({"a": [1.0] * DIM}))
    (tmp_path / "docs.json").write_text(json.dumps({"b": {"text": "orphan"}}))
    with pytest.raises(ValueError, match="no vector"):
        migrate.from_simple_store(docs, tmp_path, progress=False)
    assert docs.count() == 0


def test_a_client_keeps_the_token_of_its_writes_and_still_reads_them(face: Face, server_target: str) -> None:
    # Against a server without replicas every read is the primary's; this
    # checks the tokens flow (the replica routing is tested in Rust).
    with face.connect(server_target) as client:
        assert client.consistency_token is None
        name = unique_name("tokens")
        docs = client.create_collection(name, dimension=3)
        try:
            created = client.consistency_token
            assert created is not None
            docs.upsert(["a"], [[1, 0, 0]])
            assert client.consistency_token != created
            assert [d.id for d in docs.get(["a"])] == ["a"]
            assert docs.count() == 1
        finally:
            client.delete_collection(name)
