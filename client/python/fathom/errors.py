"""Exceptions raised by the Fathom client.

Every failed RPC surfaces as a :class:`FathomError` carrying the gRPC status
code, the server's message and, when the server sent them, the field
violations of a ``google.rpc.BadRequest`` detail (sent in the
``grpc-status-details-bin`` trailer), and whether the server refused because
it was busy (a ``google.rpc.RetryInfo`` detail; see ``docs/retries.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "FathomError",
    "FieldViolation",
    "ResumeMismatchError",
    "UpsertError",
    "UpsertInputError",
    "UpsertRejectedError",
]

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
        busy: Whether the server refused because it was busy
            (RESOURCE_EXHAUSTED with a ``google.rpc.RetryInfo`` detail: its
            database pool or its request limit); such a refusal did nothing,
            and the client retries it (``docs/retries.md``).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Iterable[FieldViolation] = (),
        *,
        busy: bool = False,
    ) -> None:
        self.code = code
        self.message = message
        self.violations: list[FieldViolation] = list(violations)
        self.busy = busy
        super().__init__(self._render())

    def _render(self) -> str:
        # The server's message lists its violations already ("field:
        # description; …"): only a violation it does not name is added.
        text = f"{self.code.name}: {self.message}"
        for v in self.violations:
            line = f"{v.field}: {v.description}"
            if line not in self.message:
                text += f"\n  {line}"
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> FathomError:
        """Builds a :class:`FathomError` from a failed gRPC call.

        Works for both ``grpc`` and ``grpc.aio`` errors. Field violations and
        the busy mark are read from the ``google.rpc.Status`` in the
        ``grpc-status-details-bin`` trailer, when present.
        """
        call: Any = error  # grpc.RpcError raised by a call is also a grpc.Call
        code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
        message: str = (call.details() if hasattr(call, "details") else None) or str(error)
        status = _rich_status(call)
        busy = code == grpc.StatusCode.RESOURCE_EXHAUSTED and _has_retry_info(status)
        return cls(code, message, _violations_of(status), busy=busy)


class UpsertError(FathomError):
    """An upsert (``Collection.upsert``/``upsert_iter``) failed; says how far it got.

    Every error an upsert raises, other than cancellation and bad arguments
    refused before anything is sent, is an :class:`UpsertError` (or one of its
    subclasses), so a caller can always print true figures. What is committed
    under a stream id is always a prefix of the input: run the upsert again
    with the same ``stream_id`` (after fixing the cause) and it continues at
    ``committed_documents``.

    Attributes:
        committed_documents: Documents of the input committed under the
            stream id, as last known (the server tells it with every
            acknowledgement and on every reopen). For an upsert without a
            ``stream_id``: the documents written by this call.
        documents_written: Documents this call wrote (as in
            :attr:`fathom.UpsertSummary.documents_written`).
        skipped_documents: Documents not sent because an earlier run had
            committed them (:attr:`fathom.UpsertSummary.skipped_documents`).
        in_flight_documents: Documents sent and not acknowledged when the
            upsert gave up (the connection broke for good): they may or may
            not be committed, so ``committed_documents`` is a lower bound.
            0 when the figures are exact (after a refusal, an input error or
            a resume mismatch, every batch sent was acknowledged first).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Iterable[FieldViolation] = (),
        *,
        committed_documents: int = 0,
        documents_written: int = 0,
        skipped_documents: int = 0,
    ) -> None:
        self.committed_documents = committed_documents
        self.documents_written = documents_written
        self.skipped_documents = skipped_documents
        self.in_flight_documents = 0
        super().__init__(code, message, violations)

    def __str__(self) -> str:
        # Rendered now: the figures are filled in when the upsert ends.
        uncertain = (
            f", {self.in_flight_documents} more in flight may be"
            if self.in_flight_documents
            else ""
        )
        return (
            f"{self._render()}\n  ({_documents(self.committed_documents)} of the input "
            f"committed{uncertain}, {self.documents_written} written by this call)"
        )


class UpsertRejectedError(UpsertError):
    """A batch of an upsert stream was refused; nothing of it was written.

    The upsert stops sending at the first refused batch and waits for the
    acknowledgements of the batches already sent, so the figures are exact.
    Violation fields index into the batch (``documents[3].vector``); add
    ``batch_offset`` to get the position in the input.

    With a ``stream_id``, the server refuses every batch after a refused one
    (documents would be missing in between), so what is committed stays a
    prefix of the input: ``committed_documents`` is where it ends (normally
    ``batch_offset``). Fix the data and run the upsert again with the same
    stream id; it continues from there.

    Attributes:
        sequence: The refused batch's sequence number within the call.
        batch_offset: Input position of the refused batch's first document.
        batch_documents: Number of documents in the refused batch.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Iterable[FieldViolation],
        sequence: int,
        batch_offset: int,
        documents_written: int = 0,
        *,
        batch_documents: int = 0,
        committed_documents: int = 0,
        skipped_documents: int = 0,
    ) -> None:
        self.sequence = sequence
        self.batch_offset = batch_offset
        self.batch_documents = batch_documents
        super().__init__(
            code,
            message,
            violations,
            committed_documents=committed_documents,
            documents_written=documents_written,
            skipped_documents=skipped_documents,
        )


class ResumeMismatchError(UpsertError):
    """The input is not the one committed under this stream id.

    Raised when an upsert with a ``stream_id`` finds that the server has
    documents committed under it, but the first that many documents of this
    input have other ids (their digest differs from the server's
    ``ids_digest``), or the input is shorter. Nothing is sent. A stream id
    belongs to one input: use a new stream id for other data. The code is
    ``FAILED_PRECONDITION``; it is never retried.

    Attributes:
        stream_id: The stream id.
    """

    def __init__(
        self,
        message: str,
        stream_id: str,
        *,
        committed_documents: int = 0,
        documents_written: int = 0,
    ) -> None:
        self.stream_id = stream_id
        super().__init__(
            grpc.StatusCode.FAILED_PRECONDITION,
            message,
            committed_documents=committed_documents,
            documents_written=documents_written,
        )


class UpsertInputError(UpsertError):
    """Reading the input of an upsert failed (the iterable raised, or a
    document could not be converted); the original exception is
    ``__cause__``.

    The batch being built when it failed was not sent, and the batches sent
    before were acknowledged before this was raised, so
    ``committed_documents`` is exact. The code is ``INVALID_ARGUMENT`` (a
    client-side verdict; the server refused nothing).

    Attributes:
        position: Input position of the document that could not be read.
    """

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message)


def status_code_from_int(value: int) -> grpc.StatusCode:
    """Maps a numeric gRPC status code (``3``) to ``grpc.StatusCode``."""
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _has_retry_info(status: status_pb2.Status | None) -> bool:
    """Whether the status carries a ``google.rpc.RetryInfo`` detail."""
    return status is not None and any(
        detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for detail in status.details
    )


def _violations_of(status: status_pb2.Status | None) -> list[FieldViolation]:
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


def _documents(n: int) -> str:
    """"1 document", "2 documents"."""
    return "1 document" if n == 1 else f"{n} documents"
