"""Translation of MongoDB/Chroma-style filter dicts into ``fathom.v1.Filter``.

A filter is a dict. Each key is either a metadata field (a top-level key or a
dotted path such as ``"author.name"``) or one of the logical keys
``$and``, ``$or``, ``$not`` and ``$id``::

    {"year": {"$gte": 2020}, "lang": "en"}            # year >= 2020 AND lang == "en"
    {"$or": [{"lang": "en"}, {"lang": "de"}]}          # any of
    {"$and": [{"a": 1}, {"b": {"$ne": 2}}]}            # all of
    {"$not": {"tags": {"$contains": "draft"}}}         # negation
    {"$id": {"$in": ["doc-1", "doc-2"]}}               # by document id
    {"published": {"$gt": datetime(2024, 5, 1)}}      # timestamp bound

Rules, one-to-one with the proto ``Filter``:

* several keys in one dict are ANDed (``all``); a single key maps to its node
  directly; ``{}`` is an empty ``all``, which matches everything;
* a bare value means ``$eq``; several operators on one field are ANDed;
* field operators: ``$eq $ne $contains`` take a scalar (str, bool, int,
  float; a datetime is sent as its RFC 3339 UTC string), ``$in $nin`` a list
  of scalars, ``$gt $gte $lt $lte`` a number or a date/datetime (which becomes
  a Timestamp bound; naive datetimes are UTC), ``$exists`` a bool
  (``False`` becomes ``$not`` of ``exists``);
* ``$id`` takes a string, or ``$eq``/``$in``/``$ne``/``$nin``
  (``$ne``/``$nin`` become ``$not`` of an id condition).

Anything else raises :class:`FilterError` naming the offending path. Note
the server's semantics for missing fields: a condition on a field matches
only documents that have the field (``$ne`` and ``$nin`` included).
"""

from __future__ import annotations

import datetime as _dt
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from fathom._time import rfc3339, to_timestamp
from fathom.v1 import filter_pb2

__all__ = ["FilterError", "FilterSpec", "to_filter", "to_scalar", "to_bound"]

FilterSpec = Mapping[str, Any]
"""A filter as a dict in the ``$gte`` syntax described in this module."""

_LOGICAL = ("$and", "$or", "$not", "$id")
_SCALAR_OPS = {"$eq": "eq", "$ne": "ne", "$contains": "contains"}
_LIST_OPS = {"$in": "in", "$nin": "not_in"}
_BOUND_OPS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


