import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Filter(_message.Message):
    __slots__ = ("all", "any", "field", "ids")
    ALL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    all: FilterList
    any: FilterList
    field: FieldCondition
    ids: IdCondition
    def __init__(self, all: _Optional[_Union[FilterList, _Mapping]] = ..., any: _Optional[_Union[FilterList, _Mapping]] = ..., field: _Optional[_Union[FieldCondition, _Mapping]] = ..., ids: _Optional[_Union[IdCondition, _Mapping]] = ..., **kwargs) -> None: ...

class FilterList(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class IdCondition(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FieldCondition(_message.Message):
    __slots__ = ("key", "eq", "ne", "not_in", "gt", "gte", "lt", "lte", "exists", "contains")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EQ_FIELD_NUMBER: _ClassVar[int]
    NE_FIELD_NUMBER: _ClassVar[int]
    IN_FIELD_NUMBER: _ClassVar[int]
    NOT_IN_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    key: str
    eq: Scalar
    ne: Scalar
    not_in: ScalarList
    gt: Bound
    gte: Bound
    lt: Bound
    lte: Bound
    exists: Exists
    contains: Scalar
    def __init__(self, key: _Optional[str] = ..., eq: _Optional[_Union[Scalar, _Mapping]] = ..., ne: _Optional[_Union[Scalar, _Mapping]] = ..., not_in: _Optional[_Union[ScalarList, _Mapping]] = ..., gt: _Optional[_Union[Bound, _Mapping]] = ..., gte: _Optional[_Union[Bound, _Mapping]] = ..., lt: _Optional[_Union[Bound, _Mapping]] = ..., lte: _Optional[_Union[Bound, _Mapping]] = ..., exists: _Optional[_Union[Exists, _Mapping]] = ..., contains: _Optional[_Union[Scalar, _Mapping]] = ..., **kwargs) -> None: ...

class Scalar(_message.Message):
    __slots__ = ("string_value", "number_value", "bool_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    number_value: float
    bool_value: bool
    def __init__(self, string_value: _Optional[str] = ..., number_value: _Optional[float] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class ScalarList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Scalar]
    def __init__(self, values: _Optional[_Iterable[_Union[Scalar, _Mapping]]] = ...) -> None: ...

class Bound(_message.Message):
    __slots__ = ("number", "timestamp")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    number: float
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Exists(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
