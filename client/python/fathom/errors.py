"""Exceptions raised by the Fathom client.

Every failed RPC surfaces as a :class:`FathomError` carrying the gRPC status
code, the server's message and, when the server sent them, the field
violations of a ``google.rpc.BadRequest`` detail (sent in the
``grpc-status-details-bin`` trailer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = ["FathomError", "FieldViolation", "UpsertRejectedError"]

_DETAILS_KEY = "grpc-status-details-bin"


class FieldViolation(NamedTuple):
    """One invalid field of a request, as reported by the server."""

    field: str
    """Path to the field, such as ``"documents[3].vector"``."""
    description: str
    """What is wrong and what the limit is."""


class FathomError(Exception):
    """An error returned by the Fathom server (or the transport).

    Attributes:
        code: The gRPC status code, such as ``grpc.StatusCode.NOT_FOUND``.
        message: The server's human-readable message.
        violations: Field violations sent by the server (empty if none).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Iterable[FieldViolation] = (),
    ) -> None:
        self.code = code
        self.message = message
        self.violations: list[FieldViolation] = list(violations)
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.violations:
            text += "".join(f"\n  {v.field}: {v.description}" for v in self.violations)
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> FathomError:
        """Builds a :class:`FathomError` from a failed gRPC call.

        Works for both ``grpc`` and ``grpc.aio`` errors. Field violations are
        read from the ``google.rpc.Status`` in the ``grpc-status-details-bin``
        trailer, when present.
        """
        call: Any = error  # grpc.RpcError raised by a call is also a grpc.Call
        code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
        message: str = (call.details() if hasattr(call, "details") else None) or str(error)
        return cls(code, message, _violations_of(call))


class UpsertRejectedError(FathomError):
    """A batch of an upsert stream was rejected; nothing of it was written.

    The upsert stops sending at the first rejected batch. Every other batch
    already sent is still acknowledged and stored, so ``documents_written``
    is exact. Violation fields index into the batch (``documents[3].vector``);
    add ``batch_offset`` to get the position in the input.

    With a ``stream_id``, do not simply run the same upsert again: batches
    sent after the rejected one may be committed, and a resumed upsert skips
    every batch up to the last committed one, the rejected one included.
    Write the corrected documents under a new stream id (or with
    ``upsert_batch``).

    Attributes:
        sequence: The rejected batch's sequence number.
        batch_offset: Input position of the rejected batch's first document.
        documents_written: Documents written by the other batches of this call.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Iterable[FieldViolation],
        sequence: int,
        batch_offset: int,
        documents_written: int,
    ) -> None:
        self.sequence = sequence
        self.batch_offset = batch_offset
        self.documents_written = documents_written
        super().__init__(code, message, violations)


def status_code_from_int(value: int) -> grpc.StatusCode:
    """Maps a numeric gRPC status code (``3``) to ``grpc.StatusCode``."""
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _violations_of(call: Any) -> list[FieldViolation]:
    status = _rich_status(call)
    if status is None:
        return []
    found: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
    return found


def _rich_status(call: Any) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` of a call's trailers, or None."""
    if not hasattr(call, "trailing_metadata"):
        return None
    try:
        status: status_pb2.Status | None = rpc_status.from_call(call)
        return status
    except Exception:
        # from_call insists that the trailer's code and message equal the
        # call's; a server may word them differently. Read the trailer as is.
        pass
    try:
        for key, value in call.trailing_metadata() or ():
            if key == _DETAILS_KEY:
                return status_pb2.Status.FromString(value)
    except Exception:  # a malformed trailer must not hide the original error
        return None
    return None
