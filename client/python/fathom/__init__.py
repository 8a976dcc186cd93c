"""Python client for Fathom, the gRPC vector-search server.

Quick start::

    from fathom import Client

    client = Client("127.0.0.1:50051")
    docs = client.create_collection("quickstart", dimension=3)
    docs.upsert(["a", "b"], [[1, 0, 0], [0, 1, 0]], texts=["red fox", "blue sky"])
    for hit in docs.search(vector=[1, 0, 0], text="fox", filter={"lang": "en"}):
        print(hit.id, hit.score, hit.vector_rank, hit.text_rank)

The generated protobuf modules live in :mod:`fathom.v1`.
"""

from fathom._connection import TLS
from fathom._retry import RetryPolicy
from fathom.aio import AsyncClient, AsyncCollection
from fathom.client import DEFAULT_TARGET, Client, Collection
from fathom.errors import (
    FathomError,
    FieldViolation,
    ResumeMismatchError,
    UpsertError,
    UpsertInputError,
    UpsertRejectedError,
)
from fathom.filters import FilterError, FilterSpec, to_filter
from fathom.models import (
    RRF,
    ApiKeyInfo,
    CollectionInfo,
    CollectionStats,
    CreatedKey,
    Alias,
    AliasAction,
    CollectionInfo,
    CollectionStats,
    CreateAlias,
    DeleteAlias,
    Document,
    FusionSpec,
    HnswIndex,
    Hit,
    IndexPrecision,
    IndexSpec,
    IndexBuild,
    IndexState,
    KeyRole,
    KeyState,
    KeywordRanking,
    Metric,
    NoIndex,
    RelativeScore,
    SwitchAlias,
    UpsertSummary,
)

__all__ = [
    "DEFAULT_TARGET",
    "TLS",
    "ApiKeyInfo",
    "Alias",
    "AliasAction",
    "AsyncClient",
    "AsyncCollection",
    "Client",
    "Collection",
    "CollectionInfo",
    "CollectionStats",
    "CreatedKey",
    "CreateAlias",
    "DeleteAlias",
    "Document",
    "FathomError",
    "FieldViolation",
    "FilterError",
    "FilterSpec",
    "FusionSpec",
    "Hit",
    "HnswIndex",
    "IndexPrecision",
    "IndexSpec",
    "IndexBuild",
    "IndexState",
    "KeyRole",
    "KeyState",
    "KeywordRanking",
    "Metric",
    "NoIndex",
    "RRF",
    "RelativeScore",
    "RetryPolicy",
    "ResumeMismatchError",
    "SwitchAlias",
    "UpsertError",
    "UpsertInputError",
    "UpsertRejectedError",
    "UpsertSummary",
    "to_filter",
]

__version__ = "0.1.0"
