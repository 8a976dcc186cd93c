"""Unit tests of the filter dict -> fathom.v1.Filter translation (no server)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf import json_format

from fathom.filters import FilterError, to_filter
from fathom.v1 import filter_pb2


def as_dict(spec: Any) -> dict[str, Any]:
    """The translated filter as a dict, with proto field names."""
    return json_format.MessageToDict(to_filter(spec), preserving_proto_field_name=True)


def field(key: str, **condition: Any) -> dict[str, Any]:
    return {"field": {"key": key, **condition}}


def test_bare_value_means_eq() -> None:
    assert as_dict({"lang": "en"}) == field("lang", eq={"string_value": "en"})


def test_scalar_types() -> None:
    assert as_dict({"n": 3}) == field("n", eq={"number_value": 3.0})
    assert as_dict({"x": 2.5}) == field("x", eq={"number_value": 2.5})
    assert as_dict({"ok": True}) == field("ok", eq={"bool_value": True})
    assert as_dict({"ok": False}) == field("ok", eq={"bool_value": False})


def test_bool_is_not_a_number() -> None:
    msg = to_filter({"flag": True})
    assert msg.field.eq.WhichOneof("kind") == "bool_value"


def test_every_field_operator() -> None:
    assert as_dict({"a": {"$eq": "x"}}) == field("a", eq={"string_value": "x"})
    assert as_dict({"a": {"$ne": "x"}}) == field("a", ne={"string_value": "x"})
    assert as_dict({"a": {"$contains": "x"}}) == field("a", contains={"string_value": "x"})
    assert as_dict({"a": {"$in": ["x", 1, True]}}) == field(
        "a", **{"in": {"values": [{"string_value": "x"}, {"number_value": 1.0}, {"bool_value": True}]}}
    )
    assert as_dict({"a": {"$nin": ["x"]}}) == field("a", not_in={"values": [{"string_value": "x"}]})
    assert as_dict({"a": {"$gt": 1}}) == field("a", gt={"number": 1.0})
    assert as_dict({"a": {"$gte": 1.5}}) == field("a", gte={"number": 1.5})
    assert as_dict({"a": {"$lt": -2}}) == field("a", lt={"number": -2.0})
    assert as_dict({"a": {"$lte": 0}}) == field("a", lte={"number": 0.0})
    assert as_dict({"a": {"$exists": True}}) == field("a", exists={})


def test_exists_false_is_not_exists() -> None:
    assert as_dict({"a": {"$exists": False}}) == {"not": field("a", exists={})}


def test_several_keys_are_anded_in_order() -> None:
    assert as_dict({"year": {"$gte": 2020}, "lang": "en"}) == {
        "all": {
            "filters": [
                field("year", gte={"number": 2020.0}),
                field("lang", eq={"string_value": "en"}),
            ]
        }
    }


def test_several_operators_on_one_field_are_anded() -> None:
    assert as_dict({"year": {"$gte": 2020, "$lt": 2024}}) == {
        "all": {
            "filters": [
                field("year", gte={"number": 2020.0}),
                field("year", lt={"number": 2024.0}),
            ]
        }
    }


def test_or_and_not() -> None:
    spec = {
        "$or": [{"lang": "en"}, {"lang": "de"}],
        "$and": [{"a": 1}, {"b": {"$ne": 2}}],
        "$not": {"tags": {"$contains": "draft"}},
    }
    assert as_dict(spec) == {
        "all": {
            "filters": [
                {
                    "any": {
                        "filters": [
                            field("lang", eq={"string_value": "en"}),
                            field("lang", eq={"string_value": "de"}),
                        ]
                    }
                },
                {
                    "all": {
                        "filters": [
                            field("a", eq={"number_value": 1.0}),
                            field("b", ne={"number_value": 2.0}),
                        ]
                    }
                },
                {"not": field("tags", contains={"string_value": "draft"})},
            ]
        }
    }


def test_empty_dict_and_empty_lists() -> None:
    # An empty `all` matches everything, an empty `any` nothing (proto semantics).
    assert to_filter({}).WhichOneof("node") == "all"
    assert len(to_filter({}).all.filters) == 0
    assert to_filter({"$or": []}).WhichOneof("node") == "any"
    assert to_filter({"$and": []}).WhichOneof("node") == "all"


def test_nested_logic() -> None:
    spec = {"$or": [{"$and": [{"a": 1}, {"$not": {"b": 2}}]}, {"c": {"$exists": True}}]}
    msg = to_filter(spec)
    inner = msg.any.filters[0].all.filters[1]
    assert inner.WhichOneof("node") == "not"
    assert getattr(inner, "not").field.key == "b"
    assert msg.any.filters[1].field.WhichOneof("condition") == "exists"


def test_dotted_keys_pass_through() -> None:
    assert to_filter({"author.name": "Ann"}).field.key == "author.name"


def test_ids() -> None:
    assert as_dict({"$id": {"$in": ["a", "b"]}}) == {"ids": {"ids": ["a", "b"]}}
    assert as_dict({"$id": "a"}) == {"ids": {"ids": ["a"]}}
    assert as_dict({"$id": {"$eq": "a"}}) == {"ids": {"ids": ["a"]}}
    assert as_dict({"$id": {"$nin": ["a"]}}) == {"not": {"ids": {"ids": ["a"]}}}
    assert as_dict({"$id": {"$ne": "a"}}) == {"not": {"ids": {"ids": ["a"]}}}


def test_ids_combined_with_fields() -> None:
    msg = to_filter({"$id": {"$in": ["a"]}, "lang": "en"})
    assert [f.WhichOneof("node") for f in msg.all.filters] == ["ids", "field"]


def test_datetime_range_becomes_timestamp_bound() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    msg = to_filter({"published": {"$gte": when}})
    bound = msg.field.gte
    assert bound.WhichOneof("value") == "timestamp"
    assert bound.timestamp.ToDatetime(tzinfo=dt.timezone.utc) == when


def test_naive_datetime_and_date_are_utc() -> None:
    naive = to_filter({"t": {"$lt": dt.datetime(2024, 1, 2, 3, 4, 5)}}).field.lt.timestamp
    assert naive.seconds == int(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp())
    day = to_filter({"t": {"$gt": dt.date(2024, 1, 2)}}).field.gt.timestamp
    assert day.seconds == int(dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc).timestamp())


def test_aware_datetime_is_converted_to_utc() -> None:
    cet = dt.timezone(dt.timedelta(hours=2))
    stamp = to_filter({"t": {"$gt": dt.datetime(2024, 5, 1, 14, 0, tzinfo=cet)}}).field.gt.timestamp
    assert stamp.ToDatetime() == dt.datetime(2024, 5, 1, 12, 0)


def test_datetime_equality_uses_rfc3339_string() -> None:
    def eq(when: dt.datetime) -> str:
        return to_filter({"t": when}).field.eq.string_value

    utc = dt.timezone.utc
    assert eq(dt.datetime(2024, 5, 1, 12, 0, 0, 500, tzinfo=utc)) == "2024-05-01T12:00:00.000500Z"
    assert eq(dt.datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=utc)) == "2024-05-01T12:00:00.250Z"
    assert eq(dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=utc)) == "2024-05-01T12:00:00Z"


def test_proto_passthrough_is_a_copy() -> None:
    original = filter_pb2.Filter(ids=filter_pb2.IdCondition(ids=["a"]))
    copy = to_filter(original)
    assert copy == original and copy is not original


def test_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert as_dict({"n": {"$gt": np.int64(3)}}) == field("n", gt={"number": 3.0})
    assert as_dict({"n": np.float32(0.5)}) == field("n", eq={"number_value": 0.5})
    assert as_dict({"b": np.bool_(True)}) == field("b", eq={"bool_value": True})


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"a": {"$gtee": 1}}, ".a.$gtee", "unknown operator"),
        ({"$xor": []}, ".$xor", "unknown logical operator"),
        ({"a": [1, 2]}, ".a", "$in"),
        ({"a": {"b": 1}}, ".a", "dotted key"),
        ({"a": {"$gt": "2024"}}, ".a.$gt", "number or a datetime"),
        ({"a": {"$gt": True}}, ".a.$gt", "number or a datetime"),
        ({"a": {"$in": "abc"}}, ".a.$in", "expected a list"),
        ({"a": {"$in": [None]}}, ".a.$in[0]", "string, number or bool"),
        ({"a": None}, ".a", "string, number or bool"),
        ({"a": {"$exists": 1}}, ".a.$exists", "true or false"),
        ({"$or": {"a": 1}}, ".$or", "list of filters"),
        ({"$or": [{"a": 1}, "b"]}, ".$or[1]", "expected a dict"),
        ({"$not": [{"a": 1}]}, ".$not", "expected a dict"),
        ({"$id": 5}, ".$id", "strings"),
        ({"$id": {"$gt": "a"}}, ".$id.$gt", "only $eq"),
        ({"$id": {"$in": ["a", 2]}}, ".$id.$in[1]", "strings"),
        ({"": 1}, "", "non-empty"),
        ("lang", "", "expected a dict"),
    ],
)
def test_invalid_filters_name_their_path(spec: Any, path: str, fragment: str) -> None:
    with pytest.raises(FilterError) as caught:
        to_filter(spec)
    assert caught.value.path == path
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
