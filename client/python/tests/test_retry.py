"""The retry table (docs/retries.md) as the Python client implements it in
fathom._retry: which errors are retried, and the bounds of the pauses."""

from __future__ import annotations

import grpc
import pytest

from fathom import FathomError, RetryPolicy
from fathom._retry import Backoff, is_retryable

PERMANENT = [
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.CANCELLED,
]


def test_unavailable_and_busy_refusals_are_retried() -> None:
    assert is_retryable(FathomError(grpc.StatusCode.UNAVAILABLE, "the database is unavailable"))
    assert is_retryable(FathomError(grpc.StatusCode.RESOURCE_EXHAUSTED, "the server is busy", busy=True))
    assert is_retryable(FathomError(grpc.StatusCode.UNKNOWN, "h2 protocol error: connection reset"))


@pytest.mark.parametrize("code", PERMANENT)
def test_refusals_of_the_request_are_not_retried(code: grpc.StatusCode) -> None:
    assert not is_retryable(FathomError(code, "refused"))


def test_resource_exhausted_without_the_busy_mark_is_not_retried() -> None:
    assert not is_retryable(FathomError(grpc.StatusCode.RESOURCE_EXHAUSTED, "batch has 3 documents; the limit is 2"))


def test_pauses_stay_under_their_doubling_ceiling_and_attempts_are_bounded() -> None:
    policy = RetryPolicy()
    backoff = Backoff.call(policy)
    unavailable = FathomError(grpc.StatusCode.UNAVAILABLE, "down")
    for retry in range(1, policy.max_attempts):
        pause = backoff.next_pause(unavailable)
        assert pause is not None and 0 <= pause <= policy.ceiling(retry)
    assert backoff.next_pause(unavailable) is None
    assert policy.ceiling(1) == 0.1 and policy.ceiling(30) == policy.max_backoff


def test_no_retry_starts_past_the_budget_and_progress_starts_it_afresh() -> None:
    now = [0.0]
    backoff = Backoff(RetryPolicy(budget=1.0, initial_backoff=0.0), 10, clock=lambda: now[0])
    unavailable = FathomError(grpc.StatusCode.UNAVAILABLE, "down")
    assert backoff.next_pause(unavailable) == 0.0
    now[0] = 1.5
    assert backoff.next_pause(unavailable) is None
    backoff.progressed()
    assert backoff.next_pause(unavailable) == 0.0


def test_never_retries_nothing() -> None:
    backoff = Backoff.call(RetryPolicy.never())
    assert backoff.next_pause(FathomError(grpc.StatusCode.UNAVAILABLE, "down")) is None