class FilterError(ValueError):
    """A filter dict that cannot be translated; the message names its path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"filter{path}: {problem}" if path else f"filter: {problem}")


def to_filter(spec: FilterSpec | filter_pb2.Filter) -> filter_pb2.Filter:
    """Translates a filter dict into a ``fathom.v1.Filter`` message.

    A ``Filter`` message is returned unchanged (as a copy), so callers can
    also pass hand-built protos.

    Raises:
        FilterError: the dict is not a valid filter.
    """
    if isinstance(spec, filter_pb2.Filter):
        copy = filter_pb2.Filter()
        copy.CopyFrom(spec)
        return copy
    return _document(spec, "")


def to_scalar(value: Any, path: str = "") -> filter_pb2.Scalar:
    """Converts a Python value into a ``Scalar`` (string, number or bool)."""
    value = _unwrap(value)
    if isinstance(value, bool):
        return filter_pb2.Scalar(bool_value=value)
    if isinstance(value, str):
        return filter_pb2.Scalar(string_value=value)
    if isinstance(value, numbers.Real):
        return filter_pb2.Scalar(number_value=float(value))
    if isinstance(value, _dt.date):
        return filter_pb2.Scalar(string_value=rfc3339(value))
    raise FilterError(path, f"expected a string, number or bool, got {_kind(value)}")


def to_bound(value: Any, path: str = "") -> filter_pb2.Bound:
    """Converts a number or a date/datetime into a range ``Bound``."""
    value = _unwrap(value)
    if isinstance(value, _dt.date):
        return filter_pb2.Bound(timestamp=to_timestamp(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return filter_pb2.Bound(number=float(value))
    raise FilterError(
        path, f"range operators take a number or a datetime, got {_kind(value)}"
    )


# -- tree walk ---------------------------------------------------------------


def _document(spec: Any, path: str) -> filter_pb2.Filter:
    """A dict of keys, ANDed."""
    if not isinstance(spec, Mapping):
        raise FilterError(path, f"expected a dict, got {_kind(spec)}")
    nodes = [_entry(key, value, path) for key, value in spec.items()]
    return nodes[0] if len(nodes) == 1 else _all(nodes)


def _entry(key: Any, value: Any, path: str) -> filter_pb2.Filter:
    if not isinstance(key, str) or not key:
        raise FilterError(path, f"keys must be non-empty strings, got {key!r}")
    here = f"{path}.{key}"
    if key == "$and":
        return _all(_operands(value, here))
    if key == "$or":
        return filter_pb2.Filter(any=filter_pb2.FilterList(filters=_operands(value, here)))
    if key == "$not":
        return _not(_document(value, here))
    if key == "$id":
        return _id_condition(value, here)
    if key.startswith("$"):
        raise FilterError(
            here, f"unknown logical operator {key!r} (expected one of {', '.join(_LOGICAL)})"
        )
    return _field(key, value, here)


def _operands(value: Any, path: str) -> list[filter_pb2.Filter]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise FilterError(path, f"expected a list of filters, got {_kind(value)}")
    return [_document(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _field(key: str, value: Any, path: str) -> filter_pb2.Filter:
    if isinstance(value, Mapping):
        ops = list(value.items())
        if not ops or not all(isinstance(op, str) and op.startswith("$") for op, _ in ops):
            raise FilterError(
                path,
                "a field takes a value or a dict of $operators; "
                'to test a nested field use a dotted key such as "author.name"',
            )
        nodes = [_condition(key, op, operand, f"{path}.{op}") for op, operand in ops]
        return nodes[0] if len(nodes) == 1 else _all(nodes)
    if isinstance(value, (list, tuple, set, frozenset)):
        raise FilterError(
            path, "a list is not a value: use {'$in': [...]} or {'$contains': value}"
        )
    return _condition(key, "$eq", value, path)


def _condition(key: str, op: str, operand: Any, path: str) -> filter_pb2.Filter:
    condition = filter_pb2.FieldCondition(key=key)
    if op in _SCALAR_OPS:
        getattr(condition, _SCALAR_OPS[op]).CopyFrom(to_scalar(operand, path))
    elif op in _LIST_OPS:
        values = [to_scalar(item, f"{path}[{i}]") for i, item in enumerate(_list(operand, path))]
        getattr(condition, _LIST_OPS[op]).values.extend(values)
    elif op in _BOUND_OPS:
        getattr(condition, _BOUND_OPS[op]).CopyFrom(to_bound(operand, path))
    elif op == "$exists":
        if not isinstance(operand, bool):
            raise FilterError(path, f"$exists takes true or false, got {_kind(operand)}")
        condition.exists.SetInParent()
        if not operand:
            return _not(filter_pb2.Filter(field=condition))
    else:
        known = [*_SCALAR_OPS, *_LIST_OPS, *_BOUND_OPS, "$exists"]
        raise FilterError(path, f"unknown operator {op!r} (expected one of {', '.join(known)})")
    return filter_pb2.Filter(field=condition)


def _id_condition(value: Any, path: str) -> filter_pb2.Filter:
    if not isinstance(value, Mapping):
        return _ids([_id(value, path)])
    if not value:
        raise FilterError(path, "$id needs an operator: $eq, $in, $ne or $nin")
    builders: dict[str, Callable[[Any, str], filter_pb2.Filter]] = {
        "$eq": lambda v, p: _ids([_id(v, p)]),
        "$in": lambda v, p: _ids([_id(x, f"{p}[{i}]") for i, x in enumerate(_list(v, p))]),
        "$ne": lambda v, p: _not(_ids([_id(v, p)])),
        "$nin": lambda v, p: _not(
            _ids([_id(x, f"{p}[{i}]") for i, x in enumerate(_list(v, p))])
        ),
    }
    nodes = []
    for op, operand in value.items():
        if op not in builders:
            raise FilterError(f"{path}.{op}", "$id takes only $eq, $in, $ne and $nin")
        nodes.append(builders[op](operand, f"{path}.{op}"))
    return nodes[0] if len(nodes) == 1 else _all(nodes)


# -- small builders ------------------------------------------------------------


def _all(nodes: list[filter_pb2.Filter]) -> filter_pb2.Filter:
    return filter_pb2.Filter(all=filter_pb2.FilterList(filters=nodes))


def _not(node: filter_pb2.Filter) -> filter_pb2.Filter:
    negation = filter_pb2.Filter()
    getattr(negation, "not").CopyFrom(node)  # `not` is a Python keyword
    return negation


def _ids(ids: list[str]) -> filter_pb2.Filter:
    return filter_pb2.Filter(ids=filter_pb2.IdCondition(ids=ids))


def _id(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise FilterError(path, f"document ids are strings, got {_kind(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(
        value, (list, tuple, set, frozenset)
    ):
        raise FilterError(path, f"expected a list, got {_kind(value)}")
    return list(value)


def _unwrap(value: Any) -> Any:
    """Turns numpy scalars (anything with ``.item()``) into Python values."""
    if not isinstance(value, (str, bytes, bool, int, float, _dt.date)) and hasattr(
        value, "item"
    ):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__
