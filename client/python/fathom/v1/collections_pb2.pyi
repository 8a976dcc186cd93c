import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeywordRanking(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEYWORD_RANKING_UNSPECIFIED: _ClassVar[KeywordRanking]
    KEYWORD_RANKING_BM25: _ClassVar[KeywordRanking]
    KEYWORD_RANKING_TS_RANK: _ClassVar[KeywordRanking]

class IndexState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_STATE_UNSPECIFIED: _ClassVar[IndexState]
    INDEX_STATE_READY: _ClassVar[IndexState]
    INDEX_STATE_DEFERRED: _ClassVar[IndexState]
    INDEX_STATE_BUILDING: _ClassVar[IndexState]

class IndexBuild(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_BUILD_UNSPECIFIED: _ClassVar[IndexBuild]
    INDEX_BUILD_AUTOMATIC: _ClassVar[IndexBuild]
    INDEX_BUILD_IMMEDIATE: _ClassVar[IndexBuild]
    INDEX_BUILD_ON_REQUEST: _ClassVar[IndexBuild]

class DistanceMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTANCE_METRIC_UNSPECIFIED: _ClassVar[DistanceMetric]
    DISTANCE_METRIC_COSINE: _ClassVar[DistanceMetric]
    DISTANCE_METRIC_L2: _ClassVar[DistanceMetric]
    DISTANCE_METRIC_INNER_PRODUCT: _ClassVar[DistanceMetric]

class IndexPrecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_PRECISION_UNSPECIFIED: _ClassVar[IndexPrecision]
    INDEX_PRECISION_HALF: _ClassVar[IndexPrecision]
    INDEX_PRECISION_SINGLE: _ClassVar[IndexPrecision]
KEYWORD_RANKING_UNSPECIFIED: KeywordRanking
KEYWORD_RANKING_BM25: KeywordRanking
KEYWORD_RANKING_TS_RANK: KeywordRanking
INDEX_STATE_UNSPECIFIED: IndexState
INDEX_STATE_READY: IndexState
INDEX_STATE_DEFERRED: IndexState
INDEX_STATE_BUILDING: IndexState
INDEX_BUILD_UNSPECIFIED: IndexBuild
INDEX_BUILD_AUTOMATIC: IndexBuild
INDEX_BUILD_IMMEDIATE: IndexBuild
INDEX_BUILD_ON_REQUEST: IndexBuild
DISTANCE_METRIC_UNSPECIFIED: DistanceMetric
DISTANCE_METRIC_COSINE: DistanceMetric
DISTANCE_METRIC_L2: DistanceMetric
DISTANCE_METRIC_INNER_PRODUCT: DistanceMetric
INDEX_PRECISION_UNSPECIFIED: IndexPrecision
INDEX_PRECISION_HALF: IndexPrecision
INDEX_PRECISION_SINGLE: IndexPrecision

class HnswIndex(_message.Message):
    __slots__ = ("m", "ef_construction", "precision")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    precision: IndexPrecision
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ..., precision: _Optional[_Union[IndexPrecision, str]] = ...) -> None: ...

class NoIndex(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IndexSettings(_message.Message):
    __slots__ = ("hnsw", "none")
    HNSW_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    hnsw: HnswIndex
    none: NoIndex
    def __init__(self, hnsw: _Optional[_Union[HnswIndex, _Mapping]] = ..., none: _Optional[_Union[NoIndex, _Mapping]] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "dimension", "metric", "index", "text_language", "multi_tenant", "create_time", "index_state", "keyword_ranking", "index_build")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MULTI_TENANT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    INDEX_STATE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_RANKING_FIELD_NUMBER: _ClassVar[int]
    INDEX_BUILD_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    metric: DistanceMetric
    index: IndexSettings
    text_language: str
    multi_tenant: bool
    create_time: _timestamp_pb2.Timestamp
    index_state: IndexState
    keyword_ranking: KeywordRanking
    index_build: IndexBuild
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., metric: _Optional[_Union[DistanceMetric, str]] = ..., index: _Optional[_Union[IndexSettings, _Mapping]] = ..., text_language: _Optional[str] = ..., multi_tenant: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., index_state: _Optional[_Union[IndexState, str]] = ..., keyword_ranking: _Optional[_Union[KeywordRanking, str]] = ..., index_build: _Optional[_Union[IndexBuild, str]] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dimension", "metric", "index", "text_language", "multi_tenant", "defer_index", "index_build")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MULTI_TENANT_FIELD_NUMBER: _ClassVar[int]
    DEFER_INDEX_FIELD_NUMBER: _ClassVar[int]
    INDEX_BUILD_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    metric: DistanceMetric
    index: IndexSettings
    text_language: str
    multi_tenant: bool
    defer_index: bool
    index_build: IndexBuild
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., metric: _Optional[_Union[DistanceMetric, str]] = ..., index: _Optional[_Union[IndexSettings, _Mapping]] = ..., text_language: _Optional[str] = ..., multi_tenant: _Optional[bool] = ..., defer_index: _Optional[bool] = ..., index_build: _Optional[_Union[IndexBuild, str]] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection", "consistency_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    consistency_token: str
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ("consistency_token",)
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    consistency_token: str
    def __init__(self, consistency_token: _Optional[str] = ...) -> None: ...

class GetCollectionStatsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BuildIndexRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BuildIndexResponse(_message.Message):
    __slots__ = ("collection", "build_seconds")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    build_seconds: float
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ..., build_seconds: _Optional[float] = ...) -> None: ...

class GetCollectionStatsResponse(_message.Message):
    __slots__ = ("name", "document_count", "table_bytes", "index_bytes", "total_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    TABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INDEX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    document_count: int
    table_bytes: int
    index_bytes: int
    total_bytes: int
    def __init__(self, name: _Optional[str] = ..., document_count: _Optional[int] = ..., table_bytes: _Optional[int] = ..., index_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class Alias(_message.Message):
    __slots__ = ("alias", "collection", "update_time")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    alias: str
    collection: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, alias: _Optional[str] = ..., collection: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAlias(_message.Message):
    __slots__ = ("alias", "collection")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    collection: str
    def __init__(self, alias: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class SwitchAlias(_message.Message):
    __slots__ = ("alias", "collection")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    alias: str
    collection: str
    def __init__(self, alias: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class DeleteAlias(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    def __init__(self, alias: _Optional[str] = ...) -> None: ...

class AliasAction(_message.Message):
    __slots__ = ("create_alias", "switch_alias", "delete_alias")
    CREATE_ALIAS_FIELD_NUMBER: _ClassVar[int]
    SWITCH_ALIAS_FIELD_NUMBER: _ClassVar[int]
    DELETE_ALIAS_FIELD_NUMBER: _ClassVar[int]
    create_alias: CreateAlias
    switch_alias: SwitchAlias
    delete_alias: DeleteAlias
    def __init__(self, create_alias: _Optional[_Union[CreateAlias, _Mapping]] = ..., switch_alias: _Optional[_Union[SwitchAlias, _Mapping]] = ..., delete_alias: _Optional[_Union[DeleteAlias, _Mapping]] = ...) -> None: ...

class UpdateAliasesRequest(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[AliasAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[AliasAction, _Mapping]]] = ...) -> None: ...

class UpdateAliasesResponse(_message.Message):
    __slots__ = ("aliases", "consistency_token")
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    consistency_token: str
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases",)
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ...) -> None: ...
