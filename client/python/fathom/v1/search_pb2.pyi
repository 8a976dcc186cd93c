from fathom.v1 import documents_pb2 as _documents_pb2
from fathom.v1 import filter_pb2 as _filter_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchRequest(_message.Message):
    __slots__ = ("collection", "tenant", "vector", "text", "fusion", "candidates", "filter", "limit", "score_threshold", "include", "params", "example_id", "offset", "consistency")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    text: str
    fusion: Fusion
    candidates: int
    filter: _filter_pb2.Filter
    limit: int
    score_threshold: float
    include: _documents_pb2.Include
    params: VectorSearchParams
    example_id: str
    offset: int
    consistency: _documents_pb2.ReadConsistency
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., text: _Optional[str] = ..., fusion: _Optional[_Union[Fusion, _Mapping]] = ..., candidates: _Optional[int] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., limit: _Optional[int] = ..., score_threshold: _Optional[float] = ..., include: _Optional[_Union[_documents_pb2.Include, _Mapping]] = ..., params: _Optional[_Union[VectorSearchParams, _Mapping]] = ..., example_id: _Optional[str] = ..., offset: _Optional[int] = ..., consistency: _Optional[_Union[_documents_pb2.ReadConsistency, _Mapping]] = ...) -> None: ...

class VectorSearchParams(_message.Message):
    __slots__ = ("ef_search", "exact")
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    ef_search: int
    exact: bool
    def __init__(self, ef_search: _Optional[int] = ..., exact: _Optional[bool] = ...) -> None: ...

class Fusion(_message.Message):
    __slots__ = ("rrf", "relative_score")
    RRF_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_SCORE_FIELD_NUMBER: _ClassVar[int]
    rrf: ReciprocalRankFusion
    relative_score: RelativeScoreFusion
    def __init__(self, rrf: _Optional[_Union[ReciprocalRankFusion, _Mapping]] = ..., relative_score: _Optional[_Union[RelativeScoreFusion, _Mapping]] = ...) -> None: ...

class ReciprocalRankFusion(_message.Message):
    __slots__ = ("k", "vector_weight", "text_weight")
    K_FIELD_NUMBER: _ClassVar[int]
    VECTOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TEXT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    k: float
    vector_weight: float
    text_weight: float
    def __init__(self, k: _Optional[float] = ..., vector_weight: _Optional[float] = ..., text_weight: _Optional[float] = ...) -> None: ...

class RelativeScoreFusion(_message.Message):
    __slots__ = ("alpha",)
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    alpha: float
    def __init__(self, alpha: _Optional[float] = ...) -> None: ...

class LegResult(_message.Message):
    __slots__ = ("rank", "score")
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    score: float
    def __init__(self, rank: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("id", "score", "vector_leg", "text_leg", "text", "metadata", "vector", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_LEG_FIELD_NUMBER: _ClassVar[int]
    TEXT_LEG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    vector_leg: LegResult
    text_leg: LegResult
    text: str
    metadata: _struct_pb2.Struct
    vector: _containers.RepeatedScalarFieldContainer[float]
    tenant: str
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., vector_leg: _Optional[_Union[LegResult, _Mapping]] = ..., text_leg: _Optional[_Union[LegResult, _Mapping]] = ..., text: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., vector: _Optional[_Iterable[float]] = ..., tenant: _Optional[str] = ...) -> None: ...
