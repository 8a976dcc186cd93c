"""Unit tests of the UpsertStream bookkeeping (fathom._upsert), which is pure:
the server's messages are built here as the protocol defines them, and the
requests the session asks to send are checked. The protocol against the real
server is tested in test_stream_live.py."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from fathom import ResumeMismatchError, UpsertError, UpsertInputError, UpsertRejectedError
from fathom import _convert
from fathom._retry import is_transport_failure
from fathom._upsert import (
    EMPTY_DIGEST,
    UpsertSession,
    ids_digest,
)
from fathom.client import _next_batch as next_batch
from fathom.client import _skip_committed as skip_committed
from fathom.errors import FathomError
from fathom.v1 import documents_pb2


def docs(*ids: str) -> list[documents_pb2.Document]:
    return [documents_pb2.Document(id=i, vector=[1.0]) for i in ids]


def opened(committed: int = 0, ids: list[str] | None = None, last_id: str = "") -> documents_pb2.UpsertStreamResponse:
    digest = ids_digest(ids) if ids is not None else EMPTY_DIGEST
    return documents_pb2.UpsertStreamResponse(
        opened=documents_pb2.StreamOpened(
            stream_id="s", next_sequence=1, committed_documents=committed, last_id=last_id, ids_digest=digest
        )
    )


def ack(sequence: int, written: int, committed: int, already: bool = False) -> documents_pb2.UpsertStreamResponse:
    return documents_pb2.UpsertStreamResponse(
        ack=documents_pb2.BatchAck(
            sequence=sequence, documents_written=written, already_committed=already, committed_documents=committed
        )
    )


def refusal(sequence: int, committed: int) -> documents_pb2.UpsertStreamResponse:
    return documents_pb2.UpsertStreamResponse(
        ack=documents_pb2.BatchAck(
            sequence=sequence,
            committed_documents=committed,
            rejection=documents_pb2.BatchRejection(
                code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                message="bad vector",
                violations=[documents_pb2.FieldViolation(field="documents[1].vector", description="NaN")],
            ),
        )
    )


def batch_of(request: documents_pb2.UpsertStreamRequest) -> tuple[int, int, list[str]]:
    batch = request.batch
    return batch.sequence, batch.first_position, [d.id for d in batch.documents]


def session(stream_id: str | None = "s", window: int = 8, progress: list[int] | None = None) -> UpsertSession:
    return UpsertSession("docs", None, stream_id, window, progress.append if progress is not None else None)


# -- the ids digest --------------------------------------------------------------------------


def test_ids_digest_matches_the_protocol_test_vector() -> None:
    assert ids_digest([]) == bytes(32)
    assert ids_digest(["a", "b"]).hex() == "abccbe9b24d2bbd3aa1360d605147a841dd051130131c6929d6004e1ae4796e8"


# -- a fresh stream ------------------------------------------------------------------------------


def test_batches_carry_their_input_position_and_per_call_sequence_numbers() -> None:
    s = session(window=2)
    assert not s.window_open  # not opened yet
    assert s.on_opened(opened()) == []
    assert not s.skipping and s.window_open
    first = s.batch_request(docs("a", "b", "c"))
    second = s.batch_request(docs("d"))
    assert [batch_of(first), batch_of(second)] == [(1, 0, ["a", "b", "c"]), (2, 3, ["d"])]
    assert not s.window_open and s.in_flight == 2  # the window is full
    s.on_ack(ack(1, 3, 3))
    assert s.window_open
    s.on_ack(ack(2, 1, 4))
    s.input_exhausted()
    summary = s.finish()
    assert (summary.committed_documents, summary.documents_written, summary.skipped_documents) == (4, 4, 0)
    assert (summary.batches, summary.already_committed, summary.reconnects) == (2, 0, 0)


def test_every_open_request_carries_build_index_at_end() -> None:
    assert not session().open_request().open.build_index_at_end
    s = UpsertSession("docs", "t1", "s", 8, build_index_at_end=True)
    first = s.open_request().open
    assert (first.collection, first.tenant, first.stream_id, first.build_index_at_end) == ("docs", "t1", "s", True)
    s.on_opened(opened())
    s.batch_request(docs("a"))
    # A stream reopened after a broken connection asks for the build too: the
    # stream that ends the upsert is the one that builds the index.
    assert s.open_request().open.build_index_at_end


def test_an_ack_out_of_order_is_a_protocol_error() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a"))
    with pytest.raises(FathomError, match="ack for batch 2, expected 1"):
        s.on_ack(ack(2, 1, 1))


def test_a_committed_count_going_back_is_a_protocol_error() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a", "b"))
    s.batch_request(docs("c"))
    s.on_ack(ack(1, 2, 2))
    with pytest.raises(FathomError, match="fewer than the 2 acknowledged before"):
        s.on_ack(ack(2, 1, 1))


# -- resume across calls ---------------------------------------------------------------------------


def test_resume_skips_the_committed_documents_after_checking_their_ids() -> None:
    progress: list[int] = []
    s = session(progress=progress)
    s.on_opened(opened(3, ["a", "b", "c"], last_id="c"))
    assert s.skipping and not s.window_open
    source = iter(docs("a", "b", "c", "d", "e"))
    skip_committed(s, source)
    assert not s.skipping and progress == [3]
    # Any batch size: the next batch starts at the committed position.
    cutter = _convert.BatchCutter(10, 1 << 20)
    batch = next_batch(s, source, cutter)
    assert batch is not None
    assert batch_of(s.batch_request(batch)) == (1, 3, ["d", "e"])
    s.on_ack(ack(1, 2, 5))
    assert next_batch(s, source, cutter) is None
    summary = s.finish()
    assert (summary.committed_documents, summary.documents_written, summary.skipped_documents) == (5, 2, 3)
    assert progress == [3, 2]


def test_resume_on_other_data_is_refused_before_sending() -> None:
    s = session()
    s.on_opened(opened(2, ["a", "b"], last_id="b"))
    with pytest.raises(ResumeMismatchError) as caught:
        skip_committed(s, iter(docs("a", "x", "c")))
    error = caught.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == (
        "stream id 's' has 2 documents committed, but the first 2 documents of this input are not "
        "the ones committed under it (their ids differ): a stream id belongs to one input; use a new "
        "stream id for other data"
    )
    assert (error.committed_documents, error.documents_written, error.skipped_documents) == (2, 0, 0)
    assert s.in_flight == 0


def test_resume_on_a_shorter_input_is_refused() -> None:
    s = session()
    s.on_opened(opened(3, ["a", "b", "c"]))
    with pytest.raises(ResumeMismatchError, match="this input has only 2 documents"):
        skip_committed(s, iter(docs("a", "b")))


def test_a_stream_without_id_never_skips() -> None:
    s = session(stream_id=None)
    s.on_opened(opened(5, ["a", "b", "c", "d", "e"]))  # ignored: not resumable
    assert not s.skipping
    assert batch_of(s.batch_request(docs("a"))) == (1, 0, ["a"])
    assert not s.can_reconnect(FathomError(grpc.StatusCode.UNAVAILABLE, "gone"))


# -- reconnects --------------------------------------------------------------------------------------


def test_reconnect_treats_batches_up_to_the_committed_position_as_done_and_resends_the_rest() -> None:
    progress: list[int] = []
    s = session(progress=progress)
    s.on_opened(opened())
    for ids in (("a", "b"), ("c", "d"), ("e", "f")):
        s.batch_request(docs(*ids))
    s.on_ack(ack(1, 2, 2))
    assert s.can_reconnect(FathomError(grpc.StatusCode.UNAVAILABLE, "the stream closed"))
    # The batch of c, d was committed but its ack lost; e, f was not.
    resend = s.on_opened(opened(4, last_id="d"))
    assert [batch_of(r) for r in resend] == [(1, 4, ["e", "f"])]  # numbered from 1 again
    assert s.in_flight == 1
    nxt = s.batch_request(docs("g"))
    assert batch_of(nxt) == (2, 6, ["g"])
    s.on_ack(ack(1, 2, 6))
    s.on_ack(ack(2, 1, 7))
    s.input_exhausted()
    summary = s.finish()
    assert (summary.committed_documents, summary.documents_written, summary.batches) == (7, 7, 4)
    assert summary.already_committed == 0
    assert progress == [2, 2, 2, 1]


def test_a_batch_committed_late_by_the_broken_connection_is_reacked_and_counted_once() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a", "b"))
    s.batch_request(docs("c", "d"))
    # The reopen saw nothing committed yet: both are resent.
    resend = s.on_opened(opened(0))
    assert [batch_of(r) for r in resend] == [(1, 0, ["a", "b"]), (2, 2, ["c", "d"])]
    # Meanwhile the old connection's write of a, b committed: re-acked as committed.
    s.on_ack(ack(1, 0, 2, already=True))
    s.on_ack(ack(2, 2, 4))
    s.input_exhausted()
    summary = s.finish()
    assert (summary.committed_documents, summary.documents_written) == (4, 4)
    assert (summary.batches, summary.already_committed) == (1, 1)


def test_reconnect_finding_fewer_documents_than_acknowledged_fails_loudly() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a", "b"))
    s.on_ack(ack(1, 2, 2))
    with pytest.raises(UpsertError) as caught:
        s.on_opened(opened(1, last_id="a"))
    assert caught.value.code == grpc.StatusCode.DATA_LOSS
    assert "acknowledged data vanished" in caught.value.message


def test_reconnect_finding_another_last_id_is_a_mismatch() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a", "b"))
    s.batch_request(docs("c", "d"))
    with pytest.raises(ResumeMismatchError, match="document 3 of this input is 'd'"):
        s.on_opened(opened(4, last_id="zzz"))


# -- refusals and input errors ---------------------------------------------------------------------


def test_a_refused_batch_ends_the_upsert_with_exact_figures() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a", "b"))
    s.batch_request(docs("c", "d"))
    s.batch_request(docs("e", "f"))
    s.on_ack(ack(1, 2, 2))
    s.on_ack(refusal(2, 2))
    assert s.sending_done and not s.window_open
    # The batch behind it is refused too (it would leave a gap).
    s.on_ack(refusal(3, 2))
    # After a refusal nothing more can be committed: no reconnect.
    assert not s.can_reconnect(FathomError(grpc.StatusCode.UNAVAILABLE, "gone"))
    with pytest.raises(UpsertRejectedError) as caught:
        s.finish()
    error = caught.value
    assert (error.sequence, error.batch_offset, error.batch_documents) == (2, 2, 2)
    assert (error.committed_documents, error.documents_written) == (2, 2)
    assert error.message == "batch 2 (documents 2..3 of the input) was refused: bad vector"
    assert [v.field for v in error.violations] == ["documents[1].vector"]
    assert "(2 documents of the input committed, 2 written by this call)" in str(error)


def test_an_input_error_drops_the_partial_batch_and_waits_for_the_batches_in_flight() -> None:
    class Broken(Exception):
        pass

    def source() -> Iterator[documents_pb2.Document]:
        yield from docs("a", "b", "c")
        raise Broken("line 4 is not JSON")

    s = session()
    s.on_opened(opened())
    reader = source()
    cutter = _convert.BatchCutter(2, 1 << 20)
    first = next_batch(s, reader, cutter)
    assert first is not None
    s.batch_request(first)
    assert next_batch(s, reader, cutter) is None  # "c" is read, then the source raises
    assert s.sending_done and s.in_flight == 1
    s.on_ack(ack(1, 2, 2))
    with pytest.raises(UpsertInputError) as caught:
        s.finish()
    error = caught.value
    assert isinstance(error.__cause__, Broken)
    assert error.position == 3
    assert error.message == (
        "reading document 3 of the input failed (line 4 is not JSON); nothing from document 2 on was sent"
    )
    assert (error.committed_documents, error.documents_written) == (2, 2)


def test_an_input_error_while_skipping_sends_nothing() -> None:
    def source() -> Iterator[documents_pb2.Document]:
        yield from docs("a")
        raise ValueError("unreadable")

    s = session()
    s.on_opened(opened(2, ["a", "b"]))
    skip_committed(s, source())
    assert s.sending_done and not s.window_open
    with pytest.raises(UpsertInputError, match=r"reading document 1 of the input failed \(unreadable\); nothing was sent") as caught:
        s.finish()
    assert caught.value.committed_documents == 2


def test_stream_failures_become_upsert_errors_with_figures() -> None:
    s = session()
    s.on_opened(opened())
    s.batch_request(docs("a"))
    s.on_ack(ack(1, 1, 1))
    s.batch_request(docs("b", "c"))
    error = s.failed(FathomError(grpc.StatusCode.NOT_FOUND, "collection docs was dropped"))
    assert isinstance(error, UpsertError)
    assert (error.code, error.committed_documents, error.documents_written) == (grpc.StatusCode.NOT_FOUND, 1, 1)
    # The batch in flight may or may not have been committed: the figure is a lower bound.
    assert error.in_flight_documents == 2
    assert "(1 document of the input committed, 2 more in flight may be, 1 written by this call)" in str(error)


@pytest.mark.parametrize(
    ("code", "details", "retry"),
    [
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", True),
        (grpc.StatusCode.UNKNOWN, "h2 protocol error: error reading a body from connection", True),
        (grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2", True),
        (grpc.StatusCode.UNKNOWN, "Stream removed", True),
        (grpc.StatusCode.INTERNAL, "transport error", True),
        (grpc.StatusCode.INTERNAL, "ids digest mismatch in the store", False),
        (grpc.StatusCode.FAILED_PRECONDITION, "the collection was re-created", False),
        (grpc.StatusCode.NOT_FOUND, "connection reset", False),
        (grpc.StatusCode.INVALID_ARGUMENT, "batch.sequence", False),
    ],
)
def test_transport_failures_are_told_from_refusals(code: grpc.StatusCode, details: str, retry: bool) -> None:
    assert is_transport_failure(code, details) is retry
