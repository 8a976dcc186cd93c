"""Bookkeeping of an ``UpsertStream`` call, independent of sync/async I/O.

The drivers in :mod:`fathom.client` and :mod:`fathom.aio` do the I/O, pull
batches from the input and feed the server's messages into an
:class:`UpsertSession`, which numbers the batches, skips what an earlier run
of the same stream id committed, bounds how many batches are in flight,
matches acks and decides what to resend after a reconnect.

The rules are those of the Rust client (``client/rust/src/upsert_stream.rs``):
the input is cut into batches deterministically (:func:`fathom._convert.batched`:
at most ``batch_size`` documents and ``batch_bytes`` encoded bytes), and the
i-th batch of the input always has sequence number i. So when the first open
of a call answers ``next_sequence`` K > 1, batches 1..K-1 of the input are
committed already: they are cut and dropped without being sent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from fathom.errors import FathomError, FieldViolation, UpsertRejectedError, status_code_from_int
from fathom.models import UpsertSummary
from fathom.v1 import documents_pb2

RECONNECT_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0)
"""Default pauses before each reconnect attempt of a resumable stream (and
of a scroll); its length is the number of attempts without progress before
giving up."""

DEFAULT_BATCH_SIZE = 500
"""Most documents per batch (the server's limit is 1000 by default)."""

DEFAULT_BATCH_BYTES = 8 * 1024 * 1024
"""Most encoded bytes per batch, as the Rust client (the server's limit is
larger)."""

ProgressCallback = Callable[[int], None]
"""Called with the number of documents of each batch that is acknowledged,
found committed after a reconnect, or skipped on resume."""


@dataclass
class _Sent:
    batch: documents_pb2.UpsertBatch
    offset: int  # position of the batch's first document in the input


def protocol_error(message: str) -> FathomError:
    """An error for a server that broke the UpsertStream protocol."""
    return FathomError(grpc.StatusCode.INTERNAL, f"UpsertStream protocol error: {message}")


class UpsertSession:
    """State of one upsert call, possibly spanning several streams.

    On the first open, ``opened.next_sequence`` K > 1 means an earlier run
    with this stream id committed batches 1..K-1: :attr:`batches_to_skip`
    says how many input batches the driver must cut and hand to :meth:`skip`
    before sending; new batches are numbered from K. After a reconnect, the
    unacknowledged batches below the new ``next_sequence`` are known to be
    committed and count as written; the others are resent with their numbers.
    """

    def __init__(
        self,
        collection: str,
        tenant: str | None,
        stream_id: str | None,
        max_in_flight: int,
        progress: ProgressCallback | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.collection = collection
        self.tenant = tenant or ""
        self.stream_id = stream_id or ""
        self.summary = UpsertSummary()
        self.batches_to_skip = 0
        """Input batches still to cut and drop (first open of a resumed stream)."""
        self._max_in_flight = max_in_flight
        self._progress = progress
        self._in_flight: deque[_Sent] = deque()
        self._next_sequence: int | None = None
        self._offset = 0
        self._exhausted = False
        self._rejection: UpsertRejectedError | None = None
        self._started = time.monotonic()

    # -- queries -------------------------------------------------------------

    @property
    def resumable(self) -> bool:
        """Whether the stream can be reopened after UNAVAILABLE."""
        return bool(self.stream_id)

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet acknowledged."""
        return len(self._in_flight)

    @property
    def sending_done(self) -> bool:
        """No more batches will be sent (input exhausted, or a batch was rejected)."""
        return self._exhausted or self._rejection is not None

    @property
    def window_open(self) -> bool:
        """Whether another batch may be sent now."""
        return (
            not self.sending_done
            and self.batches_to_skip == 0
            and len(self._in_flight) < self._max_in_flight
        )

    # -- messages to send ----------------------------------------------------

    def open_request(self) -> documents_pb2.UpsertStreamRequest:
        """The first message of every stream."""
        return documents_pb2.UpsertStreamRequest(
            open=documents_pb2.OpenStream(
                collection=self.collection, tenant=self.tenant, stream_id=self.stream_id
            )
        )

    def on_opened(self, response: documents_pb2.UpsertStreamResponse) -> list[documents_pb2.UpsertStreamRequest]:
        """Handles the server's first message; returns batches to resend.

        On the first open, sets :attr:`batches_to_skip`.
        """
        if response.WhichOneof("response") != "opened":
            raise protocol_error("the first response is not `opened`")
        server_next = max(1, response.opened.next_sequence)
        if self._next_sequence is None:
            # An earlier run with this stream id committed batches
            # 1..server_next-1 of the (same) input: skip them.
            self.batches_to_skip = server_next - 1
            self._next_sequence = server_next
            return []
        # Reconnected: what lies below server_next was committed before the
        # drop, its acks lost.
        while self._in_flight and self._in_flight[0].batch.sequence < server_next:
            committed = self._in_flight.popleft()
            self._count_written(len(committed.batch.documents))
        return [documents_pb2.UpsertStreamRequest(batch=sent.batch) for sent in self._in_flight]

    def skip(self, docs: list[documents_pb2.Document]) -> None:
        """Drops the next input batch, committed by an earlier run."""
        assert self.batches_to_skip > 0, "nothing to skip"
        self.batches_to_skip -= 1
        self._offset += len(docs)
        self.summary.skipped_batches += 1
        self.summary.skipped_documents += len(docs)
        if self._progress is not None:
            self._progress(len(docs))

    def input_exhausted(self) -> None:
        """Records that the input has no more batches."""
        self._exhausted = True
        self.batches_to_skip = 0

    def batch_request(self, docs: list[documents_pb2.Document]) -> documents_pb2.UpsertStreamRequest:
        """Numbers the next batch of the input and records it as in flight.

        Call only while :attr:`window_open`.
        """
        assert self._next_sequence is not None, "on_opened() first"
        assert self.window_open, "the window is closed"
        batch = documents_pb2.UpsertBatch(sequence=self._next_sequence, documents=docs)
        self._in_flight.append(_Sent(batch, self._offset))
        self._next_sequence += 1
        self._offset += len(docs)
        return documents_pb2.UpsertStreamRequest(batch=batch)

    # -- acks ----------------------------------------------------------------

    def on_ack(self, response: documents_pb2.UpsertStreamResponse) -> None:
        """Handles one ack. A rejection is recorded; :meth:`finish` raises it."""
        if response.WhichOneof("response") != "ack":
            raise protocol_error("expected an `ack`")
        ack = response.ack
        if not self._in_flight:
            raise protocol_error(f"ack for batch {ack.sequence}, but no batch is in flight")
        expected = self._in_flight[0]
        if ack.sequence != expected.batch.sequence:
            raise protocol_error(
                f"ack for batch {ack.sequence}, expected {expected.batch.sequence}"
            )
        self._in_flight.popleft()
        if ack.HasField("rejection"):
            if self._rejection is None:  # the first rejection stops the upsert
                rejection = ack.rejection
                self._rejection = UpsertRejectedError(
                    status_code_from_int(rejection.code),
                    f"batch {ack.sequence} (documents {expected.offset}.."
                    f"{expected.offset + len(expected.batch.documents) - 1} of the input) "
                    f"was rejected: {rejection.message}",
                    [FieldViolation(v.field, v.description) for v in rejection.violations],
                    sequence=ack.sequence,
                    batch_offset=expected.offset,
                    documents_written=0,
                )
            return
        documents = len(expected.batch.documents)
        if ack.already_committed:
            self.summary.already_committed += 1
            self._count_written(documents)
        else:
            self._count_written(documents, ack.documents_written)

    def ended(self) -> None:
        """The server closed the stream cleanly: check nothing is missing."""
        if self._in_flight:
            raise protocol_error(
                f"the stream ended with {len(self._in_flight)} batch(es) unacknowledged"
            )

    def finish(self) -> UpsertSummary:
        """Returns the summary, or raises the first rejection."""
        self.summary.elapsed = time.monotonic() - self._started
        if self._rejection is not None:
            self._rejection.documents_written = self.summary.documents_written
            raise self._rejection
        return self.summary

    def _count_written(self, documents: int, written: int | None = None) -> None:
        self.summary.batches += 1
        self.summary.documents_written += documents if written is None else written
        if self._progress is not None:
            self._progress(documents)
