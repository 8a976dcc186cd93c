from fathom.v1 import filter_pb2 as _filter_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Document(_message.Message):
    __slots__ = ("id", "vector", "text", "metadata", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    text: str
    metadata: _struct_pb2.Struct
    tenant: str
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., text: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class Include(_message.Message):
    __slots__ = ("text", "metadata", "vector")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    text: bool
    metadata: bool
    vector: bool
    def __init__(self, text: _Optional[bool] = ..., metadata: _Optional[bool] = ..., vector: _Optional[bool] = ...) -> None: ...

class UpsertStreamRequest(_message.Message):
    __slots__ = ("open", "batch")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    open: OpenStream
    batch: UpsertBatch
    def __init__(self, open: _Optional[_Union[OpenStream, _Mapping]] = ..., batch: _Optional[_Union[UpsertBatch, _Mapping]] = ...) -> None: ...

class OpenStream(_message.Message):
    __slots__ = ("collection", "tenant", "stream_id", "build_index_at_end")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_INDEX_AT_END_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    stream_id: str
    build_index_at_end: bool
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., stream_id: _Optional[str] = ..., build_index_at_end: _Optional[bool] = ...) -> None: ...

class UpsertBatch(_message.Message):
    __slots__ = ("sequence", "documents", "first_position")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    first_position: int
    def __init__(self, sequence: _Optional[int] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., first_position: _Optional[int] = ...) -> None: ...

class UpsertStreamResponse(_message.Message):
    __slots__ = ("opened", "ack")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    opened: StreamOpened
    ack: BatchAck
    def __init__(self, opened: _Optional[_Union[StreamOpened, _Mapping]] = ..., ack: _Optional[_Union[BatchAck, _Mapping]] = ...) -> None: ...

class StreamOpened(_message.Message):
    __slots__ = ("stream_id", "next_sequence", "committed_documents", "last_id", "ids_digest")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    next_sequence: int
    committed_documents: int
    last_id: str
    ids_digest: bytes
    def __init__(self, stream_id: _Optional[str] = ..., next_sequence: _Optional[int] = ..., committed_documents: _Optional[int] = ..., last_id: _Optional[str] = ..., ids_digest: _Optional[bytes] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("sequence", "documents_written", "already_committed", "rejection", "committed_documents", "consistency_token")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ALREADY_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    documents_written: int
    already_committed: bool
    rejection: BatchRejection
    committed_documents: int
    consistency_token: str
    def __init__(self, sequence: _Optional[int] = ..., documents_written: _Optional[int] = ..., already_committed: _Optional[bool] = ..., rejection: _Optional[_Union[BatchRejection, _Mapping]] = ..., committed_documents: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class BatchRejection(_message.Message):
    __slots__ = ("code", "message", "violations")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ReadConsistency(_message.Message):
    __slots__ = ("after_token", "strong", "eventual")
    AFTER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STRONG_FIELD_NUMBER: _ClassVar[int]
    EVENTUAL_FIELD_NUMBER: _ClassVar[int]
    after_token: str
    strong: bool
    eventual: bool
    def __init__(self, after_token: _Optional[str] = ..., strong: _Optional[bool] = ..., eventual: _Optional[bool] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "tenant", "documents")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("documents_written", "consistency_token")
    DOCUMENTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents_written: int
    consistency_token: str
    def __init__(self, documents_written: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "tenant", "ids", "include", "consistency")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    include: Include
    consistency: ReadConsistency
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., include: _Optional[_Union[Include, _Mapping]] = ..., consistency: _Optional[_Union[ReadConsistency, _Mapping]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "tenant", "ids", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    ids: _filter_pb2.IdCondition
    filter: _filter_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., ids: _Optional[_Union[_filter_pb2.IdCondition, _Mapping]] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted", "consistency_token")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    consistency_token: str
    def __init__(self, deleted: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("collection", "tenant", "ids", "filter", "text", "set_metadata", "replace_metadata", "delete_metadata_keys")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SET_METADATA_FIELD_NUMBER: _ClassVar[int]
    REPLACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    DELETE_METADATA_KEYS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    ids: _filter_pb2.IdCondition
    filter: _filter_pb2.Filter
    text: str
    set_metadata: _struct_pb2.Struct
    replace_metadata: bool
    delete_metadata_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., ids: _Optional[_Union[_filter_pb2.IdCondition, _Mapping]] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., text: _Optional[str] = ..., set_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., replace_metadata: _Optional[bool] = ..., delete_metadata_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateResponse(_message.Message):
    __slots__ = ("updated", "consistency_token")
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    updated: int
    consistency_token: str
    def __init__(self, updated: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("collection", "tenant", "filter", "consistency")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    filter: _filter_pb2.Filter
    consistency: ReadConsistency
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., consistency: _Optional[_Union[ReadConsistency, _Mapping]] = ...) -> None: ...

class CountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ScrollRequest(_message.Message):
    __slots__ = ("collection", "tenant", "filter", "after_id", "include", "limit", "consistency")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    filter: _filter_pb2.Filter
    after_id: str
    include: Include
    limit: int
    consistency: ReadConsistency
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., after_id: _Optional[str] = ..., include: _Optional[_Union[Include, _Mapping]] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[ReadConsistency, _Mapping]] = ...) -> None: ...

class ScrollResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: Document
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...
