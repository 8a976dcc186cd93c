"""Unit tests of request building and response conversion (no server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from fathom import RRF, HnswIndex, IndexBuild, IndexPrecision, NoIndex, RelativeScore
from fathom import _convert
from fathom.aio import _next_batch
from fathom.client import parse_target
from fathom._upsert import UpsertSession
from fathom.v1 import collections_pb2, documents_pb2, search_pb2


def search(**overrides: object) -> search_pb2.SearchRequest:
    args: dict[str, object] = dict(
        vector=None,
        text=None,
        filter=None,
        limit=10,
        fusion=None,
        example_id=None,
        offset=0,
        include=None,
        candidates=None,
        exact=False,
        ef_search=None,
        score_threshold=None,
    )
    args.update(overrides)
    return _convert.search_request("docs", None, **args)  # type: ignore[arg-type]


def test_search_needs_a_query() -> None:
    with pytest.raises(ValueError, match="a vector, an example_id or a text"):
        search()
    with pytest.raises(ValueError, match="a vector, an example_id or a text"):
        search(example_id="")  # an empty id is no example, as in the proto


def test_example_search_sends_the_id_as_the_query() -> None:
    request = search(example_id="doc-7")
    assert request.example_id == "doc-7"
    assert list(request.vector) == [] and not request.HasField("text")
    hybrid = search(example_id="doc-7", text="fox", filter={"lang": "en"})
    assert (hybrid.example_id, hybrid.text, hybrid.filter.field.key) == ("doc-7", "fox", "lang")


def test_example_with_a_vector_is_sent_for_the_server_to_refuse() -> None:
    # Which parts go together is the server's to say, naming the field (`example_id`).
    request = search(vector=[1, 2], example_id="doc-7")
    assert request.example_id == "doc-7" and list(request.vector) == [1.0, 2.0]


def test_offset_is_sent_and_defaults_to_the_first_page() -> None:
    assert search(vector=[1]).offset == 0
    assert search(vector=[1]).example_id == ""
    request = search(text="fox", limit=5, offset=10, candidates=15)
    assert (request.limit, request.offset, request.candidates) == (5, 10, 15)


def test_negative_offset_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="out of range"):
        search(vector=[1], offset=-5)


def test_vector_search_leaves_text_unset() -> None:
    request = search(vector=[1, 2, 3])
    assert list(request.vector) == [1.0, 2.0, 3.0]
    assert not request.HasField("text")
    assert not request.HasField("fusion")
    assert not request.HasField("include")
    assert not request.HasField("params")
    assert not request.HasField("score_threshold")
    assert request.limit == 10 and request.collection == "docs" and request.tenant == ""


def test_empty_text_is_sent_as_set() -> None:
    # `text` is proto3 optional: "" is a (matching-nothing) query, not "no keyword leg".
    assert search(text="").HasField("text")


def test_hybrid_search_with_everything() -> None:
    request = search(
        vector=(0.5, 0.25),
        text="fox",
        filter={"lang": "en"},
        limit=5,
        fusion=RRF(k=10, text_weight=2),
        include=["text", "vector"],
        candidates=50,
        exact=True,
        ef_search=200,
        score_threshold=0.1,
    )
    assert request.text == "fox"
    assert request.filter.field.key == "lang"
    assert request.fusion.rrf.k == 10 and request.fusion.rrf.text_weight == 2
    assert not request.fusion.rrf.HasField("vector_weight")
    assert (request.include.text, request.include.metadata, request.include.vector) == (True, False, True)
    assert request.candidates == 50
    assert request.params.exact and request.params.ef_search == 200
    assert request.score_threshold == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("fusion", "method"),
    [("rrf", "rrf"), ("relative_score", "relative_score"), (RRF(), "rrf"), (RelativeScore(0.3), "relative_score")],
)
def test_fusion_choices(fusion: object, method: str) -> None:
    request = search(vector=[1], text="x", fusion=fusion)
    assert request.fusion.WhichOneof("method") == method


def test_relative_score_alpha() -> None:
    assert search(text="x", fusion=RelativeScore(alpha=0.3)).fusion.relative_score.alpha == pytest.approx(0.3)
    assert not search(text="x", fusion="relative_score").fusion.relative_score.HasField("alpha")


def test_bad_fusion_and_include() -> None:
    with pytest.raises(ValueError, match="unknown fusion"):
        search(text="x", fusion="max")
    with pytest.raises(ValueError, match="unknown include"):
        search(text="x", include=["txt"])


def test_empty_include_asks_for_ids_only() -> None:
    include = search(text="x", include=[]).include
    assert (include.text, include.metadata, include.vector) == (False, False, False)


def test_numpy_vectors() -> None:
    np = pytest.importorskip("numpy")
    request = search(vector=np.array([0.5, 1.5], dtype=np.float32))
    assert list(request.vector) == [0.5, 1.5]
    docs = list(
        _convert.columns_to_documents(["a", "b"], np.eye(2, dtype=np.float64), None, None)
    )
    assert [list(d.vector) for d in docs] == [[1.0, 0.0], [0.0, 1.0]]


def test_create_collection_request() -> None:
    request = _convert.create_collection_request("docs", 32, "l2", "simple", True, None)
    assert request.metric == collections_pb2.DISTANCE_METRIC_L2
    assert request.text_language == "simple" and request.multi_tenant and request.dimension == 32
    assert not request.HasField("index")
    assert not request.defer_index
    assert request.index_build == collections_pb2.INDEX_BUILD_UNSPECIFIED  # the server's default: automatic
    hnsw = _convert.create_collection_request("d", 3, "cosine", "english", False, HnswIndex(m=8))
    assert hnsw.index.hnsw.m == 8 and hnsw.index.hnsw.ef_construction == 0
    none = _convert.create_collection_request("d", 3, "inner_product", "english", False, "none")
    assert none.index.WhichOneof("kind") == "none"
    assert none.metric == collections_pb2.DISTANCE_METRIC_INNER_PRODUCT
    assert _convert.index_pb(NoIndex()) == none.index
    with pytest.raises(ValueError, match="unknown metric"):
        _convert.create_collection_request("d", 3, "dot", "english", False, None)


def test_create_collection_request_leaves_the_index_precision_to_the_server() -> None:
    request = _convert.create_collection_request("d", 3, "cosine", "english", False, HnswIndex(m=8))
    assert request.index.hnsw.precision == collections_pb2.INDEX_PRECISION_UNSPECIFIED
    named = _convert.create_collection_request("d", 3, "cosine", "english", False, "hnsw")
    assert named.index.hnsw.precision == collections_pb2.INDEX_PRECISION_UNSPECIFIED


@pytest.mark.parametrize(
    ("precision", "proto"),
    [
        ("half", collections_pb2.INDEX_PRECISION_HALF),
        ("single", collections_pb2.INDEX_PRECISION_SINGLE),
    ],
)
def test_create_collection_request_sets_the_index_precision(
    precision: IndexPrecision, proto: int
) -> None:
    index = HnswIndex(m=8, ef_construction=32, precision=precision)
    request = _convert.create_collection_request("d", 3, "cosine", "english", False, index)
    assert request.index.hnsw.precision == proto
    assert (request.index.hnsw.m, request.index.hnsw.ef_construction) == (8, 32)


def test_create_collection_request_refuses_an_unknown_index_precision() -> None:
    with pytest.raises(ValueError, match="unknown index precision 'double'"):
        _convert.index_pb(HnswIndex(precision="double"))  # type: ignore[arg-type]


def test_create_collection_request_can_defer_the_index() -> None:
    request = _convert.create_collection_request("docs", 8, "cosine", "english", False, HnswIndex(m=8), True)
    assert request.defer_index and request.index.hnsw.m == 8


@pytest.mark.parametrize(
    ("index_build", "proto"),
    [
        ("automatic", collections_pb2.INDEX_BUILD_AUTOMATIC),
        ("immediate", collections_pb2.INDEX_BUILD_IMMEDIATE),
        ("on_request", collections_pb2.INDEX_BUILD_ON_REQUEST),
    ],
)
def test_create_collection_request_sets_the_index_build(index_build: IndexBuild, proto: int) -> None:
    request = _convert.create_collection_request(
        "docs", 8, "cosine", "english", False, None, index_build=index_build
    )
    assert request.index_build == proto and not request.defer_index


def test_create_collection_request_leaves_defer_index_with_another_index_build_to_the_server() -> None:
    request = _convert.create_collection_request(
        "docs", 8, "cosine", "english", False, None, defer_index=True, index_build="immediate"
    )
    assert request.defer_index and request.index_build == collections_pb2.INDEX_BUILD_IMMEDIATE


def test_create_collection_request_refuses_an_unknown_index_build() -> None:
    with pytest.raises(ValueError, match="unknown index_build 'later'"):
        _convert.create_collection_request("docs", 8, "cosine", "english", False, None, index_build="later")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("index_build", "name"),
    [
        (collections_pb2.INDEX_BUILD_AUTOMATIC, "automatic"),
        (collections_pb2.INDEX_BUILD_IMMEDIATE, "immediate"),
        (collections_pb2.INDEX_BUILD_ON_REQUEST, "on_request"),
        (collections_pb2.INDEX_BUILD_UNSPECIFIED, "unspecified"),  # a server older than index builds
        (99, "unspecified"),  # a value newer than this client
    ],
)
def test_collection_info_names_the_index_build(index_build: int, name: str) -> None:
    info = _convert.collection_info(collections_pb2.Collection(name="docs", dimension=4, index_build=index_build))  # type: ignore[arg-type]
    assert info.index_build == name


@pytest.mark.parametrize(
    ("state", "name"),
    [
        (collections_pb2.INDEX_STATE_READY, "ready"),
        (collections_pb2.INDEX_STATE_DEFERRED, "deferred"),
        (collections_pb2.INDEX_STATE_BUILDING, "building"),
        (collections_pb2.INDEX_STATE_UNSPECIFIED, "unspecified"),
        (99, "unspecified"),  # a state newer than this client
    ],
)
def test_collection_info_names_the_index_state(state: int, name: str) -> None:
    info = _convert.collection_info(collections_pb2.Collection(name="docs", dimension=4, index_state=state))  # type: ignore[arg-type]
    assert info.index_state == name


@pytest.mark.parametrize(
    ("ranking", "name"),
    [
        (collections_pb2.KEYWORD_RANKING_BM25, "bm25"),
        (collections_pb2.KEYWORD_RANKING_TS_RANK, "ts_rank"),
        (collections_pb2.KEYWORD_RANKING_UNSPECIFIED, "unspecified"),
        (99, "unspecified"),  # a ranking newer than this client
    ],
)
def test_collection_info_names_the_keyword_ranking(ranking: int, name: str) -> None:
    info = _convert.collection_info(collections_pb2.Collection(name="docs", dimension=4, keyword_ranking=ranking))  # type: ignore[arg-type]
    assert info.keyword_ranking == name


def test_collection_info_conversion() -> None:
    created = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    info = _convert.collection_info(
        collections_pb2.Collection(
            name="docs",
            dimension=4,
            metric=collections_pb2.DISTANCE_METRIC_L2,
            index=collections_pb2.IndexSettings(hnsw=collections_pb2.HnswIndex(m=16, ef_construction=64)),
            text_language="english",
            create_time=created,
        )
    )
    assert info.metric == "l2" and info.index == HnswIndex(16, 64) and info.dimension == 4
    assert info.create_time == dt.datetime.fromtimestamp(1_700_000_000, dt.timezone.utc)


@pytest.mark.parametrize(
    ("proto", "precision"),
    [
        (collections_pb2.INDEX_PRECISION_HALF, "half"),
        (collections_pb2.INDEX_PRECISION_SINGLE, "single"),
        (collections_pb2.INDEX_PRECISION_UNSPECIFIED, None),  # a server older than precisions
        (99, None),  # a precision newer than this client
    ],
)
def test_collection_info_reads_the_index_precision(
    proto: int, precision: IndexPrecision | None
) -> None:
    hnsw = collections_pb2.HnswIndex(m=16, ef_construction=64, precision=proto)  # type: ignore[arg-type]
    info = _convert.collection_info(
        collections_pb2.Collection(
            name="docs", dimension=4, index=collections_pb2.IndexSettings(hnsw=hnsw)
        )
    )
    assert info.index == HnswIndex(16, 64, precision)


def test_metadata_round_trip() -> None:
    metadata = {
        "year": 2024,
        "ratio": 0.5,
        "big": 2.0**60,
        "lang": "en",
        "ok": True,
        "none": None,
        "tags": ("a", "b"),
        "nested": {"x": [1, {"y": False}]},
        "when": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
    }
    back = _convert.from_struct(_convert.to_struct(metadata))
    assert back == {
        "year": 2024,
        "ratio": 0.5,
        "big": 2.0**60,
        "lang": "en",
        "ok": True,
        "none": None,
        "tags": ["a", "b"],
        "nested": {"x": [1, {"y": False}]},
        "when": "2024-05-01T12:00:00Z",
    }
    assert isinstance(back["year"], int) and isinstance(back["big"], float)


def test_metadata_rejects_non_json() -> None:
    with pytest.raises(TypeError, match="JSON-like"):
        _convert.to_struct({"x": object()})
    with pytest.raises(TypeError, match="keys must be strings"):
        _convert.to_struct({"x": {1: "a"}})


def test_columns_must_have_equal_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        list(_convert.columns_to_documents(["a", "b"], [[1.0]], None, None))
    with pytest.raises(ValueError, match="same length"):
        list(_convert.columns_to_documents(["a"], [[1.0]], ["t", "u"], None))
    # Iterators have no length: checked while zipping.
    with pytest.raises(ValueError):
        list(_convert.columns_to_documents(iter(["a", "b"]), iter([[1.0]]), None, None))


def test_documents_from_columns_and_dicts() -> None:
    (doc,) = _convert.columns_to_documents(["a"], [[1, 2]], ["hello"], [{"k": "v"}])
    assert doc.id == "a" and list(doc.vector) == [1.0, 2.0] and doc.text == "hello"
    assert _convert.from_struct(doc.metadata) == {"k": "v"}
    (plain,) = _convert.columns_to_documents(["b"], [[1]], None, None)
    assert plain.text == "" and not plain.HasField("metadata")
    (from_dict,) = _convert.dicts_to_documents([{"id": "c", "vector": [3], "tenant": "t1"}])
    assert from_dict.tenant == "t1"
    with pytest.raises(ValueError, match="#1 has no 'vector'"):
        list(_convert.dicts_to_documents([{"id": "a", "vector": [1]}, {"id": "b"}]))
    with pytest.raises(TypeError, match="ids are strings"):
        list(_convert.columns_to_documents([1], [[1.0]], None, None))


def sizes(batches: Iterable[list[documents_pb2.Document]]) -> list[int]:
    return [len(b) for b in batches]


def test_batched_by_count() -> None:
    docs = [documents_pb2.Document(id=str(i)) for i in range(7)]
    assert sizes(_convert.batched(docs, 3, 1 << 20)) == [3, 3, 1]
    assert sizes(_convert.batched(docs, 1, 1 << 20)) == [1] * 7
    assert list(_convert.batched([], 3, 1 << 20)) == []
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        _convert.batched(docs, 0, 1 << 20)
    with pytest.raises(ValueError, match="batch_bytes must be at least 1"):
        _convert.batched(docs, 3, 0)


def test_batched_by_bytes() -> None:
    # id "dNN" (5 bytes) + 4 floats (18 bytes) = 23 encoded bytes, + 8 per document.
    docs = [documents_pb2.Document(id=f"d{i:02d}", vector=[1.0] * 4) for i in range(10)]
    assert _convert.document_size(docs[0]) == docs[0].ByteSize() + 8 == 31
    assert sizes(_convert.batched(docs, 100, 31 * 3)) == [3, 3, 3, 1]  # exactly full
    assert sizes(_convert.batched(docs, 100, 31 * 3 - 1)) == [2, 2, 2, 2, 2]
    assert sizes(_convert.batched(docs, 2, 31 * 3)) == [2] * 5  # the count binds first
    # A document larger than batch_bytes travels alone.
    big = documents_pb2.Document(id="big", vector=[1.0] * 100)
    mixed = docs[:2] + [big] + docs[2:4]
    assert [[d.id for d in b] for b in _convert.batched(mixed, 100, 100)] == [
        ["d00", "d01"], ["big"], ["d02", "d03"]
    ]


def test_batched_is_lazy() -> None:
    pulled = 0

    def source() -> Iterator[documents_pb2.Document]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield documents_pb2.Document(id=str(i))

    batches = _convert.batched(source(), 10, 1 << 20)
    assert pulled == 0
    next(batches)
    assert pulled == 10  # a full batch is cut without reading ahead


def test_async_batching_cuts_the_same_batches() -> None:
    rng = random.Random(5)
    docs = [
        documents_pb2.Document(id=f"d{i}", vector=[0.5] * rng.randint(1, 60), text="x" * rng.randint(0, 300))
        for i in range(500)
    ]

    async def source() -> AsyncIterator[documents_pb2.Document]:
        for doc in docs:
            yield doc

    async def cut() -> list[list[str]]:
        # The async driver reads documents one by one, as the sync one does.
        session = UpsertSession("docs", None, None, max_in_flight=1)
        cutter = _convert.BatchCutter(37, 4000)
        reader = source()
        batches = []
        while (batch := await _next_batch(session, reader, cutter)) is not None:
            batches.append([d.id for d in batch])
        return batches

    expected = [[d.id for d in b] for b in _convert.batched(docs, 37, 4000)]
    assert len(expected) > 500 * 2 // 37  # the byte limit cut some batches short
    assert asyncio.run(cut()) == expected


def test_upsert_request() -> None:
    docs = _convert.columns_to_documents(["a", "b"], [[1, 2], [3, 4]], ["x", None], None)
    request = _convert.upsert_request("docs", "t1", docs)
    assert (request.collection, request.tenant) == ("docs", "t1")
    assert [(d.id, list(d.vector), d.text) for d in request.documents] == [
        ("a", [1.0, 2.0], "x"),
        ("b", [3.0, 4.0], ""),
    ]
    assert _convert.upsert_request("docs", None, []).tenant == ""


def test_delete_request_needs_one_selector() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _convert.delete_request("docs", None, None, None)
    with pytest.raises(ValueError, match="exactly one"):
        _convert.delete_request("docs", None, ["a"], {"a": 1})
    assert list(_convert.delete_request("docs", None, ["a"], None).ids.ids) == ["a"]
    assert _convert.delete_request("docs", "t", None, {"a": 1}).filter.field.key == "a"
    with pytest.raises(TypeError, match="not a string"):
        _convert.delete_request("docs", None, "abc", None)  # type: ignore[arg-type]


def update(
    ids: Any = None,
    filter: Any = None,
    *,
    text: str | None = None,
    set_metadata: Any = None,
    replace_metadata: bool = False,
    delete_metadata_keys: Any = (),
) -> documents_pb2.UpdateRequest:
    """An UpdateRequest for collection "docs", tenant "t1" (arguments
    untyped: some tests pass what the types forbid)."""
    return _convert.update_request(
        "docs",
        "t1",
        ids,
        filter,
        text=text,
        set_metadata=set_metadata,
        replace_metadata=replace_metadata,
        delete_metadata_keys=delete_metadata_keys,
    )


def test_update_request_leaves_unnamed_parts_unset() -> None:
    request = update(["a", "b"], set_metadata={"year": 2024, "at": dt.date(2024, 5, 1)})
    assert (request.collection, request.tenant) == ("docs", "t1")
    assert request.WhichOneof("selector") == "ids" and list(request.ids.ids) == ["a", "b"]
    assert not request.HasField("text")  # unset keeps each document's text
    assert dict(request.set_metadata) == {"year": 2024, "at": "2024-05-01T00:00:00Z"}
    assert not request.replace_metadata and list(request.delete_metadata_keys) == []


def test_update_request_sends_empty_text_and_metadata_as_set() -> None:
    # `text` is proto3 optional and `set_metadata` a message: "" and {} are
    # values (clear the text, replace with an empty object), not "no change".
    request = update(filter={"lang": "de"}, text="", set_metadata={}, replace_metadata=True)
    assert request.WhichOneof("selector") == "filter" and request.filter.field.key == "lang"
    assert request.HasField("text") and request.text == ""
    assert request.HasField("set_metadata") and dict(request.set_metadata) == {}
    assert request.replace_metadata


def test_update_request_deletes_keys_and_sends_empty_ids_as_chosen() -> None:
    request = update([], delete_metadata_keys=iter(["draft", "old"]))
    assert list(request.delete_metadata_keys) == ["draft", "old"]
    assert not request.HasField("set_metadata")
    # An empty id list is the server's to refuse (field `ids.ids`), not "no selector".
    assert request.WhichOneof("selector") == "ids" and list(request.ids.ids) == []


def test_update_request_refuses_what_the_client_can_tell() -> None:
    with pytest.raises(ValueError, match="update needs exactly one of ids= and filter="):
        update(text="x")
    with pytest.raises(ValueError, match="exactly one"):
        update(["a"], {"a": 1}, text="x")
    with pytest.raises(TypeError, match="ids must be a list of strings"):
        update("abc", text="x")
    with pytest.raises(TypeError, match="delete_metadata_keys must be a list of strings"):
        update(["a"], delete_metadata_keys="draft")
    with pytest.raises(TypeError, match="metadata must be a dict"):
        update(["a"], set_metadata=[("k", 1)])


def test_hit_conversion() -> None:
    pb = search_pb2.SearchHit(
        id="a", score=0.5, vector_leg=search_pb2.LegResult(rank=3, score=0.75), text="t"
    )
    pb.metadata.update({"n": 1})
    hit = _convert.hit_from_pb(pb)
    assert (hit.vector_rank, hit.vector_score) == (3, 0.75)
    assert (hit.text_rank, hit.text_score) == (None, None)
    assert hit.metadata == {"n": 1} and hit.text == "t" and hit.vector is None and hit.tenant is None


def test_struct_value_kinds() -> None:
    value = struct_pb2.Struct()
    value.update({"inf": float("inf")})
    assert _convert.from_struct(value) == {"inf": float("inf")}


@pytest.mark.parametrize(
    ("target", "address", "tls"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("HTTP://db.example:443/", "db.example:443", False),
        ("https://fathom.example:443", "fathom.example:443", True),
        ("dns:///fathom.internal:50051", "dns:///fathom.internal:50051", False),
        ("http://host:1/path", None, None),
    ],
)
def test_parse_target(target: str, address: str | None, tls: bool | None) -> None:
    if address is None:
        with pytest.raises(ValueError):
            parse_target(target)
    else:
        assert parse_target(target) == (address, tls)
