"""Bookkeeping of an ``UpsertStream`` call, independent of sync/async I/O.

The driver in :mod:`fathom.aio` (and :mod:`fathom.client`, generated from
it) does the I/O, reads the input and feeds documents, batches and the
server's messages into an :class:`UpsertSession`, which skips what an earlier run of the same stream id
committed (checking the ids of what it skips), places every batch in the
input (``first_position``), bounds how many batches are in flight, matches
acks and decides what to resend after a reconnect.

The protocol is the same in the Rust, Python and TypeScript clients. The
server records, per stream id, how many documents of the input are committed
(C), the id of the last one and a SHA-256 chain over their ids. A run that
opens the stream with C > 0 reads the first C documents of its input without
sending them, computes the same chain over their ids and refuses to go on if
it differs (:class:`~fathom.ResumeMismatchError`). Batches are then cut from
position C however the caller likes: the server writes each document once,
whatever the batch boundaries.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc

from fathom._retry import is_retryable
from fathom.errors import (
    FathomError,
    FieldViolation,
    ResumeMismatchError,
    UpsertError,
    UpsertInputError,
    UpsertRejectedError,
    status_code_from_int,
)
from fathom.models import UpsertSummary
from fathom.v1 import documents_pb2

DEFAULT_BATCH_SIZE = 500
"""Most documents per batch (the server's limit is 1000 by default)."""

DEFAULT_BATCH_BYTES = 8 * 1024 * 1024
"""Most encoded bytes per batch, as the Rust client (the server's limit is
larger)."""

ProgressCallback = Callable[[int], None]
"""Called with the number of documents of each batch that is acknowledged or
found committed after a reconnect, and once with the number of documents
skipped on resume."""

EMPTY_DIGEST = bytes(32)
"""The ids digest of zero documents."""

def next_ids_digest(digest: bytes, doc_id: str) -> bytes:
    """One step of the ids digest: SHA-256(digest || UTF-8 bytes of the id)."""
    return hashlib.sha256(digest + doc_id.encode("utf-8")).digest()


def ids_digest(ids: Iterable[str]) -> bytes:
    """The ids digest of documents with these ids, in input order (as the
    server's ``StreamOpened.ids_digest``): d(0) is 32 zero bytes and
    d(i+1) = SHA-256(d(i) || UTF-8 bytes of id(i))."""
    digest = EMPTY_DIGEST
    for doc_id in ids:
        digest = next_ids_digest(digest, doc_id)
    return digest


def protocol_error(message: str) -> FathomError:
    """An error for a server that broke the UpsertStream protocol."""
    return FathomError(grpc.StatusCode.INTERNAL, f"UpsertStream protocol error: {message}")


@dataclass
class _Sent:
    """A batch in the in-flight window."""

    request: documents_pb2.UpsertStreamRequest
    first_position: int
    count: int
    last_id: str
    resent: bool = False  # sent again after a reconnect

    @property
    def sequence(self) -> int:
        return int(self.request.batch.sequence)

    @property
    def end(self) -> int:
        """Input position just after the batch's last document."""
        return self.first_position + self.count


class UpsertSession:
    """State of one upsert call, possibly spanning several streams.

    The driver opens a stream, hands the first response to
    :meth:`on_opened` (and sends what it returns), feeds the documents to
    :meth:`skip` while :attr:`skipping`, then cuts batches and sends
    :meth:`batch_request` while :attr:`window_open`, feeding every ack to
    :meth:`on_ack`. After a broken connection it asks
    :meth:`can_reconnect` and opens a new stream (resending what
    :meth:`on_opened` returns). :meth:`finish` returns the summary or raises
    the upsert's error; :meth:`failed` turns a stream error into the
    :class:`~fathom.UpsertError` to raise.
    """

    def __init__(
        self,
        collection: str,
        tenant: str | None,
        stream_id: str | None,
        max_in_flight: int,
        progress: ProgressCallback | None = None,
        build_index_at_end: bool = False,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.collection = collection
        self.tenant = tenant or ""
        self.stream_id = stream_id or ""
        self.build_index_at_end = build_index_at_end
        """Whether every stream is opened with ``build_index_at_end`` (a
        reopened stream too: the one that ends the upsert builds the index)."""
        self.summary = UpsertSummary()
        self.acks = 0
        """Acknowledgements received so far (a measure of progress)."""
        self._max_in_flight = max_in_flight
        self._progress = progress
        self._window: deque[_Sent] = deque()
        self._opened = False
        self._sequence = 0  # the last sequence number used on the current stream
        self._position = 0  # input position of the next document to put in a batch
        self._committed = 0  # documents of the input known to be committed
        self._last_done: tuple[int, str] | None = None  # (position, id) ending the last batch done
        self._to_skip = 0
        self._skipped = 0
        self._skip_digest = EMPTY_DIGEST
        self._expected_digest = b""
        self._exhausted = False
        self._failure: UpsertRejectedError | UpsertInputError | None = None
        self._started = time.monotonic()

    # -- queries -------------------------------------------------------------

    @property
    def resumable(self) -> bool:
        """Whether the stream has a stream id (and can be reopened)."""
        return bool(self.stream_id)

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet acknowledged."""
        return len(self._window)

    @property
    def position(self) -> int:
        """Input position of the next document to put in a batch."""
        return self._position

    @property
    def committed_documents(self) -> int:
        """Documents of the input known to be committed (see
        :attr:`fathom.UpsertSummary.committed_documents`)."""
        return self._committed

    @property
    def skipping(self) -> bool:
        """Whether documents committed by an earlier run remain to be read
        and handed to :meth:`skip`."""
        return self._skipped < self._to_skip

    @property
    def skipped_so_far(self) -> int:
        """Documents read and skipped so far (while :attr:`skipping`)."""
        return self._skipped

    @property
    def sending_done(self) -> bool:
        """No more batches will be sent (input exhausted or unreadable, or a
        batch was refused)."""
        return self._exhausted or self._failure is not None

    @property
    def window_open(self) -> bool:
        """Whether another batch may be sent now."""
        return (
            self._opened
            and not self.sending_done
            and not self.skipping
            and len(self._window) < self._max_in_flight
        )

    def can_reconnect(self, error: FathomError) -> bool:
        """Whether to reopen the stream after it failed with ``error``: only a
        resumable stream, only after a failure the retry table retries (a
        transport failure, a busy server: :func:`fathom._retry.is_retryable`),
        and not after a refused batch (nothing after it can be committed any
        more)."""
        return (
            self.resumable
            and not isinstance(self._failure, UpsertRejectedError)
            and is_retryable(error)
        )

    # -- opening ---------------------------------------------------------------

    def open_request(self) -> documents_pb2.UpsertStreamRequest:
        """The first message of every stream."""
        return documents_pb2.UpsertStreamRequest(
            open=documents_pb2.OpenStream(
                collection=self.collection,
                tenant=self.tenant,
                stream_id=self.stream_id,
                build_index_at_end=self.build_index_at_end,
            )
        )

    def on_opened(
        self, response: documents_pb2.UpsertStreamResponse
    ) -> list[documents_pb2.UpsertStreamRequest]:
        """Handles the server's first message of a stream; returns the
        batches to resend, renumbered from 1.

        On the first open of a resumable stream, the documents committed
        earlier (C0) are to be skipped (:attr:`skipping`). After a reconnect,
        window batches that end at or before the committed position C' are
        done (their acks were lost); the rest is resent unchanged.

        Raises:
            UpsertError: DATA_LOSS if C' is below a count acknowledged before.
            ResumeMismatchError: the document before C' is not the one the
                server committed last (another writer used the stream id).
        """
        if response.WhichOneof("response") != "opened":
            raise protocol_error("the first response is not `opened`")
        opened = response.opened
        self._sequence = 0
        if not self._opened:
            self._opened = True
            if self.resumable:
                committed = int(opened.committed_documents)
                self._to_skip = committed
                self._committed = committed
                self._position = committed
                self._expected_digest = bytes(opened.ids_digest)
            return []

        committed = int(opened.committed_documents)
        if committed < self._committed:
            raise self._filled(
                UpsertError(
                    grpc.StatusCode.DATA_LOSS,
                    f"after reconnecting, the server reports {committed} documents committed "
                    f"under stream id {self.stream_id!r}, fewer than the {self._committed} it "
                    "acknowledged before: acknowledged data vanished",
                )
            )
        self._check_last_id(committed, opened.last_id)
        known = self._committed
        while self._window and self._window[0].end <= committed:
            sent = self._window.popleft()
            # Committed before the connection broke; the ack was lost.
            self.summary.documents_written += max(0, sent.end - max(sent.first_position, known))
            self.summary.batches += 1
            known = max(known, sent.end)
            self._last_done = (sent.end - 1, sent.last_id)
            self._report(sent.count)
        self._committed = committed
        resend: list[documents_pb2.UpsertStreamRequest] = []
        for sent in self._window:
            request = documents_pb2.UpsertStreamRequest()
            request.CopyFrom(sent.request)
            request.batch.sequence = self._next_sequence()
            sent.request = request
            sent.resent = True
            resend.append(request)
        return resend

    def _check_last_id(self, committed: int, last_id: str) -> None:
        if committed == 0:
            return
        wanted = committed - 1
        for sent in self._window:
            if sent.first_position <= wanted < sent.end:
                doc_id = sent.request.batch.documents[wanted - sent.first_position].id
                break
        else:
            if self._last_done is None or self._last_done[0] != wanted:
                return  # not known here
            doc_id = self._last_done[1]
        if doc_id != last_id:
            raise self._filled(
                ResumeMismatchError(
                    f"stream id {self.stream_id!r} has {committed} documents committed, the "
                    f"last one {last_id!r}, but document {wanted} of this input is {doc_id!r}: "
                    "another writer committed other data under this stream id; a stream id "
                    "belongs to one input",
                    self.stream_id,
                )
            )

    # -- reading the input -------------------------------------------------------

    def skip(self, doc: documents_pb2.Document) -> None:
        """Reads past the next input document, committed by an earlier run,
        adding its id to the digest. After the last one, checks the digest.

        Raises:
            ResumeMismatchError: the skipped ids differ from those committed.
        """
        if not self.skipping:
            raise AssertionError("nothing to skip")
        self._skip_digest = next_ids_digest(self._skip_digest, doc.id)
        self._skipped += 1
        if self._skipped == self._to_skip:
            if self._skip_digest != self._expected_digest:
                n = self._to_skip
                raise self._filled(
                    ResumeMismatchError(
                        f"stream id {self.stream_id!r} has {n} documents committed, but the "
                        f"first {n} documents of this input are not the ones committed under "
                        "it (their ids differ): a stream id belongs to one input; use a new "
                        "stream id for other data",
                        self.stream_id,
                    )
                )
            self.summary.skipped_documents = self._to_skip  # verified: truly skipped
            self._report(self._to_skip)

    def input_exhausted(self) -> None:
        """Records that the input has no more documents.

        Raises:
            ResumeMismatchError: the input ended before the documents an
                earlier run committed.
        """
        if self.skipping:
            raise self._filled(
                ResumeMismatchError(
                    f"stream id {self.stream_id!r} has {self._to_skip} documents committed, "
                    f"but this input has only {self._skipped} documents: a stream id belongs "
                    "to one input; use a new stream id for other data",
                    self.stream_id,
                )
            )
        self._exhausted = True

    def input_failed(self, error: Exception, position: int) -> None:
        """Records that reading the document at ``position`` raised
        ``error``: nothing more is sent; :meth:`finish` raises it as an
        :class:`~fathom.UpsertInputError` once the batches in flight are
        acknowledged."""
        if self._failure is not None:
            return
        reason = str(error) or type(error).__name__
        unsent = (
            "nothing was sent"
            if self.skipping
            else f"nothing from document {self._position} on was sent"
        )
        failure = UpsertInputError(
            f"reading document {position} of the input failed ({reason}); {unsent}", position
        )
        failure.__cause__ = error
        self._failure = failure

    def batch_request(
        self, docs: list[documents_pb2.Document]
    ) -> documents_pb2.UpsertStreamRequest:
        """Places the next batch at the current input position, numbers it
        and records it in the window (before it is sent, so that a failed
        send leaves it there to resend). Call only while :attr:`window_open`.
        """
        if not self.window_open:
            raise AssertionError("the window is closed")
        if not docs:
            raise AssertionError("an empty batch")
        request = documents_pb2.UpsertStreamRequest(
            batch=documents_pb2.UpsertBatch(
                sequence=self._next_sequence(), first_position=self._position, documents=docs
            )
        )
        self._window.append(_Sent(request, self._position, len(docs), docs[-1].id))
        self._position += len(docs)
        return request

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    # -- acks ----------------------------------------------------------------

    def on_ack(self, response: documents_pb2.UpsertStreamResponse) -> None:
        """Handles one ack. A refusal is recorded (the first one ends the
        upsert); :meth:`finish` raises it."""
        if response.WhichOneof("response") != "ack":
            raise protocol_error("expected an `ack`")
        ack = response.ack
        if not self._window:
            raise protocol_error(f"ack for batch {ack.sequence}, but no batch is in flight")
        sent = self._window[0]
        if ack.sequence != sent.sequence:
            raise protocol_error(f"ack for batch {ack.sequence}, expected {sent.sequence}")
        self._window.popleft()
        self.acks += 1
        committed = int(ack.committed_documents)
        if ack.HasField("rejection"):
            self._committed = max(self._committed, committed)
            if not isinstance(self._failure, UpsertRejectedError):
                self._failure = self._rejection(ack, sent)
            return
        if committed < self._committed:
            raise protocol_error(
                f"the ack of batch {ack.sequence} says {committed} documents are committed, "
                f"fewer than the {self._committed} acknowledged before"
            )
        if ack.already_committed:
            self.summary.already_committed += 1
            if sent.resent:
                # Sent before the reconnect too: the broken connection's
                # write committed after the reopen, its ack lost.
                self.summary.documents_written += max(
                    0, sent.end - max(sent.first_position, self._committed)
                )
        else:
            self.summary.batches += 1
            self.summary.documents_written += ack.documents_written
        self._committed = committed
        self._last_done = (sent.end - 1, sent.last_id)
        self._report(sent.count)

    def _rejection(
        self, ack: documents_pb2.BatchAck, sent: _Sent
    ) -> UpsertRejectedError:
        rejection = ack.rejection
        return UpsertRejectedError(
            status_code_from_int(rejection.code),
            f"batch {ack.sequence} (documents {sent.first_position}..{sent.end - 1} of the "
            f"input) was refused: {rejection.message}",
            [FieldViolation(v.field, v.description) for v in rejection.violations],
            sequence=int(ack.sequence),
            batch_offset=sent.first_position,
            batch_documents=sent.count,
        )

    def ended(self) -> None:
        """The server closed the stream cleanly: check nothing is missing."""
        if self._window:
            raise protocol_error(
                f"the stream ended with {len(self._window)} batch(es) unacknowledged"
            )

    # -- the end ---------------------------------------------------------------

    def finish(self) -> UpsertSummary:
        """Returns the summary, or raises the refusal or input error."""
        self.summary.elapsed = time.monotonic() - self._started
        self.summary.committed_documents = self._committed
        if self._failure is not None:
            raise self._filled(self._failure)
        return self.summary

    def failed(self, error: FathomError) -> UpsertError:
        """The error to raise for a stream that failed with ``error``, with
        this call's figures. After a refused batch, that refusal."""
        if isinstance(self._failure, UpsertRejectedError):
            return self._filled(self._failure)
        if not isinstance(error, UpsertError):
            error = UpsertError(error.code, error.message, error.violations)
        return self._filled(error)

    def _filled(self, error: UpsertError) -> UpsertError:
        self.summary.elapsed = time.monotonic() - self._started
        self.summary.committed_documents = self._committed
        error.committed_documents = self._committed
        error.documents_written = self.summary.documents_written
        error.skipped_documents = self.summary.skipped_documents
        error.in_flight_documents = sum(sent.count for sent in self._window)
        return error

    def _report(self, documents: int) -> None:
        if self._progress is not None and documents:
            self._progress(documents)
