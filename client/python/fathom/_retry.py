"""The retry policy of both clients: the Python client's one implementation
of the table in ``docs/retries.md`` (the Rust and TypeScript clients
implement the same table).

Free of I/O: the drivers in :mod:`fathom.aio` (and :mod:`fathom.client`,
generated from it) ask a :class:`Backoff` how long to pause after a failure,
and do the pausing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from fathom.errors import FathomError

__all__ = ["Backoff", "RetryPolicy", "is_retryable", "is_transport_failure"]

_TRANSPORT_MARKERS = (
    "h2 protocol error",
    "rst_stream",
    "transport",
    "stream removed",
    "socket closed",
    "connection reset",
    "connection closed",
    "broken pipe",
    "goaway",
    "channel closed",
    "end of stream",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried (the table: ``docs/retries.md``).

    The pause before retry *n* (1-based) is drawn uniformly from zero to
    ``min(max_backoff, initial_backoff * 2 ** (n - 1))`` seconds (full
    jitter), and no retry starts once ``budget`` seconds have passed since
    the first attempt (since the last progress, for a stream), so a server
    that keeps failing is given up on in bounded time.

    Attributes:
        max_attempts: Attempts of a call (unary calls, the start of a
            search), the first included; 1 means no retry.
        max_stream_attempts: Attempts of a resumable upsert or a scroll
            without progress in between (an acknowledged batch, a received
            document), the first included.
        initial_backoff: Ceiling (seconds) of the first pause; it doubles
            after each failure.
        max_backoff: Highest ceiling (seconds) of a pause.
        budget: Seconds after which no retry starts.
    """

    max_attempts: int = 5
    max_stream_attempts: int = 10
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    budget: float = 10.0

    @classmethod
    def never(cls) -> RetryPolicy:
        """No retries: every call is tried once."""
        return cls(max_attempts=1, max_stream_attempts=1)

    def ceiling(self, retry: int) -> float:
        """The ceiling of the pause before retry ``retry`` (1-based)."""
        return min(self.max_backoff, self.initial_backoff * 2.0 ** min(max(retry - 1, 0), 30))


def is_transport_failure(code: grpc.StatusCode, details: str) -> bool:
    """Whether a call broke in transport (the connection or the server went
    away) rather than being refused: UNAVAILABLE, or UNKNOWN / INTERNAL
    reporting an HTTP/2 or socket failure."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        return False
    text = details.lower()
    return any(marker in text for marker in _TRANSPORT_MARKERS)


def is_retryable(error: FathomError) -> bool:
    """Whether the table retries a call that failed with ``error`` (when the
    call is one it retries): UNAVAILABLE or another transport failure, and
    RESOURCE_EXHAUSTED when the server marked it busy (``error.busy``: a
    ``google.rpc.RetryInfo`` detail). Nothing else: a RESOURCE_EXHAUSTED
    without the mark (too large), DEADLINE_EXCEEDED and every refusal of the
    request itself fail the same way again."""
    if error.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return error.busy
    return is_transport_failure(error.code, error.message)


@dataclass
class Backoff:
    """The retries of one call or stream: counts failures since the last
    progress and says how long to pause before the next attempt, if any."""

    policy: RetryPolicy
    max_attempts: int
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _since: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._since = self.clock()

    @classmethod
    def call(cls, policy: RetryPolicy) -> Backoff:
        """The retries of a call (unary, or the start of a search)."""
        return cls(policy, policy.max_attempts)

    @classmethod
    def stream(cls, policy: RetryPolicy) -> Backoff:
        """The reconnects of a resumable upsert or a scroll."""
        return cls(policy, policy.max_stream_attempts)

    def progressed(self) -> None:
        """The last attempt got somewhere: failures count afresh from here."""
        self._failures = 0
        self._since = self.clock()

    def next_pause(self, error: FathomError) -> float | None:
        """Seconds to pause before retrying after ``error``, or ``None``: give
        up (the error is not retried, or the attempts or the budget are
        spent)."""
        if not is_retryable(error) or self._failures + 1 >= max(self.max_attempts, 1):
            return None
        self._failures += 1
        pause = self.policy.ceiling(self._failures) * random.random()
        if self.clock() - self._since + pause > self.policy.budget:
            return None
        return pause
