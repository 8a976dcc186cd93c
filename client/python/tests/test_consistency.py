"""Unit tests of read-your-writes: the newest token kept, and the reads it goes into (no server)."""

from __future__ import annotations

from fathom._consistency import ReadYourWrites
from fathom.v1 import collections_pb2, documents_pb2, search_pb2


def test_the_newest_token_is_kept_whatever_order_acknowledgements_come_in() -> None:
    session = ReadYourWrites()
    assert session.token is None
    for token in ["0/2000", "1/0", "0/FFFFFFFF", ""]:
        session.observe(token)
    assert session.token == "1/0"
    session.observe_response(documents_pb2.UpsertResponse(consistency_token="1/10"))
    session.observe_response(collections_pb2.ListCollectionsResponse())
    assert session.token == "1/10"


def test_reads_that_choose_no_consistency_carry_the_token_and_others_are_left_alone() -> None:
    session = ReadYourWrites()
    get = documents_pb2.GetRequest(collection="docs", ids=["a"])
    session.fill(get)
    assert not get.HasField("consistency"), "no write yet: eventual"
    session.observe("0/16B3748")
    session.fill(get)
    assert get.consistency.after_token == "0/16B3748"
    strong = search_pb2.SearchRequest(
        collection="docs", consistency=documents_pb2.ReadConsistency(strong=True)
    )
    session.fill(strong)
    assert strong.consistency.WhichOneof("choice") == "strong"
    upsert = documents_pb2.UpsertRequest(collection="docs")
    session.fill(upsert)
    assert upsert == documents_pb2.UpsertRequest(collection="docs")


def test_reads_carry_no_token_when_reading_your_writes_is_off() -> None:
    session = ReadYourWrites(enabled=False)
    session.observe("0/1")
    count = documents_pb2.CountRequest(collection="docs")
    session.fill(count)
    assert not count.HasField("consistency")
    assert session.token == "0/1"
